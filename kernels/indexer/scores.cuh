// Indexer scores (SPEC §1.1) for the rows that need a selection (seq_len > 2048):
//   score[s] = sum_h w[h] * relu(dot(q[h], fp8(page, off)) * scale(page, off))
// written to scores[row][s] for s < seq_len. Rows with seq_len <= 2048 are skipped: the top-k
// kernel emits all their tokens.
//
// Work split: the pages of all long rows, concatenated in row order, are split evenly over a
// persistent grid (one block per SM), so a few long rows fill the machine as well as many short
// ones. Each block:
//   - producer warp: walks its page range, reads page ids from the block table (a batch of 32
//     ahead), and streams each page (8192 B fp8 + 256 B scales, contiguous) into a ring of
//     `stages` shared-memory slots with one bulk copy completing on the slot's `full` mbarrier.
//     Only the bulk copies write the ring: consumers derive each slot's row and page from the
//     item index (no descriptor passes through shared memory);
//   - kGroups consumer groups of 4 warps take the items round robin (stages is a multiple of
//     kGroups, so each slot always serves the same group). Each warp loads its 16 tokens' A
//     fragments from shared memory (registers), the tensor cores compute 64 tokens x 64 heads x
//     K=128 (mma.sync with q in registers; or one wgmma warpgroup with q in shared memory, on
//     the fp8 operands or on f16 converted from them in registers), the warp releases the slot
//     and reduces relu * weight over heads in registers, times the token scale, and stores the
//     scores of its tokens below seq_len.
//   - wgmma-f16 (the sm_90 default): 3 groups, each waiting for and reducing its previous page
//     while the others convert or multiply (one page's wgmma chain in flight per group: ptxas
//     serialises every wgmma of the kernel when accumulators are read while a chain runs); or
//     2 groups, each converting page i + 1 while page i's chain runs (comparison variant).
//
// K permutation: the reduction over K = 128 is order-free, so both operands use the same
// permutation of K that lets each thread fetch its A fragments as two 16-byte loads per token.
// Thread (g = lane/4, t = lane%4) holds bytes [32t, 32t+32) of its tokens; k-step s uses words
// 2s and 2s+1 of them as the fragment's "k 4t.." and "k 16+4t.." registers. Logical k
// (32s + 16h + 4t + b) is physical byte 32t + 8s + 4h + b. The q operand is permuted the same way
// (in registers for mma.sync; in the swizzled shared-memory tile for wgmma, where logical 16-byte
// chunk c of a head is its physical words c, c+8, c+16, c+24).
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/indexer/common.cuh"
#include "kernels/indexer/portable/mma_sync.cuh"
#include "kernels/indexer/sm90/wgmma.cuh"

