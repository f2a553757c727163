// Small random operator inputs for tests of the CPU reference (and of GPU kernels against it):
// each case owns its host buffers and hands out the plain params struct that points into them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/params.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/shapes.hpp"

namespace dsa::testing {

// Quantises one index-K token as DeepGEMM packs it: scale = amax / 448, fp8 = e4m3(x / scale).
inline void quantize_index_token(const float* x, uint8_t* fp8, float* scale) {
  float amax = 0.f;
  for (int d = 0; d < kIndexHeadDim; ++d) amax = std::max(amax, std::fabs(x[d]));
  *scale = std::max(amax, 1e-4f) / 448.f;
  for (int d = 0; d < kIndexHeadDim; ++d) fp8[d] = ref::float_to_e4m3(x[d] / *scale);
}

inline void store_le_f32(uint8_t* dst, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<uint8_t>(u >> (8 * i));
}

struct IndexerCase {
  int64_t num_pages = 0;
  int64_t max_num_pages = 0;
  std::vector<uint8_t> index_k;      // [num_pages, 8448]
  std::vector<uint8_t> q_index;      // [rows, 64, 128] e4m3
  std::vector<float> weights;        // [rows, 64]
  std::vector<int32_t> seq_lens;     // [rows]
  std::vector<int32_t> block_table;  // [rows, max_num_pages]
  std::vector<int32_t> topk;         // [rows, 2048], preset to a poison value

  int64_t rows() const { return static_cast<int64_t>(seq_lens.size()); }
  IndexerParams params() {
    IndexerParams p;
    p.index_k = index_k.data();
    p.num_pages = num_pages;
    p.q_index = q_index.data();
    p.weights = weights.data();
    p.seq_lens = seq_lens.data();
    p.block_table = block_table.data();
    p.max_num_pages = max_num_pages;
    p.rows = rows();
    p.max_seq_len = seq_lens.empty() ? 0 : *std::max_element(seq_lens.begin(), seq_lens.end());
    p.topk_indices = topk.data();
    return p;
  }
  // Token `offset` of page `page`: its 128 e4m3 codes and its scale.
  uint8_t* token_fp8(int64_t page, int offset) { return &index_k[page * kIndexPageBytes + offset * kIndexHeadDim]; }
  void set_scale(int64_t page, int offset, float s) {
    store_le_f32(&index_k[page * kIndexPageBytes + kIndexPageFp8Bytes + 4 * offset], s);
  }
};

// Random case: N(0,1) tokens quantised per token, N(0,1) queries in e4m3, N(0,1) weights. Each
// row's block table is a random choice of distinct pages in random order, followed by garbage
// (negative and out-of-range page ids) that the operator must ignore.
inline IndexerCase make_indexer_case(const std::vector<int32_t>& seq_lens, int64_t num_pages, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  IndexerCase c;
  c.num_pages = num_pages;
  c.seq_lens = seq_lens;
  int64_t need = 0;
  for (const int32_t n : seq_lens) need = std::max(need, pages_for(n));
  c.max_num_pages = need + 3;
  c.index_k.resize(static_cast<size_t>(num_pages * kIndexPageBytes));
  float x[kIndexHeadDim];
  for (int64_t page = 0; page < num_pages; ++page)
    for (int t = 0; t < kPageSize; ++t) {
      for (float& v : x) v = normal(rng);
      float scale;
      quantize_index_token(x, c.token_fp8(page, t), &scale);
      c.set_scale(page, t, scale);
    }
  const size_t rows = seq_lens.size();
  c.q_index.resize(rows * kIndexHeads * kIndexHeadDim);
  for (auto& q : c.q_index) q = ref::float_to_e4m3(normal(rng));
  c.weights.resize(rows * kIndexHeads);
  for (auto& w : c.weights) w = normal(rng);
  c.block_table.resize(static_cast<size_t>(static_cast<int64_t>(rows) * c.max_num_pages));
  std::vector<int32_t> pages(static_cast<size_t>(num_pages));
  std::iota(pages.begin(), pages.end(), 0);
  const int32_t garbage[] = {-1, -7, static_cast<int32_t>(num_pages), 1 << 30};
  for (size_t r = 0; r < rows; ++r) {
    std::shuffle(pages.begin(), pages.end(), rng);
    int32_t* bt = &c.block_table[r * static_cast<size_t>(c.max_num_pages)];
    const int64_t used = pages_for(seq_lens[r]);
    for (int64_t i = 0; i < c.max_num_pages; ++i)
      bt[i] = i < used ? pages[static_cast<size_t>(i)] : garbage[static_cast<size_t>(i % 4)];
  }
  c.topk.assign(rows * kTopK, -12345);
  return c;
}

struct AttentionCase {
  int64_t num_pages = 0;
  std::vector<uint16_t> q_nope;          // [rows, 16, 512]
  std::vector<uint16_t> q_pe;            // [rows, 16, 64]
  std::vector<uint16_t> ckv;             // [num_pages, 64, 512]
  std::vector<uint16_t> kpe;             // [num_pages, 64, 64]
  std::vector<int32_t> sparse_indices;   // [rows, 2048]
  std::vector<uint16_t> output;          // [rows, 16, 512]
  std::vector<float> lse;                // [rows, 16]
  float sm_scale = 0.f;

