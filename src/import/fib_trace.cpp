#include "src/import/fib_trace.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "io/batch_attrs.hpp"

namespace dsa::import {

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
  return buf;
}

const std::string& attribute(const std::map<std::string, std::string>& attrs, const char* key,
                             const std::string& path, std::size_t batch) {
  const auto it = attrs.find(key);
  if (it == attrs.end()) fail(path, ": batch ", batch, " has no '", key, "' attribute (not made by dsa-import?)");
  return it->second;
}

// Errors as FlashInfer-Bench serialises floats (ser_json_inf_nan="strings").
ojson error_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

}  // namespace

std::vector<BatchTag> read_batch_tags(const std::string& workload_path) {
  const io::BatchAttributes attrs = io::read_batch_attributes(workload_path);
  std::vector<BatchTag> tags;
  for (std::size_t b = 0; b < attrs.size(); ++b) {
    BatchTag t;
    t.definition = attribute(attrs[b], "definition", workload_path, b);
    t.stage = attribute(attrs[b], "stage", workload_path, b);
    t.uuid = attribute(attrs[b], "uuid", workload_path, b);
    for (auto [key, out] : {std::pair{"axes", &t.axes}, std::pair{"inputs", &t.inputs}}) {
      const std::string& text = attribute(attrs[b], key, workload_path, b);
      try {
        *out = ojson::parse(text);
      } catch (const ojson::exception&) {
        fail(workload_path, ": batch ", b, ": attribute '", key, "' is not valid JSON");
      }
      if (!out->is_object()) fail(workload_path, ": batch ", b, ": attribute '", key, "' is not a JSON object");
    }
    tags.push_back(std::move(t));
  }
  return tags;
}

void check_trace_stage(const std::vector<BatchTag>& tags, const std::string& stage) {
  if (tags.empty())
    fail("FlashInfer-Bench traces need a workload made by dsa-import (its batches carry the "
         "definition and workload uuids)");
  for (const BatchTag& t : tags)
    if (t.stage != stage)
      fail("FlashInfer-Bench traces of ", t.definition, " time the ", t.stage, " stage, but the job runs --stage ",
           stage, (stage == "pipeline" ? " (indexer and attention timed together)" : ""));
}

const char* eval_status_name(EvalStatus status) {
  switch (status) {
    case EvalStatus::passed: return "PASSED";
    case EvalStatus::incorrect_shape: return "INCORRECT_SHAPE";
    case EvalStatus::incorrect_numerical: return "INCORRECT_NUMERICAL";
    case EvalStatus::incorrect_dtype: return "INCORRECT_DTYPE";
    case EvalStatus::runtime_error: return "RUNTIME_ERROR";
    case EvalStatus::compile_error: return "COMPILE_ERROR";
    case EvalStatus::timeout: return "TIMEOUT";
  }
  return "RUNTIME_ERROR";
}

ojson make_fib_trace(const report::JobHeader& header, const report::BatchRecord& batch, const BatchTag& tag,
                     const BatchEvaluation& evaluation, const TraceOptions& options) {
  ojson libs = ojson::object();
  libs["dsa-batch"] = header.program_version;
  libs["backend"] = header.backend;
  if (!header.mpi_version.empty()) libs["mpi"] = header.mpi_version;
  if (!header.hdf5_version.empty()) libs["hdf5"] = header.hdf5_version;
  const std::string hardware = header.devices.empty() || header.devices[0].empty() ? header.backend
                                                                                    : header.devices[0];
  ojson eval = ojson::object();
  eval["status"] = eval_status_name(evaluation.status);
  eval["environment"] = {{"hardware", hardware.empty() ? std::string("unknown") : hardware}, {"libs", libs}};
  eval["timestamp"] = options.timestamp.empty() ? utc_now() : options.timestamp;
  std::string log = concat("dsa-run ", header.program_version, " --stage ", header.stage, " --backend ",
                           header.backend, ": batch ", batch.batch, " of ", header.workload_path, ", ",
                           batch.rows, " rows on ", batch.ranks, " rank(s), ", batch.seconds,
                           " s wall on rank 0 (compute + gather + write)");
  if (!evaluation.log.empty()) log += "\n" + evaluation.log;
  eval["log"] = log;

  const bool with_correctness = evaluation.status == EvalStatus::passed ||
                                evaluation.status == EvalStatus::incorrect_numerical;
  if (with_correctness) {
    const bool verified = evaluation.max_absolute_error.has_value() && evaluation.max_relative_error.has_value();
    ojson correctness = ojson::object();
    correctness["max_relative_error"] = error_value(verified ? *evaluation.max_relative_error : NAN);
    correctness["max_absolute_error"] = error_value(verified ? *evaluation.max_absolute_error : NAN);
    correctness["extra"] = {{"verified", verified}};
    eval["correctness"] = correctness;
  }
  if (evaluation.status == EvalStatus::passed) {
    eval["performance"] = {{"latency_ms", batch.seconds * 1e3},
                           {"reference_latency_ms", 0.0},
                           {"speedup_factor", 0.0}};
  }

  ojson trace = ojson::object();
  trace["definition"] = tag.definition;
  trace["workload"] = {{"uuid", tag.uuid}, {"axes", tag.axes}, {"inputs", tag.inputs}};
  trace["solution"] = options.solution.empty() ? "dsa-batch-" + header.backend : options.solution;
  trace["evaluation"] = eval;
  return trace;
}

void write_fib_traces(const std::string& path, const report::JobHeader& header,
                      const std::vector<report::BatchRecord>& batches, const std::vector<BatchTag>& tags,
                      const std::vector<BatchEvaluation>& evaluations, const TraceOptions& options) {
  namespace fs = std::filesystem;
  check_trace_stage(tags, header.stage);
  DSA_REQUIRE(evaluations.empty() || evaluations.size() == batches.size(), path, ": ", evaluations.size(),
              " evaluations for ", batches.size(), " batches");
  DSA_REQUIRE(header.batches == 0 || static_cast<int64_t>(tags.size()) == header.batches, path, ": ",
              tags.size(), " batch tags, but the workload has ", header.batches, " batches");
  std::string text;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const report::BatchRecord& b = batches[i];
    DSA_REQUIRE(b.batch >= 0 && b.batch < static_cast<int64_t>(tags.size()), path, ": batch ", b.batch,
                " has no tag (the workload has ", tags.size(), " tagged batches)");
    const BatchEvaluation eval = evaluations.empty() ? BatchEvaluation{} : evaluations[i];
    text += make_fib_trace(header, b, tags[static_cast<std::size_t>(b.batch)], eval, options).dump();
    text += "\n";
  }
  const std::string temp = concat(path, ".tmp-", static_cast<long>(::getpid()));
  std::error_code ec;
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    DSA_REQUIRE(out.good(), path, ": cannot write the traces (", std::strerror(errno), ")");
    out << text;
    out.close();
    if (!out.good()) {
      fs::remove(temp, ec);
      fail(path, ": writing the traces failed");
    }
  }
  fs::rename(temp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(temp, ec);
    fail(path, ": cannot move the traces into place (", why, ")");
  }
}

}  // namespace dsa::import