namespace dsa::cuda::idx {

struct ScoresArgs {
  const uint8_t* index_k = nullptr;      // [num_pages, 8448]
  const uint8_t* q = nullptr;            // [rows, 64, 128] e4m3
  const float* weights = nullptr;        // [rows, 64]
  const int32_t* seq_lens = nullptr;     // [rows]
  const int32_t* block_table = nullptr;  // [rows, bt_stride]
  int64_t bt_stride = 0;
  int32_t rows = 0;
  int32_t len_cap = 0;                   // seq_lens are clamped to [0, len_cap]
  int64_t score_stride = 0;              // floats per row of `scores` (multiple of 64)
  float* scores = nullptr;               // [rows, score_stride] out
  int32_t stages = 0;                    // ring slots
  int32_t flags = 0;                     // kScoresSkipMath: diagnostic, stream pages only
  long long* debug = nullptr;            // diagnostic: [4 blocks][8] clock64 stamps
  unsigned long long* timeline = nullptr;  // diagnostic: [grid][kTimelineSlots]
};

inline constexpr int32_t kScoresSkipMath = 1;  // consumers release pages untouched (no scores)

// Tensor-core variants of the scores kernel.
inline constexpr int kMmaPortable = 0;  // mma.sync m16n8k32, q in registers
inline constexpr int kMmaWgmma = 1;     // wgmma e4m3, one accumulator chain over K = 128
inline constexpr int kMmaWgmmaF16 = 2;  // wgmma f16 on converted fp8 (fp32 accumulation), two pages in flight
inline constexpr int kMmaWgmmaSplit = 3;  // wgmma e4m3, each k-step of 32 into its own accumulator, fp32 sums

// Bytes of a consumer group's q tile in shared memory.
__host__ __device__ constexpr int q_tile_bytes(int mma) { return mma == kMmaWgmmaF16 ? 2 * kQBytes : kQBytes; }

inline constexpr int kWarpsPerGroup = 4;

__host__ __device__ constexpr int scores_threads(int groups) { return (groups * kWarpsPerGroup + 1) * 32; }

// Shared-memory layout of the scores kernel (byte offsets from a 1024-aligned base).
struct ScoresLayout {
  int64_t q = 0;        // groups x q_tile_bytes: q tiles (wgmma paths), 1024-aligned
  int64_t ring = 0;     // stages x 8448
  int64_t full = 0;     // stages x mbarrier
  int64_t empty = 0;    // stages x mbarrier
  int64_t prefix = 0;   // (rows + 1) x int32: long-row page prefix
  int64_t scratch = 0;  // 33 x int32
  int64_t bytes = 0;
};

__host__ __device__ inline ScoresLayout scores_layout(int groups, int stages, int rows, int q_bytes) {
  ScoresLayout l;
  l.q = 0;
  l.ring = static_cast<int64_t>(groups) * q_bytes;
  l.full = l.ring + static_cast<int64_t>(stages) * kPageBytes;
  l.empty = l.full + 8 * stages;
  l.prefix = l.empty + 8 * stages;
  l.scratch = l.prefix + 4 * (static_cast<int64_t>(rows) + 1);
  l.bytes = l.scratch + 4 * 33;
  return l;
}

// Dynamic shared memory to request: the layout plus slack to align the base to 1024 bytes.
__host__ __device__ inline int64_t scores_smem_bytes(int groups, int stages, int rows, int q_bytes) {
  return scores_layout(groups, stages, rows, q_bytes).bytes + 1024;
}

// Loads this warp's A fragments (16 tokens: rows t0 and t0 + 8 of the page) with the K
// permutation above. Odd g reads its two 16-byte halves in the other order to avoid a 2-way bank
// conflict between rows g and g+1; the select undoes it.
__device__ __forceinline__ void load_a_fragments(uint32_t (&a)[4][4], uint32_t stage_addr, int t0, int g, int t) {
  const bool odd = (g & 1) != 0;
  const uint32_t base = stage_addr + static_cast<uint32_t>(t0 * 128 + t * 32);
  const uint32_t first = odd ? 16u : 0u, second = odd ? 0u : 16u;
  const uint4 x0 = lds128(base + first), y0 = lds128(base + second);
  const uint4 x1 = lds128(base + 8 * 128 + first), y1 = lds128(base + 8 * 128 + second);
  const uint4 lo0 = odd ? y0 : x0, hi0 = odd ? x0 : y0;  // words 0-3 and 4-7 of row t0
  const uint4 lo1 = odd ? y1 : x1, hi1 = odd ? x1 : y1;  // of row t0 + 8
  a[0][0] = lo0.x; a[0][1] = lo1.x; a[0][2] = lo0.y; a[0][3] = lo1.y;
  a[1][0] = lo0.z; a[1][1] = lo1.z; a[1][2] = lo0.w; a[1][3] = lo1.w;
  a[2][0] = hi0.x; a[2][1] = hi1.x; a[2][2] = hi0.y; a[2][3] = hi1.y;
  a[3][0] = hi0.z; a[3][1] = hi1.z; a[3][2] = hi0.w; a[3][3] = hi1.w;
}

// q fragments of this thread for the mma.sync path: heads 8j + g, bytes [32t, 32t + 32).
__device__ __forceinline__ void load_q_fragments(uint32_t (&qf)[8][8], const uint8_t* q_row, int g, int t) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const uint8_t* src = q_row + (8 * j + g) * kIndexHeadDim + 32 * t;
    const uint4 u = ldg128(src), v = ldg128(src + 16);
    qf[j][0] = u.x; qf[j][1] = u.y; qf[j][2] = u.z; qf[j][3] = u.w;
    qf[j][4] = v.x; qf[j][5] = v.y; qf[j][6] = v.z; qf[j][7] = v.w;
  }
}

