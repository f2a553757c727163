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
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(rows * cluster), 1, 1);
  config.blockDim = dim3(kTopkThreads, 1, 1);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attrs[2];
  attrs[0].id = cudaLaunchAttributeClusterDimension;
  attrs[0].val.clusterDim.x = static_cast<unsigned>(cluster);
  attrs[0].val.clusterDim.y = 1;
  attrs[0].val.clusterDim.z = 1;
  attrs[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attrs[1].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attrs;
  config.numAttrs = after_scores ? 2 : 1;
  DSA_CHECK_CUDA(cudaLaunchKernelEx(&config, kernel, args));
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
