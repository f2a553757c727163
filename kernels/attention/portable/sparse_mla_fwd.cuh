// Sparse MLA decode attention (SPEC §1.2), portable tensor-core path: mma.sync m16n8k16 bf16,
// ldmatrix and cp.async, so one kernel runs on sm_90a and sm_100a. Memory-bound by design
// (about 30 FLOP per byte gathered), so the work is keeping enough gathered bytes in flight.
//
// One block = one (row, split). The block
//   1. compacts the row's valid ids (any slot may hold one) into shared memory, in slot order,
//      and takes its share [lo, hi) of them: 1/splits of the valid ids, so all-padding slots
//      cost nothing and a split's work does not depend on where the ids sit;
//   2. streams tiles of 32 gathered tokens (ckv 1 KB + kpe 128 B per token, 16-byte cp.async,
//      zero-filled past hi) through a kStages-deep shared-memory pipeline;
//   3. per tile: S[16 heads, 32 tokens] = Qn Kc^T + Qp Kp^T with the 16 heads as the MMA's M
//      dimension (exactly one m16 tile), Q held in registers as A fragments (copied in with
//      the first tiles, then read by ldmatrix). Warp w computes tokens 8*(w%4) .. 8*(w%4)+7
//      over one half of the 576-long dot (w/4); the two halves meet in shared memory. Then
//      every warp takes the whole S tile, does the online softmax in the exp2 domain
//      (sm_scale * log2 e folded in, fp32), and accumulates O[16, 64*w .. 64*w+63] += P V, the
//      same ckv tile serving as V (ldmatrix.trans). The logits of tile i+1 are computed in the
//      same barrier interval as the softmax and P V of tile i (logits double-buffered), so a
//      tile costs one barrier and the two MMA streams may interleave. A block with at most
//      kOneShotTiles tiles (short rows; the splits of few rows) instead gathers them all at once
//      and scores them together, then one exact softmax and one P V: three barriers in all;
//   4. with one split (or a row short enough for its cluster's first block to take it alone,
//      the others leaving at once): normalises and writes bf16 output and the base-2 LSE. With
//      several, the splits of a row form one thread-block cluster: each block stages its
//      partial of every head in its idle stages and bulk-copies each peer's heads into that
//      peer's shared memory (cp.async.bulk into distributed shared memory, counted on the
//      receiver's mbarrier), and each block combines its heads by base-2 LSE (each split's
//      weight computed once per head): no workspace, no second launch, no cluster barrier
//      after the exchange.
// A row (or split) with no valid id ends with m = -inf, l = 0 and writes zeros and -inf.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/attention/portable/sparse_mla_params.hpp"
#include "kernels/cluster.cuh"

