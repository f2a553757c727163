// CPU reference of the DSA indexer (SPEC §1.1): the oracle every GPU indexer is checked against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/params.hpp"

namespace dsa::ref {

// score[s] for s in [0, seq_len[row]) exactly as SPEC §1.1 (float32 math).
std::vector<float> indexer_scores(const IndexerParams& p, int64_t row);
// The same into scores[0, seq_len[row]). Per head, the 128-term dot is summed in order d = 0..127
// (float32, no fused multiply-add); the weighted ReLU terms are summed in order h = 0..63.
void indexer_scores(const IndexerParams& p, int64_t row, float* scores);

// Global ids of the min(K, n) largest scores (selection, not a full sort), -1 padded to 2048.
// `token_ids` maps position s to its global id. Deterministic for the same input.
// Total order: score descending (NaN below everything, -0 == +0), then position ascending; the
// chosen ids are written in that order. For n <= 2048 every id is emitted in position order and
// `scores` is not read (it may be null).
void select_topk(const float* scores, const int32_t* token_ids, int64_t n, int32_t* out);

// Global token id of position s of `row` (block_table lookup).
int32_t token_id(const IndexerParams& p, int64_t row, int64_t s);

// All rows of p into p.topk_indices, rows spread over `threads` threads (0 = all cores).
// Rows with seq_len <= 2048 are not scored (all their tokens are the answer).
void indexer(const IndexerParams& p, int threads = 0);

// SPEC §1.1 judgement of one row of an indexer's output `got` (2048 slots), FlashInfer-Bench's
// criterion: every id other than -1 is reachable from the row's block table within seq_len, no
// id repeats, there are min(2048, seq_len) of them (the -1 slots may sit anywhere), and the
// scores at the returned ids, sorted, match the reference set's sorted scores within
// atol = rtol = 1e-2 (an element fails only if both are exceeded). Returns "" when the row
// passes, else a one-line reason that names the row.
std::string check_topk(const IndexerParams& p, int64_t row, const int32_t* got);
// The same with the row's reference scores already computed (indexer_scores(p, row), seq_len
// entries), for callers that check several outputs of one row. Not read (may be null) when
// seq_len <= 2048.
std::string check_topk(const IndexerParams& p, int64_t row, const int32_t* got, const float* ref_scores);

}  // namespace dsa::ref
