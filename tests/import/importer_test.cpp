// The importer: a FlashInfer-Bench-style dataset made here -> a workload file that the io layer
// reads back with the recorded tensors unchanged, the random ones made as the evaluator makes
// them from the seed, one batch per workload with its uuid and axes; and every bad input
// refused before anything is written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "io/batch_attrs.hpp"
#include "io/workload.hpp"
#include "kernels/reference/numeric.hpp"
#include "src/gen/generate.hpp"
#include "src/import/importer.hpp"
#include "tests/import/fib_fixture.hpp"
#include "tests/import/import_test_util.hpp"

namespace dsa::import {
namespace {

using test::error_of;
using test::TempDir;
namespace fx = fixture;
namespace fs = std::filesystem;

ImportOptions options_for(const TempDir& dir, const char* def, uint64_t seed = 7) {
  ImportOptions o;
  o.dataset_root = dir.path();
  o.definition_name = def;
  o.seed = seed;
  o.threads = 2;
  return o;
}

std::string import_to(const TempDir& dir, const ImportOptions& o, const std::string& name) {
  const std::string out = dir.file(name);
  (void)write_import(out, plan_import(o), /*overwrite=*/false);
  return out;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Import : public ::testing::Test {
 protected:
  void SetUp() override { fx::write_dataset(dir.path()); }
  TempDir dir;
};

TEST_F(Import, IndexerRoundTrip) {
  const std::string path = import_to(dir, options_for(dir, fx::kIndexerDef), "idx.h5");
  const std::vector<fx::IndexerWorkload> want = fx::indexer_workloads();
  const io::WorkloadFile file(path, io::Stage::indexer);
  const io::WorkloadInfo& info = file.info();
  EXPECT_EQ(info.batch_offsets, (std::vector<int64_t>{0, 1, 4, 6}));
  EXPECT_EQ(info.rows, 6);
  EXPECT_EQ(info.num_pages, 40);     // the largest num_pages: one shared pool
  EXPECT_EQ(info.max_num_pages, 6);  // the widest block table
  EXPECT_FALSE(info.has("/kv/ckv")) << "no attention data without --pipeline";
  EXPECT_FALSE(info.has("/queries/sparse_indices"));
  EXPECT_EQ(info.text_attributes.at("fib_definition"), fx::kIndexerDef);
  EXPECT_EQ(info.text_attributes.at("import_seed"), "7");
  EXPECT_DOUBLE_EQ(info.sm_scale, 1.0 / 24.0);
  EXPECT_NO_THROW((void)file.check_contents());

  for (std::size_t b = 0; b < want.size(); ++b) {
    const fx::IndexerWorkload& w = want[b];
    const io::QueryRows q = file.read_rows(info.batch_offsets[b], w.rows);
    EXPECT_EQ(q.seq_lens, w.seq_lens) << "batch " << b;
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t k = 0; k < info.max_num_pages; ++k)
        EXPECT_EQ(q.block_table[static_cast<std::size_t>(r * info.max_num_pages + k)],
                  k < w.width ? w.block_table[static_cast<std::size_t>(r * w.width + k)] : 0)
            << "batch " << b << " row " << r << " entry " << k << " (recorded, then padded with page 0)";
    // q_index: e4m3 of N(0,1) clamped to [-2, 2], as FlashInfer-Bench's _rand_tensor.
    float amax = 0;
    std::set<uint8_t> codes(q.q_index.begin(), q.q_index.end());
    for (const uint8_t c : q.q_index) amax = std::max(amax, std::fabs(ref::e4m3_to_float(c)));
    EXPECT_LE(amax, 2.0f);
    EXPECT_EQ(amax, 2.0f) << "some normals reach the clamp";
    EXPECT_GT(codes.size(), 50u);
    if (!w.weights.empty()) {
      EXPECT_EQ(q.weights, w.weights) << "recorded weights are kept";
    }
  }

  // Weights of random batches: unit normals (mean about 0, variance about 1).
  const io::QueryRows q = file.read_rows(1, 3);
  double sum = 0, sq = 0;
  for (const float x : q.weights) {
    sum += x;
    sq += double{x} * x;
  }
  const double n = static_cast<double>(q.weights.size());
  EXPECT_NEAR(sum / n, 0.0, 0.3);
  EXPECT_NEAR(sq / n, 1.0, 0.35);

  // KV: dsa-gen's make_kv pages for this seed (DeepGEMM packing of bf16 normals, scale amax/448).
  const io::KvCache kv = file.read_kv();
  const io::KvCache expect = gen::make_kv(7, 0, 40, true, false, 1);
  EXPECT_EQ(kv.index_k, expect.index_k);
  float scale = 0;
  std::memcpy(&scale, kv.index_k.data() + kIndexPageFp8Bytes, 4);
  float amax = 0;
  for (int d = 0; d < kIndexHeadDim; ++d) amax = std::max(amax, std::fabs(ref::e4m3_to_float(kv.index_k[static_cast<std::size_t>(d)])));
  EXPECT_EQ(amax, 448.0f) << "each token's largest value maps to e4m3's largest";
  EXPECT_GT(scale * 448.0f, 1.5f);
  EXPECT_LT(scale * 448.0f, 4.0f);
}

TEST_F(Import, AttentionRoundTrip) {
  const std::string path = import_to(dir, options_for(dir, fx::kAttentionDef), "att.h5");
  const std::vector<fx::AttentionWorkload> want = fx::attention_workloads();
  const io::WorkloadFile file(path, io::Stage::attention);
  const io::WorkloadInfo& info = file.info();
  EXPECT_EQ(info.batch_offsets, (std::vector<int64_t>{0, 1, 4, 6}));
  EXPECT_EQ(info.num_pages, 40);
  EXPECT_DOUBLE_EQ(info.sm_scale, fx::kSmScale) << "the scalar input becomes the file's sm_scale";
  EXPECT_FALSE(info.has("/kv/index_k"));
  EXPECT_FALSE(info.has("/queries/block_table"));
  EXPECT_NO_THROW((void)file.check_contents());
  for (std::size_t b = 0; b < want.size(); ++b) {
    const io::QueryRows q = file.read_rows(info.batch_offsets[b], want[b].rows);
    EXPECT_EQ(q.sparse_indices, want[b].sparse) << "batch " << b;
    if (!want[b].q_pe.empty()) {
      EXPECT_EQ(q.q_pe, want[b].q_pe) << "recorded q_pe is kept";
    }
    // q_nope: bf16 normals.
    float amax = 0;
    for (const uint16_t v : q.q_nope) amax = std::max(amax, std::fabs(ref::bf16_to_float(v)));
    EXPECT_GT(amax, 2.0f);
    EXPECT_LT(amax, 3.5f);
  }
  const io::KvCache kv = file.read_kv();
  const io::KvCache expect = gen::make_kv(7, 0, 40, false, true, 1);
  EXPECT_EQ(kv.ckv, expect.ckv);
  EXPECT_EQ(kv.kpe, expect.kpe);
}

TEST_F(Import, EachBatchKeepsItsWorkload) {
  const std::string path = import_to(dir, options_for(dir, fx::kAttentionDef), "att.h5");
  const io::BatchAttributes attrs = io::read_batch_attributes(path);
  const std::vector<ojson> lines = fx::attention_lines();
  ASSERT_EQ(attrs.size(), 3u);
  for (std::size_t b = 0; b < attrs.size(); ++b) {
    EXPECT_EQ(attrs[b].at("definition"), fx::kAttentionDef);
    EXPECT_EQ(attrs[b].at("stage"), "attention");
    EXPECT_EQ(attrs[b].at("uuid"), lines[b]["workload"]["uuid"]);
    EXPECT_EQ(ojson::parse(attrs[b].at("axes")), lines[b]["workload"]["axes"]);
    EXPECT_EQ(ojson::parse(attrs[b].at("inputs")), lines[b]["workload"]["inputs"]);
    EXPECT_EQ(attrs[b].at("jsonl_line"), std::to_string(b + 1));
    EXPECT_DOUBLE_EQ(std::stod(attrs[b].at("sm_scale")), fx::kSmScale) << "scalar inputs become attributes";
  }
}

TEST_F(Import, SameSeedSameBytesAndRowsDependOnTheirWorkloadOnly) {
  const std::string a = import_to(dir, options_for(dir, fx::kIndexerDef, 11), "a.h5");
  const std::string b = import_to(dir, options_for(dir, fx::kIndexerDef, 11), "b.h5");
  EXPECT_EQ(bytes_of(a), bytes_of(b));
  const std::string c = import_to(dir, options_for(dir, fx::kIndexerDef, 12), "c.h5");
  const io::QueryRows qa = io::WorkloadFile(a, io::Stage::indexer).read_rows(0, 1);
  const io::QueryRows qc = io::WorkloadFile(c, io::Stage::indexer).read_rows(0, 1);
  EXPECT_NE(qa.q_index, qc.q_index) << "another seed, other random rows";

  // Only the second workload: its rows equal those it has in the full import.
  ImportOptions o = options_for(dir, fx::kIndexerDef, 11);
  o.workloads_path = dir.file("two.jsonl");
  fx::write_text(o.workloads_path, fx::jsonl({fx::indexer_lines()[1]}));
  const std::string d = import_to(dir, o, "d.h5");
  const io::QueryRows full = io::WorkloadFile(a, io::Stage::indexer).read_rows(1, 3);
  const io::QueryRows alone = io::WorkloadFile(d, io::Stage::indexer).read_rows(0, 3);
  EXPECT_EQ(full.q_index, alone.q_index);
  EXPECT_EQ(full.weights, alone.weights);
}

TEST_F(Import, PipelineAddsRandomAttentionInputs) {
  ImportOptions o = options_for(dir, fx::kIndexerDef);
  o.pipeline = true;
  o.sm_scale = 0.125;
  o.limit = 2;
  const std::string path = import_to(dir, o, "pipe.h5");
  const io::WorkloadFile file(path, io::Stage::pipeline);
  EXPECT_EQ(file.info().num_batches(), 2);
  EXPECT_DOUBLE_EQ(file.info().sm_scale, 0.125);
  EXPECT_NO_THROW((void)file.check_contents());
  const io::QueryRows q = file.read_rows(0, 4);
  EXPECT_EQ(q.q_nope.size(), 4u * kHeads * kCkvDim);
  EXPECT_THROW((void)io::WorkloadFile(path, io::Stage::attention), dsa::Error) << "no sparse_indices";
}

TEST_F(Import, WritesNothingUnderTheNameUntilComplete) {
  const ImportPlan plan = plan_import(options_for(dir, fx::kIndexerDef));
  const std::string out = dir.file("w.h5");
  fx::write_text(out, "old");
  EXPECT_CONTAINS(error_of([&] { (void)write_import(out, plan, false); }), "refusing to overwrite existing");
  EXPECT_EQ(bytes_of(out), "old");
  EXPECT_NO_THROW((void)write_import(out, plan, true));
  EXPECT_EQ(io::WorkloadFile(out, io::Stage::indexer).info().num_batches(), 3);
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  EXPECT_CONTAINS(error_of([&] { (void)write_import(dir.file("no/such/dir/w.h5"), plan, false); }), "no folder");
}

// ---- Bad input: one line naming the file, the workload and what is wrong. --------------------

class ImportErrors : public Import {
 protected:
  // Rewrites the indexer (or attention) JSONL with `edit` applied to line `index`, and plans.
  template <typename Edit>
  std::string reason(const char* def, std::size_t index, Edit edit) {
    std::vector<ojson> lines = def == std::string(fx::kIndexerDef) ? fx::indexer_lines() : fx::attention_lines();
    edit(lines[index]);
    ImportOptions o = options_for(dir, def);
    o.workloads_path = dir.file("edited.jsonl");
    fx::write_text(o.workloads_path, fx::jsonl(lines));
    return error_of([&] { (void)plan_import(o); });
  }
  template <typename Edit>
  std::string definition_reason(const char* def, Edit edit) {
    ojson d = def == std::string(fx::kIndexerDef) ? fx::indexer_definition() : fx::attention_definition();
    edit(d);
    ImportOptions o = options_for(dir, def);
    o.definition_path = dir.file("edited.json");
    fx::write_text(o.definition_path, d.dump());
    return error_of([&] { (void)plan_import(o); });
  }
  std::string blob_file(const char* def, const std::string& uuid) const {
    return (fs::path(dir.path()) / fx::blob_path(def, uuid)).lexically_normal().string();
  }
  void write_blob(const char* def, const std::string& uuid, const std::vector<StTensor>& t) {
    write_safetensors(dir.file(fx::blob_path(def, uuid)), t);
  }
};

TEST_F(ImportErrors, OtherDefinitionVariantsAreRefusedByTheAxisThatDiffers) {
  EXPECT_CONTAINS(definition_reason(fx::kIndexerDef, [](ojson& d) { d["axes"]["page_size"]["value"] = 1; }),
                  "dimension 1 is axis \"page_size\" = 1; this program computes 64");
  EXPECT_CONTAINS(definition_reason(fx::kIndexerDef, [](ojson& d) { d["axes"]["topk"]["value"] = 256; }),
                  "output \"topk_indices\": dimension 1 is axis \"topk\" = 256; this program computes 2048");
  EXPECT_CONTAINS(definition_reason(fx::kAttentionDef, [](ojson& d) { d["axes"]["num_qo_heads"] = {{"type", "var"}}; }),
                  "dimension 1 is the variable axis \"num_qo_heads\"; this program computes only 16");
  EXPECT_CONTAINS(definition_reason(fx::kAttentionDef, [](ojson& d) { d["inputs"]["q_nope"]["dtype"] = "float16"; }),
                  "input \"q_nope\": dtype float16, this program computes bfloat16");
  EXPECT_CONTAINS(definition_reason(fx::kAttentionDef, [](ojson& d) { d["inputs"]["sm_scale"]["shape"] = {"num_tokens"}; }),
                  "input \"sm_scale\": has a shape, expected a scalar");
  EXPECT_CONTAINS(definition_reason(fx::kAttentionDef, [](ojson& d) { d["inputs"]["q_pe"]["shape"][0] = "num_pages"; }),
                  "(the rows) is axis \"num_pages\", but other tensors use \"num_tokens\"");
  EXPECT_CONTAINS(definition_reason(fx::kAttentionDef, [](ojson& d) { d["inputs"].erase("q_pe"); }), "no input \"q_pe\"");
  EXPECT_CONTAINS(definition_reason(fx::kIndexerDef, [](ojson& d) { d["inputs"]["bias"] = {{"shape", {"batch_size"}}, {"dtype", "float32"}}; }),
                  "input \"bias\" is not one this program computes");
  EXPECT_CONTAINS(definition_reason(fx::kIndexerDef, [](ojson& d) { d["name"] = "other"; }), "its name is \"other\"");
  EXPECT_CONTAINS(definition_reason(fx::kIndexerDef, [](ojson& d) { d["inputs"] = {{"x", {{"shape", nullptr}, {"dtype", "int32"}}}}; }),
                  "neither a DSA top-k indexer");
}

TEST_F(ImportErrors, InputsOfTheWrongKind) {
  const std::string uuid = fx::indexer_workloads()[1].uuid;
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["inputs"]["seq_lens"] = {{"type", "random"}}; }),
                  "(uuid " + uuid + "): input seq_lens is random; dsa-import needs it recorded");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["inputs"].erase("block_table"); }),
                  "input block_table is random");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [&](ojson& l) {
                    l["workload"]["inputs"]["k_index_cache_fp8"] = fx::tensor_input(fx::kIndexerDef, uuid, "k");
                  }),
                  "input k_index_cache_fp8 is recorded (safetensors); dsa-import generates the KV caches");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["inputs"]["weights"] = {{"type", "scalar"}, {"value", 1}}; }),
                  "input weights is a scalar, expected a tensor");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["inputs"]["bias"] = {{"type", "random"}}; }),
                  "input \"bias\" is not an input of dsa_topk_indexer");
  EXPECT_CONTAINS(reason(fx::kAttentionDef, 0, [](ojson& l) { l["workload"]["inputs"]["sm_scale"] = {{"type", "random"}}; }),
                  "input sm_scale is random, expected a scalar value");
  EXPECT_CONTAINS(reason(fx::kAttentionDef, 0, [](ojson& l) { l["workload"]["inputs"]["sm_scale"]["value"] = true; }),
                  "input sm_scale: value true, expected a finite number");
  EXPECT_CONTAINS(reason(fx::kAttentionDef, 2, [](ojson& l) { l["workload"]["inputs"]["sm_scale"]["value"] = 0.1; }),
                  "sm_scale 0.1 differs from 0.13523377886088");
}

