// The rules FlashInfer-Bench's pydantic models apply when they load a trace
// (flashinfer_bench/data/trace.py: Trace, Evaluation, Correctness, Performance, Environment;
// workload.py: Workload and its input specs), as a check for the traces this program writes.
#pragma once

#include <string>

#include "src/import/fib_dataset.hpp"

namespace dsa::import::test {

// A float field: a number, or NaN / Infinity as FlashInfer-Bench serialises them (strings).
inline bool fib_float(const ojson& v, bool non_negative) {
  if (v.is_string()) return v == "NaN" || v == "Infinity" || (!non_negative && v == "-Infinity");
  return v.is_number() && (!non_negative || v.get<double>() >= 0);
}

inline bool non_empty_string(const ojson& j, const char* key) {
  return j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty();
}

// "" when `t` is a valid FlashInfer-Bench trace, else the first rule it breaks.
inline std::string fib_trace_problem(const ojson& t) {
  if (!t.is_object()) return "not an object";
  if (!non_empty_string(t, "definition")) return "definition is not a non-empty string";
  if (!t.contains("workload") || !t["workload"].is_object()) return "no workload object";
  const ojson& w = t["workload"];
  if (!non_empty_string(w, "uuid")) return "workload.uuid is not a non-empty string";
  if (!w.contains("axes") || !w["axes"].is_object()) return "workload.axes is not an object";
  for (const auto& [k, v] : w["axes"].items())
    if (!v.is_number_integer() || v.get<int64_t>() < 0) return "workload.axes." + k + " is not a non-negative integer";
  if (!w.contains("inputs") || !w["inputs"].is_object()) return "workload.inputs is not an object";
  for (const auto& [k, v] : w["inputs"].items()) {
    if (!v.is_object() || !v.contains("type")) return "workload.inputs." + k + " has no type";
    if (v["type"] == "scalar" && !(v.contains("value") && (v["value"].is_number() || v["value"].is_boolean())))
      return "workload.inputs." + k + " is a scalar without a value";
    if (v["type"] == "safetensors" && !(non_empty_string(v, "path") && non_empty_string(v, "tensor_key")))
      return "workload.inputs." + k + " lacks path or tensor_key";
    if (v["type"] != "random" && v["type"] != "scalar" && v["type"] != "safetensors")
      return "workload.inputs." + k + " has an unknown type";
  }
  if (t.contains("solution") && !t["solution"].is_null() && !t["solution"].is_string()) return "solution is not a string";
  if (!t.contains("evaluation") || t["evaluation"].is_null()) return "";  // a workload trace
  const ojson& e = t["evaluation"];
  if (!e.is_object()) return "evaluation is not an object";
  static const char* statuses[] = {"PASSED", "INCORRECT_SHAPE", "INCORRECT_NUMERICAL", "INCORRECT_DTYPE",
                                   "RUNTIME_ERROR", "COMPILE_ERROR", "TIMEOUT"};
  if (!e.contains("status") || !e["status"].is_string()) return "evaluation.status is not a string";
  const std::string status = e["status"].get<std::string>();
  bool known = false;
  for (const char* s : statuses) known = known || status == s;
  if (!known) return "evaluation.status " + status + " is unknown";
  if (!e.contains("environment") || !non_empty_string(e["environment"], "hardware"))
    return "evaluation.environment.hardware is not a non-empty string";
  if (e["environment"].contains("libs")) {
    if (!e["environment"]["libs"].is_object()) return "evaluation.environment.libs is not an object";
    for (const auto& [k, v] : e["environment"]["libs"].items())
      if (!v.is_string()) return "evaluation.environment.libs." + k + " is not a string";
  }
  if (!non_empty_string(e, "timestamp")) return "evaluation.timestamp is not a non-empty string";
  if (e.contains("log") && !e["log"].is_string()) return "evaluation.log is not a string";
  const bool has_c = e.contains("correctness") && !e["correctness"].is_null();
  const bool has_p = e.contains("performance") && !e["performance"].is_null();
  const bool want_c = status == "PASSED" || status == "INCORRECT_NUMERICAL";
  const bool want_p = status == "PASSED";
  if (has_c != want_c) return "evaluation." + std::string(want_c ? "lacks" : "must not have") + " correctness for " + status;
  if (has_p != want_p) return "evaluation." + std::string(want_p ? "lacks" : "must not have") + " performance for " + status;
  if (has_c)
    for (const char* k : {"max_relative_error", "max_absolute_error"})
      if (e["correctness"].contains(k) && !fib_float(e["correctness"][k], true))
        return std::string("evaluation.correctness.") + k + " is not a non-negative float or NaN";
  if (has_p)
    for (const char* k : {"latency_ms", "reference_latency_ms", "speedup_factor"})
      if (e["performance"].contains(k) && !(e["performance"][k].is_number() && e["performance"][k].get<double>() >= 0))
        return std::string("evaluation.performance.") + k + " is not a non-negative number";
  return "";
}

}  // namespace dsa::import::test
