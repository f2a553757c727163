// dsa-bench attention: the CUDA sparse MLA kernel against the memory floor.
//
// Suites: "" = the decode table (1, 128, 1024, 4096 rows, 2048 valid ids each, every row's ids
// from its own 32 pages, so nothing is reused across rows) and the contest-like "fib" row;
// "decode" / "fib" = one of the two; "sweep" = the decode table for several kernel variants
// (pipeline depth, exact-P, split counts), to choose the defaults; "small" = the latency cases
// only (1 row and fib) for the launch shapes of few rows (one block or one cluster of 4, 8 or
// 16 per row), latency probes and per-block phase traces.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/attention/attention_tuning.hpp"
#include "kernels/attention/portable/sparse_mla_params.hpp"
#include "kernels/params.hpp"
#include "kernels/shapes.hpp"
#include "src/bench/bench.hpp"

namespace dsa::bench {
namespace {

constexpr int kPagesPerRow = kTopK / kPageSize;  // 32: a decode row's 2048 ids fill its own pages
constexpr double kBytesPerId = (kCkvDim + kKpeDim) * 2.0;                  // 1152
constexpr double kBytesPerRowFixed = 2.0 * (kHeads * kCkvDim + kHeads * kKpeDim)  // q: 18432
                                     + kTopK * 4.0                                 // ids: 8192
                                     + kHeads * kCkvDim * 2.0                      // output: 16384
                                     + kHeads * 4.0;                               // lse: 64

double bytes_for(int64_t rows, double valid_ids) { return rows * kBytesPerRowFixed + valid_ids * kBytesPerId; }

// Piecewise-linear inverse CDF through FlashInfer-Bench-like attention quantiles (the
// fib-attention preset of dsa-gen): valid ids per row median 33, p90 1089, 5% full.
int fib_valid_count(std::mt19937_64& rng) {
  static const double q[][2] = {{0.0, 1}, {0.25, 8}, {0.5, 33}, {0.75, 250}, {0.9, 1089}, {0.95, 2048}, {1.0, 6145}};
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  for (int i = 1; i < 7; ++i)
    if (u <= q[i][0]) {
      const double t = (u - q[i - 1][0]) / (q[i][0] - q[i - 1][0]);
      const double v = q[i - 1][1] + t * (q[i][1] - q[i - 1][1]);
      return std::clamp(static_cast<int>(v), 1, kTopK);
    }
  return kTopK;
}

struct Workspace {
  int64_t max_rows = 0;
  int64_t num_pages = 0;
  DeviceArray<uint16_t>* ckv = nullptr;
  DeviceArray<uint16_t>* kpe = nullptr;
  DeviceArray<uint16_t>* q_nope = nullptr;
  DeviceArray<uint16_t>* q_pe = nullptr;
  DeviceArray<uint16_t>* out = nullptr;
  DeviceArray<float>* lse = nullptr;
  std::vector<int32_t> page_perm;  // row r owns pages page_perm[32 r .. 32 r + 31]
};

AttentionParams params_for(const Workspace& w, const int32_t* ids, int64_t row0, int64_t rows, float sm_scale) {
  AttentionParams p;
  p.q_nope = w.q_nope->ptr + row0 * kHeads * kCkvDim;
  p.q_pe = w.q_pe->ptr + row0 * kHeads * kKpeDim;
  p.ckv = w.ckv->ptr;
  p.kpe = w.kpe->ptr;
  p.num_pages = w.num_pages;
  p.sparse_indices = ids;
  p.rows = rows;
  p.sm_scale = sm_scale;
  p.output = w.out->ptr + row0 * kHeads * kCkvDim;
  p.lse = w.lse->ptr + row0 * kHeads;
  return p;
}

// Latency probes: what launching any kernel costs under this harness (events, L2 flush), with
// no shared memory and with as much as the attention kernel asks for.
__global__ void empty_kernel() {}

// Whether this device can launch `tuning` for `rows` rows (else the variant is left out, saying so).
bool plan_ok(int64_t rows, const cuda::AttentionTuning& tuning) {
  try {
    (void)cuda::attention_plan(rows, tuning);
    return true;
  } catch (const std::exception& e) {
    std::printf("# variant left out for %lld rows: %s\n", static_cast<long long>(rows), e.what());
    return false;
  }
}

std::string plan_note(int64_t rows, const cuda::AttentionTuning& tuning) {
  const cuda::AttentionPlan plan = cuda::attention_plan(rows, tuning);
  return concat("splits=", plan.splits, " stages=", plan.stages, plan.exact_p ? " exactP" : " bf16P",
                " blocks=", plan.blocks);
}

}  // namespace

std::vector<BenchRow> bench_attention(const BenchConfig& config) {
  std::printf(
      "# attention bytes that must move, per row: 1152 B per valid id (ckv 1024 + kpe 128) + q 18432 B "
      "(2*(16*512+16*64)) + ids 8192 B (2048*4) + output 16384 B (16*512*2) + lse 64 B\n");
  const std::string& suite = config.suite;
  DSA_REQUIRE(suite.empty() || suite == "decode" || suite == "fib" || suite == "sweep" || suite == "small",
              "dsa-bench attention: unknown suite '", suite, "' ('', decode, fib, sweep, small)");
  const bool want_decode = suite != "fib";
  const bool small = suite == "small";
  const bool want_fib = suite != "decode";
  cudaStream_t stream = config.stream;
  const float sm_scale = 1.0f / std::sqrt(192.0f);  // DeepSeek-V3.2's softmax scale (head dim 192)

  // KV for the largest case: 32 pages per row, 4096 rows = 131072 pages (9.7 GB). Fewer rows
  // when the device has less memory free.
  std::vector<int64_t> cases = {1, 128, 1024, 4096};
  if (small) cases = {1};
  // Launch shapes for few rows compared by "small": one block, or one cluster of 4, 8 or 16, per row.
  const std::vector<std::pair<std::string, cuda::AttentionTuning>> small_variants = {
      {" block", {0, 1, -1}}, {" row4", {0, 4, -1}}, {" row8", {0, 8, -1}}, {" row16", {0, 16, -1}}};
  Workspace w;
  w.max_rows = want_decode ? 4096 : 512;
  {
    size_t free_bytes = 0, total_bytes = 0;
    DSA_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double per_row = kPagesPerRow * kPageSize * kBytesPerId + kBytesPerRowFixed;
    while (w.max_rows > 512 && per_row * double(w.max_rows) > 0.8 * double(free_bytes)) w.max_rows /= 2;
    if (w.max_rows < 4096) std::printf("# attention: only %lld rows fit in free memory\n", (long long)w.max_rows);
  }
  w.num_pages = w.max_rows * kPagesPerRow;
  const int64_t tokens = w.num_pages * kPageSize;
  DeviceArray<uint16_t> ckv(size_t(tokens) * kCkvDim), kpe(size_t(tokens) * kKpeDim);
  DeviceArray<uint16_t> q_nope(size_t(w.max_rows) * kHeads * kCkvDim), q_pe(size_t(w.max_rows) * kHeads * kKpeDim);
  DeviceArray<uint16_t> out(size_t(w.max_rows) * kHeads * kCkvDim);
  DeviceArray<float> lse(size_t(w.max_rows) * kHeads);
  w.ckv = &ckv, w.kpe = &kpe, w.q_nope = &q_nope, w.q_pe = &q_pe, w.out = &out, w.lse = &lse;
  fill_uniform_bf16(ckv.ptr, size_t(tokens) * kCkvDim, -1.f, 1.f, config.seed * 8 + 1, stream);
  fill_uniform_bf16(kpe.ptr, size_t(tokens) * kKpeDim, -1.f, 1.f, config.seed * 8 + 2, stream);
  fill_uniform_bf16(q_nope.ptr, size_t(w.max_rows) * kHeads * kCkvDim, -1.f, 1.f, config.seed * 8 + 3, stream);
  fill_uniform_bf16(q_pe.ptr, size_t(w.max_rows) * kHeads * kKpeDim, -1.f, 1.f, config.seed * 8 + 4, stream);

  std::mt19937_64 rng(config.seed);
  w.page_perm.resize(static_cast<size_t>(w.num_pages));
  std::iota(w.page_perm.begin(), w.page_perm.end(), 0);
  std::shuffle(w.page_perm.begin(), w.page_perm.end(), rng);

  std::vector<BenchRow> rows;
  auto time_call = [&](const AttentionParams& p, const cuda::AttentionTuning& tuning, L2Flush* flush) {
    return time_us([&](cudaStream_t s) { cuda::attention_tuned(p, tuning, s); }, stream, config.warmup,
                   config.iters, flush);
  };

  if (want_decode) {
    // Decode-like ids: row r's 2048 ids are all tokens of its own 32 pages, in random order.
    std::vector<int32_t> ids(size_t(w.max_rows) * kTopK);
    for (int64_t r = 0; r < w.max_rows; ++r) {
      int32_t* row_ids = ids.data() + r * kTopK;
      for (int j = 0; j < kTopK; ++j)
        row_ids[j] = w.page_perm[size_t(r * kPagesPerRow + j / kPageSize)] * kPageSize + j % kPageSize;
      std::shuffle(row_ids, row_ids + kTopK, rng);
    }
    DeviceArray<int32_t> d_ids(ids.size());
    DSA_CHECK_CUDA(cudaMemcpyAsync(d_ids.ptr, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, stream));
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream));

