// NCCL gather of batch rows into rank 0's device buffers (comm/nccl.hpp). Runs under mpirun,
// one rank per GPU, on the GPU machine; skips visibly where a rank sees no GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "comm/gpu_binding.hpp"
#include "comm/nccl.hpp"
#include "comm/world.hpp"
#include "common/error.hpp"

namespace dsa::comm {
namespace {

const World* g_world = nullptr;
const NcclComm* g_nccl = nullptr;
NcclComm* g_nccl_mut = nullptr;  // the same, for the streamed gather
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

// The streamed gather: each sender's slice in pieces, each piece sent after an event that
// completes only once the piece's rows are in place (a host function sleeps before they are
// copied in, so a send that did not wait would carry stale rows); rank 0 posts group q (piece q
// of every sender) after an event of its own, then the groups of longer slices with none.
TEST(NcclGather, StreamedPiecesWaitForTheirEvents) {
  REQUIRE_NCCL();
  const World& w = *g_world;
  const int n = w.size(), me = w.rank();
  const int row_len = 4096 + 16;  // an attention row's output and lse, in int32s
  // Rank r's slice: 200 + 150 r rows, in min(r + 1, 3) pieces of nearly equal rows.
  auto rows_of = [](int r) { return int64_t(200 + 150 * r); };
  auto cuts_of = [&](int r) {
    const int64_t pieces = std::min(r + 1, 3), rows = rows_of(r);
    std::vector<int64_t> c;
    for (int64_t p = 0; p <= pieces; ++p) c.push_back(rows * p / pieces);
    return c;
  };
  std::vector<int64_t> first = {0};
  for (int r = 0; r < n; ++r) first.push_back(first.back() + rows_of(r));
  const int64_t held = me == 0 ? first.back() : rows_of(me);
  std::vector<int32_t> host(size_t(held) * row_len, -7);
  void* dev = nullptr;
  DSA_CHECK_CUDA(cudaMalloc(&dev, host.size() * sizeof(int32_t)));
  DSA_CHECK_CUDA(cudaMemcpy(dev, host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  const std::vector<RowArray> arrays = {{dev, dev, row_len * sizeof(int32_t)}};
  for (int64_t r = 0; r < rows_of(me); ++r)
    for (int i = 0; i < row_len; ++i) host[size_t(r) * row_len + i] = value(first[size_t(me)] + r, i, 0);
  int32_t* pinned = nullptr;  // page-locked, so the copies below stay asynchronous
  DSA_CHECK_CUDA(cudaMallocHost(reinterpret_cast<void**>(&pinned), host.size() * sizeof(int32_t)));
  std::copy(host.begin(), host.end(), pinned);
  cudaStream_t work = nullptr;
  DSA_CHECK_CUDA(cudaStreamCreateWithFlags(&work, cudaStreamNonBlocking));
  const std::vector<int64_t> mine = cuts_of(me);
  std::vector<cudaEvent_t> ready(mine.size() - 1);
  int groups = 0;
  for (int r = 1; r < n; ++r) groups = std::max(groups, int(cuts_of(r).size()) - 1);
  int posted = 0;
  // Rank 0 copies each received group to host memory on a stream of its own, after the event
  // gather_pieces returns: what it copies must already be the sent rows.
  int32_t* landed = nullptr;
  DSA_CHECK_CUDA(cudaMallocHost(reinterpret_cast<void**>(&landed), host.size() * sizeof(int32_t)));
  std::fill(landed, landed + host.size(), -5);
  cudaStream_t down = nullptr;
  DSA_CHECK_CUDA(cudaStreamCreateWithFlags(&down, cudaStreamNonBlocking));
  auto receive = [&](int q, void* after) {
    std::vector<RowPiece> group;
    for (int r = 1; r < n; ++r) {
      const std::vector<int64_t> c = cuts_of(r);
      if (q + 1 < int(c.size())) group.push_back({r, c[size_t(q)], c[size_t(q) + 1] - c[size_t(q)], first[size_t(r)] + c[size_t(q)]});
    }
    void* done = g_nccl_mut->gather_pieces(arrays, group, after);
    ASSERT_NE(done, nullptr);
    DSA_CHECK_CUDA(cudaStreamWaitEvent(down, static_cast<cudaEvent_t>(done), 0));
    for (const RowPiece& p : group) {
      const size_t off = size_t(p.at) * row_len;
      DSA_CHECK_CUDA(cudaMemcpyAsync(landed + off, static_cast<int32_t*>(dev) + off, size_t(p.rows) * row_len * sizeof(int32_t),
                                     cudaMemcpyDeviceToHost, down));
    }
    ++posted;
  };
  for (size_t p = 0; p + 1 < mine.size(); ++p) {
    DSA_CHECK_CUDA(cudaLaunchHostFunc(work, [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(20)); },
                                      nullptr));
    const size_t off = size_t(mine[p]) * row_len, count = size_t(mine[p + 1] - mine[p]) * row_len;
    DSA_CHECK_CUDA(cudaMemcpyAsync(static_cast<int32_t*>(dev) + off, pinned + off, count * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, work));
    DSA_CHECK_CUDA(cudaEventCreateWithFlags(&ready[p], cudaEventDisableTiming));
    DSA_CHECK_CUDA(cudaEventRecord(ready[p], work));
    if (me > 0) {
      g_nccl_mut->gather_pieces(arrays, {{me, mine[p], mine[p + 1] - mine[p], first[size_t(me)] + mine[p]}}, ready[p]);
    } else if (int(p) < groups) {
      receive(int(p), ready[p]);
    }
  }
  while (me == 0 && posted < groups) receive(posted, nullptr);
  double device_seconds = 0;
  g_nccl_mut->wait_pieces(&device_seconds);
  EXPECT_GT(device_seconds, 0.015) << "the GPU time from the first group start covers most of the first 20 ms hold";
  DSA_CHECK_CUDA(cudaStreamSynchronize(work));
  DSA_CHECK_CUDA(cudaStreamSynchronize(down));
  if (me == 0) {
    for (int64_t r = rows_of(0); r < held; ++r)  // every other rank's rows, copied after their group's event
      for (int i = 0; i < row_len; i += 97) ASSERT_EQ(landed[size_t(r) * row_len + i], value(r, i, 0)) << "row " << r;
  }
  cudaStreamDestroy(down);
  DSA_CHECK_CUDA(cudaFreeHost(landed));
  if (me == 0) {
    std::vector<int32_t> got(host.size());
    DSA_CHECK_CUDA(cudaMemcpy(got.data(), dev, got.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
    for (int64_t r = 0; r < held; ++r)
      for (int i = 0; i < row_len; i += 97) ASSERT_EQ(got[size_t(r) * row_len + i], value(r, i, 0)) << "row " << r;
  }
  for (cudaEvent_t e : ready) cudaEventDestroy(e);
  cudaStreamDestroy(work);
  DSA_CHECK_CUDA(cudaFreeHost(pinned));
  DSA_CHECK_CUDA(cudaFree(dev));
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
    dsa::comm::g_nccl_mut = nccl.get();
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