// q tile of one row for the wgmma path, written by the 128 threads of a warpgroup (gt = thread
// in group): head h = gt / 2 writes logical chunks 4 * (gt % 2) .. +3, each gathered from
// physical words c, c+8, c+16, c+24, at the 128-byte-swizzled position (c ^ (h % 8)).
__device__ __forceinline__ void store_q_tile(uint8_t* q_tile, const uint8_t* q_row, int gt) {
  const int h = gt >> 1, half = gt & 1;
  const uint8_t* src = q_row + h * kIndexHeadDim;
  uint4 v[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) v[i] = ldg128(src + 16 * (half + 2 * i));
#pragma unroll
  for (int m = 0; m < 4; ++m) {
    const int c = 4 * half + m;
    uint4 chunk;
    chunk.x = m == 0 ? v[0].x : m == 1 ? v[0].y : m == 2 ? v[0].z : v[0].w;
    chunk.y = m == 0 ? v[1].x : m == 1 ? v[1].y : m == 2 ? v[1].z : v[1].w;
    chunk.z = m == 0 ? v[2].x : m == 1 ? v[2].y : m == 2 ? v[2].z : v[2].w;
    chunk.w = m == 0 ? v[3].x : m == 1 ? v[3].y : m == 2 ? v[3].z : v[3].w;
    *reinterpret_cast<uint4*>(q_tile + h * 128 + ((c ^ (h & 7)) * 16)) = chunk;
  }
}

// q tile of one row for the f16 wgmma path: two 8 KB blocks (K = 64 halves each) of 64 heads x
// 128 bytes, 128-byte swizzled. Thread gt writes head h = gt / 2, block kb = gt % 2. Half e of
// logical 16-byte chunk c of block kb is the e4m3 byte 16 kb + 32 (e / 2) + 2 c + e % 2 of the
// head (the K permutation of mma_page_wgmma_f16), converted to f16.
__device__ __forceinline__ void store_q_tile_f16(uint8_t* q_tile, const uint8_t* q_row, int gt) {
  const int h = gt >> 1, kb = gt & 1;
  const uint8_t* src = q_row + h * kIndexHeadDim + 16 * kb;
  uint4 piece[4];
#pragma unroll
  for (int m = 0; m < 4; ++m) piece[m] = ldg128(src + 32 * m);
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    uint32_t word[4];
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      const uint32_t w32 = (c >> 1) == 0 ? piece[m].x : (c >> 1) == 1 ? piece[m].y : (c >> 1) == 2 ? piece[m].z : piece[m].w;
      const uint16_t pair = static_cast<uint16_t>((c & 1) ? (w32 >> 16) : (w32 & 0xFFFFu));
#if DSA_IDX_HAVE_WGMMA
      word[m] = e4m3x2_to_f16x2(pair);
#else
      word[m] = pair;  // never used: the f16 path runs on sm_90a only
#endif
    }
    *reinterpret_cast<uint4*>(q_tile + kb * 8192 + h * 128 + ((c ^ (h & 7)) * 16)) =
        make_uint4(word[0], word[1], word[2], word[3]);
  }
}

