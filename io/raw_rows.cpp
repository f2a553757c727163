#include "io/raw_rows.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.hpp"

namespace dsa::io {

// ---- WorkerPool ----------------------------------------------------------------------------

struct WorkerPool::State {
  std::mutex m;
  std::condition_variable wake, done;
  std::mutex turn;  // one run() at a time
  const std::function<void(int64_t)>* item = nullptr;
  int64_t count = 0;
  std::atomic<int64_t> next{0};
  int64_t finished = 0;  // items, under m
  int busy = 0;          // workers inside the current run, under m
  uint64_t generation = 0;
  bool stop = false;
  std::exception_ptr error;
  std::vector<std::thread> workers;

  // Claims and runs items until none are left.
  void drain() {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= count) return;
      std::exception_ptr caught;
      try {
        (*item)(i);
      } catch (...) {
        caught = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(m);
      if (caught && !error) error = caught;
      if (++finished == count) done.notify_all();
    }
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m);
        wake.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        ++busy;
      }
      drain();
      std::lock_guard<std::mutex> lock(m);
      if (--busy == 0) done.notify_all();  // run() waits for busy == 0 before and after
    }
  }
};

WorkerPool::WorkerPool(int threads) : state_(std::make_unique<State>()) {
  DSA_REQUIRE(threads >= 1, "WorkerPool: ", threads, " threads");
  for (int t = 1; t < threads; ++t) state_->workers.emplace_back([s = state_.get()] { s->work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(state_->m);
    state_->stop = true;
  }
  state_->wake.notify_all();
  for (std::thread& t : state_->workers) t.join();
}

int WorkerPool::threads() const { return static_cast<int>(state_->workers.size()) + 1; }

void WorkerPool::run(int64_t count, const std::function<void(int64_t)>& item) {
  if (count <= 0) return;
  State& s = *state_;
  std::lock_guard<std::mutex> turn(s.turn);
  {
    // A worker woken late for the previous run may still be looking at its counters.
    std::unique_lock<std::mutex> lock(s.m);
    s.done.wait(lock, [&] { return s.busy == 0; });
    s.item = &item;
    s.count = count;
    s.next = 0;
    s.finished = 0;
    s.error = nullptr;
    ++s.generation;
  }
  if (count > 1) s.wake.notify_all();
  s.drain();
  std::exception_ptr error;
  {
    // Every item done, and no worker still inside this run (one may yet be about to find the
    // items gone): only then may the next run reset the counters.
    std::unique_lock<std::mutex> lock(s.m);
    s.done.wait(lock, [&] { return s.finished == s.count && s.busy == 0; });
    error = s.error;
    s.item = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

// ---- Extents -------------------------------------------------------------------------------

void append_row_extents(const h5::RawLayout& layout, int64_t first, int64_t count, void* memory,
                        std::vector<RawExtent>& out) {
  char* mem = static_cast<char*>(memory);
  int64_t row = first;
  const int64_t end = first + count;
  while (row < end) {
    const int64_t chunk = row / layout.chunk_rows;
    const int64_t in_chunk = row - chunk * layout.chunk_rows;
    const int64_t rows = std::min(end - row, layout.chunk_rows - in_chunk);
    const int64_t file_offset =
        layout.chunk_offsets[static_cast<std::size_t>(chunk)] + in_chunk * layout.row_bytes;
    const int64_t bytes = rows * layout.row_bytes;
    if (!out.empty() && out.back().file_offset + out.back().bytes == file_offset &&
        out.back().memory + out.back().bytes == mem)
      out.back().bytes += bytes;  // chunks that follow each other in the file
    else
      out.push_back({file_offset, bytes, mem});
    mem += bytes;
    row += rows;
  }
}

// ---- ParallelFile -------------------------------------------------------------------------------

namespace {
constexpr int64_t kPieceBytes = int64_t{1} << 20;  // small enough to spread a batch over threads
}

ParallelFile::ParallelFile(int fd, std::string path, int threads, int64_t map_bytes)
    : fd_(fd), path_(std::move(path)), pool_(threads) {
  DSA_REQUIRE(fd_ >= 0, path_, ": ParallelFile without a descriptor");
  if (map_bytes > 0) {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int e = errno;
      ::close(fd_);
      fail(path_, ": fstat: ", std::strerror(e));
    }
    if (st.st_size < map_bytes) {
      ::close(fd_);
      fail(path_, ": is ", st.st_size, " bytes long, its datasets end at byte ", map_bytes);
    }
    void* m = ::mmap(nullptr, static_cast<std::size_t>(map_bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd_);
      fail(path_, ": mapping ", h5::bytes_text(map_bytes), " for writing: ", std::strerror(e));
    }
    map_ = static_cast<char*>(m);
    map_bytes_ = map_bytes;
  }
}

ParallelFile::~ParallelFile() {
  if (map_ != nullptr) ::munmap(map_, static_cast<std::size_t>(map_bytes_));
  if (fd_ >= 0) ::close(fd_);
}

std::vector<ParallelFile::Piece> ParallelFile::pieces(const std::vector<RawExtent>& extents) {
  std::vector<Piece> out;
  for (std::size_t e = 0; e < extents.size(); ++e)
    for (int64_t o = 0; o < extents[e].bytes; o += kPieceBytes)
      out.push_back({e, o, std::min(kPieceBytes, extents[e].bytes - o)});
  return out;
}

void ParallelFile::read_piece(const RawExtent& e, int64_t offset, int64_t bytes, const std::string& what) {
  int64_t done = 0;
  while (done < bytes) {
    const int64_t at = e.file_offset + offset + done;
    const ssize_t n = ::pread(fd_, e.memory + offset + done, static_cast<std::size_t>(bytes - done), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path_, ": ", what, ": reading ", bytes - done, " bytes at offset ", at, ": ", std::strerror(errno));
    if (n == 0) fail(path_, ": ", what, ": the file ends at offset ", at, ", before the dataset's data");
    done += n;
  }
}

void ParallelFile::read(const std::vector<RawExtent>& extents, const std::string& what) {
  const std::vector<Piece> ps = pieces(extents);
  pool_.run(static_cast<int64_t>(ps.size()), [&](int64_t i) {
    const Piece& p = ps[static_cast<std::size_t>(i)];
    read_piece(extents[p.extent], p.offset, p.bytes, what);
  });
}

void ParallelFile::read_here(const std::vector<RawExtent>& extents, const std::string& what) {
  for (const RawExtent& e : extents) read_piece(e, 0, e.bytes, what);
}

void ParallelFile::on_mapping(const std::vector<RawExtent>& extents, const std::string& what,
                              const std::function<void(char* file, const char* memory, std::size_t bytes)>& copy) {
  for (const RawExtent& e : extents)
    DSA_REQUIRE(e.file_offset >= 0 && e.file_offset + e.bytes <= map_bytes_, path_, ": ", what, ": bytes [",
                e.file_offset, ", ", e.file_offset + e.bytes, ") outside the ", map_bytes_, " mapped");
  const std::vector<Piece> ps = pieces(extents);
  pool_.run(static_cast<int64_t>(ps.size()), [&](int64_t i) {
    const Piece& p = ps[static_cast<std::size_t>(i)];
    const RawExtent& e = extents[p.extent];
    copy(map_ + e.file_offset + p.offset, e.memory == nullptr ? nullptr : e.memory + p.offset,
         static_cast<std::size_t>(p.bytes));
  });
}

void ParallelFile::write(const std::vector<RawExtent>& extents, const std::string& what) {
  on_mapping(extents, what, [](char* file, const char* memory, std::size_t bytes) { std::memcpy(file, memory, bytes); });
}

void ParallelFile::prefault(const std::vector<RawExtent>& extents) {
  on_mapping(extents, "placing pages", [](char* file, const char*, std::size_t bytes) { std::memset(file, 0, bytes); });
}

}  // namespace dsa::io
