#include "kernels/reference/attention.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "kernels/reference/numeric.hpp"
#include "tests/kernels/ref_cases.hpp"

namespace dsa::ref {
namespace {

using testing::AttentionCase;
using testing::make_attention_case;

double bf16_value(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// SPEC §1.2 straight from the definition, in long double, over the slots in order.
void brute_force(const AttentionCase& c, int64_t row, std::vector<double>& out, std::vector<double>& lse) {
  out.assign(kHeads * kCkvDim, 0.0);
  lse.assign(kHeads, -std::numeric_limits<double>::infinity());
  std::vector<int32_t> ids;
  for (int i = 0; i < kTopK; ++i) {
    const int32_t id = c.sparse_indices[static_cast<size_t>(row * kTopK + i)];
    if (id != -1) ids.push_back(id);
  }
  if (ids.empty()) return;
  for (int h = 0; h < kHeads; ++h) {
    std::vector<long double> logit;
    for (const int32_t id : ids) {
      long double dot = 0;
      for (int d = 0; d < kCkvDim; ++d)
        dot += static_cast<long double>(bf16_value(c.q_nope[static_cast<size_t>((row * kHeads + h) * kCkvDim + d)])) *
               bf16_value(c.ckv[static_cast<size_t>(id) * kCkvDim + static_cast<size_t>(d)]);
      for (int d = 0; d < kKpeDim; ++d)
        dot += static_cast<long double>(bf16_value(c.q_pe[static_cast<size_t>((row * kHeads + h) * kKpeDim + d)])) *
               bf16_value(c.kpe[static_cast<size_t>(id) * kKpeDim + static_cast<size_t>(d)]);
      logit.push_back(static_cast<long double>(c.sm_scale) * dot);
    }
    long double m = logit[0];
    for (const long double l : logit) m = std::max(m, l);
    long double total = 0;
    for (const long double l : logit) total += std::exp(l - m);
    lse[static_cast<size_t>(h)] = static_cast<double>((m + std::log(total)) / std::log(2.0L));
    std::vector<long double> prob;
    for (const long double l : logit) prob.push_back(std::exp(l - m) / total);
    for (int d = 0; d < kCkvDim; ++d) {
      long double acc = 0;
      for (size_t j = 0; j < ids.size(); ++j)
        acc += prob[j] * bf16_value(c.ckv[static_cast<size_t>(ids[j]) * kCkvDim + static_cast<size_t>(d)]);
      out[static_cast<size_t>(h * kCkvDim + d)] = static_cast<double>(acc);
    }
  }
}

// attention_row_f32 against the brute force (tight), then attention()'s bytes against it.
void expect_rows_match(AttentionCase& c) {
  const AttentionParams p = c.params();
  attention(p, 2);
  std::vector<float> out(kHeads * kCkvDim), lse(kHeads);
  std::vector<double> want_out, want_lse;
  for (int64_t row = 0; row < c.rows(); ++row) {
    attention_row_f32(p, row, out.data(), lse.data());
    brute_force(c, row, want_out, want_lse);
    for (int h = 0; h < kHeads; ++h) {
      if (std::isinf(want_lse[static_cast<size_t>(h)])) {
        EXPECT_TRUE(std::isinf(lse[static_cast<size_t>(h)]) && lse[static_cast<size_t>(h)] < 0) << "row " << row;
      } else {
        EXPECT_NEAR(lse[static_cast<size_t>(h)], want_lse[static_cast<size_t>(h)],
                    1e-6 * std::fabs(want_lse[static_cast<size_t>(h)]) + 1e-6) << "row " << row << " head " << h;
      }
    }
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_NEAR(out[i], want_out[i], 1e-6 * std::fabs(want_out[i]) + 1e-6) << "row " << row << " elem " << i;
    const uint16_t* got = &c.output[static_cast<size_t>(row * kHeads * kCkvDim)];
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(got[i], float_to_bf16(out[i])) << "row " << row << " elem " << i;
    for (int h = 0; h < kHeads; ++h)
      EXPECT_EQ(std::memcmp(&c.lse[static_cast<size_t>(row * kHeads + h)], &lse[static_cast<size_t>(h)], 4), 0);
    EXPECT_EQ(check_attention_row(p, row, got, &c.lse[static_cast<size_t>(row * kHeads)]), "") << "row " << row;
  }
}

TEST(AttentionRef, MatchesBruteForceAcrossValidCounts) {
  AttentionCase c = make_attention_case({1, 7, 300, 2048}, 40, 21);
  expect_rows_match(c);
}

TEST(AttentionRef, NoValidIdGivesZerosAndMinusInf) {
  AttentionCase c = make_attention_case({0, 3, 0}, 4, 22);
  expect_rows_match(c);
  for (const int64_t row : {0, 2}) {
    for (int i = 0; i < kHeads * kCkvDim; ++i)
      EXPECT_EQ(c.output[static_cast<size_t>(row * kHeads * kCkvDim + i)], 0) << "row " << row;
    for (int h = 0; h < kHeads; ++h) {
      const float l = c.lse[static_cast<size_t>(row * kHeads + h)];
      EXPECT_TRUE(std::isinf(l) && l < 0) << "row " << row;
    }
  }
}

TEST(AttentionRef, HolesAnywhere) {
  // Valid ids only at the two ends, and one in the middle; duplicates of none.
  AttentionCase c = make_attention_case({0}, 8, 23);
  c.sparse_indices[0] = 5;
  c.sparse_indices[1000] = 300;
  c.sparse_indices[kTopK - 1] = 511;
  expect_rows_match(c);
}

TEST(AttentionRef, LargeScaleIsNearlyOneHot) {
  AttentionCase c = make_attention_case({50, 2048}, 40, 24, 100.f);
  expect_rows_match(c);
  // Near one-hot: every head's output is (almost exactly) the ckv row of one of the row's tokens.
  const AttentionParams p = c.params();
  std::vector<float> out(kHeads * kCkvDim), lse(kHeads);
  for (int64_t row = 0; row < c.rows(); ++row) {
    attention_row_f32(p, row, out.data(), lse.data());
    for (int h = 0; h < kHeads; ++h) {
      bool found = false;
      for (int i = 0; i < kTopK && !found; ++i) {
        const int32_t id = c.sparse_indices[static_cast<size_t>(row * kTopK + i)];
        if (id == -1) continue;
        found = true;
        for (int d = 0; d < kCkvDim && found; ++d)
          found = std::fabs(out[static_cast<size_t>(h * kCkvDim + d)] -
                            bf16_value(c.ckv[static_cast<size_t>(id) * kCkvDim + static_cast<size_t>(d)])) < 1e-3;
      }
      EXPECT_TRUE(found) << "row " << row << " head " << h;
    }
  }
}

TEST(AttentionRef, ThreadCountDoesNotChangeBytes) {
  AttentionCase a = make_attention_case({0, 12, 700, 1, 2048, 64, 5, 333}, 40, 25);
  AttentionCase b = a;
  attention(a.params(), 1);
  attention(b.params(), 4);
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * 4), 0);
}

TEST(AttentionRef, CheckRejectsWrongRows) {
  AttentionCase c = make_attention_case({100, 0}, 8, 26);
  const AttentionParams p = c.params();
  attention(p, 2);
  std::vector<uint16_t> out(c.output.begin(), c.output.begin() + kHeads * kCkvDim);
  std::vector<float> lse(c.lse.begin(), c.lse.begin() + kHeads);
  ASSERT_EQ(check_attention_row(p, 0, out.data(), lse.data()), "");
  {  // small relative error passes
    std::vector<uint16_t> o = out;
    for (auto& v : o) v = float_to_bf16(bf16_to_float(v) * 1.004f);
    EXPECT_EQ(check_attention_row(p, 0, o.data(), lse.data()), "");
  }
  {  // one element off
    std::vector<uint16_t> o = out;
    o[777] = float_to_bf16(bf16_to_float(o[777]) + 0.5f);
    const std::string why = check_attention_row(p, 0, o.data(), lse.data());
    EXPECT_NE(why.find("output[1][265]"), std::string::npos) << why;
  }
  {  // NaN output
    std::vector<uint16_t> o = out;
    o[3] = 0x7FC0;
    EXPECT_NE(check_attention_row(p, 0, o.data(), lse.data()), "");
  }
  {  // lse off, NaN, -inf
    for (const float bad : {lse[4] + 1.f, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      std::vector<float> l = lse;
      l[4] = bad;
      EXPECT_NE(check_attention_row(p, 0, out.data(), l.data()), "") << bad;
    }
  }
  // Empty row: zeros and -inf pass; a finite or NaN lse, or a nonzero output, does not.
  const uint16_t* out1 = &c.output[kHeads * kCkvDim];
  const float* lse1 = &c.lse[kHeads];
  ASSERT_EQ(check_attention_row(p, 1, out1, lse1), "");
  for (const float bad : {0.f, -1e30f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> l(lse1, lse1 + kHeads);
    l[0] = bad;
    EXPECT_NE(check_attention_row(p, 1, out1, l.data()), "") << bad;
  }
  std::vector<uint16_t> o1(out1, out1 + kHeads * kCkvDim);
  o1[9] = float_to_bf16(0.5f);
  EXPECT_NE(check_attention_row(p, 1, o1.data(), lse1), "");
}

TEST(AttentionRef, BadIdsAreRefused) {
  AttentionCase c = make_attention_case({3}, 2, 27);
  c.sparse_indices[10] = static_cast<int32_t>(2 * kPageSize);  // one past the cache
  EXPECT_THROW(attention(c.params(), 1), Error);
  c.sparse_indices[10] = -2;
  EXPECT_THROW(attention(c.params(), 1), Error);
}

}  // namespace
}  // namespace dsa::ref
