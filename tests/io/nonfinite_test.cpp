// NaN and Inf inside otherwise valid data: not refused, read back bit for bit, and counted by
// check_contents() per dataset with the first row (page) that holds one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "hostile_files.hpp"
#include "io/workload.hpp"
#include "io_test_util.hpp"

namespace dsa::io::test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

void set_scale(SampleWorkload& s, int64_t page, int token, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, 4);
  const std::size_t at = static_cast<std::size_t>(page * kIndexPageBytes + kIndexPageFp8Bytes + token * 4);
  for (int b = 0; b < 4; ++b) s.kv.index_k[at + static_cast<std::size_t>(b)] = static_cast<uint8_t>(bits >> (8 * b));
}

// A finite sample (10 rows, 6 pages) with NaN and Inf planted in every float dataset.
SampleWorkload planted() {
  SampleWorkload s = make_sample();
  make_finite(s);
  // /queries/weights: 1 NaN (row 3), 2 Inf (row 7: +Inf, -Inf).
  s.rows.weights[3 * kIndexHeads + 5] = kNaN;
  s.rows.weights[7 * kIndexHeads + 0] = kInf;
  s.rows.weights[7 * kIndexHeads + 63] = -kInf;
  // /kv/index_k: e4m3 NaN 0x7F in page 4 and 0xFF in page 5; scales NaN in page 2, Inf in page 3.
  s.kv.index_k[4 * kIndexPageBytes + 100] = 0x7F;
  s.kv.index_k[5 * kIndexPageBytes + kIndexPageFp8Bytes - 1] = 0xFF;
  set_scale(s, 2, 63, kNaN);
  set_scale(s, 3, 0, -kInf);
  set_scale(s, 3, 1, kInf);
  // /queries/q_index: 0xFF in row 9 (its last value).
  s.rows.q_index.back() = 0xFF;
  // bf16: /kv/ckv +Inf (page 1) and NaN (page 5); /kv/kpe clean; /queries/q_nope -NaN in row 0;
  // /queries/q_pe -Inf and a signalling NaN in row 6.
  s.kv.ckv[1 * kPageSize * kCkvDim + 17] = 0x7F80;
  s.kv.ckv[5 * kPageSize * kCkvDim] = 0x7FC0;
  s.rows.q_nope[3] = 0xFFC1;
  s.rows.q_pe[6 * kHeads * kKpeDim + 1] = 0xFF80;
  s.rows.q_pe[6 * kHeads * kKpeDim + 2] = 0x7F81;
  return s;
}

struct Want {
  const char* dataset;
  const char* values;
  int64_t nan, inf, first_row;
};

void expect_nonfinite(const RowStats& stats, const std::vector<Want>& want) {
  ASSERT_EQ(stats.nonfinite.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].dataset);
    const NonFinite& got = stats.nonfinite[i];
    EXPECT_EQ(got.dataset, want[i].dataset);
    EXPECT_EQ(got.values, want[i].values);
    EXPECT_EQ(got.nan, want[i].nan);
    EXPECT_EQ(got.inf, want[i].inf);
    EXPECT_EQ(got.count(), want[i].nan + want[i].inf);
    EXPECT_EQ(got.first_row, want[i].first_row);
  }
}

const std::vector<Want> kIndexerWant = {
    {"/kv/index_k", "e4m3", 2, 0, 4},
    {"/kv/index_k", "float32 scales", 1, 2, 2},
    {"/queries/q_index", "e4m3", 1, 0, 9},
    {"/queries/weights", "float32", 1, 2, 3},
};
const std::vector<Want> kAttentionWant = {
    {"/kv/ckv", "bf16", 1, 1, 1},
    {"/queries/q_nope", "bf16", 1, 0, 0},
    {"/queries/q_pe", "bf16", 1, 1, 6},
};

class NonFiniteTest : public ::testing::Test {
 protected:
  TempDir dir;
  const std::string path = dir.file("w.h5");
};

