#include "comm/nccl.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>

#include "common/error.hpp"

namespace dsa::comm {

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // the streamed gather's
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEvent_t group_done = nullptr;  // after the latest gather_pieces group
  bool started = false;  // start recorded since the last wait_pieces
};

NcclComm::NcclComm(const World& world) : impl_(std::make_unique<Impl>()), rank_(world.rank()), size_(world.size()) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (world.is_root()) DSA_CHECK_NCCL(ncclGetUniqueId(&id));
  DSA_CHECK_MPI(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, world.comm()));
  DSA_CHECK_NCCL(ncclCommInitRank(&impl_->comm, size_, id, rank_));
  int least = 0, greatest = 0;
  DSA_CHECK_CUDA(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  DSA_CHECK_CUDA(cudaStreamCreateWithPriority(&impl_->stream, cudaStreamNonBlocking, greatest));
  DSA_CHECK_CUDA(cudaEventCreate(&impl_->start));
  DSA_CHECK_CUDA(cudaEventCreate(&impl_->stop));
  DSA_CHECK_CUDA(cudaEventCreateWithFlags(&impl_->group_done, cudaEventDisableTiming));
}

NcclComm::~NcclComm() {
  if (!impl_) return;
  if (impl_->stream) {
    cudaStreamSynchronize(impl_->stream);
    cudaStreamDestroy(impl_->stream);
  }
  if (impl_->start) cudaEventDestroy(impl_->start);
  if (impl_->stop) cudaEventDestroy(impl_->stop);
  if (impl_->group_done) cudaEventDestroy(impl_->group_done);
  if (impl_->comm) ncclCommDestroy(impl_->comm);
}

void NcclComm::gather_rows(const std::vector<RowArray>& arrays, const std::vector<int64_t>& cuts,
                           void* stream) const {
  const int active = static_cast<int>(cuts.size()) - 1;
  DSA_REQUIRE(active >= 1 && active <= size_, "nccl gather: ", active, " active ranks of ", size_);
  if (active == 1 || rank_ >= active) return;  // nothing moves, or this rank has no part
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const auto rows_of = [&](int r) { return static_cast<size_t>(cuts[size_t(r) + 1] - cuts[size_t(r)]); };
  DSA_CHECK_NCCL(ncclGroupStart());
  for (const RowArray& a : arrays) {
    if (rank_ == 0) {
      for (int r = 1; r < active; ++r) {
        char* dst = static_cast<char*>(a.recv) + static_cast<size_t>(cuts[size_t(r)] - cuts[0]) * a.row_bytes;
        DSA_CHECK_NCCL(ncclRecv(dst, rows_of(r) * a.row_bytes, ncclChar, r, impl_->comm, s));
      }
    } else {
      DSA_CHECK_NCCL(ncclSend(a.send, rows_of(rank_) * a.row_bytes, ncclChar, 0, impl_->comm, s));
    }
  }
  DSA_CHECK_NCCL(ncclGroupEnd());
  DSA_CHECK_CUDA(cudaStreamSynchronize(s));
}

void* NcclComm::gather_pieces(const std::vector<RowArray>& arrays, const std::vector<RowPiece>& pieces, void* after) {
  if (pieces.empty()) return nullptr;
  cudaStream_t s = impl_->stream;
  if (!impl_->started) {
    DSA_CHECK_CUDA(cudaEventRecord(impl_->start, s));
    impl_->started = true;
  }
  if (after) DSA_CHECK_CUDA(cudaStreamWaitEvent(s, static_cast<cudaEvent_t>(after), 0));
  DSA_CHECK_NCCL(ncclGroupStart());
  for (const RowPiece& p : pieces) {
    DSA_REQUIRE(p.rank > 0 && p.rank < size_ && p.rows >= 0 && (rank_ == 0 || p.rank == rank_),
                "nccl gather: rank ", rank_, " given a piece of rank ", p.rank);
    if (p.rows == 0) continue;
    for (const RowArray& a : arrays) {
      const size_t bytes = static_cast<size_t>(p.rows) * a.row_bytes;
      if (rank_ == 0) {
        char* dst = static_cast<char*>(a.recv) + static_cast<size_t>(p.at) * a.row_bytes;
        DSA_CHECK_NCCL(ncclRecv(dst, bytes, ncclChar, p.rank, impl_->comm, s));
      } else {
        const char* src = static_cast<const char*>(a.send) + static_cast<size_t>(p.row) * a.row_bytes;
        DSA_CHECK_NCCL(ncclSend(src, bytes, ncclChar, 0, impl_->comm, s));
      }
    }
  }
  DSA_CHECK_NCCL(ncclGroupEnd());
  DSA_CHECK_CUDA(cudaEventRecord(impl_->group_done, s));
  return impl_->group_done;
}

void NcclComm::wait_pieces(double* device_seconds) {
  if (device_seconds) *device_seconds = 0;
  if (!impl_->started) return;  // nothing enqueued
  DSA_CHECK_CUDA(cudaEventRecord(impl_->stop, impl_->stream));
  DSA_CHECK_CUDA(cudaEventSynchronize(impl_->stop));
  impl_->started = false;
  if (device_seconds) {
    float ms = 0;
    DSA_CHECK_CUDA(cudaEventElapsedTime(&ms, impl_->start, impl_->stop));
    *device_seconds = double(ms) * 1e-3;
  }
}

std::string NcclComm::library_version() {
  int v = 0;
  DSA_CHECK_NCCL(ncclGetVersion(&v));
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace dsa::comm
