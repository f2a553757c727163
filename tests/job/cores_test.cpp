// A rank's thread counts follow its CPU affinity: a launcher that binds it to one core gets one
// thread, not its share of the node.
#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

#include "common/cores.hpp"

namespace dsa {
namespace {

TEST(Cores, UsableCoresAreTheAffinityMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(usable_cores(), CPU_COUNT(&set));
  const int node = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(cores_share(1), std::min(usable_cores(), node));
  EXPECT_EQ(cores_share(node * 4), 1);  // more ranks than cores: still one thread each
}

TEST(Cores, ABindingToOneCoreGivesOneThread) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &saved)) first = c;
  ASSERT_GE(first, 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // as `mpirun --bind-to core` leaves a rank
  const int usable = usable_cores(), share = cores_share(1);
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(usable, 1);
  EXPECT_EQ(share, 1);
}

}  // namespace
}  // namespace dsa
