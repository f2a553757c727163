// The FlashInfer-Bench dataset reader: definitions, workload JSONL files, locating them.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "src/import/fib_dataset.hpp"
#include "tests/import/fib_fixture.hpp"
#include "tests/import/import_test_util.hpp"

namespace dsa::import {
namespace {

using test::error_of;
using test::TempDir;
namespace fx = fixture;

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  fx::write_text(dir.file(name), text);
  return dir.file(name);
}

TEST(Definition, ReadsBothDsaDefinitions) {
  TempDir dir;
  const Definition idx = read_definition(write(dir, "i.json", fx::indexer_definition().dump()));
  EXPECT_EQ(idx.name, fx::kIndexerDef);
  EXPECT_EQ(idx.op_type, "dsa_paged");
  ASSERT_EQ(idx.inputs.size(), 5u);
  EXPECT_EQ(idx.inputs[0].first, "q_index_fp8");  // file order kept
  EXPECT_EQ(idx.input("k_index_cache_fp8")->shape.size(), 4u);
  EXPECT_EQ(idx.input("k_index_cache_fp8")->dtype, "int8");
  EXPECT_TRUE(idx.axes.at("page_size").is_const);
  EXPECT_EQ(idx.axes.at("head_dim_with_scale").value, 132);
  EXPECT_FALSE(idx.axes.at("batch_size").is_const);

  const Definition att = read_definition(write(dir, "a.json", fx::attention_definition().dump()));
  EXPECT_TRUE(att.input("sm_scale")->scalar);
  EXPECT_EQ(att.output("lse")->dtype, "float32");
  EXPECT_EQ(att.input("nope"), nullptr);
}

TEST(Definition, RefusesMalformedOnes) {
  TempDir dir;
  auto reason = [&](const ojson& def) {
    return error_of([&] { (void)read_definition(write(dir, "d.json", def.dump())); });
  };
  EXPECT_CONTAINS(error_of([&] { (void)read_definition(write(dir, "d.json", "{\"name\": ")); }), "d.json: not valid JSON");
  EXPECT_CONTAINS(error_of([&] { (void)read_definition(dir.file("none.json")); }), "none.json: no such file");
  EXPECT_CONTAINS(reason(ojson::array()), "the definition is an array, expected an object");

  ojson d = fx::indexer_definition();
  d.erase("name");
  EXPECT_CONTAINS(reason(d), "missing \"name\"");
  d = fx::indexer_definition();
  d["axes"]["page_size"].erase("value");
  EXPECT_CONTAINS(reason(d), "axis \"page_size\": missing \"value\"");
  d = fx::indexer_definition();
  d["axes"]["page_size"]["value"] = -64;
  EXPECT_CONTAINS(reason(d), "value -64, expected a non-negative integer");
  d = fx::indexer_definition();
  d["axes"]["page_size"]["type"] = "fixed";
  EXPECT_CONTAINS(reason(d), "type \"fixed\", expected \"const\" or \"var\"");
  d = fx::indexer_definition();
  d["inputs"]["seq_lens"]["shape"] = {"batch"};
  EXPECT_CONTAINS(reason(d), "input \"seq_lens\": shape names axis \"batch\", which \"axes\" does not define");
  d = fx::indexer_definition();
  d["inputs"]["seq_lens"].erase("dtype");
  EXPECT_CONTAINS(reason(d), "input \"seq_lens\": missing \"dtype\"");
  d = fx::indexer_definition();
  d["outputs"] = ojson::object();
  EXPECT_CONTAINS(reason(d), "\"outputs\" is empty");
}

TEST(Workloads, ReadsTheFixtureAndSkipsBlankLines) {
  TempDir dir;
  std::string text = "\n";  // built by appends: GCC 12 warns falsely on "literal" + string (PR 105329)
  text += fx::jsonl(fx::attention_lines());
  text += "  \n";
  const std::vector<WorkloadEntry> w = read_workloads(write(dir, "w.jsonl", text), fx::kAttentionDef);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].line, 2);
  EXPECT_EQ(w[0].uuid, fx::attention_workloads()[0].uuid);
  EXPECT_EQ(w[1].axes.at("num_tokens"), 3);
  EXPECT_EQ(w[1].inputs.at("sparse_indices").type, InputType::safetensors);
  EXPECT_EQ(w[1].inputs.at("sparse_indices").tensor_key, "sparse_indices");
  EXPECT_EQ(w[1].inputs.at("sm_scale").type, InputType::scalar);
  EXPECT_DOUBLE_EQ(w[1].inputs.at("sm_scale").value.get<double>(), fx::kSmScale);
  EXPECT_EQ(w[1].inputs.at("q_nope").type, InputType::random);
  EXPECT_EQ(w[2].inputs_json.begin().key(), "q_nope");  // as written
}

