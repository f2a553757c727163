// Top-2048 selection of the indexer (SPEC §1.1 output): global token ids (page * 64 + offset) of
// the 2048 largest scores of each row, any order, -1 padded. Rows with seq_len <= 2048 emit all
// their tokens.
//
// One cluster of C blocks (C = 1..8) per row; block r of the cluster owns the contiguous chunk
// [r * chunk, (r + 1) * chunk) of the row, kept as uint32 keys in its shared memory (or re-read
// from the scores in global memory when a chunk does not fit: kSmemKeys = false). A key is the
// monotone uint32 image of the float. Radix select, most significant digit first:
//   1. while loading, each block histograms the top 12 bits of its keys (sign, exponent and 3
//      mantissa bits: 8 bins per binade); the histograms are summed into the leader block's
//      (rank 0) through distributed shared memory, and every block finds the bin b* holding the
//      2048th largest key;
//   2. over the chunk: keys above b* are emitted (each block counts its own, takes one range of
//      slots from a counter on the leader, and writes), keys in b* are compacted into a short
//      candidate list;
//   3. the low 20 bits of the candidates are resolved in two 10-bit passes (histograms summed on
//      the leader again); candidates above the final threshold take slots from the same counter,
//      ties take the last `rem` slots through a second counter. A pass stops early when the
//      threshold bin is taken whole.
// When b* holds more keys than the candidate list, step 3 filters the whole chunk instead.
// With one block per row (C = 1) the cluster barriers are block barriers and nothing is merged.
#pragma once

#include <cstdint>

#include "kernels/indexer/common.cuh"

namespace dsa::cuda::idx {

inline constexpr int kTopkThreads = 1024;
inline constexpr int kTopBits = 12;                 // first digit: key bits [31:20]
inline constexpr int kTopBins = 1 << kTopBits;      // 4096
inline constexpr int kLowBits = 10;                 // then two digits of 10 bits
inline constexpr int kLowBins = 1 << kLowBits;      // 1024
inline constexpr int kCandCap = 2048;               // candidate list per block
inline constexpr int kKeyUnroll = 4;                // loads in flight per thread
inline constexpr int kTopkCheckpoints = 12;

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

// Top-k variants: kTopkGather classifies with per-bin slot cursors (one pass) and resolves the
// threshold bin's keys in the leader alone once they are few (<= kCandCap for the whole row);
// kTopkDistributed counts, scans and writes (two passes) and resolves the threshold bin with
// histograms summed over the cluster. kTopkGather falls back to the distributed resolution
// when the threshold bin holds more keys.
inline constexpr int32_t kTopkGather = 0;
inline constexpr int32_t kTopkDistributed = 1;

// Shared-memory layout in uint32 words.
struct TopkLayout {
  static constexpr int kLeaderTop = 0;                       // 4096: summed first-digit histogram (leader)
  static constexpr int kLeaderLow = kLeaderTop + kTopBins;   // 2 x 1024: summed low-digit histograms (leader)
  static constexpr int kCtl = kLeaderLow + 2 * kLowBins;     // 8: [0] take, [1] tie, [2] gather counters (leader)
  static constexpr int kHist = kCtl + 8;                     // 4096: this block's histogram
  static constexpr int kState = kHist + kTopBins;            // 8
  static constexpr int kScratch = kState + 8;                // 36: scan scratch
  static constexpr int kCandKey = kScratch + 36;             // kCandCap
  static constexpr int kCandPos = kCandKey + kCandCap;       // kCandCap
  static constexpr int kGatherKey = kCandPos + kCandCap;     // kCandCap: the row's candidates (leader)
  static constexpr int kGatherId = kGatherKey + kCandCap;    // kCandCap: their token ids (leader)
  static constexpr int kPages = kGatherId + kCandCap;        // page ids of the chunk
  __host__ __device__ static constexpr int pages_words(int chunk_cap) { return ((chunk_cap / 64) + 4) & ~3; }
  __host__ __device__ static constexpr int keys(int chunk_cap) { return kPages + pages_words(chunk_cap); }
};

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
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
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
template <bool kSmemKeys, typename F>
__device__ __forceinline__ void for_each_key(const uint32_t* keys, const float* src, int n, F&& f) {
  for (int base = 0; base < n; base += kTopkThreads * kKeyUnroll) {
    uint32_t k[kKeyUnroll];
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      const int i = base + u * kTopkThreads + static_cast<int>(threadIdx.x);
      if constexpr (kSmemKeys) {
        k[u] = i < n ? keys[i] : 0u;
      } else {
        k[u] = i < n ? float_key(__ldg(src + i)) : 0u;
      }
    }
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      const int i = base + u * kTopkThreads + static_cast<int>(threadIdx.x);
      if (i < n) f(i, k[u]);
    }
  }
}

