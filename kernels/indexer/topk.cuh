// Top-2048 selection of the indexer (SPEC §1.1 output): global token ids (page * 64 + offset) of
// the 2048 largest scores of each row, -1 padded. Rows with seq_len <= 2048 emit all their tokens.
//
// Deterministic: a row's output is a function of that row's inputs alone (the same row gives the
// same output in any call, whatever other rows share it and however many rows it has; the cluster
// size, which depends on the call's max_seq_len, changes nothing). The selected set is the keys
// above the 2048th largest key T plus, of the keys equal to T, those of the lowest positions s
// (token position in the row, 0..seq_len-1); the ids are written in ascending position order,
// then -1 padding (seq_len <= 2048: slot i holds position i). The SPEC allows any order and any
// tie-breaking: this is one fixed choice of them.
//
// One cluster of C blocks (C = 1..8) per row; block r of the cluster owns the contiguous chunk
// [r * chunk, (r + 1) * chunk) of the row, kept as uint32 keys in its shared memory (or re-read
// from the scores in global memory when a chunk does not fit: kSmemKeys = false). A key is the
// monotone uint32 image of the float. Radix select, most significant digit first:
//   1. while loading, each block histograms the top 12 bits of its keys (sign, exponent and 3
//      mantissa bits: 8 bins per binade); each block adds its histogram to every block's copy
//      of the row's through distributed shared memory, and every block finds the bin b* holding
//      the 2048th largest key in its own copy;
//   2. one pass over the chunk: the position bitmap of the keys above b* (keys in shared memory:
//      each 32-key word read by 1-8 lanes, whose bits are ORed by shuffles when more than one;
//      from global memory: four keys per thread, the word of 8 lanes ORed by shuffles); keys in
//      b* are compacted into a short candidate list (key, position);
//   3. the low 20 bits of the candidates are resolved in two 10-bit passes (gathered in every
//      block, each resolving the same threshold, or with histograms summed on the leader), giving
//      the exact threshold T and the number `rem` of keys equal to T the row takes. A pass stops
//      early when the threshold bin is taken whole (then no ties);
//   4. candidates above T set their bits in the selection bitmap, those equal to T in a tie
//      bitmap;
//   5. position-ordered compaction without atomics: one block scan of the per-thread popcounts
//      of both bitmaps (thread t owns a contiguous run of words), each block's totals sent to the
//      higher blocks through distributed shared memory, so each knows how many ids the lower write
//      and how many ties they take (ties go to the lowest positions); each thread then writes the
//      ids of its set bits, in position order, from its offset into a shared-memory stage, which
//      the block copies out coalesced.
// When b* holds more keys than the candidate list, steps 3 and 4 filter the whole chunk instead.
// With one block per row (C = 1) the cluster barriers are block barriers and nothing is merged.
// In the fused kernel a row's blocks may instead form a row group (up to 16 blocks, no cluster):
// the same steps, with the merges and exchanges through global memory (row_group.cuh).
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/cluster.cuh"
#include "kernels/indexer/common.cuh"
#include "kernels/indexer/row_group.cuh"

namespace dsa::cuda::idx {

inline constexpr int kTopkThreads = 1024;
inline constexpr int kTopBits = 12;                 // first digit: key bits [31:20]
inline constexpr int kTopBins = 1 << kTopBits;      // 4096
inline constexpr int kLowBits = 10;                 // then two digits of 10 bits
inline constexpr int kLowBins = 1 << kLowBits;      // 1024
inline constexpr int kCandCap = 2048;               // candidate list per block
inline constexpr int kKeyUnroll = 4;                // loads in flight per thread (scalar passes)
inline constexpr int kLoadUnroll = 4;               // float4 loads in flight per thread (key load)
inline constexpr int kQuadUnroll = 4;               // 4-key groups in flight per thread (classify)
inline constexpr int kTopkCheckpoints = 12;
inline constexpr int32_t kMaxTopkChunk = 1 << 20;  // keys one block may own (tie counts fit in 20 bits)

struct TopkArgs {
  const float* scores = nullptr;         // [rows, score_stride] (long rows only)
  int64_t score_stride = 0;
  const int32_t* seq_lens = nullptr;     // [rows]
  const int32_t* block_table = nullptr;  // [rows, bt_stride]
  int64_t bt_stride = 0;
  int32_t len_cap = 0;                   // seq_lens are clamped to [0, len_cap]
  int32_t chunk_cap = 0;                 // most keys one block owns (multiple of 64)
  int32_t* out = nullptr;                // [rows, 2048]
  long long* debug = nullptr;            // diagnostic: [4 blocks][kTopkCheckpoints] clock64 stamps
  int32_t variant = 0;                   // kTopkGather (default) or kTopkDistributed
};

// Top-k variants (both give the same output): kTopkGather gathers the threshold bin's keys in
// every block, which resolves them alone, once they are few (<= kCandCap for the whole row);
// kTopkDistributed resolves them with histograms summed over the cluster. kTopkGather falls back
// to the distributed resolution when the threshold bin holds more keys.
inline constexpr int32_t kTopkGather = 0;
inline constexpr int32_t kTopkDistributed = 1;

// Shared-memory layout in uint32 words.
struct TopkLayout {
  static constexpr int kRowTop = 0;                          // 4096: the row's first-digit histogram (clusters)
  static constexpr int kLowHist = kRowTop + kTopBins;        // 2 x 1024: low-digit histograms (see TopkSmem)
  static constexpr int kCtl = kLowHist + 2 * kLowBins;     // 8: [2] gather counter
  static constexpr int kHist = kCtl + 8;                     // 4096: this block's histogram
  static constexpr int kState = kHist + kTopBins;            // 8
  static constexpr int kScratch = kState + 8;                // 72: scan scratch (33 x uint64)
  static constexpr int kXchg = kScratch + 72;                // 16: [2 r] selected-above, [2 r + 1] ties of block r
  static constexpr int kGatherOff = kXchg + 16;              // 8: [p] this block's offset in block p's gathered list
  static constexpr int kXbar = kGatherOff + 8;               // 8: [0, 2) mbarrier of the counts of the lower blocks
  static constexpr int kCandKey = kXbar + 8;                 // kCandCap
  static_assert(kXbar % 2 == 0, "the mbarrier must be 8-byte aligned");
  static constexpr int kCandPos = kCandKey + kCandCap;       // kCandCap
  static constexpr int kGatherKey = kCandPos + kCandCap;     // kCandCap: the row's candidates (gathered)
  static constexpr int kPages = kGatherKey + kCandCap;       // page ids of the chunk
  __host__ __device__ static constexpr int pages_words(int chunk_cap) { return ((chunk_cap / 64) + 4) & ~3; }
  __host__ __device__ static constexpr int bits_words(int chunk_cap) { return ((chunk_cap / 32) + 3) & ~3; }
  // Position bitmaps of the chunk: keys selected above the threshold, keys equal to it.
  __host__ __device__ static constexpr int sel(int chunk_cap) { return kPages + pages_words(chunk_cap); }
  __host__ __device__ static constexpr int tie(int chunk_cap) { return sel(chunk_cap) + bits_words(chunk_cap); }
  __host__ __device__ static constexpr int keys(int chunk_cap) { return tie(chunk_cap) + bits_words(chunk_cap); }
};

// Keys of each block's chunk of a row of `len` tokens split over a cluster of `csize` blocks:
// an even share rounded up to whole pages. Block r owns [r * chunk, (r + 1) * chunk) of the row;
// the launcher sizes shared memory with it (len = the call's cap) and both selection kernels (the
// top-k and the fused kernel) split their rows with it, so they select from the same chunks.
__host__ __device__ inline int32_t topk_chunk(int32_t len, int csize) {
  return static_cast<int32_t>(ceil_div64(ceil_div64(len, csize), kPageSize) * kPageSize);
}

__host__ __device__ inline int64_t topk_smem_bytes(bool smem_keys, int chunk_cap) {
  return 4 * (static_cast<int64_t>(TopkLayout::keys(chunk_cap)) + (smem_keys ? chunk_cap : 0));
}

// ---- Cluster primitives (PTX; sm_90+) ---------------------------------------------------------
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}
__device__ __forceinline__ uint32_t cluster_size() {
  uint32_t n;
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
  return n;
}
// All threads of all blocks of the cluster; release/acquire at cluster scope.
__device__ __forceinline__ void cluster_sync() {
  cluster::arrive_release();
  cluster::wait_acquire();
}
// Generic address of the same shared-memory variable in block `rank` of the cluster.
template <typename T>
__device__ __forceinline__ T* map_to_rank(T* p, uint32_t rank) {
  uint64_t out;
  asm volatile("mapa.u64 %0, %1, %2;" : "=l"(out) : "l"(reinterpret_cast<uint64_t>(p)), "r"(rank));
  return reinterpret_cast<T*>(out);
}

