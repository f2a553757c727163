// A row's blocks working together through global memory, for the top-k selection of the fused
// kernel when a row needs more blocks than a cluster gives (fused.cuh, "row groups"). The blocks
// of a call are co-resident (cooperative launch), so a block may wait for the others of its row.
//
// Each row has a small region of the caller's workspace: the row's first-digit histogram, the two
// low-digit histograms of the distributed resolution, the gathered candidates of the threshold
// bin, a counter, each block's counts for the emission, and one flag per block and phase. The
// call's nonce, new to every call (the launcher's), marks what is current, so nothing needs
// clearing between calls and neither a stale value of an earlier call nor garbage in the
// workspace passes for the current one:
//   - what the blocks add into (histograms, counter) is zeroed by the row's blocks during the
//     call, and each block announces a phase (zeroed, histogram added) by storing the nonce into
//     its flag (release, GPU scope) after a fence; the others wait for the flags (acquire);
//   - single values (a candidate key, a block's counts) travel as one 64-bit word with the
//     nonce's low half beside them: the reader polls the word until it carries the tag, with no
//     fence and no flag (a 64-bit store is seen whole or not at all).
#pragma once

#include <cstdint>

#include "kernels/indexer/common.cuh"

namespace dsa::cuda::idx {

inline constexpr int kMaxGroupBlocks = 16;  // blocks per row

// Phases: one flag per block each.
inline constexpr int kGroupZeroed = 0;   // the row's histograms and counter are zero
inline constexpr int kGroupTop = 1;      // first-digit histogram added
inline constexpr int kGroupLow0 = 2;     // low-digit histogram of pass 0 added (then pass 1)
inline constexpr int kGroupPhases = 4;

// The row's region, in 32-bit words (256-byte aligned rows).
struct GroupLayout {
  static constexpr int kTop = 0;                              // 4096
  static constexpr int kLow = kTop + 4096;                    // 2 x 1024
  static constexpr int kGather = kLow + 2 * 1024;             // 2048 tagged keys (uint64)
  static constexpr int kCtl = kGather + 2 * 2048;             // 8: [0] gather counter
  static constexpr int kCounts = kCtl + 8;                    // kMaxGroupBlocks tagged counts (uint64)
  static constexpr int kFlags = kCounts + 2 * kMaxGroupBlocks;  // kGroupPhases x kMaxGroupBlocks (uint64)
  static constexpr int kWords = (kFlags + 2 * kGroupPhases * kMaxGroupBlocks + 63) / 64 * 64;
  static_assert(kCtl % 4 == 0 && kFlags % 2 == 0, "16-byte histograms, 8-byte flags");
};
inline constexpr int64_t kGroupRowBytes = 4 * int64_t{GroupLayout::kWords};

struct RowGroup {
  uint32_t* top = nullptr;                 // 4096
  uint32_t* low = nullptr;                 // 2 x 1024
  unsigned long long* gather = nullptr;    // 2048 tagged keys
  uint32_t* ctl = nullptr;                 // 8
  unsigned long long* counts = nullptr;    // kMaxGroupBlocks tagged counts
  unsigned long long* flags = nullptr;     // kGroupPhases x kMaxGroupBlocks
  unsigned long long nonce = 0;
  uint32_t blocks = 0, rank = 0;           // blocks of the row, this block's rank among them
};

__device__ __forceinline__ RowGroup row_group_at(uint32_t* base, int64_t row, uint32_t blocks, uint32_t rank,
                                                 unsigned long long nonce) {
  uint32_t* w = base + row * GroupLayout::kWords;
  RowGroup g;
  g.top = w + GroupLayout::kTop;
  g.low = w + GroupLayout::kLow;
  g.gather = reinterpret_cast<unsigned long long*>(w + GroupLayout::kGather);
  g.ctl = w + GroupLayout::kCtl;
  g.counts = reinterpret_cast<unsigned long long*>(w + GroupLayout::kCounts);
  g.flags = reinterpret_cast<unsigned long long*>(w + GroupLayout::kFlags);
  g.nonce = nonce;
  g.blocks = blocks;
  g.rank = rank;
  return g;
}

// Announces `phase` for this block: its threads' earlier writes (ordered before this by a block
// barrier) are visible to a block that sees the flag. One thread.
__device__ __forceinline__ void group_announce(const RowGroup& g, int phase) {
  __threadfence();  // cumulative: the block's writes before the barrier that precedes this
  unsigned long long* f = g.flags + phase * kMaxGroupBlocks + g.rank;
  asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(f), "l"(g.nonce) : "memory");
}

