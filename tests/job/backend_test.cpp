// The backends as the job drives them: the pipeline stage equals the indexer stage followed by
// the attention stage on its top-k, and a row's results do not depend on the call it was in
// (when every call has at least min_slice_rows rows; a GPU also computes large calls in
// pieces), which is what makes results identical whichever ranks computed them. The CPU backend always; the CUDA backend where a GPU is
// visible (skipped, visibly, elsewhere).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/shapes.hpp"
#include "src/gen/generate.hpp"
#include "src/run/backend.hpp"

namespace dsa::run {
namespace {

struct Results {
  std::vector<int32_t> topk;
  std::vector<uint16_t> output;
  std::vector<float> lse;
};

std::unique_ptr<Backend> backend_named(const std::string& name) {
  if (name == "cpu") return make_cpu_backend(2);
#ifdef DSA_HAVE_CUDA
  if (visible_cuda_devices() > 0) return make_cuda_backend(0);
#endif
  return nullptr;
}

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = backend_named(GetParam());
    if (!backend_) GTEST_SKIP() << "no GPU visible: the CUDA backend is tested on the GPU machine";
    // The demo preset: ragged seq_len up to 8K, pages in random order. The CPU reference is
    // slow, so it takes the first rows only.
    gen::GenConfig config = gen::preset_config("demo");
    config.seed = 21;
    if (GetParam() != "cpu") {  // one batch of 1100 rows: large enough for the GPU's pieces (of 512 rows or more)
      config.rows = 1100;
      config.batches = 1;
    }
    plan_ = gen::make_plan(config);
    rows_count_ = GetParam() == "cpu" ? 12 : plan_.rows();
    kv_ = gen::make_kv(config.seed, 0, plan_.num_pages, true, true);
    rows_ = gen::make_rows(plan_, 0, rows_count_);
    backend_->load_kv(kv_);
    max_seq_len_ = 0;
    for (int64_t r = 0; r < rows_count_; ++r) max_seq_len_ = std::max(max_seq_len_, rows_.seq_lens[size_t(r)]);
  }

  // Computes `stage` on rows [first, first + count) of rows_ and copies the results.
  Results run(io::Stage stage, const io::QueryRows& all, int64_t first, int64_t count) {
    const io::QueryRows rows = io::slice_rows(all, first, count);
    backend_->reserve(stage, rows_count_, rows_count_, max_seq_len_, plan_.max_num_pages);
    backend_->compute(stage, io::view(rows), float(plan_.config.sm_scale));
    const ResultRows h = backend_->host_results(stage, count, 0);
    Results out;
    if (h.topk) out.topk.assign(h.topk, h.topk + count * kTopK);
    if (h.output) out.output.assign(h.output, h.output + count * kHeads * kCkvDim);
    if (h.lse) out.lse.assign(h.lse, h.lse + count * kHeads);
    return out;
  }

  std::unique_ptr<Backend> backend_;
  gen::WorkloadPlan plan_;
  io::KvCache kv_;
  io::QueryRows rows_;
  int64_t rows_count_ = 0;
  int32_t max_seq_len_ = 0;
};

TEST_P(BackendTest, PipelineIsTheIndexerThenAttentionOnItsTopk) {
  const Results pipe = run(io::Stage::pipeline, rows_, 0, rows_count_);
  const Results index = run(io::Stage::indexer, rows_, 0, rows_count_);
  EXPECT_EQ(pipe.topk, index.topk) << "the pipeline's top-k differs from the indexer stage's";
  io::QueryRows with_topk = rows_;
  with_topk.sparse_indices = pipe.topk;
  const Results attend = run(io::Stage::attention, with_topk, 0, rows_count_);
  EXPECT_EQ(pipe.output, attend.output) << "attention on the pipeline's top-k gives another output";
  EXPECT_EQ(0, std::memcmp(pipe.lse.data(), attend.lse.data(), pipe.lse.size() * sizeof(float)));
}

TEST_P(BackendTest, RowsGiveTheSameResultsInAnyCallOfAtLeastMinSliceRows) {
  for (io::Stage stage : {io::Stage::indexer, io::Stage::attention, io::Stage::pipeline}) {
    SCOPED_TRACE(io::stage_name(stage));
    const int64_t min_rows = backend_->min_slice_rows(stage);
    if (2 * min_rows > rows_count_) GTEST_SKIP() << "too few rows to split in two slices of " << min_rows;
    const Results whole = run(stage, rows_, 0, rows_count_);
    // Two uneven slices, each at least min_rows, as the planner would cut them.
    const int64_t cut = std::max(min_rows, rows_count_ / 3);
    const Results a = run(stage, rows_, 0, cut);
    const Results b = run(stage, rows_, cut, rows_count_ - cut);
    auto joined = [](std::vector<auto> x, const auto& y) {
      x.insert(x.end(), y.begin(), y.end());
      return x;
    };
    EXPECT_EQ(whole.topk, joined(a.topk, b.topk));
    EXPECT_EQ(whole.output, joined(a.output, b.output));
    const std::vector<float> lse = joined(a.lse, b.lse);
    ASSERT_EQ(whole.lse.size(), lse.size());
    EXPECT_EQ(0, std::memcmp(whole.lse.data(), lse.data(), lse.size() * sizeof(float)));
  }
}