TEST_F(ImportErrors, AxesAndRecordedTensorsThatDisagree) {
  const std::string uuid = fx::indexer_workloads()[1].uuid;
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["axes"].erase("max_num_pages"); }),
                  "(uuid " + uuid + "): axes lack \"max_num_pages\"");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["axes"]["page_size"] = 32; }),
                  "axis page_size = 32, but the definition fixes it at 64");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["axes"]["batch_size"] = 0; }),
                  "batch_size = 0; a batch needs at least one row");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["axes"]["batch_size"] = 2; }),
                  "input seq_lens: tensor \"seq_lens\" of " + blob_file(fx::kIndexerDef, uuid) +
                      " has shape [3], the axes give [2]");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["inputs"]["seq_lens"]["tensor_key"] = "lens"; }),
                  "has no tensor \"lens\"");
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson& l) { l["workload"]["inputs"]["seq_lens"]["path"] = "./blob/none.safetensors"; }),
                  "blob/none.safetensors: no such file");
  write_blob(fx::kIndexerDef, uuid, {make_st_tensor("seq_lens", StDtype::I64, {3}, std::vector<int64_t>{0, 64, 330}),
                                     make_st_tensor("block_table", StDtype::I32, {3, 6}, fx::indexer_workloads()[1].block_table)});
  EXPECT_CONTAINS(reason(fx::kIndexerDef, 1, [](ojson&) {}), "tensor \"seq_lens\" of " + blob_file(fx::kIndexerDef, uuid) +
                                                                 " is I64, the definition's int32 is I32");
}