namespace dsa::cuda::attn {
namespace dev {

__device__ __forceinline__ uint32_t smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 16-byte global -> shared copy; `valid` false zero-fills the destination and reads nothing.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c[16x8 f32] += a[16x16 bf16, row] * b[16x8 bf16, col]
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float exp2_approx(float x) {  // ex2.approx(-inf) = +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats to packed bf16x2 (round to nearest even), `lo` in the low half.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The row (0..15) of a 16-row tile whose address this lane gives an ldmatrix .x4: lanes 0-7
// and 16-23 rows 0-7, lanes 8-15 and 24-31 rows 8-15 (A fragments, and V by .trans).
__device__ __forceinline__ int frag_row(int lane) { return (lane & 7) + ((lane >> 3) & 1) * 8; }

// The bf16 residuals (lo - low half, hi - high half) of a pair packed by pack_bf16x2: with it,
// P reaches the tensor cores with about 16 significant bits (see kExactP).
__device__ __forceinline__ uint32_t bf16x2_residual(uint32_t packed, float lo, float hi) {
  return pack_bf16x2(lo - __uint_as_float(packed << 16), hi - __uint_as_float(packed & 0xffff0000u));
}

// Bulk copy (copy engine) of `bytes` (multiple of 16, 16-byte aligned) from this block's shared
// memory into block `rank`'s (dst and mbar already mapped to it), counted on its mbarrier.
__device__ __forceinline__ void bulk_copy_to_rank(uint32_t dst, uint32_t src, uint32_t bytes, uint32_t mbar) {
  asm volatile("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "r"(src), "r"(bytes), "r"(mbar)
               : "memory");
}
__device__ __forceinline__ void bulk_commit_and_wait_read() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
// Generic-proxy shared-memory writes, ordered before later async-proxy (copy engine) reads.
__device__ __forceinline__ void fence_proxy_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// One arrival (the local expect_tx) plus the bytes completes the phase; remote bytes may land
// before the expect_tx (tx-count goes negative meanwhile, the pending arrival holds the phase).
__device__ __forceinline__ void mbar_init(uint32_t mbar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(mbar) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive_expect(uint32_t mbar, uint32_t tx_bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(mbar), "r"(tx_bytes) : "memory");
}
// Loads a word that nobody uses (the warp never waits for it), so the address translation of
// the output's page is warm when the stores at the end of the kernel come (an L2 prefetch did
// not spare them the page walk).
__device__ __forceinline__ void touch(const void* ptr) {
  asm volatile("{\n .reg .b32 t;\n ld.global.b32 t, [%0];\n}\n" ::"l"(ptr));
}

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint32_t ldg_u32(const uint16_t* ptr) {
  return __ldg(reinterpret_cast<const unsigned int*>(ptr));
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile whose rows are `row_bytes` long:
// the chunk's low 3 bits are XORed with the row's, so the 8 rows an ldmatrix reads at one chunk
// fall in 8 different bank groups.
__device__ __forceinline__ uint32_t swizzle(int row, int chunk, int row_bytes) {
  return static_cast<uint32_t>(row * row_bytes + ((chunk ^ (row & 7)) << 4));
}

}  // namespace dev

// kExactP: P goes to the tensor cores as bf16 hi + bf16 lo (two MMAs), about 16 significant
// bits instead of 8, so large-magnitude V with a spread-out softmax stays within 1e-2 of the
// float32 reference; false is the usual flash-attention rounding of P to bf16.
template <int kStages, bool kExactP>
__global__ void __launch_bounds__(kThreads, 1) sparse_mla_fwd_kernel(const __grid_constant__ SparseMlaParams p) {
  static_assert(kStages >= 3, "pipeline needs three stages");
  const float neg_inf = __int_as_float(0xff800000);

  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* stage_mem = smem;                                                    // [kStages][kStageBytes]
  uint8_t* q_mem = smem + size_t(kStages) * kStageBytes;                        // [16][576] bf16, swizzled
  int32_t* id_list = reinterpret_cast<int32_t*>(q_mem + kQBytes);               // [2048]
  float* s_part = reinterpret_cast<float*>(id_list + kTopK);  // [2 buffers][2 halves][16][kSPartStride]
  int* warp_count = reinterpret_cast<int*>(s_part + kSPartFloats);             // [8]
  // Split mode only (after a 128-byte pad): the partials the cluster's blocks send to this
  // block, which finishes heads [split * 16/splits, (split+1) * 16/splits): row j * 16/splits + hl
  // holds split j's unnormalised output of head h0 + hl (512 floats), then its (m, l), then pad.
  float* recv_o = reinterpret_cast<float*>(warp_count + kWarps) + 2 * kHeads;
  // The 8-byte mbarrier that counts the received bytes sits in the pad before recv_o.
  const uint32_t recv_mbar = dev::smem_u32(recv_o) - 8;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;  // fragment row (head g and g + 8)
  const int q = lane & 3;   // fragment column pair
  const int splits = p.splits;  // blocks per row (one cluster)
  const int split = static_cast<int>(blockIdx.x % static_cast<unsigned>(splits));  // rank in the cluster
  const int64_t row = blockIdx.x / static_cast<unsigned>(splits);

  const int heads_per = kHeads / splits;  // heads this block writes
  const int h0 = split * heads_per;
  // Diagnostics: thread 0 stamps the phase boundaries when p.trace is set.
  unsigned long long* const trace = p.trace && tid == 0 ? p.trace + size_t(blockIdx.x) * kTraceSlots : nullptr;
  auto stamp = [&](int slot) {
    if (trace) trace[slot] = clock64();
  };
  if (trace) trace[0] = dev::global_ns();
  stamp(1);
  if (splits > 1) {
    // The receive barrier is initialised before the cluster arrive that the senders wait for,
    // so no byte can arrive before it exists.
    if (tid == 0) dev::mbar_init(recv_mbar);
    cluster::arrive_relaxed();
  }
  // Q (16 x 576 bf16, 18 KB) lands in its own region with the first copies, in a swizzled
  // [16][72 chunks] layout that ldmatrix reads as A fragments.
  const uint32_t q_stage = dev::smem_u32(q_mem);
  for (int idx = tid; idx < kHeads * (kQkDim / 8); idx += kThreads) {
    const int h = idx / (kQkDim / 8), c = idx % (kQkDim / 8);
    const uint16_t* src = c < kCkvDim / 8 ? p.q_nope + (row * kHeads + h) * kCkvDim + c * 8
                                          : p.q_pe + (row * kHeads + h) * kKpeDim + (c - kCkvDim / 8) * 8;
    dev::cp_async_16(q_stage + dev::swizzle(h, c, kQkDim * 2), src, true);
  }
  dev::cp_async_commit();
  if (tid == 0)  // first and last line of this block's output, and its lse: warms the TLB
    dev::touch(p.output + (row * kHeads + h0) * kCkvDim);
  else if (tid == 32)
    dev::touch(p.output + (row * kHeads + h0 + heads_per) * kCkvDim - 64);
  else if (tid == 64)
    dev::touch(p.lse + row * kHeads + h0);

  // ---- 1. Compact the row's valid ids, in slot order. Thread t owns slots 8t .. 8t+7. --------
  int ids[8];
  {
    const int4* slots = reinterpret_cast<const int4*>(p.indices + row * kTopK) + 2 * tid;
    const int4 a = __ldg(slots);
    const int4 b = __ldg(slots + 1);
    ids[0] = a.x, ids[1] = a.y, ids[2] = a.z, ids[3] = a.w;
    ids[4] = b.x, ids[5] = b.y, ids[6] = b.z, ids[7] = b.w;
  }
  unsigned valid_bits = 0;
#pragma unroll
  for (int k = 0; k < 8; ++k)
    if (ids[k] >= 0 && ids[k] < p.num_tokens) valid_bits |= 1u << k;
  const int my_count = __popc(valid_bits);
  int inclusive = my_count;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const int t = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset) inclusive += t;
  }
  if (lane == 31) warp_count[warp] = inclusive;

