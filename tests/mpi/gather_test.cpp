// Runs under mpirun with several ranks (see CMakeLists.txt): every rank takes part.
#include <gtest/gtest.h>
#include <mpi.h>

#include <numeric>

#include "comm/gather.hpp"
#include "comm/world.hpp"
#include "common/error.hpp"

namespace dsa::comm {
namespace {

const World* g_world = nullptr;

// Row r of the batch holds `row_len` ints, each equal to value(r, i).
int32_t value(int64_t row, int i) { return static_cast<int32_t>(row * 1000 + i); }

void check_gather(const std::vector<int64_t>& cuts, int row_len) {
  const World& w = *g_world;
  const int active = static_cast<int>(cuts.size()) - 1;
  const int64_t rows = cuts.back() - cuts.front();
  const int64_t mine = w.rank() < active ? cuts[static_cast<size_t>(w.rank()) + 1] - cuts[static_cast<size_t>(w.rank())] : 0;
  std::vector<int32_t> buf(static_cast<size_t>((w.is_root() ? rows : mine) * row_len), -7);
  for (int64_t r = 0; r < mine; ++r)
    for (int i = 0; i < row_len; ++i)
      buf[static_cast<size_t>(r * row_len + i)] = value(cuts[static_cast<size_t>(w.rank())] - cuts[0] + r, i);
  gather_rows(w, buf.data(), buf.data(), cuts, static_cast<size_t>(row_len) * sizeof(int32_t));
  if (!w.is_root()) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int i = 0; i < row_len; ++i)
      ASSERT_EQ(buf[static_cast<size_t>(r * row_len + i)], value(r, i)) << "row " << r << " of " << rows;
}

TEST(GatherRows, EveryRankActiveUnevenSlices) {
  std::vector<int64_t> cuts = {10};
  for (int r = 0; r < g_world->size(); ++r) cuts.push_back(cuts.back() + 1 + 2 * r);
  check_gather(cuts, 2048);
}

TEST(GatherRows, FewerActiveRanksThanWorld) {
  check_gather({0, 3}, 16);  // only rank 0
  if (g_world->size() >= 3) check_gather({5, 6, 9}, 16);  // ranks 0 and 1 active, the rest idle
}

TEST(GatherRows, LargeRowsStayIntact) {
  std::vector<int64_t> cuts = {0};
  for (int r = 0; r < g_world->size(); ++r) cuts.push_back(cuts.back() + 3);
  check_gather(cuts, 16 * 512 / 2);  // one bf16 output row is 16 KB
}

TEST(World, AgreeOnErrorGivesEveryRankTheLowestRanksMessage) {
  const World& w = *g_world;
  const std::string mine = w.rank() >= 1 ? "rank " + std::to_string(w.rank()) + " failed" : "";
  const std::string agreed = w.agree_on_error(mine);
  if (w.size() == 1) EXPECT_EQ(agreed, "");
  else EXPECT_EQ(agreed, "rank 1 failed");
  EXPECT_EQ(w.agree_on_error(""), "");
}

TEST(World, HostsAndLocalRanksAreConsistent) {
  const World& w = *g_world;
  EXPECT_EQ(static_cast<int>(w.hosts().size()), w.size());
  EXPECT_GE(w.local_rank(), 0);
  EXPECT_LT(w.local_rank(), w.local_size());
  EXPECT_LE(w.local_size(), w.size());
  const auto names = w.all_gather(std::to_string(w.rank() * 7));
  for (int r = 0; r < w.size(); ++r) EXPECT_EQ(names[static_cast<size_t>(r)], std::to_string(r * 7));
}

TEST(World, AllGatherOfValuesPutsEachRanksValuesInRankOrder) {
  const World& w = *g_world;
  const std::vector<double> all = w.all_gather(std::vector<double>{w.rank() + 0.5, -1.0 * w.rank()});
  ASSERT_EQ(all.size(), 2 * static_cast<size_t>(w.size()));
  for (int r = 0; r < w.size(); ++r) {
    EXPECT_EQ(all[2 * size_t(r)], r + 0.5);
    EXPECT_EQ(all[2 * size_t(r) + 1], -1.0 * r);
  }
  // Different lengths on different ranks are refused on every rank, not left to MPI.
  if (w.size() > 1) {
    EXPECT_THROW(w.all_gather(std::vector<double>(w.is_root() ? 1 : 2, 0.0)), dsa::Error);
  }
}

TEST(World, BroadcastsReachEveryRank) {
  const World& w = *g_world;
  std::vector<int32_t> v;
  std::string s;
  if (w.is_root()) {
    v = {3, 1, 4, 1, 5};
    s = "hello";
  }
  w.broadcast(v);
  w.broadcast(s);
  EXPECT_EQ(v, (std::vector<int32_t>{3, 1, 4, 1, 5}));
  EXPECT_EQ(s, "hello");
}

}  // namespace
}  // namespace dsa::comm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dsa::comm::MpiSession mpi(&argc, &argv);
  const dsa::comm::World world;
  dsa::comm::g_world = &world;
  // Only rank 0 prints the usual report; other ranks print failures only.
  if (!world.is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  // Every rank's verdict decides the exit status.
  int any = failed, worst = 0;
  MPI_Allreduce(&any, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (worst && world.is_root() && !failed) std::fprintf(stderr, "a test failed on another rank\n");
  return worst ? 1 : 0;
}