// The job loads the KV caches in runs of pages from the file (a GPU through bounded page-locked
// buffers, the CPU into its own copy): the runs cover every page once, in order, with a buffer
// for each array the stage reads and none for the others, and the results are those of caches
// loaded whole.
TEST_P(BackendTest, KvLoadedInRunsOfPagesGivesTheSameResults) {
  for (io::Stage stage : {io::Stage::indexer, io::Stage::attention, io::Stage::pipeline}) {
    SCOPED_TRACE(io::stage_name(stage));
    std::unique_ptr<Backend> streamed = backend_named(GetParam());
    const bool index = io::stage_needs_indexer_data(stage), attend = io::stage_needs_attention_data(stage);
    const size_t ckv_page = size_t(kPageSize) * kCkvDim, kpe_page = size_t(kPageSize) * kKpeDim;
    int64_t next = 0, runs = 0;
    streamed->load_kv(stage, kv_.num_pages, [&](int64_t first, int64_t count, const io::KvPages& into) {
      ASSERT_EQ(first, next);
      ASSERT_GT(count, 0);
      ASSERT_LE(first + count, kv_.num_pages);
      ASSERT_EQ(into.index_k != nullptr, index);
      ASSERT_EQ(into.ckv != nullptr, attend);
      ASSERT_EQ(into.kpe != nullptr, attend);
      const size_t f = size_t(first), n = size_t(count);
      if (index) std::memcpy(into.index_k, kv_.index_k.data() + f * kIndexPageBytes, n * kIndexPageBytes);
      if (attend) {
        std::memcpy(into.ckv, kv_.ckv.data() + f * ckv_page, n * ckv_page * 2);
        std::memcpy(into.kpe, kv_.kpe.data() + f * kpe_page, n * kpe_page * 2);
      }
      next += count;
      ++runs;
    });
    EXPECT_EQ(next, kv_.num_pages) << "in " << runs << " runs";
    io::QueryRows rows = rows_;
    const Results want = run(stage, rows, 0, rows_count_);
    std::swap(backend_, streamed);
    const Results got = run(stage, rows, 0, rows_count_);
    std::swap(backend_, streamed);
    EXPECT_EQ(got.topk, want.topk);
    EXPECT_EQ(got.output, want.output);
    ASSERT_EQ(got.lse.size(), want.lse.size());
    EXPECT_EQ(0, std::memcmp(got.lse.data(), want.lse.data(), want.lse.size() * sizeof(float)));
  }
}

// What a streamed gather relies on: compute() tells of every piece of plan::piece_cuts(rows,
// pieces(stage)), in order, each with its rows' results in place once its event completes.
TEST_P(BackendTest, ComputeTellsOfEachPieceInOrder) {
  struct Recorder final : PieceListener {
    std::vector<int64_t> cuts = {0};
    int pieces = 0;
    plan::Pieces told_rule;
    const plan::Pieces* rule() const override { return &told_rule; }
    void piece_enqueued(int piece, int64_t r0, int64_t r1, void*) override {
      EXPECT_EQ(piece, pieces++);
      EXPECT_EQ(r0, cuts.back());
      cuts.push_back(r1);
    }
  };
  for (io::Stage stage : {io::Stage::indexer, io::Stage::pipeline}) {
    for (bool alone : {false, true}) {
      SCOPED_TRACE(std::string(io::stage_name(stage)) + (alone ? ", alone" : ""));
      backend_->reserve(stage, rows_count_, rows_count_, max_seq_len_, plan_.max_num_pages);
      Recorder told;
      told.told_rule = backend_->pieces(stage, alone);
      backend_->compute(stage, io::view(rows_), float(plan_.config.sm_scale), &told);
      EXPECT_EQ(told.cuts, plan::piece_cuts(rows_count_, backend_->pieces(stage, alone)));
      if (GetParam() != "cpu") {
        EXPECT_GT(told.pieces, 1) << rows_count_ << " rows should go in pieces on a GPU";
        // Every piece, the tapered ends too, is at least min_slice_rows (identical results).
        for (size_t i = 0; i + 1 < told.cuts.size(); ++i)
          EXPECT_GE(told.cuts[i + 1] - told.cuts[i], backend_->min_slice_rows(stage));
      }
    }
  }
}