// Waits until blocks [0, count) of the row have announced `phase`. The 32 lanes of one warp
// (converged); the caller's block barrier then orders the block's later reads after it. Reads of
// what the others wrote go through L2 (ldcg), never a stale L1 line.
__device__ __forceinline__ void group_wait(const RowGroup& g, int phase, uint32_t count) {
  const uint32_t lane = threadIdx.x & 31;
  const unsigned long long* f = g.flags + phase * kMaxGroupBlocks + lane;
  bool seen = lane >= count;
  while (!__all_sync(0xffffffffu, seen)) {
    if (!seen) {
      unsigned long long v;
      asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(f) : "memory");
      seen = v == g.nonce;
    }
  }
}

// Zeroes this block's share of what the row's blocks add into, announces kGroupZeroed, and waits
// until every block of the row has. The 32 lanes of one warp (converged).
__device__ __forceinline__ void group_zero_warp(const RowGroup& g) {
  const int lane = threadIdx.x & 31;
  for (int i = static_cast<int>(g.rank) * 32 + lane; i < 4096 + 2 * 1024; i += static_cast<int>(g.blocks) * 32)
    g.top[i] = 0;  // top and low are contiguous
  if (g.rank == 0 && lane < 8) g.ctl[lane] = 0;
  __syncwarp();
  if (lane == 0) group_announce(g, kGroupZeroed);
  __syncwarp();
  group_wait(g, kGroupZeroed, g.blocks);
}

// A 32-bit value and the call's tag in one 64-bit store (no fence needed: see the file comment).
__device__ __forceinline__ void group_put(unsigned long long* p, const RowGroup& g, uint32_t v) {
  const unsigned long long x = (static_cast<unsigned long long>(static_cast<uint32_t>(g.nonce)) << 32) | v;
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(x) : "memory");
}
// One load of a tagged word.
__device__ __forceinline__ unsigned long long group_load(const unsigned long long* p) {
  unsigned long long x;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(x) : "l"(p) : "memory");
  return x;
}
// x: a load of *p. Polls *p until it carries the call's tag; returns its value. (Loads of several
// words issued together, then settled one by one, take one round trip through L2, not one each.)
__device__ __forceinline__ uint32_t group_settle(const unsigned long long* p, const RowGroup& g, unsigned long long x) {
  const uint32_t tag = static_cast<uint32_t>(g.nonce);
  while (static_cast<uint32_t>(x >> 32) != tag) x = group_load(p);
  return static_cast<uint32_t>(x);
}
__device__ __forceinline__ uint32_t group_get(const unsigned long long* p, const RowGroup& g) {
  return group_settle(p, g, group_load(p));
}

// Adds this block's histogram `local` (`bins` words, a multiple of 4, in shared memory; complete
// and visible to the block) into the row's `sum` in global memory (zeroed behind kGroupZeroed),
// announces `phase`, waits until every block of the row has, and copies the row's sum into `dst`
// (shared memory, 16-byte aligned; may be `local`) through L2. Block-wide (NT threads; three
// block barriers, then dst is visible to the block).
template <int NT>
__device__ __forceinline__ void group_sum(const RowGroup& g, const uint32_t* local, uint32_t* sum, int bins, int phase,
                                          uint32_t* dst) {
  const int tid = threadIdx.x;
  for (int b = tid; b < bins; b += NT) {
    const uint32_t v = local[b];
    if (v != 0) atomicAdd(sum + b, v);
  }
  __syncthreads();
  if (tid == 0) group_announce(g, phase);
  if (tid < 32) group_wait(g, phase, g.blocks);
  __syncthreads();
  const uint4* s4 = reinterpret_cast<const uint4*>(sum);
  uint4* d4 = reinterpret_cast<uint4*>(dst);
  constexpr int kBatch = (4096 / 4 + NT - 1) / NT;  // up to 4096 bins: every thread's loads in one wave
  for (int i0 = 0; i0 < bins / 4; i0 += NT * kBatch) {
    uint4 v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = i0 + u * NT + tid;
      if (i < bins / 4) v[u] = __ldcg(s4 + i);
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = i0 + u * NT + tid;
      if (i < bins / 4) d4[i] = v[u];
    }
  }
  __syncthreads();
}

}  // namespace dsa::cuda::idx