  const int kh = warp >> 2;  // half of the 576-long dot product this warp scores (S phase)
  const int jt = warp & 3;   // token group (8 tokens) of the tile this warp scores

  __syncthreads();
  int before = 0, total = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const int c = warp_count[w];
    before += w < warp ? c : 0;
    total += c;
  }
  {
    int pos = before + inclusive - my_count;
#pragma unroll
    for (int k = 0; k < 8; ++k)
      if ((valid_bits >> k) & 1u) id_list[pos++] = ids[k];
  }
  // A short row split over a cluster is taken whole by its first block, which writes the
  // output itself; the other blocks leave. Spreading a tile or two saves less than the split
  // exchange costs (staging, DSMEM copies, combine: about 2 us on an H200).
  const bool alone = splits > 1 && total <= kAloneMaxIds;
  // This split's share of the valid ids.
  const int lo = alone ? 0 : static_cast<int>(int64_t(total) * split / splits);
  const int hi = alone ? total : static_cast<int>(int64_t(total) * (split + 1) / splits);
  const int count = hi - lo;
  const int ntiles = (count + kTileTokens - 1) / kTileTokens;
  __syncthreads();  // id_list complete
  stamp(2);
  if (alone && split != 0) {
    dev::cp_async_wait<0>();  // the Q copies land before this block's shared memory is released
    if (trace) trace[kTraceSlots - 1] = dev::global_ns();
    return;
  }

  // ---- 2. Gather: tile t -> stage s. Thread t copies token row t/8: 16-byte chunks t%8 + 8k of
  // its ckv row (k = 0..7, so 8 threads cover 128 contiguous bytes per instruction) and chunk
  // t%8 of its kpe row: one id and one address per thread per tile. ---------------------------
  const uint32_t stage0 = dev::smem_u32(stage_mem);
  auto issue_tile = [&](int t, int s) {
    const uint32_t st = stage0 + static_cast<uint32_t>(s * kStageBytes);
    const int r = tid >> 3, ch = tid & 7;
    const int idx = lo + t * kTileTokens + r;
    const bool ok = idx < hi;
    const int64_t id = ok ? id_list[idx] : 0;
    const uint16_t* src = p.ckv + id * kCkvDim + ch * 8;
    const uint32_t dst = st + dev::swizzle(r, ch, kCkvRowBytes);  // chunk ch + 8k lands at +128k
#pragma unroll
    for (int k = 0; k < kCkvRowBytes / 128; ++k) dev::cp_async_16(dst + 128 * k, src + 64 * k, ok);
    dev::cp_async_16(st + kStageCkvBytes + dev::swizzle(r, ch, kKpeRowBytes), p.kpe + id * kKpeDim + ch * 8, ok);
  };

  // Per-lane ldmatrix offsets inside a stage for the logits, the same for every tile: pair pp
  // (k-steps 2pp, 2pp+1) of this warp's half of the dot product, chosen without branches so the
  // scoring of the next tile and the P V of this one stay in one basic block and interleave.
  uint32_t s_off[9];
  {
    const int tr = jt * 8 + (lane & 7);  // token row this lane addresses
    const int cl = lane >> 3;            // which of the 4 chunks (2 k-steps) it addresses
#pragma unroll
    for (int pp = 0; pp < 9; ++pp) {
      const uint32_t half0 = dev::swizzle(tr, 4 * pp + cl, kCkvRowBytes);
      const uint32_t half1 = pp < 7 ? dev::swizzle(tr, 36 + 4 * pp + cl, kCkvRowBytes)
                                    : kStageCkvBytes + dev::swizzle(tr, 4 * (pp - 7) + cl, kKpeRowBytes);
      s_off[pp] = kh == 0 ? half0 : half1;
    }
  }

