#include "src/run/interrupt.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <unistd.h>

#include "src/report/report.hpp"
#include "src/run/options.hpp"

namespace dsa::run {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void record_signal(int signal) { g_signal = signal; }

}  // namespace

void install_stop_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking reads and MPI waits go on; the loop checks the flag
  for (int s : {SIGTERM, SIGUSR1, SIGINT}) sigaction(s, &action, nullptr);
}

int stop_signal() { return g_signal; }

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "a signal";
  }
}

Watchdog::Watchdog(double seconds, int rank) : seconds_(seconds), rank_(rank) {
  if (seconds_ > 0) thread_ = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::arm(int64_t batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  batch_ = batch;
  armed_at_ = report::now_seconds();
}

void Watchdog::disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  batch_ = -1;
}

void Watchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!quit_) {
    wake_.wait_for(lock, std::chrono::milliseconds(200));
    if (batch_ >= 0 && report::now_seconds() - armed_at_ > seconds_) {
      std::fprintf(stderr,
                   "[rank %d] batch %lld has run %.1f s, over --timeout %.1f s: a rank may have died or hung; "
                   "aborting the job (results up to completed_batches stay valid: rerun with --resume)\n",
                   rank_, static_cast<long long>(batch_), report::now_seconds() - armed_at_, seconds_);
      std::fflush(stderr);
      std::_Exit(kExitFailed);  // mpirun / srun then end the other ranks
    }
  }
}

void maybe_inject_fault(int rank, int64_t batch, const char* point) {
  static const char* spec = std::getenv("DSA_TEST_FAULT");
  if (spec == nullptr) return;
  char action[16] = {}, where[16] = {};
  int fault_rank = -1;
  long long fault_batch = -1;
  if (std::sscanf(spec, "%15[a-z]:%d:%lld:%15[a-z]", action, &fault_rank, &fault_batch, where) != 4) return;
  if (fault_rank != rank || fault_batch != batch || std::strcmp(where, point) != 0) return;
  std::fprintf(stderr, "[rank %d] DSA_TEST_FAULT: %s at batch %lld (%s)\n", rank, action, fault_batch, point);
  std::fflush(stderr);
  if (std::strcmp(action, "kill") == 0) std::raise(SIGKILL);
  if (std::strcmp(action, "term") == 0) std::raise(SIGTERM);
  if (std::strcmp(action, "hang") == 0)
    for (;;) pause();
  if (std::strcmp(action, "nomem") == 0) throw std::bad_alloc();
}

}  // namespace dsa::run