// Calls f(i, key) for every key i in [0, n) owned by this thread, kKeyUnroll loads in flight.
// Keys come from shared memory (kSmemKeys) or from the float scores in global memory. The order
// of the calls within a thread is the same on every traversal.
template <int NT, bool kSmemKeys, typename F>
__device__ __forceinline__ void for_each_key(const uint32_t* keys, const float* src, int n, F&& f) {
  for (int base = 0; base < n; base += NT * kKeyUnroll) {
    uint32_t k[kKeyUnroll];
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      const int i = base + u * NT + static_cast<int>(threadIdx.x);
      if constexpr (kSmemKeys) {
        k[u] = i < n ? keys[i] : 0u;
      } else {
        k[u] = i < n ? float_key(__ldg(src + i)) : 0u;
      }
    }
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      const int i = base + u * NT + static_cast<int>(threadIdx.x);
      if (i < n) f(i, k[u]);
    }
  }
}

// Counting down from v[N-1] with `above` keys already above: the index c at which the count
// first reaches rem (above + v[c] >= rem); `above` becomes the keys above entry c. Fully
// unrolled over a register array (no local memory).
template <int N>
__device__ __forceinline__ int crossing_from_top(const uint32_t (&v)[N], uint32_t rem, uint32_t& above) {
  int at = 0;
  bool found = false;
#pragma unroll
  for (int c = N - 1; c >= 0; --c) {
    if (!found && above + v[c] >= rem) {
      at = c;
      found = true;
    }
    if (!found) above += v[c];
  }
  return at;
}

// Finds the bin b of the kTopBins-bin first-digit histogram with
// above(b) < rem <= above(b) + hist[b], above(b) = keys in bins > b, and writes b and above(b)
// to state[0], state[1]. The bins form 32 segments of 128; segment j is summed by warp j % W
// (W = NT / 32 warps), lane l reading bins 4 l .. 4 l + 3 of it (one 16-byte load; hist
// 16-byte aligned, local or distributed shared memory); the segment totals go through scratch
// (32 words), then warp 0 finds the segment holding the crossing and the bin within it.
// Block-wide (NT threads); two barriers; state is read after it.
template <int NT>
__device__ __forceinline__ void find_top_bin(const uint32_t* hist, uint32_t rem, uint32_t* state, uint32_t* scratch) {
  static_assert(NT % 32 == 0 && NT <= 1024 && 32 * 32 * 4 == kTopBins, "32 segments of 32 x 4 bins");
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const uint4* h4 = reinterpret_cast<const uint4*>(hist);
  for (int seg = warp; seg < 32; seg += NT / 32) {
    const uint4 x = h4[seg * 32 + lane];
    const uint32_t wsum = __reduce_add_sync(0xffffffffu, x.x + x.y + x.z + x.w);
    if (lane == 0) scratch[seg] = wsum;
  }
  __syncthreads();
  if (warp == 0) {
    const uint32_t s = scratch[lane];
    const uint32_t incl = warp_inclusive_sum(s);
    const uint32_t total = __shfl_sync(0xffffffffu, incl, 31);
    const uint32_t above_w = total - incl;  // keys in the bins of higher warps
    const uint32_t hit = __ballot_sync(0xffffffffu, above_w < rem && above_w + s >= rem);
    const int ws = __ffs(hit) - 1;  // exactly one warp holds the crossing (rem <= total)
    const uint32_t base = __shfl_sync(0xffffffffu, above_w, ws);
    const uint4 y = h4[ws * 32 + lane];
    const uint32_t m = y.x + y.y + y.z + y.w;
    const uint32_t incl2 = warp_inclusive_sum(m);
    uint32_t above = base + __shfl_sync(0xffffffffu, incl2, 31) - incl2;  // + keys of higher lanes of ws
    if (above < rem && above + m >= rem) {
      const uint32_t v[4] = {y.x, y.y, y.z, y.w};
      const int e = crossing_from_top(v, rem, above);
      state[0] = static_cast<uint32_t>(4 * (32 * ws + lane) + e);
      state[1] = above;
    }
  }
  __syncthreads();
}

// One warp finds the bin b of a kLowBins-bin histogram with above(b) < rem <= above(b) + hist[b]
// (above(b) = keys in bins > b) and writes b and above(b) to state[0], state[1]. Lane l owns bins
// [32 l, 32 l + 32), read as eight 16-byte loads (hist: 16-byte aligned, local or distributed
// shared memory); the lane holding the crossing re-reads the one load that holds it. Called by
// the 32 lanes of one warp, no block barrier.
__device__ __forceinline__ void find_low_bin_warp(const uint32_t* hist, uint32_t rem, uint32_t* state) {
  const int lane = threadIdx.x & 31;
  const uint4* h4 = reinterpret_cast<const uint4*>(hist) + lane * 8;
  uint32_t part[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint4 x = h4[i];
    part[i] = x.x + x.y + x.z + x.w;
  }
  uint32_t sum = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) sum += part[i];
  const uint32_t incl = warp_inclusive_sum(sum);
  const uint32_t total = __shfl_sync(0xffffffffu, incl, 31);
  uint32_t above = total - incl;  // keys in the bins of higher lanes
  if (above < rem && above + sum >= rem) {
    // The load i whose 4 bins hold the crossing, then the bin e among them.
    const int i = crossing_from_top(part, rem, above);
    const uint4 x = h4[i];
    const uint32_t v[4] = {x.x, x.y, x.z, x.w};
    const int e = crossing_from_top(v, rem, above);
    state[0] = static_cast<uint32_t>(32 * lane + 4 * i + e);
    state[1] = above;
  }
}

