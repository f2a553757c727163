// dsa-import's library: FlashInfer-Bench DSA workloads -> one workload file (SPEC §2), one
// batch per FlashInfer-Bench workload.
//
// The two definitions it takes (flashinfer-ai/flashinfer-bench; the flashinfer-trace dataset):
//   dsa_topk_indexer_fp8_h64_d128_topk2048_ps64
//     q_index_fp8 [batch_size, 64, 128] float8_e4m3fn        random (or recorded)
//     k_index_cache_fp8 [num_pages, 64, 1, 132] int8         random: DeepGEMM's packing, per page
//                                                            64 x 128 e4m3 then 64 float32
//                                                            scales, which is /kv/index_k's layout
//     weights [batch_size, 64] float32                       random (or recorded)
//     seq_lens [batch_size] int32, block_table [batch_size, max_num_pages] int32   recorded
//     -> topk_indices [batch_size, 2048] int32
//   dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64
//     q_nope [num_tokens, 16, 512] bf16, q_pe [num_tokens, 16, 64] bf16    random (or recorded)
//     ckv_cache [num_pages, 64, 512] bf16, kpe_cache [num_pages, 64, 64] bf16   random
//     sparse_indices [num_tokens, 2048] int32                recorded
//     sm_scale float32 scalar                                scalar
//     -> output [num_tokens, 16, 512] bf16, lse [num_tokens, 16] float32
// The definition file is checked against these shapes (const axes with these values; the
// variable axes bound consistently), so other variants (page size 1, top-k 256, ...) are
// refused with the axis that differs.
//
// Random inputs follow FlashInfer-Bench's evaluator (flashinfer_bench/bench/utils.py
// _rand_tensor, evaluators/dsa_topk_indexer.py _pack_fp8_k_cache):
//   float32 / bfloat16: standard normal (bf16 rounded to nearest even);
//   float8_e4m3fn: standard normal clamped to [-2, 2], then e4m3;
//   k_index_cache_fp8: bf16 normals [num_pages, 64, 128] packed per token with scale =
//   amax / 448 (made here by dsa-gen's make_kv, whose only difference is that an all-zero row
//   gets scale 1 instead of 1e-4 / 448, which normals never produce).
// The normals are dsa-gen's counter-based generator (src/gen/rng.hpp), keyed by (seed, uuid,
// row) for query rows and (seed, page) for KV pages, so a seed gives the same bytes everywhere
// and a workload's rows do not depend on which other workloads are imported with it.
//
// One KV pool serves all batches: FlashInfer-Bench gives every workload its own random cache
// of `num_pages` pages; here page p is the same for every batch and the pool has the largest
// num_pages of the batches, so recorded page ids and token ids are kept unchanged (a batch's
// results are directly FlashInfer-Bench's token ids). Recorded KV caches (safetensors) are
// refused: they would need pages of their own per batch.
//
// Rows: block tables are padded to the widest batch with page 0 past each workload's
// max_num_pages (never read: seq_len <= max_num_pages * 64 is checked). Scalar inputs
// (sm_scale) become per-batch attributes; the file's one sm_scale is theirs, so they must
// agree. Each batch keeps definition, uuid, axes, inputs (JSON as written), jsonl_line and
// stage as per-batch attributes (io/batch_attrs.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/batch_attrs.hpp"
#include "io/workload.hpp"
#include "src/gen/generate.hpp"
#include "src/import/fib_dataset.hpp"

namespace dsa::import {

enum class Kind { indexer, attention };
const char* kind_stage(Kind kind);  // "indexer" | "attention": the dsa-run stage of a batch

struct ImportOptions {
  std::string dataset_root;     // the TraceSet root: safetensors paths are relative to it
  std::string definition_name;
  std::string definition_path;  // "" = <root>/definitions/**/<name>.json
  std::string workloads_path;   // "" = <root>/workloads/**/<name>.jsonl
  uint64_t seed = 1;
  bool pipeline = false;        // indexer definition: also random q_nope, q_pe, ckv, kpe, so
                                // the file serves dsa-run's pipeline stage as well
  std::optional<double> sm_scale;  // the file's sm_scale when no workload carries one
  int64_t limit = 0;            // import the first `limit` workloads (0 = all)
  unsigned threads = 0;         // KV generation threads (0 = all cores; never changes the bytes)
};

// One FlashInfer-Bench workload, checked, with its recorded tensors (empty = random).
struct ImportedBatch {
  WorkloadEntry entry;
  int64_t rows = 0;           // batch_size / num_tokens
  int64_t num_pages = 0;      // the workload's own KV pages
  int64_t max_num_pages = 0;  // its block-table width (indexer)
  uint64_t key = 0;           // random streams of its rows: derived from the uuid
  std::vector<int32_t> seq_lens, block_table, sparse_indices;
  std::vector<uint8_t> q_index;
  std::vector<float> weights;
  std::vector<uint16_t> q_nope, q_pe;
  std::map<std::string, ojson> scalars;  // scalar inputs by name
};

struct ImportPlan {
  ImportOptions options;
  Definition definition;
  std::string workloads_path;
  Kind kind = Kind::indexer;
  std::vector<ImportedBatch> batches;  // in JSONL order
  int64_t rows = 0;
  int64_t num_pages = 0;      // the shared pool: the largest num_pages (>= 1)
  int64_t max_num_pages = 0;  // block-table width of the file (indexer data; >= 1)
  std::vector<int64_t> batch_offsets;
  double sm_scale = 1.0 / 24.0;
  bool indexer_data = false, attention_data = false, sparse_indices = false;

  io::WorkloadShape shape() const;
  io::BatchAttributes batch_attributes() const;
  uint64_t bytes() const;  // bulk data bytes of the file (an estimate of its size)
};

// Reads the definition, the workloads and every recorded tensor, and checks them all (the
// definition's shapes, each workload's axes, inputs, tensor dtypes and shapes, seq_len and
// page-id ranges). Nothing is written. Throws dsa::Error with one line on bad input.
ImportPlan plan_import(const ImportOptions& options);

// Query rows of batch `b` as the file holds them (first = its batch offset).
io::QueryRows make_import_rows(const ImportPlan& plan, std::size_t b);

// What write_import wrote (the same summary dsa-gen gives).
using ImportSummary = gen::GenSummary;

// gen::check_output_path for plan.bytes(): the checks made before writing.
void check_import_output(const std::string& path, const ImportPlan& plan, bool overwrite);

// Writes the file through a temporary name (dsa-gen's temp_path_for), renamed into place once
// complete (per-batch attributes included); on failure the temporary file is removed.
ImportSummary write_import(const std::string& path, const ImportPlan& plan, bool overwrite);

}  // namespace dsa::import
