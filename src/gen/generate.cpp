// Synthetic workloads: plan (serial, cheap), bulk data (parallel over pages and rows, keyed by
// page and row id), and the streaming write through a temporary file.
//
// No expression here is of the form a * b + c in floating point (distributions use integer
// arithmetic), so FMA contraction, which differs between compilers and targets (aarch64
// contracts by default), cannot change the bytes.
#include "src/gen/generate.hpp"

#include <csignal>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <future>
#include <limits>
#include <system_error>
#include <thread>
#include <utility>

#include "common/error.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/shapes.hpp"
#include "src/gen/preset_spec.hpp"
#include "src/gen/rng.hpp"

namespace dsa::gen {

static_assert(std::endian::native == std::endian::little,
              "index_k scales are stored as little-endian float32 by memcpy");

using detail::PresetSpec;
using detail::Rng;
using detail::Stream;

namespace {

constexpr int64_t kMaxSeqLen = int64_t{1} << 24;          // 16M tokens: far past any model
constexpr int64_t kMaxTableEntries = int64_t{1} << 30;    // block_table held in memory: 4 GiB
constexpr int64_t kMaxPages = std::numeric_limits<int32_t>::max() / kPageSize;  // int32 ids

// Bytes per row and per page of each group of datasets (block_table rows counted apart).
constexpr uint64_t kRowBytesIndexer = 4 + kIndexHeads * kIndexHeadDim + kIndexHeads * 4;
constexpr uint64_t kRowBytesAttention =
    2 * kHeads * kCkvDim + 2 * kHeads * kKpeDim + 4 * kTopK;
constexpr uint64_t kPageBytesIndexer = kIndexPageBytes;
constexpr uint64_t kPageBytesAttention = 2 * kPageSize * (kCkvDim + kKpeDim);

unsigned resolve_threads(unsigned threads) {
  if (threads != 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

// Runs body(begin, end) over [0, n) split into contiguous blocks, one per thread. Callers key
// their data by index, so the split never shows in the result.
template <typename Body>
void parallel_for(int64_t n, unsigned threads, Body&& body) {
  if (n <= 0) return;
  const int64_t workers = std::min<int64_t>(resolve_threads(threads), n);
  if (workers == 1) {
    body(int64_t{0}, n);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  auto run = [&](int64_t w) {
    try {
      body(n * w / workers, n * (w + 1) / workers);
    } catch (...) {
      errors[static_cast<size_t>(w)] = std::current_exception();
    }
  };
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
  run(0);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

// A draw from a piecewise-linear inverse CDF, in integer arithmetic (exact on every machine):
// u is a 32-bit fraction, the knots' p are converted to the same fixed point.
int32_t draw_quantiles(const std::vector<detail::Quantile>& table, Rng& rng) {
  auto fixed = [](double p) { return static_cast<uint64_t>(p * 0x1.0p32); };
  const uint64_t u = rng.next() >> 32;
  size_t i = 1;
  while (i + 1 < table.size() && u >= fixed(table[i].p)) ++i;
  const uint64_t p_lo = fixed(table[i - 1].p), p_hi = fixed(table[i].p);
  const int64_t lo = table[i - 1].value, hi = table[i].value;
  if (p_hi <= p_lo || u < p_lo) return static_cast<int32_t>(lo);
  const uint64_t offset = (static_cast<uint64_t>(hi - lo) * (u - p_lo)) / (p_hi - p_lo);
  return static_cast<int32_t>(lo + static_cast<int64_t>(offset));
}

int32_t draw_uniform(int32_t lo, int32_t hi, Rng& rng) {
  return lo + static_cast<int32_t>(rng.below(static_cast<uint64_t>(hi - lo) + 1));
}

// [0, pool) in runs of `run` consecutive pages, the runs in random order.
std::vector<int32_t> page_order(int64_t pool, int32_t run, Rng& rng) {
  const int64_t runs = (pool + run - 1) / run;
  std::vector<int32_t> run_order(static_cast<size_t>(runs));
  for (int64_t i = 0; i < runs; ++i) run_order[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (int64_t i = runs - 1; i > 0; --i)
    std::swap(run_order[static_cast<size_t>(i)], run_order[rng.below(static_cast<uint64_t>(i) + 1)]);
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(pool));
  for (int32_t r : run_order)
    for (int64_t p = int64_t{r} * run; p < std::min<int64_t>(pool, int64_t{r + 1} * run); ++p)
      order.push_back(static_cast<int32_t>(p));
  return order;
}

// Partial Fisher-Yates: the first n entries of `values` become a uniform random n-subset in
// random order.
void shuffle_prefix(std::vector<int32_t>& values, int64_t n, Rng& rng) {
  const int64_t size = static_cast<int64_t>(values.size());
  for (int64_t i = 0; i < n && i + 1 < size; ++i) {
    const int64_t j = i + rng.below(static_cast<uint64_t>(size - i));
    std::swap(values[static_cast<size_t>(i)], values[static_cast<size_t>(j)]);
  }
}

// bf16 of a normal, rounded to nearest even: ref::float_to_bf16 for finite inputs (normals are),
// inlined because it is the generator's innermost operation (tests check the two agree).
inline uint16_t bf16_normal(Rng& rng) {
  const uint32_t u = std::bit_cast<uint32_t>(rng.normal());
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// One index-K page: per token, 128 bf16 normals quantised the way DeepGEMM packs its cache:
// scale = amax / 448 of the token's row, fp8 = e4m3(x / scale), scales after the 64 rows.
void fill_index_page(uint64_t seed, int64_t page, uint8_t* out) {
  Rng rng(seed, Stream::index_k, static_cast<uint64_t>(page));
  float row[kIndexHeadDim];
  for (int t = 0; t < kPageSize; ++t) {
    float amax = 0.0f;
    for (float& x : row) {
      x = std::bit_cast<float>(static_cast<uint32_t>(bf16_normal(rng)) << 16);
      amax = std::max(amax, std::fabs(x));
    }
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    uint8_t* fp8 = out + t * kIndexHeadDim;
    for (int d = 0; d < kIndexHeadDim; ++d) fp8[d] = ref::float_to_e4m3(row[d] / scale);
    std::memcpy(out + kIndexPageFp8Bytes + 4 * t, &scale, 4);
  }
}

void fill_bf16(Rng rng, uint16_t* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = bf16_normal(rng);
}

std::string config_text(const GenConfig& c) {
  return concat("dsa-gen ", DSA_VERSION, ": preset=", c.preset, " rows=", c.rows,
                " batches=", c.batches, " seq_len=", c.seq_len_min, ":", c.seq_len_max,
                " seed=", c.seed, " shared_prefix=", c.shared_prefix,
                " stages=", stages_name(c.stages));
}

}  // namespace

Stages parse_stages(std::string_view name) {
  if (name == "indexer") return Stages::indexer;
  if (name == "attention") return Stages::attention;
  if (name == "all") return Stages::all;
  fail("unknown --stages '", name, "' (expected indexer, attention or all)");
}

const char* stages_name(Stages stages) {
  switch (stages) {
    case Stages::indexer: return "indexer";
    case Stages::attention: return "attention";
    case Stages::all: return "all";
  }
  return "?";
}

void validate(const GenConfig& c) {
  const PresetSpec& spec = detail::find_preset(c.preset);
  DSA_REQUIRE(c.rows >= 0, "--rows must be >= 1 (got ", c.rows, ")");
  DSA_REQUIRE(c.batches >= 0, "--batches must be >= 1 (got ", c.batches, ")");
  DSA_REQUIRE((c.seq_len_min < 0) == (c.seq_len_max < 0),
              "--seq-len: give both ends or neither (got ", c.seq_len_min, ":", c.seq_len_max, ")");
  DSA_REQUIRE(c.seq_len_min <= c.seq_len_max, "--seq-len A:B needs A <= B (got ", c.seq_len_min,
              ":", c.seq_len_max, ")");
  DSA_REQUIRE(c.seq_len_max <= kMaxSeqLen, "--seq-len above ", kMaxSeqLen, " tokens");
  DSA_REQUIRE(c.shared_prefix >= 0 && c.shared_prefix <= kMaxSeqLen,
              "--shared-prefix must be in [0, ", kMaxSeqLen, "] (got ", c.shared_prefix, ")");
  DSA_REQUIRE(std::isfinite(c.sm_scale) && c.sm_scale > 0.0,
              "--sm-scale must be positive and finite (got ", c.sm_scale, ")");

  // Bounds on the plan, before it is built: rows x block-table width.
  const int64_t batches = c.batches > 0 ? c.batches : spec.batches;
  int64_t rows_per_batch = c.rows > 0 ? c.rows : spec.rows_max;
  for (int64_t r : spec.batch_rows) rows_per_batch = std::max(rows_per_batch, r);
  int64_t max_len = c.seq_len_max >= 0 ? c.seq_len_max : 0;
  if (c.seq_len_max < 0) {
    for (const auto& q : spec.seq_len) max_len = std::max(max_len, q.value);
    for (int32_t l : spec.fixed_seq_lens) max_len = std::max<int64_t>(max_len, l);
    for (int32_t l : spec.pinned_seq_lens) max_len = std::max<int64_t>(max_len, l);
  }
  if (spec.decode) max_len += batches - 1;
  DSA_REQUIRE(max_len <= kMaxSeqLen, "seq_len would reach ", max_len, " tokens (limit ",
              kMaxSeqLen, ")");
  DSA_REQUIRE(batches <= kMaxTableEntries && rows_per_batch <= kMaxTableEntries &&
                  batches * rows_per_batch <= kMaxTableEntries / std::max<int64_t>(1, pages_for(max_len)),
              "too large: ", batches, " batches x ", rows_per_batch, " rows x ",
              pages_for(max_len), " pages per row exceeds ", kMaxTableEntries,
              " block-table entries");
}

io::WorkloadShape WorkloadPlan::shape() const {
  io::WorkloadShape s;
  s.num_pages = num_pages;
  s.rows = rows();
  s.max_num_pages = max_num_pages;
  s.sm_scale = config.sm_scale;
  s.batch_offsets = batch_offsets;
  s.indexer_data = config.stages != Stages::attention;
  s.attention_data = config.stages != Stages::indexer;
  s.sparse_indices = config.stages != Stages::indexer;
  s.text_attributes = {{"source", "synthetic"},
                       {"model", "DeepSeek-V3.2 shapes"},
                       {"generator", config_text(config)}};
  return s;
}

uint64_t WorkloadPlan::bytes() const {
  const bool idx = config.stages != Stages::attention;
  const bool att = config.stages != Stages::indexer;
  const uint64_t r = static_cast<uint64_t>(rows());
  const uint64_t p = static_cast<uint64_t>(num_pages);
  uint64_t total = 8 * static_cast<uint64_t>(batch_offsets.size());
  if (idx) total += p * kPageBytesIndexer + r * (kRowBytesIndexer + 4 * static_cast<uint64_t>(max_num_pages));
  if (att) total += p * kPageBytesAttention + r * kRowBytesAttention;
  return total;
}

WorkloadPlan make_plan(const GenConfig& config) {
  validate(config);
  const PresetSpec& spec = detail::find_preset(config.preset);
  WorkloadPlan plan;
  plan.config = config;
  GenConfig& c = plan.config;
  c.preset = spec.name;
  if (c.batches == 0) c.batches = spec.batches;
  if (c.rows == 0 && spec.decode) c.rows = spec.rows_min;
  plan.prefix_layout = spec.prefix_layout;
  const bool seq_override = c.seq_len_min >= 0;
  const uint64_t seed = c.seed;
  const int64_t shared = pages_for(c.shared_prefix);

  // The rows: batch sizes and seq_lens (decode: request bases).
  auto draw_seq_len = [&](int64_t i) -> int32_t {
    Rng rng(seed, Stream::seq_len, static_cast<uint64_t>(i));
    if (seq_override) return draw_uniform(c.seq_len_min, c.seq_len_max, rng);
    if (!spec.decode && i < static_cast<int64_t>(spec.pinned_seq_lens.size()))
      return spec.pinned_seq_lens[static_cast<size_t>(i)];
    if (!spec.fixed_seq_lens.empty())
      return spec.fixed_seq_lens[static_cast<size_t>(i) % spec.fixed_seq_lens.size()];
    return draw_quantiles(spec.seq_len, rng);
  };
  auto valid_for = [&](int64_t i, int32_t seq_len) -> int32_t {
    const int32_t reach = std::min<int32_t>(seq_len, kTopK);
    if (spec.fixed_valid.empty()) return reach;
    const int32_t v = spec.fixed_valid[static_cast<size_t>(i) % spec.fixed_valid.size()];
    return v < 0 ? reach : std::min(v, reach);
  };

  // Own pages of a row (or request) with `need` pages, after the shared prefix of `s` pages.
  auto own_pages = [](int64_t need, int64_t s) { return need - std::min(need, s); };

  if (spec.decode) {
    const int64_t requests = c.rows, steps = c.batches;
    std::vector<int32_t> base(static_cast<size_t>(requests));
    int64_t width = 1;
    for (int64_t r = 0; r < requests; ++r) {
      base[static_cast<size_t>(r)] = draw_seq_len(r);
      width = std::max(width, pages_for(base[static_cast<size_t>(r)] + steps - 1));
    }
    const int64_t s = std::min(shared, width);
    int64_t pool = s;
    for (int64_t r = 0; r < requests; ++r)
      pool += own_pages(pages_for(base[static_cast<size_t>(r)] + steps - 1), s);
    DSA_REQUIRE(pool <= kMaxPages, "too large: ", pool, " KV pages (int32 token ids allow ",
                kMaxPages, ")");
    plan.num_pages = std::max<int64_t>(pool, 1);
    plan.max_num_pages = width;

    Rng order_rng(seed, Stream::page_order, 0);
    const std::vector<int32_t> order = page_order(plan.num_pages, spec.run_pages, order_rng);
    std::vector<int32_t> tables(static_cast<size_t>(requests * width));
    int64_t next = s;
    for (int64_t r = 0; r < requests; ++r) {
      int32_t* t = tables.data() + r * width;
      const int64_t need = pages_for(base[static_cast<size_t>(r)] + steps - 1);
      const int64_t from_shared = std::min(need, s);
      for (int64_t k = 0; k < from_shared; ++k) t[k] = order[static_cast<size_t>(k)];
      for (int64_t k = from_shared; k < need; ++k) t[k] = order[static_cast<size_t>(next++)];
      Rng garbage(seed, Stream::garbage, static_cast<uint64_t>(r));
      for (int64_t k = need; k < width; ++k)
        t[k] = static_cast<int32_t>(garbage.below(static_cast<uint64_t>(plan.num_pages)));
    }
    const int64_t rows = requests * steps;
    plan.batch_offsets.resize(static_cast<size_t>(steps + 1));
    for (int64_t b = 0; b <= steps; ++b) plan.batch_offsets[static_cast<size_t>(b)] = b * requests;
    plan.seq_lens.resize(static_cast<size_t>(rows));
    plan.valid_ids.resize(static_cast<size_t>(rows));
    plan.block_table.resize(static_cast<size_t>(rows * width));
    for (int64_t b = 0; b < steps; ++b) {
      std::copy(tables.begin(), tables.end(),
                plan.block_table.begin() + static_cast<std::ptrdiff_t>(b * requests * width));
      for (int64_t r = 0; r < requests; ++r) {
        const int64_t i = b * requests + r;
        const int32_t len = base[static_cast<size_t>(r)] + static_cast<int32_t>(b);
        plan.seq_lens[static_cast<size_t>(i)] = len;
        plan.valid_ids[static_cast<size_t>(i)] = valid_for(i, len);
      }
    }
    return plan;
  }

  // Batches of independent rows: batch sizes, then seq_lens in row order.
  plan.batch_offsets.push_back(0);
  for (int64_t b = 0; b < c.batches; ++b) {
    int64_t n = c.rows;
    if (n == 0 && !spec.batch_rows.empty())
      n = spec.batch_rows[static_cast<size_t>(b) % spec.batch_rows.size()];
    if (n == 0) {
      Rng rng(seed, Stream::batch_rows, static_cast<uint64_t>(b));
      n = spec.rows_min + rng.below(static_cast<uint64_t>(spec.rows_max - spec.rows_min) + 1);
    }
    plan.batch_offsets.push_back(plan.batch_offsets.back() + n);
  }
  const int64_t rows = plan.batch_offsets.back();
  plan.seq_lens.resize(static_cast<size_t>(rows));
  plan.valid_ids.resize(static_cast<size_t>(rows));
  int64_t width = 1;
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t len = draw_seq_len(i);
    plan.seq_lens[static_cast<size_t>(i)] = len;
    plan.valid_ids[static_cast<size_t>(i)] = valid_for(i, len);
    width = std::max(width, pages_for(len));
  }
  plan.max_num_pages = width;

  // One KV pool serves every batch (batches are independent calls against the same cache);
  // within a batch, rows hold distinct pages apart from the shared prefix.
  std::vector<int64_t> batch_shared(static_cast<size_t>(c.batches));
  int64_t pool = 1;
  for (int64_t b = 0; b < c.batches; ++b) {
    int64_t widest = 0, own = 0;
    for (int64_t i = plan.batch_offsets[static_cast<size_t>(b)];
         i < plan.batch_offsets[static_cast<size_t>(b) + 1]; ++i)
      widest = std::max(widest, pages_for(plan.seq_lens[static_cast<size_t>(i)]));
    const int64_t s = std::min(shared, widest);
    for (int64_t i = plan.batch_offsets[static_cast<size_t>(b)];
         i < plan.batch_offsets[static_cast<size_t>(b) + 1]; ++i)
      own += own_pages(pages_for(plan.seq_lens[static_cast<size_t>(i)]), s);
    batch_shared[static_cast<size_t>(b)] = s;
    pool = std::max(pool, s + own);
  }
  DSA_REQUIRE(pool <= kMaxPages, "too large: ", pool, " KV pages (int32 token ids allow ",
              kMaxPages, ")");
  plan.num_pages = pool;

  plan.block_table.resize(static_cast<size_t>(rows * width));
  for (int64_t b = 0; b < c.batches; ++b) {
    Rng order_rng(seed, Stream::page_order, static_cast<uint64_t>(b));
    const std::vector<int32_t> order = page_order(pool, spec.run_pages, order_rng);
    const int64_t s = batch_shared[static_cast<size_t>(b)];
    int64_t next = s;
    for (int64_t i = plan.batch_offsets[static_cast<size_t>(b)];
         i < plan.batch_offsets[static_cast<size_t>(b) + 1]; ++i) {
      int32_t* t = plan.block_table.data() + i * width;
      const int64_t need = pages_for(plan.seq_lens[static_cast<size_t>(i)]);
      const int64_t from_shared = std::min(need, s);
      for (int64_t k = 0; k < from_shared; ++k) t[k] = order[static_cast<size_t>(k)];
      for (int64_t k = from_shared; k < need; ++k) t[k] = order[static_cast<size_t>(next++)];
      Rng garbage(seed, Stream::garbage, static_cast<uint64_t>(i));
      for (int64_t k = need; k < width; ++k)
        t[k] = static_cast<int32_t>(garbage.below(static_cast<uint64_t>(pool)));
    }
  }
  return plan;
}

io::KvCache make_kv(uint64_t seed, int64_t first_page, int64_t num_pages, bool indexer,
                    bool attention, unsigned threads) {
  DSA_REQUIRE(first_page >= 0 && num_pages >= 0, "make_kv: bad page range ", first_page, " + ",
              num_pages);
  io::KvCache kv;
  kv.first_page = first_page;
  kv.num_pages = num_pages;
  const size_t n = static_cast<size_t>(num_pages);
  constexpr int64_t ckv_page = int64_t{kPageSize} * kCkvDim;
  constexpr int64_t kpe_page = int64_t{kPageSize} * kKpeDim;
  if (indexer) kv.index_k.resize(n * kIndexPageBytes);
  if (attention) {
    kv.ckv.resize(n * ckv_page);
    kv.kpe.resize(n * kpe_page);
  }
  parallel_for(num_pages, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t page = first_page + i;
      if (indexer) fill_index_page(seed, page, kv.index_k.data() + i * kIndexPageBytes);
      if (attention) {
        fill_bf16(Rng(seed, Stream::ckv, static_cast<uint64_t>(page)), kv.ckv.data() + i * ckv_page,
                  ckv_page);
        fill_bf16(Rng(seed, Stream::kpe, static_cast<uint64_t>(page)), kv.kpe.data() + i * kpe_page,
                  kpe_page);
      }
    }
  });
  return kv;
}

io::QueryRows make_rows(const WorkloadPlan& plan, int64_t first, int64_t count,
                        unsigned threads) {
  DSA_REQUIRE(first >= 0 && count >= 0 && first + count <= plan.rows(),
              "make_rows: rows [", first, ", ", first + count, ") outside [0, ", plan.rows(), ")");
  const bool indexer = plan.config.stages != Stages::attention;
  const bool attention = plan.config.stages != Stages::indexer;
  const uint64_t seed = plan.config.seed;
  const int64_t width = plan.max_num_pages;
  constexpr int64_t q_index_row = int64_t{kIndexHeads} * kIndexHeadDim;
  constexpr int64_t q_nope_row = int64_t{kHeads} * kCkvDim;
  constexpr int64_t q_pe_row = int64_t{kHeads} * kKpeDim;

  io::QueryRows q;
  q.first = first;
  q.count = count;
  q.max_num_pages = width;
  const size_t n = static_cast<size_t>(count);
  if (indexer) {
    q.seq_lens.assign(plan.seq_lens.begin() + first, plan.seq_lens.begin() + first + count);
    q.block_table.assign(plan.block_table.begin() + first * width,
                         plan.block_table.begin() + (first + count) * width);
    q.q_index.resize(n * q_index_row);
    q.weights.resize(n * kIndexHeads);
  }
  if (attention) {
    q.q_nope.resize(n * q_nope_row);
    q.q_pe.resize(n * q_pe_row);
    q.sparse_indices.assign(n * kTopK, -1);
  }

  parallel_for(count, threads, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> positions, slots(kTopK);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t row = first + k;
      const uint64_t key = static_cast<uint64_t>(row);
      if (indexer) {
        Rng qi(seed, Stream::q_index, key);
        uint8_t* out = q.q_index.data() + k * q_index_row;
        for (int64_t d = 0; d < q_index_row; ++d) out[d] = ref::float_to_e4m3(qi.normal());
        Rng w(seed, Stream::weights, key);
        float* wout = q.weights.data() + k * kIndexHeads;
        for (int h = 0; h < kIndexHeads; ++h) wout[h] = w.normal() * 0.125f;  // 1/sqrt(Hi)
      }
      if (attention) {
        fill_bf16(Rng(seed, Stream::q_nope, key), q.q_nope.data() + k * q_nope_row, q_nope_row);
        fill_bf16(Rng(seed, Stream::q_pe, key), q.q_pe.data() + k * q_pe_row, q_pe_row);

        // Valid ids: distinct reachable tokens of the row, placed as a prefix or scattered.
        const int32_t len = plan.seq_lens[static_cast<size_t>(row)];
        const int32_t valid = plan.valid_ids[static_cast<size_t>(row)];
        Rng rng(seed, Stream::sparse, key);
        positions.resize(static_cast<size_t>(len));
        for (int32_t s = 0; s < len; ++s) positions[static_cast<size_t>(s)] = s;
        shuffle_prefix(positions, valid, rng);
        const int32_t* table = plan.block_table.data() + row * width;
        int32_t* out = q.sparse_indices.data() + k * kTopK;
        if (!plan.prefix_layout) {
          for (int32_t s = 0; s < kTopK; ++s) slots[static_cast<size_t>(s)] = s;
          shuffle_prefix(slots, valid, rng);
        }
        for (int32_t v = 0; v < valid; ++v) {
          const int32_t pos = positions[static_cast<size_t>(v)];
          const int32_t id = table[pos / kPageSize] * kPageSize + pos % kPageSize;
          out[plan.prefix_layout ? v : slots[static_cast<size_t>(v)]] = id;
        }
      }
    }
  });
  return q;
}

namespace {
char g_remove_on_signal[4096] = {};

extern "C" void remove_and_exit(int sig) {
  if (g_remove_on_signal[0] != '\0') ::unlink(g_remove_on_signal);
  ::_exit(128 + sig);
}
}  // namespace

void remove_on_signal(const std::string& path) {
  if (path.size() >= sizeof g_remove_on_signal) return;  // too long to keep: left to the OS
  std::memcpy(g_remove_on_signal, path.c_str(), path.size() + 1);
  std::signal(SIGINT, remove_and_exit);
  std::signal(SIGTERM, remove_and_exit);
  std::signal(SIGHUP, remove_and_exit);
}

std::string temp_path_for(const std::string& path) {
  return concat(path, ".tmp-", static_cast<long>(::getpid()));
}

void check_output_path(const std::string& path, uint64_t bytes, bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  DSA_REQUIRE(!path.empty(), "no output path given");
  const fs::path target(path);
  if (fs::exists(target, ec)) {
    DSA_REQUIRE(!fs::is_directory(target, ec), path, " is a directory");
    DSA_REQUIRE(overwrite, "refusing to overwrite existing ", path, " (use --force)");
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  DSA_REQUIRE(fs::is_directory(dir, ec), "cannot write ", path, ": no folder ", dir.string());
  const fs::space_info space = fs::space(dir, ec);
  DSA_REQUIRE(!ec, "cannot write to ", dir.string(), ": ", ec.message());
  DSA_REQUIRE(space.available >= bytes, "not enough space in ", dir.string(), ": the file needs ",
              bytes / 1000000, " MB, ", space.available / 1000000, " MB are free");
}

void check_output(const std::string& path, const WorkloadPlan& plan, bool overwrite) {
  check_output_path(path, plan.bytes(), overwrite);
}

GenSummary generate_workload(const std::string& path, const GenConfig& config, bool overwrite,
                             const ProgressFn& progress) {
  return write_workload(path, make_plan(config), overwrite, progress);
}

GenSummary write_workload(const std::string& path, const WorkloadPlan& plan, bool overwrite,
                          const ProgressFn& progress) {
  namespace fs = std::filesystem;
  const auto start = std::chrono::steady_clock::now();
  check_output(path, plan, overwrite);
  const fs::path target(path);
  const uint64_t total = plan.bytes();
  std::error_code ec;

  const std::string temp = temp_path_for(path);
  fs::remove(temp, ec);
  const bool indexer = plan.config.stages != Stages::attention;
  const bool attention = plan.config.stages != Stages::indexer;
  const unsigned threads = resolve_threads(plan.config.threads);
  Progress state;
  state.bytes_total = total;
  auto report = [&](uint64_t bytes) {
    state.bytes_done += bytes;
    state.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(state);
  };

  try {
    io::WorkloadWriter writer(temp, plan.shape(), /*overwrite=*/true);
    // Query rows, in chunks of about 32 MB.
    const uint64_t row_bytes = (indexer ? kRowBytesIndexer + 4 * plan.max_num_pages : 0) +
                               (attention ? kRowBytesAttention : 0);
    const int64_t row_chunk = std::max<int64_t>(1, (int64_t{32} << 20) / static_cast<int64_t>(row_bytes));
    for (int64_t first = 0; first < plan.rows(); first += row_chunk) {
      const int64_t count = std::min(row_chunk, plan.rows() - first);
      writer.write_rows(make_rows(plan, first, count, threads));
      report(static_cast<uint64_t>(count) * row_bytes);
    }
    // KV pages, in chunks of about 64 MB; the next chunk is generated while one is written.
    const uint64_t page_bytes =
        (indexer ? kPageBytesIndexer : 0) + (attention ? kPageBytesAttention : 0);
    const int64_t page_chunk = std::max<int64_t>(1, (int64_t{64} << 20) / static_cast<int64_t>(page_bytes));
    std::future<void> pending;
    uint64_t pending_bytes = 0;
    for (int64_t first = 0; first < plan.num_pages; first += page_chunk) {
      const int64_t count = std::min(page_chunk, plan.num_pages - first);
      io::KvCache kv = make_kv(plan.config.seed, first, count, indexer, attention, threads);
      if (pending.valid()) {
        pending.get();
        report(pending_bytes);
      }
      pending = std::async(std::launch::async,
                           [&writer, chunk = std::move(kv)] { writer.write_kv(chunk); });
      pending_bytes = static_cast<uint64_t>(count) * page_bytes;
    }
    if (pending.valid()) {
      pending.get();
      report(pending_bytes);
    }
    writer.close();
    fs::rename(temp, target);
    report(total - state.bytes_done);  // batch offsets and the rest of the small datasets
  } catch (...) {
    fs::remove(temp, ec);
    throw;
  }

  GenSummary summary;
  summary.path = path;
  summary.rows = plan.rows();
  summary.batches = plan.batches();
  summary.num_pages = plan.num_pages;
  summary.max_num_pages = plan.max_num_pages;
  summary.file_bytes = static_cast<uint64_t>(fs::file_size(target));
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace dsa::gen
