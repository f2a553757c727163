#include "src/run/job.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <new>
#include <optional>
#include <sstream>
#include <thread>

#include "comm/gather.hpp"
#include "comm/gpu_binding.hpp"
#include "common/cores.hpp"
#include "common/error.hpp"
#include "io/results.hpp"
#include "io/workload.hpp"
#include "src/import/fib_trace.hpp"
#include "src/plan/plan.hpp"
#include "src/report/report.hpp"
#include "src/run/backend.hpp"
#include "src/run/batch_step.hpp"
#include "src/run/calibrate.hpp"
#include "src/run/interrupt.hpp"

namespace dsa::run {
namespace {

// Runs `step` on every rank; if any rank throws, every rank learns the first message (by
// rank), rank 0 prints it, and all return false (a rank that failed alone, with anything from
// a dsa::Error to an allocation failure, must not leave the others waiting).
template <typename Step>
bool collectively(const comm::World& world, Step&& step) {
  std::string error;
  try {
    step();
  } catch (const Error& e) {
    error = e.what();
  } catch (const std::bad_alloc&) {
    error = rank_prefix() + "out of host memory";
  } catch (const std::exception& e) {
    error = rank_prefix() + e.what();
  }
  error = world.agree_on_error(error);
  if (error.empty()) return true;
  if (world.is_root()) std::cerr << error << std::endl;
  return false;
}

float sm_scale_of(const io::WorkloadInfo& info) { return static_cast<float>(info.sm_scale); }

// One line for the header: where the planner's costs come from.
std::string describe(const plan::CostModel& m, bool choosing, const JobOptions& o) {
  if (o.ranks != 0) return "fixed (--ranks " + std::to_string(o.ranks) + ")";
  if (!choosing) return o.calibration == "none" ? "auto from built-in estimates (--calibration none)"
                                                : "auto (one rank: nothing to choose)";
  std::ostringstream out;
  out.precision(3);
  out << "auto, compute costs " << m.source << " (" << m.curve_work.size() << " points, "
      << m.compute_seconds(m.curve_work.empty() ? 0 : m.curve_work.front()) * 1e6 << " us at the smallest), gather "
      << m.gather_bytes_per_second / 1e9 << " GB/s + " << m.gather_latency_seconds * 1e6 << " us per rank";
  return out.str();
}

// The JSON report and the FlashInfer-Bench traces, as far as the job got (rank 0).
void write_reports(const JobOptions& o, const report::JobHeader& header, const report::JobReport& report,
                   const std::vector<import::BatchTag>& fib_tags) {
  if (!o.report.empty()) report.write_json(o.report);
  if (!o.fib_traces.empty()) import::write_fib_traces(o.fib_traces, header, report.batches(), fib_tags);
}

// Threads a rank gives to file I/O by default: its share of the node's cores (as its CPU
// binding allows), at most 8 (a batch's rows and results are a few tens of MB; 8 threads read
// them at memory speed).
constexpr int kMaxIoThreads = 8;
int io_threads_share(const comm::World& world) { return std::min(cores_share(world.local_size()), kMaxIoThreads); }

}  // namespace

int run_job(const JobOptions& o, const comm::World& world) {
  const int io_threads = o.io_threads >= 0 ? o.io_threads : io_threads_share(world);
  // Start-up, phase by phase (rank 0's wall time; the report lists them).
  const double t_begin = report::now_seconds();
  double t_phase = t_begin;
  std::vector<std::pair<std::string, double>> phases;
  auto phase_done = [&](const char* name) {
    const double now = report::now_seconds();
    phases.emplace_back(name, now - t_phase);
    t_phase = now;
  };
  // --- 1. Open and check the workload (structure on every rank, contents on rank 0). ---------
  std::optional<io::WorkloadFile> workload;
  io::RowStats stats;
  std::vector<import::BatchTag> fib_tags;  // rank 0, with --fib-traces
  if (!collectively(world, [&] {
        comm::check_slurm_world(world.size(), std::getenv("SLURM_NTASKS"), std::getenv("SLURM_JOB_ID"));
        workload.emplace(o.workload, o.stage);
        workload->set_io_threads(io_threads);
        if (world.is_root()) {
          stats = workload->check_contents();
          if (!o.fib_traces.empty()) {
            fib_tags = import::read_batch_tags(o.workload);
            import::check_trace_stage(fib_tags, io::stage_name(o.stage));
          }
        }
      }))
    return kExitFailed;
  const io::WorkloadInfo& info = workload->info();
  world.broadcast(stats.seq_lens);
  world.broadcast(stats.valid_ids);
  phase_done("checks");

  // --- 2. Backend and plan. -------------------------------------------------------------------
  std::unique_ptr<Backend> backend;
  if (!collectively(world, [&] {
        backend = make_backend(o.backend, o.threads, world);
        if (backend->name() == "cuda") comm::check_distinct_gpus(world.hosts(), world.all_gather(backend->device_id()));
      }))
    return kExitFailed;
  if (!world.all(backend->name() == "cuda") && !world.all(backend->name() == "cpu")) {
    if (world.is_root()) std::cerr << "dsa-run: ranks chose different backends; pass --backend\n";
    return 1;
  }

  const plan::StageKind kind = stage_kind(o.stage);
  const std::vector<double> work = plan::rows_work(kind, info.rows, stats.seq_lens, stats.valid_ids);
  const int32_t max_seq_len =
      stats.seq_lens.empty() ? 0 : *std::max_element(stats.seq_lens.begin(), stats.seq_lens.end());
  int64_t max_batch_rows = 0;
  for (size_t b = 0; b + 1 < info.batch_offsets.size(); ++b)
    max_batch_rows = std::max(max_batch_rows, info.batch_offsets[b + 1] - info.batch_offsets[b]);

  // --- 3. Results file (rank 0). ----------------------------------------------------------------
  report::JobHeader header;
  header.program_version = DSA_VERSION;
  header.mpi_version = comm::mpi_library_version();
  header.hdf5_version = io::hdf5_library_version();
  header.backend = backend->name();
  header.stage = io::stage_name(o.stage);
  header.workload_path = o.workload;
  header.results_path = o.results;
  header.ranks = world.size();
  header.threads_per_rank = backend->threads();
  header.io_threads = workload->io_threads();
  header.io_through_hdf5 = workload->read_through_hdf5();
  header.hosts = world.hosts();
  header.devices = world.all_gather(backend->device());
  header.rows = info.rows;
  header.batches = info.num_batches();
  header.num_pages = info.num_pages;
  header.max_num_pages = info.max_num_pages;
  header.rank_policy = o.ranks == 0 ? "auto" : std::to_string(o.ranks);
  for (const io::NonFinite& n : stats.nonfinite)
    header.nonfinite.push_back({n.dataset, n.values, n.text(), n.nan, n.inf, n.first_row});
  phase_done("backend");
  report::JobReport report(header);
  report.set_start(t_begin);

  std::optional<io::ResultsFile> results;
  int64_t first_batch = 0;  // --resume: the first batch not yet on disk
  if (!collectively(world, [&] {
        if (!world.is_root()) return;
        io::ResultsMeta meta;
        meta.workload_path = o.workload;
        meta.stage = o.stage;
        meta.backend = backend->name();
        meta.program_version = DSA_VERSION;
        meta.rows = info.rows;
        meta.num_batches = info.num_batches();
        meta.io_threads = io_threads;
        if (o.resume && std::filesystem::exists(o.results)) {
          results.emplace(io::ResultsFile::open_for_resume(o.results, meta));
          first_batch = results->completed_batches();
        } else {
          results.emplace(io::ResultsFile::create(o.results, meta, o.force));
        }
      }))
    return kExitFailed;
  phase_done("results file");
  first_batch = world.max(first_batch);  // only rank 0 knows it
  // A launcher that binds each rank to fewer cores than its share of the node (mpirun binds
  // to one core per rank when np <= 2) leaves the I/O and CPU threads crowding those cores.
  const int share = node_share(world.local_size());
  const int64_t fewest_cores = -world.max(-static_cast<int64_t>(usable_cores()));
  if (world.is_root()) {
    for (const std::string& d : results->written_through_hdf5()) header.io_through_hdf5.push_back(o.results + ":" + d);
    report.set_header(header);
    report.print_header(std::cout);
    if (o.resume && first_batch > 0)
      std::cout << "# resuming: " << first_batch << " of " << info.num_batches() << " batches already in "
                << o.results << "\n";
  }
  if (world.is_root() && fewest_cores < std::min(share, kMaxIoThreads))
    std::cout << "# note: a rank may run on only " << fewest_cores << " core(s) (its launcher's CPU binding), "
              << "fewer than its share of the node (" << share << "); its file I/O and CPU threads are "
              << "limited to them: `mpirun --bind-to none` (or --map-by slot:PE=N) gives ranks more\n";

  // --- 4. KV caches (once per rank), the cost model, the plan, every buffer. -------------------
  std::unique_ptr<BatchStep> step;
  std::vector<plan::BatchPlan> plans;
  plan::CostModel model = base_cost_model(world, *backend, o.stage);
  // Costs matter only where auto has a choice to make.
  const bool choosing = o.ranks == 0 && world.size() > 1 && o.calibration != "none";
  const int64_t sample_rows = calibration_rows(info, kCalibrationRows);
  auto plan_and_reserve = [&] {
    plans = plan::plan_job(info.batch_offsets, work, world.size(), o.ranks, model);
    // The largest slice this rank computes; rank 0 holds whole batches.
    int64_t max_rows = 0;
    for (const plan::BatchPlan& p : plans) max_rows = std::max(max_rows, p.end(world.rank()) - p.begin(world.rank()));
    backend->reserve(o.stage, max_rows, world.is_root() ? max_batch_rows : max_rows, max_seq_len, info.max_num_pages);
  };
  // The batches' reader (section 5 uses it). A rank's rows of a batch: read straight into the
  // backend's staging buffers of the batch's slot where it has them (page-locked memory on a
  // GPU, which uploads at the full link rate), else into host vectors.
  const int me = world.rank();
  double background_read = 0, background_write = 0;  // seconds the reader and writer spent
  struct Slice {
    io::QueryRows owned;
    io::RowsView rows;
  };
  auto read_slice = [&](size_t b) {
    const plan::BatchPlan& p = plans[b];
    const int64_t first = p.begin(me), count = p.end(me) - p.begin(me);
    Slice s;
    if (count > 0) {
      const double t = report::now_seconds();
      const io::RowBuffers staging = backend->staging(static_cast<int>(b % 2));
      if (staging.capacity >= count) {
        s.rows = workload->read_rows_into(first, count, staging);
        // On a GPU the rows start up now, behind the batch computing, so that this batch
        // does not wait for its first piece's upload.
        backend->upload_ahead(o.stage, s.rows, static_cast<int>(b % 2));
      } else {
        s.owned = workload->read_rows(first, count);
        s.rows = io::view(s.owned);  // moving the Slice keeps the vectors' memory where it is
      }
      background_read += report::now_seconds() - t;
    }
    return s;
  };
  std::future<Slice> next_rows;
  auto start_read = [&](size_t b) {
    if (b < plans.size()) next_rows = std::async(std::launch::async, read_slice, b);
  };
  // Each step below that a rank may fail alone is collectively() on its own, with no
  // collective call inside it, so a failing rank cannot leave the others waiting.
  // Without a choice to make, the plan needs no measurement: plan and size the buffers first,
  // so that the first batch's rows are read while the KV caches load.
  if (!choosing) {
    if (!collectively(world, plan_and_reserve)) return kExitFailed;
    start_read(static_cast<size_t>(first_batch));
    phase_done("plan and buffers");
  }
  double kv_read_seconds = 0;
  if (!collectively(world, [&] {
        // A GPU streams the caches from the file to the device (the reads overlapping the
        // uploads, no host copy of the whole caches); the CPU keeps its own copy.
        maybe_inject_fault(world.rank(), -1, "kv");
        kv_read_seconds = load_kv(*backend, *workload);
        if (choosing) backend->reserve(o.stage, sample_rows, sample_rows, max_seq_len, info.max_num_pages);
      }))
    return kExitFailed;
  phases.emplace_back("KV read", kv_read_seconds);
  phase_done("KV load");
  phases.back().second -= kv_read_seconds;
  if (choosing) {
    ComputeCurve curve;
    if (!collectively(world, [&] {
          if (!world.is_root()) return;
          curve = o.calibration == "measure"
                      ? calibrate_on_workload(*backend, *workload, o.stage, work, sample_rows, kCalibrationSeconds)
                      : read_calibration(o.calibration, o.stage);
        }))
      return kExitFailed;
    share_curve(world, std::move(curve), model);
    model.source = o.calibration == "measure" ? "measured at start-up" : o.calibration;
    phase_done("calibration");
  }
  if (!collectively(world, [&] { step = std::make_unique<BatchStep>(world, *backend, o.stage); })) return kExitFailed;
  if (choosing) {
    apply_gather(model, measure_gather(world, *step, std::max<int64_t>(1, sample_rows / world.size()),
                                       model.result_bytes_per_row));
  }
  if (choosing && !collectively(world, plan_and_reserve)) return kExitFailed;
  phase_done(choosing ? "gather set-up, plan and buffers" : "gather set-up");
  double total_work = 0;
  for (const auto& p : plans) total_work += p.work;
  header.gather = world.size() > 1 ? step->transport() : "none (one rank)";
  header.cost_model = describe(model, choosing, o);
  report.set_header(header);
  report.set_setup_phases(phases);
  if (world.is_root()) report.print_setup(std::cout);
  report.mark_setup_done();

  // --- 5. The batches. --------------------------------------------------------------------------
  // Overlapped: batch b+1's rows are read (a reader thread) and start up to the GPU
  // (upload_ahead) while batch b computes, and rank 0 writes batch b (a writer thread) while
  // batch b+1 computes; results alternate between two host buffer sets so the write and the
  // next download never share one. The io layer keeps those two threads out of HDF5 at the
  // same time.
  const float sm_scale = sm_scale_of(info);
  Watchdog watchdog(o.timeout, world.rank());
  std::future<void> writing;  // rank 0: the previous batch's write
  auto finish_write = [&] {
    if (writing.valid()) writing.get();  // rethrows the writer's error
  };
  auto finish = [&](std::ostream& out) {  // rank 0: drain the writer, close, summarise
    finish_write();
    results->close();
    report.set_background(background_read, background_write);
    report.print_summary(out);
    write_reports(o, header, report, fib_tags);
  };

  if (choosing) start_read(static_cast<size_t>(first_batch));
  int64_t stop = 0;  // the signal all ranks agreed to stop on (0 = none)
  for (size_t b = static_cast<size_t>(first_batch); b < plans.size(); ++b) {
    const plan::BatchPlan& plan = plans[b];
    const int slot = static_cast<int>(b % 2);
    const double t0 = report::now_seconds();
    double t_mark = t0;
    auto lap = [&t_mark] {  // seconds since the previous lap: the split's parts are contiguous
      const double now = report::now_seconds(), dt = now - t_mark;
      t_mark = now;
      return dt;
    };
    watchdog.arm(plan.batch);
    report::TimeSplit split;
    double compute_seconds = 0;
    try {
      const Slice slice = next_rows.get();  // waits for the reader: "read"
      const io::RowsView& rows = slice.rows;
      start_read(b + 1);
      split.read = lap();
      step->use_slot(slot);
      step->compute_and_gather(plan, rows, sm_scale, split);
      compute_seconds = lap();
    } catch (const Error& e) {
      // Name the batch and rows: "[rank 1] batch 3 (rows 96..127): kernel.cu:88: ... failed: ...".
      std::string what = e.what();
      const std::string prefix = rank_prefix();
      if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
      fail("batch ", plan.batch, " (rows ", plan.begin(me), "..", plan.end(me) - 1, "): ", what);
    }
    maybe_inject_fault(me, plan.batch, "compute");
    if (world.is_root()) {
      // Whatever compute_and_gather spent outside its measured parts, and the fault hook.
      split.other += std::max(0.0, compute_seconds + lap() - (split.upload + split.index + split.attend +
                                                              split.other + split.gather));
      // What is left of the batch's download is enqueued here and waited for by the writer,
      // while the next batch computes into the other result set ("download": the enqueueing).
      const ResultRows host = step->start_fetch(plan, slot);
      split.download = lap();
      // The previous batch's write used the other slot; wait for it ("write"), then hand this
      // batch to the writer. completed_batches moves only after a batch's rows are on disk.
      finish_write();
      split.write = lap();
      const double seconds = report::now_seconds() - t0;
      writing = std::async(std::launch::async, [&, plan, host, seconds, slot] {
        const double t = report::now_seconds();
        step->finish_fetch(slot);  // the rows are in host set `slot`
        results->write_rows(plan.first_row, plan.rows, host.topk, host.output, host.lse);
        results->write_batch(plan.batch, plan.ranks, seconds);
        maybe_inject_fault(0, plan.batch, "write");
        results->set_completed_batches(plan.batch + 1);
        background_write += report::now_seconds() - t;
      });
      report::BatchRecord record;
      record.batch = plan.batch;
      record.rows = plan.rows;
      record.ranks = plan.ranks;
      record.work = plan.work;
      record.predicted_seconds = plan.predicted_seconds;
      record.compute_seconds = compute_seconds;
      // Idle: waiting for the other ranks at the end of the batch (the agreement below), and
      // the progress line, counted before they happen so the record can carry them.
      stop = world.max(static_cast<int64_t>(stop_signal()));
      split.idle = lap();
      record.seconds = t_mark - t0;
      record.split = split;
      std::ostringstream discard;
      report.batch_done(record, total_work, o.quiet ? static_cast<std::ostream&>(discard) : std::cout);
    } else {
      stop = world.max(static_cast<int64_t>(stop_signal()));
    }
    // A signal at any rank stops every rank here, with this batch on disk once rank 0's writer
    // is done.
    const int64_t signal = stop;
    if (signal != 0 && b + 1 < plans.size()) {
      if (next_rows.valid()) next_rows.wait();  // the reader may be mid-read: let it finish
      if (world.is_root()) {
        finish(std::cout);
        std::cout << "stopped on " << signal_name(static_cast<int>(signal)) << " after batch " << plan.batch + 1
                  << " of " << plans.size() << "; " << o.results << " holds " << plan.batch + 1
                  << " complete batches: rerun with --resume to finish" << std::endl;
      }
      watchdog.disarm();
      return kExitResumable;
    }
    watchdog.disarm();
  }

  // --- 6. Close and summarise. ------------------------------------------------------------------
  if (world.is_root()) finish(std::cout);
  return 0;
}

}  // namespace dsa::run
