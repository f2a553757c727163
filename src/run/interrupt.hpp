// How a job stops early without losing anything: signal flags checked between batches, a
// watchdog for batches that never end (a dead or hung rank), and fault injection for tests.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace dsa::run {

// SIGTERM, SIGUSR1 (what Slurm sends before a time limit or preemption) and SIGINT only record
// the signal; the job stops after the current batch.
void install_stop_handlers();
int stop_signal();  // the last signal received, 0 if none
const char* signal_name(int signal);

// If a batch is still running `seconds` after arm(), prints one line naming the rank and batch
// and ends the process (exit status 1), which makes mpirun or srun end the other ranks too.
class Watchdog {
 public:
  Watchdog(double seconds, int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  void arm(int64_t batch);
  void disarm();

 private:
  void watch();
  double seconds_;
  int rank_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool quit_ = false;
  int64_t batch_ = -1;  // -1: disarmed
  double armed_at_ = 0;
  std::thread thread_;
};

// Test hook, off unless the environment sets DSA_TEST_FAULT=ACTION:RANK:BATCH:POINT, where
// ACTION is kill (SIGKILL, nothing flushed), term (SIGTERM), hang (sleep forever) or nomem
// (throws std::bad_alloc), and POINT is compute (after the rank computed the batch), write
// (rank 0, rows written but completed_batches not yet advanced) or kv (batch -1: as the rank
// starts loading the KV caches). Used by the kill/resume tests.
void maybe_inject_fault(int rank, int64_t batch, const char* point);

}  // namespace dsa::run
