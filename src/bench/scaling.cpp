#include "src/bench/scaling.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "comm/world.hpp"
#include "common/error.hpp"
#include "io/workload.hpp"
#include "src/plan/plan.hpp"
#include "src/report/report.hpp"
#include "src/run/backend.hpp"
#include "src/run/batch_step.hpp"
#include "src/run/calibrate.hpp"

namespace po = boost::program_options;

namespace dsa::bench {
namespace {

using run::Backend;

struct Loaded {
  io::RowStats stats;
  std::vector<double> work;
  int32_t max_seq_len = 0;
};

// Rank 0 checks the contents (as dsa-run does) and every rank gets the per-row figures.
Loaded load_stats(const comm::World& world, const io::WorkloadFile& wf, io::Stage stage) {
  Loaded l;
  if (world.is_root()) l.stats = wf.check_contents();
  world.broadcast(l.stats.seq_lens);
  world.broadcast(l.stats.valid_ids);
  l.work = plan::rows_work(run::stage_kind(stage), wf.info().rows, l.stats.seq_lens, l.stats.valid_ids);
  if (!l.stats.seq_lens.empty()) l.max_seq_len = *std::max_element(l.stats.seq_lens.begin(), l.stats.seq_lens.end());
  return l;
}

std::vector<io::Stage> parse_stages(const std::string& s) {
  if (s == "all") return {io::Stage::indexer, io::Stage::attention, io::Stage::pipeline};
  return {io::parse_stage(s)};
}

// FNV-1a over the batch's results: equal results, equal hash.
uint64_t hash_results(const run::ResultRows& r, int64_t rows) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  if (r.topk) mix(r.topk, size_t(rows) * run::kTopkRowBytes);
  if (r.output) mix(r.output, size_t(rows) * run::kOutputRowBytes);
  if (r.lse) mix(r.lse, size_t(rows) * run::kLseRowBytes);
  return h;
}

std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> sizes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1) throw std::invalid_argument(item);
      sizes.push_back(v);
    } catch (const std::exception&) {
      fail("dsa-bench: --sizes takes positive row counts separated by commas, not '", text, "'");
    }
  }
  DSA_REQUIRE(!sizes.empty(), "dsa-bench: --sizes is empty");
  return sizes;
}

template <typename Parse>
bool parse(int argc, char** argv, po::options_description& opts, const char* usage, Parse&& check) {
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) {
      std::cout << usage << opts;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    fail("dsa-bench: ", e.what(), " (see --help)");
  }
  check();
  return true;
}

// Where a rank's time in a case went (medians over the timed runs, seconds): the upload its
// kernels waited for, the kernels, the rest of its compute call, and the gather after it (on
// rank 0: until every piece is in; elsewhere: until its own pieces have left).
constexpr size_t kParts = 4;
std::vector<double> median_parts(const std::vector<report::TimeSplit>& splits) {
  std::vector<double> upload, kernels, other, gather;
  for (const report::TimeSplit& t : splits) {
    upload.push_back(t.upload);
    kernels.push_back(t.index + t.attend);
    other.push_back(t.other);
    gather.push_back(t.gather);
  }
  return {report::median(upload), report::median(kernels), report::median(other), report::median(gather)};
}

void print_parts(const std::vector<double>& parts, int ranks) {
  for (int r = 0; r < ranks; ++r) {
    const double* m = parts.data() + size_t(r) * kParts;
    std::printf("%8s rank %d: upload waited %.3f ms, kernels %.3f, rest of compute %.3f, gather after it %.3f\n", "",
                r, m[0] * 1e3, m[1] * 1e3, m[2] * 1e3, m[3] * 1e3);
  }
}

nlohmann::json parts_json(const std::vector<double>& parts, int ranks) {
  nlohmann::json out = nlohmann::json::array();
  for (int r = 0; r < ranks; ++r) {
    const double* m = parts.data() + size_t(r) * kParts;
    out.push_back({{"upload", m[0] * 1e3}, {"kernels", m[1] * 1e3}, {"other", m[2] * 1e3}, {"gather", m[3] * 1e3}});
  }
  return out;
}

}  // namespace

