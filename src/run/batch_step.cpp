#include "src/run/batch_step.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "comm/gather.hpp"
#include "common/error.hpp"
#include "kernels/shapes.hpp"
#ifdef DSA_HAVE_NCCL
#include "comm/nccl.hpp"
#else
namespace dsa::comm {
class NcclComm {};  // never made in a build without NCCL; complete so unique_ptr can hold it
}  // namespace dsa::comm
#endif

namespace dsa::run {
namespace {

// Results gather over NCCL: more than one rank, every one's results on its GPU. Collective.
bool gathers_with_nccl(const comm::World& world, const Backend& backend) {
#ifdef DSA_HAVE_NCCL
  return world.size() > 1 && world.all(backend.results_on_device());
#else
  (void)world;
  (void)backend;
  return false;
#endif
}

// Rank 0's results going down to host set `slot` piece by piece as soon as each is in its device
// buffers, while the next pieces compute (fetch then waits for the last): as a listener when
// rank 0 computes a batch alone, through StreamedGather when other ranks send pieces.
class StreamedDownload final : public PieceListener {
 public:
  StreamedDownload(Backend& backend, io::Stage stage, int slot)
      : backend_(backend), stage_(stage), slot_(slot), rule_(backend.pieces(stage, true)) {}
  void piece_enqueued(int, int64_t r0, int64_t r1, void* ready) override { take(r0, r1, ready); }
  // Rows [r0, r1) of the batch, in rank 0's device buffers once `ready` completes.
  void take(int64_t r0, int64_t r1, void* ready) {
    if (ready == nullptr) return;  // results in host memory already
    if (backend_.download_rows(stage_, r0, r1, slot_, ready)) done_ += r1 - r0;
  }
  int64_t rows_done() const { return done_; }  // rows whose download is enqueued
  // No other rank follows this batch's pieces: half-pieces at both ends shorten the upload the
  // first kernels wait for and the download left after the last.
  const plan::Pieces* rule() const override { return &rule_; }

 private:
  Backend& backend_;
  io::Stage stage_;
  int slot_;
  plan::Pieces rule_;  // the backend's tapered one
  int64_t done_ = 0;
};

#ifdef DSA_HAVE_NCCL
// The result arrays a stage gathers: rows of this rank's buffers, to the same buffers on rank 0.
std::vector<comm::RowArray> gathered_arrays(io::Stage stage, const ResultRows& r) {
  std::vector<comm::RowArray> arrays;
  if (io::writes_topk(stage)) arrays.push_back({r.topk, r.topk, kTopkRowBytes});
  if (io::writes_attention(stage)) {
    arrays.push_back({r.output, r.output, kOutputRowBytes});
    arrays.push_back({r.lse, r.lse, kLseRowBytes});
  }
  return arrays;
}

// One batch's streamed gather, told of each piece by the backend's compute(). A sender sends
// piece p when it is enqueued (after its kernels, on the comm's stream); rank 0 receives
// "group" q, piece q of every other rank, after its own piece q (after its last piece: every
// group left), so that its receives overlap its own compute too. Every rank's pieces come from
// the one rule (plan::piece_cuts), so rank 0 knows them without being told.
class StreamedGather final : public PieceListener {
 public:
  // `download` (rank 0, may be null): where each piece's rows go down to host memory as soon as
  // they are in rank 0's device buffers (its own pieces once computed, the others' once received).
  StreamedGather(comm::NcclComm& nccl, std::vector<comm::RowArray> arrays, const plan::BatchPlan& plan, int me,
                 const plan::Pieces& pieces, StreamedDownload* download = nullptr)
      : nccl_(nccl), arrays_(std::move(arrays)), plan_(plan), me_(me), download_(download),
        rule_(plan::batch_pieces(pieces, plan.cuts)) {
    for (int r = 0; r < plan.ranks; ++r) cuts_.push_back(plan::piece_cuts(plan.end(r) - plan.begin(r), rule_));
    for (int r = 1; r < plan.ranks; ++r) groups_ = std::max(groups_, pieces_of(r));
  }

  const plan::Pieces* rule() const override { return &rule_; }

  void piece_enqueued(int piece, int64_t r0, int64_t r1, void* ready) override {
    const std::vector<int64_t>& mine = cuts_[size_t(me_)];
    DSA_REQUIRE(piece == next_ && piece < pieces_of(me_) && r0 == mine[size_t(piece)] && r1 == mine[size_t(piece) + 1],
                "streamed gather: piece ", piece, " (rows ", r0, "..", r1, ") is not piece ", next_,
                " of the rule's ", pieces_of(me_));
    ++next_;
    if (me_ != 0) {
      nccl_.gather_pieces(arrays_, {{me_, r0, r1 - r0, 0}}, ready);
      return;
    }
    // Rank 0: its own piece goes down; this piece's group; after its own last piece, the groups
    // of longer slices.
    if (download_) download_->take(r0, r1, ready);
    const int last = piece + 1 == pieces_of(0) ? groups_ - 1 : piece;
    for (int q = piece; q <= last && q < groups_; ++q) receive(q, q == piece ? ready : nullptr);
  }

