// CUDA sparse MLA attention launcher (SPEC §1.2). All pointers in AttentionParams are device
// pointers. No host synchronisation, no allocation inside a call.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/params.hpp"

namespace dsa::cuda {

// Scratch bytes a call over `rows` rows needs (split partials and their LSEs).
size_t attention_workspace_bytes(int64_t rows);

// Writes p.output and p.lse for every row. `workspace` holds at least attention_workspace_bytes().
void attention(const AttentionParams& p, void* workspace, size_t workspace_bytes,
               cudaStream_t stream);

}  // namespace dsa::cuda