int calibrate_main(int argc, char** argv) {
  std::string workload, out, stages = "all", backend_name = "auto";
  int64_t max_rows = run::kCalibrationRows;
  double budget = 2.0;
  po::options_description opts("Options");
  opts.add_options()("help,h", "print this help")("workload,w", po::value(&workload), "workload file (HDF5)")(
      "out,o", po::value(&out), "calibration file to write (JSON; other stages already in it are kept)")(
      "stage,s", po::value(&stages)->default_value("all"), "indexer | attention | pipeline | all")(
      "backend,b", po::value(&backend_name)->default_value("auto"), "auto | cuda | cpu")(
      "max-rows", po::value(&max_rows)->default_value(run::kCalibrationRows), "largest slice timed (rows of the largest batch)")(
      "budget", po::value(&budget)->default_value(2.0), "seconds to spend per stage, about");
  const char* usage =
      "Usage: dsa-bench calibrate --workload W.h5 --out CAL.json [options]\n"
      "Times the backend on slices of 1, 2, 4, ... rows of the workload's largest batch, per stage,\n"
      "and writes the curve (seconds against planner work) that `dsa-run --calibration CAL.json`\n"
      "plans its rank counts from.\n";
  if (!parse(argc, argv, opts, usage, [&] {
        DSA_REQUIRE(!workload.empty() && !out.empty(), "dsa-bench calibrate: --workload and --out are required");
        DSA_REQUIRE(max_rows >= 1 && budget > 0, "dsa-bench calibrate: --max-rows and --budget must be positive");
      }))
    return 0;
  comm::MpiSession mpi(&argc, &argv);
  comm::World world;
  std::unique_ptr<Backend> backend = run::make_backend(backend_name, 0, world);
  std::vector<run::ComputeCurve> curves;
  std::printf("# dsa-bench calibrate on %s, workload %s\n", backend->device().c_str(), workload.c_str());
  std::printf("%-10s %8s %14s %12s %12s\n", "stage", "rows", "work", "ms", "rows/s");
  for (io::Stage stage : parse_stages(stages)) {
    std::optional<io::WorkloadFile> wf;
    try {
      wf.emplace(workload, stage);
    } catch (const Error& e) {
      if (stages != "all") throw;
      std::printf("# %s: skipped (%s)\n", io::stage_name(stage), e.what());
      continue;
    }
    const Loaded l = load_stats(world, *wf, stage);
    run::load_kv(*backend, *wf);
    const int64_t n = run::calibration_rows(wf->info(), max_rows);
    backend->reserve(stage, n, n, l.max_seq_len, wf->info().max_num_pages);
    const run::ComputeCurve c = run::calibrate_on_workload(*backend, *wf, stage, l.work, n, budget);
    for (size_t i = 0; i < c.rows.size(); ++i)
      std::printf("%-10s %8lld %14.0f %12.4f %12.0f\n", c.stage.c_str(), static_cast<long long>(c.rows[i]), c.work[i],
                  c.seconds[i] * 1e3, double(c.rows[i]) / c.seconds[i]);
    curves.push_back(c);
  }
  DSA_REQUIRE(!curves.empty(), "dsa-bench calibrate: ", workload, " serves none of the stages asked for");
  run::write_calibration(out, curves);
  std::printf("# wrote %s\n", out.c_str());
  return 0;
}

