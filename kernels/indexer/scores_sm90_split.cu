// The Hopper (wgmma, sm_90a) specialisation of the indexer scores kernel on fp8 operands with
// each k-step of 32 accumulated on its own and the four partial sums added in fp32 (an
// evaluation path: see IndexerScoresPath::kWgmmaSplit). Built for every architecture; its body
// traps outside sm_90a, and the launcher picks it only on sm_90 devices.
#include "common/error.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda::idx {

template __global__ void indexer_scores_kernel<kMmaWgmmaSplit, kScoreGroups>(ScoresArgs);

void launch_scores_wgmma_split(const ScoresArgs& args, int grid, size_t smem_bytes, cudaStream_t stream) {
  auto kernel = &indexer_scores_kernel<kMmaWgmmaSplit, kScoreGroups>;
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), 5, smem_bytes);
  kernel<<<grid, scores_threads(kScoreGroups), smem_bytes, stream>>>(args);
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
