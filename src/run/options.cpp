#include "src/run/options.hpp"

#include <boost/program_options.hpp>

#include <limits>
#include <ostream>
#include <string>

#include "common/error.hpp"

namespace po = boost::program_options;

namespace dsa::run {

namespace {

// `text` as a whole number in [lo, hi], or a UsageError: "`expects`, not 'text'".
int whole_number(const std::string& text, int lo, int hi, const std::string& expects) {
  try {
    size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used == text.size() && value >= lo && value <= hi) return value;
  } catch (const std::exception&) {
  }
  throw UsageError(expects + ", not '" + text + "'");
}

}  // namespace

std::optional<JobOptions> parse_options(int argc, char** argv, std::ostream& help_out) {
  JobOptions o;
  std::string stage, ranks = "auto", io_threads = "auto";
  po::options_description opts(
      "Usage: [mpirun -np N] dsa-run --workload W.h5 --out R.h5 --stage indexer|attention|pipeline [options]\n\n"
      "Runs DeepSeek Sparse Attention over a recorded workload: the indexer's top-2048 tokens and/or\n"
      "the sparse MLA attention output of every query row. One MPI rank per GPU (or per CPU share);\n"
      "each batch's rows are split over the ranks by work and gathered on rank 0, which writes R.h5\n"
      "batch by batch (completed_batches records what is on disk).\n\nOptions");
  opts.add_options()("help,h", "print this help and exit")(
      "workload,w", po::value(&o.workload), "workload file (HDF5, SPEC section 2)")(
      "out,o", po::value(&o.results), "results file to create (HDF5, SPEC section 3)")(
      "stage,s", po::value(&stage), "indexer | attention | pipeline (indexer's top-k feeds attention)")(
      "backend,b", po::value(&o.backend)->default_value("auto"),
      "auto (a GPU where every rank sees one, else the CPU) | cuda | cpu")(
      "ranks", po::value(&ranks)->default_value("auto"),
      "ranks taking part in each batch: auto (least predicted time) or a number")(
      "calibration", po::value(&o.calibration)->default_value("measure"),
      "where auto's compute costs come from: measure (time the backend on a sample of the\n"
      "workload's rows at start-up, when there is a choice to make), a file written by\n"
      "'dsa-bench calibrate', or none (built-in estimates)")(
      "threads", po::value(&o.threads)->default_value(0),
      "CPU backend threads per rank (0 = the node's cores shared among its ranks)")(
      "io-threads", po::value(&io_threads)->default_value("auto"),
      "threads per rank reading rows from the workload and writing results where the files\n"
      "store them plainly (uncompressed): auto (the node's cores shared among its ranks, at\n"
      "most 8), a number, or 0 (everything through HDF5, one thread at a time)")(
      "report", po::value(&o.report), "also write the header, per-batch figures and summary as JSON here")(
      "fib-traces", po::value(&o.fib_traces),
      "also write one FlashInfer-Bench trace per batch (JSONL) here; the workload must come from\n"
      "dsa-import, and the stage must be its definition's (indexer or attention)")(
      "force", po::bool_switch(&o.force), "overwrite an existing results file")(
      "resume", po::bool_switch(&o.resume),
      "continue an interrupted run after the batches its results file holds (starts afresh if\n"
      "the file does not exist; refuses a file of another workload or stage)")(
      "timeout", po::value(&o.timeout)->default_value(0),
      "abort the job if a batch takes longer than this many seconds on any rank (0 = never)")(
      "quiet,q", po::bool_switch(&o.quiet), "no per-batch progress lines");

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string("dsa-run: ") + e.what() + " (see --help)");
  }
  if (vm.count("help")) {
    help_out << opts
             << "\nSignals: on SIGTERM, SIGUSR1 or SIGINT at any rank, all ranks stop after the current batch,\n"
                "flush the results file and exit with status 3; rerun the same command with --resume.\n"
                "Exit status: 0 done, 1 failed (the message says why), 2 bad command line,\n"
                "3 stopped early on a signal (resumable with --resume).\n";
    return std::nullopt;
  }
  if (o.workload.empty()) throw UsageError("dsa-run: --workload is required (see --help)");
  if (o.results.empty()) throw UsageError("dsa-run: --out is required (see --help)");
  if (stage.empty()) throw UsageError("dsa-run: --stage is required: indexer, attention or pipeline");
  try {
    o.stage = io::parse_stage(stage);
  } catch (const Error&) {
    throw UsageError("dsa-run: unknown --stage '" + stage + "' (indexer, attention or pipeline)");
  }
  if (o.backend != "auto" && o.backend != "cpu" && o.backend != "cuda")
    throw UsageError("dsa-run: unknown --backend '" + o.backend + "' (auto, cuda or cpu)");
  if (ranks != "auto")
    o.ranks = whole_number(ranks, 1, std::numeric_limits<int>::max(), "dsa-run: --ranks takes 'auto' or a positive number");
  if (o.calibration.empty()) throw UsageError("dsa-run: --calibration takes measure, none or a file");
  if (o.threads < 0) throw UsageError("dsa-run: --threads must be >= 0");
  if (io_threads != "auto")
    o.io_threads = whole_number(io_threads, 0, 256, "dsa-run: --io-threads takes 'auto' or a number from 0 to 256");
  if (!(o.timeout >= 0)) throw UsageError("dsa-run: --timeout must be >= 0 seconds");
  if (o.resume && o.force) throw UsageError("dsa-run: --resume and --force contradict each other");
  return o;
}

}  // namespace dsa::run
