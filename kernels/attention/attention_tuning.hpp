// Internal knobs of the CUDA attention launcher, for the benchmark's variant sweep and the GPU
// tests (which force every split count). dsa::cuda::attention() uses the defaults.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/params.hpp"

namespace dsa::cuda {

struct AttentionTuning {
  int stages = 0;  // pipeline depth (4 or 5); 0 = default
  int splits = 0;  // blocks (one cluster) per row: 1, 2, 4, 8 or 16; 0 = chosen from rows and SMs
  int exact_p = -1;  // 1: P as bf16 hi + lo (default), 0: P rounded to bf16; -1 = default
  // Diagnostics: per-block phase stamps, attn::kTraceSlots per block (see sparse_mla_params.hpp).
  unsigned long long* trace = nullptr;
};

// What a call over `rows` rows would launch on the current device.
struct AttentionPlan {
  int stages = 0;
  int splits = 0;
  bool exact_p = true;
  int64_t blocks = 0;
  size_t smem_bytes = 0;
  int max_splits = 0;  // largest cluster the device co-schedules for this kernel
};
AttentionPlan attention_plan(int64_t rows, const AttentionTuning& tuning = {});

void attention_tuned(const AttentionParams& p, const AttentionTuning& tuning, cudaStream_t stream);

}  // namespace dsa::cuda
