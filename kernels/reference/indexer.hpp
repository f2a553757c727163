// CPU reference of the DSA indexer (SPEC §1.1): the oracle every GPU indexer is checked against.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/params.hpp"

namespace dsa::ref {

// score[s] for s in [0, seq_len[row]) exactly as SPEC §1.1 (float32 math).
std::vector<float> indexer_scores(const IndexerParams& p, int64_t row);

// Global ids of the min(K, n) largest scores (selection, not a full sort), -1 padded to 2048.
// `token_ids` maps position s to its global id. Deterministic for the same input.
void select_topk(const float* scores, const int32_t* token_ids, int64_t n, int32_t* out);

// Global token id of position s of `row` (block_table lookup).
int32_t token_id(const IndexerParams& p, int64_t row, int64_t s);

// All rows of p into p.topk_indices, rows spread over `threads` threads (0 = all cores).
void indexer(const IndexerParams& p, int threads = 0);

}  // namespace dsa::ref
