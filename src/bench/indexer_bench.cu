// dsa-bench indexer: the CUDA indexer (scores + top-2048) against the memory floor.
//
// Suites: "" = the shape table (b=64 L=32K, b=8 L=128K, b=32 L=6400, b=128 L=6400; each row
// its own pages in random order, so nothing is reused across rows) and the contest-like "fib"
// row; "fib" = the fib row alone; "shapes" = the table alone; "paths" = the table for every
// scores path (mma.sync, wgmma, wgmma-f16, wgmma-split), no PDL, top-k variants and cluster sizes and a
// stream-only diagnostic,
// with the scores and top-k phases also timed alone and clock64 stamps of their phases.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "kernels/indexer/indexer.hpp"
#include "kernels/indexer/indexer_internal.hpp"
#include "kernels/params.hpp"
#include "kernels/shapes.hpp"
#include "src/bench/bench.hpp"

namespace dsa::bench {
namespace {

// Bytes that must move per call: every used K page read once (8192 B fp8 + 256 B scales), and
// per row q (8192 B), weights (256 B), seq_len (4 B), the used block-table entries (4 B each)
// and the output (2048 ids x 4 B). Scores kept in the workspace are not counted (they need not
// leave the chip).
constexpr double kBytesPerPage = kIndexPageBytes;
constexpr double kBytesPerRowFixed = kIndexHeads * kIndexHeadDim + kIndexHeads * 4.0 + 4.0 + kTopK * 4.0;

double bytes_for(int64_t rows, int64_t used_pages) {
  return rows * kBytesPerRowFixed + used_pages * (kBytesPerPage + 4.0);
}

// Per-token scales, positive, spread like amax / 448 of real keys.
__global__ void fill_scales_kernel(uint8_t* index_k, int64_t pages, uint64_t seed) {
  const int64_t n = pages * kPageSize;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i);
    x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    const float u = static_cast<float>(x >> 40) * (1.0f / 16777216.0f);
    float* scales = reinterpret_cast<float*>(index_k + (i / kPageSize) * kIndexPageBytes + kIndexPageFp8Bytes);
    scales[i % kPageSize] = (2.5f + u) / 448.0f;
  }
}

// The K cache, queries and outputs for up to `max_rows` rows of up to `max_pages` pages each.
struct Workload {
  int64_t max_rows = 0, max_pages = 0, cache_pages = 0;
  DeviceArray<uint8_t> index_k, q;
  DeviceArray<float> weights;
  DeviceArray<int32_t> seq_lens, block_table, topk;
  DeviceArray<uint8_t> workspace;
  size_t workspace_bytes = 0;
  Workload(int64_t rows, int64_t pages_per_row, int64_t cache, int32_t max_len)
      : max_rows(rows), max_pages(pages_per_row), cache_pages(cache), index_k(size_t(cache) * kIndexPageBytes),
        q(size_t(rows) * kIndexHeads * kIndexHeadDim), weights(size_t(rows) * kIndexHeads), seq_lens(size_t(rows)),
        block_table(size_t(rows * pages_per_row)), topk(size_t(rows) * kTopK),
        workspace(cuda::indexer_workspace_bytes(rows, max_len)),
        workspace_bytes(cuda::indexer_workspace_bytes(rows, max_len)) {}
  void fill(uint64_t seed, cudaStream_t s) {
    fill_uniform_e4m3(index_k.ptr, size_t(cache_pages) * kIndexPageBytes, 448.f, seed, s);
    fill_scales_kernel<<<1024, 256, 0, s>>>(index_k.ptr, cache_pages, seed + 1);
    DSA_CHECK_LAUNCH();
    fill_uniform_e4m3(q.ptr, size_t(max_rows) * kIndexHeads * kIndexHeadDim, 4.f, seed + 2, s);
    fill_uniform_f32(weights.ptr, size_t(max_rows) * kIndexHeads, -1.f, 1.f, seed + 3, s);
  }
  IndexerParams params(int64_t row0, int64_t rows, int32_t max_len) const {
    IndexerParams p;
    p.index_k = index_k.ptr;
    p.num_pages = cache_pages;
    p.q_index = q.ptr + row0 * kIndexHeads * kIndexHeadDim;
    p.weights = weights.ptr + row0 * kIndexHeads;
    p.seq_lens = seq_lens.ptr + row0;
    p.block_table = block_table.ptr + row0 * max_pages;
    p.max_num_pages = max_pages;
    p.rows = rows;
    p.max_seq_len = max_len;
    p.topk_indices = topk.ptr + row0 * kTopK;
    return p;
  }
};

