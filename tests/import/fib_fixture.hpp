// A small FlashInfer-Bench-style dataset folder, made in the test (no downloaded data): the two
// DSA definitions as flashinfer-trace writes them, a JSONL of workloads for each, and the
// safetensors blobs they point to, laid out as a TraceSet root:
//   definitions/dsa_paged/<name>.json
//   workloads/dsa_paged/<name>.jsonl
//   blob/workloads/dsa_paged/<name>/<name>_<uuid>.safetensors
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/shapes.hpp"
#include "src/import/fib_dataset.hpp"
#include "src/import/safetensors.hpp"

namespace dsa::import::fixture {

inline constexpr const char* kIndexerDef = "dsa_topk_indexer_fp8_h64_d128_topk2048_ps64";
inline constexpr const char* kAttentionDef = "dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64";
inline constexpr double kSmScale = 0.1352337788608801;  // the value the dataset records

inline ojson indexer_definition() {
  return ojson::parse(R"({
    "name": "dsa_topk_indexer_fp8_h64_d128_topk2048_ps64",
    "description": "DSA top-k indexer with FP8 keys (DeepGEMM paged layout), page size 64, topk 2048.",
    "op_type": "dsa_paged",
    "tags": ["stage:indexer", "model:deepseek-v3.2", "quant:fp8"],
    "axes": {
      "batch_size": {"type": "var"},
      "num_index_heads": {"type": "const", "value": 64},
      "index_head_dim": {"type": "const", "value": 128},
      "page_size": {"type": "const", "value": 64},
      "topk": {"type": "const", "value": 2048},
      "max_num_pages": {"type": "var"},
      "num_pages": {"type": "var"},
      "kv_cache_num_heads": {"type": "const", "value": 1},
      "head_dim_with_scale": {"type": "const", "value": 132}
    },
    "constraints": ["topk <= max_num_pages * page_size"],
    "inputs": {
      "q_index_fp8": {"shape": ["batch_size", "num_index_heads", "index_head_dim"], "dtype": "float8_e4m3fn"},
      "k_index_cache_fp8": {"shape": ["num_pages", "page_size", "kv_cache_num_heads", "head_dim_with_scale"], "dtype": "int8"},
      "weights": {"shape": ["batch_size", "num_index_heads"], "dtype": "float32"},
      "seq_lens": {"shape": ["batch_size"], "dtype": "int32"},
      "block_table": {"shape": ["batch_size", "max_num_pages"], "dtype": "int32"}
    },
    "outputs": {
      "topk_indices": {"shape": ["batch_size", "topk"], "dtype": "int32"}
    },
    "reference": "import torch\n\n@torch.no_grad()\ndef run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):\n    ...\n"
  })");
}

inline ojson attention_definition() {
  return ojson::parse(R"({
    "name": "dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64",
    "description": "DSA sparse MLA attention over top-k selected tokens, page size 64.",
    "op_type": "dsa_paged",
    "tags": ["stage:decode", "model:deepseek-v3.2", "sparse:topk"],
    "axes": {
      "num_tokens": {"type": "var"},
      "num_qo_heads": {"type": "const", "value": 16},
      "head_dim_ckv": {"type": "const", "value": 512},
      "head_dim_kpe": {"type": "const", "value": 64},
      "page_size": {"type": "const", "value": 64},
      "topk": {"type": "const", "value": 2048},
      "num_pages": {"type": "var"}
    },
    "constraints": ["sparse_indices.shape[-1] == topk", "ckv_cache.shape[1] == page_size"],
    "inputs": {
      "q_nope": {"shape": ["num_tokens", "num_qo_heads", "head_dim_ckv"], "dtype": "bfloat16"},
      "q_pe": {"shape": ["num_tokens", "num_qo_heads", "head_dim_kpe"], "dtype": "bfloat16"},
      "ckv_cache": {"shape": ["num_pages", "page_size", "head_dim_ckv"], "dtype": "bfloat16"},
      "kpe_cache": {"shape": ["num_pages", "page_size", "head_dim_kpe"], "dtype": "bfloat16"},
      "sparse_indices": {"shape": ["num_tokens", "topk"], "dtype": "int32"},
      "sm_scale": {"shape": null, "dtype": "float32"}
    },
    "outputs": {
      "output": {"shape": ["num_tokens", "num_qo_heads", "head_dim_ckv"], "dtype": "bfloat16"},
      "lse": {"shape": ["num_tokens", "num_qo_heads"], "dtype": "float32", "description": "base-2 log-sum-exp"}
    },
    "reference": "import torch\n\n@torch.no_grad()\ndef run(q_nope, q_pe, ckv_cache, kpe_cache, sparse_indices, sm_scale):\n    ...\n"
  })");
}