// Finds the bin b of hist (nb bins, thread t owning bins 4t .. 4t + 3) with
// above(b) < rem <= above(b) + hist[b], above(b) = keys in bins > b. Writes b and above(b) to
// state[0], state[1]. Block-wide (contains barriers).
__device__ __forceinline__ void find_threshold_bin(const uint32_t* hist, uint32_t nb, uint32_t rem, uint32_t* state,
                                                   uint32_t* scratch) {
  const uint32_t tid = threadIdx.x;
  uint32_t mine[4];
  uint32_t sum = 0;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const uint32_t b = 4 * tid + e;
    mine[e] = b < nb ? hist[b] : 0u;
    sum += mine[e];
  }
  uint32_t total = 0;
  const uint32_t excl = block_exclusive_sum(sum, scratch, total);
  uint32_t above = total - excl - sum;  // keys in bins owned by higher threads
#pragma unroll
  for (int e = 3; e >= 0; --e) {
    if (above < rem && above + mine[e] >= rem) {
      state[0] = 4 * tid + e;
      state[1] = above;
    }
    above += mine[e];
  }
  __syncthreads();
}

// The leader alone selects `rem` of the `count` keys (all in first-digit bin b*) gathered in
// gkey / gid: two 10-bit passes over their low 20 bits, then the keys above the threshold take
// slots from ctl[0] (after the ones the cluster already took), ties the last `rem` slots.
__device__ __forceinline__ void resolve_gathered(const uint32_t* gkey, const int32_t* gid, int count, uint32_t bstar,
                                                 int32_t rem, uint32_t* hist, uint32_t* state, uint32_t* scratch,
                                                 uint32_t* ctl, int32_t* out_row) {
  const int tid = threadIdx.x;
  uint32_t prefix = bstar << 20, mask = 0xFFF00000u;
  bool whole = false;
  for (int pass = 0; pass < 2 && !whole; ++pass) {
    const int shift = pass == 0 ? kLowBits : 0;
    for (int b = tid; b < kLowBins; b += kTopkThreads) hist[b] = 0;
    __syncthreads();
    for (int j = tid; j < count; j += kTopkThreads) {
      const uint32_t k = gkey[j];
      if ((k & mask) == prefix) atomicAdd(hist + ((k >> shift) & (kLowBins - 1)), 1u);
    }
    __syncthreads();
    find_threshold_bin(hist, kLowBins, static_cast<uint32_t>(rem), state, scratch);
    const uint32_t b = state[0];
    const uint32_t c = hist[b];
    prefix |= b << shift;
    mask |= static_cast<uint32_t>(kLowBins - 1) << shift;
    rem -= static_cast<int32_t>(state[1]);
    whole = c == static_cast<uint32_t>(rem);
    __syncthreads();
  }
  auto takes = [&](uint32_t k) { return whole ? k >= prefix : k > prefix; };
  auto ties = [&](uint32_t k) { return !whole && k == prefix; };
  uint32_t my_take = 0, my_tie = 0;
  for (int j = tid; j < count; j += kTopkThreads) {
    my_take += takes(gkey[j]) ? 1u : 0u;
    my_tie += ties(gkey[j]) ? 1u : 0u;
  }
  uint32_t total_take = 0, total_tie = 0;
  uint32_t slot_take = block_exclusive_sum(my_take, scratch, total_take);
  uint32_t slot_tie = block_exclusive_sum(my_tie, scratch, total_tie);
  if (tid == 0) {
    state[6] = atomicAdd(ctl + 0, total_take);
    state[7] = atomicAdd(ctl + 1, total_tie);
  }
  __syncthreads();
  slot_take += state[6];
  slot_tie += state[7];
  for (int j = tid; j < count; j += kTopkThreads) {
    const uint32_t k = gkey[j];
    if (takes(k)) out_row[slot_take++] = gid[j];
    if (ties(k)) {
      if (slot_tie < static_cast<uint32_t>(rem)) out_row[kTopK - rem + slot_tie] = gid[j];
      ++slot_tie;
    }
  }
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
  // Scores come from the previous kernel (launched as its programmatic dependent).
  grid_dependency_wait();
  stamp(1);
  const int32_t len = clamp_len(__ldg(args.seq_lens + row), args.len_cap);
  int32_t* out_row = args.out + row * kTopK;
  const int32_t* bt_row = args.block_table + row * args.bt_stride;

  if (len <= kTopK) {  // every token is selected; the cluster's blocks share the 2048 slots
    for (int i = rank * kTopkThreads + tid; i < kTopK; i += csize * kTopkThreads)
      out_row[i] = i < len ? __ldg(bt_row + (i >> 6)) * kPageSize + (i & (kPageSize - 1)) : -1;
    return;  // uniform over the cluster: no block touches another's shared memory
  }

  const bool clustered = csize > 1;
  uint32_t* hist = sm + TopkLayout::kHist;
  uint32_t* state = sm + TopkLayout::kState;
  uint32_t* scratch = sm + TopkLayout::kScratch;
  uint32_t* cand_key = sm + TopkLayout::kCandKey;
  uint32_t* cand_pos = sm + TopkLayout::kCandPos;
  int32_t* pages = reinterpret_cast<int32_t*>(sm + TopkLayout::kPages);
  uint32_t* keys = sm + TopkLayout::keys(args.chunk_cap);
  // The leader's arrays (this block's own when C = 1).
  uint32_t* leader_top = clustered ? map_to_rank(sm + TopkLayout::kLeaderTop, 0) : hist;
  uint32_t* leader_low = clustered ? map_to_rank(sm + TopkLayout::kLeaderLow, 0) : hist;
  uint32_t* leader_ctl = clustered ? map_to_rank(sm + TopkLayout::kCtl, 0) : sm + TopkLayout::kCtl;

  if (rank == 0)
    for (int i = tid; i < TopkLayout::kHist; i += kTopkThreads) sm[i] = 0;  // leader arrays and counters
  for (int i = tid; i < kTopBins; i += kTopkThreads) hist[i] = 0;
  if (tid < 8) state[tid] = 0;

  // This block's chunk of the row, [begin, begin + n), and the page ids it spans.
  const int32_t chunk = static_cast<int32_t>(ceil_div64(ceil_div64(len, csize), 64) * 64);
  const int32_t begin = static_cast<int32_t>(rank) * chunk;
  const int32_t n = max(0, min(len, begin + chunk) - begin);
  const float* src = args.scores + row * args.score_stride + begin;
  for (int j = tid; j < (n + kPageSize - 1) / kPageSize; j += kTopkThreads) pages[j] = __ldg(bt_row + (begin >> 6) + j);
  __syncthreads();

  // 1. Keys into shared memory, histogram of their top 12 bits.
  if constexpr (kSmemKeys) {
    const int n4 = n >> 2;  // src is 256-byte aligned: row stride and begin are multiples of 64
    const float4* src4 = reinterpret_cast<const float4*>(src);
    for (int base = 0; base < n4; base += kTopkThreads * kKeyUnroll) {
      float4 v[kKeyUnroll];
#pragma unroll
      for (int u = 0; u < kKeyUnroll; ++u) {
        const int i = base + u * kTopkThreads + tid;
        if (i < n4) v[u] = __ldg(src4 + i);
      }
#pragma unroll
      for (int u = 0; u < kKeyUnroll; ++u) {
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
    for_each_key<false>(keys, src, n, [&](int, uint32_t k) { atomicAdd(hist + (k >> 20), 1u); });
  }
  stamp(2);
  if (clustered) {
    cluster_sync();  // the leader's arrays are zeroed and every block has started
    for (int b = tid; b < kTopBins; b += kTopkThreads) {
      const uint32_t v = hist[b];
      if (v != 0) atomicAdd(leader_top + b, v);
    }
    cluster_sync();
  } else {
    __syncthreads();
  }
  stamp(3);

  // The bin b* of the first digit, and whether it is taken whole.
  find_threshold_bin(leader_top, kTopBins, kTopK, state, scratch);
  const uint32_t bstar = state[0];
  int32_t rem = kTopK - static_cast<int32_t>(state[1]);
  const uint32_t row_cands = leader_top[bstar];  // keys of the row in b*
  const bool whole_top = row_cands == static_cast<uint32_t>(rem);
  stamp(4);

  // 2. Emit the keys above b* (all of b* when it is taken whole) and compact the keys in b*.
  auto takes_top = [&](uint32_t key) {
    const uint32_t bin = key >> 20;
    return bin > bstar || (whole_top && bin == bstar);
  };
  auto cands_top = [&](uint32_t key) { return !whole_top && (key >> 20) == bstar; };
  uint32_t local_cands = 0;
  bool compact = true;
  if (args.variant == kTopkGather) {
    // Slots by per-bin cursors: bin b (taken) starts at this block's base + the keys of the
    // taken bins above it; one pass, atomics spread over the bins.
    local_cands = whole_top ? 0u : hist[bstar];
    compact = local_cands <= static_cast<uint32_t>(kCandCap);
    uint32_t h[4], mine = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const uint32_t b = 4 * tid + e;
      const bool taken = b > bstar || (whole_top && b == bstar);
      h[e] = taken ? hist[b] : 0u;
      mine += h[e];
    }
    uint32_t local_take = 0;
    const uint32_t excl = block_exclusive_sum(mine, scratch, local_take);
    if (tid == 0) {
      state[2] = local_take ? atomicAdd(leader_ctl + 0, local_take) : 0u;
      state[5] = 0;
    }
    __syncthreads();
    uint32_t higher = state[2] + (local_take - excl - mine);
#pragma unroll
    for (int e = 3; e >= 0; --e) {
      hist[4 * tid + e] = higher;  // cursor of bin 4t + e (only taken bins are used)
      higher += h[e];
    }
    __syncthreads();
    for_each_key<kSmemKeys>(keys, src, n, [&](int i, uint32_t key) {
      if (takes_top(key)) {
        out_row[atomicAdd(hist + (key >> 20), 1u)] = pages[i >> 6] * kPageSize + (i & (kPageSize - 1));
      } else if (compact && cands_top(key)) {
        const uint32_t c = atomicAdd(state + 5, 1u);
        cand_key[c] = key;
        cand_pos[c] = static_cast<uint32_t>(i);
      }
    });
  } else {
    // Count per thread, scan, one counter update per block, then write.
    uint32_t my_take = 0, my_cand = 0;
    for_each_key<kSmemKeys>(keys, src, n, [&](int, uint32_t key) {
      my_take += takes_top(key) ? 1u : 0u;
      my_cand += cands_top(key) ? 1u : 0u;
    });
    uint32_t local_take = 0;
    uint32_t slot = block_exclusive_sum(my_take, scratch, local_take);
    uint32_t cslot = block_exclusive_sum(my_cand, scratch, local_cands);
    compact = local_cands <= static_cast<uint32_t>(kCandCap);
    if (tid == 0) state[2] = local_take ? atomicAdd(leader_ctl + 0, local_take) : 0u;
    __syncthreads();
    slot += state[2];
    if (my_take + (compact ? my_cand : 0u) != 0) {
      for_each_key<kSmemKeys>(keys, src, n, [&](int i, uint32_t key) {
        if (takes_top(key)) {
          out_row[slot++] = pages[i >> 6] * kPageSize + (i & (kPageSize - 1));
        } else if (compact && cands_top(key)) {
          cand_key[cslot] = key;
          cand_pos[cslot] = static_cast<uint32_t>(i);
          ++cslot;
        }
      });
    }
  }
  __syncthreads();
  stamp(5);

  // 3a. Few keys in b* for the whole row: gather them in the leader, which finishes alone.
  if (args.variant == kTopkGather && !whole_top && row_cands <= static_cast<uint32_t>(kCandCap)) {
    if (tid == 0) state[6] = local_cands ? atomicAdd(leader_ctl + 2, local_cands) : 0u;
    __syncthreads();
    const uint32_t gbase = state[6];
    uint32_t* gkey = clustered ? map_to_rank(sm + TopkLayout::kGatherKey, 0) : sm + TopkLayout::kGatherKey;
    int32_t* gid = reinterpret_cast<int32_t*>(clustered ? map_to_rank(sm + TopkLayout::kGatherId, 0)
                                                        : sm + TopkLayout::kGatherId);
    for (uint32_t j = tid; j < local_cands; j += kTopkThreads) {
      const uint32_t i = cand_pos[j];
      gkey[gbase + j] = cand_key[j];
      gid[gbase + j] = pages[i >> 6] * kPageSize + static_cast<int32_t>(i & (kPageSize - 1));
    }
    if (clustered) {
      cluster_sync();                 // the leader holds every candidate of the row
      if (rank != 0) return;          // nobody touches another block's memory from here on
    } else {
      __syncthreads();
    }
    stamp(6);
    resolve_gathered(sm + TopkLayout::kGatherKey, reinterpret_cast<const int32_t*>(sm + TopkLayout::kGatherId),
                     static_cast<int>(row_cands), bstar, rem, hist, state, scratch, sm + TopkLayout::kCtl, out_row);
    stamp(7);
    return;
  }

  // 3. The low 20 bits of the keys in b*: candidates in the list, or the chunk filtered by b*.
  uint32_t prefix = bstar << 20, mask = 0xFFF00000u;
  bool whole = whole_top;  // the last bin is taken whole: select key >= prefix, no ties
  auto for_each_cand = [&](auto&& f) {
    if (compact) {
      for (int j = tid; j < static_cast<int>(local_cands); j += kTopkThreads) f(static_cast<int>(cand_pos[j]), cand_key[j]);
    } else {
      for_each_key<kSmemKeys>(keys, src, n, [&](int i, uint32_t k) {
        if ((k >> 20) == bstar) f(i, k);
      });
    }
  };
  for (int pass = 0; pass < 2 && !whole; ++pass) {
    const int shift = pass == 0 ? kLowBits : 0;
    for (int b = tid; b < kLowBins; b += kTopkThreads) hist[b] = 0;
    __syncthreads();
    for_each_cand([&](int, uint32_t k) {
      if ((k & mask) == prefix) atomicAdd(hist + ((k >> shift) & (kLowBins - 1)), 1u);
    });
    __syncthreads();
    uint32_t* summed = hist;
    if (clustered) {
      summed = leader_low + pass * kLowBins;
      for (int b = tid; b < kLowBins; b += kTopkThreads) {
        const uint32_t v = hist[b];
        if (v != 0) atomicAdd(summed + b, v);
      }
      cluster_sync();
    }
    find_threshold_bin(summed, kLowBins, static_cast<uint32_t>(rem), state, scratch);
    const uint32_t b = state[0];
    const uint32_t count = summed[b];
    prefix |= b << shift;
    mask |= static_cast<uint32_t>(kLowBins - 1) << shift;
    rem -= static_cast<int32_t>(state[1]);
    whole = count == static_cast<uint32_t>(rem);
    __syncthreads();  // hist and state are rewritten next
  }
  stamp(6);

  // Emit the candidates: above the threshold from the take counter, ties into the last `rem`
  // slots. Nothing left when b* was taken whole.
  if (!whole_top) {
    auto takes = [&](uint32_t k) { return whole ? k >= prefix : k > prefix; };
    auto ties = [&](uint32_t k) { return !whole && k == prefix; };
    uint32_t my_take = 0, my_tie = 0;
    for_each_cand([&](int, uint32_t k) {
      my_take += takes(k) ? 1u : 0u;
      my_tie += ties(k) ? 1u : 0u;
    });
    uint32_t total_take = 0, total_tie = 0;
    uint32_t slot_take = block_exclusive_sum(my_take, scratch, total_take);
    uint32_t slot_tie = block_exclusive_sum(my_tie, scratch, total_tie);
    if (tid == 0) {
      state[6] = total_take ? atomicAdd(leader_ctl + 0, total_take) : 0u;
      state[7] = total_tie ? atomicAdd(leader_ctl + 1, total_tie) : 0u;
    }
    __syncthreads();
    slot_take += state[6];
    slot_tie += state[7];
    if (my_take + my_tie != 0) {
      for_each_cand([&](int i, uint32_t k) {
        const int32_t id = pages[i >> 6] * kPageSize + (i & (kPageSize - 1));
        if (takes(k)) out_row[slot_take++] = id;
        if (ties(k)) {
          if (slot_tie < static_cast<uint32_t>(rem)) out_row[kTopK - rem + slot_tie] = id;
          ++slot_tie;
        }
      });
    }
  }
  stamp(7);
  if (clustered) cluster_sync();  // the leader's shared memory stays alive until all are done with it
  stamp(8);
}

}  // namespace dsa::cuda::idx
