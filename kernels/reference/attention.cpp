#include "kernels/reference/attention.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <vector>

#include "common/error.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/reference/parallel.hpp"
#include "kernels/shapes.hpp"

namespace dsa::ref {
namespace {

// bf16 -> double, inlined into the hot loops (same value as bf16_to_float).
inline double bf16d(uint16_t bits) {
  return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(bits) << 16));
}

// Two doubles in one SSE register (GCC/Clang vector extension). Pass 1 keeps the 16 heads'
// accumulators in eight of these: GCC leaves a plain double[16] of reduction chains in memory
// (it does not SLP-vectorise them), which made pass 1 three to four times slower. Each head's sum
// still runs over d in order, so the bits are those of the plain loop.
typedef double Pair __attribute__((vector_size(16)));
constexpr int kPairs = kHeads / 2;
static_assert(kHeads % 2 == 0);

constexpr size_t kChunk = 4;  // tokens per step of pass 2
static_assert(kChunk * kCkvDim >= kCkvDim + kKpeDim);

struct Scratch {
  std::vector<int64_t> ids;     // valid ids of the row
  std::vector<double> qt;       // [576][16]: q_nope then q_pe, transposed so heads are contiguous
  std::vector<double> weights;  // [16][n]: logits, then exp(logit - max)
  std::vector<double> acc;      // [16][512]: sum_j exp(logit - max) * ckv[j]
  std::vector<double> k;        // pass 1: one token's ckv then kpe; pass 2: [4][512] ckv rows
};

void check_params(const AttentionParams& p) {
  DSA_REQUIRE(p.rows >= 0, "attention: rows = ", p.rows);
  if (p.rows == 0) return;
  DSA_REQUIRE(p.q_nope != nullptr && p.q_pe != nullptr && p.sparse_indices != nullptr,
              "attention: q_nope, q_pe and sparse_indices must be set");
  DSA_REQUIRE(p.num_pages >= 0, "attention: num_pages = ", p.num_pages);
}

void attention_row(const AttentionParams& p, int64_t row, float* out, float* lse, Scratch& s) {
  constexpr int kQk = kCkvDim + kKpeDim;  // 576
  DSA_REQUIRE(row >= 0 && row < p.rows, "attention: row ", row, " out of range [0, ", p.rows, ")");
  check_params(p);

  const int32_t* slots = p.sparse_indices + row * kTopK;
  const int64_t num_tokens = p.num_pages * kPageSize;
  s.ids.clear();
  for (int i = 0; i < kTopK; ++i) {
    const int64_t id = slots[i];
    if (id == -1) continue;
    DSA_REQUIRE(id >= 0 && id < num_tokens, "attention: row ", row, ": sparse_indices[", i, "] = ", id,
                " is neither -1 nor a token of the cache (num_pages ", p.num_pages, ")");
    s.ids.push_back(id);
  }
  const size_t n = s.ids.size();
  if (n == 0) {
    std::fill(out, out + kHeads * kCkvDim, 0.f);
    std::fill(lse, lse + kHeads, -std::numeric_limits<float>::infinity());
    return;
  }
  DSA_REQUIRE(p.ckv != nullptr && p.kpe != nullptr, "attention: ckv and kpe must be set");

  s.qt.resize(static_cast<size_t>(kQk) * kHeads);
  const uint16_t* qn = p.q_nope + row * kHeads * kCkvDim;
  const uint16_t* qp = p.q_pe + row * kHeads * kKpeDim;
  for (int h = 0; h < kHeads; ++h) {
    for (int d = 0; d < kCkvDim; ++d) s.qt[static_cast<size_t>(d * kHeads + h)] = bf16d(qn[h * kCkvDim + d]);
    for (int d = 0; d < kKpeDim; ++d)
      s.qt[static_cast<size_t>((kCkvDim + d) * kHeads + h)] = bf16d(qp[h * kKpeDim + d]);
  }

  // Pass 1: logits. Per head: dot over the 512 ckv terms, then over the 64 kpe terms, in order.
  s.weights.resize(kHeads * n);
  s.k.resize(kChunk * kCkvDim);  // >= 576
  double* k = s.k.data();
  const double* qt = s.qt.data();
  const double sm_scale = p.sm_scale;
  for (size_t j = 0; j < n; ++j) {
    const uint16_t* ckv = p.ckv + s.ids[j] * kCkvDim;
    const uint16_t* kpe = p.kpe + s.ids[j] * kKpeDim;
    for (int d = 0; d < kCkvDim; ++d) k[d] = bf16d(ckv[d]);
    for (int d = 0; d < kKpeDim; ++d) k[kCkvDim + d] = bf16d(kpe[d]);
    Pair nope[kPairs] = {};
    Pair pe[kPairs] = {};
    for (int d = 0; d < kQk; ++d) {
      const Pair kd = {k[d], k[d]};
      Pair* dst = d < kCkvDim ? nope : pe;
      for (int i = 0; i < kPairs; ++i) {
        Pair q;
        std::memcpy(&q, qt + d * kHeads + 2 * i, sizeof q);
        dst[i] += q * kd;
      }
    }
    for (int i = 0; i < kPairs; ++i)
      for (int l = 0; l < 2; ++l) s.weights[(2 * i + l) * n + j] = sm_scale * (nope[i][l] + pe[i][l]);
  }

  // Softmax per head, max-subtracted: weights become exp(logit - max), lse = log2(sum exp(logit)).
  double sum[kHeads];
  for (int h = 0; h < kHeads; ++h) {
    double* w = s.weights.data() + h * n;
    const double m = *std::max_element(w, w + n);
    double total = 0.0;
    for (size_t j = 0; j < n; ++j) {
      w[j] = std::exp(w[j] - m);
      total += w[j];
    }
    sum[h] = total;
    lse[h] = static_cast<float>(m * std::numbers::log2e + std::log2(total));
  }

  // Pass 2: output = sum_j p[h][j] * ckv[j], accumulated unnormalised in j order, divided once at
  // the end. Four tokens per step: a[d] = (((a[d] + w0 k0[d]) + w1 k1[d]) + w2 k2[d]) + w3 k3[d]
  // is the same sequence of roundings as four separate steps, with a quarter of the stores.
  s.acc.assign(static_cast<size_t>(kHeads) * kCkvDim, 0.0);
  double* acc = s.acc.data();
  for (size_t j0 = 0; j0 < n; j0 += kChunk) {
    const size_t m = std::min(kChunk, n - j0);
    for (size_t t = 0; t < m; ++t) {
      const uint16_t* ckv = p.ckv + s.ids[j0 + t] * kCkvDim;
      for (int d = 0; d < kCkvDim; ++d) k[t * kCkvDim + static_cast<size_t>(d)] = bf16d(ckv[d]);
    }
    const double* k0 = k;
    const double* k1 = k + kCkvDim;
    const double* k2 = k + 2 * kCkvDim;
    const double* k3 = k + 3 * kCkvDim;
    for (int h = 0; h < kHeads; ++h) {
      const double* w = s.weights.data() + h * n + j0;
      double* a = acc + h * kCkvDim;
      if (m == kChunk) {
        const double w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
        for (int d = 0; d < kCkvDim; ++d) a[d] = (((a[d] + w0 * k0[d]) + w1 * k1[d]) + w2 * k2[d]) + w3 * k3[d];
      } else {
        for (size_t t = 0; t < m; ++t)
          for (int d = 0; d < kCkvDim; ++d) a[d] += w[t] * k[t * kCkvDim + static_cast<size_t>(d)];
      }
    }
  }
  for (int h = 0; h < kHeads; ++h)
    for (int d = 0; d < kCkvDim; ++d) out[h * kCkvDim + d] = static_cast<float>(acc[h * kCkvDim + d] / sum[h]);
}

}  // namespace

