// NCCL gather of batch rows into rank 0's device buffers (comm/nccl.hpp). Runs under mpirun,
// one rank per GPU, on the GPU machine; skips visibly where a rank sees no GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "comm/gpu_binding.hpp"
#include "comm/nccl.hpp"
#include "comm/world.hpp"
#include "common/error.hpp"

namespace dsa::comm {
namespace {

const World* g_world = nullptr;
const NcclComm* g_nccl = nullptr;
cudaStream_t g_stream = nullptr;

int32_t value(int64_t row, int i, int array) { return static_cast<int32_t>(row * 100003 + i * 7 + array); }

// Two arrays of different row sizes gathered in one group; rank 0's buffers hold the whole
// batch, its own rows first. Every other byte of rank 0's buffers must be left as it was.
void check_gather(const std::vector<int64_t>& cuts, const std::vector<int>& row_lens) {
  const World& w = *g_world;
  const int active = static_cast<int>(cuts.size()) - 1;
  const int64_t rows = cuts.back() - cuts.front();
  const int me = w.rank();
  const int64_t mine = me < active ? cuts[size_t(me) + 1] - cuts[size_t(me)] : 0;
  const int64_t held = w.is_root() ? rows + 2 : std::max<int64_t>(mine, 1);  // 2 spare rows on the root
  std::vector<void*> dev(row_lens.size());
  std::vector<RowArray> arrays;
  for (size_t a = 0; a < row_lens.size(); ++a) {
    const size_t n = size_t(held) * row_lens[a];
    std::vector<int32_t> host(n, -7);
    for (int64_t r = 0; r < mine; ++r)
      for (int i = 0; i < row_lens[a]; ++i)
        host[size_t(r) * row_lens[a] + i] = value(cuts[size_t(me)] - cuts[0] + r, i, int(a));
    DSA_CHECK_CUDA(cudaMalloc(&dev[a], n * sizeof(int32_t)));
    DSA_CHECK_CUDA(cudaMemcpy(dev[a], host.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice));
    arrays.push_back({dev[a], dev[a], row_lens[a] * sizeof(int32_t)});
  }
  g_nccl->gather_rows(arrays, cuts, g_stream);
  for (size_t a = 0; a < row_lens.size(); ++a) {
    if (w.is_root()) {
      std::vector<int32_t> host(size_t(held) * row_lens[a]);
      DSA_CHECK_CUDA(cudaMemcpy(host.data(), dev[a], host.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
      for (int64_t r = 0; r < held; ++r)
        for (int i = 0; i < row_lens[a]; ++i)
          ASSERT_EQ(host[size_t(r) * row_lens[a] + i], r < rows ? value(r, i, int(a)) : -7)
              << "array " << a << " row " << r << " of " << rows;
    }
    DSA_CHECK_CUDA(cudaFree(dev[a]));
  }
}

#define REQUIRE_NCCL() \
  if (!g_nccl) GTEST_SKIP() << "no GPU on every rank: NCCL gather not tested"

TEST(NcclGather, EveryRankActiveUnevenSlices) {
  REQUIRE_NCCL();
  std::vector<int64_t> cuts = {10};
  for (int r = 0; r < g_world->size(); ++r) cuts.push_back(cuts.back() + 1 + 3 * r);
  check_gather(cuts, {2048, 16});
}

TEST(NcclGather, OnlyRankZeroActive) {
  REQUIRE_NCCL();
  check_gather({0, 5}, {2048});
}

TEST(NcclGather, FewerActiveRanksThanWorld) {
  REQUIRE_NCCL();
  if (g_world->size() < 3) GTEST_SKIP() << "needs 3 ranks";
  check_gather({5, 6, 9}, {16, 4096});
}

TEST(NcclGather, LargeSlices) {
  REQUIRE_NCCL();
  std::vector<int64_t> cuts = {0};
  for (int r = 0; r < g_world->size(); ++r) cuts.push_back(cuts.back() + 1000);
  check_gather(cuts, {4096});  // 16 KB rows, as attention outputs
}

}  // namespace
}  // namespace dsa::comm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dsa::comm::MpiSession mpi(&argc, &argv);
  const dsa::comm::World world;
  dsa::comm::g_world = &world;
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess) gpus = 0;
  std::unique_ptr<dsa::comm::NcclComm> nccl;
  if (world.all(gpus > 0)) {
    DSA_CHECK_CUDA(cudaSetDevice(dsa::comm::choose_gpu(world.local_rank(), world.local_size(), gpus, world.host())));
    DSA_CHECK_CUDA(cudaStreamCreate(&dsa::comm::g_stream));
    nccl = std::make_unique<dsa::comm::NcclComm>(world);
    dsa::comm::g_nccl = nccl.get();
    if (world.is_root()) std::printf("NCCL gather tests on %d ranks, %s\n", world.size(), dsa::comm::NcclComm::library_version().c_str());
  } else if (world.is_root()) {
    std::printf("SKIPPED: some rank sees no GPU; the NCCL gather tests run on the GPU machine\n");
  }
  if (!world.is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  nccl.reset();
  return worst == 0 ? 0 : 1;
}
