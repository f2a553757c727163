// Kernel launchers of the indexer, one per compiled specialisation (scores_portable.cu,
// scores_sm90*.cu, topk.cu, fused_sm90.cu), called by indexer.cu. Each sets the shared-memory
// attribute it needs, launches on `stream` and checks the launch.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

#include <cuda_runtime.h>

#include "common/error.hpp"
#include "kernels/indexer/fused.cuh"
#include "kernels/indexer/scores.cuh"
#include "kernels/indexer/topk.cuh"

namespace dsa::cuda::idx {

inline constexpr int kScoreGroups = 2;     // consumer warpgroups per scores block
inline constexpr int kScoreGroupsF16 = 3;  // the same for the f16 path (latency-bound: more groups)
inline constexpr int kMaxScoreGroups = 3;  // shared memory is sized for this many q tiles

void launch_scores_portable(const ScoresArgs& args, int grid, size_t smem_bytes, cudaStream_t stream);
void launch_scores_wgmma(const ScoresArgs& args, int grid, size_t smem_bytes, cudaStream_t stream);
void launch_scores_wgmma_f16(const ScoresArgs& args, int groups, int grid, size_t smem_bytes, cudaStream_t stream);
void launch_scores_wgmma_split(const ScoresArgs& args, int grid, size_t smem_bytes, cudaStream_t stream);

// grid = rows * cluster blocks, clusters of `cluster` blocks (1..8) along x. `after_scores`:
// launched as the programmatic dependent of the scores kernel just before it in the stream.
void launch_topk(const TopkArgs& args, int64_t rows, int cluster, bool smem_keys, size_t smem_bytes,
                 bool after_scores, cudaStream_t stream);

// The fused scores + top-k kernel (fused.cuh): grid = rows * cluster blocks in clusters of
// `cluster` (1..8) along x.
void launch_fused(const FusedArgs& args, int64_t rows, int cluster, size_t smem_bytes, cudaStream_t stream);
// How many clusters of the fused kernel the device runs at once with this shared memory.
int fused_max_active_clusters(int cluster, size_t smem_bytes);
// The fused kernel in row groups of args.group_blocks blocks per row, no clusters, as a
// cooperative launch (grid = rows * group_blocks, every block resident at once).
void launch_fused_group(const FusedArgs& args, int64_t rows, size_t smem_bytes, cudaStream_t stream);
// How many blocks of the fused kernel the device runs at once with this shared memory.
int fused_max_resident_blocks(size_t smem_bytes);

// The launch of one cluster of `cluster` blocks (1..8, along x) per row, `rows` rows, `threads`
// per block (the top-k and the fused kernel). attrs[0] is set to the cluster dimension and is the
// config's one attribute; a caller may fill attrs[1] and raise numAttrs.
inline cudaLaunchConfig_t row_cluster_config(int64_t rows, int cluster, int threads, size_t smem_bytes,
                                             cudaStream_t stream, cudaLaunchAttribute* attrs) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(rows * cluster), 1, 1);
  config.blockDim = dim3(static_cast<unsigned>(threads), 1, 1);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  attrs[0].id = cudaLaunchAttributeClusterDimension;
  attrs[0].val.clusterDim.x = static_cast<unsigned>(cluster);
  attrs[0].val.clusterDim.y = 1;
  attrs[0].val.clusterDim.z = 1;
  config.attrs = attrs;
  config.numAttrs = 1;
  return config;
}

// An occupancy query's answer per device and `Key`, computed once per process (the planner asks the
// same questions on every call). query(device) runs under the cache's lock.
template <typename Key>
class OccupancyCache {
 public:
  template <typename Query>
  int get(const Key& key, Query&& query) {
    int dev = 0;
    DSA_CHECK_CUDA(cudaGetDevice(&dev));
    std::lock_guard<std::mutex> lock(mutex_);
    const std::pair<int, Key> k(dev, key);
    auto it = values_.find(k);
    if (it == values_.end()) it = values_.emplace(k, query(dev)).first;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<int, Key>, int> values_;
};

// Raises a kernel's dynamic shared-memory limit to `bytes` on the current device (cached).
void ensure_smem_limit(const void* kernel, int slot, size_t bytes);

}  // namespace dsa::cuda::idx
