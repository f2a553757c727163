// Indexer scores and top-2048 in one kernel, for calls whose rows fit the GPU at once with a
// cluster of C blocks per row (sm_90a, the f16 wgmma scores of scores.cuh; SPEC §1.1).
//
// Why: with the two-kernel form (scores.cuh, then topk.cuh) the selection can only start once
// the whole scores grid has ended, it re-reads every score from global memory, and it costs a
// second launch. Here block r of a row's cluster computes the scores of its chunk of the row
// (the same chunk the top-k kernel would give it: [r * chunk, (r + 1) * chunk), chunk =
// ceil(seq_len / C) rounded up to a page) straight into shared memory as top-k keys, building the
// first-digit histogram as it goes, and then runs the selection of topk.cuh (topk_select) on
// them with the same threads. The output is the same function of the row as the two-kernel
// form's (ties to the lowest positions, ids in position order).
//
// Row groups: when a row needs more blocks than a cluster gives (b=8 L=128K: 16 blocks per row
// stream on 128 SMs, against 64 with clusters of 8), the launcher runs the kernel without clusters
// as a cooperative launch (every block resident at once) and the `group_blocks` blocks of a row
// exchange what the selection merges through a region of the workspace instead of distributed
// shared memory (row_group.cuh).
//
// Block: 1 producer warp streaming the chunk's pages (one bulk copy each) into a ring of
// `stages` slots, 3 consumer warpgroups taking the pages round robin (stages a multiple of 3:
// each slot serves one group), each waiting for its previous page's wgmma chain and reducing
// it while the other groups convert or multiply (as scores.cuh's 3-group loop). Once every page
// is scored, the ring and the q tile are dead and the selection's arrays overlay them; the
// histogram and the keys have their own regions. All groups score the same row, so they share
// one q tile (the persistent kernel needs one per group), which leaves room for a deeper ring.
//
// Shared memory (bytes from a 1024-aligned base):
//   [0, region)                 q tile (16 KB, f16) + ring (stages x 8448); then the selection's
//                               arrays (TopkLayout without its histograms and keys)
//   [region, + 16 KB)           first-digit histogram
//   [.., + 16 KB)               the row's first-digit histogram (clusters: zeroed at the start, so
//                               that the other blocks may add into it as soon as they are done)
//   [.., + 4 chunk_cap)         keys
//   [.., + 16 stages + 8)       full / empty mbarriers, q-tile-ready mbarrier
#pragma once

#include <cstdint>

#include "kernels/indexer/scores.cuh"
#include "kernels/indexer/topk.cuh"

