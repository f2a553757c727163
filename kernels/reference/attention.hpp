// CPU reference of DSA sparse MLA attention (SPEC §1.2): the oracle for every GPU attention kernel.
#pragma once

#include <cstdint>

#include "kernels/params.hpp"

namespace dsa::ref {

// One row in float32: out_f32 [16, 512], lse [16]. No valid id: zeros and -inf.
void attention_row_f32(const AttentionParams& p, int64_t row, float* out_f32, float* lse);

// All rows of p into p.output (bf16, round to nearest even) and p.lse, over `threads` threads
// (0 = all cores).
void attention(const AttentionParams& p, int threads = 0);

}  // namespace dsa::ref