// What rank 0 relies on when it computes a batch alone: results taken down piece by piece
// (download_rows on each piece's event) are the whole batch's results, in the host set asked
// for, once host_results(stage, 0, slot) returns.
TEST_P(BackendTest, PiecesDownloadedAsComputedAreTheWholeResults) {
  struct Downloader final : PieceListener {
    Backend* backend;
    io::Stage stage;
    int64_t done = 0;
    bool taken = true;
    plan::Pieces tapered;  // as rank 0 alone takes them
    const plan::Pieces* rule() const override { return &tapered; }
    void piece_enqueued(int, int64_t r0, int64_t r1, void* ready) override {
      taken = taken && ready != nullptr && backend->download_rows(stage, r0, r1, 1, ready);
      done = r1;
    }
  };
  for (io::Stage stage : {io::Stage::indexer, io::Stage::attention, io::Stage::pipeline}) {
    SCOPED_TRACE(io::stage_name(stage));
    io::QueryRows rows = rows_;
    if (stage == io::Stage::attention) rows.sparse_indices = run(io::Stage::indexer, rows_, 0, rows_count_).topk;
    const Results whole = run(stage, rows, 0, rows_count_);  // downloaded at once, into set 0
    backend_->reserve(stage, rows_count_, rows_count_, max_seq_len_, plan_.max_num_pages);
    Downloader d;
    d.backend = backend_.get();
    d.stage = stage;
    d.tapered = backend_->pieces(stage, true);
    backend_->compute(stage, io::view(rows), float(plan_.config.sm_scale), &d);
    EXPECT_EQ(d.done, rows_count_);
    if (!backend_->results_on_device()) {
      EXPECT_FALSE(d.taken) << "a backend with results in host memory downloads nothing";
      continue;
    }
    ASSERT_TRUE(d.taken) << "a GPU backend takes every piece down";
    const ResultRows h = backend_->host_results(stage, 0, 1);
    if (!whole.topk.empty()) {
      EXPECT_EQ(0, std::memcmp(h.topk, whole.topk.data(), whole.topk.size() * sizeof(int32_t)));
    }
    if (!whole.output.empty()) {
      EXPECT_EQ(0, std::memcmp(h.output, whole.output.data(), whole.output.size() * sizeof(uint16_t)));
      EXPECT_EQ(0, std::memcmp(h.lse, whole.lse.data(), whole.lse.size() * sizeof(float)));
    }
  }
}

// What the job relies on to take one batch down while the next computes: batch A computed into
// result set 0 and its download enqueued (host_results_async), batch B computed into set 1 and
// its download enqueued, and only then both waited for: each host set holds its own batch's
// results. Also with one device result set (DSA_RESULT_SETS=1, where two do not fit), where B's
// compute waits for A's download instead.
TEST_P(BackendTest, OneBatchComesDownWhileTheNextComputes) {
  const int64_t half = rows_count_ / 2;
  for (const char* sets : {"2", "1"}) {
    SCOPED_TRACE(std::string("result sets: ") + sets);
    ::setenv("DSA_RESULT_SETS", sets, 1);
    std::unique_ptr<Backend> backend = backend_named(GetParam());
    ::unsetenv("DSA_RESULT_SETS");
    ASSERT_TRUE(backend);
    backend->load_kv(kv_);
    for (io::Stage stage : {io::Stage::indexer, io::Stage::pipeline}) {
      SCOPED_TRACE(io::stage_name(stage));
      const Results a_alone = run(stage, rows_, 0, half), b_alone = run(stage, rows_, half, rows_count_ - half);
      backend->reserve(stage, rows_count_, rows_count_, max_seq_len_, plan_.max_num_pages);
      const io::QueryRows a = io::slice_rows(rows_, 0, half), b = io::slice_rows(rows_, half, rows_count_ - half);
      const float sm_scale = float(plan_.config.sm_scale);
      backend->use_result_set(0);
      backend->compute(stage, io::view(a), sm_scale);
      const ResultRows ha = backend->host_results_async(stage, a.count, 0);
      backend->use_result_set(1);
      backend->compute(stage, io::view(b), sm_scale);
      const ResultRows hb = backend->host_results_async(stage, b.count, 1);
      backend->wait_host_results(1);
      backend->wait_host_results(0);
      EXPECT_EQ(0, std::memcmp(ha.topk, a_alone.topk.data(), a_alone.topk.size() * sizeof(int32_t)));
      EXPECT_EQ(0, std::memcmp(hb.topk, b_alone.topk.data(), b_alone.topk.size() * sizeof(int32_t)));
      if (stage == io::Stage::pipeline) {
        EXPECT_EQ(0, std::memcmp(ha.output, a_alone.output.data(), a_alone.output.size() * sizeof(uint16_t)));
        EXPECT_EQ(0, std::memcmp(hb.output, b_alone.output.data(), b_alone.output.size() * sizeof(uint16_t)));
        EXPECT_EQ(0, std::memcmp(ha.lse, a_alone.lse.data(), a_alone.lse.size() * sizeof(float)));
        EXPECT_EQ(0, std::memcmp(hb.lse, b_alone.lse.data(), b_alone.lse.size() * sizeof(float)));
      }
      backend->use_result_set(0);
    }
  }
}