  int64_t rows() const { return static_cast<int64_t>(sparse_indices.size() / kTopK); }
  AttentionParams params() {
    AttentionParams p;
    p.q_nope = q_nope.data();
    p.q_pe = q_pe.data();
    p.ckv = ckv.data();
    p.kpe = kpe.data();
    p.num_pages = num_pages;
    p.sparse_indices = sparse_indices.data();
    p.rows = rows();
    p.sm_scale = sm_scale;
    p.output = output.data();
    p.lse = lse.data();
    return p;
  }
};

// Random case: N(0,1) bf16 queries and caches; row r has valid_counts[r] distinct random ids
// scattered over random slots of its 2048, the other slots -1. sm_scale = 1/sqrt(576) unless set.
inline AttentionCase make_attention_case(const std::vector<int>& valid_counts, int64_t num_pages, uint32_t seed,
                                         float sm_scale = 0.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  AttentionCase c;
  c.num_pages = num_pages;
  c.sm_scale = sm_scale != 0.f ? sm_scale : 1.f / std::sqrt(static_cast<float>(kCkvDim + kKpeDim));
  const size_t rows = valid_counts.size();
  auto fill = [&](std::vector<uint16_t>& v, size_t n) {
    v.resize(n);
    for (auto& x : v) x = ref::float_to_bf16(normal(rng));
  };
  fill(c.q_nope, rows * kHeads * kCkvDim);
  fill(c.q_pe, rows * kHeads * kKpeDim);
  fill(c.ckv, static_cast<size_t>(num_pages) * kPageSize * kCkvDim);
  fill(c.kpe, static_cast<size_t>(num_pages) * kPageSize * kKpeDim);
  c.sparse_indices.assign(rows * kTopK, -1);
  std::vector<int32_t> tokens(static_cast<size_t>(num_pages * kPageSize));
  std::iota(tokens.begin(), tokens.end(), 0);
  std::vector<int> slots(kTopK);
  std::iota(slots.begin(), slots.end(), 0);
  for (size_t r = 0; r < rows; ++r) {
    std::shuffle(tokens.begin(), tokens.end(), rng);
    std::shuffle(slots.begin(), slots.end(), rng);
    for (int i = 0; i < valid_counts[r]; ++i)
      c.sparse_indices[r * kTopK + static_cast<size_t>(slots[static_cast<size_t>(i)])] = tokens[static_cast<size_t>(i)];
  }
  c.output.assign(rows * kHeads * kCkvDim, 0xBEEF);
  c.lse.assign(rows * kHeads, 12345.f);
  return c;
}

}  // namespace dsa::testing