std::string shape_note(const IndexerParams& p, cuda::IndexerScoresPath path, const cuda::IndexerRunOptions& opt) {
  const cuda::IndexerLaunchShape s = cuda::indexer_launch_shape(p, opt);
  if (s.fused_cluster > 0)
    return concat("fused scores + top-k, ", s.fused_cluster, " block(s) per row", s.fused_group ? " (row groups)" : "",
                  " x ", s.fused_stages, " stages");
  if (s.scores_grid == 0) return concat("top-k only (all rows <= ", kTopK, "), cluster ", s.topk_cluster);
  return concat(cuda::indexer_path_name(path), ", scores grid ", s.scores_grid, " x ", s.scores_stages,
                " stages, top-k cluster ", s.topk_cluster, s.topk_smem_keys ? "" : " (keys in global)");
}

struct Shape {
  int64_t rows;
  int32_t len;
};

// Piecewise-linear inverse CDF of the fib-indexer preset of dsa-gen (FlashInfer-Bench's DSA
// indexer workloads): seq_len median 94, p90 819, 97% <= 2048, max 5806.
int32_t fib_seq_len(std::mt19937_64& rng) {
  static const double q[][2] = {{0.0, 1},     {0.10, 10},  {0.25, 35},    {0.50, 94},  {0.75, 300},
                                {0.90, 819}, {0.97, 2048}, {0.995, 4096}, {1.0, 5807}};
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  for (int i = 1; i < 9; ++i)
    if (u <= q[i][0]) {
      const double t = (u - q[i - 1][0]) / (q[i][0] - q[i - 1][0]);
      return std::clamp(static_cast<int32_t>(q[i - 1][1] + t * (q[i][1] - q[i - 1][1])), 1, 5806);
    }
  return 5806;
}

}  // namespace