// What the job relies on when its reader starts a batch's rows up to the GPU while the batch
// before computes (upload_ahead, from the reader's thread): the batch computed from rows that
// came ahead gives the results of the batch computed alone, and so does the batch it overlapped;
// rows re-staged after an upload_ahead are computed as they are now, not as they were sent
// (same slot, same count, other rows); and an upload_ahead that no compute() takes up is
// harmless. The CPU backend ignores upload_ahead: the same results, as the job relies on.
TEST_P(BackendTest, RowsUploadedAheadGiveTheResultsOfTheirOwnBatch) {
  const int64_t half = rows_count_ / 2;
  const float sm_scale = float(plan_.config.sm_scale);
  // Rows with the datasets the stage reads (those the staging buffers hold), as the job reads them.
  auto for_stage = [](io::QueryRows rows, io::Stage stage) {
    if (!io::stage_needs_indexer_data(stage)) {
      rows.seq_lens.clear();
      rows.block_table.clear();
      rows.q_index.clear();
      rows.weights.clear();
    }
    if (!io::stage_needs_attention_data(stage)) {
      rows.q_nope.clear();
      rows.q_pe.clear();
    }
    if (stage != io::Stage::attention) rows.sparse_indices.clear();
    return rows;
  };
  auto same = [&](const Results& want, const ResultRows& got, io::Stage stage) {
    if (io::writes_topk(stage)) {
      EXPECT_EQ(0, std::memcmp(got.topk, want.topk.data(), want.topk.size() * sizeof(int32_t)));
    }
    if (io::writes_attention(stage)) {
      EXPECT_EQ(0, std::memcmp(got.output, want.output.data(), want.output.size() * sizeof(uint16_t)));
      EXPECT_EQ(0, std::memcmp(got.lse, want.lse.data(), want.lse.size() * sizeof(float)));
    }
  };
  for (io::Stage stage : {io::Stage::indexer, io::Stage::attention, io::Stage::pipeline}) {
    SCOPED_TRACE(io::stage_name(stage));
    ASSERT_FALSE(rows_.sparse_indices.empty()) << "the demo rows carry attention's ids";
    const Results a_alone = run(stage, rows_, 0, half), b_alone = run(stage, rows_, half, half);
    backend_->reserve(stage, rows_count_, rows_count_, max_seq_len_, plan_.max_num_pages);
    const io::QueryRows a = for_stage(io::slice_rows(rows_, 0, half), stage),
                        b = for_stage(io::slice_rows(rows_, half, half), stage);
    // A computes while B's rows are sent ahead from another thread, then B computes from them.
    const io::RowsView va = staged(*backend_, a, 0);
    const io::RowsView vb = staged(*backend_, b, 1);
    std::thread reader([&] { backend_->upload_ahead(stage, vb, 1); });
    backend_->compute(stage, va, sm_scale);
    reader.join();
    same(a_alone, backend_->host_results(stage, half, 0), stage);
    backend_->compute(stage, vb, sm_scale);
    same(b_alone, backend_->host_results(stage, half, 1), stage);
    // A's rows sent ahead with nothing computing, then slot 0 re-staged with B's rows (the same
    // count): B's results.
    backend_->upload_ahead(stage, staged(*backend_, a, 0), 0);
    const io::RowsView vb0 = staged(*backend_, b, 0);
    backend_->compute(stage, vb0, sm_scale);
    same(b_alone, backend_->host_results(stage, half, 0), stage);
    // Rows sent ahead that no call takes up (a call of other rows comes instead).
    backend_->upload_ahead(stage, staged(*backend_, b, 1), 1);
    backend_->compute(stage, staged(*backend_, a, 0), sm_scale);
    same(a_alone, backend_->host_results(stage, half, 0), stage);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values("cpu", "cuda"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace dsa::run
