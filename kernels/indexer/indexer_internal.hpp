// Variants of the CUDA indexer for tests and benchmarks: force one scores path, or run one phase
// alone (scores only, to time the top-k share; top-k only, over scores already in the workspace).
// dsa::cuda::indexer() is indexer_run() with the defaults.
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "kernels/params.hpp"

namespace dsa::cuda {

enum class IndexerScoresPath {
  kAuto,       // the default for the device (see indexer.cu: kDefaultSm90Path)
  kPortable,   // mma.sync m16n8k32 e4m3 (sm_89+); fp32 accumulation
  kWgmma,      // wgmma m64n64k32 e4m3 (sm_90a only); the tensor cores' reduced-precision
               // accumulation: about 1e-2 of the products' magnitude, enough to fail the SPEC
               // top-k criterion on about 1 long row in 1000 (measured)
  kWgmmaF16,   // wgmma m64n64k16 f16 on fp8 converted in registers (sm_90a only); fp32
               // accumulation, 3 consumer warpgroups (2 with scores_groups = 2). The sm_90 default
  kWgmmaSplit, // wgmma m64n64k32 e4m3, each k-step of 32 into a fresh accumulator (one commit
               // group and wait each), the four partial sums added in fp32 (sm_90a only):
               // evaluation path, about 3x smaller errors than kWgmma but not SPEC-exact (the
               // reduced-precision sum inside each k-step remains) and slower
};

struct IndexerRunOptions {
  IndexerScoresPath path = IndexerScoresPath::kAuto;
  bool run_scores = true;
  bool run_topk = true;
  int stages = 0;            // scores pipeline depth in pages (0 = the default; rounded up to a multiple of 6)
  int scores_groups = 0;     // wgmma-f16 consumer warpgroups: 0 = the default (3), 2 = two
                             // software-pipelined groups (comparison variant)
  int topk_cluster = 0;      // blocks per row in the top-k (1..8; 0 = the launcher's choice)
  int topk_variant = -1;     // -1 = the default; 0 = gather the threshold bin's keys in one block;
                             // 1 = resolve it with cluster-summed histograms (same output)
  int fused = -1;            // scores and top-k in one kernel with a cluster per row (sm_90, wgmma-f16):
                             // -1 = where the launcher expects it to be faster (the rows fit the GPU at
                             // once and are about even), 0 = never, 1 = whenever the shape allows it
                             // (also in several waves; with topk_cluster > 0, that cluster size)
  int fused_group = -1;      // the fused kernel in row groups (blocks of a row exchanging through the
                             // workspace, no cluster; sm_90, wgmma-f16): -1 = where the launcher expects
                             // it to pay (more blocks per row than a cluster gives), 0 = never, N >= 2 =
                             // N blocks per row, or fewer so that every block runs at once
  bool pdl = true;           // launch top-k as the programmatic dependent of the scores kernel
  bool stream_only = false;  // diagnostic: the scores kernel streams the pages and computes nothing
  long long* topk_debug = nullptr;    // diagnostic: device buffer of 4 x 12 clock64 stamps (top-k phases)
  long long* scores_debug = nullptr;  // diagnostic: device buffer of 4 x 8 clock64 stamps (scores start-up)
  // diagnostic: device buffer of 4 values per block (globaltimer ns at entry, work done, exit;
  // SM id) of the fused kernel, or else of the first scores kernel (IndexerLaunchShape's grid)
  unsigned long long* timeline = nullptr;
};

void indexer_run(const IndexerParams& p, void* workspace, size_t workspace_bytes, cudaStream_t stream,
                 const IndexerRunOptions& options);

// The path kAuto resolves to on the current device.
IndexerScoresPath indexer_default_path();
const char* indexer_path_name(IndexerScoresPath path);

// How the launcher splits a call (for reports): scores grid blocks, top-k cluster size, whether
// top-k keys live in shared memory.
struct IndexerLaunchShape {
  int fused_cluster = 0;  // > 0: one fused scores + top-k kernel, this many blocks per row (fields below unused)
  bool fused_group = false;  // the fused kernel's blocks of a row form a row group (no cluster)
  int fused_stages = 0;
  int scores_grid = 0;
  int scores_stages = 0;
  int topk_cluster = 0;
  bool topk_smem_keys = false;
};
IndexerLaunchShape indexer_launch_shape(const IndexerParams& p, const IndexerRunOptions& options = {});

}  // namespace dsa::cuda