  // After compute(): posts whatever the backend did not announce (nothing, normally), then waits
  // for the whole gather; `device_seconds`: this GPU's time for it.
  void finish(double* device_seconds = nullptr) {
    if (me_ != 0) {
      for (int p = next_; p < pieces_of(me_); ++p) {
        const std::vector<int64_t>& c = cuts_[size_t(me_)];
        nccl_.gather_pieces(arrays_, {{me_, c[size_t(p)], c[size_t(p) + 1] - c[size_t(p)], 0}}, nullptr);
      }
    } else {
      for (int q = received_; q < groups_; ++q) receive(q, nullptr);
    }
    nccl_.wait_pieces(device_seconds);
  }

 private:
  int pieces_of(int r) const { return static_cast<int>(cuts_[size_t(r)].size()) - 1; }

  void receive(int q, void* ready) {
    DSA_REQUIRE(q == received_, "streamed gather: group ", q, " after ", received_);
    std::vector<comm::RowPiece> group;
    for (int r = 1; r < plan_.ranks; ++r) {
      if (q >= pieces_of(r)) continue;
      const std::vector<int64_t>& c = cuts_[size_t(r)];
      const int64_t row = c[size_t(q)];
      group.push_back({r, row, c[size_t(q) + 1] - row, plan_.begin(r) - plan_.begin(0) + row});
    }
    void* done = nccl_.gather_pieces(arrays_, group, ready);
    if (download_ && done)
      for (const comm::RowPiece& p : group) download_->take(p.at, p.at + p.rows, done);
    ++received_;
  }

