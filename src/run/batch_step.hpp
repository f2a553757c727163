// One batch across the ranks: every active rank computes its slice, the slices are assembled in
// rank 0's result buffers, and rank 0 takes them to host memory for the results file.
// GPU ranks assemble with NCCL, device to device, each slice landing where it belongs; the CPU
// backend (and a GPU build without NCCL) with MPI on host memory.
#pragma once

#include <memory>
#include <string>

#include "comm/world.hpp"
#include "io/workload.hpp"
#include "kernels/shapes.hpp"
#include "src/plan/plan.hpp"
#include "src/report/report.hpp"
#include "src/run/backend.hpp"

namespace dsa::comm {
class NcclComm;
}

namespace dsa::run {

// The planner's name for a stage.
inline plan::StageKind stage_kind(io::Stage stage) {
  switch (stage) {
    case io::Stage::indexer: return plan::StageKind::indexer;
    case io::Stage::attention: return plan::StageKind::attention;
    case io::Stage::pipeline: return plan::StageKind::pipeline;
  }
  return plan::StageKind::pipeline;
}

// Bytes of results a stage gathers per row (top-k; output and lse).
inline constexpr size_t kTopkRowBytes = kTopK * sizeof(int32_t);
inline constexpr size_t kOutputRowBytes = size_t(kHeads) * kCkvDim * sizeof(uint16_t);
inline constexpr size_t kLseRowBytes = size_t(kHeads) * sizeof(float);
inline double result_bytes_per_row(io::Stage stage) {
  return (io::writes_topk(stage) ? double(kTopkRowBytes) : 0.0) +
         (io::writes_attention(stage) ? double(kOutputRowBytes + kLseRowBytes) : 0.0);
}

// The pieces (Backend::pieces) whose results a batch's gather streams to rank 0 as they are
// computed: where results are gathered with NCCL (more than one rank, every rank's results on
// its GPU, NCCL built) and every rank cuts its slices by the same rule; else one piece (the
// gather follows each rank's whole slice). DSA_STREAM_GATHER=0 turns streaming off (for
// comparisons). Collective.
plan::Pieces streamed_pieces(const comm::World& world, const Backend& backend, io::Stage stage);

class BatchStep {
 public:
  // Collective over `world` (sets up NCCL where the backend's results live on a GPU and NCCL is
  // built). The backend must have load_kv'd and reserve'd.
  BatchStep(const comm::World& world, Backend& backend, io::Stage stage);
  ~BatchStep();
  BatchStep(const BatchStep&) = delete;
  BatchStep& operator=(const BatchStep&) = delete;

  // Computes this rank's rows of `plan` (`mine`: rows [plan.begin(rank), plan.end(rank)),
  // possibly none) and gathers every active rank's results into rank 0's result buffers.
  // Where the gather streams (streamed_pieces), each piece's results leave as soon as its
  // kernels are done, while the next pieces compute; rank 0 receives piece q of every rank once
  // its own piece q is done. Adds this rank's times to split (upload, index, attend, other;
  // gather: the wait for the gather after the compute). Collective over the active ranks only:
  // idle ranks return at once. A batch on rank 0 alone with results on a GPU has nothing to
  // gather: each piece's results start down to host set use_slot() as soon as its kernels are
  // done, so that fetch() waits only for the last piece's.
  void compute_and_gather(const plan::BatchPlan& plan, const io::RowsView& mine, float sm_scale,
                          report::TimeSplit& split);

  // The gather half of compute_and_gather alone, not streamed: every active rank's rows
  // [0, its slice) of its result buffers (whatever they hold) to rank 0, after its compute.
  // Used to measure the gather's cost.
  void gather(const plan::BatchPlan& plan, report::TimeSplit& split);

  // Where the gather streams: the streamed gather of `plan` alone (every active rank's rows
  // [0, its slice) of its result buffers, all pieces at once), and the seconds this rank's GPU
  // spent on it: the part of a streamed gather that its host's launches, enqueued while the
  // compute runs, do not hide. 0 where it does not stream. Collective over the active ranks.
  double streamed_gather_device_seconds(const plan::BatchPlan& plan);

  // Rank 0, after compute_and_gather: the whole batch's results in host memory, rows
  // [0, plan.rows), in the backend's host buffer set `slot` (0 or 1), which stays valid until
  // a later batch uses the same slot. Adds the download time to split.
  ResultRows fetch(const plan::BatchPlan& plan, int slot, report::TimeSplit& split);
  // fetch in two halves: start_fetch enqueues what is left to download and returns where the
  // rows will be; they are there once finish_fetch(slot) returns, which the job's writer
  // thread calls while the next batch computes (into the other result set, see use_slot).
  ResultRows start_fetch(const plan::BatchPlan& plan, int slot);
  void finish_fetch(int slot) { backend_.wait_host_results(slot); }

  // The host buffer set the next gather through host memory (MPI) lands in, and the backend's
  // result set the next batch computes into; the job alternates it per batch and passes the
  // same slot to fetch().
  void use_slot(int slot) {
    slot_ = slot;
    backend_.use_result_set(slot);
  }

  // "NCCL 2.28.3 (device to device, streamed in pieces of >= 256 rows)" or "MPI (host memory)".
  std::string transport() const;
  // What the gather streams (one piece: nothing).
  const plan::Pieces& streamed() const { return streamed_; }

 private:
  void mpi_gather(const plan::BatchPlan& plan, const ResultRows& rows);

  const comm::World& world_;
  Backend& backend_;
  io::Stage stage_;
  std::unique_ptr<comm::NcclComm> nccl_;
  plan::Pieces streamed_;
  bool on_host_ = false;  // results already in host memory (MPI path), in set slot_
  int64_t downloaded_ = 0;  // rows whose download into set slot_ compute_and_gather enqueued
  int slot_ = 0;
};

}  // namespace dsa::run
