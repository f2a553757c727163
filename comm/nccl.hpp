// One NCCL communicator over the MPI world, and the gather of batch rows into rank 0's device
// buffers with it. GPU ranks gather through here; the CPU backend gathers through MPI
// (gather.hpp). Built only with CUDA and NCCL (DSA_HAVE_NCCL).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/world.hpp"

namespace dsa::comm {

// One result array of a batch: `row_bytes` per row, `send` this rank's rows, `recv` rank 0's
// buffer for the whole batch (device memory on both sides).
struct RowArray {
  const void* send = nullptr;
  void* recv = nullptr;
  size_t row_bytes = 0;
};

// One piece of a rank's slice in a streamed gather: rows [row, row + rows) of rank `rank`'s
// slice (its `send` arrays), landing in rank 0's `recv` arrays at batch row `at`.
struct RowPiece {
  int rank = 0;
  int64_t row = 0, rows = 0, at = 0;
};

class NcclComm {
 public:
  // Collective over every rank of `world`: rank 0 makes the unique id, MPI broadcasts it. Each
  // rank's current CUDA device must already be its own GPU.
  explicit NcclComm(const World& world);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // The same contract as gather_rows (gather.hpp), for several arrays at once, on device
  // memory: active rank r > 0 sends its rows [cuts[r], cuts[r+1]) of each array straight to
  // rank 0's `recv` at row cuts[r] - cuts[0]; rank 0's own rows are already in place. One NCCL
  // group of point-to-point transfers enqueued on `stream` (a cudaStream_t); returns when they
  // are done. Idle ranks (r >= cuts.size() - 1) return at once: they take no part.
  void gather_rows(const std::vector<RowArray>& arrays, const std::vector<int64_t>& cuts, void* stream) const;

  // The same gather streamed piece by piece, for pieces that become ready one after another
  // (a slice computed in pieces). Each call is one NCCL group enqueued on the comm's own
  // stream (highest priority, so its transfers take SMs as soon as they free) after `after`
  // (a cudaEvent_t of this rank's device; null: no wait), and returns at once. A rank > 0
  // sends its `pieces` (those of its own rank); rank 0 receives them (pieces of other ranks).
  // Rank 0 and each sender must enqueue every sender's pieces in the same order; one group on
  // rank 0 may hold pieces of several senders. wait_pieces() returns when every group enqueued
  // so far is done; with `device_seconds`, it also says how long this GPU took for them, from
  // the first group's start (before its `after`) to the last one's end.
  // Returns an event (a cudaEvent_t) that completes once this group is done (null where the
  // pieces were empty): wait on it at once (cudaStreamWaitEvent takes its state when called),
  // since the next call records it again.
  void* gather_pieces(const std::vector<RowArray>& arrays, const std::vector<RowPiece>& pieces, void* after);
  void wait_pieces(double* device_seconds = nullptr);

  // "NCCL 2.28.3".
  static std::string library_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
};

}  // namespace dsa::comm
