#include "common/cores.hpp"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace dsa {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int node_share(int local_ranks) {
  const int node = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, node / std::max(1, local_ranks));
}

int cores_share(int local_ranks) { return std::min(usable_cores(), node_share(local_ranks)); }

}  // namespace dsa
