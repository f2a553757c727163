// dsa-gen's library: reproducibility, the promised edge cases, the shape of the data, and the
// file contract (complete or absent, never overwritten unasked).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_util.hpp"
#include "common/error.hpp"
#include "io/workload.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/shapes.hpp"
#include "src/gen/generate.hpp"
#include "src/gen/rng.hpp"

namespace fs = std::filesystem;
using dsa::gen::GenConfig;
using dsa::gen::Stages;
using dsa::gen::WorkloadPlan;

namespace {

using dsa::testing::TempDir;

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

GenConfig config_for(const std::string& preset, uint64_t seed = 1) {
  GenConfig c = dsa::gen::preset_config(preset);
  c.seed = seed;
  c.threads = 2;
  return c;
}

double quantile(std::vector<int32_t> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// Every row's sparse ids: distinct, reachable within seq_len through the block table, and as
// many as the plan says; with prefix layout, all before the first -1.
void expect_sparse_ids_valid(const WorkloadPlan& plan, const dsa::io::QueryRows& rows) {
  for (int64_t k = 0; k < rows.count; ++k) {
    const int64_t row = rows.first + k;
    const int32_t len = plan.seq_lens[static_cast<size_t>(row)];
    std::set<int32_t> reachable;
    for (int32_t s = 0; s < len; ++s)
      reachable.insert(plan.block_table[static_cast<size_t>(row * plan.max_num_pages + s / 64)] * 64 +
                       s % 64);
    std::set<int32_t> seen;
    bool hole_seen = false, gap = false;
    for (int i = 0; i < dsa::kTopK; ++i) {
      const int32_t id = rows.sparse_indices[static_cast<size_t>(k * dsa::kTopK + i)];
      if (id == -1) {
        hole_seen = true;
        continue;
      }
      gap = gap || hole_seen;
      ASSERT_TRUE(reachable.count(id)) << "row " << row << " id " << id << " not reachable";
      ASSERT_TRUE(seen.insert(id).second) << "row " << row << " repeats id " << id;
    }
    EXPECT_EQ(static_cast<int32_t>(seen.size()), plan.valid_ids[static_cast<size_t>(row)]) << "row " << row;
    if (plan.prefix_layout) {
      EXPECT_FALSE(gap) << "row " << row << ": valid ids not a prefix";
    }
  }
}

void expect_block_tables_valid(const WorkloadPlan& plan) {
  for (int64_t row = 0; row < plan.rows(); ++row) {
    const int32_t* t = plan.block_table.data() + row * plan.max_num_pages;
    const int64_t used = dsa::pages_for(plan.seq_lens[static_cast<size_t>(row)]);
    ASSERT_LE(used, plan.max_num_pages);
    std::set<int32_t> pages;
    for (int64_t k = 0; k < plan.max_num_pages; ++k) {
      ASSERT_GE(t[k], 0);
      ASSERT_LT(t[k], plan.num_pages);
      if (k < used) {
        EXPECT_TRUE(pages.insert(t[k]).second) << "row " << row << " repeats page " << t[k];
      }
    }
  }
}

}  // namespace

TEST(GenPresets, EveryPresetHasAConfigAndAHelpText) {
  ASSERT_GE(dsa::gen::presets().size(), 5u);
  for (const auto& p : dsa::gen::presets()) {
    EXPECT_GT(std::string(p.summary).size(), 40u) << p.name;
    const GenConfig c = dsa::gen::preset_config(p.name);
    EXPECT_EQ(c.preset, p.name);
    EXPECT_GT(c.batches, 0);
  }
  EXPECT_THROW(dsa::gen::preset_config("nope"), dsa::Error);
}

TEST(GenPresets, BadConfigsAreRefused) {
  GenConfig c = config_for("tiny");
  c.seq_len_min = 10;
  c.seq_len_max = 5;
  EXPECT_THROW(dsa::gen::validate(c), dsa::Error);
  c = config_for("tiny");
  c.sm_scale = -1.0;
  EXPECT_THROW(dsa::gen::validate(c), dsa::Error);
  c = config_for("decode");
  c.rows = int64_t{1} << 40;
  EXPECT_THROW(dsa::gen::validate(c), dsa::Error);
  EXPECT_THROW(dsa::gen::parse_stages("pipeline"), dsa::Error);
  EXPECT_EQ(dsa::gen::parse_stages("attention"), Stages::attention);
}

TEST(GenPlan, TinyCoversTheEdgeCases) {
  const WorkloadPlan plan = dsa::gen::make_plan(config_for("tiny"));
  const std::set<int32_t> lens(plan.seq_lens.begin(), plan.seq_lens.end());
  for (int32_t want : {0, 1, 63, 64, 65, 2048, 2049, 3000}) EXPECT_TRUE(lens.count(want)) << want;
  EXPECT_TRUE(std::any_of(lens.begin(), lens.end(), [](int32_t l) { return l > 64 && l < 2048; }));
  const std::set<int32_t> valid(plan.valid_ids.begin(), plan.valid_ids.end());
  for (int32_t want : {0, 1, 7, 2048}) EXPECT_TRUE(valid.count(want)) << want;
  for (int64_t b = 0; b < plan.batches(); ++b) {
    const int64_t n = plan.batch_offsets[b + 1] - plan.batch_offsets[b];
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 5);
  }
  EXPECT_LE(plan.num_pages, 64);  // tiny KV
  expect_block_tables_valid(plan);
}

