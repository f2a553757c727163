#include "src/run/calibrate.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "src/report/report.hpp"
#include "src/run/batch_step.hpp"

namespace dsa::run {

ComputeCurve measure_compute(Backend& backend, io::Stage stage, const io::QueryRows& sample,
                             const std::vector<double>& row_work, float sm_scale, double budget_seconds) {
  DSA_REQUIRE(sample.count >= 1 && row_work.size() == size_t(sample.count), "calibration: ", sample.count,
              " sample rows, ", row_work.size(), " work figures");
  ComputeCurve curve;
  curve.stage = io::stage_name(stage);
  curve.device = backend.device();
  const double start = report::now_seconds();
  for (int64_t n = 1;; n = std::min(n * 2, sample.count)) {
    const io::QueryRows copy = io::slice_rows(sample, 0, n);
    std::vector<double> runs;
    // At least 6 runs; short points up to 24 (a few microseconds of noise are 5% there).
    double point_seconds = 0;
    // As the job runs alike batches: each run's rows staged into the other staging set and
    // sent ahead (upload_ahead) while the run before computes, so that runs after the first
    // start with their rows on the device and overlap the next run's upload. (Freshly written
    // host memory uploads more slowly: staged for every run, as the job's reader does.)
    int slot = 0;
    io::RowsView rows = staged(backend, copy, slot);
    for (int i = 0; i < 6 || (i < 24 && point_seconds < budget_seconds / 64); ++i) {
      const io::RowsView next = staged(backend, copy, 1 - slot);
      backend.upload_ahead(stage, next, 1 - slot);
      const double t0 = report::now_seconds();
      backend.compute(stage, rows, sm_scale);
      const double t = report::now_seconds() - t0;
      point_seconds += t;
      if (i > 0 || t > budget_seconds / 16) runs.push_back(t);  // run 0 warms up, unless it is slow anyway
      rows = next;
      slot = 1 - slot;
      if (report::now_seconds() - start > budget_seconds / 2 && !runs.empty()) break;
    }
    double work = 0;
    for (int64_t r = 0; r < n; ++r) work += row_work[size_t(r)];
    curve.rows.push_back(n);
    curve.work.push_back(work);
    curve.seconds.push_back(report::median(runs));
    if (n == sample.count || curve.seconds.back() > budget_seconds / 4 || report::now_seconds() - start > budget_seconds)
      break;
  }
  return curve;
}

namespace {

// The largest batch's first row and row count.
std::pair<int64_t, int64_t> largest_batch(const io::WorkloadInfo& info) {
  int64_t first = 0, rows = 0;
  for (size_t b = 0; b + 1 < info.batch_offsets.size(); ++b) {
    const int64_t n = info.batch_offsets[b + 1] - info.batch_offsets[b];
    if (n > rows) {
      rows = n;
      first = info.batch_offsets[b];
    }
  }
  return {first, rows};
}

}  // namespace

int64_t calibration_rows(const io::WorkloadInfo& info, int64_t max_rows) {
  return std::min(largest_batch(info).second, max_rows);
}

ComputeCurve calibrate_on_workload(Backend& backend, const io::WorkloadFile& workload, io::Stage stage,
                                   const std::vector<double>& work, int64_t max_rows, double budget_seconds) {
  const io::WorkloadInfo& info = workload.info();
  const int64_t first = largest_batch(info).first, n = calibration_rows(info, max_rows);
  const io::QueryRows sample = workload.read_rows(first, n);
  const std::vector<double> sample_work(work.begin() + first, work.begin() + first + n);
  return measure_compute(backend, stage, sample, sample_work, static_cast<float>(info.sm_scale), budget_seconds);
}

GatherCost measure_gather(const comm::World& world, BatchStep& step, int64_t rows_per_rank,
                          double result_bytes_per_row) {
  DSA_REQUIRE(world.size() >= 2 && rows_per_rank >= 1, "calibration: gather needs 2 ranks and 1 row each");
  auto plan_of = [&](int64_t rows) {
    plan::BatchPlan p;
    p.rows = rows * world.size();
    p.ranks = world.size();
    for (int r = 0; r <= world.size(); ++r) p.cuts.push_back(rows * r);
    return p;
  };
  auto time_gather = [&](int64_t rows, bool streamed_device_time) {
    const plan::BatchPlan p = plan_of(rows);
    std::vector<double> runs;
    for (int i = 0; i < 6; ++i) {
      world.barrier();
      report::TimeSplit split;
      const double t0 = report::now_seconds();
      double t = 0;
      if (streamed_device_time) {
        t = step.streamed_gather_device_seconds(p);
      } else {
        step.gather(p, split);
        t = report::now_seconds() - t0;
      }
      t = world.max(t);  // every rank agrees on the figure
      if (i > 0) runs.push_back(t);
    }
    return report::median(runs);
  };
  const double t_small = time_gather(1, false);
  const double t_large = time_gather(rows_per_rank, false);
  const int senders = world.size() - 1;
  GatherCost cost;
  const bool streamed = step.streamed().splits();
  cost.latency_seconds = (streamed ? time_gather(1, true) : t_small) / senders;
  const double bytes = double(senders) * double(rows_per_rank - 1) * result_bytes_per_row;
  // A gather too small to tell from latency gives no bandwidth: assume a fast link then.
  cost.bytes_per_second = t_large > t_small && bytes > 0 ? bytes / (t_large - t_small) : 1e12;
  return cost;
}

plan::CostModel base_cost_model(const comm::World& world, const Backend& backend, io::Stage stage) {
  plan::CostModel model = backend.cost_model();
  model.result_bytes_per_row = result_bytes_per_row(stage);
  model.min_slice_rows = world.max(backend.min_slice_rows(stage));
  model.streamed = streamed_pieces(world, backend, stage);  // the gather then hides behind the compute
  return model;
}

void share_curve(const comm::World& world, ComputeCurve curve, plan::CostModel& model) {
  world.broadcast(curve.work);
  world.broadcast(curve.seconds);
  model.set_curve(curve.work, curve.seconds);
}

void apply_gather(plan::CostModel& model, const GatherCost& gather) {
  model.gather_bytes_per_second = gather.bytes_per_second;
  model.gather_latency_seconds = gather.latency_seconds;
  model.per_rank_seconds = 0;
}

void write_calibration(const std::string& path, const std::vector<ComputeCurve>& curves) {
  nlohmann::json doc = {{"program", "dsa-bench calibrate"}, {"version", DSA_VERSION}, {"stages", nlohmann::json::object()}};
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    const nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
    if (old.is_object() && old.contains("stages") && old["stages"].is_object()) doc["stages"] = old["stages"];
  }
  for (const ComputeCurve& c : curves)
    doc["stages"][c.stage] = {{"device", c.device}, {"rows", c.rows}, {"work", c.work}, {"seconds", c.seconds}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << doc.dump(2) << "\n";
    DSA_REQUIRE(out.good(), path, ": cannot write the calibration file");
  }
  std::filesystem::rename(tmp, path);
}

