// The Hopper (wgmma, sm_90a) specialisation of the indexer scores kernel that converts the fp8
// operands to f16 and accumulates in fp32 (precise): three consumer warpgroups by default, or two
// software-pipelined ones (IndexerRunOptions::scores_groups = 2). Built for every architecture; its body
// traps outside sm_90a, and the launcher picks it only on sm_90 devices.
#include "common/error.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda::idx {

template __global__ void indexer_scores_kernel<kMmaWgmmaF16, kScoreGroupsF16>(ScoresArgs);
template __global__ void indexer_scores_kernel<kMmaWgmmaF16, kScoreGroups>(ScoresArgs);

void launch_scores_wgmma_f16(const ScoresArgs& args, int groups, int grid, size_t smem_bytes, cudaStream_t stream) {
  if (groups == kScoreGroups) {  // two groups, each software pipelined (comparison variant)
    auto kernel = &indexer_scores_kernel<kMmaWgmmaF16, kScoreGroups>;
    ensure_smem_limit(reinterpret_cast<const void*>(kernel), 6, smem_bytes);
    kernel<<<grid, scores_threads(kScoreGroups), smem_bytes, stream>>>(args);
  } else {
    auto kernel = &indexer_scores_kernel<kMmaWgmmaF16, kScoreGroupsF16>;
    ensure_smem_limit(reinterpret_cast<const void*>(kernel), 4, smem_bytes);
    kernel<<<grid, scores_threads(kScoreGroupsF16), smem_bytes, stream>>>(args);
  }
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
