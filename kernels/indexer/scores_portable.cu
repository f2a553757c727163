// The portable (mma.sync, sm_89+) specialisation of the indexer scores kernel.
#include "common/error.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda::idx {

template __global__ void indexer_scores_kernel<kMmaPortable, kScoreGroups>(ScoresArgs);

void launch_scores_portable(const ScoresArgs& args, int grid, size_t smem_bytes, cudaStream_t stream) {
  auto kernel = &indexer_scores_kernel<kMmaPortable, kScoreGroups>;
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), 0, smem_bytes);
  kernel<<<grid, scores_threads(kScoreGroups), smem_bytes, stream>>>(args);
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