  // Q as MMA A fragments, filled from q_stage once the first copies have landed. Warp w covers
  // dot-product half kh = w / 4: 576-dims [288 kh, 288 kh + 288), 18 k-steps of 16.
  uint32_t qf[18][4];
  const float scale_log2 = p.scale_log2;

  // 3a. Partial logits of the tile in stage `st`: tokens 8*jt .. 8*jt+7, dot-product half kh,
  // scaled to the exp2 domain, -inf past the tile's tile_n tokens, into s_buf [2 halves][16]
  // [kSPartStride]. Four accumulators keep the MMA chains short.
  auto score_tile = [&](uint32_t st, float* s_buf, int tile_n) {
    float acc[4][4];
#pragma unroll
    for (int a = 0; a < 4; ++a) acc[a][0] = acc[a][1] = acc[a][2] = acc[a][3] = 0.f;
#pragma unroll
    for (int pp = 0; pp < 9; ++pp) {
      uint32_t b[4];
      dev::ldmatrix_x4(st + s_off[pp], b);
      dev::mma_bf16(acc[(2 * pp) & 3], qf[2 * pp], b[0], b[1]);
      dev::mma_bf16(acc[(2 * pp + 1) & 3], qf[2 * pp + 1], b[2], b[3]);
    }
    const int col = jt * 8 + 2 * q;
    const bool ok0 = col < tile_n, ok1 = col + 1 < tile_n;
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = ((acc[0][e] + acc[1][e]) + (acc[2][e] + acc[3][e])) * scale_log2;
    float* sp = s_buf + kh * (kHeads * kSPartStride) + col;
    *reinterpret_cast<float2*>(sp + g * kSPartStride) = make_float2(ok0 ? v[0] : neg_inf, ok1 ? v[1] : neg_inf);
    *reinterpret_cast<float2*>(sp + (g + 8) * kSPartStride) =
        make_float2(ok0 ? v[2] : neg_inf, ok1 ? v[3] : neg_inf);
  };

  float o[8][4];  // O[head g / g+8][64*warp + 8*nt + 2q + {0,1}]
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
  float m_run[2] = {neg_inf, neg_inf};  // running max (exp2 domain) of heads g, g+8
  float l_run[2] = {0.f, 0.f};          // this thread's part of the running sum

  // O[16, this warp's 64 columns] += P[16, 16 tokens] V, the tokens tok0 .. tok0 + 15 of the tile
  // in stage `st` (its ckv serving as V, read by ldmatrix.trans); pf = P as A fragments, pl its
  // bf16 residual (kExactP only).
  auto pv_kstep = [&](uint32_t st, int tok0, const uint32_t(&pf)[4], const uint32_t(&pl)[4]) {
    const int tok = tok0 + dev::frag_row(lane);
#pragma unroll
    for (int pr = 0; pr < 4; ++pr) {
      const int chunk = 8 * warp + 2 * pr + (lane >> 4);
      uint32_t b[4];
      dev::ldmatrix_x4_trans(st + dev::swizzle(tok, chunk, kCkvRowBytes), b);
      dev::mma_bf16(o[2 * pr], pf, b[0], b[1]);
      dev::mma_bf16(o[2 * pr + 1], pf, b[2], b[3]);
      if constexpr (kExactP) {
        dev::mma_bf16(o[2 * pr], pl, b[0], b[1]);
        dev::mma_bf16(o[2 * pr + 1], pl, b[2], b[3]);
      }
    }
  };

  // 3b. Online softmax over the tile's logits in s_buf (every warp, redundantly: each needs all
  // of P), then O[16, this warp's 64 columns] += P V with V = the tile's ckv in stage `st`.
  auto attend_tile = [&](uint32_t st, const float* s_buf) {
    float sv[2][4][2];  // [head g / g+8][token group mm][pair]: tokens 8*mm + 2q + {0,1}
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int mm = 0; mm < 4; ++mm) {
        const int col = 8 * mm + 2 * q;
        const float* sp = s_buf + (g + 8 * r) * kSPartStride + col;
        const float2 a = *reinterpret_cast<const float2*>(sp);
        const float2 b = *reinterpret_cast<const float2*>(sp + kHeads * kSPartStride);
        sv[r][mm][0] = a.x + b.x;  // masked tokens are -inf in both halves
        sv[r][mm][1] = a.y + b.y;
      }
    }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = neg_inf;
