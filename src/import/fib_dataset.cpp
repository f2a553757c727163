#include "src/import/fib_dataset.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "src/import/json_text.hpp"

namespace dsa::import {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file");
  if (fs::is_directory(path, ec)) fail(path, ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot be read (", std::strerror(errno), ")");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool as_count(const ojson& j, int64_t& out) {
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(v);
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = j.get<int64_t>();
    return true;
  }
  return false;
}

const ojson& member(const ojson& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) fail(where, ": missing \"", key, "\"");
  return obj[key];
}

// `what` is "inputs" or "outputs"; messages name one tensor as "input" or "output".
std::vector<std::pair<std::string, TensorSpecDef>> read_tensors(const ojson& obj, const std::string& what,
                                                               const Definition& def) {
  const std::string one = what.substr(0, what.size() - 1);
  if (!obj.is_object()) fail(def.path, ": \"", what, "\" is ", json_type(obj), ", expected an object");
  if (obj.empty()) fail(def.path, ": \"", what, "\" is empty");
  std::vector<std::pair<std::string, TensorSpecDef>> out;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string where = concat(def.path, ": ", one, " \"", it.key(), "\"");
    const ojson& t = it.value();
    if (!t.is_object()) fail(where, " is ", json_type(t), ", expected an object with shape and dtype");
    TensorSpecDef spec;
    const ojson& shape = member(t, "shape", where);
    if (shape.is_null()) {
      spec.scalar = true;
    } else {
      if (!shape.is_array()) fail(where, ": shape is ", json_type(shape), ", expected a list of axis names or null");
      for (const ojson& a : shape) {
        if (!a.is_string()) fail(where, ": shape ", shape.dump(), " holds ", a.dump(), ", expected axis names");
        const std::string axis = a.get<std::string>();
        if (def.axes.count(axis) == 0) fail(where, ": shape names axis \"", axis, "\", which \"axes\" does not define");
        spec.shape.push_back(axis);
      }
    }
    const ojson& dtype = member(t, "dtype", where);
    if (!dtype.is_string() || dtype.get<std::string>().empty())
      fail(where, ": dtype is ", json_type(dtype), ", expected a non-empty string");
    spec.dtype = dtype.get<std::string>();
    out.emplace_back(it.key(), std::move(spec));
  }
  return out;
}

std::string find_one(const std::string& root, const std::string& folder, const std::string& file) {
  const fs::path dir = fs::path(root) / folder;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail(root, ": no folder ", folder, "/ (expected a FlashInfer-Bench dataset: definitions/, workloads/, blob/)");
  std::vector<std::string> found;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->path().filename() == file && it->is_regular_file(ec)) found.push_back(it->path().string());
  }
  if (ec) fail(dir.string(), ": cannot be listed (", ec.message(), ")");
  if (found.empty()) fail(dir.string(), ": no file ", file, " in it or its subfolders");
  if (found.size() > 1) {
    std::sort(found.begin(), found.end());
    fail(dir.string(), ": ", found.size(), " files named ", file, " (", found[0], ", ", found[1],
         "); name one with an option");
  }
  return found[0];
}

}  // namespace

const TensorSpecDef* Definition::input(const std::string& n) const {
  for (const auto& [key, spec] : inputs)
    if (key == n) return &spec;
  return nullptr;
}

const TensorSpecDef* Definition::output(const std::string& n) const {
  for (const auto& [key, spec] : outputs)
    if (key == n) return &spec;
  return nullptr;
}

Definition read_definition(const std::string& path) {
  const std::string text = read_text(path);
  ojson root;
  try {
    root = ojson::parse(text);
  } catch (const ojson::exception& e) {
    fail(path, ": not valid JSON: ", json_error_line(e.what()));
  }
  if (!root.is_object()) fail(path, ": the definition is ", json_type(root), ", expected an object");
  Definition def;
  def.path = path;
  const ojson& name = member(root, "name", path);
  if (!name.is_string() || name.get<std::string>().empty())
    fail(path, ": \"name\" is ", json_type(name), ", expected a non-empty string");
  def.name = name.get<std::string>();
  for (const char* key : {"op_type", "type"})
    if (root.contains(key) && root[key].is_string()) {
      def.op_type = root[key].get<std::string>();
      break;
    }

  const ojson& axes = member(root, "axes", path);
  if (!axes.is_object() || axes.empty())
    fail(path, ": \"axes\" is ", json_type(axes), ", expected a non-empty object");
  for (auto it = axes.begin(); it != axes.end(); ++it) {
    const std::string where = concat(path, ": axis \"", it.key(), "\"");
    const ojson& a = it.value();
    if (!a.is_object()) fail(where, " is ", json_type(a), ", expected an object with a type");
    const ojson& type = member(a, "type", where);
    AxisDef axis;
    if (type == "const") {
      axis.is_const = true;
      if (!as_count(member(a, "value", where), axis.value))
        fail(where, ": value ", a["value"].dump(), ", expected a non-negative integer");
    } else if (type != "var") {
      fail(where, ": type ", type.dump(), ", expected \"const\" or \"var\"");
    }
    def.axes[it.key()] = axis;
  }
  def.inputs = read_tensors(member(root, "inputs", path), "inputs", def);
  def.outputs = read_tensors(member(root, "outputs", path), "outputs", def);
  return def;
}

