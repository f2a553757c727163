#include "comm/nccl.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>

#include "common/error.hpp"

namespace dsa::comm {

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
};

NcclComm::NcclComm(const World& world) : impl_(std::make_unique<Impl>()), rank_(world.rank()), size_(world.size()) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (world.is_root()) DSA_CHECK_NCCL(ncclGetUniqueId(&id));
  DSA_CHECK_MPI(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, world.comm()));
  DSA_CHECK_NCCL(ncclCommInitRank(&impl_->comm, size_, id, rank_));
}

NcclComm::~NcclComm() {
  if (impl_ && impl_->comm) ncclCommDestroy(impl_->comm);
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

std::string NcclComm::library_version() {
  int v = 0;
  DSA_CHECK_NCCL(ncclGetVersion(&v));
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace dsa::comm
