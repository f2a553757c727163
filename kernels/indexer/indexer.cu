// CUDA indexer launcher (SPEC §1.1). A call is one launch, or two per 8192 rows, in stream
// order, with no host synchronisation and no allocation:
//   - fused (sm_90, when the rows fit the GPU at once with a cluster of 1..8 blocks each and are
//     about even): one kernel scores each row's chunks into shared memory and selects from them
//     (fused.cuh); where a row needs more blocks than a cluster gives (few long rows), the same
//     kernel in row groups of up to 16 blocks, a cooperative launch whose blocks exchange through
//     the workspace (row_group.cuh);
//   - otherwise 1. scores (only when some row may exceed 2048 tokens): FP8 tensor-core scores of
//     the long rows into the workspace, persistent grid of one block per SM (scores.cuh);
//     2. top-k: one cluster of 1..8 blocks per row selects 2048 ids, or emits every token of a
//     short row (topk.cuh).
// Workspace, when max_seq_len > 2048: scores, rows x round_up(max_seq_len, 64) floats (unused by
// the fused kernel), then the row groups' region, min(rows, kGroupMaxRows) x kGroupRowBytes.
#include "kernels/indexer/indexer.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>

#include "common/error.hpp"
#include "kernels/indexer/indexer_internal.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda {
namespace {

using idx::ceil_div64;

constexpr int kMaxDevices = 64;
constexpr int kScoreStages = 12;         // ring slots of 8448 B (about 100 KB)
// Slot s of the ring holds items s, s + stages, ...; a consumer group takes every kGroups-th
// item, so each slot must stay with one group (stages a multiple of the group count: 2 or 3),
// else a group could wait on a slot's phase parity one phase ahead of another group's page.
constexpr int kStageMultiple = 6;
constexpr int kMinScoreStages = kStageMultiple;
constexpr int kRowsPerScoresLaunch = 8192;  // bounds the per-block row prefix in shared memory
constexpr int kScoresPagesPerBlock = 16;    // fewer blocks than SMs when the work is small
constexpr int kSmallWorkPagesPerBlock = 48; // at most this many pages per block: the shallow ring
constexpr int kMaxTopkCluster = 8;          // portable cluster size
constexpr int32_t kTopkSplitKeys = 16384;   // keys per top-k block above which idle SMs take a share
constexpr int kQTileBytes = idx::q_tile_bytes(idx::kMmaWgmmaF16);  // the largest q tile of any path
constexpr int kDefaultTopkVariant = idx::kTopkGather;
constexpr int64_t kGroupMaxRows = 128;      // row groups have >= 2 blocks per row: rows <= SMs / 2
// Fused kernel: ring depth (a multiple of its 3 consumer groups), most first while the shared
// memory allows; taken by default when its blocks would read at most kFusedEvenSlack times the
// pages of the persistent grid's blocks (+ kFusedEvenPages).
constexpr int kFusedMaxStages = 12;
constexpr int kFusedMinStages = 6;
// (1.4: b=32 L=6400 on 3 blocks per row reads 34 pages per block against the persistent grid's
// 25 and is the faster form, 24.35 us against 24.93; b=8 L=128K on 8 reads 256 against 125.)
constexpr double kFusedEvenSlack = 1.4;
constexpr int64_t kFusedEvenPages = 2;
// Scores path on sm_90. kWgmma (fp8 operands, the tensor core's reduced-precision fp8
// accumulation) failed the SPEC top-k criterion on about 1 of 1,000 random long rows (H100 and
// H200). kWgmmaF16 (fp8 converted to f16 in registers, fp32 accumulation, 3 consumer groups)
// passes every gpu_indexer_tests case and runs as fast as kWgmma on an H200 (2026-11-23,
// b=64 L=32K: 113 us vs 113 us; mma.sync 212 us), so it is the default.
constexpr IndexerScoresPath kDefaultSm90Path = IndexerScoresPath::kWgmmaF16;

struct DeviceCaps {
  int sms = 0;
  int cc_major = 0, cc_minor = 0;
  int smem_optin = 0;
};

int current_device() {
  int dev = 0;
  DSA_CHECK_CUDA(cudaGetDevice(&dev));
  DSA_REQUIRE(dev >= 0 && dev < kMaxDevices, "indexer: device ordinal ", dev, " out of range");
  return dev;
}

const DeviceCaps& device_caps() {
  static std::mutex mutex;
  static std::map<int, DeviceCaps> caps;
  const int dev = current_device();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = caps.find(dev);
  if (it == caps.end()) {
    DeviceCaps c;
    DSA_CHECK_CUDA(cudaDeviceGetAttribute(&c.sms, cudaDevAttrMultiProcessorCount, dev));
    DSA_CHECK_CUDA(cudaDeviceGetAttribute(&c.cc_major, cudaDevAttrComputeCapabilityMajor, dev));
    DSA_CHECK_CUDA(cudaDeviceGetAttribute(&c.cc_minor, cudaDevAttrComputeCapabilityMinor, dev));
    DSA_CHECK_CUDA(cudaDeviceGetAttribute(&c.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    it = caps.emplace(dev, c).first;
  }
  return it->second;
}

struct Plan {
  IndexerScoresPath path = IndexerScoresPath::kAuto;  // resolved, when need_scores
  int fused_cluster = 0;     // > 0: the fused kernel, this many blocks per row (and the fields below)
  bool fused_group = false;  // ... in row groups (no cluster, cooperative launch)
  int fused_stages = 0;
  int32_t fused_chunk_cap = 0;
  size_t fused_smem = 0;
  int64_t score_stride = 0;  // floats per workspace row
  int32_t len_cap = 0;       // seq_lens clamped to this (max_seq_len, block-table capacity)
  bool need_scores = false;  // some row may exceed 2048 tokens
  int rows_per_launch = 0;
  int stages = 0;
  int scores_grid = 0;
  size_t scores_smem = 0;
  int cluster = 1;
  bool smem_keys = false;
  int32_t chunk_cap = 0;
  size_t topk_smem = 0;
};

Plan make_plan(int64_t rows, int32_t max_seq_len, int64_t max_num_pages, const DeviceCaps& caps, int stages = 0,
               int topk_cluster = 0) {
  Plan plan;
  plan.len_cap = static_cast<int32_t>(std::min<int64_t>(std::max<int32_t>(max_seq_len, 0), max_num_pages * kPageSize));
  plan.score_stride = ceil_div64(std::max<int32_t>(max_seq_len, 0), 64) * 64;
  plan.need_scores = plan.len_cap > kTopK;

  if (plan.need_scores) {
    plan.rows_per_launch = static_cast<int>(std::min<int64_t>(rows, kRowsPerScoresLaunch));
    const int64_t pages_bound = plan.rows_per_launch * ceil_div64(plan.len_cap, kPageSize);
    DSA_REQUIRE(pages_bound < (int64_t{1} << 31), "indexer: too many pages in one call (", pages_bound, ")");
    plan.scores_grid = static_cast<int>(std::clamp<int64_t>(ceil_div64(pages_bound, kScoresPagesPerBlock), 1, caps.sms));
    // Blocks with few pages each (b=32 L=6400: 24) start sooner with a shallower ring.
    const bool small_work = pages_bound <= int64_t{kSmallWorkPagesPerBlock} * plan.scores_grid;
    plan.stages = stages > 0    ? static_cast<int>(ceil_div64(stages, kStageMultiple) * kStageMultiple)
                  : small_work ? kMinScoreStages
                               : kScoreStages;
    while (plan.stages > kMinScoreStages &&
           idx::scores_smem_bytes(idx::kMaxScoreGroups, plan.stages, plan.rows_per_launch, kQTileBytes) > caps.smem_optin)
      plan.stages -= kStageMultiple;
    plan.scores_smem =
        static_cast<size_t>(idx::scores_smem_bytes(idx::kMaxScoreGroups, plan.stages, plan.rows_per_launch, kQTileBytes));
    DSA_REQUIRE(plan.scores_smem <= static_cast<size_t>(caps.smem_optin), "indexer: scores kernel needs ",
                plan.scores_smem, " B of shared memory, the device allows ", caps.smem_optin);

    plan.cluster = 0;
    for (int c = 1; c <= kMaxTopkCluster; c *= 2) {
      if (idx::topk_smem_bytes(true, idx::topk_chunk(plan.len_cap, c)) <= caps.smem_optin) {
        plan.cluster = c;
        break;
      }
    }
    // The fewest blocks per row whose shared memory holds the row's keys: splitting further
    // costs cluster barriers and merges that outweigh the shorter passes (measured on H100:
    // b=32 L=6400 14 us with 1 block per row, 18 us with 2; b=64 L=32K the same with 1 or 2).
    plan.smem_keys = plan.cluster != 0;
    if (!plan.smem_keys) plan.cluster = kMaxTopkCluster;
    // Long rows with SMs to spare: more blocks per row while a block would own more than
    // kTopkSplitKeys keys and the clusters of all rows still fit the SMs at once (H200,
    // 2026-11-23: b=8 L=128K 67.3 us with 8 blocks per row, 68.6 with 4; b=64 L=32K 108.4 with
    // 2 blocks per row, 108.3 with 1; b=32 L=6400 with 2: 31.4, with 1: 29.0).
    while (plan.smem_keys && plan.cluster < kMaxTopkCluster &&
           idx::topk_chunk(plan.len_cap, plan.cluster) > kTopkSplitKeys && rows * plan.cluster * 2 <= caps.sms)
      plan.cluster *= 2;
    if (topk_cluster > 0) {
      DSA_REQUIRE(topk_cluster <= kMaxTopkCluster, "indexer: top-k cluster size ", topk_cluster, " is not 1 to ",
                  kMaxTopkCluster);
      plan.cluster = topk_cluster;
      plan.smem_keys = idx::topk_smem_bytes(true, idx::topk_chunk(plan.len_cap, topk_cluster)) <= caps.smem_optin;
    }
    plan.chunk_cap = idx::topk_chunk(plan.len_cap, plan.cluster);
    DSA_REQUIRE(plan.chunk_cap < idx::kMaxTopkChunk, "indexer: max_seq_len ", max_seq_len,
                " gives top-k chunks of ", plan.chunk_cap, " keys, the most is ", idx::kMaxTopkChunk - 1);
  }
  plan.topk_smem = static_cast<size_t>(idx::topk_smem_bytes(plan.smem_keys, plan.chunk_cap));
  DSA_REQUIRE(plan.topk_smem <= static_cast<size_t>(caps.smem_optin), "indexer: max_seq_len ", max_seq_len,
              " needs more shared memory for top-k than the device has");
  return plan;
}

IndexerScoresPath resolve_path(IndexerScoresPath path, const DeviceCaps& caps) {
  if (path == IndexerScoresPath::kAuto)
    return caps.cc_major == 9 && caps.cc_minor == 0 ? kDefaultSm90Path : IndexerScoresPath::kPortable;
  if (path == IndexerScoresPath::kWgmma || path == IndexerScoresPath::kWgmmaF16 || path == IndexerScoresPath::kWgmmaSplit)
    DSA_REQUIRE(caps.cc_major == 9 && caps.cc_minor == 0, "indexer: the wgmma path needs an sm_90 device, this is sm_",
                caps.cc_major, caps.cc_minor);
  return path;
}

// The fused kernel's shape for rows split over `blocks` each: the chunk a block owns, the deepest
// ring with which it fits the shared memory, and that shared memory. stages = 0 when none fits.
struct FusedFit {
  int stages = 0;
  int32_t chunk = 0;
  size_t smem = 0;
};
FusedFit fused_fit(const Plan& plan, const DeviceCaps& caps, int blocks) {
  FusedFit f;
  f.chunk = idx::topk_chunk(plan.len_cap, blocks);
  if (f.chunk >= idx::kMaxTopkChunk) return f;
  for (int st = kFusedMaxStages; st >= kFusedMinStages; st -= idx::kFusedGroups) {
    const int64_t bytes = idx::fused_smem_bytes(st, f.chunk);
    if (bytes <= caps.smem_optin) {
      f.stages = st;
      f.smem = static_cast<size_t>(bytes);
      return f;
    }
  }
  return f;
}

// The plan takes the fused kernel with `blocks` per row in shape f (f.stages > 0).
void take_fused(Plan& plan, int blocks, bool row_groups, const FusedFit& f) {
  plan.fused_cluster = blocks;
  plan.fused_group = row_groups;
  plan.fused_stages = f.stages;
  plan.fused_chunk_cap = f.chunk;
  plan.fused_smem = f.smem;
}

// The fused kernel's shape for rows of up to len_cap tokens, `cluster` blocks per row when given.
// Otherwise the most blocks per row (1..8; more blocks stream more of the row at once) with which
// every row's cluster runs at once and a chunk's keys fit the shared memory with a ring of at least
// kFusedMinStages pages. Not only powers of two: 32 clusters of 4 do not all run at once on an
// H200 (31 do; the occupancy query decides), and 3 blocks per row beat the two-kernel form there
// (b=32 L=6400: 24.35 us against 24.93). `allow_waves` (forced fused): when no cluster size runs
// at once, the fewest blocks per row that fit, in several waves. The deepest ring that fits.
// fused_cluster = 0: no shape.
void plan_fused(Plan& plan, int64_t rows, const DeviceCaps& caps, int cluster, bool allow_waves) {
  int c = cluster;
  if (c == 0) {
    const int most = static_cast<int>(std::clamp<int64_t>(caps.sms / std::max<int64_t>(rows, 1), 1, kMaxTopkCluster));
    for (int k = most; k >= 1 && c == 0; --k) {
      const FusedFit f = fused_fit(plan, caps, k);
      if (f.stages == 0) break;  // fewer blocks per row: longer chunks, which fit no better
      if (rows <= idx::fused_max_active_clusters(k, f.smem)) c = k;
    }
    for (int k = 1; k <= kMaxTopkCluster && c == 0 && allow_waves; ++k)
      if (fused_fit(plan, caps, k).stages > 0) c = k;
    if (c == 0) return;
  }
  const FusedFit f = fused_fit(plan, caps, c);
  if (f.stages > 0) take_fused(plan, c, false, f);
}

// The fused kernel in row groups: `blocks` per row when given, else kMaxGroupBlocks, reduced until
// every block of the call runs at once (cooperative launch). fused_group stays false when fewer
// than 2 blocks per row would.
void plan_fused_group(Plan& plan, int64_t rows, const DeviceCaps& caps, int blocks) {
  if (rows < 1 || rows > kGroupMaxRows) return;
  int g = static_cast<int>(std::min<int64_t>(caps.sms / rows, idx::kMaxGroupBlocks));
  if (blocks > 0) g = std::min(g, blocks);
  for (; g >= 2; --g) {
    const FusedFit f = fused_fit(plan, caps, g);
    if (f.stages == 0) return;  // fewer blocks per row: longer chunks, which fit no better
    if (rows * g > idx::fused_max_resident_blocks(f.smem)) continue;
    take_fused(plan, g, true, f);
    return;
  }
}

// Whether the fused kernel (its rows' clusters running at once, plan_fused) is expected to beat
// the two-kernel form: its blocks read not many more pages than the persistent scores grid's.
bool fused_pays(const Plan& plan, const IndexerParams& p, const DeviceCaps& caps) {
  const int64_t row_pages = ceil_div64(plan.len_cap, kPageSize);
  const int64_t scored = p.scored_pages >= 0 ? p.scored_pages : p.rows * row_pages;
  const int64_t fused_per_block = ceil_div64(row_pages, plan.fused_cluster);
  const int64_t persistent_per_block = ceil_div64(scored, caps.sms);
  return static_cast<double>(fused_per_block) <= kFusedEvenSlack * static_cast<double>(persistent_per_block) + kFusedEvenPages;
}

// make_plan and the scores path (when rows need scores), then the fused kernel where the options
// and the device allow it and (auto) it pays.
Plan make_call_plan(const IndexerParams& p, const DeviceCaps& caps, const IndexerRunOptions& options) {
  Plan plan = make_plan(p.rows, p.max_seq_len, p.max_num_pages, caps, options.stages, options.topk_cluster);
  if (plan.need_scores) plan.path = resolve_path(options.path, caps);
  const bool eligible = plan.need_scores && options.fused != 0 && plan.path == IndexerScoresPath::kWgmmaF16 &&
                        options.scores_groups != idx::kScoreGroups && options.run_scores && options.run_topk &&
                        !options.stream_only && options.scores_debug == nullptr && p.rows <= kRowsPerScoresLaunch;
  if (!eligible) return plan;
  // The cluster form (the default call: plan_fused's own cluster size; none when a top-k cluster
  // size is given without forcing the fused kernel).
  const bool auto_fused = options.fused < 0 && options.topk_cluster == 0;
  const bool cluster_form = options.fused > 0 || options.topk_cluster <= 0;
  Plan fused = plan;
  if (cluster_form) plan_fused(fused, p.rows, caps, options.fused > 0 ? options.topk_cluster : 0, options.fused > 0);
  // Row groups: forced, or (auto) where they give a row more blocks than a cluster can and pay
  // while the cluster form does not (H200: b=8 L=128K 16 blocks per row, 59.9 us against 61.4 for
  // the two-kernel form; b=32 L=6400 on 4, 27.2 us against 24.9 with clusters of 3: the exchange
  // through global memory costs more than the fourth block saves there).
  if (options.fused_group > 0 || (options.fused_group < 0 && auto_fused)) {
    Plan grp = plan;
    plan_fused_group(grp, p.rows, caps, std::max(options.fused_group, 0));
    if (grp.fused_group) {
      if (options.fused_group > 0) return grp;
      const bool cluster_pays = fused.fused_cluster > 0 && fused_pays(fused, p, caps);
      if (grp.fused_cluster > fused.fused_cluster && fused_pays(grp, p, caps) && !cluster_pays) return grp;
    }
  }
  if (!cluster_form || fused.fused_cluster == 0) return plan;
  if (options.fused < 0 && !fused_pays(fused, p, caps)) return plan;
  return fused;
}

}  // namespace

namespace idx {

void ensure_smem_limit(const void* kernel, int slot, size_t bytes) {
  static std::atomic<size_t> set_bytes[16][kMaxDevices] = {};
  DSA_REQUIRE(slot >= 0 && slot < 16, "indexer: bad kernel slot ", slot);
  const int dev = current_device();
  if (bytes <= set_bytes[slot][dev].load(std::memory_order_relaxed)) return;
  DSA_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  size_t cur = set_bytes[slot][dev].load();
  while (cur < bytes && !set_bytes[slot][dev].compare_exchange_weak(cur, bytes)) {
  }
}

}  // namespace idx

namespace {
// The scores' part of the workspace (a multiple of 256 bytes); the row groups' region follows.
size_t scores_workspace_bytes(int64_t rows, int32_t max_seq_len) {
  if (rows <= 0 || max_seq_len <= kTopK) return 0;
  return static_cast<size_t>(rows) * static_cast<size_t>(ceil_div64(max_seq_len, 64) * 64) * sizeof(float);
}

// A number new to every call (row groups' flags and tags): a random start, then a fixed odd step;
// neither it nor its low half (the tag) is 0 or all ones (what a zeroed or 0xFF-poisoned
// workspace holds).
unsigned long long next_group_nonce() {
  static const unsigned long long start = [] {
    std::random_device rd;
    return (static_cast<unsigned long long>(rd()) << 32) ^ rd();
  }();
  static std::atomic<unsigned long long> calls{0};
  for (;;) {
    const unsigned long long v = start + 0x9E3779B97F4A7C15ull * (calls.fetch_add(1) + 1);
    const uint32_t tag = static_cast<uint32_t>(v);
    if (v != 0 && v != ~0ull && tag != 0 && tag != ~0u) return v;
  }
}
}  // namespace

size_t indexer_workspace_bytes(int64_t rows, int32_t max_seq_len) {
  if (rows <= 0 || max_seq_len <= kTopK) return 0;
  return scores_workspace_bytes(rows, max_seq_len) +
         static_cast<size_t>(std::min(rows, kGroupMaxRows)) * static_cast<size_t>(idx::kGroupRowBytes);
}

IndexerScoresPath indexer_default_path() { return resolve_path(IndexerScoresPath::kAuto, device_caps()); }

const char* indexer_path_name(IndexerScoresPath path) {
  switch (path) {
    case IndexerScoresPath::kAuto: return "auto";
    case IndexerScoresPath::kPortable: return "mma.sync";
    case IndexerScoresPath::kWgmma: return "wgmma";
    case IndexerScoresPath::kWgmmaF16: return "wgmma-f16";
    case IndexerScoresPath::kWgmmaSplit: return "wgmma-split";
  }
  return "?";
}

IndexerLaunchShape indexer_launch_shape(const IndexerParams& p, const IndexerRunOptions& options) {
  const DeviceCaps& caps = device_caps();
  const Plan plan = make_call_plan(p, caps, options);
  IndexerLaunchShape s;
  s.fused_cluster = plan.fused_cluster;
  s.fused_group = plan.fused_group;
  s.fused_stages = plan.fused_stages;
  s.scores_grid = plan.need_scores ? plan.scores_grid : 0;
  s.scores_stages = plan.stages;
  s.topk_cluster = plan.cluster;
  s.topk_smem_keys = plan.smem_keys;
  return s;
}

void indexer_run(const IndexerParams& p, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                 const IndexerRunOptions& options) {
  DSA_REQUIRE(p.rows >= 0, "indexer: rows = ", p.rows, " is negative");
  DSA_REQUIRE(p.max_seq_len >= 0, "indexer: max_seq_len = ", p.max_seq_len, " is negative");
  DSA_REQUIRE(p.max_num_pages >= 0, "indexer: max_num_pages = ", p.max_num_pages, " is negative");
  if (p.rows == 0) return;
  DSA_REQUIRE(p.topk_indices != nullptr && p.seq_lens != nullptr, "indexer: null topk_indices or seq_lens");
  DSA_REQUIRE(p.max_num_pages == 0 || p.block_table != nullptr, "indexer: null block_table");
  const DeviceCaps& caps = device_caps();
  Plan plan = make_call_plan(p, caps, options);
  if (plan.fused_group) {
    // A captured call would replay with the same nonce, which a replay's stale flags match: no
    // row groups in a CUDA graph.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    DSA_CHECK_CUDA(cudaStreamIsCapturing(stream, &capture));
    if (capture != cudaStreamCaptureStatusNone) {
      IndexerRunOptions o = options;
      o.fused_group = 0;
      plan = make_call_plan(p, caps, o);
    }
  }
  const IndexerScoresPath path = plan.path;

  float* scores = static_cast<float*>(workspace);
  if (plan.need_scores) {
    DSA_REQUIRE(p.index_k != nullptr && p.q_index != nullptr && p.weights != nullptr,
                "indexer: null index_k, q_index or weights");
    const size_t need = indexer_workspace_bytes(p.rows, p.max_seq_len);
    DSA_REQUIRE(workspace != nullptr && workspace_bytes >= need, "indexer: workspace of ", workspace_bytes,
                " B, need ", need, " B");
  }

  const int32_t topk_variant = options.topk_variant < 0 ? kDefaultTopkVariant : options.topk_variant;
  DSA_REQUIRE(topk_variant == idx::kTopkGather || topk_variant == idx::kTopkDistributed,
              "indexer: unknown top-k variant ", options.topk_variant);

  if (plan.fused_cluster > 0) {
    idx::FusedArgs a;
    a.index_k = p.index_k;
    a.q = p.q_index;
    a.weights = p.weights;
    a.seq_lens = p.seq_lens;
    a.block_table = p.block_table;
    a.bt_stride = p.max_num_pages;
    a.len_cap = plan.len_cap;
    a.chunk_cap = plan.fused_chunk_cap;
    a.stages = plan.fused_stages;
    a.variant = topk_variant;
    a.out = p.topk_indices;
    a.debug = options.topk_debug;
    a.timeline = options.timeline;
    if (plan.fused_group) {
      DSA_REQUIRE(p.rows <= kGroupMaxRows, "indexer: row groups for ", p.rows, " rows");
      a.group_blocks = plan.fused_cluster;
      a.group_ws = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(workspace) +
                                               scores_workspace_bytes(p.rows, p.max_seq_len));
      a.group_nonce = next_group_nonce();
      idx::launch_fused_group(a, p.rows, plan.fused_smem, stream);
    } else {
      idx::launch_fused(a, p.rows, plan.fused_cluster, plan.fused_smem, stream);
    }
    return;
  }

  if (options.run_scores && plan.need_scores) {
    for (int64_t row0 = 0; row0 < p.rows; row0 += plan.rows_per_launch) {
      idx::ScoresArgs a;
      a.index_k = p.index_k;
      a.q = p.q_index + row0 * idx::kQBytes;
      a.weights = p.weights + row0 * kIndexHeads;
      a.seq_lens = p.seq_lens + row0;
      a.block_table = p.block_table + row0 * p.max_num_pages;
      a.bt_stride = p.max_num_pages;
      a.rows = static_cast<int32_t>(std::min<int64_t>(plan.rows_per_launch, p.rows - row0));
      a.len_cap = plan.len_cap;
      a.score_stride = plan.score_stride;
      a.scores = scores + row0 * plan.score_stride;
      a.stages = plan.stages;
      a.flags = options.stream_only ? idx::kScoresSkipMath : 0;
      a.debug = row0 == 0 ? options.scores_debug : nullptr;
      a.timeline = row0 == 0 ? options.timeline : nullptr;
      if (path == IndexerScoresPath::kWgmma)
        idx::launch_scores_wgmma(a, plan.scores_grid, plan.scores_smem, stream);
      else if (path == IndexerScoresPath::kWgmmaF16)
        idx::launch_scores_wgmma_f16(a, options.scores_groups == idx::kScoreGroups ? idx::kScoreGroups : idx::kScoreGroupsF16,
                                      plan.scores_grid, plan.scores_smem, stream);
      else if (path == IndexerScoresPath::kWgmmaSplit)
        idx::launch_scores_wgmma_split(a, plan.scores_grid, plan.scores_smem, stream);
      else
        idx::launch_scores_portable(a, plan.scores_grid, plan.scores_smem, stream);
    }
  }

  if (options.run_topk) {
    idx::TopkArgs a;
    a.scores = scores;
    a.score_stride = plan.score_stride;
    a.seq_lens = p.seq_lens;
    a.block_table = p.block_table;
    a.bt_stride = p.max_num_pages;
    a.len_cap = plan.len_cap;
    a.chunk_cap = plan.chunk_cap;
    a.out = p.topk_indices;
    a.debug = options.topk_debug;
    a.variant = topk_variant;
    const bool after_scores = options.pdl && options.run_scores && plan.need_scores;
    idx::launch_topk(a, p.rows, plan.cluster, plan.smem_keys, plan.topk_smem, after_scores, stream);
  }
}

void indexer(const IndexerParams& p, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  indexer_run(p, workspace, workspace_bytes, stream, IndexerRunOptions{});
}

}  // namespace dsa::cuda
