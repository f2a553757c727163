// CUDA sparse MLA attention against the CPU reference (SPEC §1.2: atol = rtol = 1e-2), on fresh
// seeded random inputs per case: 1..4096 rows, valid counts 0 / 1 / 7 / 64 / 2047 / 2048, holes
// scattered, as a tail and as a head, ids disjoint across rows (decode-like) and shared
// (prefill-like), large sm_scale, large-magnitude inputs, every split count and pipeline depth,
// and contest-like calls of 1..8 rows (every valid count class, every cluster size, repeated
// calls).
// Outputs are poisoned before every run and every element is checked to have been written.
// Without a visible GPU every test skips, saying so.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "tests/gpu/gpu_test_util.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/attention/attention_tuning.hpp"
#include "kernels/params.hpp"
#include "kernels/reference/attention.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/reference/parallel.hpp"
#include "kernels/shapes.hpp"

namespace dsa {
namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())

constexpr uint16_t kPoisonBf16 = 0x7FC1;  // a quiet NaN no kernel writes on purpose

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// bf16 bits of a value uniform in [-mag, mag] (never all zeros in practice), from a counter hash.
void fill_bf16(std::vector<uint16_t>& v, float mag, uint64_t seed) {
  ref::parallel_for(static_cast<int64_t>((v.size() + 65535) / 65536), 0, [&](int, int64_t chunk) {
    const size_t begin = static_cast<size_t>(chunk) * 65536, end = std::min(v.size(), begin + 65536);
    for (size_t i = begin; i < end; ++i) {
      const float u = static_cast<float>(mix64(seed ^ (i * 0x100000001B3ull)) >> 40) * (1.f / 16777216.f);
      v[i] = ref::float_to_bf16(mag * (2.f * u - 1.f));
    }
  });
}

enum class Holes { kScattered, kTail, kHead };

struct CaseSpec {
  int64_t rows = 1;
  std::vector<int> valid;         // valid count of row r = valid[r % size]; -1 = uniform in [0, 2048]
  Holes holes = Holes::kScattered;
  bool disjoint = true;           // each row's ids from its own tokens; else all rows share a pool
  int64_t pool_tokens = 0;        // shared pool size (tokens), when !disjoint
  float sm_scale = 0.0416667f;    // 1 / sqrt(576)
  float magnitude = 1.f;          // inputs uniform in [-magnitude, magnitude]
  uint64_t seed = 1;
  int64_t check_rows = 0;         // 0 = compare every row with the reference; else a sample this size
  bool duplicates = false;        // repeat some ids inside a row
  // ckv of the first quarter of each row's ids (in slot order when holes are a tail) times
  // this: split over a cluster, some blocks' partials are large, others not.
  float hot_scale = 1.f;
};

struct Inputs {
  int64_t rows = 0, num_pages = 0;
  std::vector<uint16_t> q_nope, q_pe, ckv, kpe;
  std::vector<int32_t> ids;
  float sm_scale = 0.f;

  AttentionParams host_params(uint16_t* out, float* lse) const {
    AttentionParams p;
    p.q_nope = q_nope.data();
    p.q_pe = q_pe.data();
    p.ckv = ckv.data();
    p.kpe = kpe.data();
    p.num_pages = num_pages;
    p.sparse_indices = ids.data();
    p.rows = rows;
    p.sm_scale = sm_scale;
    p.output = out;
    p.lse = lse;
    return p;
  }
};