TEST(GenPlan, DemoIsRaggedAndSmall) {
  const WorkloadPlan plan = dsa::gen::make_plan(config_for("demo"));
  EXPECT_EQ(plan.batches(), 8);
  for (int64_t b = 0; b < plan.batches(); ++b) {
    const int64_t n = plan.batch_offsets[b + 1] - plan.batch_offsets[b];
    EXPECT_GE(n, 4);
    EXPECT_LE(n, 32);
  }
  const std::set<int32_t> lens(plan.seq_lens.begin(), plan.seq_lens.end());
  EXPECT_TRUE(lens.count(0));
  EXPECT_TRUE(lens.count(2048));
  EXPECT_LE(*lens.rbegin(), 8192);
  // The CPU reference's work: indexer 16384 FLOP per token, attention 34816 per valid id.
  double flop = 0;
  for (int64_t i = 0; i < plan.rows(); ++i)
    flop += 16384.0 * plan.seq_lens[i] + 34816.0 * std::min(plan.seq_lens[i], dsa::kTopK);
  EXPECT_LT(flop, 20e9);
  expect_block_tables_valid(plan);
}

TEST(GenPlan, FibIndexerStatistics) {
  GenConfig c = config_for("fib-indexer");
  c.batches = 256;  // enough rows for stable quantiles
  const WorkloadPlan plan = dsa::gen::make_plan(c);
  for (int64_t b = 0; b < plan.batches(); ++b) {
    const int64_t n = plan.batch_offsets[b + 1] - plan.batch_offsets[b];
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 31);
  }
  const double median = quantile(plan.seq_lens, 0.5), p90 = quantile(plan.seq_lens, 0.9);
  EXPECT_GT(median, 75);
  EXPECT_LT(median, 120);
  EXPECT_GT(p90, 650);
  EXPECT_LT(p90, 1000);
  const double short_rows =
      static_cast<double>(std::count_if(plan.seq_lens.begin(), plan.seq_lens.end(),
                                        [](int32_t l) { return l <= 2048; })) /
      static_cast<double>(plan.rows());
  EXPECT_GT(short_rows, 0.95);
  EXPECT_LT(short_rows, 0.99);
  EXPECT_LE(*std::max_element(plan.seq_lens.begin(), plan.seq_lens.end()), 5806);
  // Pages mostly in contiguous runs.
  int64_t steps = 0, contiguous = 0;
  for (int64_t row = 0; row < plan.rows(); ++row) {
    const int32_t* t = plan.block_table.data() + row * plan.max_num_pages;
    for (int64_t k = 1; k < dsa::pages_for(plan.seq_lens[row]); ++k, ++steps)
      contiguous += t[k] == t[k - 1] + 1;
  }
  EXPECT_GT(static_cast<double>(contiguous) / static_cast<double>(steps), 0.7);
  expect_block_tables_valid(plan);
}