// The scores of a thread's two tokens of a page (t0: s0, t0 + 8: s1) from the accumulators of
// its 16 heads (acc[4 j + e]: token t0, head 8 j + 2 t + e; acc[4 j + 2 + e]: token t0 + 8) and
// their weights w[2 j + e]: relu(dot * scale) * w summed over the heads (two chains per token),
// then over the 4 threads of g (every thread of the quad gets both sums). With scale >= 0,
// relu(dot * scale) = scale * relu(dot): the scale is applied once per token (the common case; a
// negative scale takes the general form).
__device__ __forceinline__ void reduce_page_scores(const float (&acc)[32], const float (&w)[16], float sc0, float sc1,
                                                   float& s0, float& s1) {
  float p0[2] = {0.f, 0.f}, p1[2] = {0.f, 0.f};
  if (sc0 >= 0.f && sc1 >= 0.f) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        p0[j & 1] = fmaf(w[2 * j + e], fmaxf(acc[4 * j + e], 0.f), p0[j & 1]);
        p1[j & 1] = fmaf(w[2 * j + e], fmaxf(acc[4 * j + 2 + e], 0.f), p1[j & 1]);
      }
    }
    s0 = (p0[0] + p0[1]) * sc0;
    s1 = (p1[0] + p1[1]) * sc1;
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        p0[j & 1] = fmaf(w[2 * j + e], fmaxf(acc[4 * j + e] * sc0, 0.f), p0[j & 1]);
        p1[j & 1] = fmaf(w[2 * j + e], fmaxf(acc[4 * j + 2 + e] * sc1, 0.f), p1[j & 1]);
      }
    }
    s0 = p0[0] + p0[1];
    s1 = p1[0] + p1[1];
  }
  s0 += __shfl_xor_sync(0xffffffffu, s0, 1);
  s1 += __shfl_xor_sync(0xffffffffu, s1, 1);
  s0 += __shfl_xor_sync(0xffffffffu, s0, 2);
  s1 += __shfl_xor_sync(0xffffffffu, s1, 2);
}

// Weights of the heads a thread's accumulators hold (heads 8 j + 2 t + e: w[2 j + e]).
__device__ __forceinline__ void load_head_weights(float (&w)[16], const float* w_row, int t) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float2 v = __ldg(reinterpret_cast<const float2*>(w_row + 8 * j + 2 * t));
    w[2 * j] = v.x;
    w[2 * j + 1] = v.y;
  }
}

#if DSA_IDX_HAVE_WGMMA
// The consumer loop of the f16 wgmma form with 3 or more groups, which hide each other's latency
// (one set of registers: 128 per thread). Group `group` takes items it = group, group + kGroups,
// ... < items from ring slot it % stages (stages a multiple of kGroups). Per item: wait for the
// group's previous chain and reduce that page (reduce(acc, tag, sc0, sc1)), then
// before_wait(it) (while the slot may still be landing), wait for the slot, after_wait(it) (e.g.
// a row switch, which must follow the previous page's reduction), load and convert the
// fragments, release the slot and issue the page's chain against the q tile (read after
// after_wait), then tag = issued(it) (lookups there overlap the chain). The last page is reduced
// after the loop.
template <int kGroups, typename BeforeWait, typename AfterWait, typename Issued, typename Reduce>
__device__ __forceinline__ void wgmma_f16_group_loop(int32_t group, int32_t items, int stages, const uint8_t* ring,
                                                     uint64_t* full, uint64_t* empty, const uint8_t* q_tile,
                                                     BeforeWait&& before_wait, AfterWait&& after_wait, Issued&& issued,
                                                     Reduce&& reduce) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int t0 = ((threadIdx.x >> 5) % kWarpsPerGroup) * 16 + g;  // this thread's tokens: t0 and t0 + 8
  uint32_t stage = static_cast<uint32_t>(group), phase = 0;
  float acc[32];
  uint32_t af[32];
  bool pending = false;
  int32_t pend_tag = 0;
  float pend_sc0 = 0.f, pend_sc1 = 0.f;
  for (int32_t it = group; it < items; it += kGroups) {
    wgmma_wait_all();
    fence_regs(acc);
    fence_regs_u32(af);
    if (pending) reduce(acc, pend_tag, pend_sc0, pend_sc1);
    before_wait(it);
    mbar_wait(&full[stage], phase);
    after_wait(it);
    const uint32_t stage_addr = smem_addr(ring + static_cast<int64_t>(stage) * kPageBytes);
    uint32_t a[4][4];
    load_a_fragments(a, stage_addr, t0, g, t);
    const float sc0 = lds_f32(stage_addr + kPageFp8Bytes + 4 * t0);
    const float sc1 = lds_f32(stage_addr + kPageFp8Bytes + 4 * (t0 + 8));
    convert_a_f16(af, a);
    release_slot(&empty[stage]);
    mma_page_wgmma_f16_issue(acc, af, smem_addr(q_tile));
    pending = true;
    pend_tag = issued(it);
    pend_sc0 = sc0;
    pend_sc1 = sc1;
    stage += kGroups;
    if (stage >= static_cast<uint32_t>(stages)) {
      stage -= stages;
      phase ^= 1;
    }
  }
  wgmma_wait_all();
  fence_regs(acc);
  if (pending) reduce(acc, pend_tag, pend_sc0, pend_sc1);
}
#endif

