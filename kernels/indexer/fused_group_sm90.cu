// The fused scores + top-k kernel of the indexer (fused.cuh) in row groups (a row's blocks
// exchanging through global memory, no cluster), and its cooperative launch. Built for every
// architecture; its body traps outside sm_90a, and the launcher picks it only on sm_90.
#include "common/error.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda::idx {

template __global__ void indexer_fused_kernel<kFusedGroups, true>(FusedArgs);

int fused_max_resident_blocks(size_t smem_bytes) {
  static OccupancyCache<size_t> cache;
  return cache.get(smem_bytes, [&](int dev) {
    ensure_smem_limit(reinterpret_cast<const void*>(&indexer_fused_kernel<kFusedGroups, true>), 8, smem_bytes);
    int per_sm = 0, sms = 0;
    DSA_CHECK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, &indexer_fused_kernel<kFusedGroups, true>,
                                                                 kFusedThreads, smem_bytes));
    DSA_CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return per_sm * sms;
  });
}

void launch_fused_group(const FusedArgs& args, int64_t rows, size_t smem_bytes, cudaStream_t stream) {
  ensure_smem_limit(reinterpret_cast<const void*>(&indexer_fused_kernel<kFusedGroups, true>), 8, smem_bytes);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(rows * args.group_blocks), 1, 1);
  config.blockDim = dim3(static_cast<unsigned>(kFusedThreads), 1, 1);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  // Every block resident at once (or the launch fails): a row's blocks wait for each other.
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeCooperative;
  attr.val.cooperative = 1;
  config.attrs = &attr;
  config.numAttrs = 1;
  DSA_CHECK_CUDA(cudaLaunchKernelEx(&config, &indexer_fused_kernel<kFusedGroups, true>, args));
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