// After the histogram of one low digit (kLowBins bins of the key bits at `shift`, among keys
// matching prefix/mask): fixes that digit of the threshold into prefix and mask, counts the
// keys above its bin out of rem, sets in_bin to the keys in its bin, and returns whether that bin
// is then taken whole. Block-wide: warp 0 finds the bin, then one barrier; state[0..1] and hist
// are read after it (state is written again only after the caller's next barrier).
__device__ __forceinline__ bool take_low_digit(const uint32_t* hist, int shift, uint32_t& prefix, uint32_t& mask,
                                               int32_t& rem, uint32_t& in_bin, uint32_t* state) {
  if (threadIdx.x < 32) find_low_bin_warp(hist, static_cast<uint32_t>(rem), state);
  __syncthreads();
  const uint32_t b = state[0];
  in_bin = hist[b];
  prefix |= b << shift;
  mask |= static_cast<uint32_t>(kLowBins - 1) << shift;
  rem -= static_cast<int32_t>(state[1]);
  return in_bin == static_cast<uint32_t>(rem);
}

// The exact threshold of the selection: the keys selected are those above `prefix` (at or above
// it when `whole`) and, unless `whole`, the `rem` lowest-position keys of the row's `ties` keys
// equal to it (0 when `whole`). So the row has kTopK - rem keys above it.
struct TopkThreshold {
  uint32_t prefix;
  bool whole;
  int32_t rem;
  int32_t ties;
};

// One block resolves the low 20 bits of the `count` keys of first-digit bin b* in gkey (all of
// the row's keys in b*; any order): two 10-bit passes, stopping early when the threshold bin is
// taken whole. `rem`: how many of them the row takes. `low`: two zeroed kLowBins histograms (one
// per pass, so no pass waits for a clear). Block-wide (contains barriers: two per pass).
template <int NT>
__device__ __forceinline__ TopkThreshold resolve_gathered(const uint32_t* gkey, int count, uint32_t bstar, int32_t rem,
                                                          uint32_t* low, uint32_t* state) {
  const int tid = threadIdx.x;
  uint32_t prefix = bstar << 20, mask = 0xFFF00000u, in_bin = 0;
  bool whole = false;
  for (int pass = 0; pass < 2 && !whole; ++pass) {
    const int shift = pass == 0 ? kLowBits : 0;
    uint32_t* hist = low + pass * kLowBins;
    for (int j = tid; j < count; j += NT) {
      const uint32_t k = gkey[j];
      if ((k & mask) == prefix) atomicAdd(hist + ((k >> shift) & (kLowBins - 1)), 1u);
    }
    __syncthreads();
    whole = take_low_digit(hist, shift, prefix, mask, rem, in_bin, state);
  }
  return TopkThreshold{prefix, whole, whole ? 0 : rem, whole ? 0 : static_cast<int32_t>(in_bin)};
}

// This block's shared arrays of the selection. Every block of a cluster has them at the same
// offsets, so a peer's copy is map_to_rank of the local pointer.
struct TopkSmem {
  uint32_t* row_top;     // kTopBins: the row's first-digit histogram, summed over the cluster (every block's copy)
  uint32_t* low_hist;    // 2 x kLowBins: low-digit histograms (the gathered resolution's, every block's own;
                         // the distributed one sums into the leader's)
  uint32_t* ctl;         // 8: [2] counter of the gathered candidates
  uint32_t* hist;        // kTopBins: this block's first-digit histogram
  uint32_t* state;       // 8
  uint32_t* scratch;     // 72: scan scratch (33 x uint64)
  uint32_t* xchg;        // 16: [2 r] selected-above, [2 r + 1] ties of block r (a lower block)
  uint32_t* gather_off;  // 8: [p] where this block's candidates go in block p's gather list
  uint64_t* xbar;        // mbarrier: the lower blocks' counts have landed in xchg
  uint32_t* cand_key;    // kCandCap
  uint32_t* cand_pos;    // kCandCap
  uint32_t* gather_key;  // kCandCap: the row's candidates (every block's copy)
  int32_t* pages;        // TopkLayout::pages_words(chunk_cap): page ids of the chunk
  uint32_t* sel_bits;    // TopkLayout::bits_words(chunk_cap): keys selected above the threshold
  uint32_t* tie_bits;    // the same: keys equal to it
  uint32_t* keys;        // chunk_cap keys (when they live in shared memory)
};

// The top-k kernel's layout (TopkLayout), from the base of its dynamic shared memory.
__device__ __forceinline__ TopkSmem topk_smem_at(uint32_t* sm, int chunk_cap) {
  TopkSmem s;
  s.row_top = sm + TopkLayout::kRowTop;
  s.low_hist = sm + TopkLayout::kLowHist;
  s.ctl = sm + TopkLayout::kCtl;
  s.hist = sm + TopkLayout::kHist;
  s.state = sm + TopkLayout::kState;
  s.scratch = sm + TopkLayout::kScratch;
  s.xchg = sm + TopkLayout::kXchg;
  s.gather_off = sm + TopkLayout::kGatherOff;
  s.xbar = reinterpret_cast<uint64_t*>(sm + TopkLayout::kXbar);  // 8-byte aligned: kXbar is even, sm 16-byte aligned
  s.cand_key = sm + TopkLayout::kCandKey;
  s.cand_pos = sm + TopkLayout::kCandPos;
  s.gather_key = sm + TopkLayout::kGatherKey;
  s.pages = reinterpret_cast<int32_t*>(sm + TopkLayout::kPages);
  s.sel_bits = sm + TopkLayout::sel(chunk_cap);
  s.tie_bits = sm + TopkLayout::tie(chunk_cap);
  s.keys = sm + TopkLayout::keys(chunk_cap);
  return s;
}

// In a cluster: zeroes this block's copy of the row's first-digit histogram, then arrives on the
// cluster barrier whose wait starts topk_select (the other blocks add into the copy after it).
// Called once the block's threads are past their last use of the copy's memory, possibly long
// before the selection (the fused kernel: at its start, before scoring). Block-wide (NT threads).
template <int NT>
__device__ __forceinline__ void topk_start_row_top(const TopkSmem& s, uint32_t csize) {
  if (csize > 1) {
    for (int i = threadIdx.x; i < kTopBins; i += NT) s.row_top[i] = 0;
    cluster::arrive_release();  // each thread's zeroes before the other blocks' additions
  }
}

