// Dataset rows moved straight between a file and memory, in parallel threads, where
// h5::Dataset::raw_layout says the file holds them exactly as memory does.
//
// Why: the job streams tens of MB of rows in and of results out per batch. Through HDF5 that is
// one thread at a time (a global lock) at about 2 GB/s. Positional reads from the page cache
// scale with threads (about 35 GB/s with 8 on a 16-core host). Buffered writes do not: the
// kernel takes the file's lock for each write(), and placing new pages in the page cache runs
// at about 5 GB/s. So results are copied into a shared mapping of the file whose pages were
// placed beforehand (ParallelFile::prefault, at creation), which runs at memory speed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace dsa::io {

// Runs the items of one call to run() on a fixed set of threads (the caller's among them).
class WorkerPool {
 public:
  explicit WorkerPool(int threads);  // threads >= 1; threads - 1 are started
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const;
  // Calls item(i) for every i in [0, count), spread over the threads; returns when all have
  // returned. The first exception an item throws is rethrown here, after the others finished.
  // Calls from several threads take turns.
  void run(int64_t count, const std::function<void(int64_t)>& item);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A contiguous run of bytes in the file and where it sits in memory.
struct RawExtent {
  int64_t file_offset = 0;
  int64_t bytes = 0;
  char* memory = nullptr;
};

// Appends the extents of rows [first, first + count) of a dataset laid out as `layout`, whose
// rows sit back to back from `memory`.
void append_row_extents(const h5::RawLayout& layout, int64_t first, int64_t count, void* memory,
                        std::vector<RawExtent>& out);

// One file, opened for positional reads (and, where writable, mapped for writes).
class ParallelFile {
 public:
  // Takes `fd` (from h5::File::raw_descriptor) and closes it. `path` names the file in messages.
  // `map_bytes` > 0: the first map_bytes of the file are mapped shared and writable (the file
  // is at least that long, or this throws).
  ParallelFile(int fd, std::string path, int threads, int64_t map_bytes = 0);
  ~ParallelFile();
  ParallelFile(const ParallelFile&) = delete;
  ParallelFile& operator=(const ParallelFile&) = delete;

  const std::string& path() const { return path_; }
  int threads() const { return pool_.threads(); }

  // Reads the extents (pread, in parallel). `what` names the data in messages.
  void read(const std::vector<RawExtent>& extents, const std::string& what);
  // The same on the calling thread alone: for work already spread over pool().
  void read_here(const std::vector<RawExtent>& extents, const std::string& what);
  WorkerPool& pool() { return pool_; }
  // Writes the extents through the mapping (which must cover them), in parallel.
  void write(const std::vector<RawExtent>& extents, const std::string& what);
  // Places the pages of the extents (file ranges; `memory` unused) in the page cache, writable,
  // by writing zeros through the mapping: done at creation, so later writes copy at memory speed.
  void prefault(const std::vector<RawExtent>& extents);

 private:
  struct Piece {
    std::size_t extent;
    int64_t offset, bytes;  // within the extent
  };
  static std::vector<Piece> pieces(const std::vector<RawExtent>& extents);
  void read_piece(const RawExtent& e, int64_t offset, int64_t bytes, const std::string& what);
  // Checks that the mapping covers the extents, then calls copy(the piece's bytes in the
  // mapping, its memory or null, bytes) for every piece, on the pool.
  void on_mapping(const std::vector<RawExtent>& extents, const std::string& what,
                  const std::function<void(char* file, const char* memory, std::size_t bytes)>& copy);
  int fd_ = -1;
  std::string path_;
  char* map_ = nullptr;
  int64_t map_bytes_ = 0;
  WorkerPool pool_;
};

}  // namespace dsa::io