namespace dsa::cuda::idx {

inline constexpr int kFusedGroups = 3;
inline constexpr int kFusedThreads = scores_threads(kFusedGroups);  // 416

struct FusedArgs {
  const uint8_t* index_k = nullptr;      // [num_pages, 8448]
  const uint8_t* q = nullptr;            // [rows, 64, 128] e4m3
  const float* weights = nullptr;        // [rows, 64]
  const int32_t* seq_lens = nullptr;     // [rows]
  const int32_t* block_table = nullptr;  // [rows, bt_stride]
  int64_t bt_stride = 0;
  int32_t len_cap = 0;                   // seq_lens are clamped to [0, len_cap]
  int32_t chunk_cap = 0;                 // most keys one block owns (multiple of 64)
  int32_t stages = 0;                    // ring slots (multiple of kFusedGroups)
  int32_t variant = kTopkGather;         // top-k variant (same output)
  int32_t* out = nullptr;                // [rows, 2048]
  long long* debug = nullptr;            // diagnostic: [4 blocks][kTopkCheckpoints] clock64 stamps
  unsigned long long* timeline = nullptr;  // diagnostic: [grid][kTimelineSlots] (work done = scores done)
  int32_t group_blocks = 0;              // > 0: blocks per row of a row group (no cluster; cooperative launch)
  uint32_t* group_ws = nullptr;          // row groups: [rows][GroupLayout::kWords]
  unsigned long long group_nonce = 0;    // row groups: new to this call
};

struct FusedLayout {
  int64_t region = 0;  // q tiles + ring, later the selection's arrays
  int64_t hist = 0;
  int64_t row_top = 0;
  int64_t keys = 0;
  int64_t bars = 0;
  int64_t bytes = 0;
};

__host__ __device__ inline FusedLayout fused_layout(int stages, int chunk_cap) {
  FusedLayout l;
  const int64_t scores_bytes = int64_t{q_tile_bytes(kMmaWgmmaF16)} + int64_t{stages} * kPageBytes;
  const int64_t select_bytes = 4 * static_cast<int64_t>(TopkLayout::keys(chunk_cap));  // incl. an unused histogram slot
  l.region = 0;
  l.hist = ((scores_bytes > select_bytes ? scores_bytes : select_bytes) + 15) / 16 * 16;
  l.row_top = l.hist + 4 * kTopBins;
  l.keys = l.row_top + 4 * kTopBins;
  l.bars = l.keys + 4 * static_cast<int64_t>(chunk_cap);
  l.bytes = l.bars + 16 * static_cast<int64_t>(stages) + 8;
  return l;
}

// Dynamic shared memory to request: the layout plus slack to align the base to 1024 bytes.
__host__ __device__ inline int64_t fused_smem_bytes(int stages, int chunk_cap) {
  return fused_layout(stages, chunk_cap).bytes + 1024;
}

// kGroups: always kFusedGroups (a template only so that the kernel is compiled where it is
// instantiated: fused_sm90.cu, fused_group_sm90.cu). kRowGroups: the rows' blocks form row groups
// (args.group_blocks per row, no cluster) rather than clusters.
template <int kGroups, bool kRowGroups>
__global__ void __launch_bounds__(scores_threads(kGroups), 1) indexer_fused_kernel(const FusedArgs args) {
  static_assert(kGroups == kFusedGroups, "the layout and the ring assume kFusedGroups consumer groups");
#if DSA_IDX_HAVE_WGMMA
  constexpr int NT = kFusedThreads;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // A row's blocks: a cluster, or a row group (cluster of 1).
  constexpr bool grouped = kRowGroups;
  const uint32_t ccsize = cluster_size();
  const uint32_t csize = grouped ? static_cast<uint32_t>(args.group_blocks) : ccsize;
  const uint32_t rank = grouped ? blockIdx.x % csize : cluster_rank();
  const int64_t row = blockIdx.x / csize;
  long long* stamps = (args.debug != nullptr && blockIdx.x < 4) ? args.debug + blockIdx.x * kTopkCheckpoints : nullptr;
  auto stamp = [stamps, tid](int k) {
    if (stamps && tid == 0) stamps[k] = clock64();
  };
  stamp(0);
  timeline_mark(args.timeline, kTimelineEntry);
  const int32_t len = clamp_len(__ldg(args.seq_lens + row), args.len_cap);
  int32_t* out_row = args.out + row * kTopK;
  const int32_t* bt_row = args.block_table + row * args.bt_stride;
  if (len <= kTopK) {  // uniform over the cluster: no block touches another's shared memory
    emit_all_tokens<NT>(out_row, bt_row, len, csize, rank);
    timeline_mark(args.timeline, kTimelineWorkDone);
    timeline_mark(args.timeline, kTimelineExit);
    return;
  }

  const FusedLayout lay = fused_layout(args.stages, args.chunk_cap);
  TopkSmem s = topk_smem_at(reinterpret_cast<uint32_t*>(smem + lay.region), args.chunk_cap);
  s.hist = reinterpret_cast<uint32_t*>(smem + lay.hist);
  s.row_top = reinterpret_cast<uint32_t*>(smem + lay.row_top);
  s.keys = reinterpret_cast<uint32_t*>(smem + lay.keys);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + lay.bars);
  uint64_t* empty = full + args.stages;
  uint64_t* q_ready = empty + args.stages;
  uint8_t* ring = smem + q_tile_bytes(kMmaWgmmaF16);

  // This block's chunk of the row, [begin, begin + n): its pages are page0 .. page0 + pages - 1.
  const int32_t chunk = topk_chunk(len, static_cast<int>(csize));
  const int32_t begin = static_cast<int32_t>(rank) * chunk;
  const int32_t n = max(0, min(len, begin + chunk) - begin);
  const int32_t page0 = begin >> 6, pages = (n + kPageSize - 1) >> 6;
  const int stages = args.stages;

  if (tid == 0) {
    for (int i = 0; i < stages; ++i) {
      mbar_init(&full[i], 1);
      mbar_init(&empty[i], kWarpsPerGroup * kSlotArrivals);
    }
    mbar_init(q_ready, kWarpsPerGroup * 32);
    mbar_init_fence();
  }
  for (int i = tid; i < kTopBins; i += NT) s.hist[i] = 0;
  topk_start_row_top<NT>(s, ccsize);
  RowGroup group;
  if (grouped) group = row_group_at(args.group_ws, row, csize, rank, args.group_nonce);
  __syncthreads();