// Zeroes what the selection accumulates into, except `hist` (its owner fills it) and the row's
// first-digit histogram (topk_start_row_top): this block's low-digit histograms and counters,
// its tie bitmap (`words` words) and state; in a cluster (csize > 1: the cluster's size, 1 for a
// row group), initialises the mbarrier on which the lower blocks' counts arrive (8 bytes from
// each: its expected bytes are set here, except in the last block, which receives none).
// Block-wide (NT threads), no barrier; the cluster barrier after the histogram merge publishes
// all of it (no other block touches these before it).
template <int NT>
__device__ __forceinline__ void topk_clear(const TopkSmem& s, uint32_t rank, uint32_t csize, int words) {
  const int tid = threadIdx.x;
  for (int i = tid; i < 2 * kLowBins; i += NT) s.low_hist[i] = 0;
  if (tid < 8) s.ctl[tid] = 0;
  for (int i = tid; i < words; i += NT) s.tie_bits[i] = 0;
  if (tid < 8) s.state[tid] = 0;
  if (csize > 1 && tid == 0) {
    mbar_init(s.xbar, 1);
    mbar_init_fence();
    if (rank > 0 && rank + 1 < csize) mbar_arrive_expect_tx(s.xbar, 8u * rank);  // not the last block: see topk_select
  }
}

// One block's part of a row's selection: its chunk of the row.
struct TopkChunk {
  int32_t n = 0;               // keys of this block's chunk
  const float* src = nullptr;  // the chunk's scores in global memory (keys not in shared memory)
  int32_t* out_row = nullptr;  // the row's 2048 output slots
  uint32_t csize = 1, rank = 0;  // blocks of the row (a cluster's, or a row group's), this block's rank
  int32_t variant = kTopkGather;
  const RowGroup* group = nullptr;  // a row group (global memory) instead of a cluster when csize > 1
};