Inputs make_inputs(const CaseSpec& c) {
  Inputs in;
  in.rows = c.rows;
  in.sm_scale = c.sm_scale;
  std::mt19937_64 rng(c.seed);
  std::vector<int> counts(static_cast<size_t>(c.rows));
  for (int64_t r = 0; r < c.rows; ++r) {
    const int v = c.valid[static_cast<size_t>(r) % c.valid.size()];
    counts[static_cast<size_t>(r)] = v >= 0 ? v : static_cast<int>(rng() % (kTopK + 1));
  }
  int64_t tokens = 0;
  if (c.disjoint) {
    for (int v : counts) tokens += v;
    tokens = std::max<int64_t>(tokens, 1);
  } else {
    tokens = c.pool_tokens;
  }
  in.num_pages = pages_for(tokens) + 1;  // a spare page, so the last token is not the cache's last
  const int64_t num_tokens = in.num_pages * kPageSize;
  in.q_nope.resize(static_cast<size_t>(c.rows) * kHeads * kCkvDim);
  in.q_pe.resize(static_cast<size_t>(c.rows) * kHeads * kKpeDim);
  in.ckv.resize(static_cast<size_t>(num_tokens) * kCkvDim);
  in.kpe.resize(static_cast<size_t>(num_tokens) * kKpeDim);
  fill_bf16(in.q_nope, c.magnitude, c.seed * 4 + 0);
  fill_bf16(in.q_pe, c.magnitude, c.seed * 4 + 1);
  fill_bf16(in.ckv, c.magnitude, c.seed * 4 + 2);
  fill_bf16(in.kpe, c.magnitude, c.seed * 4 + 3);

  // Token order: a random permutation of the cache's tokens; disjoint rows take consecutive
  // runs of it, shared rows sample the first pool_tokens of it.
  std::vector<int32_t> perm(static_cast<size_t>(num_tokens));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  in.ids.assign(static_cast<size_t>(c.rows) * kTopK, -1);
  std::vector<int64_t> stamp(static_cast<size_t>(num_tokens), -1);
  std::vector<int> slots(kTopK);
  int64_t next = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    const int n = counts[static_cast<size_t>(r)];
    std::vector<int32_t> chosen;
    chosen.reserve(static_cast<size_t>(n));
    if (c.disjoint) {
      for (int j = 0; j < n; ++j) chosen.push_back(perm[static_cast<size_t>(next++)]);
    } else {
      const int64_t pool = std::min<int64_t>(c.pool_tokens, num_tokens);
      while (static_cast<int>(chosen.size()) < n) {
        const int32_t t = perm[static_cast<size_t>(rng() % static_cast<uint64_t>(pool))];
        if (stamp[static_cast<size_t>(t)] == r) continue;
        stamp[static_cast<size_t>(t)] = r;
        chosen.push_back(t);
      }
    }
    if (c.duplicates && n >= 4)
      for (int j = 0; j < n / 4; ++j) chosen[static_cast<size_t>(rng() % n)] = chosen[0];
    std::iota(slots.begin(), slots.end(), 0);
    if (c.holes == Holes::kScattered) std::shuffle(slots.begin(), slots.end(), rng);
    int32_t* row_ids = in.ids.data() + r * kTopK;
    for (int j = 0; j < n; ++j) {
      const int slot = c.holes == Holes::kHead ? kTopK - n + j : slots[static_cast<size_t>(j)];
      row_ids[slot] = chosen[static_cast<size_t>(j)];
    }
    if (c.hot_scale != 1.f)
      for (int j = 0; j < n / 4; ++j) {
        uint16_t* v = in.ckv.data() + static_cast<int64_t>(chosen[static_cast<size_t>(j)]) * kCkvDim;
        for (int k = 0; k < kCkvDim; ++k) v[k] = ref::float_to_bf16(ref::bf16_to_float(v[k]) * c.hot_scale);
      }
  }
  return in;
}

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (cudaMalloc(&ptr, std::max<size_t>(count, 1) * sizeof(T)) != cudaSuccess) ptr = nullptr;
  }
  DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (ptr && !host.empty()) cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Outputs {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

// Uploads, poisons the outputs, runs the CUDA kernel (with `tuning`), downloads.
void run_gpu(const Inputs& in, const cuda::AttentionTuning& tuning, Outputs& got) {
  DeviceBuffer<uint16_t> q_nope(in.q_nope), q_pe(in.q_pe), ckv(in.ckv), kpe(in.kpe);
  DeviceBuffer<int32_t> ids(in.ids);
  const size_t out_n = static_cast<size_t>(in.rows) * kHeads * kCkvDim, lse_n = static_cast<size_t>(in.rows) * kHeads;
  DeviceBuffer<uint16_t> out(out_n);
  DeviceBuffer<float> lse(lse_n);
  ASSERT_TRUE(q_nope.ptr && q_pe.ptr && ckv.ptr && kpe.ptr && ids.ptr && out.ptr && lse.ptr) << "cudaMalloc failed";
  std::vector<uint16_t> poison_out(out_n, kPoisonBf16);
  std::vector<float> poison_lse(lse_n, std::nanf(""));
  CUDA_OK(cudaMemcpy(out.ptr, poison_out.data(), out_n * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(lse.ptr, poison_lse.data(), lse_n * 4, cudaMemcpyHostToDevice));

  AttentionParams p;
  p.q_nope = q_nope.ptr;
  p.q_pe = q_pe.ptr;
  p.ckv = ckv.ptr;
  p.kpe = kpe.ptr;
  p.num_pages = in.num_pages;
  p.sparse_indices = ids.ptr;
  p.rows = in.rows;
  p.sm_scale = in.sm_scale;
  p.output = out.ptr;
  p.lse = lse.ptr;
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreate(&stream));
  if (tuning.stages == 0 && tuning.splits == 0) {
    const size_t ws_bytes = cuda::attention_workspace_bytes(in.rows);
    DeviceBuffer<uint8_t> ws(ws_bytes);
    cuda::attention(p, ws.ptr, ws_bytes, stream);
    CUDA_OK(cudaStreamSynchronize(stream));
  } else {
    cuda::attention_tuned(p, tuning, stream);
    CUDA_OK(cudaStreamSynchronize(stream));
  }
  CUDA_OK(cudaStreamDestroy(stream));
  got.out.resize(out_n);
  got.lse.resize(lse_n);
  CUDA_OK(cudaMemcpy(got.out.data(), out.ptr, out_n * 2, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(got.lse.data(), lse.ptr, lse_n * 4, cudaMemcpyDeviceToHost));
}

// Every element written (no poison, no NaN) on every row; the reference comparison on all rows
// or on a sample (first, last and random rows).
void check(const CaseSpec& c, const Inputs& in, const Outputs& got) {
  const size_t per_row = static_cast<size_t>(kHeads) * kCkvDim;
  int64_t unwritten = 0;
  for (size_t i = 0; i < got.out.size(); ++i)
    if (got.out[i] == kPoisonBf16 || std::isnan(ref::bf16_to_float(got.out[i]))) ++unwritten;
  for (float v : got.lse)
    if (std::isnan(v)) ++unwritten;
  EXPECT_EQ(unwritten, 0) << "output elements left unwritten (poison) or NaN";

  std::vector<int64_t> rows;
  if (c.check_rows <= 0 || c.check_rows >= in.rows) {
    rows.resize(static_cast<size_t>(in.rows));
    std::iota(rows.begin(), rows.end(), 0);
  } else {
    std::mt19937_64 rng(c.seed ^ 0xC0FFEE);
    for (int64_t r = 0; r < std::min<int64_t>(8, in.rows); ++r) rows.push_back(r);
    for (int64_t r = std::max<int64_t>(0, in.rows - 8); r < in.rows; ++r) rows.push_back(r);
    while (static_cast<int64_t>(rows.size()) < c.check_rows) rows.push_back(static_cast<int64_t>(rng() % in.rows));
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
  const AttentionParams hp = in.host_params(nullptr, nullptr);
  std::mutex mutex;
  std::vector<std::string> failures;
  int64_t failed = 0;
  ref::parallel_for(static_cast<int64_t>(rows.size()), 0, [&](int, int64_t i) {
    const int64_t r = rows[static_cast<size_t>(i)];
    const std::string why = ref::check_attention_row(hp, r, got.out.data() + static_cast<size_t>(r) * per_row,
                                                     got.lse.data() + static_cast<size_t>(r) * kHeads);
    if (!why.empty()) {
      const std::lock_guard<std::mutex> lock(mutex);
      ++failed;
      if (failures.size() < 5) failures.push_back(why);
    }
  });
  std::string first;
  for (const auto& f : failures) first += "\n  " + f;
  EXPECT_EQ(failed, 0) << failed << " of " << rows.size() << " checked rows differ from the reference:" << first;
}

void run_case(const CaseSpec& c, const cuda::AttentionTuning& tuning = {}) {
  const Inputs in = make_inputs(c);
  Outputs got;
  run_gpu(in, tuning, got);
  if (::testing::Test::HasFatalFailure()) return;
  check(c, in, got);
}

TEST(AttentionGpu, WorkspaceAndEmptyCall) {
  REQUIRE_GPU();
  EXPECT_EQ(cuda::attention_workspace_bytes(4096), 0u);
  AttentionParams p;  // rows = 0: nothing to do, nothing touched
  cuda::attention(p, nullptr, 0, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  const cuda::AttentionPlan plan = cuda::attention_plan(1);
  EXPECT_GE(plan.max_splits, 8);
  RecordProperty("max_splits", plan.max_splits);
}

TEST(AttentionGpu, OneRowAllValid) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 1;
  c.valid = {2048};
  c.seed = 101;
  run_case(c);
}

TEST(AttentionGpu, OneRowNoValidIdGivesZerosAndMinusInf) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 1;
  c.valid = {0};
  c.seed = 102;
  const Inputs in = make_inputs(c);
  Outputs got;
  run_gpu(in, {}, got);
  for (uint16_t v : got.out) ASSERT_EQ(v, 0u) << "a row without valid ids must give +0";
  for (float v : got.lse) ASSERT_TRUE(std::isinf(v) && v < 0) << "lse " << v;
}

TEST(AttentionGpu, ValidCountsScatteredHoles) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 12;
  c.valid = {0, 1, 7, 64, 2047, 2048};
  c.holes = Holes::kScattered;
  c.seed = 103;
  run_case(c);
}

TEST(AttentionGpu, ValidCountsHolesAsTail) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 12;
  c.valid = {1, 7, 64, 2047, 0, 2048, 33, 1100};
  c.holes = Holes::kTail;
  c.seed = 104;
  run_case(c);
}