void attention_row_f32(const AttentionParams& p, int64_t row, float* out_f32, float* lse) {
  Scratch s;
  attention_row(p, row, out_f32, lse, s);
}

void attention(const AttentionParams& p, int threads) {
  check_params(p);
  if (p.rows == 0) return;
  DSA_REQUIRE(p.output != nullptr && p.lse != nullptr, "attention: output and lse must be set");
  struct Worker {
    Scratch s;
    std::vector<float> out = std::vector<float>(static_cast<size_t>(kHeads) * kCkvDim);
  };
  std::vector<Worker> workers(static_cast<size_t>(worker_count(threads, p.rows)));
  parallel_for(p.rows, threads, [&](int worker, int64_t row) {
    Worker& w = workers[static_cast<size_t>(worker)];
    attention_row(p, row, w.out.data(), p.lse + row * kHeads, w.s);
    uint16_t* dst = p.output + row * kHeads * kCkvDim;
    for (int i = 0; i < kHeads * kCkvDim; ++i) dst[i] = float_to_bf16(w.out[static_cast<size_t>(i)]);
  });
}

std::string compare_attention_row(int64_t row, const float* ref_out, const float* ref_lse,
                                  const uint16_t* got_out, const float* got_lse) {
  for (int h = 0; h < kHeads; ++h) {
    const float ref = ref_lse[h];
    const float got = got_lse[h];
    const bool ok = std::isinf(ref) && ref < 0 ? (std::isinf(got) && got < 0) : within_tolerance(got, ref);
    if (!ok) return concat("row ", row, ": lse[", h, "] = ", got, ", reference ", ref, " (atol = rtol = 1e-2)");
  }
  for (int h = 0; h < kHeads; ++h)
    for (int d = 0; d < kCkvDim; ++d) {
      const float ref = ref_out[h * kCkvDim + d];
      const float got = bf16_to_float(got_out[h * kCkvDim + d]);
      if (!within_tolerance(got, ref))
        return concat("row ", row, ": output[", h, "][", d, "] = ", got, ", reference ", ref,
                      " (atol = rtol = 1e-2)");
    }
  return "";
}

std::string check_attention_row(const AttentionParams& p, int64_t row, const uint16_t* got_out,
                                const float* got_lse) {
  std::vector<float> ref_out(static_cast<size_t>(kHeads) * kCkvDim);
  float ref_lse[kHeads];
  attention_row_f32(p, row, ref_out.data(), ref_lse);
  return compare_attention_row(row, ref_out.data(), ref_lse, got_out, got_lse);
}

}  // namespace dsa::ref