// Steps 1 (from the cluster merge of the histograms) to 5 of the selection, by the NT threads of
// every block of the row's cluster. On entry: hist holds the block's first-digit histogram of
// its chunk, keys the chunk (kSmemKeys), pages the chunk's page ids, topk_clear has run and, in
// a cluster, topk_start_row_top (whose barrier this waits for; a block barrier when alone); in a
// row group, the row's group arrays zeroed and that seen by the block (group_zero_warp, then a
// block barrier). stamp(k) records phase k (3..8).
// kGrouped: the row's blocks are a row group (r.group), not a cluster (a separate instantiation,
// so that the cluster form's code is what it was without row groups).
template <int NT, bool kSmemKeys, bool kGrouped = false, typename Stamp>
__device__ __forceinline__ void topk_select(const TopkSmem& s, const TopkChunk& r, Stamp&& stamp) {
  const int tid = threadIdx.x, lane = tid & 31;
  const uint32_t csize = r.csize, rank = r.rank;
  const RowGroup* group = r.group;
  constexpr bool grouped = kGrouped;
  const bool clustered = csize > 1 && !grouped;
  const int32_t n = r.n;
  const int32_t words = (n + 31) >> 5;  // bitmap words of the chunk
  const float* src = r.src;
  int32_t* out_row = r.out_row;
  uint32_t* hist = s.hist;
  uint32_t* state = s.state;
  uint32_t* scratch = s.scratch;
  uint32_t* cand_key = s.cand_key;
  uint32_t* cand_pos = s.cand_pos;
  const int32_t* pages = s.pages;
  uint32_t* sel_bits = s.sel_bits;
  uint32_t* tie_bits = s.tie_bits;
  const uint32_t* keys = s.keys;
  (void)keys;
  (void)src;
  // The row's first-digit histogram: every block of a cluster sums its own copy (this block's
  // histogram when alone). The leader's low-digit histograms (for the distributed resolution).
  uint32_t* row_top = (clustered || grouped) ? s.row_top : hist;
  uint32_t* leader_low = clustered ? map_to_rank(s.low_hist, 0) : hist;

  if (clustered) {
    // Every block adds its histogram to every block's copy of the row's, so that each finds the
    // threshold bin in its own shared memory: with one copy in the leader, the other blocks'
    // reads of it took up to 3.5 us at 8 blocks per row against 0.7 us for the leader's own.
    // Every block's copy is zeroed. (Split from the block's own zeroing, so that a block that
    // finishes its chunk later delays the others once, at the barrier after the merge, rather
    // than at two barriers.) The block barrier first: this block's histogram is complete (the
    // cluster barrier's arrival came before it was built, so its wait does not order that).
    __syncthreads();
    cluster::wait_acquire();
    const uint32_t row_top_addr = smem_addr(s.row_top);
    for (int b = tid; b < kTopBins; b += NT) {
      const uint32_t v = hist[b];
      if (v != 0) {
        atomicAdd(s.row_top + b, v);  // its own first, by a shared-memory atomic
        for (uint32_t p = 1; p < csize; ++p) {
          const uint32_t to = p + rank < csize ? p + rank : p + rank - csize;
          cluster::red_add_u32(cluster::mapa_shared(row_top_addr, to) + 4u * static_cast<uint32_t>(b), v);
        }
      }
    }
    cluster_sync();  // the row's histogram in every block's copy; topk_clear's arrays visible to the cluster
  } else if (grouped) {
    // The row's histogram in global memory (zeroed by the row's producer warps during scoring),
    // copied back into row_top.
    __syncthreads();
    group_sum<NT>(*group, hist, group->top, kTopBins, kGroupTop, s.row_top);
  } else {
    __syncthreads();
  }
  stamp(3);

  // The bin b* of the first digit, and whether it is taken whole.
  find_top_bin<NT>(row_top, kTopK, state, scratch);
  const uint32_t bstar = state[0];
  int32_t rem = kTopK - static_cast<int32_t>(state[1]);
  const uint32_t row_cands = row_top[bstar];  // keys of the row in b*
  const bool whole_top = row_cands == static_cast<uint32_t>(rem);
  stamp(4);

  // 2. One pass over the chunk: the bitmap of the keys above b* (all of b* when it is taken
  // whole), and the keys in b* compacted into the candidate list (any order: only their
  // multiset and positions matter). Bits past the chunk's end are 0; the words past it are
  // never read.
  const uint32_t local_cands = whole_top ? 0u : hist[bstar];
  const bool compact = local_cands <= static_cast<uint32_t>(kCandCap);
  // Few keys in b* for the whole row: every block gathers all of them (step 3).
  const bool gathered = !whole_top && r.variant == kTopkGather && row_cands <= static_cast<uint32_t>(kCandCap);
  // A row group's candidates go to the row's list at an offset from its counter: reserved now by
  // the last thread (which has no classify work unless the chunk has about NT words), so that the
  // round trip overlaps classify.
  if constexpr (grouped) {
    if (gathered && tid == NT - 1) state[6] = local_cands ? atomicAdd(group->ctl, local_cands) : 0u;
  }
  // Calls f(i, valid, key) for every position i of the chunk, all lanes of every warp
  // together (for ballots); invalid past the chunk's end. (Step 4 when b* is not compacted.)
  auto for_each_word = [&](auto&& f) {
    for (int base = 0; base < n; base += NT * kKeyUnroll) {
      uint32_t k[kKeyUnroll];
#pragma unroll
      for (int u = 0; u < kKeyUnroll; ++u) {
        const int i = base + u * NT + tid;
        if constexpr (kSmemKeys) {
          k[u] = i < n ? keys[i] : 0u;
        } else {
          k[u] = i < n ? float_key(__ldg(src + i)) : 0u;
        }
      }
#pragma unroll
      for (int u = 0; u < kKeyUnroll; ++u) {
        const int i = base + u * NT + tid;
        f(i, i < n, k[u]);
      }
    }
  };
  const int thr_bin = whole_top ? static_cast<int>(bstar) - 1 : static_cast<int>(bstar);  // taken: bin > thr_bin
  const int cand_bin = (whole_top || !compact) ? -1 : static_cast<int>(bstar);             // listed: bin == cand_bin
  // The warp's candidates of one round (`cm`: this thread's candidate bits, `pos_of(bit)` the
  // position of a bit): one slot reservation for all of them, then a loop over the set bits
  // (usually 0-2 per thread) rather than an unrolled test of every key, which every lane would run
  // whenever one lane had a candidate. The key is read again by position (registers cannot be
  // indexed at run time). Called by every lane of the warp.
  auto list_candidates = [&](uint32_t cm, auto&& pos_of) {
    const uint32_t ncand = static_cast<uint32_t>(__popc(cm));
    if (!__any_sync(0xffffffffu, ncand != 0)) return;
    const uint32_t incl = warp_inclusive_sum(ncand);
    uint32_t c = 0;
    if (lane == 31) c = atomicAdd(state + 5, incl);
    c = __shfl_sync(0xffffffffu, c, 31) + incl - ncand;
    while (cm != 0u) {
      const int bit = __ffs(cm) - 1;
      cm &= cm - 1u;
      const int i = pos_of(bit);
      if constexpr (kSmemKeys) {
        cand_key[c] = keys[i];
      } else {
        cand_key[c] = float_key(__ldg(src + i));
      }
      cand_pos[c] = static_cast<uint32_t>(i);
      ++c;
    }
  };
  if constexpr (kSmemKeys) {
    // Each bitmap word (32 consecutive keys) is read by kWays consecutive lanes, each taking
    // 8 / kWays of its eight 16-byte columns. kWays (8, 4, 2 or 1) is the largest with which one
    // round of the block covers every word, so that short chunks still spread over the threads;
    // long ones take one word per thread and no shuffle (16K keys, 416 threads: classify 2.0 us
    // against 2.5-2.7 with four keys per thread and three shuffles per word). The lanes of a
    // load phase start at different columns of their 128-byte rows: no bank conflicts.
    // key >= lo <=> bin > thr_bin (none when thr_bin is the top bin). When listing, cand_bin ==
    // thr_bin, so bin == cand_bin <=> key >= cbase and not key >= lo (or the top bin): the same
    // packed compare as for lo, cheaper than testing key - cbase < 2^20 per key.
    const bool none_above = thr_bin >= kTopBins - 1;
    const uint32_t lo = none_above ? 0u : static_cast<uint32_t>(thr_bin + 1) << 20;
    const bool listing = cand_bin >= 0;
    const uint32_t cbase = listing ? static_cast<uint32_t>(cand_bin) << 20 : 0u;
    auto classify_words = [&](auto ways) {
      constexpr int kWays = decltype(ways)::value;
      constexpr int kCols = 8 / kWays;  // 16-byte loads per thread and word
      const int items = words * kWays;
      for (int base = 0; base < items; base += NT) {
        if (base + (tid & ~31) >= items) break;  // warp-uniform: no word of this warp left
        const int item = base + tid;
        const int w = item / kWays, part = item % kWays;
        uint32_t sel = 0, cm = 0;
        if (item < items) {
          const uint32_t* kw = keys + 32 * w;  // within chunk_cap (a multiple of 64)
          const int rot = (lane / kWays) % kCols;
#pragma unroll
          for (int j = 0; j < kCols; ++j) {
            const int c = kCols * part + (j + rot) % kCols;
            const uint4 k = *reinterpret_cast<const uint4*>(kw + 4 * c);
            const uint32_t ns = static_cast<uint32_t>(k.x >= lo) | (static_cast<uint32_t>(k.y >= lo) << 1) |
                                (static_cast<uint32_t>(k.z >= lo) << 2) | (static_cast<uint32_t>(k.w >= lo) << 3);
            sel |= ns << (4 * c);
            if (listing) {
              const uint32_t ng = static_cast<uint32_t>(k.x >= cbase) | (static_cast<uint32_t>(k.y >= cbase) << 1) |
                                  (static_cast<uint32_t>(k.z >= cbase) << 2) | (static_cast<uint32_t>(k.w >= cbase) << 3);
              cm |= ng << (4 * c);
            }
          }
          const int left = n - 32 * w;  // positions of this word inside the chunk (>= 1)
          const uint32_t valid = left >= 32 ? 0xFFFFFFFFu : (1u << left) - 1u;
          // In b* <=> at or above its base and (b* the top bin, or) not above it.
          cm &= (none_above ? 0xFFFFFFFFu : ~sel) & valid;
          sel = none_above ? 0u : sel & valid;
        }
#pragma unroll
        for (int o = 1; o < kWays; o <<= 1) sel |= __shfl_xor_sync(0xffffffffu, sel, o);
        if (item < items && part == 0) sel_bits[w] = sel;
        if (listing) list_candidates(cm, [w](int bit) { return 32 * w + bit; });
      }
    };
    if (words * 8 <= NT) {
      classify_words(std::integral_constant<int, 8>{});
    } else if (words * 4 <= NT) {
      classify_words(std::integral_constant<int, 4>{});
    } else if (words * 2 <= NT) {
      classify_words(std::integral_constant<int, 2>{});
    } else {
      classify_words(std::integral_constant<int, 1>{});
    }
  } else {
    // Keys read from global memory: four consecutive keys per thread (one 16-byte load, lanes
    // coalesced); lane l of a warp holds positions 4 (32 w + l) .. + 3 of its 128, i.e. bits
    // 4 (l % 8) .. + 3 of bitmap word 4 w + l / 8; the eight lanes of a word OR their nibbles
    // together (three shuffles) and the first stores it.
    const int nq = (n + 3) >> 2;  // 4-key groups of the chunk (the last may run past its end)
    const int shift = (lane & 7) * 4;
    const float4* src4 = reinterpret_cast<const float4*>(src);  // 256-byte aligned (see the load)
    for (int base = 0; base < nq; base += NT * kQuadUnroll) {
      uint4 k4[kQuadUnroll];
#pragma unroll
      for (int u = 0; u < kQuadUnroll; ++u) {
        const int q = base + u * NT + tid;
        k4[u] = make_uint4(0u, 0u, 0u, 0u);
        if (base + u * NT < nq && q < nq) {
          const float4 f = __ldg(src4 + q);  // within the row's stride (a multiple of 64)
          k4[u] = make_uint4(float_key(f.x), float_key(f.y), float_key(f.z), float_key(f.w));
        }
      }
      uint32_t cms[kQuadUnroll] = {};  // candidate bits of each group
#pragma unroll
      for (int u = 0; u < kQuadUnroll; ++u) {
        if (base + u * NT >= nq) break;  // no group of the block left (uniform: shuffles stay converged)
        const int q = base + u * NT + tid;
        const uint32_t kk[4] = {k4[u].x, k4[u].y, k4[u].z, k4[u].w};
        uint32_t sel = 0, cm = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int bin = static_cast<int>(kk[j] >> 20);
          sel |= static_cast<uint32_t>(bin > thr_bin) << j;
          cm |= static_cast<uint32_t>(bin == cand_bin) << j;
        }
        const int left = n - 4 * q;  // positions of this group inside the chunk
        const uint32_t valid = left >= 4 ? 0xFu : (left <= 0 ? 0u : (1u << left) - 1u);
        sel &= valid;
        cms[u] = cm & valid;
        uint32_t word = sel << shift;
        word |= __shfl_xor_sync(0xffffffffu, word, 1);
        word |= __shfl_xor_sync(0xffffffffu, word, 2);
        word |= __shfl_xor_sync(0xffffffffu, word, 4);
        if ((lane & 7) == 0 && q < nq) sel_bits[q >> 3] = word;
      }
      uint32_t m = 0;
#pragma unroll
      for (int u = 0; u < kQuadUnroll; ++u) m |= cms[u] << (4 * u);
      list_candidates(m, [base, tid](int bit) { return 4 * (base + (bit >> 2) * NT + tid) + (bit & 3); });
    }
  }
  __syncthreads();
  stamp(5);

  // 3. The threshold within b*.
  TopkThreshold th{bstar << 20, true, 0, 0};
  if (whole_top) {
    // b* taken whole: nothing to resolve.
  } else if (gathered) {
    // Few keys in b* for the whole row: every block gathers all of them and resolves the same
    // threshold itself (the resolution depends only on their multiset). Before, the leader alone
    // gathered and resolved them and sent the threshold back: one more cluster barrier, which
    // every block waited on. Each block's candidates go to every block, at an offset taken from
    // that block's counter.
    if (grouped) {
      // Each key tagged with the call (group_put): the readers poll each slot of the row's list
      // until it is current, with no fence and no flag.
      const uint32_t off = state[6];
      for (uint32_t j = tid; j < local_cands; j += NT) group_put(group->gather + off + j, *group, cand_key[j]);
      constexpr int kBatch = (kCandCap + NT - 1) / NT;  // the row's list in one wave of loads
      for (uint32_t base = 0; base < row_cands; base += NT * kBatch) {
        unsigned long long x[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const uint32_t j = base + u * NT + tid;
          x[u] = j < row_cands ? group_load(group->gather + j) : 0ull;
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const uint32_t j = base + u * NT + tid;
          if (j < row_cands) s.gather_key[j] = group_settle(group->gather + j, *group, x[u]);
        }
      }
      __syncthreads();
      th = resolve_gathered<NT>(s.gather_key, static_cast<int>(row_cands), bstar, rem, s.low_hist, state);
    } else if (csize == 2) {
      // Two blocks: block 0's candidates first, then block 1's, in both lists. Block 1's offset
      // is the row's count less its own: no counter to reserve from, no block barrier.
      const uint32_t off = rank == 0 ? 0u : row_cands - local_cands;
      const uint32_t other = cluster::mapa_shared(smem_addr(s.gather_key + off), rank ^ 1u);
      for (uint32_t j = tid; j < local_cands; j += NT) {
        const uint32_t k = cand_key[j];
        s.gather_key[off + j] = k;
        cluster::st_u32(other + 4u * j, k);
      }
      cluster_sync();  // both blocks hold every candidate of the row
      th = resolve_gathered<NT>(s.gather_key, static_cast<int>(row_cands), bstar, rem, s.low_hist, state);
    } else if (clustered) {
      if (tid < static_cast<int>(csize)) {
        const uint32_t p = static_cast<uint32_t>(tid);
        s.gather_off[p] = local_cands ? atomicAdd((p == rank ? s.ctl : map_to_rank(s.ctl, p)) + 2, local_cands) : 0u;
      }
      __syncthreads();
      for (uint32_t j = tid; j < local_cands; j += NT) {
        const uint32_t k = cand_key[j];
        for (uint32_t p = 0; p < csize; ++p)
          (p == rank ? s.gather_key : map_to_rank(s.gather_key, p))[s.gather_off[p] + j] = k;
      }
      cluster_sync();  // every block holds every candidate of the row
      th = resolve_gathered<NT>(s.gather_key, static_cast<int>(row_cands), bstar, rem, s.low_hist, state);
    } else {
      th = resolve_gathered<NT>(cand_key, static_cast<int>(local_cands), bstar, rem, s.low_hist, state);
    }
  } else {
    // The low 20 bits, histograms summed over the cluster: candidates in the list, or the
    // chunk filtered by b*.
    uint32_t prefix = bstar << 20, mask = 0xFFF00000u, in_bin = 0;
    bool whole = false;
    for (int pass = 0; pass < 2 && !whole; ++pass) {
      const int shift = pass == 0 ? kLowBits : 0;
      for (int b = tid; b < kLowBins; b += NT) hist[b] = 0;
      __syncthreads();
      if (compact) {
        for (int j = tid; j < static_cast<int>(local_cands); j += NT) {
          const uint32_t k = cand_key[j];
          if ((k & mask) == prefix) atomicAdd(hist + ((k >> shift) & (kLowBins - 1)), 1u);
        }
      } else {
        for_each_key<NT, kSmemKeys>(keys, src, n, [&](int, uint32_t k) {
          if ((k & mask) == prefix) atomicAdd(hist + ((k >> shift) & (kLowBins - 1)), 1u);
        });
      }
      __syncthreads();
      uint32_t* summed = hist;
      if (grouped) {
        group_sum<NT>(*group, hist, group->low + pass * kLowBins, kLowBins, kGroupLow0 + pass, hist);
      } else if (clustered) {
        summed = leader_low + pass * kLowBins;
        for (int b = tid; b < kLowBins; b += NT) {
          const uint32_t v = hist[b];
          if (v != 0) atomicAdd(summed + b, v);
        }
        cluster_sync();
      }
      whole = take_low_digit(summed, shift, prefix, mask, rem, in_bin, state);
      __syncthreads();  // hist and state are rewritten next
    }
    // The other blocks have read the leader's summed histograms: the leader may leave after this
    // (the count exchange below has no cluster barrier).
    if (clustered) cluster_sync();
    th = TopkThreshold{prefix, whole, whole ? 0 : rem, whole ? 0 : static_cast<int32_t>(in_bin)};
  }
  stamp(6);

  // 4. The keys of b* into the bitmaps: above the threshold into sel_bits, ties into tie_bits.
  if (!whole_top) {
    auto takes = [&](uint32_t k) { return th.whole ? k >= th.prefix : k > th.prefix; };
    auto ties = [&](uint32_t k) { return !th.whole && k == th.prefix; };
    if (compact) {
      for (int j = tid; j < static_cast<int>(local_cands); j += NT) {
        const uint32_t k = cand_key[j], i = cand_pos[j];
        if (takes(k)) atomicOr(sel_bits + (i >> 5), 1u << (i & 31));
        if (ties(k)) atomicOr(tie_bits + (i >> 5), 1u << (i & 31));
      }
    } else {
      for_each_word([&](int i, bool valid, uint32_t key) {
        const bool in = valid && (key >> 20) == bstar;
        const uint32_t wt = __ballot_sync(0xffffffffu, in && takes(key));
        const uint32_t we = __ballot_sync(0xffffffffu, in && ties(key));
        if (lane == 0 && i < n) {
          if (wt) sel_bits[i >> 5] |= wt;
          tie_bits[i >> 5] = we;
        }
      });
    }
  }
  __syncthreads();

  // 5. Position-ordered emission. Thread t owns the bitmap units [t * upt, (t + 1) * upt): words
  // of 32 positions, or bytes of 8 when the chunk has fewer words than threads (so that more
  // threads share the serial walk over set bits). Block totals of the selected-above and tie
  // keys go to every block of the cluster; block r takes the ties left after the lower blocks'
  // (lowest positions first) and writes from the number of ids the lower blocks write.
  const bool byte_units = words < NT;  // block-uniform
  const int ushift = byte_units ? 3 : 5;         // log2 of the positions per unit
  const int units = byte_units ? (n + 7) >> 3 : words;
  const int upt = (units + NT - 1) / NT;
  const int u0 = min(tid * upt, units), u1 = min(u0 + upt, units);
  // Unit u of a bitmap (little-endian: byte 4 w + j of the words holds positions 32 w + 8 j ..).
  auto unit = [byte_units](const uint32_t* bitmap, int u) -> uint32_t {
    return byte_units ? static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(bitmap)[u]) : bitmap[u];
  };
  uint32_t my_gt = 0, my_eq = 0;
  for (int u = u0; u < u1; ++u) {
    my_gt += __popc(unit(sel_bits, u));
    my_eq += __popc(unit(tie_bits, u));
  }
  // One scan of both counts: above-threshold keys (<= 2048) in bits [31:20], ties (< 2^20: the
  // launcher keeps chunks below kMaxTopkChunk) in bits [19:0].
  uint32_t tot = 0;
  const uint32_t excl = block_exclusive_sum<uint32_t>((my_gt << 20) | my_eq, scratch, tot);
  const int64_t gt_excl = excl >> 20, eq_excl = excl & 0xFFFFFu;
  const int64_t blk_gt = tot >> 20, blk_eq = tot & 0xFFFFFu;
  auto clamp0 = [](int64_t v, int64_t hi) { return v < 0 ? int64_t{0} : (v > hi ? hi : v); };  // [0, hi]
  int64_t sel_before = 0, ties_before = 0;  // in the lower blocks of the cluster
  // Block r's counts, taken in rank order: its keys above the threshold, and of its ties those the
  // lower blocks leave.
  auto add_lower = [&](int64_t gt, int64_t eq) {
    sel_before += gt + clamp0(th.rem - ties_before, eq);
    ties_before += eq;
  };
  // The last block needs no exchange: the lower blocks' counts are the row's totals (kTopK - th.rem
  // keys above the threshold, th.ties at it) less its own. The others, but the first, receive
  // the counts of their lower blocks.
  const bool last = csize > 1 && rank + 1 == csize;
  if (last) {
    const int64_t lower_eq = th.ties - blk_eq;
    sel_before = (kTopK - th.rem) - blk_gt + clamp0(th.rem, lower_eq);
    ties_before = lower_eq;
  }
  if (grouped) {
    // The counts through global memory, tagged (group_put; the same packing as the scan's):
    // each block but the last two stores its own, the middle blocks poll for them, lane r for
    // block r.
    if (tid == 0 && rank + 2 < csize)
      group_put(group->counts + rank, *group, static_cast<uint32_t>((blk_gt << 20) | blk_eq));
    if (rank > 0 && !last) {
      if (tid < 32) {
        const uint32_t mine = static_cast<uint32_t>(tid) < rank ? group_get(group->counts + tid, *group) : 0u;
        for (uint32_t r = 0; r < rank; ++r) {
          const uint32_t x = __shfl_sync(0xffffffffu, mine, static_cast<int>(r));
          add_lower(x >> 20, x & 0xFFFFFu);
        }
        if (tid == 0) {
          state[2] = static_cast<uint32_t>(sel_before);
          state[3] = static_cast<uint32_t>(ties_before);
        }
      }
      __syncthreads();
      sel_before = state[2];
      ties_before = state[3];
    }
  } else if (clustered) {
    // One 8-byte asynchronous store to each higher block but the last, counted on its mbarrier
    // (set in topk_clear to expect 8 bytes per lower block), instead of a cluster barrier. The
    // first and the last block wait for nobody. No block reads another's shared memory after the
    // gather's cluster barrier, and a block that sends here is waited for by its receivers, so
    // every block may leave as soon as its own output is written.
    if (tid > static_cast<int>(rank) && tid + 1 < static_cast<int>(csize)) {
      const uint32_t p = static_cast<uint32_t>(tid);
      cluster::st_async_b32x2(cluster::mapa_shared(smem_addr(s.xchg + 2 * rank), p), static_cast<uint32_t>(blk_gt),
                              static_cast<uint32_t>(blk_eq), cluster::mapa_shared(smem_addr(s.xbar), p));
    }
    if (rank > 0 && !last) {
      cluster::mbar_wait_acquire(smem_addr(s.xbar), 0);
      const uint32_t* x = s.xchg;
      for (uint32_t r = 0; r < rank; ++r) add_lower(x[2 * r], x[2 * r + 1]);
    }
  }
  stamp(7);
  const int64_t ties_left = th.rem - ties_before > 0 ? th.rem - ties_before : 0;  // for this block
  // The block's ids are staged in shared memory (the candidate keys are no longer needed), then
  // written out coalesced: [sel_before, sel_before + blk_sel) of the row.
  int32_t* stage = reinterpret_cast<int32_t*>(cand_key);
  int64_t slot = gt_excl + (ties_left < eq_excl ? ties_left : eq_excl);
  int64_t take = clamp0(ties_left - eq_excl, static_cast<int64_t>(my_eq));  // ties of this thread
  for (int u = u0; u < u1; ++u) {
    uint32_t bits = unit(sel_bits, u);
    uint32_t t = unit(tie_bits, u);
    if (t != 0 && take > 0) {
      const int c = __popc(t);
      if (c > take) {
        uint32_t keep = 0;
        for (int64_t j = 0; j < take; ++j) {
          const uint32_t low = t & (0u - t);
          keep |= low;
          t ^= low;
        }
        t = keep;
        take = 0;
      } else {
        take -= c;
      }
      bits |= t;
    }
    while (bits != 0) {
      const int b = __ffs(bits) - 1;
      const int i = (u << ushift) + b;
      stage[slot++] = pages[i >> 6] * kPageSize + (i & (kPageSize - 1));
      bits &= bits - 1;
    }
  }
  __syncthreads();
  const int blk_sel = static_cast<int>(blk_gt + clamp0(ties_left, blk_eq));
  for (int j = tid; j < blk_sel; j += NT) out_row[sel_before + j] = stage[j];
  stamp(8);
}

