// Per-batch attributes in the io layer, and dsa-run's figures written as FlashInfer-Bench traces.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/batch_attrs.hpp"
#include "io/workload.hpp"
#include "src/import/fib_trace.hpp"
#include "src/import/importer.hpp"
#include "tests/import/fib_fixture.hpp"
#include "tests/import/fib_trace_check.hpp"
#include "tests/import/import_test_util.hpp"

namespace dsa::import {
namespace {

using test::error_of;
using test::fib_trace_problem;
using test::TempDir;
namespace fx = fixture;

// A one-batch-per-row workload file of `batches` batches (no per-batch attributes).
std::string small_workload(const TempDir& dir, int64_t batches) {
  io::WorkloadShape shape;
  shape.num_pages = 1;
  shape.rows = batches;
  shape.max_num_pages = 1;
  shape.sm_scale = 0.1;
  for (int64_t b = 0; b <= batches; ++b) shape.batch_offsets.push_back(b);
  shape.attention_data = false;
  shape.sparse_indices = false;
  const std::string path = dir.file("w.h5");
  io::WorkloadWriter w(path, shape, false);
  w.close();
  return path;
}

TEST(BatchAttributes, RoundTripAndAbsence) {
  TempDir dir;
  const std::string path = small_workload(dir, 3);
  EXPECT_TRUE(io::read_batch_attributes(path).empty()) << "a file without them has none";
  io::BatchAttributes attrs(3);
  attrs[0]["uuid"] = "u-0";
  attrs[0]["axes"] = R"({"batch_size":1})";
  attrs[2]["uuid"] = "u-2";
  attrs[2]["sm_scale"] = "0.125";
  io::write_batch_attributes(path, attrs);
  EXPECT_EQ(io::read_batch_attributes(path), attrs);
  EXPECT_NO_THROW((void)io::WorkloadFile(path, io::Stage::indexer)) << "the workload checks ignore the dataset";
  EXPECT_CONTAINS(error_of([&] { io::write_batch_attributes(path, attrs); }), "/batches/attributes exists already");
}

TEST(BatchAttributes, RefusesBadInput) {
  TempDir dir;
  const std::string path = small_workload(dir, 2);
  EXPECT_CONTAINS(error_of([&] { io::write_batch_attributes(path, io::BatchAttributes(3)); }),
                  "3 sets of batch attributes for 2 batches");
  io::BatchAttributes attrs(2);
  attrs[1]["a b"] = "x";
  EXPECT_CONTAINS(error_of([&] { io::write_batch_attributes(path, attrs); }), "batch 1: attribute key \"a b\"");
  EXPECT_CONTAINS(error_of([&] { (void)io::read_batch_attributes(dir.file("none.h5")); }), "none.h5: no such file");
}

class Traces : public ::testing::Test {
 protected:
  void SetUp() override {
    fx::write_dataset(dir.path());
    ImportOptions o;
    o.dataset_root = dir.path();
    o.definition_name = fx::kAttentionDef;
    workload = dir.file("att.h5");
    (void)write_import(workload, plan_import(o), false);
    header.program_version = "0.1.0";
    header.mpi_version = "Open MPI v4.1.4";
    header.hdf5_version = "1.10.8";
    header.backend = "cuda";
    header.stage = "attention";
    header.workload_path = workload;
    header.devices = {"NVIDIA H100 80GB HBM3 (0)", "NVIDIA H100 80GB HBM3 (1)"};
    header.batches = 3;
    for (int64_t b = 0; b < 3; ++b) {
      report::BatchRecord r;
      r.batch = b;
      r.rows = b + 1;
      r.ranks = 1;
      r.seconds = 0.0125 * static_cast<double>(b + 1);
      records.push_back(r);
    }
  }
  std::vector<ojson> written(const std::string& path) {
    std::ifstream in(path);
    std::vector<ojson> out;
    std::string line;
    while (std::getline(in, line)) out.push_back(ojson::parse(line));
    return out;
  }
  TempDir dir;
  std::string workload;
  report::JobHeader header;
  std::vector<report::BatchRecord> records;
};

TEST_F(Traces, TagsComeFromTheImportedFile) {
  const std::vector<BatchTag> tags = read_batch_tags(workload);
  ASSERT_EQ(tags.size(), 3u);
  const std::vector<ojson> lines = fx::attention_lines();
  for (std::size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(tags[b].definition, fx::kAttentionDef);
    EXPECT_EQ(tags[b].stage, "attention");
    EXPECT_EQ(tags[b].uuid, lines[b]["workload"]["uuid"]);
    EXPECT_EQ(tags[b].axes, lines[b]["workload"]["axes"]);
    EXPECT_EQ(tags[b].inputs, lines[b]["workload"]["inputs"]);
  }
  EXPECT_TRUE(read_batch_tags(small_workload(dir, 2)).empty());
}

TEST_F(Traces, OneValidTracePerBatch) {
  const std::string path = dir.file("traces.jsonl");
  write_fib_traces(path, header, records, read_batch_tags(workload));
  const std::vector<ojson> traces = written(path);
  const std::vector<ojson> lines = fx::attention_lines();
  ASSERT_EQ(traces.size(), 3u);
  for (std::size_t b = 0; b < 3; ++b) {
    const ojson& t = traces[b];
    EXPECT_EQ(fib_trace_problem(t), "") << t.dump();
    EXPECT_EQ(t["definition"], fx::kAttentionDef);
    EXPECT_EQ(t["workload"], lines[b]["workload"]) << "uuid, axes and inputs as the dataset wrote them";
    EXPECT_EQ(t["solution"], "dsa-batch-cuda");
    const ojson& e = t["evaluation"];
    EXPECT_EQ(e["status"], "PASSED");
    EXPECT_EQ(e["environment"]["hardware"], "NVIDIA H100 80GB HBM3 (0)");
    EXPECT_EQ(e["environment"]["libs"]["dsa-batch"], "0.1.0");
    EXPECT_EQ(e["environment"]["libs"]["hdf5"], "1.10.8");
    EXPECT_DOUBLE_EQ(e["performance"]["latency_ms"].get<double>(), 12.5 * static_cast<double>(b + 1));
    EXPECT_EQ(e["performance"]["reference_latency_ms"], 0.0);
    // Not checked by dsa-run: NaN errors (FlashInfer-Bench's own spelling) and verified false.
    EXPECT_EQ(e["correctness"]["max_absolute_error"], "NaN");
    EXPECT_EQ(e["correctness"]["max_relative_error"], "NaN");
    EXPECT_EQ(e["correctness"]["extra"]["verified"], false);
    EXPECT_EQ(e["timestamp"].get<std::string>().size(), 25u) << "YYYY-MM-DDTHH:MM:SS+00:00";
    EXPECT_NE(e["log"].get<std::string>().find("batch " + std::to_string(b)), std::string::npos);
  }
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(Traces, StatusesFollowTheEvaluationRules) {
  std::vector<BatchEvaluation> evals(3);
  evals[0].max_absolute_error = 0.004;
  evals[0].max_relative_error = 0.002;
  evals[1].status = EvalStatus::incorrect_numerical;
  evals[1].max_absolute_error = 0.5;
  evals[1].max_relative_error = 0.25;
  evals[1].log = "row 2: lse off by 0.5";
  evals[2].status = EvalStatus::runtime_error;
  TraceOptions opt;
  opt.solution = "my-kernel";
  opt.timestamp = "2026-01-02T03:04:05";
  const std::string path = dir.file("t.jsonl");
  write_fib_traces(path, header, records, read_batch_tags(workload), evals, opt);
  const std::vector<ojson> t = written(path);
  ASSERT_EQ(t.size(), 3u);
  for (const ojson& x : t) EXPECT_EQ(fib_trace_problem(x), "") << x.dump();
  EXPECT_EQ(t[0]["solution"], "my-kernel");
  EXPECT_EQ(t[0]["evaluation"]["timestamp"], "2026-01-02T03:04:05");
  EXPECT_DOUBLE_EQ(t[0]["evaluation"]["correctness"]["max_absolute_error"].get<double>(), 0.004);
  EXPECT_EQ(t[0]["evaluation"]["correctness"]["extra"]["verified"], true);
  EXPECT_EQ(t[1]["evaluation"]["status"], "INCORRECT_NUMERICAL");
  EXPECT_TRUE(t[1]["evaluation"].contains("correctness"));
  EXPECT_FALSE(t[1]["evaluation"].contains("performance"));
  EXPECT_NE(t[1]["evaluation"]["log"].get<std::string>().find("lse off by 0.5"), std::string::npos);
  EXPECT_EQ(t[2]["evaluation"]["status"], "RUNTIME_ERROR");
  EXPECT_FALSE(t[2]["evaluation"].contains("correctness"));
  EXPECT_FALSE(t[2]["evaluation"].contains("performance"));
}

TEST_F(Traces, AResumedJobWritesTheBatchesItRan) {
  const std::string path = dir.file("t.jsonl");
  write_fib_traces(path, header, {records[2]}, read_batch_tags(workload));
  const std::vector<ojson> t = written(path);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["workload"]["uuid"], fx::attention_workloads()[2].uuid);
}

TEST_F(Traces, RefusesWhatWouldMisattributeTimes) {
  const std::vector<BatchTag> tags = read_batch_tags(workload);
  const std::string path = dir.file("t.jsonl");
  header.stage = "pipeline";
  EXPECT_CONTAINS(error_of([&] { write_fib_traces(path, header, records, tags); }),
                  "traces of dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64 time the attention stage, but the job "
                  "runs --stage pipeline");
  EXPECT_CONTAINS(error_of([&] { check_trace_stage(tags, "indexer"); }), "runs --stage indexer");
  EXPECT_NO_THROW(check_trace_stage(tags, "attention"));
  header.stage = "attention";
  EXPECT_CONTAINS(error_of([&] { write_fib_traces(path, header, records, {}); }), "need a workload made by dsa-import");
  records[1].batch = 7;
  header.batches = 0;
  EXPECT_CONTAINS(error_of([&] { write_fib_traces(path, header, records, tags); }), "batch 7 has no tag");
  EXPECT_CONTAINS(error_of([&] { write_fib_traces(path, header, records, tags, std::vector<BatchEvaluation>(2)); }),
                  "2 evaluations for 3 batches");
  header.batches = 5;
  EXPECT_CONTAINS(error_of([&] { write_fib_traces(path, header, records, tags); }), "3 batch tags, but the workload has 5");
  EXPECT_FALSE(std::filesystem::exists(path)) << "nothing written on a refusal";
}

}  // namespace
}  // namespace dsa::import
