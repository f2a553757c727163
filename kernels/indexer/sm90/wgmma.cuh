// Hopper (sm_90a) FP8 tensor-core step of the indexer scores: one warpgroup computes a whole
// page, 64 tokens (M) x 64 heads (N) x K = 128, as four wgmma m64n64k32 e4m3 with A (the page's
// tokens) from registers and B (q) from shared memory in the 128-byte-swizzled K-major layout.
// Precision: the FP8 tensor cores accumulate the four k-steps with fewer mantissa bits than
// fp32 (measured on H100: scores within about 4e-2 of the fp32 reference, relative to
// max(1, |score|), against 5e-5 for mma.sync); DeepGEMM's paged MQA logits accumulate K = 128
// the same way. The SPEC top-k criterion holds in every GPU test.
// Only compiled for sm_90a; elsewhere DSA_IDX_HAVE_WGMMA is 0 and callers take the portable path.
#pragma once

#include <cstdint>

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSA_IDX_HAVE_WGMMA 1
#else
#define DSA_IDX_HAVE_WGMMA 0
#endif

namespace dsa::cuda::idx {

// Shared-memory matrix descriptor for a K-major operand in the 128-byte swizzle layout: rows of
// 128 bytes, 8-row atoms of 1024 bytes (stride byte offset), atom base 1024-byte aligned.
// Advancing K by 32 bytes adds 2 to the start-address field.
__device__ __forceinline__ uint64_t wgmma_desc_sw128(uint32_t smem_byte_addr) {
  uint64_t desc = 0;
  desc |= static_cast<uint64_t>((smem_byte_addr >> 4) & 0x3FFFu);  // start address
  desc |= static_cast<uint64_t>(1) << 16;                           // leading byte offset (unused)
  desc |= static_cast<uint64_t>(1024 >> 4) << 32;                   // stride byte offset
  desc |= static_cast<uint64_t>(1) << 62;                           // swizzle 128B
  return desc;
}

#if DSA_IDX_HAVE_WGMMA
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
// Waits until at most one committed group is still pending (the newest).
__device__ __forceinline__ void wgmma_wait_1() { asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory"); }

// Keeps the compiler from moving accesses of these registers across the asynchronous wgmma
// (before its issue or after its wait): an empty asm that "reads and writes" all 32.
__device__ __forceinline__ void fence_regs(float (&r)[32]) {
  asm volatile("" : "+f"(r[0]), "+f"(r[1]), "+f"(r[2]), "+f"(r[3]), "+f"(r[4]), "+f"(r[5]), "+f"(r[6]), "+f"(r[7]), "+f"(r[8]), "+f"(r[9]), "+f"(r[10]), "+f"(r[11]), "+f"(r[12]), "+f"(r[13]), "+f"(r[14]), "+f"(r[15]), "+f"(r[16]), "+f"(r[17]), "+f"(r[18]), "+f"(r[19]), "+f"(r[20]), "+f"(r[21]), "+f"(r[22]), "+f"(r[23]), "+f"(r[24]), "+f"(r[25]), "+f"(r[26]), "+f"(r[27]), "+f"(r[28]), "+f"(r[29]), "+f"(r[30]), "+f"(r[31])::"memory");
}

// The same for the A registers of an asynchronous wgmma: keeps them live (and unmoved) until
// after the wait that follows.
__device__ __forceinline__ void fence_regs_u32(uint32_t (&r)[32]) {
  asm volatile("" : "+r"(r[0]), "+r"(r[1]), "+r"(r[2]), "+r"(r[3]), "+r"(r[4]), "+r"(r[5]), "+r"(r[6]), "+r"(r[7]), "+r"(r[8]), "+r"(r[9]), "+r"(r[10]), "+r"(r[11]), "+r"(r[12]), "+r"(r[13]), "+r"(r[14]), "+r"(r[15]), "+r"(r[16]), "+r"(r[17]), "+r"(r[18]), "+r"(r[19]), "+r"(r[20]), "+r"(r[21]), "+r"(r[22]), "+r"(r[23]), "+r"(r[24]), "+r"(r[25]), "+r"(r[26]), "+r"(r[27]), "+r"(r[28]), "+r"(r[29]), "+r"(r[30]), "+r"(r[31])::"memory");
}

// d (+)= A(64x32, registers) * B(32x64, smem descriptor). kAccumulate = 0 overwrites d.
// Register layouts match mma.sync m16n8k32 per warp (warp w of the warpgroup owns rows 16w..).
template <int kAccumulate>
__device__ __forceinline__ void wgmma_m64n64k32_e4m3_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(kAccumulate));
}

// The whole page: four k-steps of 32, B advanced 32 bytes per step, then wait for completion.
__device__ __forceinline__ void mma_page_wgmma(float (&acc)[32], const uint32_t (&a)[4][4], uint32_t q_smem_addr) {
  const uint64_t desc = wgmma_desc_sw128(q_smem_addr);
  fence_regs(acc);
  wgmma_fence();
  wgmma_m64n64k32_e4m3_rs<0>(acc, a[0], desc);
  wgmma_m64n64k32_e4m3_rs<1>(acc, a[1], desc + 2);
  wgmma_m64n64k32_e4m3_rs<1>(acc, a[2], desc + 4);
  wgmma_m64n64k32_e4m3_rs<1>(acc, a[3], desc + 6);
  wgmma_commit();
  wgmma_wait_all();
  fence_regs(acc);
}

