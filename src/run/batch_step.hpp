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
  // Adds this rank's times to split (upload, index, attend, other, gather). Collective over
  // the active ranks only: idle ranks return at once.
  void compute_and_gather(const plan::BatchPlan& plan, const io::RowsView& mine, float sm_scale,
                          report::TimeSplit& split);

  // The gather half of compute_and_gather alone: every active rank's rows [0, its slice) of
  // its result buffers (whatever they hold) to rank 0. Used to measure the gather's cost.
  void gather(const plan::BatchPlan& plan, report::TimeSplit& split);

  // Rank 0, after compute_and_gather: the whole batch's results in host memory, rows
  // [0, plan.rows), in the backend's host buffer set `slot` (0 or 1), which stays valid until
  // a later batch uses the same slot. Adds the download time to split.
  ResultRows fetch(const plan::BatchPlan& plan, int slot, report::TimeSplit& split);

  // The host buffer set the next gather through host memory (MPI) lands in; the job alternates
  // it per batch and passes the same slot to fetch().
  void use_slot(int slot) { slot_ = slot; }

  // "NCCL 2.28.3 (device to device)" or "MPI (host memory)".
  std::string transport() const;

 private:
  void mpi_gather(const plan::BatchPlan& plan, const ResultRows& rows);

  const comm::World& world_;
  Backend& backend_;
  io::Stage stage_;
  std::unique_ptr<comm::NcclComm> nccl_;
  bool on_host_ = false;  // results already in host memory (MPI path), in set slot_
  int slot_ = 0;
};

}  // namespace dsa::run