struct IndexerWorkload {
  std::string uuid;
  int64_t rows, num_pages, width;
  std::vector<int32_t> seq_lens, block_table;
  std::vector<float> weights;  // recorded when not empty
};

struct AttentionWorkload {
  std::string uuid;
  int64_t rows, num_pages;
  std::vector<int32_t> sparse;   // [rows, 2048]
  std::vector<uint16_t> q_pe;    // recorded when not empty
};

// Seq lens 0, 1, 64 (a page boundary), 129, 200, 330; block-table entries past seq_len hold
// valid-looking page ids (repeats among them), as recorded traces do.
inline std::vector<IndexerWorkload> indexer_workloads() {
  std::vector<IndexerWorkload> w;
  w.push_back({"7c1e2a4b-0000-4c4e-9a10-000000000001", 1, 8, 4, {200}, {5, 2, 7, 0}, {}});
  w.push_back({"7c1e2a4b-0000-4c4e-9a10-000000000002", 3, 40, 6, {0, 64, 330},
               {3, 3, 3, 3, 3, 3, /**/ 10, 39, 39, 1, 1, 1, /**/ 20, 21, 22, 23, 24, 25}, {}});
  IndexerWorkload third{"7c1e2a4b-0000-4c4e-9a10-000000000003", 2, 12, 3, {1, 129}, {6, 6, 6, 9, 1, 4}, {}};
  for (int i = 0; i < 2 * kIndexHeads; ++i) third.weights.push_back(0.25f * static_cast<float>(i % 9) - 1.0f);
  w.push_back(third);
  return w;
}

