// Synthetic workloads (SPEC §2, §4 dsa-gen): presets, a plan of rows and pages, in-memory
// generation of KV pages and query rows, and the streaming writer of a whole file.
//
// Reproducibility: every value comes from a counter-based generator keyed by (seed, stream,
// page or row), with integer arithmetic and single IEEE operations only (no std::
// distributions, no libm, no FMA contraction), so a seed gives the same bytes on every machine
// and for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "io/workload.hpp"

namespace dsa::gen {

// Which datasets a file holds (SPEC §2 "needed by").
//   indexer:   /kv/index_k, seq_lens, block_table, q_index, weights
//   attention: /kv/ckv, /kv/kpe, q_nope, q_pe, sparse_indices
//   all:       both (serves the indexer, attention and pipeline stages)
enum class Stages { indexer, attention, all };
Stages parse_stages(std::string_view name);  // "indexer" | "attention" | "all", else throws
const char* stages_name(Stages stages);

struct GenConfig {
  std::string preset = "tiny";
  int64_t rows = 0;         // rows per batch (decode: requests); 0 = the preset's distribution
  int64_t batches = 0;      // number of batches (decode: steps); 0 = the preset's default
  int32_t seq_len_min = -1;  // seq_len range [min, max] (decode: the base of each request);
  int32_t seq_len_max = -1;  // -1 = the preset's distribution
  uint64_t seed = 1;
  int32_t shared_prefix = 0;  // rows of a batch (decode: all requests) share the pages of
                              // their first shared_prefix tokens
  Stages stages = Stages::all;
  double sm_scale = 1.0 / 24.0;  // 1 / sqrt(Dc + Dr) = 1 / sqrt(576)
  unsigned threads = 0;          // 0 = all hardware threads; never changes the output
};

struct PresetInfo {
  const char* name;
  const char* summary;  // one paragraph for --help: what the preset makes and why
};
const std::vector<PresetInfo>& presets();

// The preset's defaults (rows and batches filled where the preset fixes them); throws on an
// unknown name, listing the known ones.
GenConfig preset_config(std::string_view name);

// Checks a configuration (known preset, sizes in range); throws dsa::Error with one line.
void validate(const GenConfig& config);

// Everything about the rows that is not bulk data: sizes, seq_lens, block tables, and how many
// sparse ids each row gets. Cheap: built serially before any bulk data.
struct WorkloadPlan {
  GenConfig config;
  int64_t num_pages = 0;      // KV pages in the file (>= 1)
  int64_t max_num_pages = 0;  // block_table width (>= 1)
  std::vector<int64_t> batch_offsets;  // [batches + 1]
  std::vector<int32_t> seq_lens;       // [rows]
  std::vector<int32_t> block_table;    // [rows, max_num_pages]; past pages_for(seq_len): other
                                       // valid page ids, as in recorded traces
  std::vector<int32_t> valid_ids;      // [rows] ids != -1 in the row's sparse_indices
  bool prefix_layout = false;  // valid sparse ids as a contiguous prefix (else scattered with holes)

  int64_t rows() const { return static_cast<int64_t>(seq_lens.size()); }
  int64_t batches() const { return static_cast<int64_t>(batch_offsets.size()) - 1; }
  io::WorkloadShape shape() const;  // what the file will hold
  uint64_t bytes() const;           // bulk data bytes of the file (an estimate of its size)
};

WorkloadPlan make_plan(const GenConfig& config);  // validates first

// KV pages [first_page, first_page + num_pages): a page's content depends on the seed and the
// page id only. index_k is filled when `indexer`, ckv and kpe when `attention`.
io::KvCache make_kv(uint64_t seed, int64_t first_page, int64_t num_pages, bool indexer,
                    bool attention, unsigned threads = 0);

// Query rows [first, first + count) of the plan, the vectors its stages need.
io::QueryRows make_rows(const WorkloadPlan& plan, int64_t first, int64_t count,
                        unsigned threads = 0);

struct Progress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  double seconds = 0.0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct GenSummary {
  std::string path;
  int64_t rows = 0;
  int64_t batches = 0;
  int64_t num_pages = 0;
  int64_t max_num_pages = 0;
  uint64_t file_bytes = 0;
  double seconds = 0.0;
};

// Where generate_workload writes before the final rename ("<path>.tmp-<pid>").
std::string temp_path_for(const std::string& path);
// Until the process ends, SIGINT, SIGTERM and SIGHUP remove `path` (a temp file being written)
// and exit with 128 + the signal, so an interrupted write leaves no partial file behind.
void remove_on_signal(const std::string& path);

// The checks made before a new workload file is written (dsa-gen, dsa-import): `path` is not
// a directory, exists only when `overwrite`, and its folder exists and has room for `bytes`.
// Throws dsa::Error with one line.
void check_output_path(const std::string& path, uint64_t bytes, bool overwrite);
// check_output_path for plan.bytes().
void check_output(const std::string& path, const WorkloadPlan& plan, bool overwrite);

// Writes the plan's workload to `path` via temp_path_for(path), renamed into place once
// complete; on any failure the temporary file is removed and the error rethrown. Runs
// check_output first. `progress` (may be empty) is called after each written chunk.
GenSummary write_workload(const std::string& path, const WorkloadPlan& plan, bool overwrite,
                          const ProgressFn& progress = {});

// write_workload(path, make_plan(config), overwrite, progress).
GenSummary generate_workload(const std::string& path, const GenConfig& config, bool overwrite,
                             const ProgressFn& progress = {});

}  // namespace dsa::gen