#pragma unroll
      for (int mm = 0; mm < 4; ++mm) mx = fmaxf(mx, fmaxf(sv[r][mm][0], sv[r][mm][1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[r], mx);
      const float m_use = m_new == neg_inf ? 0.f : m_new;  // no finite logit yet: keep exp2 finite
      alpha[r] = dev::exp2_approx(m_run[r] - m_use);
      m_run[r] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int mm = 0; mm < 4; ++mm) {
        sv[r][mm][0] = dev::exp2_approx(sv[r][mm][0] - m_use);
        sv[r][mm][1] = dev::exp2_approx(sv[r][mm][1] - m_use);
        sum += sv[r][mm][0] + sv[r][mm][1];
      }
      l_run[r] = l_run[r] * alpha[r] + sum;
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      o[nt][0] *= alpha[0];
      o[nt][1] *= alpha[0];
      o[nt][2] *= alpha[1];
      o[nt][3] *= alpha[1];
    }
    uint32_t pf[2][4];  // P as A fragments, k-step kk = tokens 16*kk .. 16*kk+15
    uint32_t pl[2][4];  // kExactP: the bf16 residual P - pf
#pragma unroll
    for (int kk = 0; kk < 2; ++kk) {
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        const float* pair = sv[f & 1][2 * kk + (f >> 1)];  // regs: (g, lo k) (g+8, lo k) (g, hi k) (g+8, hi k)
        pf[kk][f] = dev::pack_bf16x2(pair[0], pair[1]);
        if constexpr (kExactP) pl[kk][f] = dev::bf16x2_residual(pf[kk][f], pair[0], pair[1]);
      }
    }
#pragma unroll
    for (int kk = 0; kk < 2; ++kk) pv_kstep(st, 16 * kk, pf[kk], pl[kk]);
  };

  // This warp's Q fragments, once the Q copies have landed and are visible.
  auto load_q = [&]() {
#pragma unroll
    for (int ks = 0; ks < 18; ++ks)
      dev::ldmatrix_x4(q_stage + dev::swizzle(dev::frag_row(lane), 36 * kh + 2 * ks + (lane >> 4), kQkDim * 2),
                       qf[ks]);
  };

  // 3c. One shot, for kNt <= kOneShotTiles tiles (short rows, and the splits of few rows): every
  // tile is gathered at once, then all logits, one exact softmax and one P V, with three block
  // barriers in all. The per-tile loop below is a chain of dependent steps per tile (logits,
  // max, exp2, P V, barrier) that leaves the tensor cores mostly idle; here the warps score
  // every tile together (warp (jt, kh): tokens 8 jt .. 8 jt + 7 of each tile), the softmax is
  // shared out (two heads per warp) and P V runs 2 kNt k-steps back to back.
  float l_tot[2];
  float* const s_all = reinterpret_cast<float*>(id_list);  // [2 halves][16][kSAllStride]
  constexpr int kPRowBytes = kOneShotTiles * kTileTokens * 2;
  const uint32_t p_hi = q_stage, p_lo = q_stage + kPAllBytes;  // [16][128] bf16, swizzled
  float2* const ml_all = reinterpret_cast<float2*>(q_mem + 2 * kPAllBytes);  // [16] (m, l)
  auto one_shot = [&](auto tiles_tag) {
    constexpr int kNt = decltype(tiles_tag)::value;
    static_assert(kNt >= 1 && kNt <= kOneShotTiles && kNt <= kStages, "one-shot tiles fit the stages");
#pragma unroll
    for (int t = 0; t < kNt; ++t) issue_tile(t, t);
    dev::cp_async_commit();
    // Q was committed first, before the ids were read: its fragments load while the tiles fly.
    dev::cp_async_wait<1>();
    __syncthreads();  // Q visible
    load_q();
    stamp(8);
    dev::cp_async_wait<0>();
    stamp(3);
    __syncthreads();  // every tile visible; every thread done reading id_list (now s_all)
    float acc[kNt][2][4];
#pragma unroll
    for (int t = 0; t < kNt; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[t][0][e] = acc[t][1][e] = 0.f;
#pragma unroll
    for (int pp = 0; pp < 9; ++pp) {
#pragma unroll
      for (int t = 0; t < kNt; ++t) {
        uint32_t b[4];
        dev::ldmatrix_x4(stage0 + static_cast<uint32_t>(t * kStageBytes) + s_off[pp], b);
        dev::mma_bf16(acc[t][0], qf[2 * pp], b[0], b[1]);
        dev::mma_bf16(acc[t][1], qf[2 * pp + 1], b[2], b[3]);
      }
    }
#pragma unroll
    for (int t = 0; t < kNt; ++t) {
      const int tok = t * kTileTokens + jt * 8 + 2 * q;
      const bool ok0 = tok < count, ok1 = tok + 1 < count;
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) v[e] = (acc[t][0][e] + acc[t][1][e]) * scale_log2;
      float* sp = s_all + kh * (kHeads * kSAllStride) + tok;
      *reinterpret_cast<float2*>(sp + g * kSAllStride) = make_float2(ok0 ? v[0] : neg_inf, ok1 ? v[1] : neg_inf);
      *reinterpret_cast<float2*>(sp + (g + 8) * kSAllStride) =
          make_float2(ok0 ? v[2] : neg_inf, ok1 ? v[3] : neg_inf);
    }
    stamp(9);
    __syncthreads();  // every logit written; every warp's Q in registers, so P may overwrite Q
    // Softmax of heads 2 warp and 2 warp + 1: lane l takes tokens 4 l .. 4 l + 3.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int h = 2 * warp + r;
      float x[4] = {neg_inf, neg_inf, neg_inf, neg_inf};
      if (4 * lane < kNt * kTileTokens) {
        const float4 a = *reinterpret_cast<const float4*>(s_all + h * kSAllStride + 4 * lane);
        const float4 b = *reinterpret_cast<const float4*>(s_all + (kHeads + h) * kSAllStride + 4 * lane);
        x[0] = a.x + b.x, x[1] = a.y + b.y, x[2] = a.z + b.z, x[3] = a.w + b.w;  // masked: -inf in both
      }
      float mx = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_use = mx == neg_inf ? 0.f : mx;
      float sum = 0.f;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        x[e] = dev::exp2_approx(x[e] - m_use);
        sum += x[e];
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      const uint32_t at = dev::swizzle(h, lane >> 1, kPRowBytes) + (lane & 1) * 8;
      uint2 hi;
      hi.x = dev::pack_bf16x2(x[0], x[1]);
      hi.y = dev::pack_bf16x2(x[2], x[3]);
      *reinterpret_cast<uint2*>(q_mem + at) = hi;
      if constexpr (kExactP)
        *reinterpret_cast<uint2*>(q_mem + kPAllBytes + at) =
            make_uint2(dev::bf16x2_residual(hi.x, x[0], x[1]), dev::bf16x2_residual(hi.y, x[2], x[3]));
      if (lane == 0) ml_all[h] = make_float2(mx, sum);
    }
    __syncthreads();  // P and (m, l) of every head written
    stamp(10);
    // O[16, this warp's 64 columns] = P V over k-steps of 16 tokens (V = the tiles' ckv).
