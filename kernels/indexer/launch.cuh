// Kernel launchers of the indexer, one per compiled specialisation (scores_portable.cu,
// scores_sm90*.cu, topk.cu, fused_sm90.cu), called by indexer.cu. Each sets the shared-memory attribute it needs,
// launches on `stream` and checks the launch.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

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

// Raises a kernel's dynamic shared-memory limit to `bytes` on the current device (cached).
void ensure_smem_limit(const void* kernel, int slot, size_t bytes);

}  // namespace dsa::cuda::idx
