#include "kernels/reference/indexer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "kernels/reference/numeric.hpp"
#include "tests/kernels/ref_cases.hpp"

namespace dsa::ref {
namespace {

using testing::IndexerCase;
using testing::make_indexer_case;

// Independent e4m3 decode for the brute force (ldexp of the fields), tabled once.
double e4m3_value(uint8_t code) {
  static const std::vector<double> table = [] {
    std::vector<double> t(256);
    for (int c = 0; c < 256; ++c) {
      const int e = (c >> 3) & 0xF;
      const int m = c & 0x7;
      const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
      t[static_cast<size_t>(c)] = (c & 0x80) ? -mag : mag;
    }
    return t;
  }();
  return table[code];
}

struct BruteRow {
  std::vector<int32_t> ids;     // position -> global id
  std::vector<double> scores;   // position -> score (double)
  std::vector<double> scale;    // position -> sum of |terms| (error scale of float math)
};

// SPEC §1.1 in double, straight from the definition.
BruteRow brute_force(const IndexerCase& c, int64_t row) {
  BruteRow b;
  const int64_t n = c.seq_lens[static_cast<size_t>(row)];
  for (int64_t s = 0; s < n; ++s) {
    const int32_t page = c.block_table[static_cast<size_t>(row * c.max_num_pages + s / kPageSize)];
    const int offset = static_cast<int>(s % kPageSize);
    const uint8_t* base = &c.index_k[static_cast<size_t>(page) * kIndexPageBytes];
    float scale_f;
    std::memcpy(&scale_f, base + kIndexPageFp8Bytes + 4 * offset, 4);  // little-endian host
    double score = 0, mag = 0;
    for (int h = 0; h < kIndexHeads; ++h) {
      double dot = 0, dmag = 0;
      for (int d = 0; d < kIndexHeadDim; ++d) {
        const double q = e4m3_value(c.q_index[static_cast<size_t>((row * kIndexHeads + h) * kIndexHeadDim + d)]);
        const double k = e4m3_value(base[offset * kIndexHeadDim + d]) * scale_f;
        dot += q * k;
        dmag += std::fabs(q * k);
      }
      const double w = c.weights[static_cast<size_t>(row * kIndexHeads + h)];
      score += w * std::max(dot, 0.0);
      mag += std::fabs(w) * dmag;
    }
    b.ids.push_back(page * kPageSize + offset);
    b.scores.push_back(score);
    b.scale.push_back(mag);
  }
  return b;
}

// Checks one row of `got` against the brute force: reachability, distinctness, count, and the
// sorted scores of the returned set against the K largest (tight tolerance: float vs double).
void expect_row_matches_brute(const IndexerCase& c, int64_t row, const int32_t* got) {
  const BruteRow b = brute_force(c, row);
  const int64_t n = static_cast<int64_t>(b.ids.size());
  const int64_t want = std::min<int64_t>(kTopK, n);
  std::map<int32_t, int64_t> position;
  for (int64_t s = 0; s < n; ++s) position[b.ids[static_cast<size_t>(s)]] = s;
  std::vector<int64_t> pos_of_slot;
  std::set<int32_t> seen;
  for (int i = 0; i < kTopK; ++i) {
    if (got[i] == -1) continue;
    const auto it = position.find(got[i]);
    ASSERT_NE(it, position.end()) << "row " << row << " slot " << i << ": id " << got[i] << " unreachable";
    ASSERT_TRUE(seen.insert(got[i]).second) << "row " << row << ": id " << got[i] << " repeats";
    pos_of_slot.push_back(it->second);
  }
  ASSERT_EQ(static_cast<int64_t>(pos_of_slot.size()), want) << "row " << row;
  // The reference writes its ids first, -1 after.
  for (int i = 0; i < kTopK; ++i) ASSERT_EQ(got[i] == -1, i >= want) << "row " << row << " slot " << i;
  std::vector<double> got_scores, all = b.scores;
  for (const int64_t s : pos_of_slot) got_scores.push_back(b.scores[static_cast<size_t>(s)]);
  std::sort(got_scores.begin(), got_scores.end(), std::greater<>());
  std::sort(all.begin(), all.end(), std::greater<>());
  const double tol = 1e-5 * *std::max_element(b.scale.begin(), b.scale.end()) + 1e-6;
  for (int64_t i = 0; i < want; ++i)
    ASSERT_NEAR(got_scores[static_cast<size_t>(i)], all[static_cast<size_t>(i)], tol) << "row " << row << " rank " << i;
}

TEST(IndexerRef, ScoresMatchBruteForce) {
  IndexerCase c = make_indexer_case({1, 65, 300}, 8, 11);
  const IndexerParams p = c.params();
  for (int64_t row = 0; row < c.rows(); ++row) {
    const std::vector<float> got = indexer_scores(p, row);
    const BruteRow b = brute_force(c, row);
    ASSERT_EQ(got.size(), b.scores.size());
    for (size_t s = 0; s < got.size(); ++s) {
      ASSERT_NEAR(got[s], b.scores[s], 1e-5 * b.scale[s] + 1e-6) << "row " << row << " pos " << s;
      EXPECT_EQ(token_id(p, row, static_cast<int64_t>(s)), b.ids[s]);
    }
  }
}

TEST(IndexerRef, SeqLenZeroGivesAllMinusOne) {
  IndexerCase c = make_indexer_case({0, 0}, 2, 1);
  // No valid entry at all in the block table: it must not be read.
  std::fill(c.block_table.begin(), c.block_table.end(), -99);
  indexer(c.params(), 2);
  for (const int32_t v : c.topk) EXPECT_EQ(v, -1);
  EXPECT_TRUE(indexer_scores(c.params(), 0).empty());
  EXPECT_EQ(check_topk(c.params(), 0, c.topk.data()), "");
}

TEST(IndexerRef, ShortRowsReturnEveryToken) {
  const std::vector<int32_t> lens = {1, 63, 64, 65, 1000, 2047, 2048};
  IndexerCase c = make_indexer_case(lens, 40, 2);
  const IndexerParams p = c.params();
  indexer(p, 3);
  for (int64_t row = 0; row < c.rows(); ++row) {
    const int32_t* got = &c.topk[static_cast<size_t>(row * kTopK)];
    const int32_t n = lens[static_cast<size_t>(row)];
    for (int s = 0; s < n; ++s) EXPECT_EQ(got[s], token_id(p, row, s)) << "row " << row << " pos " << s;
    for (int s = n; s < kTopK; ++s) EXPECT_EQ(got[s], -1) << "row " << row << " slot " << s;
    expect_row_matches_brute(c, row, got);
    EXPECT_EQ(check_topk(p, row, got), "");
  }
}

TEST(IndexerRef, LongRowsMatchBruteForce) {
  // Pages in random order, garbage past ceil(seq_len/64) in every block table.
  const std::vector<int32_t> lens = {2049, 3000, 4100, 64 * 70};
  IndexerCase c = make_indexer_case(lens, 80, 3);
  const IndexerParams p = c.params();
  indexer(p, 2);
  for (int64_t row = 0; row < c.rows(); ++row) {
    const int32_t* got = &c.topk[static_cast<size_t>(row * kTopK)];
    expect_row_matches_brute(c, row, got);
    EXPECT_EQ(check_topk(p, row, got), "");
  }
}

TEST(IndexerRef, ThreadCountDoesNotChangeBytes) {
  const std::vector<int32_t> lens = {0, 5, 2048, 2049, 2500, 3333, 100, 4000, 2049};
  IndexerCase a = make_indexer_case(lens, 64, 4);
  IndexerCase b = a;
  indexer(a.params(), 1);
  indexer(b.params(), 4);
  EXPECT_EQ(a.topk, b.topk);
  IndexerCase d = a;
  indexer(d.params(), 0);
  EXPECT_EQ(a.topk, d.topk);
}

TEST(IndexerRef, EqualScoresStillGiveDistinctIds) {
  // Every token identical: all scores tie. Any 2048 distinct ids are a right answer.
  IndexerCase c = make_indexer_case({4000}, 64, 5);
  for (int64_t page = 0; page < c.num_pages; ++page)
    for (int t = 0; t < kPageSize; ++t) {
      std::memcpy(c.token_fp8(page, t), c.token_fp8(0, 0), kIndexHeadDim);
      c.set_scale(page, t, 0.01f);
    }
  const IndexerParams p = c.params();
  const std::vector<float> scores = indexer_scores(p, 0);
  for (const float s : scores) ASSERT_EQ(s, scores[0]);
  indexer(p, 1);
  expect_row_matches_brute(c, 0, c.topk.data());
  EXPECT_EQ(check_topk(p, 0, c.topk.data()), "");
  // The tie-break is by position: positions 0..2047.
  for (int i = 0; i < kTopK; ++i) EXPECT_EQ(c.topk[static_cast<size_t>(i)], token_id(p, 0, i));
  // Another choice among the tied tokens passes the check too.
  std::vector<int32_t> other(kTopK);
  for (int i = 0; i < kTopK; ++i) other[static_cast<size_t>(i)] = token_id(p, 0, 4000 - 1 - i);
  EXPECT_EQ(check_topk(p, 0, other.data()), "");
}

TEST(IndexerRef, AllNegativeDotsGiveZeroScores) {
  IndexerCase c = make_indexer_case({3000}, 50, 6);
  // q >= 0 and k <= 0 everywhere, so every dot is <= 0 and every ReLU term 0.
  for (auto& q : c.q_index) q &= 0x7F;
  for (auto& q : c.q_index)
    if (q == 0x7F) q = 0x7E;
  for (int64_t page = 0; page < c.num_pages; ++page)
    for (int t = 0; t < kPageSize; ++t)
      for (int d = 0; d < kIndexHeadDim; ++d) c.token_fp8(page, t)[d] |= 0x80;
  const IndexerParams p = c.params();
  for (const float s : indexer_scores(p, 0)) ASSERT_EQ(s, 0.f);
  indexer(p, 2);
  expect_row_matches_brute(c, 0, c.topk.data());
  EXPECT_EQ(check_topk(p, 0, c.topk.data()), "");
}

TEST(IndexerRef, SelectTopkFollowsScoreThenPosition) {
  const int64_t n = 5000;
  std::vector<float> scores(n);
  std::vector<int32_t> ids(n);
  for (int64_t s = 0; s < n; ++s) {
    scores[static_cast<size_t>(s)] = static_cast<float>((s * 37) % 101) - 50.f;  // many ties, signs
    ids[static_cast<size_t>(s)] = static_cast<int32_t>(100000 + 3 * s);
  }
  scores[17] = std::numeric_limits<float>::quiet_NaN();
  scores[18] = -0.f;
  scores[19] = std::numeric_limits<float>::infinity();
  std::vector<int64_t> order(n);
  for (int64_t s = 0; s < n; ++s) order[static_cast<size_t>(s)] = s;
  auto rank = [&](int64_t s) { return std::isnan(scores[static_cast<size_t>(s)]) ? -INFINITY : scores[static_cast<size_t>(s)]; };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rank(a) > rank(b); });
  std::vector<int32_t> out(kTopK);
  select_topk(scores.data(), ids.data(), n, out.data());
  for (int i = 0; i < kTopK; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], ids[static_cast<size_t>(order[static_cast<size_t>(i)])]) << i;
  // Short input: all ids in order, scores unread.
  select_topk(nullptr, ids.data(), 3, out.data());
  EXPECT_EQ(out[0], ids[0]);
  EXPECT_EQ(out[2], ids[2]);
  EXPECT_EQ(out[3], -1);
  select_topk(nullptr, ids.data(), 0, out.data());
  for (const int32_t v : out) EXPECT_EQ(v, -1);
}

