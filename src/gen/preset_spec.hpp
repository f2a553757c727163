// The presets of dsa-gen as data (presets.cpp); generate.cpp turns them into plans.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace dsa::gen::detail {

// One point of a piecewise-linear inverse CDF: a fraction p of the draws fall below `value`.
struct Quantile {
  double p;       // in [0, 1]; used as the 32-bit fixed-point fraction floor(p * 2^32)
  int64_t value;
};

struct PresetSpec {
  const char* name;
  const char* summary;
  int64_t batches;                // default number of batches (decode: steps)
  int64_t rows_min, rows_max;     // rows per batch, uniform (decode: requests, rows_min)
  std::vector<int64_t> batch_rows;     // when set: rows of batch b = batch_rows[b % size]
  std::vector<Quantile> seq_len;       // seq_len distribution (decode: the base of a request),
                                       // p from 0 to 1, values increasing; draws truncate
  std::vector<int32_t> fixed_seq_lens; // when set: row i gets fixed_seq_lens[i % size]
  std::vector<int32_t> pinned_seq_lens;  // the first rows get these, the rest draw
  std::vector<int32_t> fixed_valid;    // when set: row i gets min(fixed_valid[i % size],
                                       // seq_len, topk) sparse ids; -1 = min(seq_len, topk)
  bool prefix_layout;             // sparse ids as a contiguous prefix (else scattered, holes)
  int32_t run_pages;              // pages handed out in runs this long (1 = random order)
  bool decode;                    // a decode trace: steps x requests, KV shared by the steps
};

const std::vector<PresetSpec>& preset_specs();
const PresetSpec& find_preset(std::string_view name);  // throws on an unknown name

}  // namespace dsa::gen::detail
