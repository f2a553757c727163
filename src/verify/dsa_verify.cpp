// dsa-verify: checks a results file against the CPU reference by the SPEC's criteria
// (top-k: reachable, no repeats, sorted scores within 1e-2; attention: output and lse within
// 1e-2). For results of any backend: the way to trust a GPU run.
#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "common/error.hpp"
#include "io/results.hpp"
#include "io/workload.hpp"
#include "kernels/reference/attention.hpp"
#include "kernels/reference/indexer.hpp"
#include "kernels/reference/parallel.hpp"

namespace po = boost::program_options;

namespace {

struct Tally {
  std::atomic<int64_t> rows{0}, failed{0};
  std::mutex mutex;
  std::vector<std::string> first_failures;

  void fail(std::string why) {
    ++failed;
    std::lock_guard<std::mutex> lock(mutex);
    if (first_failures.size() < 10) first_failures.push_back(std::move(why));
  }
};

// Rows of one batch to check: all, or an even sample of `per_batch` (first and last included).
std::vector<int64_t> rows_to_check(int64_t first, int64_t count, int64_t per_batch) {
  std::vector<int64_t> rows;
  if (per_batch <= 0 || count <= per_batch) {
    for (int64_t r = 0; r < count; ++r) rows.push_back(first + r);
  } else {
    for (int64_t i = 0; i < per_batch; ++i) rows.push_back(first + i * (count - 1) / (per_batch - 1));
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  std::string workload_path, results_path;
  int64_t per_batch = 0;
  int threads = 0;
  po::options_description opts(
      "Usage: dsa-verify --workload W.h5 --results R.h5 [options]\n\n"
      "Checks every (or a sample of) results row against the CPU reference by the SPEC's criteria.\n"
      "Exit status: 0 all checked rows pass, 1 some fail or the files cannot be read, 2 bad command line.\n\nOptions");
  opts.add_options()("help,h", "print this help")("workload,w", po::value(&workload_path), "the workload file")(
      "results,r", po::value(&results_path), "the results file dsa-run wrote")(
      "rows-per-batch", po::value(&per_batch)->default_value(0), "check this many rows per batch (0 = all)")(
      "threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << opts;
      return 0;
    }
    if (workload_path.empty() || results_path.empty())
      throw po::error("--workload and --results are required");
  } catch (const po::error& e) {
    std::cerr << "dsa-verify: " << e.what() << " (see --help)\n";
    return 2;
  }

  try {
    const dsa::io::ResultsData results = dsa::io::read_results(results_path);
    const dsa::io::Stage stage = dsa::io::parse_stage(results.stage);
    const dsa::io::WorkloadFile workload(workload_path, stage);
    const dsa::io::WorkloadInfo& info = workload.info();
    const dsa::io::KvCache kv = workload.read_kv();
    const bool topk = stage != dsa::io::Stage::attention;
    const bool attend = stage != dsa::io::Stage::indexer;
    const int64_t done = results.completed_batches;
    if (done < info.num_batches())
      std::printf("note: %s holds %lld of %lld batches; checking those\n", results_path.c_str(),
                  static_cast<long long>(done), static_cast<long long>(info.num_batches()));

    Tally tally;
    for (int64_t b = 0; b < done; ++b) {
      const int64_t first = info.batch_offsets[static_cast<size_t>(b)];
      const int64_t count = info.batch_offsets[static_cast<size_t>(b) + 1] - first;
      const dsa::io::QueryRows q = workload.read_rows(first, count);
      const std::vector<int64_t> rows = rows_to_check(first, count, per_batch);

      dsa::IndexerParams ip;
      ip.index_k = kv.index_k.data();
      ip.num_pages = kv.num_pages;
      ip.q_index = q.q_index.data();
      ip.weights = q.weights.data();
      ip.seq_lens = q.seq_lens.data();
      ip.block_table = q.block_table.data();
      ip.max_num_pages = q.max_num_pages;
      ip.rows = count;
      dsa::AttentionParams ap;
      ap.q_nope = q.q_nope.data();
      ap.q_pe = q.q_pe.data();
      ap.ckv = kv.ckv.data();
      ap.kpe = kv.kpe.data();
      ap.num_pages = kv.num_pages;
      ap.rows = count;
      ap.sm_scale = static_cast<float>(info.sm_scale);
      // Pipeline: attention is judged on the ids the indexer returned (already checked above).
      ap.sparse_indices = stage == dsa::io::Stage::pipeline ? results.topk_indices.data() + first * dsa::kTopK
                                                            : q.sparse_indices.data();

      dsa::ref::parallel_for(static_cast<int64_t>(rows.size()), threads, [&](int, int64_t i) {
        const int64_t row = rows[static_cast<size_t>(i)];
        const int64_t local = row - first;
        ++tally.rows;
        std::string why;
        if (topk) why = dsa::ref::check_topk(ip, local, results.topk_indices.data() + row * dsa::kTopK);
        if (why.empty() && attend)
          why = dsa::ref::check_attention_row(ap, local,
                                              results.output.data() + row * dsa::kHeads * dsa::kCkvDim,
                                              results.lse.data() + row * dsa::kHeads);
        if (!why.empty()) tally.fail("batch " + std::to_string(b) + ", workload row " + std::to_string(row) + ": " + why);
      });
    }
    for (const std::string& why : tally.first_failures) std::printf("FAIL %s\n", why.c_str());
    std::printf("%s: %lld rows checked (%s, backend %s), %lld failed\n", results_path.c_str(),
                static_cast<long long>(tally.rows.load()), results.stage.c_str(), results.backend.c_str(),
                static_cast<long long>(tally.failed.load()));
    return tally.failed.load() == 0 && tally.rows.load() > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
