// Encoders and decoders work on the bit patterns with integer arithmetic only (no libm, no
// rounding-mode dependence), so they give the same bits on every machine.
#include "kernels/reference/numeric.hpp"

#include <array>
#include <bit>
#include <cmath>

namespace dsa::ref {

float e4m3_to_float(uint8_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x80u) << 24;
  const uint32_t exp = (bits >> 3) & 0xFu;
  const uint32_t man = bits & 0x7u;
  if (exp == 0xFu && man == 0x7u) return std::bit_cast<float>(sign | 0x7FC00000u);  // NaN
  if (exp == 0) {
    // Subnormal (or zero): man/8 * 2^-6 = man * 2^-9, exact in float.
    const float mag = static_cast<float>(man) * 0x1p-9f;
    return sign ? -mag : mag;
  }
  // Normal: (1 + man/8) * 2^(exp - 7); rebias the exponent to float's 127.
  return std::bit_cast<float>(sign | ((exp - 7u + 127u) << 23) | (man << 20));
}

uint8_t float_to_e4m3(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7FFFFFFFu;  // |x| as bits
  if (a > 0x7F800000u) return 0x7F;    // NaN
  constexpr uint32_t kMinNormal = (127u - 6u) << 23;  // 2^-6, smallest normal e4m3
  uint32_t code;
  if (a >= kMinNormal) {
    // Keep 3 mantissa bits of the rebiased pattern; a carry out of the mantissa bumps the exponent,
    // which is exactly what rounding up to the next binade needs.
    const uint32_t r = a - ((127u - 7u) << 23);
    code = r >> 20;
    const uint32_t rem = r & 0xFFFFFu;
    if (rem > 0x80000u || (rem == 0x80000u && (code & 1u))) ++code;
    // Infinity lands here too (code would be huge).
  } else {
    // Below 2^-6: e4m3 subnormals, a grid of step 2^-9; code = round(|x| / 2^-9).
    const uint32_t fexp = a >> 23;
    if (fexp == 0) return sign;  // float zero or float subnormal (< 2^-126): rounds to 0
    const uint32_t sig = (a & 0x7FFFFFu) | 0x800000u;  // |x| = sig * 2^(fexp - 150)
    // |x| / 2^-9 = sig * 2^(fexp - 141) = sig >> shift with shift = 141 - fexp >= 21
    const uint32_t shift = 141u - fexp;
    if (shift >= 25u) return sign;  // sig < 2^24, so the quotient is below one half
    code = sig >> shift;
    const uint32_t rem = sig & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (code & 1u))) ++code;  // code 8 is the smallest normal
  }
  if (code > 0x7Eu) code = 0x7Eu;  // saturate to 448 (0x7F is NaN)
  return static_cast<uint8_t>(sign | code);
}

float bf16_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  // Round to nearest even; overflow past the largest bf16 correctly carries into infinity.
  const uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

const float* e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = e4m3_to_float(static_cast<uint8_t>(i));
    return t;
  }();
  return table.data();
}

bool within_tolerance(double got, double ref) {
  if (std::isnan(got) || std::isnan(ref)) return false;
  if (std::isinf(got) || std::isinf(ref)) return got == ref;
  const double diff = std::fabs(got - ref);
  return !(diff > kCheckAtol && diff > kCheckRtol * std::fabs(ref));
}

}  // namespace dsa::ref
