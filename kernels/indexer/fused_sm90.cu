// The fused scores + top-k kernel of the indexer (fused.cuh) with a cluster per row, and its
// cluster launch. Built for every architecture; its body traps outside sm_90a, and the launcher
// picks it only on sm_90.
#include <utility>

#include "common/error.hpp"
#include "kernels/indexer/launch.cuh"

namespace dsa::cuda::idx {

template __global__ void indexer_fused_kernel<kFusedGroups, false>(FusedArgs);

int fused_max_active_clusters(int cluster, size_t smem_bytes) {
  static OccupancyCache<std::pair<int, size_t>> cache;
  return cache.get({cluster, smem_bytes}, [&](int) {
    ensure_smem_limit(reinterpret_cast<const void*>(&indexer_fused_kernel<kFusedGroups, false>), 7, smem_bytes);
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t config = row_cluster_config(1, cluster, kFusedThreads, smem_bytes, nullptr, &attr);
    int clusters = 0;
    DSA_CHECK_CUDA(cudaOccupancyMaxActiveClusters(&clusters, &indexer_fused_kernel<kFusedGroups, false>, &config));
    return clusters;
  });
}

void launch_fused(const FusedArgs& args, int64_t rows, int cluster, size_t smem_bytes, cudaStream_t stream) {
  ensure_smem_limit(reinterpret_cast<const void*>(&indexer_fused_kernel<kFusedGroups, false>), 7, smem_bytes);
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t config = row_cluster_config(rows, cluster, kFusedThreads, smem_bytes, stream, &attr);
  DSA_CHECK_CUDA(cudaLaunchKernelEx(&config, &indexer_fused_kernel<kFusedGroups, false>, args));
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::cuda::idx