std::vector<WorkloadEntry> read_workloads(const std::string& path, const std::string& definition_name) {
  const std::string text = read_text(path);
  std::vector<WorkloadEntry> out;
  std::map<std::string, int64_t> seen;  // uuid -> line
  std::istringstream lines(text);
  std::string line;
  int64_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = concat(path, " line ", number);
    ojson trace;
    try {
      trace = ojson::parse(line);
    } catch (const ojson::exception& e) {
      fail(where, ": not valid JSON: ", json_error_line(e.what()));
    }
    if (!trace.is_object()) fail(where, ": ", json_type(trace), ", expected a workload trace object");
    const ojson& def = member(trace, "definition", where);
    if (!def.is_string() || def.get<std::string>() != definition_name)
      fail(where, ": definition ", def.dump(), ", expected \"", definition_name, "\"");
    const ojson& w = member(trace, "workload", where);
    if (!w.is_object()) fail(where, ": workload is ", json_type(w), ", expected an object");

    WorkloadEntry e;
    e.source = where;
    e.line = number;
    const ojson& uuid = member(w, "uuid", where);
    if (!uuid.is_string() || uuid.get<std::string>().empty())
      fail(where, ": uuid ", uuid.dump(), ", expected a non-empty string");
    e.uuid = uuid.get<std::string>();
    if (const auto it = seen.find(e.uuid); it != seen.end())
      fail(where, ": uuid ", e.uuid, " repeats line ", it->second);
    seen[e.uuid] = number;
    e.source = concat(where, " (uuid ", e.uuid, ")");

    e.axes_json = member(w, "axes", where);
    if (!e.axes_json.is_object()) fail(e.source, ": axes is ", json_type(e.axes_json), ", expected an object");
    for (auto it = e.axes_json.begin(); it != e.axes_json.end(); ++it) {
      int64_t v = 0;
      if (!as_count(it.value(), v))
        fail(e.source, ": axis ", it.key(), " = ", it.value().dump(), ", expected a non-negative integer");
      e.axes[it.key()] = v;
    }

    e.inputs_json = member(w, "inputs", where);
    if (!e.inputs_json.is_object()) fail(e.source, ": inputs is ", json_type(e.inputs_json), ", expected an object");
    for (auto it = e.inputs_json.begin(); it != e.inputs_json.end(); ++it) {
      const std::string iwhere = concat(e.source, ": input ", it.key());
      const ojson& in = it.value();
      if (!in.is_object()) fail(iwhere, " is ", json_type(in), ", expected an object with a type");
      const ojson& type = member(in, "type", iwhere);
      InputSpec spec;
      if (type == "random") {
        spec.type = InputType::random;
      } else if (type == "scalar") {
        spec.type = InputType::scalar;
        spec.value = member(in, "value", iwhere);
        if (!spec.value.is_number() && !spec.value.is_boolean())
          fail(iwhere, ": value is ", json_type(spec.value), ", expected a number or a boolean");
      } else if (type == "safetensors") {
        spec.type = InputType::safetensors;
        for (const char* key : {"path", "tensor_key"}) {
          const ojson& v = member(in, key, iwhere);
          if (!v.is_string() || v.get<std::string>().empty())
            fail(iwhere, ": ", key, " ", v.dump(), ", expected a non-empty string");
        }
        spec.path = in["path"].get<std::string>();
        spec.tensor_key = in["tensor_key"].get<std::string>();
      } else {
        fail(iwhere, ": type ", type.dump(), ", expected \"random\", \"scalar\" or \"safetensors\"");
      }
      e.inputs[it.key()] = std::move(spec);
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) fail(path, ": no workloads in it");
  return out;
}

std::string find_definition_file(const std::string& root, const std::string& name) {
  return find_one(root, "definitions", name + ".json");
}

std::string find_workloads_file(const std::string& root, const std::string& name) {
  return find_one(root, "workloads", name + ".jsonl");
}

std::string resolve_input_path(const std::string& root, const std::string& path) {
  const fs::path p(path);
  if (p.is_absolute()) return p.lexically_normal().string();
  return (fs::path(root) / p).lexically_normal().string();
}

}  // namespace dsa::import