template <int kMma, int kGroups>
__global__ void __launch_bounds__(scores_threads(kGroups), 1) indexer_scores_kernel(const ScoresArgs args) {
  constexpr bool kWgmma = kMma != kMmaPortable;
  allow_dependent_launch();  // the top-k kernel may be scheduled now; it waits for this grid
  long long* stamps = (args.debug != nullptr && blockIdx.x < 4) ? args.debug + blockIdx.x * 8 : nullptr;
  if (stamps && threadIdx.x == 0) stamps[0] = clock64();
  timeline_mark(args.timeline, kTimelineEntry);
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  const ScoresLayout lay = scores_layout(kGroups, args.stages, args.rows, q_tile_bytes(kMma));
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + lay.full);
  uint64_t* empty = reinterpret_cast<uint64_t*>(smem + lay.empty);
  int32_t* prefix = reinterpret_cast<int32_t*>(smem + lay.prefix);
  int32_t* scratch = reinterpret_cast<int32_t*>(smem + lay.scratch);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int stages = args.stages, rows = args.rows;

  // seq_len of row tid first: everything else waits for the page prefix built from them.
  const int32_t len0 = tid < rows ? __ldg(args.seq_lens + tid) : 0;

  // Start-up: the producer's first page ids depend on seq_lens (the page prefix below), then on
  // the block table, then the pages: three dependent global loads before the first page is in.
  // The producer guesses its first 32 items as if every row had len_cap tokens (exact when the
  // rows are of equal length) and loads their page ids now, while seq_lens arrive; an id is used
  // only when the real item is the guessed one (same row and page), so a wrong guess costs the
  // load it would have made anyway. 32-bit math: the launcher keeps a call's pages below 2^31.
  int32_t spec_row = -1, spec_pg = -1, spec_id = 0;
  if (warp == kGroups * kWarpsPerGroup && args.len_cap > kTopK) {
    const uint32_t pages_cap = static_cast<uint32_t>(ceil_div64(args.len_cap, kPageSize));  // <= bt_stride
    const uint32_t total_guess = static_cast<uint32_t>(rows) * pages_cap;
    const uint32_t w = split_point(total_guess, blockIdx.x, gridDim.x) + static_cast<uint32_t>(lane);
    if (w < total_guess) {
      spec_row = static_cast<int32_t>(w / pages_cap);
      spec_pg = static_cast<int32_t>(w - static_cast<uint32_t>(spec_row) * pages_cap);
      spec_id = __ldg(args.block_table + spec_row * args.bt_stride + spec_pg);
    }
  }

  if (tid == 0) {
    for (int s = 0; s < stages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], kWarpsPerGroup * kSlotArrivals);
    }
    mbar_init_fence();
  }

  // Page counts of the long rows, then their exclusive prefix (prefix[rows] = total).
  for (int r = tid; r < rows; r += blockDim.x) {
    const int32_t len = clamp_len(r == tid ? len0 : __ldg(args.seq_lens + r), args.len_cap);
    prefix[r] = len > kTopK ? static_cast<int32_t>(ceil_div64(len, kPageSize)) : 0;
  }
  __syncthreads();
  {
    const int per = (rows + blockDim.x - 1) / blockDim.x;
    const int lo = min(rows, tid * per), hi = min(rows, lo + per);
    int32_t sum = 0;
    for (int r = lo; r < hi; ++r) sum += prefix[r];
    int32_t total = 0;
    int32_t run = block_exclusive_sum(sum, scratch, total);
    for (int r = lo; r < hi; ++r) {
      const int32_t v = prefix[r];
      prefix[r] = run;
      run += v;
    }
    if (tid == 0) prefix[rows] = total;
  }
  __syncthreads();

  if (stamps && threadIdx.x == 0) stamps[1] = clock64();
  const int64_t total = prefix[rows];  // < 2^31 (launcher)
  const int64_t item_begin = split_point(static_cast<uint32_t>(total), blockIdx.x, gridDim.x);
  const int64_t items = split_point(static_cast<uint32_t>(total), blockIdx.x + 1, gridDim.x) - item_begin;
  if (items == 0) return;
  uint8_t* ring = smem + lay.ring;
  // Row of global page item w: the largest r with prefix[r] <= w (rows without pages skipped).
  auto find_row = [&](int64_t w) {
    int lo = 0, hi = rows;
    while (hi - lo > 1) {
      const int mid = (lo + hi) >> 1;
      if (prefix[mid] <= w) lo = mid; else hi = mid;
    }
    return lo;
  };

  if (warp == kGroups * kWarpsPerGroup) {
    // ---------------- producer warp ----------------
    // Only the bulk copies write the ring; consumers derive each slot's row and page from the
    // item index themselves, so no shared-memory descriptor passes between the roles.
    const uint64_t policy = l2_policy_evict_first();
    int32_t page_c = 0;
    if (lane < items) {
      const int64_t w = item_begin + lane;
      const int r = find_row(w);
      const int32_t pg = static_cast<int32_t>(w - prefix[r]);
      page_c = (r == spec_row && pg == spec_pg) ? spec_id : __ldg(args.block_table + r * args.bt_stride + pg);
    }
    uint32_t stage = 0, phase = 0;
    for (int64_t b0 = 0; b0 < items; b0 += 32) {
      int32_t page_n = 0;
      if (b0 + 32 + lane < items) {
        const int64_t w = item_begin + b0 + 32 + lane;
        const int r = find_row(w);
        page_n = __ldg(args.block_table + r * args.bt_stride + static_cast<int32_t>(w - prefix[r]));
      }
      const int cnt = items - b0 < 32 ? static_cast<int>(items - b0) : 32;
      for (int j = 0; j < cnt; ++j) {
        const int32_t pg = __shfl_sync(0xffffffffu, page_c, j);
        if (lane == 0) {
          mbar_wait(&empty[stage], phase ^ 1);
          mbar_arrive_expect_tx(&full[stage], kPageBytes);
          bulk_copy_g2s_hint(ring + static_cast<int64_t>(stage) * kPageBytes,
                             args.index_k + static_cast<int64_t>(pg) * kPageBytes, kPageBytes, &full[stage],
                             policy);
          if (stamps && b0 + j == 0) stamps[2] = clock64();
        }
        if (++stage == static_cast<uint32_t>(stages)) {
          stage = 0;
          phase ^= 1;
        }
      }
      page_c = page_n;
    }
    return;
  }

  // ---------------- consumer warps ----------------
  const int group = warp / kWarpsPerGroup, wq = warp % kWarpsPerGroup;
  const int g = lane >> 2, t = lane & 3;
  const int t0 = wq * 16 + g;  // this thread's tokens in a page: t0 and t0 + 8
  uint8_t* q_tile = smem + lay.q + group * q_tile_bytes(kMma);
  (void)q_tile;
  uint32_t qf[8][8];
  (void)qf;
  float w[16];
  int32_t cur_row = -1, len = 0;
  float* row_scores = nullptr;  // args.scores + cur_row * score_stride
  const bool skip_math = (args.flags & kScoresSkipMath) != 0;
  uint32_t stage = static_cast<uint32_t>(group), phase = 0;
  while (stage >= static_cast<uint32_t>(stages)) {  // only when stages < kGroups (not used)
    stage -= stages;
    phase ^= 1;
  }
  auto next_stage = [&]() {
    stage += kGroups;
    if (stage >= static_cast<uint32_t>(stages)) {
      stage -= stages;
      phase ^= 1;
    }
  };
  // Loads q (registers or this group's shared tile), weights and seq_len of `row`.
  auto switch_row = [&](int32_t row) {
    cur_row = row;
    row_scores = args.scores + static_cast<int64_t>(row) * args.score_stride;
    const uint8_t* q_row = args.q + static_cast<int64_t>(row) * kQBytes;
    const float* w_row = args.weights + static_cast<int64_t>(row) * kIndexHeads;
    load_head_weights(w, w_row, t);
    len = clamp_len(__ldg(args.seq_lens + row), args.len_cap);
    if constexpr (kWgmma) {
      named_barrier(1 + group, kWarpsPerGroup * 32);  // no wgmma still reads the old tile
      if constexpr (kMma == kMmaWgmmaF16)
        store_q_tile_f16(q_tile, q_row, tid - group * kWarpsPerGroup * 32);
      else
        store_q_tile(q_tile, q_row, tid - group * kWarpsPerGroup * 32);
      fence_proxy_async_smem();
      named_barrier(1 + group, kWarpsPerGroup * 32);
    } else {
      load_q_fragments(qf, q_row, g, t);
    }
  };
  // The page's scores (reduce_page_scores), stored below seq_len of the current row.
  auto epilogue = [&](const float (&acc)[32], int32_t page_in_row, float sc0, float sc1) {
    float s0, s1;
    reduce_page_scores(acc, w, sc0, sc1, s0, s1);
    const int32_t pos = page_in_row * kPageSize + t0 + (t == 1 ? 8 : 0);
    // A predicated store rather than a branch around it: the compiler's branch (with its
    // reconvergence and a 64-bit address computed per page) sat between the reduction and the
    // next page's wait.
    st_global_if(row_scores + pos, t == 0 ? s0 : s1, t < 2 && pos < len);
  };
  if (items <= group) return;
  // The row of this group's first page is known now: fetch its q while the first pages stream in.
  int32_t item_row = find_row(item_begin + group);
  if (!skip_math) switch_row(item_row);
  auto advance_row = [&](int64_t wi) {
    while (item_row + 1 < rows && prefix[item_row + 1] <= wi) ++item_row;
  };

