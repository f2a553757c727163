// CUDA indexer launcher (SPEC §1.1): FP8 tensor-core scores fused with the weighted-ReLU head
// reduction and the per-token scale, then top-2048 selection on the GPU. All pointers in
// IndexerParams are device pointers. No host synchronisation, no allocation inside a call.
// Deterministic: the same row gives the same output in any call (whatever other rows share the
// call, however many rows it has; for a given scores path). Each row's ids are the 2048 largest
// scores with ties at the threshold broken by the lowest position s (0..seq_len-1), written in
// ascending position order, then -1 padding (see topk.cuh).
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
