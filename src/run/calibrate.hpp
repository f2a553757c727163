// What the adaptive rank choice is planned from (plan::CostModel), measured rather than guessed:
//  - compute: the backend's time for slices of real rows (1, 2, 4, ... rows), as seconds
//    against planner work units; measured at start-up, or read from a file that
//    `dsa-bench calibrate` writes (--calibration);
//  - gather: its bandwidth and per-rank latency, measured across the job's own ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/world.hpp"
#include "io/workload.hpp"
#include "src/plan/plan.hpp"
#include "src/run/backend.hpp"

namespace dsa::run {

class BatchStep;

// Start-up calibration: slices of up to this many rows of the largest batch are timed (1, 2,
// 4, ...: enough to reach a GPU's linear regime; larger slices are extrapolated), in about
// this many seconds.
inline constexpr int64_t kCalibrationRows = 2048;
inline constexpr double kCalibrationSeconds = 0.5;

// The planner's model before anything is measured: the backend's estimates, the stage's
// result bytes per row, the smallest slice every rank can split a batch into, and the pieces
// the gather streams (streamed_pieces). Collective.
plan::CostModel base_cost_model(const comm::World& world, const Backend& backend, io::Stage stage);

// Measured compute time against slice work for one stage on one device.
struct ComputeCurve {
  std::string stage;
  std::string device;
  std::vector<int64_t> rows;     // slice sizes timed
  std::vector<double> work;      // their planner work units
  std::vector<double> seconds;   // median compute seconds (upload + kernels)
};

// Times backend.compute(stage) on the first 1, 2, 4, ... rows of `sample` (all of it last):
// a warm-up, then the median of up to 5 runs each, within about `budget_seconds` in all (a
// slow backend stops at the size where one run exceeds a quarter of the budget).
// `row_work[i]` is the planner work of sample row i. The backend must be reserve'd for the
// sample's rows.
ComputeCurve measure_compute(Backend& backend, io::Stage stage, const io::QueryRows& sample,
                             const std::vector<double>& row_work, float sm_scale, double budget_seconds);

// The first rows (at most `max_rows`) of the workload's largest batch, and measure_compute on
// them with `budget_seconds`. `work` is the planner work of every workload row. The backend must
// have the KV caches and be reserve'd for calibration_rows(info, max_rows) rows.
int64_t calibration_rows(const io::WorkloadInfo& info, int64_t max_rows);
ComputeCurve calibrate_on_workload(Backend& backend, const io::WorkloadFile& workload, io::Stage stage,
                                   const std::vector<double>& work, int64_t max_rows, double budget_seconds);

struct GatherCost {
  double bytes_per_second = 0;
  double latency_seconds = 0;  // per sending rank
};

// Collective: times the gather of every rank's first 1 and `rows_per_rank` result rows to rank
// 0 (the median of 5 each) and fits bytes/s and per-rank latency. Where the gather streams
// (BatchStep::streamed), its sends are enqueued while the compute runs, which hides the host's
// share of the latency: the latency is then the GPUs' time for a streamed one-row gather (the
// slowest rank's, median of 5). Needs world.size() >= 2 and every backend reserve'd to hold
// rows_per_rank * world.size() rows.
GatherCost measure_gather(const comm::World& world, BatchStep& step, int64_t rows_per_rank,
                          double result_bytes_per_row);

// Calibration files (JSON): one curve per stage. write replaces the stages it is given and
// keeps the file's others; read throws dsa::Error naming the file when the stage is missing
// or the file is not one.
void write_calibration(const std::string& path, const std::vector<ComputeCurve>& curves);
ComputeCurve read_calibration(const std::string& path, io::Stage stage);

// Rank 0's `curve` to every rank, as the model's compute cost. Collective.
void share_curve(const comm::World& world, ComputeCurve curve, plan::CostModel& model);
// The model with the measured gather; its latency (a 1-row gather from every rank, barrier to
// done) is then the whole fixed cost of an extra rank, so per_rank_seconds becomes 0.
void apply_gather(plan::CostModel& model, const GatherCost& gather);

}  // namespace dsa::run
