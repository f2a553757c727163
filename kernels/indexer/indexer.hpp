// CUDA indexer launcher (SPEC §1.1): FP8 tensor-core scores fused with the weighted-ReLU head
// reduction and the per-token scale, then top-2048 selection on the GPU. All pointers in
// IndexerParams are device pointers. No host synchronisation, no allocation inside a call.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/params.hpp"

namespace dsa::cuda {

// Scratch bytes a call with these sizes needs (scores, histograms, counters).
size_t indexer_workspace_bytes(int64_t rows, int32_t max_seq_len);

// Writes p.topk_indices for every row. `workspace` holds at least indexer_workspace_bytes().
void indexer(const IndexerParams& p, void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace dsa::cuda