TEST(IndexerRef, CheckTopkRejectsWrongAnswers) {
  IndexerCase c = make_indexer_case({3000, 100}, 50, 7);
  const IndexerParams p = c.params();
  indexer(p, 2);
  const std::vector<int32_t> good(c.topk.begin(), c.topk.begin() + kTopK);
  const std::vector<float> scores = indexer_scores(p, 0);
  ASSERT_EQ(check_topk(p, 0, good.data()), "");
  ASSERT_EQ(check_topk(p, 0, good.data(), scores.data()), "");

  // Permuted, with -1 holes moved around: still right.
  {
    std::vector<int32_t> v(good.rbegin(), good.rend());
    EXPECT_EQ(check_topk(p, 0, v.data()), "");
  }
  {  // duplicated id
    std::vector<int32_t> v = good;
    v[5] = v[6];
    EXPECT_NE(check_topk(p, 0, v.data()), "");
  }
  {  // an id from a page not in the block table
    std::set<int32_t> used(c.block_table.begin(), c.block_table.begin() + pages_for(3000));
    int32_t page = 0;
    while (used.count(page)) ++page;
    std::vector<int32_t> v = good;
    v[0] = page * kPageSize;
    const std::string why = check_topk(p, 0, v.data());
    EXPECT_NE(why.find("not reachable"), std::string::npos) << why;
  }
  {  // a missing id
    std::vector<int32_t> v = good;
    v[100] = -1;
    EXPECT_NE(check_topk(p, 0, v.data()), "");
  }
  {  // a value that is neither an id nor -1
    std::vector<int32_t> v = good;
    v[3] = -2;
    EXPECT_NE(check_topk(p, 0, v.data()), "");
  }
  {  // wrong set: the best token swapped for the worst one
    std::vector<int32_t> v = good;
    const int64_t worst = std::min_element(scores.begin(), scores.end()) - scores.begin();
    v[0] = token_id(p, 0, worst);  // good[0] is the best (the reference writes best first)
    const std::string why = check_topk(p, 0, v.data());
    EXPECT_NE(why.find("sorted score"), std::string::npos) << why;
  }
  // Short row (seq_len 100): a token of the last page past seq_len is not reachable.
  const int32_t* short_row = &c.topk[kTopK];
  ASSERT_EQ(check_topk(p, 1, short_row), "");
  {
    std::vector<int32_t> v(short_row, short_row + kTopK);
    const int32_t last_page = c.block_table[static_cast<size_t>(c.max_num_pages + 1)];
    v[0] = last_page * kPageSize + 100 % kPageSize;  // position 100 >= seq_len
    EXPECT_NE(check_topk(p, 1, v.data()).find("not reachable"), std::string::npos);
  }
  {  // an id from the garbage past ceil(seq_len/64): page id 1<<30 etc. is never reachable
    std::vector<int32_t> v(short_row, short_row + kTopK);
    v[1] = -7 * kPageSize;
    EXPECT_NE(check_topk(p, 1, v.data()), "");
  }
  {  // a short row with one more slot than tokens filled
    std::vector<int32_t> v(short_row, short_row + kTopK);
    v[100] = v[0];
    EXPECT_NE(check_topk(p, 1, v.data()), "");
  }
}

TEST(IndexerRef, BadInputsAreRefused) {
  IndexerCase c = make_indexer_case({130}, 4, 8);
  c.block_table[1] = 4;  // second page is within seq_len and beyond the cache
  EXPECT_THROW(indexer(c.params(), 1), Error);
  c.block_table[1] = -1;
  EXPECT_THROW(indexer(c.params(), 1), Error);
  IndexerCase d = make_indexer_case({130}, 4, 8);
  d.seq_lens[0] = static_cast<int32_t>(d.max_num_pages * kPageSize + 1);
  EXPECT_THROW(indexer(d.params(), 1), Error);
  d.seq_lens[0] = -1;
  EXPECT_THROW(indexer(d.params(), 1), Error);
  IndexerCase e = make_indexer_case({130}, 4, 8);
  EXPECT_THROW(token_id(e.params(), 0, 130), Error);
  EXPECT_THROW(token_id(e.params(), 1, 0), Error);
}

}  // namespace
}  // namespace dsa::ref