int scaling_main(int argc, char** argv) {
  std::string workload, stage_name, backend_name = "auto", sizes_text = "32,64,128,256,512,1024,2048,4096,8192",
                                    csv_path, json_path, calibration = "measure", ahead_text = "on";
  int reps = 10, max_ranks = 0;
  po::options_description opts("Options");
  opts.add_options()("help,h", "print this help")("workload,w", po::value(&workload),
                                                  "workload file (HDF5): batch size B uses its rows [0, B)")(
      "stage,s", po::value(&stage_name), "indexer | attention | pipeline")(
      "backend,b", po::value(&backend_name)->default_value("auto"), "auto | cuda | cpu")(
      "sizes", po::value(&sizes_text)->default_value(sizes_text), "batch sizes in rows (those above the workload's rows are skipped)")(
      "reps", po::value(&reps)->default_value(10),
      "timed runs per case (median reported), after one warm-up; batches of fewer than 1024 rows get up to 4x as many")(
      "max-ranks", po::value(&max_ranks)->default_value(0), "fixed rank counts 1..this (0 = all ranks)")(
      "calibration", po::value(&calibration)->default_value("measure"),
      "auto's compute costs: measure | a file from dsa-bench calibrate | none")(
      "upload-ahead", po::value(&ahead_text)->default_value("on"),
      "on: each run's rows start up to the GPU while the run before computes, as dsa-run's batches do; "
      "off: each run uploads its own")(
      "csv", po::value(&csv_path), "also write the table as CSV")("json", po::value(&json_path),
                                                                   "also write the table as JSON");
  const char* usage =
      "Usage: mpirun -np N dsa-bench scaling --workload W.h5 --stage S [options]\n"
      "Times one batch of each size on 1..N ranks and on the rank count auto picks: each active\n"
      "rank uploads and computes its slice, and the slices are gathered on rank 0 (NCCL on GPUs);\n"
      "the time runs from a barrier to the batch assembled in rank 0's result buffers (the\n"
      "download to host and the file write that follow are the same for every rank count).\n"
      "Each timed run is a batch of a job of alike batches: its rows are staged in host memory\n"
      "(untimed, as the job's reader does) and, on GPUs, go up to the device while an untimed\n"
      "run of the same case computes, and the next alike batch's go up while it computes\n"
      "(--upload-ahead off: each run uploads its own rows).\n"
      "Checks that every rank count gives bit-identical results.\n";
  if (!parse(argc, argv, opts, usage, [&] {
        DSA_REQUIRE(!workload.empty() && !stage_name.empty(), "dsa-bench scaling: --workload and --stage are required");
        DSA_REQUIRE(reps >= 1 && max_ranks >= 0, "dsa-bench scaling: --reps must be >= 1, --max-ranks >= 0");
        DSA_REQUIRE(ahead_text == "on" || ahead_text == "off", "dsa-bench scaling: --upload-ahead takes on or off, not '",
                    ahead_text, "'");
      }))
    return 0;
  const io::Stage stage = io::parse_stage(stage_name);
  std::vector<int64_t> sizes = parse_sizes(sizes_text);

  comm::MpiSession mpi(&argc, &argv);
  comm::World world;
  std::unique_ptr<Backend> backend = run::make_backend(backend_name, 0, world);
  const io::WorkloadFile wf(workload, stage);
  const io::WorkloadInfo& info = wf.info();
  const Loaded l = load_stats(world, wf, stage);
  std::erase_if(sizes, [&](int64_t b) { return b > info.rows; });
  DSA_REQUIRE(!sizes.empty(), "dsa-bench scaling: ", workload, " has ", info.rows, " rows, fewer than every --sizes");
  const int64_t max_b = *std::max_element(sizes.begin(), sizes.end());
  const int fixed_max = max_ranks == 0 ? world.size() : std::min(max_ranks, world.size());

  const io::QueryRows pool = wf.read_rows(0, max_b);
  run::load_kv(*backend, wf);
  backend->reserve(stage, max_b, max_b, l.max_seq_len, info.max_num_pages);
  run::BatchStep step(world, *backend, stage);
  const float sm_scale = static_cast<float>(info.sm_scale);

  // auto's model, as dsa-run builds it (calibrated on this pool's first rows).
  plan::CostModel model = run::base_cost_model(world, *backend, stage);
  if (calibration != "none") {
    run::ComputeCurve curve;
    if (world.is_root()) {
      if (calibration == "measure") {
        const int64_t n = std::min<int64_t>(max_b, run::kCalibrationRows);
        curve = run::measure_compute(*backend, stage, io::slice_rows(pool, 0, n),
                                     std::vector<double>(l.work.begin(), l.work.begin() + n), sm_scale,
                                     run::kCalibrationSeconds);
      } else {
        curve = run::read_calibration(calibration, stage);
      }
    }
    run::share_curve(world, std::move(curve), model);
    if (world.size() > 1)
      run::apply_gather(model, run::measure_gather(world, step, std::max<int64_t>(1, max_b / world.size()),
                                                   model.result_bytes_per_row));
  }

  if (world.is_root()) {
    std::printf("# dsa-bench scaling: stage %s, %d rank(s), rank 0 on %s, gather %s\n", io::stage_name(stage),
                world.size(), backend->device().c_str(), world.size() > 1 ? step.transport().c_str() : "none");
    std::printf(
        "# workload %s; time: barrier -> batch gathered on rank 0, median of %d rounds over the cases (up to 4x as "
        "many below 1024 rows); rows uploaded ahead: %s\n",
        workload.c_str(), reps, ahead_text.c_str());
    std::printf("# a batch is spread only in slices of >= %lld rows (smaller calls compute differently)\n",
                static_cast<long long>(model.min_slice_rows));
    std::printf("%8s %8s %6s %12s %12s %9s %10s\n", "rows", "ranks", "k", "median_ms", "predicted_ms", "speedup",
                "identical");
  }
  nlohmann::json cases = nlohmann::json::array();
  std::vector<std::string> csv = {"rows,policy,ranks,median_ms,min_ms,predicted_ms,speedup_vs_1,identical"};
  bool all_identical = true;
  int auto_misses = 0;
  const int me = world.rank();
  for (int64_t b : sizes) {
    const std::vector<double> work(l.work.begin(), l.work.begin() + b);
    // The cases of this size: fixed counts 1..fixed_max that give valid slices, then auto.
    struct Case {
      plan::BatchPlan plan;
      bool is_auto;
      io::QueryRows mine;  // this rank's rows, copied before any timing
      std::vector<double> runs;
      std::vector<report::TimeSplit> splits;  // this rank's, per timed run
    };
    std::vector<Case> cases_b;
    for (int k = 1; k <= fixed_max + 1; ++k) {
      const bool is_auto = k == fixed_max + 1;
      if (!is_auto && k > b) continue;
      plan::BatchPlan p = plan::plan_batch(0, 0, work, world.size(), is_auto ? 0 : k, model);
      if (!is_auto && p.ranks != k) continue;  // slices of < min_slice_rows rows: not a valid split
      io::QueryRows mine = io::slice_rows(pool, p.begin(me), p.end(me) - p.begin(me));
      cases_b.push_back({std::move(p), is_auto, std::move(mine), {}, {}});
    }
    // Rounds over the cases (a warm-up round first), so that whatever drifts during the sweep
    // (host memory, clocks) drifts for every case alike.
    // Small batches take well under a millisecond, where a few microseconds of launch or copy
    // latency are 5%: they get more rounds (the same count on every rank: it follows the size).
    const int rounds = reps * static_cast<int>(std::clamp<int64_t>(1024 / std::max<int64_t>(b, 1), 1, 4));
    // Each case in a round: a lead-in run, then the timed run, then the rows of a third run
    // sent ahead and never computed. So the timed run is a batch of a job whose batches are
    // alike: its rows went up while the lead-in computed, and the next batch's go up while it
    // computes (--upload-ahead off: each run uploads its own).
    struct Run {
      Case* c;
      bool timed, computed;
    };
    std::vector<Run> order;
    for (int i = 0; i <= rounds; ++i)
      for (Case& c : cases_b) order.insert(order.end(), {{&c, false, true}, {&c, i > 0, true}, {&c, false, false}});
    // Untimed, as the job's reader thread puts each batch's rows into the staging buffers of
    // the batch's slot (alternating) while the batch before computes.
    int slot = 0;
    io::RowsView rows = run::staged(*backend, order.front().c->mine, slot);
    for (size_t n = 0; n < order.size(); ++n) {
      const Run& r = order[n];
      const int next_slot = 1 - slot;
      io::RowsView next;
      if (n + 1 < order.size()) {
        next = run::staged(*backend, order[n + 1].c->mine, next_slot);
        // As the job's reader does once a batch is read: the copies start now, after this
        // run's own.
        if (ahead_text == "on" && r.computed && order[n + 1].c == r.c) backend->upload_ahead(stage, next, next_slot);
      }
      if (r.computed) {
        report::TimeSplit split;
        world.barrier();
        const double t0 = report::now_seconds();
        step.compute_and_gather(r.c->plan, rows, sm_scale, split);
        if (r.timed) {
          r.c->runs.push_back(report::now_seconds() - t0);
          r.c->splits.push_back(split);
        }
        // Untimed: rank 0's downloads of this run (the job's fetch) finish before the next
        // run starts, so that no run is timed beside another's leftover copies.
        if (world.is_root()) step.fetch(r.c->plan, 0, split);
      }
      rows = next;
      slot = next_slot;
    }
    double one_rank = 0, best_fixed = 0;
    uint64_t reference = 0;
    for (Case& c : cases_b) {
      // One more run of each case for its results, checked against one rank's.
      report::TimeSplit split;
      step.compute_and_gather(c.plan, run::staged(*backend, c.mine, 0), sm_scale, split);
      const std::vector<double> parts = world.all_gather(median_parts(c.splits));
      if (!world.is_root()) continue;
      const plan::BatchPlan& p = c.plan;
      report::TimeSplit ignored;
      const uint64_t h = hash_results(step.fetch(p, 0, ignored), b);
      if (p.ranks == 1 && !c.is_auto) reference = h;
      const bool identical = h == reference;
      all_identical = all_identical && identical;
      std::vector<double>& runs = c.runs;
      std::sort(runs.begin(), runs.end());
      const double med = runs[runs.size() / 2];
      if (p.ranks == 1 && !c.is_auto) one_rank = med;
      if (!c.is_auto && (best_fixed == 0 || med < best_fixed)) best_fixed = med;
      const std::string policy = c.is_auto ? "auto" : "fixed";
      std::printf("%8lld %8s %6d %12.4f %12.4f %8.2fx %10s\n", static_cast<long long>(b), policy.c_str(), p.ranks,
                  med * 1e3, p.predicted_seconds * 1e3, one_rank / med, identical ? "yes" : "NO");
      print_parts(parts, p.ranks);
      if (c.is_auto) {
        const bool within = med <= best_fixed * 1.05 && med <= one_rank * 1.05;
        if (!within) ++auto_misses;
        std::printf("%8s auto: %d rank(s), %.1f%% of the best fixed count's time%s\n", "", p.ranks,
                    100.0 * med / best_fixed, within ? "" : "  (more than 5% off)");
      }
      char line[200];
      std::snprintf(line, sizeof line, "%lld,%s,%d,%.6f,%.6f,%.6f,%.4f,%s", static_cast<long long>(b), policy.c_str(),
                    p.ranks, med * 1e3, runs.front() * 1e3, p.predicted_seconds * 1e3, one_rank / med,
                    identical ? "yes" : "no");
      csv.push_back(line);
      cases.push_back({{"rows", b},
                       {"policy", policy},
                       {"ranks", p.ranks},
                       {"median_ms", med * 1e3},
                       {"min_ms", runs.front() * 1e3},
                       {"predicted_ms", p.predicted_seconds * 1e3},
                       {"speedup_vs_1", one_rank / med},
                       {"identical", identical},
                       {"ranks_ms", parts_json(parts, p.ranks)}});
    }
  }
  if (world.is_root()) {
    std::printf("# results identical across rank counts: %s; auto within 5%% of the best fixed count: %zu of %zu sizes\n",
                all_identical ? "yes" : "NO", sizes.size() - size_t(auto_misses), sizes.size());
    if (!csv_path.empty()) {
      std::ofstream f(csv_path);
      for (const std::string& line : csv) f << line << "\n";
      DSA_REQUIRE(f.good(), csv_path, ": cannot write the CSV table");
    }
    if (!json_path.empty()) {
      const nlohmann::json doc = {{"program", "dsa-bench scaling"},
                                  {"version", DSA_VERSION},
                                  {"stage", io::stage_name(stage)},
                                  {"ranks", world.size()},
                                  {"device", backend->device()},
                                  {"gather", world.size() > 1 ? step.transport() : "none"},
                                  {"reps", reps},
                                  {"upload_ahead", ahead_text == "on"},
                                  {"identical", all_identical},
                                  {"cases", cases}};
      std::ofstream f(json_path);
      f << doc.dump(2) << "\n";
      DSA_REQUIRE(f.good(), json_path, ": cannot write the JSON table");
    }
  }
  return all_identical ? 0 : 1;
}

}  // namespace dsa::bench