TEST(GenPlan, FibAttentionStatistics) {
  GenConfig c = config_for("fib-attention");
  c.batches = 512;
  const WorkloadPlan plan = dsa::gen::make_plan(c);
  EXPECT_TRUE(plan.prefix_layout);
  for (int64_t b = 0; b < plan.batches(); ++b) {
    const int64_t n = plan.batch_offsets[b + 1] - plan.batch_offsets[b];
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 8);
  }
  const double median = quantile(plan.valid_ids, 0.5), p90 = quantile(plan.valid_ids, 0.9);
  EXPECT_GT(median, 25);
  EXPECT_LT(median, 45);
  EXPECT_GT(p90, 850);
  EXPECT_LT(p90, 1350);
  EXPECT_EQ(*std::max_element(plan.valid_ids.begin(), plan.valid_ids.end()), dsa::kTopK);
  const dsa::io::QueryRows rows = dsa::gen::make_rows(plan, 0, 200, 2);
  expect_sparse_ids_valid(plan, rows);
}

TEST(GenPlan, DecodeStepsShareTheirRequestsKv) {
  GenConfig c = config_for("decode");
  c.rows = 8;
  c.batches = 5;
  c.seq_len_min = 100;
  c.seq_len_max = 300;
  const WorkloadPlan plan = dsa::gen::make_plan(c);
  ASSERT_EQ(plan.rows(), 40);
  ASSERT_EQ(plan.batches(), 5);
  int64_t pages = 0;
  std::set<int32_t> all_pages;
  for (int64_t r = 0; r < 8; ++r) {
    const int32_t base = plan.seq_lens[r];
    EXPECT_GE(base, 100);
    EXPECT_LE(base, 300);
    const int64_t need = dsa::pages_for(base + 4);
    pages += need;
    for (int64_t k = 0; k < need; ++k)
      EXPECT_TRUE(all_pages.insert(plan.block_table[r * plan.max_num_pages + k]).second);
    for (int64_t s = 1; s < 5; ++s) {
      EXPECT_EQ(plan.seq_lens[s * 8 + r], base + s);
      EXPECT_TRUE(std::equal(plan.block_table.begin() + r * plan.max_num_pages,
                             plan.block_table.begin() + (r + 1) * plan.max_num_pages,
                             plan.block_table.begin() + (s * 8 + r) * plan.max_num_pages));
    }
  }
  EXPECT_EQ(plan.num_pages, pages);
  expect_block_tables_valid(plan);
  expect_sparse_ids_valid(plan, dsa::gen::make_rows(plan, 0, plan.rows(), 3));

  // A shared prefix (a common system prompt): every request starts with the same 2 pages.
  c.shared_prefix = 128;
  const WorkloadPlan shared = dsa::gen::make_plan(c);
  for (int64_t row = 1; row < shared.rows(); ++row)
    for (int64_t k = 0; k < 2; ++k)
      EXPECT_EQ(shared.block_table[row * shared.max_num_pages + k], shared.block_table[k]);
  EXPECT_EQ(shared.num_pages, pages - 7 * 2);
  expect_block_tables_valid(shared);
}