std::vector<BenchRow> bench_indexer(const BenchConfig& config) {
  const std::string& suite = config.suite;
  DSA_REQUIRE(suite.empty() || suite == "fib" || suite == "shapes" || suite == "paths",
              "dsa-bench indexer: unknown suite '", suite, "' ('', shapes, fib, paths)");
  const bool want_shapes = suite != "fib";
  const bool want_fib = suite.empty() || suite == "fib";
  const bool want_paths = suite == "paths";
  cudaStream_t stream = config.stream;
  std::mt19937_64 rng(config.seed);
  std::printf(
      "# indexer bytes that must move = pages of rows with seq_len > 2048 x (8448 B: 8192 fp8 + 256 scales, "
      "read once, + 4 B block-table entry) + per row (q 8192 B + weights 256 B + seq_len 4 B + output 8192 B); "
      "rows <= 2048 need no K (every token is the answer); workspace scores not counted\n");
  std::vector<BenchRow> rows;
  const cuda::IndexerScoresPath auto_path = cuda::indexer_default_path();

  auto time_call = [&](const IndexerParams& p, void* ws, size_t ws_bytes, const cuda::IndexerRunOptions& opt) {
    return time_us([&](cudaStream_t s) { cuda::indexer_run(p, ws, ws_bytes, s, opt); }, stream, config.warmup,
                   config.iters, config.flush);
  };

  if (want_shapes) {
    const std::vector<Shape> shapes = {{64, 32768}, {8, 131072}, {32, 6400}, {128, 6400}};
    int64_t max_rows = 0, max_row_pages = 0, max_total_pages = 0;
    int32_t max_len = 0;
    for (const Shape& s : shapes) {
      max_rows = std::max(max_rows, s.rows);
      max_row_pages = std::max(max_row_pages, pages_for(s.len));
      max_total_pages = std::max(max_total_pages, s.rows * pages_for(s.len));
      max_len = std::max(max_len, s.len);
    }
    Workload w(max_rows, max_row_pages, max_total_pages, max_len);
    w.fill(config.seed, stream);
    for (const Shape& s : shapes) {
      // Row r uses pages [r * n, (r + 1) * n) of the cache in random order.
      const int64_t n = pages_for(s.len);
      std::vector<int32_t> bt(size_t(s.rows * max_row_pages), -1);
      for (int64_t r = 0; r < s.rows; ++r) {
        std::vector<int32_t> pages(static_cast<size_t>(n));
        std::iota(pages.begin(), pages.end(), static_cast<int32_t>(r * n));
        std::shuffle(pages.begin(), pages.end(), rng);
        std::copy(pages.begin(), pages.end(), bt.begin() + r * max_row_pages);
      }
      std::vector<int32_t> lens(size_t(s.rows), s.len);
      DSA_CHECK_CUDA(cudaMemcpyAsync(w.block_table.ptr, bt.data(), bt.size() * 4, cudaMemcpyHostToDevice, stream));
      DSA_CHECK_CUDA(cudaMemcpyAsync(w.seq_lens.ptr, lens.data(), lens.size() * 4, cudaMemcpyHostToDevice, stream));
      DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
      IndexerParams p = w.params(0, s.rows, s.len);
      p.scored_pages = s.len > kTopK ? s.rows * n : 0;
      const double bytes = bytes_for(s.rows, s.rows * n);

      // Variants: the default call, and with "paths" the other scores paths, a stream-only
      // diagnostic (the scores kernel moves the pages and computes nothing: the pipeline's own
      // ceiling), top-k without programmatic dependent launch, the other top-k variant and
      // forced top-k cluster sizes.
      struct Variant {
        std::string label;
        cuda::IndexerRunOptions opt;
        bool phases;  // also time the scores and top-k phases alone
        bool sequential = false;  // each row's pages in ascending order (diagnostic: the cost of random pages)
      };
      std::vector<Variant> variants;
      variants.push_back({"", cuda::IndexerRunOptions{}, s.rows == 64 && s.len == 32768});
      variants.back().opt.path = auto_path;
      if (want_paths) {
        variants.back().phases = true;
        variants.push_back({" two-kernel", cuda::IndexerRunOptions{}, false});
        variants.back().opt.fused = 0;
        variants.push_back({" fused", cuda::IndexerRunOptions{}, false});
        variants.back().opt.fused = 1;
        for (const int c : {2, 3}) {
          variants.push_back({concat(" fused cluster=", c), cuda::IndexerRunOptions{}, false});
          variants.back().opt.fused = 1;
          variants.back().opt.topk_cluster = c;
        }
        variants.push_back({" no row groups", cuda::IndexerRunOptions{}, false});
        variants.back().opt.fused_group = 0;
        for (const int g : {4, 8, 16}) {
          variants.push_back({concat(" row groups<=", g), cuda::IndexerRunOptions{}, true});
          variants.back().opt.fused_group = g;
        }
        int dev = 0, major = 0;
        DSA_CHECK_CUDA(cudaGetDevice(&dev));
        DSA_CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
        for (const auto other : {cuda::IndexerScoresPath::kPortable, cuda::IndexerScoresPath::kWgmma,
                                 cuda::IndexerScoresPath::kWgmmaF16, cuda::IndexerScoresPath::kWgmmaSplit}) {
          if (other == auto_path || (other != cuda::IndexerScoresPath::kPortable && major != 9)) continue;
          variants.push_back({concat(" ", cuda::indexer_path_name(other)), cuda::IndexerRunOptions{},
                              other == cuda::IndexerScoresPath::kWgmma});
          variants.back().opt.path = other;
        }
        if (auto_path == cuda::IndexerScoresPath::kWgmmaF16) {
          variants.push_back({" wgmma-f16 2 groups", cuda::IndexerRunOptions{}, true});
          variants.back().opt.path = auto_path;
          variants.back().opt.scores_groups = 2;
        }
        variants.push_back({" stream-only", cuda::IndexerRunOptions{}, false});
        variants.back().opt.stream_only = true;
        variants.back().opt.run_topk = false;
        variants.push_back({" stream-only sequential pages", cuda::IndexerRunOptions{}, false, true});
        variants.back().opt.stream_only = true;
        variants.back().opt.run_topk = false;
        variants.push_back({" sequential pages", cuda::IndexerRunOptions{}, false, true});
        for (const int st : {18}) {
          variants.push_back({concat(" stream-only stages=", st), cuda::IndexerRunOptions{}, false});
          variants.back().opt.stream_only = true;
          variants.back().opt.run_topk = false;
          variants.back().opt.stages = st;
        }
        for (const int st : {6, 18}) {
          variants.push_back({concat(" stages=", st), cuda::IndexerRunOptions{}, true});
          variants.back().opt.stages = st;
        }
        variants.push_back({" no-PDL", cuda::IndexerRunOptions{}, false});
        variants.back().opt.pdl = false;
        variants.push_back({" distributed-topk", cuda::IndexerRunOptions{}, true});
        variants.back().opt.topk_variant = 1;
        for (const int c : {1, 2, 4, 8}) {
          variants.push_back({concat(" topk-cluster=", c), cuda::IndexerRunOptions{}, true});
          variants.back().opt.topk_cluster = c;
        }
      }
      for (const Variant& v : variants) {
        const cuda::IndexerScoresPath path = v.opt.path == cuda::IndexerScoresPath::kAuto ? auto_path : v.opt.path;
        BenchRow row;
        row.op = "indexer";
        row.shape = concat("b=", s.rows, " L=", s.len, v.label);
        row.rows = s.rows;
        row.bytes_moved = bytes;
        if (v.sequential) {
          std::vector<int32_t> sorted = bt;
          for (int64_t r = 0; r < s.rows; ++r)
            std::sort(sorted.begin() + r * max_row_pages, sorted.begin() + r * max_row_pages + n);
          DSA_CHECK_CUDA(cudaMemcpyAsync(w.block_table.ptr, sorted.data(), sorted.size() * 4, cudaMemcpyHostToDevice, stream));
          DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
        }
        row.timing = time_call(p, w.workspace.ptr, w.workspace_bytes, v.opt);
        if (v.sequential) {
          DSA_CHECK_CUDA(cudaMemcpyAsync(w.block_table.ptr, bt.data(), bt.size() * 4, cudaMemcpyHostToDevice, stream));
          DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
        }
        row.note = shape_note(p, path, v.opt);
        if (v.opt.stream_only) row.note = "diagnostic: scores kernel streams the pages only, no math, no top-k";
        if (v.sequential) row.note += "; diagnostic: each row's pages in ascending order";
        if (v.opt.stages) row.note += concat(" (stages ", v.opt.stages, ")");
        if (v.opt.scores_groups) row.note += concat(" (", v.opt.scores_groups, " consumer groups)");
        if (v.opt.topk_cluster) row.note += concat(" (top-k cluster forced ", v.opt.topk_cluster, ")");
        // The top-k share: the two phases timed alone (each after an L2 flush); in the fused
        // kernel, block 0's selection stamps against its whole run.
        if (v.phases && cuda::indexer_launch_shape(p, v.opt).fused_cluster > 0) {
          DeviceArray<long long> st(4 * 12);
          DSA_CHECK_CUDA(cudaMemsetAsync(st.ptr, 0, 4 * 12 * sizeof(long long), stream));
          if (config.flush) (*config.flush)(stream);
          cuda::IndexerRunOptions o = v.opt;
          o.topk_debug = st.ptr;
          cuda::indexer_run(p, w.workspace.ptr, w.workspace_bytes, stream, o);
          std::vector<long long> h(4 * 12);
          DSA_CHECK_CUDA(cudaMemcpyAsync(h.data(), st.ptr, h.size() * sizeof(long long), cudaMemcpyDeviceToHost, stream));
          DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
          if (h[0] != 0 && h[2] != 0 && h[8] != 0) {
            const double select = static_cast<double>(h[8] - h[2]), all = static_cast<double>(h[8] - h[0]);
            row.note += concat("; selection ", static_cast<int>(100.0 * select / all + 0.5),
                               "% of block 0's time (clock64 stamps)");
          }
        } else if (v.phases) {
          cuda::IndexerRunOptions only_scores = v.opt, only_topk = v.opt;
          only_scores.run_topk = false;
          only_topk.run_scores = false;
          const Timing ts = time_call(p, w.workspace.ptr, w.workspace_bytes, only_scores);
          const Timing tk = time_call(p, w.workspace.ptr, w.workspace_bytes, only_topk);
          row.note += concat("; scores alone ", ts.median_us, " us, top-k alone ", tk.median_us, " us = ",
                             static_cast<int>(100.0 * tk.median_us / row.timing.median_us + 0.5), "% of the call");
        }
        rows.push_back(row);
      }
      if (want_paths) {
        // Where the time goes: clock64 stamps of the top-k phases and of the scores kernel's
        // start-up, in the first 4 blocks of each.
        DeviceArray<long long> stamps(4 * 12), sstamps(4 * 8);
        DSA_CHECK_CUDA(cudaMemsetAsync(stamps.ptr, 0, 4 * 12 * sizeof(long long), stream));
        DSA_CHECK_CUDA(cudaMemsetAsync(sstamps.ptr, 0, 4 * 8 * sizeof(long long), stream));
        cuda::IndexerRunOptions opt;
        opt.topk_debug = stamps.ptr;
        opt.scores_debug = sstamps.ptr;
        opt.pdl = false;  // so the top-k stamps start when its blocks do, not while they wait
        cuda::indexer_run(p, w.workspace.ptr, w.workspace_bytes, stream, opt);
        std::vector<long long> h(4 * 12), hs(4 * 8);
        DSA_CHECK_CUDA(cudaMemcpyAsync(h.data(), stamps.ptr, h.size() * sizeof(long long), cudaMemcpyDeviceToHost, stream));
        DSA_CHECK_CUDA(cudaMemcpyAsync(hs.data(), sstamps.ptr, hs.size() * sizeof(long long), cudaMemcpyDeviceToHost, stream));
        DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
        int khz = 0, dev = 0;
        DSA_CHECK_CUDA(cudaGetDevice(&dev));
        DSA_CHECK_CUDA(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
        auto print_phases = [&](const char* what, const std::vector<long long>& v, int stride, int count,
                                const char* const* names) {
          for (int b = 0; b < 4; ++b) {
            std::string line = concat("# ", what, " phases (us) b=", s.rows, " L=", s.len, " block ", b, ":");
            long long prev = v[size_t(b * stride)];
            for (int k = 1; k <= count; ++k) {
              const long long t = v[size_t(b * stride + k)];
              if (t == 0) {
                line += concat(" ", names[k - 1], " -");
                continue;
              }
              line += concat(" ", names[k - 1], " ", static_cast<double>(t - prev) / (khz * 1e-3));
              prev = t;
            }
            std::printf("%s\n", line.c_str());
          }
        };
        static const char* topk_names[] = {"wait", "load+hist", "merge", "threshold", "classify", "resolve", "count+exchange", "emit"};
        static const char* scores_names[] = {"prologue", "first-copy", "first-page-ready", "first-page-done", "rest"};
        print_phases("top-k", h, 12, 8, topk_names);
        print_phases("scores", hs, 8, 5, scores_names);
        // The fused kernel's phases, where the shape allows it: with clusters, and in row groups
        // where the launcher takes them.
        cuda::IndexerRunOptions fo, go;
        fo.fused = 1;
        fo.fused_group = 0;
        go.fused = 1;
        go.fused_group = 16;
        const bool grouped = cuda::indexer_launch_shape(p, go).fused_group;
        for (const bool g : {false, true}) {
          cuda::IndexerRunOptions o = g ? go : fo;
          if ((g && !grouped) || cuda::indexer_launch_shape(p, o).fused_cluster == 0) continue;
          DSA_CHECK_CUDA(cudaMemsetAsync(stamps.ptr, 0, 4 * 12 * sizeof(long long), stream));
          o.topk_debug = stamps.ptr;
          cuda::indexer_run(p, w.workspace.ptr, w.workspace_bytes, stream, o);
          DSA_CHECK_CUDA(cudaMemcpyAsync(h.data(), stamps.ptr, h.size() * sizeof(long long), cudaMemcpyDeviceToHost, stream));
          DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
          static const char* fused_names[] = {"first-page", "scores", "merge", "threshold", "classify", "resolve", "count+exchange", "emit"};
          print_phases(g ? "fused row-group" : "fused", h, 12, 8, fused_names);
        }
        // Every block's entry, end of its own work and exit on the GPU-wide clock: whether the
        // call's time is the blocks' work or a spread of their starts and ends.
        auto print_timeline = [&](const char* what, cuda::IndexerRunOptions o) {
          const cuda::IndexerLaunchShape ls = cuda::indexer_launch_shape(p, o);
          const int64_t blocks = ls.fused_cluster > 0 ? s.rows * ls.fused_cluster : ls.scores_grid;
          if (blocks <= 0) return;
          const size_t n = static_cast<size_t>(blocks) * 4;
          DeviceArray<unsigned long long> tl(n);
          DSA_CHECK_CUDA(cudaMemsetAsync(tl.ptr, 0, n * sizeof(unsigned long long), stream));
          if (config.flush) (*config.flush)(stream);
          o.timeline = tl.ptr;
          o.topk_debug = nullptr;
          o.run_topk = ls.fused_cluster > 0;  // the scores kernel's blocks alone otherwise
          cuda::indexer_run(p, w.workspace.ptr, w.workspace_bytes, stream, o);
          std::vector<unsigned long long> t(n);
          DSA_CHECK_CUDA(cudaMemcpyAsync(t.data(), tl.ptr, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream));
          DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
          unsigned long long t0 = ~0ull;
          for (int64_t b = 0; b < blocks; ++b) t0 = std::min(t0, t[size_t(b * 4)]);
          std::vector<double> entry, done, exit, work;
          std::vector<std::pair<double, int64_t>> by_exit;
          for (int64_t b = 0; b < blocks; ++b) {
            const unsigned long long* v = &t[size_t(b * 4)];
            entry.push_back((v[0] - t0) * 1e-3);
            done.push_back((v[1] - t0) * 1e-3);
            exit.push_back((v[2] - t0) * 1e-3);
            work.push_back((v[1] - v[0]) * 1e-3);
            by_exit.push_back({exit.back(), b});
          }
          auto q = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return concat(v.front(), "/", v[v.size() / 2], "/", v.back());
          };
          std::sort(by_exit.rbegin(), by_exit.rend());
          std::string last;
          for (size_t i = 0; i < std::min<size_t>(4, by_exit.size()); ++i) {
            const int64_t b = by_exit[i].second;
            last += concat(" ", b, "@sm", t[size_t(b * 4 + 3)], " (entry ", entry[size_t(b)], ", work ", work[size_t(b)], ")");
          }
          std::printf("# timeline %s b=%lld L=%d, %lld blocks, us from the first entry, min/median/max: entry %s, "
                      "work done %s, exit %s; work per block %s; last exits:%s\n",
                      what, static_cast<long long>(s.rows), static_cast<int>(s.len), static_cast<long long>(blocks),
                      q(entry).c_str(), q(done).c_str(), q(exit).c_str(), q(work).c_str(), last.c_str());
          // Within each row's cluster: how far apart its blocks finish their own work, and when
          // the last cluster would finish were its work split evenly between its blocks.
          const int64_t cl = ls.fused_cluster;
          if (cl > 1) {
            std::vector<double> spread;
            double last_max = 0, last_mean = 0;
            for (int64_t r = 0; r < s.rows; ++r) {
              double lo = 1e30, hi = 0, sum = 0;
              for (int64_t k = 0; k < cl; ++k) {
                const double d = done[size_t(r * cl + k)];
                lo = std::min(lo, d);
                hi = std::max(hi, d);
                sum += d;
              }
              spread.push_back(hi - lo);
              last_max = std::max(last_max, hi);
              last_mean = std::max(last_mean, sum / static_cast<double>(cl));
            }
            std::printf("# timeline %s b=%lld L=%d: work done spread within a cluster min/median/max %s us; "
                        "last cluster's work done %.3f us, %.3f us were each cluster's work split evenly\n",
                        what, static_cast<long long>(s.rows), static_cast<int>(s.len), q(spread).c_str(), last_max,
                        last_mean);
          }
        };
        cuda::IndexerRunOptions two;
        two.fused = 0;
        print_timeline("scores kernel", two);
        if (cuda::indexer_launch_shape(p, fo).fused_cluster > 0) print_timeline("fused kernel", fo);
        if (grouped) print_timeline("fused kernel, row groups", go);
      }
    }
  }

  if (want_fib) {
    // Contest-like calls: 1-31 rows each, seq_len from the fib-indexer quantiles, each row's
    // pages contiguous runs of 16 at random places of a shared cache.
    constexpr int kCalls = 64;
    constexpr int64_t kCachePages = 8192;
    constexpr int64_t kRowPages = 91;  // ceil(5806 / 64)
    std::vector<int64_t> call_row0(kCalls + 1, 0);
    for (int c = 0; c < kCalls; ++c) call_row0[c + 1] = call_row0[c] + 1 + static_cast<int64_t>(rng() % 31);
    const int64_t total_rows = call_row0[kCalls];
    std::vector<int32_t> lens(static_cast<size_t>(total_rows));
    for (auto& n : lens) n = fib_seq_len(rng);
    std::vector<int32_t> bt(static_cast<size_t>(total_rows * kRowPages), -1);
    for (int64_t r = 0; r < total_rows; ++r) {
      const int64_t n = pages_for(lens[static_cast<size_t>(r)]);
      for (int64_t i = 0; i < n; i += 16) {
        const int64_t start = static_cast<int64_t>(rng() % static_cast<uint64_t>(kCachePages / 16)) * 16;
        for (int64_t j = 0; j < 16 && i + j < n; ++j) bt[size_t(r * kRowPages + i + j)] = static_cast<int32_t>(start + j);
      }
    }
    Workload w(total_rows, kRowPages, kCachePages, 5806);
    w.fill(config.seed + 17, stream);
    DSA_CHECK_CUDA(cudaMemcpyAsync(w.block_table.ptr, bt.data(), bt.size() * 4, cudaMemcpyHostToDevice, stream));
    DSA_CHECK_CUDA(cudaMemcpyAsync(w.seq_lens.ptr, lens.data(), lens.size() * 4, cudaMemcpyHostToDevice, stream));
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<double> medians;
    double bytes = 0;
    int with_scores = 0;
    for (int c = 0; c < kCalls; ++c) {
      const int64_t r0 = call_row0[c], n = call_row0[c + 1] - r0;
      int32_t max_len = 0;
      int64_t used = 0;
      for (int64_t r = r0; r < r0 + n; ++r) {
        max_len = std::max(max_len, lens[size_t(r)]);
        used += pages_for(lens[size_t(r)]);
      }
      with_scores += max_len > kTopK;
      // Pages of rows <= 2048 are not read (every token is the answer): count only long rows'.
      int64_t read = 0;
      for (int64_t r = r0; r < r0 + n; ++r)
        if (lens[size_t(r)] > kTopK) read += pages_for(lens[size_t(r)]);
      (void)used;
      IndexerParams p = w.params(r0, n, max_len);
      p.scored_pages = read;
      medians.push_back(time_call(p, w.workspace.ptr, w.workspace_bytes, cuda::IndexerRunOptions{}).median_us);
      bytes += bytes_for(n, read);
    }
    std::vector<double> sorted = medians;
    std::sort(sorted.begin(), sorted.end());
    BenchRow row;
    row.op = "indexer";
    row.shape = concat("fib ", kCalls, " calls of 1-31 rows");
    row.rows = total_rows;
    row.bytes_moved = bytes / kCalls;
    row.timing.median_us = sorted[sorted.size() / 2];
    row.timing.min_us = sorted.front();
    row.timing.p90_us = sorted[sorted.size() * 9 / 10];
    row.note = concat("median over calls of each call's median; max ", sorted.back(), " us; ", with_scores, " of ",
                      kCalls, " calls score a row > 2048; bytes = mean per call (pages of rows > 2048)");
    rows.push_back(row);
  }
  return rows;
}

}  // namespace dsa::bench
