// The CPU backend: the reference kernels, rows spread over threads.
#include <algorithm>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "kernels/reference/attention.hpp"
#include "kernels/reference/indexer.hpp"
#include "kernels/shapes.hpp"
#include "src/report/report.hpp"
#include "src/run/backend.hpp"

namespace dsa::run {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads) {}

  std::string name() const override { return "cpu"; }
  std::string device() const override { return "cpu (" + std::to_string(threads_) + " threads)"; }
  int threads() const override { return threads_; }

  void load_kv(io::Stage stage, int64_t num_pages, const KvPageReader& read) override {
    own_kv_ = io::allocate_kv_cache(stage, num_pages, "cpu backend (host memory)");
    read(0, num_pages, io::pages_of(own_kv_));
    kv_ = &own_kv_;
  }
  void load_kv(const io::KvCache& kv) override { kv_ = &kv; }

  void reserve(io::Stage stage, int64_t /*max_rows*/, int64_t max_held, int32_t, int64_t) override {
    const size_t n = static_cast<size_t>(std::max<int64_t>(max_held, 0));
    if (io::writes_topk(stage) && topk_.size() < n * kTopK) topk_.resize(n * kTopK);
    if (io::writes_attention(stage)) {
      if (output_.size() < n * kHeads * kCkvDim) output_.resize(n * kHeads * kCkvDim);
      if (lse_.size() < n * kHeads) lse_.resize(n * kHeads);
    }
  }

  using Backend::compute;
  void compute(io::Stage stage, const io::RowsView& rows, float sm_scale, PieceListener* listener) override {
    times_ = ComputeTimes{};
    const ResultRows out = results();
    if (io::writes_topk(stage)) {
      DSA_REQUIRE(topk_.size() >= size_t(rows.count) * kTopK, "cpu backend: ", rows.count, " rows, reserved for ",
                  topk_.size() / kTopK);
      indexer(rows, out.topk);
    }
    if (io::writes_attention(stage)) {
      DSA_REQUIRE(lse_.size() >= size_t(rows.count) * kHeads, "cpu backend: ", rows.count, " rows, reserved for ",
                  lse_.size() / kHeads);
      const int32_t* ids = stage == io::Stage::pipeline ? out.topk : rows.sparse_indices;
      attention(rows, ids, sm_scale, out.output, out.lse);
    }
    if (listener) listener->piece_enqueued(0, 0, rows.count, nullptr);  // one piece, done
  }

  ResultRows results() override {
    return {topk_.empty() ? nullptr : topk_.data(), output_.empty() ? nullptr : output_.data(),
            lse_.empty() ? nullptr : lse_.data()};
  }
  bool results_on_device() const override { return false; }
  ResultRows host_results(io::Stage stage, int64_t rows, int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cpu backend: host slot ", slot);
    Set& set = host_[slot];
    const size_t n = size_t(std::max<int64_t>(rows, 0));
    if (io::writes_topk(stage)) {
      set.topk.resize(std::max(set.topk.size(), topk_.size()));
      std::copy_n(topk_.begin(), n * kTopK, set.topk.begin());
    }
    if (io::writes_attention(stage)) {
      set.output.resize(std::max(set.output.size(), output_.size()));
      set.lse.resize(std::max(set.lse.size(), lse_.size()));
      std::copy_n(output_.begin(), n * kHeads * kCkvDim, set.output.begin());
      std::copy_n(lse_.begin(), n * kHeads, set.lse.begin());
    }
    ResultRows out;
    if (io::writes_topk(stage)) out.topk = set.topk.data();
    if (io::writes_attention(stage)) {
      out.output = set.output.data();
      out.lse = set.lse.data();
    }
    return out;
  }

  ComputeTimes last_times() const override { return times_; }

  plan::CostModel cost_model() const override {
    // Scoring one token costs ~16K FLOP; a core of the reference does a few GFLOP/s.
    plan::CostModel m;
    m.seconds_per_unit = 4e-6 / threads_;
    m.per_rank_seconds = 1e-3;
    m.gather_bytes_per_second = 2e9;
    m.gather_latency_seconds = 5e-5;
    return m;
  }

 private:
  void indexer(const io::RowsView& rows, int32_t* topk) {
    DSA_REQUIRE(kv_ && !kv_->index_k.empty(), "cpu backend: indexer called without the index K cache");
    IndexerParams p;
    p.index_k = kv_->index_k.data();
    p.num_pages = kv_->num_pages;
    p.q_index = rows.q_index;
    p.weights = rows.weights;
    p.seq_lens = rows.seq_lens;
    p.block_table = rows.block_table;
    p.max_num_pages = rows.max_num_pages;
    p.rows = rows.count;
    for (int64_t r = 0; r < rows.count; ++r)
      p.max_seq_len = std::max(p.max_seq_len, rows.seq_lens[r]);
    p.topk_indices = topk;
    const double t0 = report::now_seconds();
    ref::indexer(p, threads_);
    times_.index = report::now_seconds() - t0;
  }

  void attention(const io::RowsView& rows, const int32_t* sparse_indices, float sm_scale, uint16_t* output,
                 float* lse) {
    DSA_REQUIRE(kv_ && !kv_->ckv.empty(), "cpu backend: attention called without the ckv/kpe caches");
    AttentionParams p;
    p.q_nope = rows.q_nope;
    p.q_pe = rows.q_pe;
    p.ckv = kv_->ckv.data();
    p.kpe = kv_->kpe.data();
    p.num_pages = kv_->num_pages;
    p.sparse_indices = sparse_indices;
    p.rows = rows.count;
    p.sm_scale = sm_scale;
    p.output = output;
    p.lse = lse;
    const double t0 = report::now_seconds();
    ref::attention(p, threads_);
    times_.attend = report::now_seconds() - t0;
  }

  int threads_;
  struct Set {
    std::vector<int32_t> topk;
    std::vector<uint16_t> output;
    std::vector<float> lse;
  };
  Set host_[2];
  std::vector<int32_t> topk_;
  std::vector<uint16_t> output_;
  std::vector<float> lse_;
  const io::KvCache* kv_ = nullptr;
  io::KvCache own_kv_;  // where load_kv read the caches itself
  ComputeTimes times_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace dsa::run