TEST(GenFile, DegenerateSizesStillMakeValidFiles) {
  TempDir dir;
  GenConfig c = config_for("demo");
  c.rows = 3;
  c.batches = 2;
  c.seq_len_min = c.seq_len_max = 0;  // nothing to attend to: one page, all ids -1
  dsa::gen::generate_workload(dir.file("zero.h5"), c, false);
  const auto stats = dsa::io::WorkloadFile(dir.file("zero.h5"), dsa::io::Stage::attention).check_contents();
  EXPECT_EQ(stats.valid_ids, std::vector<int32_t>(6, 0));
  EXPECT_NO_THROW(dsa::io::WorkloadFile(dir.file("zero.h5"), dsa::io::Stage::pipeline).check_contents());
  c = config_for("decode");
  c.rows = 1;
  c.batches = 1;
  c.seq_len_min = c.seq_len_max = 1;
  c.stages = Stages::indexer;
  const auto s = dsa::gen::generate_workload(dir.file("one.h5"), c, false);
  EXPECT_EQ(s.rows, 1);
  EXPECT_EQ(s.num_pages, 1);
  EXPECT_NO_THROW(dsa::io::WorkloadFile(dir.file("one.h5"), dsa::io::Stage::indexer).check_contents());
}

TEST(GenPlan, SharedPrefixSharesPages) {
  GenConfig c = config_for("demo");
  c.rows = 6;
  c.seq_len_min = 300;
  c.seq_len_max = 900;
  c.shared_prefix = 256;  // 4 pages
  const WorkloadPlan plan = dsa::gen::make_plan(c);
  for (int64_t b = 0; b < plan.batches(); ++b) {
    const int64_t first = plan.batch_offsets[b];
    for (int64_t i = first + 1; i < plan.batch_offsets[b + 1]; ++i) {
      EXPECT_TRUE(std::equal(plan.block_table.begin() + first * plan.max_num_pages,
                             plan.block_table.begin() + first * plan.max_num_pages + 4,
                             plan.block_table.begin() + i * plan.max_num_pages));
      EXPECT_NE(plan.block_table[first * plan.max_num_pages + 4],
                plan.block_table[i * plan.max_num_pages + 4]);
    }
  }
  expect_block_tables_valid(plan);
}

TEST(GenData, ThreadCountDoesNotChangeTheData) {
  GenConfig c = config_for("demo", 7);
  c.threads = 1;
  const WorkloadPlan plan = dsa::gen::make_plan(c);
  const auto kv1 = dsa::gen::make_kv(7, 3, 11, true, true, 1);
  const auto kv3 = dsa::gen::make_kv(7, 3, 11, true, true, 3);
  EXPECT_EQ(kv1.index_k, kv3.index_k);
  EXPECT_EQ(kv1.ckv, kv3.ckv);
  EXPECT_EQ(kv1.kpe, kv3.kpe);
  // A page's content depends on its id only, not on the range it was generated in.
  const auto kv_one = dsa::gen::make_kv(7, 5, 1, true, true, 1);
  EXPECT_TRUE(std::equal(kv_one.ckv.begin(), kv_one.ckv.end(), kv1.ckv.begin() + 2 * 64 * 512));
  const auto r1 = dsa::gen::make_rows(plan, 5, 17, 1);
  const auto r4 = dsa::gen::make_rows(plan, 5, 17, 4);
  EXPECT_EQ(r1.q_index, r4.q_index);
  EXPECT_EQ(r1.weights, r4.weights);
  EXPECT_EQ(r1.q_nope, r4.q_nope);
  EXPECT_EQ(r1.q_pe, r4.q_pe);
  EXPECT_EQ(r1.sparse_indices, r4.sparse_indices);
  EXPECT_EQ(r1.block_table, r4.block_table);
  expect_sparse_ids_valid(plan, r1);
}

TEST(GenData, SeedChangesEverything) {
  const auto a = dsa::gen::make_kv(1, 0, 2, true, true, 2);
  const auto b = dsa::gen::make_kv(2, 0, 2, true, true, 2);
  EXPECT_NE(a.index_k, b.index_k);
  EXPECT_NE(a.ckv, b.ckv);
  EXPECT_NE(a.kpe, b.kpe);
  const WorkloadPlan pa = dsa::gen::make_plan(config_for("demo", 1));
  const WorkloadPlan pb = dsa::gen::make_plan(config_for("demo", 2));
  EXPECT_NE(pa.seq_lens, pb.seq_lens);
  EXPECT_NE(pa.block_table, pb.block_table);
}