#pragma unroll
    for (int kk = 0; kk < 2 * kNt; ++kk) {
      uint32_t pf[4];
      [[maybe_unused]] uint32_t pl[4];
      const uint32_t at = dev::swizzle(dev::frag_row(lane), 2 * kk + (lane >> 4), kPRowBytes);
      dev::ldmatrix_x4(p_hi + at, pf);
      if constexpr (kExactP) dev::ldmatrix_x4(p_lo + at, pl);
      pv_kstep(stage0 + static_cast<uint32_t>((kk >> 1) * kStageBytes), 16 * (kk & 1), pf, pl);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float2 ml = ml_all[g + 8 * r];
      m_run[r] = ml.x;
      l_tot[r] = ml.y;
    }
    stamp(4);
  };

  if (ntiles >= 1 && ntiles <= kOneShotTiles) {
    switch (ntiles) {
      case 1: one_shot(std::integral_constant<int, 1>{}); break;
      case 2: one_shot(std::integral_constant<int, 2>{}); break;
      case 3: one_shot(std::integral_constant<int, 3>{}); break;
      default: one_shot(std::integral_constant<int, 4>{}); break;
    }
  } else {
    // Pipeline: tile t lands in stage t % kStages. Iteration i scores tile i+1 while it attends
    // to tile i (logits double-buffered in s_part), so one barrier per tile suffices; loads run
    // kStages-2 tiles ahead of the tile being scored.
#pragma unroll
    for (int t = 0; t < kStages - 1; ++t) {
      if (t < ntiles) issue_tile(t, t);
      dev::cp_async_commit();
    }
    if (ntiles > 0) {
      dev::cp_async_wait<kStages - 2>();
      stamp(3);
      __syncthreads();  // Q and tile 0 visible
      load_q();
      score_tile(stage0, s_part, min(kTileTokens, count));
    }
    int stage = 0;
    for (int i = 0; i < ntiles; ++i) {
      dev::cp_async_wait<kStages - 3>();
      __syncthreads();  // tile i+1 visible; logits of tile i complete; every warp done with iteration i-1
      const int next_stage = stage + 1 == kStages ? 0 : stage + 1;
      if (i + kStages - 1 < ntiles) issue_tile(i + kStages - 1, stage == 0 ? kStages - 1 : stage - 1);
      dev::cp_async_commit();
      // Past the last tile this scores whatever the stage holds into a buffer nobody reads: kept
      // unconditional so that it interleaves with attend_tile.
      score_tile(stage0 + static_cast<uint32_t>(next_stage * kStageBytes), s_part + ((i + 1) & 1) * kSPartBufFloats,
                 min(kTileTokens, count - (i + 1) * kTileTokens));
      attend_tile(stage0 + static_cast<uint32_t>(stage * kStageBytes), s_part + (i & 1) * kSPartBufFloats);
      stage = next_stage;
    }
    dev::cp_async_wait<0>();  // only empty groups can be left; keep the invariant explicit
    stamp(4);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = l_run[r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      l_tot[r] = l;
    }
  }

  // ---- 4a. One split (or a short row taken alone): normalise and write. The bf16 row goes
  // through shared memory so that each warp store writes 512 contiguous bytes: the fragments'
  // own layout (16 bytes in each of 8 rows per store) kept the store path busy for about 1 us.
  // The staging is a region nobody reads any more: the one-shot logits (read before P was
  // published; with no tile, the unused id list) or, after the loop, Q (in registers since the
  // loop's first barrier; with no tile, other threads' Q copies could still be landing there).
  if (splits == 1 || alone) {
    uint8_t* const ostage = ntiles <= kOneShotTiles ? reinterpret_cast<uint8_t*>(id_list) : q_mem;
    const float inv0 = l_tot[0] > 0.f ? 1.f / l_tot[0] : 0.f;
    const float inv1 = l_tot[1] > 0.f ? 1.f / l_tot[1] : 0.f;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int chunk = 8 * warp + nt;  // 16-byte chunk of the 1 KB head row; this lane's 4 bytes at 4q
      *reinterpret_cast<uint32_t*>(ostage + dev::swizzle(g, chunk, kCkvRowBytes) + 4 * q) =
          dev::pack_bf16x2(o[nt][0] * inv0, o[nt][1] * inv0);
      *reinterpret_cast<uint32_t*>(ostage + dev::swizzle(g + 8, chunk, kCkvRowBytes) + 4 * q) =
          dev::pack_bf16x2(o[nt][2] * inv1, o[nt][3] * inv1);
    }
    if (warp == 0 && q == 0) {
      p.lse[row * kHeads + g] = l_tot[0] > 0.f ? m_run[0] + log2f(l_tot[0]) : neg_inf;
      p.lse[row * kHeads + g + 8] = l_tot[1] > 0.f ? m_run[1] + log2f(l_tot[1]) : neg_inf;
    }
    __syncthreads();  // the row staged
    uint16_t* out = p.output + row * (kHeads * kCkvDim);
    constexpr int kChunks = kHeads * kCkvRowBytes / 16;  // 1024
