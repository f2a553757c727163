// The top-2048 selection kernels (keys in shared memory, or re-read from global memory for rows
// too long for a cluster's shared memory) and their cluster launch.
#include "common/error.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda::idx {

template __global__ void indexer_topk_kernel<true>(TopkArgs);
template __global__ void indexer_topk_kernel<false>(TopkArgs);

void launch_topk(const TopkArgs& args, int64_t rows, int cluster, bool smem_keys, size_t smem_bytes,
                 bool after_scores, cudaStream_t stream) {
  auto kernel = smem_keys ? &indexer_topk_kernel<true> : &indexer_topk_kernel<false>;
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), smem_keys ? 2 : 3, smem_bytes);
  cudaLaunchAttribute attrs[2];
  cudaLaunchConfig_t config = row_cluster_config(rows, cluster, kTopkThreads, smem_bytes, stream, attrs);
  attrs[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attrs[1].val.programmaticStreamSerializationAllowed = 1;
  config.numAttrs = after_scores ? 2 : 1;
  DSA_CHECK_CUDA(cudaLaunchKernelEx(&config, kernel, args));
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
