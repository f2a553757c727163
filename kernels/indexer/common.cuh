// Device helpers shared by the indexer kernels: mbarriers, bulk (TMA 1D) copies, named barriers,
// block scans, and the monotone float -> uint32 key map used by the top-k selection.
// Every instruction here exists on sm_90 and sm_100 (bulk copies and mbarrier tx counts are sm_90+).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/shapes.hpp"

namespace dsa::cuda::idx {

// ---- Shapes --------------------------------------------------------------------------------
// Rows with seq_len <= kTopK skip scoring: every token is selected.
inline constexpr int kPageBytes = kIndexPageBytes;        // 8448: 64 x 128 e4m3, then 64 scales
inline constexpr int kPageFp8Bytes = kIndexPageFp8Bytes;  // 8192
inline constexpr int kQBytes = kIndexHeads * kIndexHeadDim;  // 8192 per row

__host__ __device__ constexpr int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

// floor(total * b / parts) without 64-bit division (b <= parts < 2^16): the start of part b of
// `total` items split evenly into `parts`.
__device__ __forceinline__ uint32_t split_point(uint32_t total, uint32_t b, uint32_t parts) {
  const uint32_t q = total / parts, r = total - q * parts;
  return q * b + (r * b) / parts;
}

// seq_len clamped to [0, cap] (cap: the launcher's bound from max_seq_len and the block table).
__device__ __forceinline__ int32_t clamp_len(int32_t len, int32_t cap) { return len < 0 ? 0 : (len > cap ? cap : len); }

// ---- Shared-memory addresses, mbarriers, bulk copies ----------------------------------------
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}

// Makes mbarrier initialisation visible to the async (bulk-copy) proxy.
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}

__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ bool mbar_try_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(smem_addr(bar)), "r"(parity)
      : "memory");
  return done != 0;
}

// Waits until the phase of `bar` with parity `parity` has completed. A fresh barrier counts its
// (virtual) previous phase, parity 1, as completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}

// A consumer thread's release of the ring slot it has read: every consumer thread arrives (the
// slot's empty barrier counts kSlotArrivals per consumer warp). One arrival per warp after
// __syncwarp would also order the lanes' reads, but compute-sanitizer's racecheck does not see
// that order and reports each slot refill as a hazard; per-thread arrivals measured no slower.
inline constexpr int kSlotArrivals = 32;
__device__ __forceinline__ void release_slot(uint64_t* empty) { mbar_arrive(empty); }

// Bulk copy global -> shared (this CTA), completing `bytes` of transaction count on `bar`.
// dst, src 16-byte aligned; bytes a multiple of 16.
__device__ __forceinline__ void bulk_copy_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
          smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
}

// Same, with an L2 eviction-priority hint (the K pages are streamed once).
__device__ __forceinline__ void bulk_copy_g2s_hint(void* dst, const void* src, uint32_t bytes, uint64_t* bar,
                                                   uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], "
      "%4;" ::"r"(smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
}

// *p = v when `pred` holds, as one predicated store (no branch).
__device__ __forceinline__ void st_global_if(float* p, float v, bool pred) {
  asm volatile(
      "{\n"
      ".reg .pred q;\n"
      "setp.ne.b32 q, %2, 0;\n"
      "@q st.global.f32 [%0], %1;\n"
      "}\n" ::"l"(__cvta_generic_to_global(p)),
      "f"(v), "r"(static_cast<int>(pred))
      : "memory");
}

__device__ __forceinline__ uint64_t l2_policy_evict_first() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// Barrier over `threads` threads (a multiple of 32) on hardware barrier `id` (1..15; 0 is
// __syncthreads).
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

// Orders this thread's generic-proxy shared-memory writes before later async-proxy reads
// (wgmma operands).
__device__ __forceinline__ void fence_proxy_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// ---- Diagnostics: where a grid's blocks spend their time ------------------------------------
// Per-block timeline slots (dsa-bench's probes): globaltimer nanoseconds (one clock for the
// whole GPU, unlike clock64) at entry, when the block's own work is done, at exit; its SM (written
// with the entry).
inline constexpr int kTimelineEntry = 0, kTimelineWorkDone = 1, kTimelineExit = 2, kTimelineSm = 3;
inline constexpr int kTimelineSlots = 4;

__device__ __forceinline__ void timeline_mark(unsigned long long* timeline, int slot) {
  if (timeline == nullptr || threadIdx.x != 0) return;
  unsigned long long* block = timeline + static_cast<int64_t>(blockIdx.x) * kTimelineSlots;
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  block[slot] = t;
  if (slot == kTimelineEntry) {
    uint32_t sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    block[kTimelineSm] = sm;
  }
}

// ---- Programmatic dependent launch (sm_90+) -------------------------------------------------
// Lets the next kernel of the stream launched with programmatic stream serialization start
// (its blocks wait in grid_dependency_wait until this grid has finished and flushed).
__device__ __forceinline__ void allow_dependent_launch() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
// Waits until the grids this one depends on have completed and their writes are visible; a no-op
// when the kernel was launched normally.
__device__ __forceinline__ void grid_dependency_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// ---- Loads ----------------------------------------------------------------------------------
__device__ __forceinline__ uint4 lds128(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr));
  return v;
}

__device__ __forceinline__ float lds_f32(uint32_t addr) {
  float v;
  asm volatile("ld.shared.f32 %0, [%1];" : "=f"(v) : "r"(addr));
  return v;
}

// Read-only global loads that bypass L1 allocation (inputs read once per block).
__device__ __forceinline__ uint4 ldg128(const void* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

// ---- Scans -----------------------------------------------------------------------------------
// Inclusive sum over the warp.
template <typename T>
__device__ __forceinline__ T warp_inclusive_sum(T v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    const T o = __shfl_up_sync(0xffffffffu, v, d);
    if (lane >= d) v += o;
  }
  return v;
}

// Exclusive prefix sum over the whole block (blockDim.x a multiple of 32, at most 1024).
// `scratch` holds 33 T in shared memory; returns this thread's exclusive prefix and sets
// `total`. Contains three __syncthreads (scratch is free again on return); every thread of
// the block must call it.
template <typename T>
__device__ __forceinline__ T block_exclusive_sum(T v, T* scratch, T& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const T inc = warp_inclusive_sum(v);
  if (lane == 31) scratch[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? scratch[lane] : T(0);
    const T winc = warp_inclusive_sum(w);
    scratch[lane] = winc - w;  // exclusive prefix of warp totals
    if (lane == 31) scratch[32] = winc;
  }
  __syncthreads();
  total = scratch[32];
  const T r = scratch[warp] + inc - v;
  __syncthreads();
  return r;
}

// ---- Keys ------------------------------------------------------------------------------------
// Monotone map float -> uint32: a > b (as floats, -0 < +0) iff key(a) > key(b).
__device__ __forceinline__ uint32_t float_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace dsa::cuda::idx
