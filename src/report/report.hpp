// What the job tells people and scripts: a header, one progress line per batch, a summary,
// and the same figures as JSON (--report).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace dsa::report {

// NaN/Inf found in the inputs: computed as the math says, and reported.
struct NonFiniteInput {
  std::string dataset, values, text;
  int64_t nan = 0, inf = 0, first_row = -1;
};

struct JobHeader {
  std::string program_version;
  std::string mpi_version;
  std::string hdf5_version;
  std::string backend;          // "cpu" | "cuda"
  std::string stage;
  std::string workload_path;
  std::string results_path;
  int ranks = 1;
  int threads_per_rank = 1;
  int io_threads = 0;  // threads per rank for positional file I/O (0: all through HDF5)
  std::vector<std::string> io_through_hdf5;  // row datasets read or written through HDF5 all the same
  std::vector<std::string> hosts;    // by rank
  std::vector<std::string> devices;  // by rank ("cpu" or the GPU's name and ordinal)
  int64_t rows = 0;
  int64_t batches = 0;
  int64_t num_pages = 0;
  int64_t max_num_pages = 0;
  std::string rank_policy;      // "auto" or a number
  std::string gather;           // how results reach rank 0 ("NCCL 2.28.3 (device to device)", "MPI (host memory)")
  std::string cost_model;       // where the planner's costs came from
  std::vector<NonFiniteInput> nonfinite;  // rank 0's content check
};

// Where a batch's wall time went on rank 0. The parts are measured back to back, so they add
// up to the batch's wall time; "other" is what the backend did outside its own timed phases.
struct TimeSplit {
  double read = 0, upload = 0, index = 0, attend = 0, download = 0, other = 0, gather = 0, write = 0, idle = 0;
  double total() const { return read + upload + index + attend + download + other + gather + write + idle; }
  TimeSplit& operator+=(const TimeSplit& o);
};

struct BatchRecord {
  int64_t batch = 0;
  int64_t rows = 0;
  int ranks = 1;
  double work = 0;               // planner work units
  double predicted_seconds = 0;  // the planner's prediction of compute_seconds
  double compute_seconds = 0;    // rank 0: start of its compute to the batch gathered on it
  double seconds = 0;            // wall time of the batch on rank 0 (read + compute + gather + write)
  TimeSplit split;               // rank 0's wall time, idle included
};

class JobReport {
 public:
  explicit JobReport(JobHeader header);

  void print_header(std::ostream& out) const;
  // After start-up: how results are gathered and where the rank choice's costs came from.
  void print_setup(std::ostream& out) const;
  // Fills in what start-up learned (gather, cost_model) after construction.
  void set_header(const JobHeader& header) { header_ = header; }
  // Records a finished batch and prints its progress line (rows/s, ETA from work left).
  void batch_done(const BatchRecord& record, double total_work, std::ostream& out);
  void print_summary(std::ostream& out) const;
  // Writes header, batches and summary as JSON; throws dsa::Error if the file cannot be written.
  void write_json(const std::string& path) const;

  // Seconds since the job's timer started (the header's construction); setup_seconds marks
  // the end of start-up (validation, KV load) so the summary can separate it.
  double elapsed() const;
  void mark_setup_done();
  // The job's timer starts at `t` (now_seconds()) instead of the report's construction, so
  // start-up covers the checks that ran before the header was known.
  void set_start(double t) { start_ = t; }
  // Start-up, phase by phase ("checks", "KV read", ...): seconds each; printed in the summary.
  void set_setup_phases(std::vector<std::pair<std::string, double>> phases) { setup_phases_ = std::move(phases); }
  // Seconds the reader and writer threads spent, overlapped with the batches (not in the split).
  void set_background(double read_seconds, double write_seconds) {
    background_read_ = read_seconds;
    background_write_ = write_seconds;
  }
  const std::vector<BatchRecord>& batches() const { return records_; }

 private:
  JobHeader header_;
  std::vector<BatchRecord> records_;
  double start_ = 0;
  double setup_seconds_ = 0;
  std::vector<std::pair<std::string, double>> setup_phases_;
  double work_done_ = 0;
  double background_read_ = 0, background_write_ = 0;
};

// Monotonic wall clock in seconds.
double now_seconds();

// The median of `v` (the upper one of an even count); 0 for none.
double median(std::vector<double> v);

}  // namespace dsa::report