TEST(AttentionGpu, ValidCountsHolesAsHead) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 7;
  c.valid = {1, 7, 64, 2047, 31, 32, 33};
  c.holes = Holes::kHead;
  c.seed = 105;
  run_case(c);
}

// Every split count (cluster size) and pipeline depth on rows with full, partial and no ids.
TEST(AttentionGpu, EverySplitCountAndDepth) {
  REQUIRE_GPU();
  const int max_splits = cuda::attention_plan(1).max_splits;
  for (int stages : {4, 5}) {
    for (int splits : {1, 2, 4, 8, 16}) {
      if (splits > max_splits || (stages == 5 && splits > 1)) continue;  // 5 stages: no room to split
      SCOPED_TRACE(::testing::Message() << "stages " << stages << ", splits " << splits);
      CaseSpec c;
      c.rows = 5;
      c.valid = {2048, 33, 0, 7, 1500};
      c.seed = 200 + static_cast<uint64_t>(stages * 100 + splits);
      run_case(c, cuda::AttentionTuning{stages, splits});
    }
  }
}

// 1..8 rows, every valid count class, holes scattered or as a tail (a contiguous prefix, as
// FlashInfer-Bench's rows), through the default plan and with one block or one cluster of every
// size the device runs per row. Rows of one call differ in length, so some blocks have no id.
TEST(AttentionGpu, FewRowsEveryCountClass) {
  REQUIRE_GPU();
  const int max_splits = cuda::attention_plan(1).max_splits;
  const std::vector<int> classes = {2048, 0, 1, 7, 64, 2047, 33, 1100, 16, 17, 511, 513, 32, 250};
  int runs = 0;
  for (int splits : {0, 1, 2, 4, 8, 16}) {  // 0: the default plan
    if (splits > max_splits) continue;
    for (int64_t rows = 1; rows <= 8; ++rows) {
      for (Holes holes : {Holes::kTail, Holes::kScattered}) {
        SCOPED_TRACE(::testing::Message() << "splits " << splits << ", rows " << rows << ", holes "
                                          << (holes == Holes::kTail ? "tail" : "scattered"));
        CaseSpec c;
        c.rows = rows;
        c.valid.clear();
        for (int64_t r = 0; r < rows; ++r)  // a different mix of classes per row count
          c.valid.push_back(classes[static_cast<size_t>((r * 5 + rows * 3 + splits) % classes.size())]);
        c.holes = holes;
        c.seed = 500 + static_cast<uint64_t>(splits * 100 + rows * 2 + (holes == Holes::kTail));
        run_case(c, cuda::AttentionTuning{0, splits});
        ++runs;
      }
    }
  }
  RecordProperty("few_row_runs", runs);
  EXPECT_GE(runs, 32);
}

