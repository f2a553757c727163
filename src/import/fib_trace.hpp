// dsa-run's per-batch figures as FlashInfer-Bench traces (JSONL, one trace per batch), so that
// runs over imported workloads line up with FlashInfer-Bench's tooling (TraceSet reads
// <root>/traces/**/*.jsonl).
//
// A trace (flashinfer_bench/data/trace.py, workload.py), one JSON object per line:
//   {"definition": "<name>",
//    "workload": {"uuid": ..., "axes": {...}, "inputs": {...}},      as the dataset wrote them
//    "solution": "<solution name>",
//    "evaluation": {"status": "PASSED" | "INCORRECT_NUMERICAL" | "RUNTIME_ERROR" | ...,
//                   "environment": {"hardware": "<device>", "libs": {"<lib>": "<version>"}},
//                   "timestamp": "<ISO 8601>", "log": "<text>",
//                   "correctness": {"max_relative_error": x, "max_absolute_error": x,
//                                   "extra": {...}},              PASSED, INCORRECT_NUMERICAL
//                   "performance": {"latency_ms": x, "reference_latency_ms": 0,
//                                   "speedup_factor": 0}}}        PASSED only
// FlashInfer-Bench's Evaluation validator requires correctness and performance for PASSED,
// correctness alone for INCORRECT_NUMERICAL, and neither for the other statuses; this writer
// follows those rules.
//
// How dsa-run's figures map:
//   latency_ms    = BatchRecord::seconds * 1000: the batch's wall time on rank 0 (compute,
//                   gather and write), an upper bound of the kernel time FlashInfer-Bench
//                   measures; one batch is one FlashInfer-Bench workload, so per call.
//   reference_latency_ms, speedup_factor = 0 (no reference was timed).
//   hardware      = JobHeader::devices[0] (rank 0's device); libs: dsa-batch, backend, MPI,
//                   HDF5 versions.
//   correctness   = measured errors when the caller has them; otherwise the errors are NaN,
//                   written as the string "NaN" (FlashInfer-Bench's Correctness accepts NaN
//                   and serialises it that way, ser_json_inf_nan="strings"), with extra =
//                   {"verified": false}: dsa-run does not check its results, dsa-verify does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/import/fib_dataset.hpp"
#include "src/report/report.hpp"

namespace dsa::import {

// Where a batch of an imported workload file came from (its per-batch attributes).
struct BatchTag {
  std::string definition;  // e.g. dsa_topk_indexer_fp8_h64_d128_topk2048_ps64
  std::string stage;       // the dsa-run stage that computes exactly this definition
  std::string uuid;
  ojson axes;              // as the dataset wrote them
  ojson inputs;
};

// The tags of every batch of `workload_path`, indexed by batch number; empty when the file was
// not made by dsa-import (no per-batch attributes). Throws dsa::Error on a malformed one.
std::vector<BatchTag> read_batch_tags(const std::string& workload_path);

// Throws dsa::Error unless dsa-run's `stage` computes what the tags' definition defines: a
// trace times one definition, so the indexer definition needs --stage indexer and the
// attention one --stage attention (a pipeline run times both together). Call it before the
// job starts, so a mismatch is refused before any compute.
void check_trace_stage(const std::vector<BatchTag>& tags, const std::string& stage);

enum class EvalStatus {
  passed,
  incorrect_shape,
  incorrect_numerical,
  incorrect_dtype,
  runtime_error,
  compile_error,
  timeout,
};
const char* eval_status_name(EvalStatus status);  // "PASSED", "INCORRECT_NUMERICAL", ...

// The outcome of one batch. A default one is a completed batch whose results were not checked.
struct BatchEvaluation {
  EvalStatus status = EvalStatus::passed;
  std::optional<double> max_absolute_error;  // measured (e.g. by dsa-verify's criteria)
  std::optional<double> max_relative_error;
  std::string log;                           // appended to the trace's log
};

struct TraceOptions {
  std::string solution;   // "" = "dsa-batch-<backend>"
  std::string timestamp;  // "" = now, UTC, ISO 8601
};

// Writes one trace per record of `batches` (a resumed job passes the batches it ran) to
// `path` as JSONL, through a temporary file renamed into place. `tags` are
// read_batch_tags(workload) (indexed by BatchRecord::batch); `evaluations` is empty (every
// batch completed, unverified) or holds one entry per record. Throws dsa::Error with one line
// when tags are missing or do not cover a batch, the stage does not match
// (check_trace_stage), the sizes disagree, or the file cannot be written.
void write_fib_traces(const std::string& path, const report::JobHeader& header,
                      const std::vector<report::BatchRecord>& batches, const std::vector<BatchTag>& tags,
                      const std::vector<BatchEvaluation>& evaluations = {},
                      const TraceOptions& options = {});

// One trace as a JSON object (what write_fib_traces writes per line).
ojson make_fib_trace(const report::JobHeader& header, const report::BatchRecord& batch, const BatchTag& tag,
                     const BatchEvaluation& evaluation, const TraceOptions& options);

}  // namespace dsa::import