#if DSA_IDX_HAVE_WGMMA
  if constexpr (kMma == kMmaWgmmaF16 && kGroups >= 3) {
    if (!skip_math) {
      // Three groups (wgmma_f16_group_loop); a page's tag is its page in its row, and the row
      // switch (q, weights, length) comes after the previous page's reduction.
      // 32-bit item indices (the launcher bounds a call's pages below 2^31): fewer registers.
      const int32_t begin32 = static_cast<int32_t>(item_begin);
      wgmma_f16_group_loop<kGroups>(
          group, static_cast<int32_t>(items), stages, ring, full, empty, q_tile,
          [&](int32_t it) {
            const int32_t wi = begin32 + it;
            while (item_row + 1 < rows && prefix[item_row + 1] <= wi) ++item_row;
          },
          [&](int32_t it) {
            if (stamps && it == 0 && threadIdx.x == 0) stamps[3] = clock64();
            if (item_row != cur_row) switch_row(item_row);
          },
          [&](int32_t it) {
            if (stamps && it == 0 && threadIdx.x == 0) stamps[4] = clock64();
            return begin32 + it - prefix[item_row];
          },
          [&](const float (&acc)[32], int32_t page_in_row, float sc0, float sc1) {
            epilogue(acc, page_in_row, sc0, sc1);
          });
      if (stamps && threadIdx.x == 0) stamps[5] = clock64();
      timeline_mark(args.timeline, kTimelineWorkDone);
      timeline_mark(args.timeline, kTimelineExit);
      return;
    }
  } else if constexpr (kMma == kMmaWgmmaF16) {
    if (!skip_math) {
      // Software pipelined per warpgroup: while page i's f16 wgmma chain runs on the tensor
      // cores, the warps load and convert page i + 1 (and release its ring slot); then they wait,
      // reduce page i and issue page i + 1. (The accumulators are read only after a wait for all
      // groups: ptxas serialises every wgmma when they are read while any group is in flight.)
      float acc[32];
      uint32_t af[2][32];
      bool pending = false;  // page whose wgmma was issued and not yet reduced
      int32_t pend_page = 0;
      float pend_sc0 = 0.f, pend_sc1 = 0.f;
      int64_t it = group;
      auto step = [&](auto parity) {
        constexpr int P = decltype(parity)::value;
        const int64_t wi = item_begin + it;
        advance_row(wi);
        mbar_wait(&full[stage], phase);
        if (stamps && it == 0 && threadIdx.x == 0) stamps[3] = clock64();
        if (item_row != cur_row) {
          // The old row's page: reduce it before its q, weights and len change.
          wgmma_wait_all();
          if (pending) {
            fence_regs(acc);
            epilogue(acc, pend_page, pend_sc0, pend_sc1);
            pending = false;
          }
          switch_row(item_row);
        }
        const uint32_t stage_addr = smem_addr(ring + static_cast<int64_t>(stage) * kPageBytes);
        uint32_t a[4][4];
        load_a_fragments(a, stage_addr, t0, g, t);
        const float sc0 = lds_f32(stage_addr + kPageFp8Bytes + 4 * t0);
        const float sc1 = lds_f32(stage_addr + kPageFp8Bytes + 4 * (t0 + 8));
        convert_a_f16(af[P], a);
        release_slot(&empty[stage]);
        wgmma_wait_all();
        fence_regs(acc);
        fence_regs_u32(af[1 - P]);
        if (pending) epilogue(acc, pend_page, pend_sc0, pend_sc1);
        mma_page_wgmma_f16_issue(acc, af[P], smem_addr(q_tile));
        pending = true;
        pend_page = static_cast<int32_t>(wi - prefix[item_row]);
        pend_sc0 = sc0;
        pend_sc1 = sc1;
        if (stamps && it == 0 && threadIdx.x == 0) stamps[4] = clock64();
        next_stage();
        it += kGroups;
      };
      while (true) {
        step(std::integral_constant<int, 0>{});
        if (it >= items) break;
        step(std::integral_constant<int, 1>{});
        if (it >= items) break;
      }
      wgmma_wait_all();
      fence_regs(acc);
      if (pending) epilogue(acc, pend_page, pend_sc0, pend_sc1);
      if (stamps && threadIdx.x == 0) stamps[5] = clock64();
      timeline_mark(args.timeline, kTimelineWorkDone);
      timeline_mark(args.timeline, kTimelineExit);
      return;
    }
  }
