// Plain parameter structs for the two operators (SPEC §1). The same struct feeds the CPU
// reference (host pointers) and the CUDA launchers (device pointers). Row-major throughout.
#pragma once

#include <cstdint>

#include "kernels/shapes.hpp"

namespace dsa {

struct IndexerParams {
  const uint8_t* index_k = nullptr;      // [num_pages, 8448]: 64x128 e4m3, then 64 float32 scales
  int64_t num_pages = 0;
  const uint8_t* q_index = nullptr;      // [rows, 64, 128] e4m3
  const float* weights = nullptr;        // [rows, 64]
  const int32_t* seq_lens = nullptr;     // [rows], 0 <= seq_len <= max_num_pages * 64
  const int32_t* block_table = nullptr;  // [rows, max_num_pages] page ids; past ceil(seq_len/64) ignored
  int64_t max_num_pages = 0;             // row stride of block_table
  int64_t rows = 0;
  int32_t max_seq_len = 0;               // max over seq_lens (host-known; sizes grids and scratch)
  int32_t* topk_indices = nullptr;       // [rows, 2048] out: global token ids, -1 padded
  // Optional, host-known: sum over the rows with seq_len > 2048 of ceil(seq_len / 64), the pages
  // the scores must read; -1 = unknown (taken as rows x ceil(max_seq_len / 64)). Only steers how
  // the CUDA launcher spreads the work (never the result).
  int64_t scored_pages = -1;
};

struct AttentionParams {
  const uint16_t* q_nope = nullptr;          // [rows, 16, 512] bf16
  const uint16_t* q_pe = nullptr;            // [rows, 16, 64] bf16
  const uint16_t* ckv = nullptr;             // [num_pages, 64, 512] bf16 (also V)
  const uint16_t* kpe = nullptr;             // [num_pages, 64, 64] bf16
  int64_t num_pages = 0;
  const int32_t* sparse_indices = nullptr;   // [rows, 2048] global token ids, -1 = unused
  int64_t rows = 0;
  float sm_scale = 0.f;
  uint16_t* output = nullptr;                // [rows, 16, 512] bf16 out
  float* lse = nullptr;                      // [rows, 16] out, log2(sum exp(logit)); -inf if no id
};

}  // namespace dsa