// Every valid count class alone in a 1-row call, through the default plan (the row split over
// one cluster) and with one block.
TEST(AttentionGpu, OneRowEveryCount) {
  REQUIRE_GPU();
  for (int valid : {0, 1, 7, 16, 17, 33, 64, 96, 97, 128, 129, 255, 256, 257, 1000, 2047, 2048}) {
    SCOPED_TRACE(::testing::Message() << "valid " << valid);
    CaseSpec c;
    c.rows = 1;
    c.valid = {valid};
    c.seed = 700 + static_cast<uint64_t>(valid);
    run_case(c);  // default plan
    c.seed += 1000;
    run_case(c, cuda::AttentionTuning{0, 1});  // one block
  }
}

// Rows split over clusters whose blocks' partials differ by orders of magnitude (a quarter of
// each row's tokens, one or two blocks' share, has large V), every split count.
TEST(AttentionGpu, SplitPartialsOfMixedMagnitude) {
  REQUIRE_GPU();
  const int max_splits = cuda::attention_plan(1).max_splits;
  for (int splits : {2, 4, 8, 16}) {
    if (splits > max_splits) continue;
    // (hot scale, sm_scale): logits of a few units, so every block's share of the softmax
    // matters; with |v| ~ 1000 the logits are kept small, as in LargeMagnitudeInputs (with
    // logits of ~100 no float32 summation order matches the reference to 1e-2).
    for (const auto& [hot, scale] : {std::pair{4.f, 0.01f}, std::pair{40.f, 0.01f}, std::pair{1000.f, 2e-5f}}) {
      SCOPED_TRACE(::testing::Message() << "splits " << splits << ", hot scale " << hot);
      CaseSpec c;
      c.rows = 3;
      c.valid = {2048, 700, 2047};
      c.holes = Holes::kTail;
      c.sm_scale = scale;
      c.hot_scale = hot;
      c.seed = 900 + static_cast<uint64_t>(splits * 10) + static_cast<uint64_t>(hot);
      run_case(c, cuda::AttentionTuning{0, splits});
    }
  }
}