#endif

  for (int64_t it = group; it < items; it += kGroups) {
    const int64_t wi = item_begin + it;
    advance_row(wi);
    mbar_wait(&full[stage], phase);
    if (stamps && it == 0 && threadIdx.x == 0) stamps[3] = clock64();
    if (skip_math) {
      release_slot(&empty[stage]);
      next_stage();
      continue;
    }
    if (item_row != cur_row) switch_row(item_row);
    const uint32_t stage_addr = smem_addr(ring + static_cast<int64_t>(stage) * kPageBytes);
    uint32_t a[4][4];
    load_a_fragments(a, stage_addr, t0, g, t);
    const float sc0 = lds_f32(stage_addr + kPageFp8Bytes + 4 * t0);
    const float sc1 = lds_f32(stage_addr + kPageFp8Bytes + 4 * (t0 + 8));
    float acc[32];
    if constexpr (kWgmma) {
#if DSA_IDX_HAVE_WGMMA
      if constexpr (kMma == kMmaWgmmaF16)
        mma_page_wgmma_f16(acc, a, smem_addr(q_tile));
      else if constexpr (kMma == kMmaWgmmaSplit)
        mma_page_wgmma_split(acc, a, smem_addr(q_tile));
      else
        mma_page_wgmma(acc, a, smem_addr(q_tile));
#else
      __trap();  // the launcher takes this path only on sm_90a
#endif
    } else {
      mma_page_portable(acc, a, qf);
    }
    release_slot(&empty[stage]);
    epilogue(acc, static_cast<int32_t>(wi - prefix[item_row]), sc0, sc1);
    if (stamps && it == 0 && threadIdx.x == 0) stamps[4] = clock64();
    next_stage();
  }
  if (stamps && threadIdx.x == 0) stamps[5] = clock64();
  timeline_mark(args.timeline, kTimelineWorkDone);
  timeline_mark(args.timeline, kTimelineExit);
}

}  // namespace dsa::cuda::idx
