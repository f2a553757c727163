// dsa-run's command line.
#pragma once

#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>

#include "io/workload.hpp"

namespace dsa::run {

struct JobOptions {
  std::string workload;
  std::string results;
  io::Stage stage = io::Stage::pipeline;
  std::string backend = "auto";  // auto | cpu | cuda
  std::string report;            // JSON report path ("" = none)
  std::string fib_traces;        // FlashInfer-Bench trace JSONL path ("" = none; dsa-import workloads)
  bool force = false;
  bool resume = false;           // continue after the results file's completed batches
  double timeout = 0;            // seconds a batch may take on a rank before the job aborts (0 = none)
  int ranks = 0;                 // ranks per batch: 0 = auto
  std::string calibration = "measure";  // measure | none | a calibration file
  int threads = 0;               // CPU threads per rank: 0 = this rank's share of the node's cores
  int io_threads = -1;           // threads reading rows and writing results: -1 = auto, 0 = all through HDF5
  bool quiet = false;            // no per-batch progress lines
};

// Exit statuses of dsa-run (documented in --help and README.md).
inline constexpr int kExitDone = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitResumable = 3;  // stopped early on a signal: rerun with --resume

// Thrown for a bad command line (exit status 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses the command line. Returns nullopt after printing --help to `help_out`.
std::optional<JobOptions> parse_options(int argc, char** argv, std::ostream& help_out);

}  // namespace dsa::run