// Few rows (split over clusters by the default plan) with one-hot and large-magnitude
// softmaxes, and repeated ids.
TEST(AttentionGpu, FewRowsLargeValuesAndRepeats) {
  REQUIRE_GPU();
  {
    CaseSpec c;
    c.rows = 3;
    c.valid = {2048, 700, 7};
    c.sm_scale = 8.f;
    c.seed = 801;
    run_case(c);
  }
  {
    CaseSpec c;
    c.rows = 4;
    c.valid = {2048, 300, 7, 1100};
    c.magnitude = 1000.f;
    c.sm_scale = 2e-7f;
    c.seed = 802;
    run_case(c);
  }
  {
    CaseSpec c;
    c.rows = 2;
    c.valid = {2048, 100};
    c.duplicates = true;
    c.seed = 803;
    run_case(c);
  }
}

// Nothing carries over between calls: the same calls, repeated and interleaved with calls of
// another shape and launch shape, give the reference every time.
TEST(AttentionGpu, RepeatedCalls) {
  REQUIRE_GPU();
  CaseSpec a;
  a.rows = 1;
  a.valid = {2048};
  a.seed = 901;
  CaseSpec b;
  b.rows = 6;
  b.valid = {1100, 2048, 0, 33, 2047, 5};
  b.holes = Holes::kTail;
  b.seed = 902;
  const Inputs in_a = make_inputs(a), in_b = make_inputs(b);
  const cuda::AttentionTuning one_block{0, 1};
  for (int rep = 0; rep < 3; ++rep) {
    SCOPED_TRACE(::testing::Message() << "repetition " << rep);
    Outputs got;
    run_gpu(in_a, {}, got);  // default plan: one cluster
    if (::testing::Test::HasFatalFailure()) return;
    check(a, in_a, got);
    run_gpu(in_b, {}, got);  // default plan: one cluster per row
    if (::testing::Test::HasFatalFailure()) return;
    check(b, in_b, got);
    run_gpu(in_b, one_block, got);  // one block per row
    if (::testing::Test::HasFatalFailure()) return;
    check(b, in_b, got);
  }
}