#pragma unroll
    for (int k = tid; k < kChunks; k += kThreads) {
      const int h = k / (kCkvRowBytes / 16), chunk = k % (kCkvRowBytes / 16);
      *reinterpret_cast<uint4*>(out + h * kCkvDim + chunk * 8) =
          *reinterpret_cast<const uint4*>(ostage + dev::swizzle(h, chunk, kCkvRowBytes));
    }
    stamp(7);
    if (trace) trace[kTraceSlots - 1] = dev::global_ns();
    return;
  }

  // ---- 4b. Several splits (one cluster): each block stages its unnormalised partial of every
  // head, with (m, l) in the row's pad, in its own (now idle) pipeline stages, and one thread
  // per destination bulk-copies the rows of that block's heads straight into its receive
  // buffer (cp.async.bulk into distributed shared memory, counted on the receiver's mbarrier:
  // a few large copies instead of thousands of 8-byte remote stores); each block waits for
  // its 16 rows and combines them by base-2 LSE from local memory. No cluster-wide barrier
  // after the exchange, no device-scope fence. ------------------------------------------------
  __syncthreads();  // every warp is done reading the stages
  // Rows of this block's own heads go straight into its receive buffer, the others to the staging.
  float* stage_o = reinterpret_cast<float*>(stage_mem);  // [16 heads][kOPartStride]
  float* const row_g0 = g / heads_per == split ? recv_o + (split * heads_per + g % heads_per) * kOPartStride
                                               : stage_o + g * kOPartStride;
  float* const row_g1 = (g + 8) / heads_per == split
                            ? recv_o + (split * heads_per + (g + 8) % heads_per) * kOPartStride
                            : stage_o + (g + 8) * kOPartStride;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const int d = 64 * warp + 8 * nt + 2 * q;
    *reinterpret_cast<float2*>(row_g0 + d) = make_float2(o[nt][0], o[nt][1]);
    *reinterpret_cast<float2*>(row_g1 + d) = make_float2(o[nt][2], o[nt][3]);
  }
  if (warp == 0 && q == 0) {
    *reinterpret_cast<float2*>(row_g0 + kCkvDim) = make_float2(m_run[0], l_tot[0]);
    *reinterpret_cast<float2*>(row_g1 + kCkvDim) = make_float2(m_run[1], l_tot[1]);
  }
  stamp(11);
  dev::fence_proxy_async_smem();  // the staged rows, before the copy engine reads them
  __syncthreads();                // every thread's rows staged
  cluster::wait_acquire();    // every block has started and armed its mbarrier
  stamp(5);
  if (tid < splits && tid != split) {  // thread r sends heads [r * heads_per, (r + 1) * heads_per) to rank r
    const uint32_t r = static_cast<uint32_t>(tid);
    const uint32_t bytes = static_cast<uint32_t>(heads_per * kOPartStride * 4);
    dev::bulk_copy_to_rank(cluster::mapa_shared(dev::smem_u32(recv_o + split * heads_per * kOPartStride), r),
                           dev::smem_u32(stage_o + tid * heads_per * kOPartStride), bytes,
                           cluster::mapa_shared(recv_mbar, r));
    dev::bulk_commit_and_wait_read();  // the staging may not be left before it is read
  }
  stamp(12);
  // Every block receives 16/splits heads from each of the other splits - 1 blocks: 16 - 16/splits
  // rows of kOPartStride floats (512 outputs, m, l, pad); its own rows were written above.
  if (tid == 0) dev::mbar_arrive_expect(recv_mbar, (kHeads - heads_per) * kOPartStride * 4);
  cluster::mbar_wait_acquire(recv_mbar, 0);  // all partials of our heads have landed
  stamp(6);

  // Each of this block's heads once (warp hl, lane j = split): split j's weight
  // exp2(m_j - m) / L (L = the head's sum over the splits) in shared memory (the logit buffers
  // are free by now) and the head's LSE.
  float* const weight = s_part;  // [heads_per][kMaxSplits]
  if (warp < heads_per) {
    float m = neg_inf, l = 0.f;
    if (lane < splits) {
      const float2 ml = *reinterpret_cast<const float2*>(recv_o + (lane * heads_per + warp) * kOPartStride + kCkvDim);
      m = ml.x;
      l = ml.y;
    }
    float m_max = m;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) m_max = fmaxf(m_max, __shfl_xor_sync(0xffffffffu, m_max, off));
    const float w = m == neg_inf ? 0.f : dev::exp2_approx(m - m_max);  // empty split: weight 0
    float l_sum = w * l;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) l_sum += __shfl_xor_sync(0xffffffffu, l_sum, off);
    const float inv = l_sum > 0.f ? 1.f / l_sum : 0.f;
    if (lane < splits) weight[warp * kMaxSplits + lane] = w * inv;
    if (lane == 0) p.lse[row * kHeads + h0 + warp] = l_sum > 0.f ? m_max + log2f(l_sum) : neg_inf;
  }
  __syncthreads();  // weights visible
  stamp(13);
  // Then every output element is a short sum over the splits, its loads independent of each other.
  constexpr int kQuads = kCkvDim / 4;
  uint16_t* out = p.output + row * (kHeads * kCkvDim);
  for (int item = tid; item < heads_per * kQuads; item += kThreads) {
    const int hl = item / kQuads;
    const int d = 4 * (item % kQuads);
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
    for (int j = 0; j < splits; ++j) {
      const float wj = weight[hl * kMaxSplits + j];
      const float4 v = *reinterpret_cast<const float4*>(recv_o + (j * heads_per + hl) * kOPartStride + d);
      acc.x += wj * v.x;
      acc.y += wj * v.y;
      acc.z += wj * v.z;
      acc.w += wj * v.w;
    }
    if (item == tid) stamp(14);
    uint2 packed;
    packed.x = dev::pack_bf16x2(acc.x, acc.y);
    packed.y = dev::pack_bf16x2(acc.z, acc.w);
    *reinterpret_cast<uint2*>(out + (h0 + hl) * kCkvDim + d) = packed;
  }
  stamp(7);
  if (trace) trace[kTraceSlots - 1] = dev::global_ns();
}

}  // namespace dsa::cuda::attn