// A row of len <= kTopK tokens: every token is selected, slot i = position i, then -1; the C
// blocks of the row's cluster share the 2048 slots. Block-wide (NT threads), no barrier.
template <int NT>
__device__ __forceinline__ void emit_all_tokens(int32_t* out_row, const int32_t* bt_row, int32_t len, uint32_t csize,
                                                uint32_t rank) {
  for (int i = static_cast<int>(rank) * NT + static_cast<int>(threadIdx.x); i < kTopK; i += static_cast<int>(csize) * NT)
    out_row[i] = i < len ? __ldg(bt_row + (i >> 6)) * kPageSize + (i & (kPageSize - 1)) : -1;
}

template <bool kSmemKeys>
__global__ void __launch_bounds__(kTopkThreads, 1) indexer_topk_kernel(const TopkArgs args) {
  extern __shared__ __align__(16) uint32_t sm[];
  const int tid = threadIdx.x;
  const uint32_t csize = cluster_size(), rank = cluster_rank();
  const int64_t row = blockIdx.x / csize;
  long long* stamps = (args.debug != nullptr && tid == 0 && blockIdx.x < 4) ? args.debug + blockIdx.x * kTopkCheckpoints : nullptr;
  auto stamp = [stamps](int k) {
    if (stamps) stamps[k] = clock64();
  };
  stamp(0);
  // Up to the grid dependency wait below, nothing reads the scores: this part (short rows whole,
  // the row's length, clearing shared memory) may overlap the end of the scores kernel when
  // launched as its programmatic dependent. It reads only inputs of the call, which the scores
  // kernel does not write.
  const int32_t len = clamp_len(__ldg(args.seq_lens + row), args.len_cap);
  int32_t* out_row = args.out + row * kTopK;
  const int32_t* bt_row = args.block_table + row * args.bt_stride;

  if (len <= kTopK) {  // every token is selected, slot i = position i; the cluster's blocks share the 2048 slots
    emit_all_tokens<kTopkThreads>(out_row, bt_row, len, csize, rank);
    return;  // uniform over the cluster: no block touches another's shared memory
  }

  const TopkSmem s = topk_smem_at(sm, args.chunk_cap);
  uint32_t* hist = s.hist;
  uint32_t* keys = s.keys;
  // This block's chunk of the row, [begin, begin + n), and the page ids it spans.
  const int32_t chunk = topk_chunk(len, static_cast<int>(csize));
  const int32_t begin = static_cast<int32_t>(rank) * chunk;
  const int32_t n = max(0, min(len, begin + chunk) - begin);

  topk_clear<kTopkThreads>(s, rank, csize, (n + 31) >> 5);
  for (int i = tid; i < kTopBins; i += kTopkThreads) hist[i] = 0;
  topk_start_row_top<kTopkThreads>(s, csize);

  const float* src = args.scores + row * args.score_stride + begin;
  // Scores come from the previous kernel (launched as its programmatic dependent).
  grid_dependency_wait();
  stamp(1);
  __syncthreads();

  // 1. Keys into shared memory, histogram of their top 12 bits.
  if constexpr (kSmemKeys) {
    const int n4 = n >> 2;  // src is 256-byte aligned: row stride and begin are multiples of 64
    const float4* src4 = reinterpret_cast<const float4*>(src);
    for (int base = 0; base < n4; base += kTopkThreads * kLoadUnroll) {
      float4 v[kLoadUnroll];
#pragma unroll
      for (int u = 0; u < kLoadUnroll; ++u) {
        const int i = base + u * kTopkThreads + tid;
        if (i < n4) v[u] = __ldg(src4 + i);
      }
#pragma unroll
      for (int u = 0; u < kLoadUnroll; ++u) {
        const int i = base + u * kTopkThreads + tid;
        if (i < n4) {
          uint4 k;
          k.x = float_key(v[u].x); k.y = float_key(v[u].y); k.z = float_key(v[u].z); k.w = float_key(v[u].w);
          *reinterpret_cast<uint4*>(keys + 4 * i) = k;
          atomicAdd(hist + (k.x >> 20), 1u);
          atomicAdd(hist + (k.y >> 20), 1u);
          atomicAdd(hist + (k.z >> 20), 1u);
          atomicAdd(hist + (k.w >> 20), 1u);
        }
      }
    }
    for (int i = 4 * n4 + tid; i < n; i += kTopkThreads) {
      const uint32_t k = float_key(__ldg(src + i));
      keys[i] = k;
      atomicAdd(hist + (k >> 20), 1u);
    }
  } else {
    for_each_key<kTopkThreads, false>(keys, src, n, [&](int, uint32_t k) { atomicAdd(hist + (k >> 20), 1u); });
  }
  // The page ids of the chunk (read only when emitting): loaded after the keys, so their latency
  // overlaps the keys' instead of preceding it.
  for (int j = tid; j < (n + kPageSize - 1) / kPageSize; j += kTopkThreads) s.pages[j] = __ldg(bt_row + (begin >> 6) + j);
  stamp(2);
  TopkChunk c;
  c.n = n;
  c.src = src;
  c.out_row = out_row;
  c.csize = csize;
  c.rank = rank;
  c.variant = args.variant;
  topk_select<kTopkThreads, kSmemKeys>(s, c, stamp);
}

}  // namespace dsa::cuda::idx