TEST_F(ImportErrors, ContentsOutOfRange) {
  const fx::IndexerWorkload w = fx::indexer_workloads()[1];
  auto with = [&](std::vector<int32_t> lens, std::vector<int32_t> table) {
    write_blob(fx::kIndexerDef, w.uuid, {make_st_tensor("seq_lens", StDtype::I32, {3}, lens),
                                         make_st_tensor("block_table", StDtype::I32, {3, 6}, table)});
    return reason(fx::kIndexerDef, 1, [](ojson&) {});
  };
  std::vector<int32_t> table = w.block_table;
  EXPECT_CONTAINS(with({0, 64, 385}, table), "(uuid " + w.uuid + "): seq_lens[2] = 385, outside [0, max_num_pages * 64 = 384]");
  EXPECT_CONTAINS(with({-1, 64, 330}, table), "seq_lens[0] = -1");
  table[6] = 40;
  EXPECT_CONTAINS(with(w.seq_lens, table), "block_table[1][0] = 40, outside the workload's 40 pages");
  table = w.block_table;
  table[13] = 20;
  EXPECT_CONTAINS(with(w.seq_lens, table), "block_table[2][1] = 20 repeats a page of the row's first seq_len tokens");

  const fx::AttentionWorkload a = fx::attention_workloads()[0];
  std::vector<int32_t> sparse = a.sparse;
  sparse[5] = 6 * 64;
  write_blob(fx::kAttentionDef, a.uuid, {make_st_tensor("sparse_indices", StDtype::I32, {1, kTopK}, sparse)});
  EXPECT_CONTAINS(reason(fx::kAttentionDef, 0, [](ojson&) {}), "sparse_indices[0][5] = 384, outside [-1, num_pages * 64 = 384)");
  sparse[5] = -2;
  write_blob(fx::kAttentionDef, a.uuid, {make_st_tensor("sparse_indices", StDtype::I32, {1, kTopK}, sparse)});
  EXPECT_CONTAINS(reason(fx::kAttentionDef, 0, [](ojson&) {}), "sparse_indices[0][5] = -2");
}

TEST_F(ImportErrors, OptionsThatDoNotFit) {
  ImportOptions o = options_for(dir, fx::kAttentionDef);
  o.pipeline = true;
  EXPECT_CONTAINS(error_of([&] { (void)plan_import(o); }), "--pipeline needs the indexer definition");
  o = options_for(dir, fx::kAttentionDef);
  o.sm_scale = 0.5;
  EXPECT_CONTAINS(error_of([&] { (void)plan_import(o); }), "--sm-scale: the workloads of");
  o = options_for(dir, "dsa_topk_indexer_fp8_h64_d128_topk256_ps64");
  EXPECT_CONTAINS(error_of([&] { (void)plan_import(o); }), "no file dsa_topk_indexer_fp8_h64_d128_topk256_ps64.json");
  o = options_for(dir, fx::kIndexerDef);
  o.workloads_path = dir.file(std::string("workloads/dsa_paged/") + fx::kAttentionDef + ".jsonl");
  EXPECT_CONTAINS(error_of([&] { (void)plan_import(o); }), "line 1: definition \"dsa_sparse_attention");
}

}  // namespace
}  // namespace dsa::import