TEST(GenData, IndexKIsPackedLikeDeepGemm) {
  const auto kv = dsa::gen::make_kv(3, 0, 8, true, false, 2);
  ASSERT_TRUE(kv.ckv.empty());
  const float* e4m3 = dsa::ref::e4m3_table();
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  for (int64_t p = 0; p < kv.num_pages; ++p) {
    const uint8_t* page = kv.index_k.data() + p * dsa::kIndexPageBytes;
    for (int t = 0; t < dsa::kPageSize; ++t) {
      float scale;
      std::memcpy(&scale, page + dsa::kIndexPageFp8Bytes + 4 * t, 4);
      ASSERT_GT(scale, 0.0f);
      float amax_code = 0;
      for (int d = 0; d < dsa::kIndexHeadDim; ++d) {
        const float v = e4m3[page[t * dsa::kIndexHeadDim + d]];
        ASSERT_FALSE(std::isnan(v));
        amax_code = std::max(amax_code, std::fabs(v));
        sum += v * scale;
        sum_sq += double(v * scale) * double(v * scale);
        ++n;
      }
      // scale = amax / 448 of the row: the largest value codes as +-448 exactly.
      EXPECT_EQ(amax_code, 448.0f) << "page " << p << " token " << t;
      // The decoded row is a bf16 normal: amax a few standard deviations.
      EXPECT_GT(448.0f * scale, 1.5f);
      EXPECT_LT(448.0f * scale, 3.5f);
    }
  }
  const double count = static_cast<double>(n);
  const double mean = sum / count, var = sum_sq / count - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.05);
}

// The bytes are exactly the documented recipe, rebuilt here from the generator's random streams
// and the reference conversions (so the fast paths in generate.cpp agree with them).
TEST(GenData, BytesFollowTheRecipe) {
  using dsa::gen::detail::Rng;
  using dsa::gen::detail::Stream;
  const uint64_t seed = 11;
  const int64_t page = 5;
  const auto kv = dsa::gen::make_kv(seed, page, 1, true, true, 1);
  Rng ckv(seed, Stream::ckv, page), kpe(seed, Stream::kpe, page), idx(seed, Stream::index_k, page);
  for (size_t i = 0; i < kv.ckv.size(); ++i) ASSERT_EQ(kv.ckv[i], dsa::ref::float_to_bf16(ckv.normal())) << i;
  for (size_t i = 0; i < kv.kpe.size(); ++i) ASSERT_EQ(kv.kpe[i], dsa::ref::float_to_bf16(kpe.normal())) << i;
  for (int t = 0; t < dsa::kPageSize; ++t) {
    float row[dsa::kIndexHeadDim], amax = 0.0f;
    for (float& x : row) {
      x = dsa::ref::bf16_to_float(dsa::ref::float_to_bf16(idx.normal()));
      amax = std::max(amax, std::fabs(x));
    }
    const float scale = amax / 448.0f;
    float stored;
    std::memcpy(&stored, kv.index_k.data() + dsa::kIndexPageFp8Bytes + 4 * t, 4);
    ASSERT_EQ(stored, scale) << "token " << t;
    for (int d = 0; d < dsa::kIndexHeadDim; ++d)
      ASSERT_EQ(kv.index_k[static_cast<size_t>(t * dsa::kIndexHeadDim + d)],
                dsa::ref::float_to_e4m3(row[d] / scale)) << "token " << t << " dim " << d;
  }
  GenConfig c = config_for("tiny", seed);
  const WorkloadPlan plan = dsa::gen::make_plan(c);
  const auto rows = dsa::gen::make_rows(plan, 3, 1, 1);
  Rng qi(seed, Stream::q_index, 3), w(seed, Stream::weights, 3), qn(seed, Stream::q_nope, 3);
  for (size_t i = 0; i < rows.q_index.size(); ++i) ASSERT_EQ(rows.q_index[i], dsa::ref::float_to_e4m3(qi.normal()));
  for (size_t i = 0; i < rows.weights.size(); ++i) ASSERT_EQ(rows.weights[i], w.normal() * 0.125f);
  for (size_t i = 0; i < rows.q_nope.size(); ++i) ASSERT_EQ(rows.q_nope[i], dsa::ref::float_to_bf16(qn.normal()));
}

