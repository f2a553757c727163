// CPU reference of DSA sparse MLA attention (SPEC §1.2): the oracle for every GPU attention kernel.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/params.hpp"

namespace dsa::ref {

// One row in float32: out_f32 [16, 512], lse [16]. No valid id: zeros and -inf.
// Computed in double (bf16 inputs are exact in double; dots, softmax and the weighted sum all in
// double) and rounded to float once at the end, so it is the float32 result of SPEC §1.2 to far
// within the 1e-2 tolerance, and independent of any kernel's summation order. Ids other than -1
// must lie in [0, num_pages * 64); a repeated id counts as often as it appears.
void attention_row_f32(const AttentionParams& p, int64_t row, float* out_f32, float* lse);

// All rows of p into p.output (bf16, round to nearest even) and p.lse, over `threads` threads
// (0 = all cores).
void attention(const AttentionParams& p, int threads = 0);

// SPEC §1.2 judgement of one row of a kernel's output: got_out [16, 512] bf16, got_lse [16],
// against attention_row_f32 within atol = rtol = 1e-2 (an element fails only if both are
// exceeded). A -inf reference lse must be matched by -inf exactly; NaN never passes. Returns ""
// when the row passes, else a one-line reason that names the row, head and column.
std::string check_attention_row(const AttentionParams& p, int64_t row, const uint16_t* got_out,
                                const float* got_lse);
// The same against a reference row already computed by attention_row_f32 (ref_out [16, 512],
// ref_lse [16]); `row` only labels the message.
std::string compare_attention_row(int64_t row, const float* ref_out, const float* ref_lse,
                                  const uint16_t* got_out, const float* got_lse);

}  // namespace dsa::ref
