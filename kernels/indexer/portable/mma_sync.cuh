// Portable FP8 tensor-core step of the indexer scores (sm_89+: runs on sm_90 and sm_100):
// mma.sync m16n8k32 e4m3 x e4m3 -> f32. A warp computes 16 tokens x 64 heads over K = 128 with
// q (the B operand) held in registers for the whole row.
#pragma once

#include <cstdint>

namespace dsa::cuda::idx {

// d += A(16x32, row) * B(32x8, col). Fragment layouts as in the PTX ISA for .m16n8k32 8-bit
// types: a0 (row g, k 4t..4t+3), a1 (row g+8), a2 (row g, k 16+4t..), a3 (row g+8, k 16+4t..);
// b0 (k 4t.., col g), b1 (k 16+4t.., col g); d0,d1 (row g, cols 2t, 2t+1), d2,d3 (row g+8).
__device__ __forceinline__ void mma_m16n8k32_e4m3(float* d, const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// acc[4j + i] (n-tile j = heads 8j..8j+7) = sum over the 4 k-steps of a[s] x q fragment.
// qf[j][0..7]: the 32 bytes q[8j + g][32t .. 32t+31] of this thread (g = lane/4, t = lane%4);
// k-step s uses words 2s (b0) and 2s+1 (b1), matching the A permutation (see scores.cuh).
__device__ __forceinline__ void mma_page_portable(float (&acc)[32], const uint32_t (&a)[4][4],
                                                  const uint32_t (&qf)[8][8]) {
#pragma unroll
  for (int i = 0; i < 32; ++i) acc[i] = 0.f;
#pragma unroll
  for (int s = 0; s < 4; ++s) {
#pragma unroll
    for (int j = 0; j < 8; ++j) mma_m16n8k32_e4m3(&acc[4 * j], a[s], qf[j][2 * s], qf[j][2 * s + 1]);
  }
}

}  // namespace dsa::cuda::idx