  if (warp == kFusedGroups * kWarpsPerGroup) {
    // ---------------- producer warp: the chunk's pages into the ring ----------------
    const uint64_t policy = l2_policy_evict_first();
    int32_t page_c = lane < pages ? __ldg(bt_row + page0 + lane) : 0;
    uint32_t stage = 0, phase = 0;
    for (int b0 = 0; b0 < pages; b0 += 32) {
      const int32_t page_n = b0 + 32 + lane < pages ? __ldg(bt_row + page0 + b0 + 32 + lane) : 0;
      const int cnt = pages - b0 < 32 ? pages - b0 : 32;
      for (int j = 0; j < cnt; ++j) {
        const int32_t pg = __shfl_sync(0xffffffffu, page_c, j);
        if (lane == 0) {
          mbar_wait(&empty[stage], phase ^ 1);
          mbar_arrive_expect_tx(&full[stage], kPageBytes);
          bulk_copy_g2s_hint(ring + static_cast<int64_t>(stage) * kPageBytes,
                             args.index_k + static_cast<int64_t>(pg) * kPageBytes, kPageBytes, &full[stage], policy);
        }
        if (++stage == static_cast<uint32_t>(stages)) {
          stage = 0;
          phase ^= 1;
        }
      }
      page_c = page_n;
    }
    // Lanes 1-31 leave the loop while lane 0 may still wait for a slot: reconverge before the
    // block barrier below (an aligned barrier, to be executed by the whole warp together).
    __syncwarp();
    // A row group: the producer zeroes this block's share of the row's sums once its copies are
    // issued (the ring is then a dozen pages ahead of the consumers: off the critical path) and
    // waits for the other blocks' shares; the block barrier after scoring orders that before the
    // selection's additions.
    if (grouped) group_zero_warp(group);
  } else {
    // ---------------- consumer warpgroups: scores of the chunk into keys ----------------
    const int group = warp / kWarpsPerGroup, wq = warp % kWarpsPerGroup;
    const int g = lane >> 2, t = lane & 3;
    const int t0 = wq * 16 + g;  // this thread's tokens in a page: t0 and t0 + 8
    uint8_t* q_tile = smem;  // the row's q, f16, shared by the groups
    float w[16];
    load_head_weights(w, args.weights + row * kIndexHeads, t);
    // The tile is written (group 0) before any wgmma reads it: an mbarrier rather than a named
    // barrier of the consumer threads, because compute-sanitizer's racecheck then counts the
    // producer warp's block barriers out of step and reports the selection's reads as races.
    if (group == 0) {
      store_q_tile_f16(q_tile, args.q + row * kQBytes, tid);
      fence_proxy_async_smem();
      mbar_arrive(q_ready);
    }
    mbar_wait(q_ready, 0);
    // A page's tag is its page in the chunk; its scores become keys (positions below n only).
    wgmma_f16_group_loop<kFusedGroups>(
        group, pages, stages, ring, full, empty, q_tile, [](int32_t) {},
        [&](int32_t it) {
          if (it == 0) stamp(1);
        },
        [](int32_t it) { return it; },
        [&](const float (&acc)[32], int32_t pg, float sc0, float sc1) {
          float s0, s1;
          reduce_page_scores(acc, w, sc0, sc1, s0, s1);
          const int32_t pos = pg * kPageSize + t0 + (t == 1 ? 8 : 0);
          if (t < 2 && pos < n) {
            const uint32_t key = float_key(t == 0 ? s0 : s1);
            s.keys[pos] = key;
            atomicAdd(s.hist + (key >> 20), 1u);
          }
        });
  }
  __syncthreads();  // every page scored: the ring and the q tile are free, keys and hist complete
  stamp(2);
  timeline_mark(args.timeline, kTimelineWorkDone);
  topk_clear<NT>(s, rank, ccsize, (n + 31) >> 5);
  for (int j = tid; j < pages; j += NT) s.pages[j] = __ldg(bt_row + page0 + j);
  TopkChunk c;
  c.n = n;
  c.out_row = out_row;
  c.csize = csize;
  c.rank = rank;
  c.variant = args.variant;
  c.group = grouped ? &group : nullptr;
  topk_select<NT, true, kRowGroups>(s, c, stamp);
  timeline_mark(args.timeline, kTimelineExit);
#else
  __trap();  // the launcher takes this kernel only on sm_90a
#endif
}

}  // namespace dsa::cuda::idx
