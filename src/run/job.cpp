#include "src/run/job.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "comm/gather.hpp"
#include "comm/gpu_binding.hpp"
#include "common/error.hpp"
#include "io/results.hpp"
#include "io/workload.hpp"
#include "kernels/shapes.hpp"
#include "src/import/fib_trace.hpp"
#include "src/plan/plan.hpp"
#include "src/report/report.hpp"
#include "src/run/backend.hpp"
#include "src/run/interrupt.hpp"

namespace dsa::run {
namespace {

plan::StageKind stage_kind(io::Stage stage) {
  switch (stage) {
    case io::Stage::indexer: return plan::StageKind::indexer;
    case io::Stage::attention: return plan::StageKind::attention;
    case io::Stage::pipeline: return plan::StageKind::pipeline;
  }
  return plan::StageKind::pipeline;
}

bool writes_topk(io::Stage s) { return s != io::Stage::attention; }
bool writes_attention(io::Stage s) { return s != io::Stage::indexer; }

// Runs `step` on every rank; if any rank throws dsa::Error, every rank learns the first
// message (by rank), rank 0 prints it, and all return false.
template <typename Step>
bool collectively(const comm::World& world, Step&& step) {
  std::string error;
  try {
    step();
  } catch (const Error& e) {
    error = e.what();
  }
  error = world.agree_on_error(error);
  if (error.empty()) return true;
  if (world.is_root()) std::cerr << error << std::endl;
  return false;
}

std::unique_ptr<Backend> choose_backend(const JobOptions& o, const comm::World& world) {
  int threads = o.threads;
  if (threads == 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max(1, cores / world.local_size());
  }
#ifdef DSA_HAVE_CUDA
  const int gpus = visible_cuda_devices();
  const bool every_rank_has_gpu = world.all(gpus > 0);
  if (o.backend == "cuda" || (o.backend == "auto" && every_rank_has_gpu))
    return make_cuda_backend(comm::choose_gpu(world.local_rank(), world.local_size(), gpus, world.host()));
#else
  DSA_REQUIRE(o.backend != "cuda", "dsa-run: --backend cuda, but this build has no CUDA backend");
#endif
  return make_cpu_backend(threads);
}

// The JSON report and the FlashInfer-Bench traces, as far as the job got (rank 0).
void write_reports(const JobOptions& o, const report::JobHeader& header, const report::JobReport& report,
                   const std::vector<import::BatchTag>& fib_tags) {
  if (!o.report.empty()) report.write_json(o.report);
  if (!o.fib_traces.empty()) import::write_fib_traces(o.fib_traces, header, report.batches(), fib_tags);
}

}  // namespace

int run_job(const JobOptions& o, const comm::World& world) {
  // --- 1. Open and check the workload (structure on every rank, contents on rank 0). ---------
  std::optional<io::WorkloadFile> workload;
  io::RowStats stats;
  std::vector<import::BatchTag> fib_tags;  // rank 0, with --fib-traces
  if (!collectively(world, [&] {
        comm::check_slurm_world(world.size(), std::getenv("SLURM_NTASKS"), std::getenv("SLURM_JOB_ID"));
        workload.emplace(o.workload, o.stage);
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

  // --- 2. Backend and plan. -------------------------------------------------------------------
  std::unique_ptr<Backend> backend;
  if (!collectively(world, [&] {
        backend = choose_backend(o, world);
        if (backend->name() == "cuda") comm::check_distinct_gpus(world.hosts(), world.all_gather(backend->device_id()));
      }))
    return kExitFailed;
  if (!world.all(backend->name() == "cuda") && !world.all(backend->name() == "cpu")) {
    if (world.is_root()) std::cerr << "dsa-run: ranks chose different backends; pass --backend\n";
    return 1;
  }

  const plan::StageKind kind = stage_kind(o.stage);
  std::vector<double> work(static_cast<size_t>(info.rows));
  for (int64_t r = 0; r < info.rows; ++r) {
    const size_t i = static_cast<size_t>(r);
    work[i] = plan::row_work(kind, stats.seq_lens.empty() ? 0 : stats.seq_lens[i],
                             stats.valid_ids.empty() ? 0 : stats.valid_ids[i]);
  }
  plan::CostModel model = backend->cost_model();
  model.result_bytes_per_row = (writes_topk(o.stage) ? kTopK * 4.0 : 0.0) +
                               (writes_attention(o.stage) ? kHeads * (kCkvDim * 2.0 + 4.0) : 0.0);
  const std::vector<plan::BatchPlan> plans = plan::plan_job(info.batch_offsets, work, world.size(), o.ranks, model);
  const int32_t max_seq_len =
      stats.seq_lens.empty() ? 0 : *std::max_element(stats.seq_lens.begin(), stats.seq_lens.end());
  double total_work = 0;
  for (const auto& p : plans) total_work += p.work;

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
  header.hosts = world.hosts();
  header.devices = world.all_gather(backend->device());
  header.rows = info.rows;
  header.batches = info.num_batches();
  header.num_pages = info.num_pages;
  header.max_num_pages = info.max_num_pages;
  header.rank_policy = o.ranks == 0 ? "auto" : std::to_string(o.ranks);
  for (const io::NonFinite& n : stats.nonfinite)
    header.nonfinite.push_back({n.dataset, n.values, n.text(), n.nan, n.inf, n.first_row});
  report::JobReport report(header);

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
        if (o.resume && std::filesystem::exists(o.results)) {
          results.emplace(io::ResultsFile::open_for_resume(o.results, meta));
          first_batch = results->completed_batches();
        } else {
          results.emplace(io::ResultsFile::create(o.results, meta, o.force));
        }
      }))
    return kExitFailed;
  first_batch = world.max(first_batch);  // only rank 0 knows it
  if (world.is_root()) {
    report.print_header(std::cout);
    if (o.resume && first_batch > 0)
      std::cout << "# resuming: " << first_batch << " of " << info.num_batches() << " batches already in "
                << o.results << "\n";
  }

  // --- 4. KV caches, once per rank. -----------------------------------------------------------
  io::KvCache kv;
  if (!collectively(world, [&] {
        kv = workload->read_kv();
        backend->load_kv(kv);
        // The largest slice this rank computes, and the longest row anywhere (an upper bound).
        int64_t max_rows = 0;
        for (const plan::BatchPlan& p : plans) max_rows = std::max(max_rows, p.end(world.rank()) - p.begin(world.rank()));
        backend->reserve(o.stage, max_rows, max_seq_len, info.max_num_pages);
      }))
    return 1;
  report.mark_setup_done();

  // --- 5. The batches. --------------------------------------------------------------------------
  const float sm_scale = static_cast<float>(info.sm_scale);
  std::vector<int32_t> topk;
  std::vector<uint16_t> output;
  std::vector<float> lse;
  Watchdog watchdog(o.timeout, world.rank());
  int64_t stop = 0;  // the signal all ranks agreed to stop on (0 = none)
  for (size_t b = static_cast<size_t>(first_batch); b < plans.size(); ++b) {
    const plan::BatchPlan& plan = plans[b];
    const double t0 = report::now_seconds();
    watchdog.arm(plan.batch);
    const int me = world.rank();
    // Rank 0 holds the whole batch (its own rows first, the others' land after them); other
    // ranks hold their own rows.
    const int64_t my_rows = plan.end(me) - plan.begin(me);
    const int64_t held = world.is_root() ? plan.rows : my_rows;
    if (writes_topk(o.stage)) topk.assign(static_cast<size_t>(held) * kTopK, -1);
    if (writes_attention(o.stage)) {
      output.assign(static_cast<size_t>(held) * kHeads * kCkvDim, 0);
      lse.assign(static_cast<size_t>(held) * kHeads, 0.f);
    }
    report::TimeSplit split;
    double t_mark = t0;
    auto lap = [&t_mark] {  // seconds since the previous lap
      const double now = report::now_seconds(), dt = now - t_mark;
      t_mark = now;
      return dt;
    };
    if (my_rows > 0) try {
      const io::QueryRows rows = workload->read_rows(plan.begin(me), my_rows);
      split.read = lap();
      switch (o.stage) {
        case io::Stage::indexer: backend->indexer(rows, topk.data()); break;
        case io::Stage::attention:
          backend->attention(rows, rows.sparse_indices.data(), sm_scale, output.data(), lse.data());
          break;
        case io::Stage::pipeline: backend->pipeline(rows, sm_scale, topk.data(), output.data(), lse.data()); break;
      }
    } catch (const Error& e) {
      // Name the batch and rows: "[rank 1] batch 3 (rows 96..127): kernel.cu:88: ... failed: ...".
      std::string what = e.what();
      const std::string prefix = rank_prefix();
      if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
      fail("batch ", plan.batch, " (rows ", plan.begin(me), "..", plan.end(me) - 1, "): ", what);
    }
    if (my_rows > 0) {
      const ComputeTimes c = backend->last_times();
      split.upload = c.upload;
      split.index = c.index;
      split.attend = c.attend;
      split.download = c.download;
      split.other = std::max(0.0, lap() - (c.upload + c.index + c.attend + c.download));
    }
    maybe_inject_fault(me, plan.batch, "compute");
    const std::vector<int64_t>& cuts = plan.cuts;
    if (writes_topk(o.stage)) comm::gather_rows(world, topk.data(), topk.data(), cuts, kTopK * sizeof(int32_t));
    if (writes_attention(o.stage)) {
      comm::gather_rows(world, output.data(), output.data(), cuts, kHeads * kCkvDim * sizeof(uint16_t));
      comm::gather_rows(world, lse.data(), lse.data(), cuts, kHeads * sizeof(float));
    }
    split.gather = lap();
    if (world.is_root()) {
      results->write_rows(plan.first_row, plan.rows, writes_topk(o.stage) ? topk.data() : nullptr,
                          writes_attention(o.stage) ? output.data() : nullptr,
                          writes_attention(o.stage) ? lse.data() : nullptr);
      const double seconds = report::now_seconds() - t0;
      results->write_batch(plan.batch, plan.ranks, seconds);
      maybe_inject_fault(me, plan.batch, "write");
      results->set_completed_batches(plan.batch + 1);
      split.write = lap();
      report::BatchRecord record;
      record.batch = plan.batch;
      record.rows = plan.rows;
      record.ranks = plan.ranks;
      record.work = plan.work;
      record.predicted_seconds = plan.predicted_seconds;
      record.seconds = seconds;
      // Idle: waiting for the other ranks at the end of the batch (the agreement below), and
      // the progress line, counted before they happen so the record can carry them.
      const int64_t signal_seen = world.max(static_cast<int64_t>(stop_signal()));
      stop = signal_seen;
      split.idle = lap();
      record.split = split;
      std::ostringstream discard;
      report.batch_done(record, total_work, o.quiet ? static_cast<std::ostream&>(discard) : std::cout);
    } else {
      stop = world.max(static_cast<int64_t>(stop_signal()));
    }
    // A signal at any rank stops every rank here, with this batch on disk.
    const int64_t signal = stop;
    watchdog.disarm();
    if (signal != 0 && b + 1 < plans.size()) {
      if (world.is_root()) {
        results->close();
        report.print_summary(std::cout);
        write_reports(o, header, report, fib_tags);
        std::cout << "stopped on " << signal_name(static_cast<int>(signal)) << " after batch " << plan.batch + 1
                  << " of " << plans.size() << "; " << o.results << " holds " << plan.batch + 1
                  << " complete batches: rerun with --resume to finish" << std::endl;
      }
      return kExitResumable;
    }
  }

  // --- 6. Close and summarise. ------------------------------------------------------------------
  if (world.is_root()) {
    results->close();
    report.print_summary(std::cout);
    write_reports(o, header, report, fib_tags);
  }
  return 0;
}

}  // namespace dsa::run
