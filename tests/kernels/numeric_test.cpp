#include "kernels/reference/numeric.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

namespace dsa::ref {
namespace {

// e4m3fn value of a code, written independently of the library (ldexp of the fields).
double e4m3_expected(int code) {
  const int e = (code >> 3) & 0xF;
  const int m = code & 0x7;
  if (e == 0xF && m == 0x7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return (code & 0x80) ? -mag : mag;
}

bool is_nan_code(int code) { return (code & 0x7F) == 0x7F; }

// Nearest finite e4m3 code by exhaustive search in double, ties to the even code, beyond 448
// saturated: an independent model of float_to_e4m3.
uint8_t e4m3_nearest(float x) {
  if (std::isnan(x)) return 0x7F;
  const double ax = std::fabs(static_cast<double>(x));
  int best = 0;
  double best_err = ax;
  for (int code = 1; code <= 0x7E; ++code) {
    const double err = std::fabs(e4m3_expected(code) - ax);
    if (err < best_err || (err == best_err && (code & 1) == 0)) {
      best = code;
      best_err = err;
    }
  }
  return static_cast<uint8_t>((std::signbit(x) ? 0x80 : 0) | best);
}

TEST(E4m3, EveryCodeDecodesToItsFormula) {
  for (int code = 0; code < 256; ++code) {
    const float got = e4m3_to_float(static_cast<uint8_t>(code));
    const double want = e4m3_expected(code);
    if (is_nan_code(code)) {
      EXPECT_TRUE(std::isnan(got)) << "code " << code;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << "code " << code;
      EXPECT_EQ(std::signbit(got), (code & 0x80) != 0) << "code " << code;
    }
    const float tabled = e4m3_table()[code];
    EXPECT_EQ(std::bit_cast<uint32_t>(tabled), std::bit_cast<uint32_t>(got)) << "code " << code;
  }
}

TEST(E4m3, KnownValues) {
  EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_float(0xFE), -448.0f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_float(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(e4m3_to_float(0x40), 2.0f);
  EXPECT_EQ(e4m3_to_float(0x3C), 1.5f);
  EXPECT_EQ(e4m3_to_float(0x00), 0.0f);
  EXPECT_FALSE(std::signbit(e4m3_to_float(0x00)));
  EXPECT_EQ(e4m3_to_float(0x80), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3_to_float(0x80)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xFF)));
  EXPECT_EQ(e4m3_to_float(0x78), 256.0f);  // exponent field 15 with mantissa < 7 is finite
}

TEST(E4m3, EncodeRoundTripsEveryFiniteCode) {
  for (int code = 0; code < 256; ++code) {
    if (is_nan_code(code)) continue;
    EXPECT_EQ(float_to_e4m3(e4m3_to_float(static_cast<uint8_t>(code))), code) << "code " << code;
  }
}

TEST(E4m3, EncodeMidpointsRoundToEven) {
  for (int code = 0; code < 0x7E; ++code) {
    const float lo = e4m3_to_float(static_cast<uint8_t>(code));
    const float hi = e4m3_to_float(static_cast<uint8_t>(code + 1));
    const float mid = (lo + hi) / 2;  // exact: e4m3 values have few bits
    const int even = (code & 1) == 0 ? code : code + 1;
    EXPECT_EQ(float_to_e4m3(mid), even) << "between codes " << code << " and " << code + 1;
    EXPECT_EQ(float_to_e4m3(-mid), 0x80 | even) << "between codes -" << code << " and -" << code + 1;
    EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 0.f)), code) << "just below mid " << code;
    EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 1000.f)), code + 1) << "just above mid " << code;
  }
  // Half the smallest subnormal is a tie with zero: rounds to zero.
  EXPECT_EQ(float_to_e4m3(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(float_to_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.f)), 0x01);
  EXPECT_EQ(float_to_e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 * 2^-9: tie, to even code 2
}

TEST(E4m3, EncodeSaturatesAndHandlesSpecials) {
  EXPECT_EQ(float_to_e4m3(448.f), 0x7E);
  EXPECT_EQ(float_to_e4m3(449.f), 0x7E);
  EXPECT_EQ(float_to_e4m3(464.f), 0x7E);  // midpoint to the (absent) 480: even code is 448
  EXPECT_EQ(float_to_e4m3(465.f), 0x7E);
  EXPECT_EQ(float_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(float_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(float_to_e4m3(0.f), 0x00);
  EXPECT_EQ(float_to_e4m3(-0.f), 0x80);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::min()), 0x80);
  EXPECT_EQ(float_to_e4m3(1.0f), 0x38);
  EXPECT_EQ(float_to_e4m3(-2.0f), 0xC0);
}