// 1..64 rows through the default plan (which splits rows over clusters when rows are few).
TEST(AttentionGpu, RowCountsThroughDefaultPlan) {
  REQUIRE_GPU();
  for (int64_t rows : {2, 3, 8, 9, 16, 33, 64}) {
    SCOPED_TRACE(::testing::Message() << "rows " << rows);
    CaseSpec c;
    c.rows = rows;
    c.valid = {-1, 2048, 1, 64};
    c.seed = 300 + static_cast<uint64_t>(rows);
    run_case(c);
  }
}

TEST(AttentionGpu, PrefillLikeIdsSharedAcrossRows) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 128;
  c.valid = {2048, -1, 2047, 1000};
  c.disjoint = false;
  c.pool_tokens = 2600;  // rows draw from one small pool: ids repeat across rows
  c.seed = 106;
  run_case(c);
}

TEST(AttentionGpu, RepeatedIdsInsideARow) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 4;
  c.valid = {2048, 100, 17, 5};
  c.duplicates = true;
  c.seed = 107;
  run_case(c);
}

TEST(AttentionGpu, LargeSmScaleNearlyOneHot) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 16;
  c.valid = {2048, 700, 7};
  c.sm_scale = 8.f;  // logits of tens to hundreds: softmax close to one-hot
  c.seed = 108;
  run_case(c);
}

TEST(AttentionGpu, LargeMagnitudeInputs) {
  REQUIRE_GPU();
  {
    CaseSpec c;  // huge logits: one-hot on the largest
    c.rows = 8;
    c.valid = {2048, 300, 1};
    c.magnitude = 256.f;
    c.seed = 109;
    run_case(c);
  }
  {
    CaseSpec c;  // large values, moderate logits: a real mixture of large rows
    c.rows = 8;
    c.valid = {2048, 300, 7};
    c.magnitude = 1000.f;
    c.sm_scale = 2e-7f;
    c.seed = 110;
    run_case(c);
  }
}

TEST(AttentionGpu, DecodeLike1024Rows) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 1024;
  c.valid = {2048, -1, 2048, 1, 0, 64};
  c.disjoint = false;
  c.pool_tokens = 2048 * 64;  // 2048 pages
  c.seed = 111;
  c.check_rows = 256;
  run_case(c);
}

TEST(AttentionGpu, Rows4096SampledCheck) {
  REQUIRE_GPU();
  CaseSpec c;
  c.rows = 4096;
  c.valid = {-1, 2048, 7, 2047};
  c.holes = Holes::kScattered;
  c.disjoint = false;
  c.pool_tokens = 2048 * 64;
  c.seed = 112;
  c.check_rows = 192;
  run_case(c);
}

}  // namespace
}  // namespace dsa
