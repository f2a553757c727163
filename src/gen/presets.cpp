// The presets of dsa-gen. Distributions are piecewise-linear inverse CDFs through the
// quantiles they must hit, so the generator needs no libm and the targets read off the table.
#include <string>

#include "common/error.hpp"
#include "kernels/shapes.hpp"
#include "src/gen/generate.hpp"
#include "src/gen/preset_spec.hpp"

namespace dsa::gen {
namespace detail {

const std::vector<PresetSpec>& preset_specs() {
  static const std::vector<PresetSpec> specs = {
      {
          "tiny",
          "For tests: 5 batches of 1-5 rows (10 rows), seq_lens 0, 1, 63, 64, 65, 130, 1000, "
          "2048, 2049, 3000; sparse_indices scattered over the 2048 slots with -1 holes, valid "
          "counts 0, 1, 7, 64, 130, 1000, 2048; 47 KV pages (about 4 MB).",
          /*batches=*/5, /*rows=*/1, 5,
          /*batch_rows=*/{5, 2, 1, 1, 1},
          /*seq_len=*/{},
          /*fixed_seq_lens=*/{0, 1, 63, 64, 65, 1000, 130, 2048, 2049, 3000},
          /*pinned=*/{},
          /*fixed_valid=*/{0, 1, 7, 64, 0, 7, -1, -1, 1000, -1},
          /*prefix_layout=*/false, /*run_pages=*/1, /*decode=*/false,
      },
      {
          "demo",
          "The README example, sized for the CPU reference (pipeline on 2 cores in seconds): "
          "8 batches of 4-32 rows, seq_len ragged up to 8K (median 300, 90% <= 2048, including "
          "0, 2048, 2049 and 8192), pages in random order; sparse ids scattered with holes.",
          /*batches=*/8, /*rows=*/4, 32,
          /*batch_rows=*/{},
          /*seq_len=*/{{0.0, 1}, {0.5, 300}, {0.9, 2048}, {0.98, 6000}, {1.0, 8193}},
          /*fixed_seq_lens=*/{},
          /*pinned=*/{0, 2048, 2049, 8192},
          /*fixed_valid=*/{},
          /*prefix_layout=*/false, /*run_pages=*/1, /*decode=*/false,
      },
      {
          "fib-indexer",
          "Shaped like FlashInfer-Bench's DSA indexer workloads: 32 batches of 1-31 rows, "
          "seq_len median 94, p90 819, 97% <= 2048, max 5806; pages in contiguous runs of 16 "
          "in random order; sparse ids a contiguous prefix of min(seq_len, 2048).",
          /*batches=*/32, /*rows=*/1, 31,
          /*batch_rows=*/{},
          /*seq_len=*/{{0.0, 1}, {0.10, 10}, {0.25, 35}, {0.50, 94}, {0.75, 300}, {0.90, 819},
                       {0.97, 2048}, {0.995, 4096}, {1.0, 5807}},
          /*fixed_seq_lens=*/{},
          /*pinned=*/{},
          /*fixed_valid=*/{},
          /*prefix_layout=*/true, /*run_pages=*/16, /*decode=*/false,
      },
      {
          "fib-attention",
          "Shaped like FlashInfer-Bench's DSA sparse-attention workloads: 64 batches of 1-8 "
          "rows, valid ids per row median 33, p90 1089 (5% full 2048), as a contiguous prefix "
          "followed by -1; seq_len = the valid count below 2048, else up to 6K; pages in "
          "contiguous runs of 16.",
          /*batches=*/64, /*rows=*/1, 8,
          /*batch_rows=*/{},
          /*seq_len=*/{{0.0, 1}, {0.25, 8}, {0.5, 33}, {0.75, 250}, {0.9, 1089}, {0.95, 2048},
                       {1.0, 6145}},
          /*fixed_seq_lens=*/{},
          /*pinned=*/{},
          /*fixed_valid=*/{},
          /*prefix_layout=*/true, /*run_pages=*/16, /*decode=*/false,
      },
      {
          "decode",
          "A decode trace: --rows requests (1024) over --batches steps (16); step s holds one "
          "row per request, request r has seq_len base_r + s with base_r uniform in 6144-10240 "
          "(--seq-len sets the range) and one block table for all its steps, so the steps share "
          "the KV (131,568 pages, 11.4 GB at the defaults); sparse ids: min(seq_len, 2048) "
          "scattered.",
          /*batches=*/16, /*rows=*/1024, 1024,
          /*batch_rows=*/{},
          /*seq_len=*/{{0.0, 6144}, {1.0, 10241}},
          /*fixed_seq_lens=*/{},
          /*pinned=*/{},
          /*fixed_valid=*/{},
          /*prefix_layout=*/false, /*run_pages=*/1, /*decode=*/true,
      },
  };
  return specs;
}

const PresetSpec& find_preset(std::string_view name) {
  std::string known;
  for (const PresetSpec& spec : preset_specs()) {
    if (name == spec.name) return spec;
    known += known.empty() ? "" : ", ";
    known += spec.name;
  }
  fail("unknown preset '", name, "' (known: ", known, ")");
}

}  // namespace detail

const std::vector<PresetInfo>& presets() {
  static const std::vector<PresetInfo> infos = [] {
    std::vector<PresetInfo> out;
    for (const detail::PresetSpec& spec : detail::preset_specs())
      out.push_back({spec.name, spec.summary});
    return out;
  }();
  return infos;
}

GenConfig preset_config(std::string_view name) {
  const detail::PresetSpec& spec = detail::find_preset(name);
  GenConfig config;
  config.preset = spec.name;
  config.batches = spec.batches;
  if (spec.rows_min == spec.rows_max && spec.batch_rows.empty()) config.rows = spec.rows_min;
  return config;
}

}  // namespace dsa::gen