TEST(Workloads, RefusesMalformedLines) {
  TempDir dir;
  const std::vector<ojson> good = fx::indexer_lines();
  auto reason = [&](const ojson& line) {
    return error_of([&] {
      (void)read_workloads(write(dir, "w.jsonl", good[0].dump() + "\n" + line.dump() + "\n"), fx::kIndexerDef);
    });
  };
  EXPECT_CONTAINS(error_of([&] { (void)read_workloads(write(dir, "w.jsonl", "\n\n"), fx::kIndexerDef); }),
                  "w.jsonl: no workloads in it");
  EXPECT_CONTAINS(error_of([&] { (void)read_workloads(write(dir, "w.jsonl", "{\"a\"\n"), fx::kIndexerDef); }),
                  "w.jsonl line 1: not valid JSON");
  EXPECT_CONTAINS(reason(ojson::array()), "w.jsonl line 2: an array, expected a workload trace object");

  ojson l = good[1];
  l["definition"] = fx::kAttentionDef;
  EXPECT_CONTAINS(reason(l), "line 2: definition \"dsa_sparse_attention");
  l = good[0];
  EXPECT_CONTAINS(reason(l), "line 2: uuid " + fx::indexer_workloads()[0].uuid + " repeats line 1");
  l = good[1];
  l["workload"]["uuid"] = "";
  EXPECT_CONTAINS(reason(l), "uuid \"\", expected a non-empty string");
  l = good[1];
  l["workload"].erase("inputs");
  EXPECT_CONTAINS(reason(l), "missing \"inputs\"");
  l = good[1];
  l["workload"]["axes"]["batch_size"] = -3;
  EXPECT_CONTAINS(reason(l), "axis batch_size = -3, expected a non-negative integer");
  l = good[1];
  l["workload"]["inputs"]["seq_lens"] = {{"type", "file"}};
  EXPECT_CONTAINS(reason(l), "input seq_lens: type \"file\", expected \"random\", \"scalar\" or \"safetensors\"");
  l = good[1];
  l["workload"]["inputs"]["seq_lens"].erase("tensor_key");
  EXPECT_CONTAINS(reason(l), "(uuid " + fx::indexer_workloads()[1].uuid + "): input seq_lens: missing \"tensor_key\"");
  l = good[1];
  l["workload"]["inputs"]["weights"] = {{"type", "scalar"}, {"value", "0.5"}};
  EXPECT_CONTAINS(reason(l), "input weights: value is a string, expected a number or a boolean");
}

TEST(Dataset, FindsFilesUnderTheRootAndRefusesAmbiguity) {
  TempDir dir;
  fx::write_dataset(dir.path());
  EXPECT_EQ(find_definition_file(dir.path(), fx::kIndexerDef),
            dir.file(std::string("definitions/dsa_paged/") + fx::kIndexerDef + ".json"));
  EXPECT_EQ(find_workloads_file(dir.path(), fx::kAttentionDef),
            dir.file(std::string("workloads/dsa_paged/") + fx::kAttentionDef + ".jsonl"));
  EXPECT_CONTAINS(error_of([&] { (void)find_definition_file(dir.path(), "gemm_n128"); }),
                  "no file gemm_n128.json in it or its subfolders");
  fx::write_text(dir.file(std::string("definitions/other/") + fx::kIndexerDef + ".json"), "{}");
  EXPECT_CONTAINS(error_of([&] { (void)find_definition_file(dir.path(), fx::kIndexerDef); }), "2 files named");
  EXPECT_CONTAINS(error_of([&] { (void)find_workloads_file(dir.file("nowhere"), "x"); }),
                  "no folder workloads/ (expected a FlashInfer-Bench dataset");
  EXPECT_EQ(resolve_input_path("/data/fib", "./blob/a.safetensors"), "/data/fib/blob/a.safetensors");
  EXPECT_EQ(resolve_input_path("/data/fib", "/abs/a.safetensors"), "/abs/a.safetensors");
}

}  // namespace
}  // namespace dsa::import
