// A small std::thread parallel loop for the CPU reference (no OpenMP: the GPU machines may lack
// libgomp). Items are handed out one at a time from an atomic counter, so rows of very different
// cost balance; each item must be independent of the others, which keeps results identical for
// any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace dsa::ref {

// Workers a loop over n items uses: `threads` (0 = all cores), at most n, at least 1.
inline int worker_count(int threads, int64_t n) {
  int64_t t = threads > 0 ? threads : static_cast<int64_t>(std::thread::hardware_concurrency());
  t = std::min<int64_t>(std::max<int64_t>(t, 1), std::max<int64_t>(n, 1));
  return static_cast<int>(t);
}

// Calls fn(worker, i) for every i in [0, n), worker in [0, worker_count(threads, n)), so callers
// can keep scratch per worker. The first exception thrown by fn stops the loop (items not yet
// started are skipped) and is rethrown here once every worker has finished.
template <typename Fn>
void parallel_for(int64_t n, int threads, Fn&& fn) {
  if (n <= 0) return;
  const int workers = worker_count(threads, n);
  if (workers == 1) {
    for (int64_t i = 0; i < n; ++i) fn(0, i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](int worker) {
    try {
      for (int64_t i = next.fetch_add(1); i < n && !failed.load(); i = next.fetch_add(1)) fn(worker, i);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  for (int w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(work, w);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: the workers already started (and this one) do it all
    }
  }
  work(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace dsa::ref
