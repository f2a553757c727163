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

}  // namespace dsa::ref
