#include "kernels/reference/indexer.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <utility>

#include "common/error.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/reference/parallel.hpp"
#include "kernels/shapes.hpp"

namespace dsa::ref {
namespace {

// A row's seq_len, checked against the block table's width.
int64_t row_seq_len(const IndexerParams& p, int64_t row) {
  DSA_REQUIRE(row >= 0 && row < p.rows, "indexer: row ", row, " out of range [0, ", p.rows, ")");
  DSA_REQUIRE(p.seq_lens != nullptr, "indexer: seq_lens is null");
  const int64_t n = p.seq_lens[row];
  DSA_REQUIRE(n >= 0 && n <= p.max_num_pages * kPageSize, "indexer: row ", row, ": seq_len ", n,
              " outside [0, ", p.max_num_pages * kPageSize, "] (max_num_pages ", p.max_num_pages, ")");
  if (n > 0) DSA_REQUIRE(p.block_table != nullptr, "indexer: block_table is null");
  return n;
}

// Page id in block-table slot `slot` of `row`, checked to be a page of the cache.
int64_t page_of(const IndexerParams& p, int64_t row, int64_t slot) {
  const int64_t page = p.block_table[row * p.max_num_pages + slot];
  DSA_REQUIRE(page >= 0 && page < p.num_pages, "indexer: row ", row, ": block_table[", slot, "] = ", page,
              " is not a page of the index cache (num_pages ", p.num_pages, ")");
  DSA_REQUIRE(page * kPageSize + (kPageSize - 1) <= INT32_MAX, "indexer: page ", page,
              " gives token ids beyond int32");
  return page;
}

// Global ids of positions [0, n) of `row`.
void row_token_ids(const IndexerParams& p, int64_t row, int64_t n, int32_t* ids) {
  for (int64_t slot = 0; slot < pages_for(n); ++slot) {
    const int64_t base = page_of(p, row, slot) * kPageSize;
    const int64_t tokens = std::min<int64_t>(kPageSize, n - slot * kPageSize);
    for (int64_t t = 0; t < tokens; ++t) ids[slot * kPageSize + t] = static_cast<int32_t>(base + t);
  }
}

float load_le_f32(const uint8_t* b) {
  const uint32_t u = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
                     (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
  return std::bit_cast<float>(u);
}

// Maps a score to an unsigned key whose order is the score's order: NaN lowest, -0 == +0.
uint32_t score_key(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0;  // NaN
  if (u == 0x80000000u) u = 0;                     // -0 -> +0
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Sort/select key of position s: larger key = preferred (score descending, position ascending).
uint64_t select_key(float score, int64_t s) {
  return (static_cast<uint64_t>(score_key(score)) << 32) | (0xFFFFFFFFull - static_cast<uint64_t>(s));
}
int64_t key_position(uint64_t key) { return static_cast<int64_t>(0xFFFFFFFFull - (key & 0xFFFFFFFFull)); }

void select_topk_impl(const float* scores, const int32_t* token_ids, int64_t n, int32_t* out,
                      std::vector<uint64_t>& keys) {
  std::fill(out, out + kTopK, -1);
  if (n <= 0) return;
  if (n <= kTopK) {
    std::copy(token_ids, token_ids + n, out);
    return;
  }
  DSA_REQUIRE(n <= INT32_MAX, "select_topk: n = ", n, " beyond int32");
  DSA_REQUIRE(scores != nullptr, "select_topk: scores are needed for n > ", kTopK);
  keys.resize(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) keys[static_cast<size_t>(s)] = select_key(scores[s], s);
  // Keys are distinct (they carry the position), so the chosen set is unique.
  std::nth_element(keys.begin(), keys.begin() + (kTopK - 1), keys.end(), std::greater<>());
  std::sort(keys.begin(), keys.begin() + kTopK, std::greater<>());
  for (int i = 0; i < kTopK; ++i) out[i] = token_ids[key_position(keys[static_cast<size_t>(i)])];
}

// max(x, 0) that lets NaN through.
float relu(float x) { return x < 0.f ? 0.f : x; }

void check_scoring_inputs(const IndexerParams& p) {
  DSA_REQUIRE(p.index_k != nullptr && p.q_index != nullptr && p.weights != nullptr,
              "indexer: index_k, q_index and weights must be set to score a row");
}

}  // namespace

int32_t token_id(const IndexerParams& p, int64_t row, int64_t s) {
  const int64_t n = row_seq_len(p, row);
  DSA_REQUIRE(s >= 0 && s < n, "indexer: row ", row, ": position ", s, " outside [0, ", n, ")");
  return static_cast<int32_t>(page_of(p, row, s / kPageSize) * kPageSize + s % kPageSize);
}

void indexer_scores(const IndexerParams& p, int64_t row, float* scores) {
  const int64_t n = row_seq_len(p, row);
  if (n == 0) return;
  check_scoring_inputs(p);
  const float* table = e4m3_table();

  // q transposed to [d][h]: the inner loop then runs over 64 heads with unit stride and
  // vectorises while each head's dot keeps its sequential d order.
  alignas(64) float qt[kIndexHeadDim][kIndexHeads];
  const uint8_t* q = p.q_index + row * kIndexHeads * kIndexHeadDim;
  for (int h = 0; h < kIndexHeads; ++h)
    for (int d = 0; d < kIndexHeadDim; ++d) qt[d][h] = table[q[h * kIndexHeadDim + d]];
  const float* w = p.weights + row * kIndexHeads;

  alignas(64) float k[kIndexHeadDim];
  alignas(64) float acc[kIndexHeads];
  for (int64_t slot = 0; slot < pages_for(n); ++slot) {
    const uint8_t* page = p.index_k + page_of(p, row, slot) * kIndexPageBytes;
    const int64_t tokens = std::min<int64_t>(kPageSize, n - slot * kPageSize);
    for (int64_t t = 0; t < tokens; ++t) {
      const float scale = load_le_f32(page + kIndexPageFp8Bytes + 4 * t);
      const uint8_t* kf = page + t * kIndexHeadDim;
      for (int d = 0; d < kIndexHeadDim; ++d) k[d] = table[kf[d]] * scale;
      for (int h = 0; h < kIndexHeads; ++h) acc[h] = 0.f;
      for (int d = 0; d < kIndexHeadDim; ++d) {
        const float kd = k[d];
        for (int h = 0; h < kIndexHeads; ++h) acc[h] += qt[d][h] * kd;
      }
      float score = 0.f;
      for (int h = 0; h < kIndexHeads; ++h) score += w[h] * relu(acc[h]);
      scores[slot * kPageSize + t] = score;
    }
  }
}

std::vector<float> indexer_scores(const IndexerParams& p, int64_t row) {
  std::vector<float> scores(static_cast<size_t>(row_seq_len(p, row)));
  indexer_scores(p, row, scores.data());
  return scores;
}

void select_topk(const float* scores, const int32_t* token_ids, int64_t n, int32_t* out) {
  std::vector<uint64_t> keys;
  select_topk_impl(scores, token_ids, n, out, keys);
}

void indexer(const IndexerParams& p, int threads) {
  DSA_REQUIRE(p.rows >= 0, "indexer: rows = ", p.rows);
  if (p.rows == 0) return;
  DSA_REQUIRE(p.topk_indices != nullptr && p.seq_lens != nullptr, "indexer: topk_indices and seq_lens must be set");
  struct Scratch {
    std::vector<float> scores;
    std::vector<int32_t> ids;
    std::vector<uint64_t> keys;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(worker_count(threads, p.rows)));
  parallel_for(p.rows, threads, [&](int worker, int64_t row) {
    Scratch& s = scratch[static_cast<size_t>(worker)];
    const int64_t n = row_seq_len(p, row);
    s.ids.resize(static_cast<size_t>(n));
    row_token_ids(p, row, n, s.ids.data());
    const float* scores = nullptr;
    if (n > kTopK) {
      s.scores.resize(static_cast<size_t>(n));
      indexer_scores(p, row, s.scores.data());
      scores = s.scores.data();
    }
    select_topk_impl(scores, s.ids.data(), n, p.topk_indices + row * kTopK, s.keys);
  });
}

std::string check_topk(const IndexerParams& p, int64_t row, const int32_t* got) {
  const int64_t n = row_seq_len(p, row);
  std::vector<float> ref;
  if (n > kTopK) ref = indexer_scores(p, row);
  return check_topk(p, row, got, ref.data());
}

std::string check_topk(const IndexerParams& p, int64_t row, const int32_t* got, const float* ref_scores) {
  const int64_t n = row_seq_len(p, row);
  const int64_t want = std::min<int64_t>(kTopK, n);
  auto reason = [&](auto&&... parts) { return concat("row ", row, " (seq_len ", n, "): ", parts...); };

  // Reachable ids, sorted, each with its position.
  std::vector<std::pair<int32_t, int64_t>> reach(static_cast<size_t>(n));
  {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    row_token_ids(p, row, n, ids.data());
    for (int64_t s = 0; s < n; ++s) reach[static_cast<size_t>(s)] = {ids[static_cast<size_t>(s)], s};
    std::sort(reach.begin(), reach.end());
  }

  // (id, slot) of every returned id, and its position.
  std::vector<std::pair<int32_t, int>> returned;
  std::vector<int64_t> positions;
  for (int slot = 0; slot < kTopK; ++slot) {
    const int32_t id = got[slot];
    if (id == -1) continue;
    const auto it = std::lower_bound(reach.begin(), reach.end(), std::pair<int32_t, int64_t>{id, INT64_MIN});
    if (it == reach.end() || it->first != id)
      return reason("slot ", slot, " holds id ", id, ", not reachable from the block table within seq_len");
    returned.emplace_back(id, slot);
    positions.push_back(it->second);
  }
  if (static_cast<int64_t>(returned.size()) != want)
    return reason(returned.size(), " ids returned, expected min(", kTopK, ", seq_len) = ", want);
  std::sort(returned.begin(), returned.end());
  for (size_t i = 1; i < returned.size(); ++i)
    if (returned[i].first == returned[i - 1].first)
      return reason("id ", returned[i].first, " repeats (slots ", returned[i - 1].second, " and ",
                    returned[i].second, ")");
  if (n <= kTopK) return "";  // every token returned once: the set is the reference set

  DSA_REQUIRE(ref_scores != nullptr, "check_topk: reference scores are needed for seq_len > ", kTopK);
  // Scores of the returned set and of the reference set (the K largest), both sorted descending.
  auto by_score_desc = [](float a, float b) { return score_key(a) > score_key(b); };
  std::vector<float> got_scores;
  got_scores.reserve(positions.size());
  for (const int64_t s : positions) got_scores.push_back(ref_scores[s]);
  std::sort(got_scores.begin(), got_scores.end(), by_score_desc);
  std::vector<float> ref_sorted(ref_scores, ref_scores + n);
  std::nth_element(ref_sorted.begin(), ref_sorted.begin() + (want - 1), ref_sorted.end(), by_score_desc);
  std::sort(ref_sorted.begin(), ref_sorted.begin() + want, by_score_desc);
  for (int64_t i = 0; i < want; ++i)
    if (!within_tolerance(got_scores[static_cast<size_t>(i)], ref_sorted[static_cast<size_t>(i)]))
      return reason("sorted score #", i, " of the returned set is ", got_scores[static_cast<size_t>(i)],
                    ", reference ", ref_sorted[static_cast<size_t>(i)], " (atol = rtol = 1e-2)");
  return "";
}

}  // namespace dsa::ref