TEST(GenData, QueriesLookLikeNormals) {
  const WorkloadPlan plan = dsa::gen::make_plan(config_for("tiny"));
  const auto rows = dsa::gen::make_rows(plan, 0, plan.rows(), 2);
  double sum_sq = 0;
  for (uint16_t b : rows.q_nope) sum_sq += std::pow(dsa::ref::bf16_to_float(b), 2);
  EXPECT_NEAR(sum_sq / static_cast<double>(rows.q_nope.size()), 1.0, 0.02);
  sum_sq = 0;
  for (uint8_t b : rows.q_index) sum_sq += std::pow(dsa::ref::e4m3_to_float(b), 2);
  EXPECT_NEAR(sum_sq / static_cast<double>(rows.q_index.size()), 1.0, 0.05);
  for (float w : rows.weights) EXPECT_LT(std::fabs(w), 0.5f);
  expect_sparse_ids_valid(plan, rows);
}

TEST(GenFile, TinyPassesEveryStageAndKeepsItsPromises) {
  TempDir dir;
  const std::string path = dir.file("tiny.h5");
  const auto summary = dsa::gen::generate_workload(path, config_for("tiny"), false);
  EXPECT_EQ(summary.rows, 10);
  EXPECT_EQ(summary.batches, 5);
  EXPECT_EQ(summary.file_bytes, fs::file_size(path));
  for (auto stage : {dsa::io::Stage::indexer, dsa::io::Stage::attention, dsa::io::Stage::pipeline}) {
    dsa::io::WorkloadFile file(path, stage);
    EXPECT_NO_THROW(file.check_contents()) << dsa::io::stage_name(stage);
  }
  dsa::io::WorkloadFile file(path, dsa::io::Stage::attention);
  EXPECT_DOUBLE_EQ(file.info().sm_scale, 1.0 / 24.0);
  const auto stats = dsa::io::WorkloadFile(path, dsa::io::Stage::indexer).check_contents();
  const std::set<int32_t> lens(stats.seq_lens.begin(), stats.seq_lens.end());
  EXPECT_TRUE(lens.count(0));
  EXPECT_TRUE(lens.count(2048));
  EXPECT_TRUE(std::any_of(lens.begin(), lens.end(), [](int32_t l) { return l > 2048; }));
  const auto rows = file.read_rows(0, file.info().rows);
  std::set<int> valid_counts;
  bool hole_before_valid = false;
  for (int64_t r = 0; r < rows.count; ++r) {
    const int32_t* s = rows.sparse_indices.data() + r * dsa::kTopK;
    valid_counts.insert(static_cast<int>(std::count_if(s, s + dsa::kTopK, [](int32_t v) { return v != -1; })));
    for (int i = 1; i < dsa::kTopK; ++i) hole_before_valid |= s[i - 1] == -1 && s[i] != -1;
  }
  EXPECT_TRUE(valid_counts.count(0));
  EXPECT_TRUE(valid_counts.count(2048));
  EXPECT_TRUE(hole_before_valid);
  // What was written is what the library makes.
  const WorkloadPlan plan = dsa::gen::make_plan(config_for("tiny"));
  const auto want = dsa::gen::make_rows(plan, 0, plan.rows(), 1);
  EXPECT_EQ(rows.q_nope, want.q_nope);
  EXPECT_EQ(rows.sparse_indices, want.sparse_indices);
  const auto kv = file.read_kv();
  EXPECT_EQ(kv.ckv, dsa::gen::make_kv(1, 0, plan.num_pages, false, true, 2).ckv);
  EXPECT_EQ(dir.entries(), 1u);  // no temporary left behind
}