// Each k-step of 32 into its own fresh accumulator (the tensor cores' reduced-precision
// accumulation then spans 32 products, not 128), the four partial sums added in fp32. One
// k-step per commit group, each waited for before the next (two independent accumulator chains
// in one group gave wrong sums on an H200).
__device__ __forceinline__ void mma_page_wgmma_split(float (&acc)[32], const uint32_t (&a)[4][4], uint32_t q_smem_addr) {
  const uint64_t desc = wgmma_desc_sw128(q_smem_addr);
  float d[32];
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    fence_regs(d);
    wgmma_fence();
    wgmma_m64n64k32_e4m3_rs<0>(d, a[s], desc + 2 * s);
    wgmma_commit();
    wgmma_wait_all();
    fence_regs(d);
#pragma unroll
    for (int i = 0; i < 32; ++i) acc[i] = s == 0 ? d[i] : acc[i] + d[i];
  }
}

// ---- Precise variant: fp8 converted to f16, f16 wgmma with fp32 accumulation ----------------
// e4m3 values and their products are exact in f16 / fp32, and f16 wgmma accumulates in fp32, so
// the scores match an fp32 computation up to summation order.

// Two e4m3 (the low and high byte of `pair`) to f16x2 (low half from the low byte).
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint16_t pair) {
  uint32_t out;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(out) : "h"(pair));
  return out;
}

// d (+)= A(64x16 f16, registers) * B(16x64 f16, smem descriptor, K-major). Register layouts as
// mma.sync m16n8k16 per warp: a0 (row g, k 2t, 2t+1), a1 (row g+8), a2 (row g, k 8+2t..), a3.
template <int kAccumulate>
__device__ __forceinline__ void wgmma_m64n64k16_f16_rs(float (&d)[32], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                       uint64_t desc_b) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(desc_b), "n"(kAccumulate));
}

// The whole page in eight f16 k-steps, waited for (used by the generic consumer loop; the
// default f16 kernels use convert_a_f16 + mma_page_wgmma_f16_issue below). a[s][0..3] are the fp8 fragments of load_a_fragments:
// word w of the thread's 32 bytes of token g is a[w / 2][w % 2 ? 2 : 0] (token g + 8: [1], [3]).
// f16 k-step s uses word s: its low two bytes as k (2t, 2t+1), its high two as k (8+2t, 9+2t).
// The q tile (store_q_tile_f16) is two 8 KB blocks of K = 64 halves, 128-byte swizzled; k-step s
// reads block s / 4 at byte offset 32 * (s % 4).
__device__ __forceinline__ void mma_page_wgmma_f16(float (&acc)[32], const uint32_t (&a)[4][4], uint32_t q_smem_addr) {
  fence_regs(acc);
  wgmma_fence();
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const uint32_t wg = a[s / 2][(s % 2) ? 2 : 0];
    const uint32_t wg8 = a[s / 2][(s % 2) ? 3 : 1];
    const uint32_t a0 = e4m3x2_to_f16x2(static_cast<uint16_t>(wg & 0xFFFFu));
    const uint32_t a1 = e4m3x2_to_f16x2(static_cast<uint16_t>(wg8 & 0xFFFFu));
    const uint32_t a2 = e4m3x2_to_f16x2(static_cast<uint16_t>(wg >> 16));
    const uint32_t a3 = e4m3x2_to_f16x2(static_cast<uint16_t>(wg8 >> 16));
    const uint64_t desc = wgmma_desc_sw128(q_smem_addr + (s / 4) * 8192 + (s % 4) * 32);
    if (s == 0)
      wgmma_m64n64k16_f16_rs<0>(acc, a0, a1, a2, a3, desc);
    else
      wgmma_m64n64k16_f16_rs<1>(acc, a0, a1, a2, a3, desc);
  }
  wgmma_commit();
  wgmma_wait_all();
  fence_regs(acc);
}
// Pipelined form: the fragments converted up front (af[4 s + i] = register i of f16 k-step s),
// then the eight wgmmas issued and committed as one group, not waited for. The caller keeps af
// and acc untouched until a wgmma_wait that covers this group.
__device__ __forceinline__ void convert_a_f16(uint32_t (&af)[32], const uint32_t (&a)[4][4]) {
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const uint32_t wg = a[s / 2][(s % 2) ? 2 : 0];
    const uint32_t wg8 = a[s / 2][(s % 2) ? 3 : 1];
    af[4 * s + 0] = e4m3x2_to_f16x2(static_cast<uint16_t>(wg & 0xFFFFu));
    af[4 * s + 1] = e4m3x2_to_f16x2(static_cast<uint16_t>(wg8 & 0xFFFFu));
    af[4 * s + 2] = e4m3x2_to_f16x2(static_cast<uint16_t>(wg >> 16));
    af[4 * s + 3] = e4m3x2_to_f16x2(static_cast<uint16_t>(wg8 >> 16));
  }
}

__device__ __forceinline__ void mma_page_wgmma_f16_issue(float (&acc)[32], uint32_t (&af)[32], uint32_t q_smem_addr) {
  fence_regs(acc);
  fence_regs_u32(af);
  wgmma_fence();
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const uint64_t desc = wgmma_desc_sw128(q_smem_addr + (s / 4) * 8192 + (s % 4) * 32);
    if (s == 0)
      wgmma_m64n64k16_f16_rs<0>(acc, af[4 * s], af[4 * s + 1], af[4 * s + 2], af[4 * s + 3], desc);
    else
      wgmma_m64n64k16_f16_rs<1>(acc, af[4 * s], af[4 * s + 1], af[4 * s + 2], af[4 * s + 3], desc);
  }
  wgmma_commit();
}
#endif  // DSA_IDX_HAVE_WGMMA

}  // namespace dsa::cuda::idx
