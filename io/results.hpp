// The results file (SPEC §3): created by rank 0, filled batch by batch, flushed after each
// batch, with `completed_batches` advanced only once a batch's rows are on disk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/workload.hpp"

namespace dsa::io {

struct ResultsMeta {
  std::string workload_path;
  Stage stage = Stage::pipeline;
  std::string backend;          // "cuda" | "cpu"
  std::string program_version;
  int64_t rows = 0;
  int64_t num_batches = 0;
  // Threads that copy rows into the file, where its datasets lie plainly in it (io/raw_rows.hpp);
  // 0 writes through HDF5.
  int io_threads = 1;
};

class ResultsFile {
 public:
  // Creates `path` with every dataset of the stage at full size and completed_batches = 0.
  // Refuses an existing file unless `force`.
  static ResultsFile create(const std::string& path, const ResultsMeta& meta, bool force);
  // Reopens an existing results file read-write to go on after completed_batches(): checks
  // that it was made for the same workload path (or the same file), stage, rows and batches.
  static ResultsFile open_for_resume(const std::string& path, const ResultsMeta& meta);

  ~ResultsFile();
  ResultsFile(ResultsFile&&) noexcept;
  ResultsFile& operator=(ResultsFile&&) noexcept;

  // Rows [first, first + count). Pointers the stage does not write may be null:
  // topk [count, 2048] int32, output [count, 16, 512] bf16, lse [count, 16] float32.
  // write_rows, write_batch and set_completed_batches may run beside WorkloadFile's reads in
  // another thread (they take h5::library_mutex around HDF5 calls).
  void write_rows(int64_t first, int64_t count, const int32_t* topk, const uint16_t* output,
                  const float* lse);
  void write_batch(int64_t batch, int32_t ranks, double seconds);
  // Flushes everything written so far, then records that batches [0, n) are complete.
  void set_completed_batches(int64_t n);
  int64_t completed_batches() const;
  // Threads copying rows into the file (0: every row goes through HDF5), and the row datasets
  // that go through HDF5 all the same (a reopened file laid out otherwise).
  int io_threads() const;
  std::vector<std::string> written_through_hdf5() const;
  void close();

 private:
  struct Impl;
  explicit ResultsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A whole results file in memory (tests, comparisons, resume checks).
struct ResultsData {
  std::string stage;
  std::string backend;
  std::string workload_path;
  std::string program_version;
  int64_t completed_batches = 0;
  std::vector<int32_t> topk_indices;  // [R, 2048] or empty
  std::vector<uint16_t> output;       // [R, 16, 512] or empty
  std::vector<float> lse;             // [R, 16] or empty
  std::vector<int32_t> batch_ranks;
  std::vector<double> batch_seconds;
};
ResultsData read_results(const std::string& path);

}  // namespace dsa::io
