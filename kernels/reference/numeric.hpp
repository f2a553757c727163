// Bit-exact number formats of the workload (SPEC §1): OCP e4m3fn and bfloat16, stored as raw
// uint8 / uint16 patterns. Decoding is exact; encoding rounds to nearest even.
#pragma once

#include <cstdint>

namespace dsa::ref {

// e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; no infinities; 0x7F and 0xFF are NaN;
// subnormals are m/8 * 2^-6; largest finite 448.
float e4m3_to_float(uint8_t bits);
// Round to nearest even; |x| beyond 448 saturates to +-448; NaN gives 0x7F.
uint8_t float_to_e4m3(float x);

float bf16_to_float(uint16_t bits);
// Round to nearest even; NaN stays NaN (quiet).
uint16_t float_to_bf16(float x);

// The 256 values of e4m3_to_float, indexed by the code (built once, thread-safe).
const float* e4m3_table();

// SPEC tolerance of every GPU-vs-reference comparison: atol = rtol = 1e-2, and an element fails
// only if both are exceeded (|got - ref| > atol and |got - ref| > rtol * |ref|). NaN never
// passes (on either side); an infinity passes only against the same infinity.
inline constexpr double kCheckAtol = 1e-2;
inline constexpr double kCheckRtol = 1e-2;
bool within_tolerance(double got, double ref);

}  // namespace dsa::ref