TEST(GenFile, StagesSelectDatasets) {
  TempDir dir;
  GenConfig c = config_for("tiny");
  c.stages = Stages::indexer;
  dsa::gen::generate_workload(dir.file("i.h5"), c, false);
  EXPECT_NO_THROW(dsa::io::WorkloadFile(dir.file("i.h5"), dsa::io::Stage::indexer).check_contents());
  EXPECT_THROW(dsa::io::WorkloadFile(dir.file("i.h5"), dsa::io::Stage::attention), dsa::Error);
  c.stages = Stages::attention;
  dsa::gen::generate_workload(dir.file("a.h5"), c, false);
  EXPECT_NO_THROW(dsa::io::WorkloadFile(dir.file("a.h5"), dsa::io::Stage::attention).check_contents());
  EXPECT_THROW(dsa::io::WorkloadFile(dir.file("a.h5"), dsa::io::Stage::indexer), dsa::Error);
  EXPECT_LT(fs::file_size(dir.file("i.h5")), fs::file_size(dir.file("a.h5")));
}

TEST(GenFile, SameSeedSameBytesAnyThreadCount) {
  TempDir dir;
  GenConfig c = config_for("tiny", 42);
  c.threads = 1;
  dsa::gen::generate_workload(dir.file("a.h5"), c, false);
  // Past a second boundary, so that stored modification times would show.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  c.threads = 3;
  dsa::gen::generate_workload(dir.file("b.h5"), c, false);
  const auto a = file_bytes(dir.file("a.h5")), b = file_bytes(dir.file("b.h5"));
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "identical configurations gave different file bytes (HDF5 object "
                         "modification times? the writer must call H5Pset_obj_track_times(dcpl, 0))";
  c.seed = 43;
  dsa::gen::generate_workload(dir.file("c.h5"), c, false);
  EXPECT_FALSE(a == file_bytes(dir.file("c.h5")));
}

TEST(GenFile, RefusesToOverwriteUnlessTold) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  { std::ofstream(path) << "precious"; }
  try {
    dsa::gen::generate_workload(path, config_for("tiny"), false);
    FAIL() << "overwrote an existing file";
  } catch (const dsa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(file_bytes(path).size(), 8u);
  EXPECT_EQ(dir.entries(), 1u);
  dsa::gen::generate_workload(path, config_for("tiny"), true);
  EXPECT_NO_THROW(dsa::io::WorkloadFile(path, dsa::io::Stage::pipeline));
  EXPECT_EQ(dir.entries(), 1u);
}

TEST(GenFile, FailureLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("missing_dir/w.h5");
  EXPECT_ANY_THROW(dsa::gen::generate_workload(path, config_for("tiny"), false));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(dir.entries(), 0u);
  // A progress callback that throws aborts the write; nothing is left.
  const std::string path2 = dir.file("w.h5");
  EXPECT_ANY_THROW(dsa::gen::generate_workload(path2, config_for("tiny"), false,
                                               [](const dsa::gen::Progress&) { throw std::runtime_error("stop"); }));
  EXPECT_FALSE(fs::exists(path2));
  EXPECT_EQ(dir.entries(), 0u);
}

TEST(GenFile, ProgressReachesTheTotal) {
  TempDir dir;
  dsa::gen::Progress last;
  int calls = 0;
  dsa::gen::generate_workload(dir.file("w.h5"), config_for("tiny"), false,
                              [&](const dsa::gen::Progress& p) {
                                EXPECT_GE(p.bytes_done, last.bytes_done);
                                last = p;
                                ++calls;
                              });
  EXPECT_GT(calls, 1);
  EXPECT_EQ(last.bytes_done, last.bytes_total);
  // The estimate is the bulk data; HDF5 adds little.
  const double size = static_cast<double>(fs::file_size(dir.file("w.h5")));
  EXPECT_NEAR(size / static_cast<double>(last.bytes_total), 1.0, 0.05);
}