    std::vector<std::pair<std::string, cuda::AttentionTuning>> variants = {{"", {}}};
    if (suite == "sweep") variants = {{"", {}}, {" s4", {4, 0, -1}}, {" bf16P", {0, 0, 0}}};
    for (int64_t R : cases) {
      if (R > w.max_rows) continue;
      std::vector<std::pair<std::string, cuda::AttentionTuning>> vs = variants;
      if (suite == "sweep" && R == 128) vs.push_back({" split2", {0, 2, -1}});
      if (small && R == 1) vs.insert(vs.end(), small_variants.begin(), small_variants.end());
      for (const auto& [label, tuning] : vs) {
        if (!plan_ok(R, tuning)) continue;
        const AttentionParams p = params_for(w, d_ids.ptr, 0, R, sm_scale);
        BenchRow row;
        row.op = "attention";
        row.shape = concat("decode ids=2048", label);
        row.rows = R;
        row.bytes_moved = bytes_for(R, double(R) * kTopK);
        row.timing = time_call(p, tuning, config.flush);
        row.note = plan_note(R, tuning);
        rows.push_back(row);
      }
    }
  }

  // Contest-like calls: 1-8 rows each, valid ids a contiguous prefix of each row's own
  // sequence, counts from the fib-attention quantiles. A contest workload's KV holds only the
  // batch's pages, so row r's sequence lies in pages [32 r, 32 r + 32) in order ("near"); the
  // "far" variant scatters the pages over the whole 9.7 GB cache instead (more TLB misses).
  constexpr int kCalls = 64;
  std::vector<int64_t> call_row0(kCalls + 1, 0);
  std::vector<int> fib_counts;
  for (int c = 0; c < kCalls; ++c) call_row0[c + 1] = call_row0[c] + 1 + static_cast<int64_t>(rng() % 8);
  const int64_t fib_rows = call_row0[kCalls];
  for (int64_t r = 0; r < fib_rows; ++r) fib_counts.push_back(fib_valid_count(rng));
  auto fib_suite = [&](const std::string& label, const cuda::AttentionTuning& tuning, L2Flush* flush, bool far) {
    if (!plan_ok(8, tuning)) return;
    DSA_REQUIRE(fib_rows <= w.max_rows, "dsa-bench attention: too few rows for the fib suite");
    std::vector<int32_t> ids(size_t(fib_rows) * kTopK, -1);
    std::vector<double> call_ids(kCalls, 0);
    for (int c = 0; c < kCalls; ++c)
      for (int64_t r = call_row0[c]; r < call_row0[c + 1]; ++r) {
        const int n = fib_counts[size_t(r)];
        call_ids[c] += n;
        for (int j = 0; j < n; ++j) {
          const int64_t page_slot = r * kPagesPerRow + j / kPageSize;
          const int64_t page = far ? w.page_perm[size_t(page_slot)] : page_slot;
          ids[size_t(r * kTopK + j)] = static_cast<int32_t>(page * kPageSize + j % kPageSize);
        }
      }
    DeviceArray<int32_t> d_ids(ids.size());
    DSA_CHECK_CUDA(cudaMemcpyAsync(d_ids.ptr, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, stream));
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<double> medians;
    double bytes = 0;
    for (int c = 0; c < kCalls; ++c) {
      const int64_t r0 = call_row0[c], n = call_row0[c + 1] - r0;
      const AttentionParams p = params_for(w, d_ids.ptr + r0 * kTopK, r0, n, sm_scale);
      medians.push_back(time_us([&](cudaStream_t s) { cuda::attention_tuned(p, tuning, s); }, stream,
                                config.warmup, config.iters, flush)
                            .median_us);
      bytes += bytes_for(n, call_ids[c]);
    }
    std::vector<double> sorted = medians;
    std::sort(sorted.begin(), sorted.end());
    BenchRow row;
    row.op = "attention";
    row.shape = concat("fib ", kCalls, " calls 1-8 rows", label);
    row.rows = fib_rows;
    row.bytes_moved = bytes / kCalls;  // per call, mean
    row.timing.median_us = sorted[sorted.size() / 2];
    row.timing.min_us = sorted.front();
    row.timing.p90_us = sorted[sorted.size() * 9 / 10];
    row.note = concat("median over calls of each call's median; max ", sorted.back(), " us; bytes = mean per call");
    rows.push_back(row);
  };
  if (want_fib) fib_suite("", {}, config.flush, false);

  if (small) {
    for (const auto& [label, tuning] : small_variants) fib_suite(label, tuning, config.flush, false);
    fib_suite(" far", {}, config.flush, true);
    // One row, the first `valid` of its decode ids (pages scattered over the cache), per launch shape.
    const int probe_valid[] = {0, 1, 16, 32, 64, 96, 128, 512, 2048};
    for (int valid : probe_valid)
      for (const auto& [label, tuning] : small_variants) {
        if (!plan_ok(1, tuning)) continue;
        std::vector<int32_t> ids(kTopK, -1);
        for (int j = 0; j < valid; ++j) ids[size_t(j)] = w.page_perm[size_t(j / kPageSize)] * kPageSize + j % kPageSize;
        DeviceArray<int32_t> d_ids(kTopK);
        DSA_CHECK_CUDA(cudaMemcpyAsync(d_ids.ptr, ids.data(), kTopK * 4, cudaMemcpyHostToDevice, stream));
        const AttentionParams p = params_for(w, d_ids.ptr, 0, 1, sm_scale);
        BenchRow row;
        row.op = "probe";
        row.shape = concat("1 row valid=", valid, label);
        row.rows = 1;
        row.bytes_moved = bytes_for(1, valid);
        row.timing = time_call(p, tuning, config.flush);
        row.note = plan_note(1, tuning);
        rows.push_back(row);
      }
    BenchRow row;
    row.op = "probe";
    row.shape = "empty kernel";
    row.rows = 0;
    row.timing = time_us([](cudaStream_t s) { empty_kernel<<<1, 32, 0, s>>>(); }, stream, config.warmup,
                         config.iters, config.flush);
    row.note = "launch cost under this harness (L2 flushed)";
    rows.push_back(row);

    // Phase stamps of thread 0 of every block (clock64, us at the device's clock rate), median
    // and max over the blocks that ran, for one flushed call after warm-ups.
    int khz = 0, dev = 0;
    DSA_CHECK_CUDA(cudaGetDevice(&dev));
    DSA_CHECK_CUDA(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
    std::printf("# trace: us from block entry (clock %d MHz), median/max over blocks: ids = id list ready, "
                "t0 = Q and first tile landed, loop = main loop done, cl = cluster wait done, rx = partials received, "
                "out = output written; one-shot: q = Q fragments loaded, S = logits stored, P = P visible; exchange: "
                "stg = partials staged, snd = copies sent, mx = combine weights visible, cmb = combine done; spread = "
                "entry times' spread, span = first entry to last exit (globaltimer)\n",
                khz / 1000);
    const std::pair<int, std::pair<std::string, cuda::AttentionTuning>> traces[] = {
        {0, {" block", {0, 1, -1}}},    {32, {" block", {0, 1, -1}}},   {2048, {" block", {0, 1, -1}}},
        {0, {" row16", {0, 16, -1}}},   {32, {" row16", {0, 16, -1}}},  {512, {" row16", {0, 16, -1}}},
        {1024, {" row16", {0, 16, -1}}}, {2048, {" row16", {0, 16, -1}}}, {0, {" row8", {0, 8, -1}}},
        {512, {" row8", {0, 8, -1}}}};
    constexpr int kSlots = cuda::attn::kTraceSlots;
    for (const auto& [valid, lt] : traces) {
      cuda::AttentionTuning tuning = lt.second;
      if (!plan_ok(1, tuning)) continue;
      const cuda::AttentionPlan plan = cuda::attention_plan(1, tuning);
      std::vector<int32_t> ids(kTopK, -1);
      for (int j = 0; j < valid; ++j) ids[size_t(j)] = w.page_perm[size_t(j / kPageSize)] * kPageSize + j % kPageSize;
      DeviceArray<int32_t> d_ids(kTopK);
      DSA_CHECK_CUDA(cudaMemcpyAsync(d_ids.ptr, ids.data(), kTopK * 4, cudaMemcpyHostToDevice, stream));
      const size_t n = size_t(plan.blocks) * kSlots;
      DeviceArray<unsigned long long> d_trace(n);
      tuning.trace = d_trace.ptr;
      const AttentionParams p = params_for(w, d_ids.ptr, 0, 1, sm_scale);
      for (int it = 0; it < 6; ++it) {
        DSA_CHECK_CUDA(cudaMemsetAsync(d_trace.ptr, 0, n * 8, stream));
        config.flush->operator()(stream);
        cuda::attention_tuned(p, tuning, stream);
      }
      std::vector<unsigned long long> t(n);
      DSA_CHECK_CUDA(cudaMemcpyAsync(t.data(), d_trace.ptr, n * 8, cudaMemcpyDeviceToHost, stream));
      DSA_CHECK_CUDA(cudaStreamSynchronize(stream));
      const double us_per_cycle = 1.0 / (khz / 1000.0);
      std::string line = concat("# trace valid=", valid, lt.first, ":");
      const char* names[] = {"ids", "t0", "loop", "cl",  "rx",  "out", "q",
                             "S",   "P",  "stg",  "snd", "mx",  "cmb"};  // slots 2 .. 14
      for (int k = 0; k < 13; ++k) {
        const int slot = 2 + k;
        std::vector<double> v;
        for (int64_t b = 0; b < plan.blocks; ++b) {
          const unsigned long long* tb = t.data() + b * kSlots;
          if (tb[1] == 0 || tb[slot] == 0) continue;
          v.push_back(double(tb[slot] - tb[1]) * us_per_cycle);
        }
        if (v.empty()) continue;
        std::sort(v.begin(), v.end());
        char buf[64];
        std::snprintf(buf, sizeof buf, " %s %.2f/%.2f", names[k], v[v.size() / 2], v.back());
        line += buf;
      }
      unsigned long long e0 = ~0ull, e1 = 0, x1 = 0;
      int active = 0;
      for (int64_t b = 0; b < plan.blocks; ++b) {
        const unsigned long long* tb = t.data() + b * kSlots;
        if (tb[0] == 0) continue;
        ++active;
        e0 = std::min(e0, tb[0]);
        e1 = std::max(e1, tb[0]);
        x1 = std::max(x1, tb[kSlots - 1]);
      }
      char buf[128];
      std::snprintf(buf, sizeof buf, " | blocks %d spread %.2f span %.2f", active, (e1 - e0) / 1e3, (x1 - e0) / 1e3);
      std::printf("%s%s\n", line.c_str(), buf);
    }
  }

  if (suite == "sweep") {
    fib_suite(" noflush", {}, nullptr, false);
    fib_suite(" far", {}, config.flush, true);
    fib_suite(" split1", {0, 1, -1}, config.flush, false);
    fib_suite(" split4", {0, 4, -1}, config.flush, false);
    fib_suite(" bf16P", {0, 0, 0}, config.flush, false);
    {
      BenchRow row;
      row.op = "probe";
      row.shape = "empty kernel";
      row.rows = 0;
      row.timing = time_us([](cudaStream_t s) { empty_kernel<<<1, 32, 0, s>>>(); }, stream, config.warmup,
                           config.iters, config.flush);
      row.note = "launch cost under this harness (L2 flushed)";
      rows.push_back(row);
      const int big = 200 * 1024;
      DSA_CHECK_CUDA(cudaFuncSetAttribute(reinterpret_cast<const void*>(&empty_kernel),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, big));
      row.shape = "empty kernel 200KB smem";
      row.timing = time_us([&](cudaStream_t s) { empty_kernel<<<132, 256, big, s>>>(); }, stream, config.warmup,
                           config.iters, config.flush);
      row.note = "132 blocks x 256 threads, 200 KB dynamic shared memory each";
      rows.push_back(row);
    }
    // One row, the first `valid` of its decode ids, per split count, with and without L2 flush.
    const int probe_valid[] = {0, 1, 32, 2048};
    const int probe_splits[] = {1, 16};
    for (int flushed = 1; flushed >= 0; --flushed)
      for (int valid : probe_valid)
        for (int sp : probe_splits) {
          std::vector<int32_t> ids(kTopK, -1);
          for (int j = 0; j < valid; ++j)
            ids[size_t(j)] = w.page_perm[size_t(j / kPageSize)] * kPageSize + j % kPageSize;
          DeviceArray<int32_t> d_ids(kTopK);
          DSA_CHECK_CUDA(cudaMemcpyAsync(d_ids.ptr, ids.data(), kTopK * 4, cudaMemcpyHostToDevice, stream));
          const AttentionParams p = params_for(w, d_ids.ptr, 0, 1, sm_scale);
          const cuda::AttentionTuning tuning{0, sp, -1};
          BenchRow row;
          row.op = "probe";
          row.shape = concat("1 row valid=", valid, " split", sp, flushed ? "" : " noflush");
          row.rows = 1;
          row.bytes_moved = bytes_for(1, valid);
          row.timing = time_call(p, tuning, flushed ? config.flush : nullptr);
          row.note = plan_note(1, tuning);
          rows.push_back(row);
        }
  }
  return rows;
}

}  // namespace dsa::bench
