// Reading a FlashInfer-Bench dataset ("flashinfer-trace"): a definition JSON per kernel and a
// JSONL file of workloads per definition. Only the parts dsa-import needs, checked strictly;
// every bad input throws dsa::Error with one line naming the file (and line).
//
// The formats, as flashinfer-ai/flashinfer-bench defines them (flashinfer_bench/data/
// definition.py, workload.py, trace.py, trace_set.py):
//
//   <root>/definitions/<op_type>/<name>.json
//     {"name": ..., "op_type": ..., "axes": {"<axis>": {"type": "const", "value": 64} |
//      {"type": "var"}}, "inputs": {"<input>": {"shape": ["<axis>", ...] | null,
//      "dtype": "bfloat16" | "float8_e4m3fn" | "int32" | ...}}, "outputs": {...},
//      "reference": "<python>", ...}   (shape null = a scalar)
//   <root>/workloads/<op_type>/<name>.jsonl, one workload trace per line:
//     {"definition": "<name>", "solution": null, "evaluation": null,
//      "workload": {"uuid": "...", "axes": {"<var axis>": n, ...},
//                   "inputs": {"<input>": {"type": "random"} |
//                                          {"type": "scalar", "value": 0.135} |
//                                          {"type": "safetensors", "path": "./blob/...",
//                                           "tensor_key": "seq_lens"}}}}
//   Paths of safetensors inputs are relative to <root> (the TraceSet root).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dsa::import {

using ojson = nlohmann::ordered_json;

struct AxisDef {
  bool is_const = false;
  int64_t value = 0;  // const axes only
};

struct TensorSpecDef {
  bool scalar = false;             // "shape": null
  std::vector<std::string> shape;  // axis names
  std::string dtype;               // as written, e.g. "float8_e4m3fn"
};

struct Definition {
  std::string path;
  std::string name;
  std::string op_type;  // "op_type" (older files: "type"); may be empty
  std::map<std::string, AxisDef> axes;
  std::vector<std::pair<std::string, TensorSpecDef>> inputs;   // in file order
  std::vector<std::pair<std::string, TensorSpecDef>> outputs;  // in file order

  const TensorSpecDef* input(const std::string& name) const;
  const TensorSpecDef* output(const std::string& name) const;
};

// Reads and checks a definition: an object with a non-empty name, axes (const with an integer
// value >= 0, or var), inputs and outputs whose shapes name defined axes (or are null) and
// whose dtypes are strings.
Definition read_definition(const std::string& path);

enum class InputType { random, scalar, safetensors };

struct InputSpec {
  InputType type = InputType::random;
  ojson value;              // scalar: the number or boolean
  std::string path;         // safetensors: as written (relative to the dataset root)
  std::string tensor_key;   // safetensors
};

struct WorkloadEntry {
  std::string source;                  // "<jsonl path> line <n>", for messages
  int64_t line = 0;                    // 1-based line in the JSONL file
  std::string uuid;
  std::map<std::string, int64_t> axes;
  ojson axes_json;                     // as written
  ojson inputs_json;                   // as written
  std::map<std::string, InputSpec> inputs;
};

// Reads the workloads of `definition_name` from a JSONL file: blank lines are skipped; every
// other line is a JSON object with "definition" == definition_name and a "workload" holding a
// non-empty "uuid" (unique in the file), "axes" (non-negative integers) and "inputs" (each
// random, scalar with a number or boolean value, or safetensors with non-empty path and
// tensor_key). An empty file (no workloads) is refused.
std::vector<WorkloadEntry> read_workloads(const std::string& path, const std::string& definition_name);

// <root>/definitions/**/<name>.json and <root>/workloads/**/<name>.jsonl: the one file of that
// name under the folder (none or several: an error naming what was searched).
std::string find_definition_file(const std::string& root, const std::string& name);
std::string find_workloads_file(const std::string& root, const std::string& name);

// A safetensors input's file: `path` as is when absolute, else relative to `root`.
std::string resolve_input_path(const std::string& root, const std::string& path);

}  // namespace dsa::import
