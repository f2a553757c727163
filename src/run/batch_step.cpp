#include "src/run/batch_step.hpp"

#include <algorithm>
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
BatchStep::BatchStep(const comm::World& world, Backend& backend, io::Stage stage)
    : world_(world), backend_(backend), stage_(stage) {
#ifdef DSA_HAVE_NCCL
  if (world.size() > 1 && world.all(backend.results_on_device())) nccl_ = std::make_unique<comm::NcclComm>(world);
#endif
}

BatchStep::~BatchStep() = default;

std::string BatchStep::transport() const {
#ifdef DSA_HAVE_NCCL
  if (nccl_) return comm::NcclComm::library_version() + " (device to device)";
#endif
  return "MPI (host memory)";
}

void BatchStep::compute_and_gather(const plan::BatchPlan& plan, const io::RowsView& mine, float sm_scale,
                                   report::TimeSplit& split) {
  const int me = world_.rank();
  if (plan.active(me)) {
    DSA_REQUIRE(mine.count == plan.end(me) - plan.begin(me), "batch ", plan.batch, ": ", mine.count,
                " rows given, the plan has ", plan.end(me) - plan.begin(me));
    const double t0 = report::now_seconds();
    backend_.compute(stage_, mine, sm_scale);
    const ComputeTimes c = backend_.last_times();
    split.upload += c.upload;
    split.index += c.index;
    split.attend += c.attend;
    split.other += std::max(0.0, (report::now_seconds() - t0) - (c.upload + c.index + c.attend));
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
    if (plan.active(me)) {
      const ResultRows r = backend_.results();
      std::vector<comm::RowArray> arrays;
      if (io::writes_topk(stage_)) arrays.push_back({r.topk, r.topk, kTopkRowBytes});
      if (io::writes_attention(stage_)) {
        arrays.push_back({r.output, r.output, kOutputRowBytes});
        arrays.push_back({r.lse, r.lse, kLseRowBytes});
      }
      nccl_->gather_rows(arrays, plan.cuts, backend_.stream());
    }
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

void BatchStep::mpi_gather(const plan::BatchPlan& plan, const ResultRows& r) {
  if (io::writes_topk(stage_)) comm::gather_rows(world_, r.topk, r.topk, plan.cuts, kTopkRowBytes);
  if (io::writes_attention(stage_)) {
    comm::gather_rows(world_, r.output, r.output, plan.cuts, kOutputRowBytes);
    comm::gather_rows(world_, r.lse, r.lse, plan.cuts, kLseRowBytes);
  }
}

ResultRows BatchStep::fetch(const plan::BatchPlan& plan, int slot, report::TimeSplit& split) {
  DSA_REQUIRE(world_.is_root(), "BatchStep::fetch on rank ", world_.rank());
  const double t0 = report::now_seconds();
  // After an MPI gather the rows are in the host buffers already; a download now would
  // overwrite the gathered rows with the device's (rank 0's own only).
  DSA_REQUIRE(!on_host_ || slot == slot_, "BatchStep::fetch: slot ", slot, " after a gather into slot ", slot_);
  const ResultRows r = backend_.host_results(stage_, on_host_ ? 0 : plan.rows, slot);
  split.download += report::now_seconds() - t0;
  return r;
}

}  // namespace dsa::run