TEST(E4m3, EncodeMatchesExhaustiveNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-14.f, 10.f);
  std::uniform_real_distribution<float> unit(-1.f, 1.f);
  for (int i = 0; i < 100000; ++i) {
    const float x = unit(rng) * std::exp2(exponent(rng));
    ASSERT_EQ(float_to_e4m3(x), e4m3_nearest(x)) << "x = " << x;
  }
}

TEST(Bf16, EveryCodeDecodesToItsFormula) {
  for (uint32_t code = 0; code < 65536; ++code) {
    const float got = bf16_to_float(static_cast<uint16_t>(code));
    const int e = static_cast<int>((code >> 7) & 0xFF);
    const int m = static_cast<int>(code & 0x7F);
    if (e == 0xFF) {
      if (m == 0) EXPECT_TRUE(std::isinf(got)) << code;
      else EXPECT_TRUE(std::isnan(got)) << code;
      continue;
    }
    const double mag = e == 0 ? std::ldexp(m, -133) : std::ldexp(128 + m, e - 134);
    ASSERT_EQ(static_cast<double>(got), (code & 0x8000) ? -mag : mag) << "code " << code;
    ASSERT_EQ(std::signbit(got), (code & 0x8000) != 0) << "code " << code;
  }
}

TEST(Bf16, KnownValues) {
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_float(0x3FC0), 1.5f);
  EXPECT_EQ(bf16_to_float(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_float(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_float(0x0001), std::ldexp(1.0f, -133));
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC0)));
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_bf16(0.f), 0x0000);
  EXPECT_EQ(float_to_bf16(-0.f), 0x8000);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest bf16
  EXPECT_EQ(float_to_bf16(3.140625f), 0x4049);
}

TEST(Bf16, RoundTripsEveryNonNanCode) {
  for (uint32_t code = 0; code < 65536; ++code) {
    const float f = bf16_to_float(static_cast<uint16_t>(code));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16(f), code) << "code " << code;
  }
}

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81).
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);  // between 0x3F81 and 0x3F82
  EXPECT_EQ(float_to_bf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.f)), 0x3F81);
  EXPECT_EQ(float_to_bf16(-(1.0f + std::ldexp(1.0f, -8))), 0xBF80);
  // Every midpoint between adjacent finite positive codes goes to the even one.
  for (uint32_t code = 0; code < 0x7F7F; ++code) {
    const uint32_t mid_bits = (code << 16) | 0x8000u;
    const uint16_t want = static_cast<uint16_t>((code & 1) ? code + 1 : code);
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits)), want) << "code " << code;
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits - 1)), code) << "code " << code;
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits + 1)), code + 1) << "code " << code;
  }
}

TEST(Bf16, NanStaysQuietNan) {
  for (const uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0x7F80FFFFu, 0xFFC12345u}) {
    const uint16_t b = float_to_bf16(std::bit_cast<float>(bits));
    EXPECT_TRUE(std::isnan(bf16_to_float(b))) << std::hex << bits;
    EXPECT_TRUE(b & 0x0040) << std::hex << bits;  // quiet bit
    EXPECT_EQ(b & 0x8000, (bits >> 16) & 0x8000) << std::hex << bits;
  }
}

TEST(Tolerance, FailsOnlyWhenBothExceeded) {
  EXPECT_TRUE(within_tolerance(1.0, 1.0));
  EXPECT_TRUE(within_tolerance(1.009, 1.0));       // within atol
  EXPECT_TRUE(within_tolerance(0.0, 0.0099));
  EXPECT_TRUE(within_tolerance(100.9, 100.0));     // beyond atol, within rtol
  EXPECT_FALSE(within_tolerance(1.02, 1.0));       // beyond both
  EXPECT_FALSE(within_tolerance(102.0, 100.0));
  EXPECT_FALSE(within_tolerance(0.02, 0.0));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(within_tolerance(nan, 1.0));
  EXPECT_FALSE(within_tolerance(1.0, nan));
  EXPECT_FALSE(within_tolerance(nan, nan));
  EXPECT_TRUE(within_tolerance(inf, inf));
  EXPECT_TRUE(within_tolerance(-inf, -inf));
  EXPECT_FALSE(within_tolerance(-inf, inf));
  EXPECT_FALSE(within_tolerance(1e300, inf));
}

}  // namespace
}  // namespace dsa::ref