  comm::NcclComm& nccl_;
  std::vector<comm::RowArray> arrays_;
  const plan::BatchPlan& plan_;
  int me_;
  std::vector<std::vector<int64_t>> cuts_;  // every active rank's pieces
  int groups_ = 0;                          // rank 0: the most pieces of any sender
  int next_ = 0;                            // this rank's next piece
  int received_ = 0;                        // rank 0: groups posted
  StreamedDownload* download_ = nullptr;
  plan::Pieces rule_;  // this batch's (plan::batch_pieces)
};
#endif

// A piece rule as values for a broadcast, and back.
std::vector<double> as_values(const plan::Pieces& p) {
  return {double(p.min_rows), double(p.max), p.tapered ? 1.0 : 0.0, double(p.short_rows), double(p.taper_rows),
          p.growth};
}
plan::Pieces from_values(const std::vector<double>& v) {
  return {static_cast<int64_t>(v[0]), static_cast<int>(v[1]), v[2] != 0, static_cast<int64_t>(v[3]),
          static_cast<int64_t>(v[4]), v[5]};
}

}  // namespace

plan::Pieces streamed_pieces(const comm::World& world, const Backend& backend, io::Stage stage) {
  if (!gathers_with_nccl(world, backend)) return {};
  const char* env = std::getenv("DSA_STREAM_GATHER");
  const plan::Pieces mine = env && std::strcmp(env, "0") == 0 ? plan::Pieces{} : backend.pieces(stage);
  std::vector<double> rule = as_values(mine);
  world.broadcast(rule);
  const plan::Pieces agreed = from_values(rule);
  if (!world.all(mine == agreed) || !agreed.splits()) return {};
  return agreed;
}

BatchStep::BatchStep(const comm::World& world, Backend& backend, io::Stage stage)
    : world_(world), backend_(backend), stage_(stage) {
#ifdef DSA_HAVE_NCCL
  if (gathers_with_nccl(world, backend)) {
    nccl_ = std::make_unique<comm::NcclComm>(world);
    streamed_ = streamed_pieces(world, backend, stage);
  }
#endif
}

BatchStep::~BatchStep() = default;

std::string BatchStep::transport() const {
#ifdef DSA_HAVE_NCCL
  if (nccl_) {
    std::string how = comm::NcclComm::library_version() + " (device to device";
    if (streamed_.splits()) {
      how += ", streamed in pieces of >= " + std::to_string(streamed_.min_rows) + " rows";
      if (streamed_.growth != 1) {
        char growth[32];
        std::snprintf(growth, sizeof growth, "%.2g", streamed_.growth);
        how += std::string(" (as many), each ") + growth + "x the one before";
      }
      if (streamed_.tapered)
        how += ", tapered from " + std::to_string(streamed_.taper_from()) + "-row slices";
    }
    return how + ")";
  }
#endif
  return "MPI (host memory)";
}

void BatchStep::compute_and_gather(const plan::BatchPlan& plan, const io::RowsView& mine, float sm_scale,
                                   report::TimeSplit& split) {
  const int me = world_.rank();
  const bool streamed = nccl_ && plan.ranks > 1 && streamed_.splits();
  downloaded_ = 0;
  if (plan.active(me)) {
    DSA_REQUIRE(mine.count == plan.end(me) - plan.begin(me), "batch ", plan.batch, ": ", mine.count,
                " rows given, the plan has ", plan.end(me) - plan.begin(me));
    // Rank 0 takes each piece down to host memory as soon as it is in its device buffers (fetch
    // waits for the last): as the listener when it computes the batch alone, through the
    // streamed gather when other ranks send pieces.
    StreamedDownload download(backend_, stage_, slot_);
    PieceListener* listener =
        plan.ranks == 1 && world_.is_root() && backend_.results_on_device() ? &download : nullptr;
#ifdef DSA_HAVE_NCCL
    std::unique_ptr<StreamedGather> streaming;
    if (streamed) {
      streaming = std::make_unique<StreamedGather>(*nccl_, gathered_arrays(stage_, backend_.results()), plan, me,
                                                   streamed_, me == 0 ? &download : nullptr);
      listener = streaming.get();
    }
#endif
    const double t0 = report::now_seconds();
    backend_.compute(stage_, mine, sm_scale, listener);
    const ComputeTimes c = backend_.last_times();
    split.upload += c.upload;
    split.index += c.index;
    split.attend += c.attend;
    const double t1 = report::now_seconds();
    split.other += std::max(0.0, (t1 - t0) - (c.upload + c.index + c.attend));
#ifdef DSA_HAVE_NCCL
    if (streaming) {
      streaming->finish();
      split.gather += report::now_seconds() - t1;
    }
#endif
    downloaded_ = download.rows_done();
  }
  if (streamed) {
    on_host_ = false;
    return;
  }
  gather(plan, split);
}

void BatchStep::gather(const plan::BatchPlan& plan, report::TimeSplit& split) {
  const int me = world_.rank();
  on_host_ = false;
  if (plan.ranks == 1) return;
  const double t0 = report::now_seconds();
  if (nccl_) {
#ifdef DSA_HAVE_NCCL
    // Device to device: NCCL involves the active ranks only.
    if (plan.active(me)) nccl_->gather_rows(gathered_arrays(stage_, backend_.results()), plan.cuts, backend_.stream());
#endif
  } else if (!plan.active(me)) {
    mpi_gather(plan, ResultRows{});  // MPI's gather is collective over all ranks
  } else {
    // Host memory: each rank's slice comes down first (a no-op for the CPU backend), then MPI
    // puts the other ranks' rows after rank 0's, in place.
    mpi_gather(plan, backend_.host_results(stage_, plan.end(me) - plan.begin(me), slot_));
    on_host_ = true;
  }
  split.gather += report::now_seconds() - t0;
}

double BatchStep::streamed_gather_device_seconds(const plan::BatchPlan& plan) {
#ifdef DSA_HAVE_NCCL
  const int me = world_.rank();
  if (!nccl_ || plan.ranks < 2 || !streamed_.splits() || !plan.active(me)) return 0;
  StreamedGather streaming(*nccl_, gathered_arrays(stage_, backend_.results()), plan, me, streamed_);
  double seconds = 0;
  streaming.finish(&seconds);  // every piece at once, none announced
  return seconds;
#else
  (void)plan;
  return 0;
#endif
}

void BatchStep::mpi_gather(const plan::BatchPlan& plan, const ResultRows& r) {
  if (io::writes_topk(stage_)) comm::gather_rows(world_, r.topk, r.topk, plan.cuts, kTopkRowBytes);
  if (io::writes_attention(stage_)) {
    comm::gather_rows(world_, r.output, r.output, plan.cuts, kOutputRowBytes);
    comm::gather_rows(world_, r.lse, r.lse, plan.cuts, kLseRowBytes);
  }
}

ResultRows BatchStep::fetch(const plan::BatchPlan& plan, int slot, report::TimeSplit& split) {
  const double t0 = report::now_seconds();
  const ResultRows r = start_fetch(plan, slot);
  finish_fetch(slot);
  split.download += report::now_seconds() - t0;
  return r;
}

ResultRows BatchStep::start_fetch(const plan::BatchPlan& plan, int slot) {
  DSA_REQUIRE(world_.is_root(), "BatchStep::fetch on rank ", world_.rank());
  // After an MPI gather the rows are in the host buffers already; a download now would
  // overwrite the gathered rows with the device's (rank 0's own only).
  DSA_REQUIRE(!on_host_ || slot == slot_, "BatchStep::fetch: slot ", slot, " after a gather into slot ", slot_);
  DSA_REQUIRE(downloaded_ == 0 || slot == slot_, "BatchStep::fetch: slot ", slot, " after downloads into slot ", slot_);
  // Rows already on their way down (piece by piece) are only waited for; a backend that took
  // none down (or only some) downloads the whole batch here.
  const bool all_down = on_host_ || downloaded_ == plan.rows;
  return backend_.host_results_async(stage_, all_down ? 0 : plan.rows, slot);
}

}  // namespace dsa::run