// Valid ids as FlashInfer-Bench records them (a contiguous prefix, then -1), plus a row with no
// valid id, a full row of 2048, and one with holes.
inline std::vector<AttentionWorkload> attention_workloads() {
  std::vector<AttentionWorkload> w;
  AttentionWorkload a{"a11ce000-1111-4222-8333-000000000001", 1, 6, std::vector<int32_t>(kTopK, -1), {}};
  for (int i = 0; i < 37; ++i) a.sparse[static_cast<std::size_t>(i)] = (i * 7) % (6 * kPageSize);
  w.push_back(a);
  AttentionWorkload b{"a11ce000-1111-4222-8333-000000000002", 3, 40, std::vector<int32_t>(3 * kTopK, -1), {}};
  for (int i = 0; i < kTopK; ++i) b.sparse[static_cast<std::size_t>(kTopK + i)] = (i * 3 + 1) % (40 * kPageSize);
  for (int i = 0; i < kTopK; i += 3) b.sparse[static_cast<std::size_t>(2 * kTopK + i)] = 2559 - i;
  w.push_back(b);
  AttentionWorkload c{"a11ce000-1111-4222-8333-000000000003", 2, 3, std::vector<int32_t>(2 * kTopK, -1), {}};
  for (int i = 0; i < 150; ++i) c.sparse[static_cast<std::size_t>(i)] = 191 - i;
  for (int i = 0; i < 5; ++i) c.sparse[static_cast<std::size_t>(kTopK + i)] = 64 + i;
  for (int i = 0; i < 2 * kHeads * kKpeDim; ++i) c.q_pe.push_back(static_cast<uint16_t>(0x3F80 + (i % 64)));
  w.push_back(c);
  return w;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string blob_path(const std::string& def, const std::string& uuid) {
  return "./blob/workloads/dsa_paged/" + def + "/" + def + "_" + uuid + ".safetensors";
}

inline ojson tensor_input(const std::string& def, const std::string& uuid, const std::string& key) {
  return {{"type", "safetensors"}, {"path", blob_path(def, uuid)}, {"tensor_key", key}};
}

inline ojson workload_line(const std::string& def, const std::string& uuid, ojson axes, ojson inputs) {
  ojson line = ojson::object();
  line["definition"] = def;
  line["solution"] = nullptr;
  line["workload"] = {{"uuid", uuid}, {"axes", std::move(axes)}, {"inputs", std::move(inputs)}};
  line["evaluation"] = nullptr;
  return line;
}

inline std::vector<ojson> indexer_lines() {
  std::vector<ojson> lines;
  for (const IndexerWorkload& w : indexer_workloads()) {
    ojson inputs = ojson::object();
    inputs["q_index_fp8"] = {{"type", "random"}};
    inputs["k_index_cache_fp8"] = {{"type", "random"}};
    inputs["weights"] = w.weights.empty() ? ojson{{"type", "random"}} : tensor_input(kIndexerDef, w.uuid, "weights");
    inputs["seq_lens"] = tensor_input(kIndexerDef, w.uuid, "seq_lens");
    inputs["block_table"] = tensor_input(kIndexerDef, w.uuid, "block_table");
    lines.push_back(workload_line(kIndexerDef, w.uuid,
                                  {{"batch_size", w.rows}, {"max_num_pages", w.width}, {"num_pages", w.num_pages}},
                                  inputs));
  }
  return lines;
}

inline std::vector<ojson> attention_lines() {
  std::vector<ojson> lines;
  for (const AttentionWorkload& w : attention_workloads()) {
    ojson inputs = ojson::object();
    inputs["q_nope"] = {{"type", "random"}};
    inputs["q_pe"] = w.q_pe.empty() ? ojson{{"type", "random"}} : tensor_input(kAttentionDef, w.uuid, "q_pe");
    inputs["ckv_cache"] = {{"type", "random"}};
    inputs["kpe_cache"] = {{"type", "random"}};
    inputs["sparse_indices"] = tensor_input(kAttentionDef, w.uuid, "sparse_indices");
    inputs["sm_scale"] = {{"type", "scalar"}, {"value", kSmScale}};
    lines.push_back(workload_line(kAttentionDef, w.uuid, {{"num_tokens", w.rows}, {"num_pages", w.num_pages}}, inputs));
  }
  return lines;
}

inline std::string jsonl(const std::vector<ojson>& lines) {
  std::string text;
  for (const ojson& l : lines) text += l.dump() + "\n";
  return text;
}

// Writes the whole dataset under `root`.
inline void write_dataset(const std::string& root) {
  namespace fs = std::filesystem;
  const fs::path r(root);
  write_text(r / "definitions/dsa_paged" / (std::string(kIndexerDef) + ".json"), indexer_definition().dump(2));
  write_text(r / "definitions/dsa_paged" / (std::string(kAttentionDef) + ".json"), attention_definition().dump(2));
  write_text(r / "workloads/dsa_paged" / (std::string(kIndexerDef) + ".jsonl"), jsonl(indexer_lines()));
  write_text(r / "workloads/dsa_paged" / (std::string(kAttentionDef) + ".jsonl"), jsonl(attention_lines()));
  for (const IndexerWorkload& w : indexer_workloads()) {
    std::vector<StTensor> t = {make_st_tensor("block_table", StDtype::I32, {w.rows, w.width}, w.block_table),
                               make_st_tensor("seq_lens", StDtype::I32, {w.rows}, w.seq_lens)};
    if (!w.weights.empty()) t.push_back(make_st_tensor("weights", StDtype::F32, {w.rows, kIndexHeads}, w.weights));
    const fs::path p = r / blob_path(kIndexerDef, w.uuid);
    fs::create_directories(p.parent_path());
    write_safetensors(p.string(), t, {{"format", "pt"}});
  }
  for (const AttentionWorkload& w : attention_workloads()) {
    std::vector<StTensor> t = {make_st_tensor("sparse_indices", StDtype::I32, {w.rows, kTopK}, w.sparse)};
    if (!w.q_pe.empty()) t.push_back(make_st_tensor("q_pe", StDtype::BF16, {w.rows, kHeads, kKpeDim}, w.q_pe));
    const fs::path p = r / blob_path(kAttentionDef, w.uuid);
    fs::create_directories(p.parent_path());
    write_safetensors(p.string(), t);
  }
}

}  // namespace dsa::import::fixture