TEST_F(NonFiniteTest, CleanFileHasNone) {
  SampleWorkload s = make_sample();
  make_finite(s);
  write_sample(path, s);
  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline})
    EXPECT_TRUE(WorkloadFile(path, stage).check_contents().nonfinite.empty()) << stage_name(stage);
}

TEST_F(NonFiniteTest, IndexerCountsItsDatasets) {
  write_sample(path, planted());
  expect_nonfinite(WorkloadFile(path, Stage::indexer).check_contents(), kIndexerWant);
}

TEST_F(NonFiniteTest, AttentionCountsItsDatasets) {
  write_sample(path, planted());
  expect_nonfinite(WorkloadFile(path, Stage::attention).check_contents(), kAttentionWant);
}

TEST_F(NonFiniteTest, PipelineCountsBoth) {
  write_sample(path, planted());
  std::vector<Want> want = kIndexerWant;
  want.insert(want.end(), kAttentionWant.begin(), kAttentionWant.end());
  expect_nonfinite(WorkloadFile(path, Stage::pipeline).check_contents(), want);
}

TEST_F(NonFiniteTest, ValuesAreReadBackBitForBit) {
  const SampleWorkload s = planted();
  write_sample(path, s);
  const WorkloadFile w(path, Stage::pipeline);
  const QueryRows rows = w.read_rows(0, 10);
  ASSERT_EQ(rows.weights.size(), s.rows.weights.size());
  EXPECT_EQ(std::memcmp(rows.weights.data(), s.rows.weights.data(), rows.weights.size() * 4), 0);
  EXPECT_TRUE(std::isnan(rows.weights[3 * kIndexHeads + 5]));
  EXPECT_EQ(rows.weights[7 * kIndexHeads + 63], -kInf);
  EXPECT_EQ(rows.q_index, s.rows.q_index);
  EXPECT_EQ(rows.q_nope, s.rows.q_nope);
  EXPECT_EQ(rows.q_pe, s.rows.q_pe);
  const KvCache kv = w.read_kv();
  EXPECT_EQ(kv.index_k, s.kv.index_k);
  EXPECT_EQ(kv.ckv, s.kv.ckv);
}

TEST_F(NonFiniteTest, CountsIncludeValuesPastSeqLen) {
  // Whole datasets are counted, whether or not a row's seq_len reaches the page.
  SampleWorkload s = make_sample();
  make_finite(s);
  s.rows.seq_lens.assign(10, 0);
  s.kv.index_k[0] = 0x7F;
  write_sample(path, s);
  expect_nonfinite(WorkloadFile(path, Stage::indexer).check_contents(),
                   {{"/kv/index_k", "e4m3", 1, 0, 0}});
}

TEST_F(NonFiniteTest, CountsSpanReadChunks) {
  // 5000 rows: more than one chunk of the streaming check (4096 rows at most per read).
  SampleWorkload s = make_sample(5000, 2, 1);
  make_finite(s);
  s.rows.weights[4999 * kIndexHeads + 1] = kNaN;
  s.rows.weights[4100 * kIndexHeads + 2] = kInf;
  s.shape.attention_data = false;
  s.shape.sparse_indices = false;
  write_sample(path, s);
  expect_nonfinite(WorkloadFile(path, Stage::indexer).check_contents(),
                   {{"/queries/weights", "float32", 1, 1, 4100}});
}

TEST_F(NonFiniteTest, Text) {
  NonFinite scales{"/kv/index_k", "float32 scales", 3, 1, 7};
  EXPECT_EQ(scales.text(), "/kv/index_k: 3 NaN, 1 Inf in its float32 scales, first in page 7");
  NonFinite weights{"/queries/weights", "float32", 0, 2, 12};
  EXPECT_EQ(weights.text(), "/queries/weights: 2 Inf (float32), first in row 12");
  NonFinite q{"/queries/q_index", "e4m3", 5, 0, 0};
  EXPECT_EQ(q.text(), "/queries/q_index: 5 NaN (e4m3), first in row 0");
}

}  // namespace
}  // namespace dsa::io::test