ComputeCurve read_calibration(const std::string& path, io::Stage stage) {
  std::ifstream in(path);
  DSA_REQUIRE(in.good(), path, ": cannot open the calibration file");
  const nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  DSA_REQUIRE(!doc.is_discarded() && doc.is_object(), path, ": not a JSON calibration file (dsa-bench calibrate writes one)");
  const std::string name = io::stage_name(stage);
  DSA_REQUIRE(doc.contains("stages") && doc["stages"].is_object() && doc["stages"].contains(name), path,
              ": no calibration for stage ", name, " (run dsa-bench calibrate --stage ", name, ")");
  const nlohmann::json& s = doc["stages"][name];
  ComputeCurve c;
  c.stage = name;
  try {
    c.device = s.value("device", "");
    c.rows = s.at("rows").get<std::vector<int64_t>>();
    c.work = s.at("work").get<std::vector<double>>();
    c.seconds = s.at("seconds").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": stage ", name, ": ", e.what());
  }
  DSA_REQUIRE(!c.work.empty() && c.work.size() == c.seconds.size() && c.rows.size() == c.work.size(), path,
              ": stage ", name, ": rows, work and seconds must be non-empty lists of one length");
  plan::CostModel check;
  try {
    check.set_curve(c.work, c.seconds);  // the same rules the job applies
  } catch (const Error& e) {
    fail(path, ": stage ", name, ": ", e.what());
  }
  return c;
}

}  // namespace dsa::run
