#include <gtest/gtest.h>

#include "comm/gpu_binding.hpp"
#include "common/error.hpp"
#include "tests/common/test_util.hpp"

namespace dsa::comm {
namespace {

using dsa::testing::error_of;

TEST(ChooseGpu, OneVisibleGpuIsUsedWhateverTheLocalRank) {
  EXPECT_EQ(choose_gpu(0, 1, 1, "n1"), 0);
  EXPECT_EQ(choose_gpu(3, 4, 1, "n1"), 0);  // isolated per rank by the launcher
}

TEST(ChooseGpu, SeveralVisibleGpusGoByLocalRank) {
  EXPECT_EQ(choose_gpu(0, 2, 2, "n1"), 0);
  EXPECT_EQ(choose_gpu(1, 2, 2, "n1"), 1);
  EXPECT_EQ(choose_gpu(2, 4, 8, "n1"), 2);
}

TEST(ChooseGpu, MoreLocalRanksThanGpusIsRefused) {
  EXPECT_EQ(error_of([] { choose_gpu(2, 3, 2, "gpu07"); }),
            "3 ranks on host gpu07 but only 2 GPUs visible: start one rank per GPU");
}

TEST(ChooseGpu, NoGpuIsRefused) {
  EXPECT_NE(error_of([] { choose_gpu(0, 1, 0, "gpu07"); }).find("no CUDA GPU is visible on host gpu07"),
            std::string::npos);
}

TEST(DistinctGpus, SameGpuTwiceOnOneHostIsRefused) {
  EXPECT_NO_THROW(check_distinct_gpus({"a", "a", "b"}, {"0000:1b", "0000:2c", "0000:1b"}));
  EXPECT_EQ(error_of([] { check_distinct_gpus({"a", "b", "a"}, {"0000:1b", "0000:1b", "0000:1b"}); }),
            "ranks 0 and 2 on host a share GPU 0000:1b: start one rank per GPU (or give each rank its own "
            "CUDA_VISIBLE_DEVICES)");
}

TEST(SlurmWorld, MatchingOrAbsentNtasksIsFine) {
  EXPECT_NO_THROW(check_slurm_world(4, nullptr, nullptr));
  EXPECT_NO_THROW(check_slurm_world(4, "4", "123"));
  EXPECT_NO_THROW(check_slurm_world(1, "", "123"));
}

TEST(SlurmWorld, CopiesOfRankZeroAreRefused) {
  EXPECT_EQ(error_of([] { check_slurm_world(1, "8", "4242"); }),
            "Slurm job 4242 has SLURM_NTASKS=8 but the MPI world has 1 rank(s): launch with srun --mpi=pmix "
            "(or mpirun) so the 8 tasks form one MPI job");
}

}  // namespace
}  // namespace dsa::comm
