#include "src/import/importer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <system_error>

#include "common/error.hpp"
#include "kernels/reference/numeric.hpp"
#include "kernels/shapes.hpp"
#include "src/gen/generate.hpp"
#include "src/gen/rng.hpp"
#include "src/import/safetensors.hpp"

namespace dsa::import {

namespace fs = std::filesystem;
using gen::detail::Rng;
using gen::detail::Stream;

namespace {

// ---- What this program computes, as FlashInfer-Bench spells it. ------------------------------

// A dimension of an input: a fixed size, or one of the workload's variable sizes.
constexpr int64_t kRows = -1;   // batch_size (indexer) / num_tokens (attention)
constexpr int64_t kPages = -2;  // num_pages
constexpr int64_t kWidth = -3;  // max_num_pages (the block-table width)

const char* symbol_name(int64_t s) {
  return s == kRows ? "rows" : s == kPages ? "pages" : "block-table width";
}

enum class Source {
  random_or_recorded,  // query tensors
  random_only,         // KV caches: generated into the shared pool
  recorded_only,       // seq_lens, block_table, sparse_indices: random ones would be meaningless
  scalar,              // sm_scale
};

struct Role {
  const char* name;
  std::vector<int64_t> dims;          // empty + Source::scalar for a scalar
  std::vector<const char*> dtypes;    // accepted definition dtypes
  StDtype stored;                     // the safetensors dtype of a recorded tensor
  Source source;
};

const std::vector<Role>& indexer_inputs() {
  static const std::vector<Role> roles = {
      {"q_index_fp8", {kRows, kIndexHeads, kIndexHeadDim}, {"float8_e4m3fn", "float8_e4m3"},
       StDtype::F8_E4M3, Source::random_or_recorded},
      // FlashInfer-Bench declares the packed cache int8 (bytes); uint8 is accepted too.
      {"k_index_cache_fp8", {kPages, kPageSize, 1, kIndexHeadDim + 4}, {"int8", "uint8"}, StDtype::I8,
       Source::random_only},
      {"weights", {kRows, kIndexHeads}, {"float32"}, StDtype::F32, Source::random_or_recorded},
      {"seq_lens", {kRows}, {"int32"}, StDtype::I32, Source::recorded_only},
      {"block_table", {kRows, kWidth}, {"int32"}, StDtype::I32, Source::recorded_only},
  };
  return roles;
}
const std::vector<Role>& indexer_outputs() {
  static const std::vector<Role> roles = {
      {"topk_indices", {kRows, kTopK}, {"int32"}, StDtype::I32, Source::recorded_only}};
  return roles;
}
const std::vector<Role>& attention_inputs() {
  static const std::vector<Role> roles = {
      {"q_nope", {kRows, kHeads, kCkvDim}, {"bfloat16"}, StDtype::BF16, Source::random_or_recorded},
      {"q_pe", {kRows, kHeads, kKpeDim}, {"bfloat16"}, StDtype::BF16, Source::random_or_recorded},
      {"ckv_cache", {kPages, kPageSize, kCkvDim}, {"bfloat16"}, StDtype::BF16, Source::random_only},
      {"kpe_cache", {kPages, kPageSize, kKpeDim}, {"bfloat16"}, StDtype::BF16, Source::random_only},
      {"sparse_indices", {kRows, kTopK}, {"int32"}, StDtype::I32, Source::recorded_only},
      {"sm_scale", {}, {"float32"}, StDtype::F32, Source::scalar},
  };
  return roles;
}
const std::vector<Role>& attention_outputs() {
  static const std::vector<Role> roles = {
      {"output", {kRows, kHeads, kCkvDim}, {"bfloat16"}, StDtype::BF16, Source::recorded_only},
      {"lse", {kRows, kHeads}, {"float32"}, StDtype::F32, Source::recorded_only}};
  return roles;
}

std::string join_names(const std::vector<Role>& roles) {
  std::string out;
  for (const Role& r : roles) out += (out.empty() ? "" : ", ") + std::string(r.name);
  return out;
}

// Symbol -> the definition's axis name that carries it.
using Bindings = std::map<int64_t, std::string>;

// The definition's tensors (inputs or outputs) are exactly `roles`, with these shapes and dtypes.
void check_tensors(const Definition& def, const std::vector<std::pair<std::string, TensorSpecDef>>& have,
                   const std::vector<Role>& roles, const char* what, Bindings& bindings) {
  for (const auto& [name, spec] : have) {
    (void)spec;
    if (std::none_of(roles.begin(), roles.end(), [&](const Role& r) { return name == r.name; }))
      fail(def.path, ": ", what, " \"", name, "\" is not one this program computes (expected ",
           join_names(roles), ")");
  }
  for (const Role& role : roles) {
    const TensorSpecDef* spec = nullptr;
    for (const auto& [name, s] : have)
      if (name == role.name) spec = &s;
    const std::string where = concat(def.path, ": ", what, " \"", role.name, "\"");
    if (spec == nullptr) fail(def.path, ": no ", what, " \"", role.name, "\" (expected ", join_names(roles), ")");
    if (std::none_of(role.dtypes.begin(), role.dtypes.end(), [&](const char* d) { return spec->dtype == d; }))
      fail(where, ": dtype ", spec->dtype, ", this program computes ", role.dtypes[0]);
    if (role.source == Source::scalar) {
      if (!spec->scalar) fail(where, ": has a shape, expected a scalar (shape null)");
      continue;
    }
    if (spec->scalar) fail(where, ": is a scalar, expected ", role.dims.size(), " dimensions");
    if (spec->shape.size() != role.dims.size())
      fail(where, ": ", spec->shape.size(), " dimensions, expected ", role.dims.size());
    for (std::size_t i = 0; i < role.dims.size(); ++i) {
      const std::string& axis = spec->shape[i];
      const AxisDef& a = def.axes.at(axis);
      const int64_t want = role.dims[i];
      if (want >= 0) {
        if (!a.is_const)
          fail(where, ": dimension ", i, " is the variable axis \"", axis, "\"; this program computes only ", want);
        if (a.value != want)
          fail(where, ": dimension ", i, " is axis \"", axis, "\" = ", a.value, "; this program computes ", want);
        continue;
      }
      const auto [it, inserted] = bindings.emplace(want, axis);
      if (!inserted && it->second != axis)
        fail(where, ": dimension ", i, " (the ", symbol_name(want), ") is axis \"", axis,
             "\", but other tensors use \"", it->second, "\"");
    }
  }
}

// The value of a symbol for one workload: a const axis' value or the workload's own.
int64_t axis_value(const Definition& def, const WorkloadEntry& w, const std::string& axis) {
  const AxisDef& a = def.axes.at(axis);
  if (a.is_const) return a.value;
  const auto it = w.axes.find(axis);
  if (it == w.axes.end()) fail(w.source, ": axes lack \"", axis, "\"");
  return it->second;
}

std::vector<int64_t> resolve(const Role& role, int64_t rows, int64_t pages, int64_t width) {
  std::vector<int64_t> dims;
  for (const int64_t d : role.dims)
    dims.push_back(d == kRows ? rows : d == kPages ? pages : d == kWidth ? width : d);
  return dims;
}

// FNV-1a of the uuid, mixed: the key of a workload's random row streams.
uint64_t uuid_key(const std::string& uuid) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : uuid) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return gen::detail::mix64(h);
}

template <typename T>
void load_recorded(const SafetensorsFile& file, const std::string& key, const Role& role,
                   const std::vector<int64_t>& dims, const std::string& where, std::vector<T>& out) {
  const StTensorInfo* t = file.find(key);
  if (t == nullptr) fail(where, ": ", file.path(), " has no tensor \"", key, "\"");
  if (t->dtype != role.stored)
    fail(where, ": tensor \"", key, "\" of ", file.path(), " is ", st_dtype_name(t->dtype), ", the definition's ",
         role.dtypes[0], " is ", st_dtype_name(role.stored));
  if (t->shape != dims)
    fail(where, ": tensor \"", key, "\" of ", file.path(), " has shape ", shape_text(t->shape), ", the axes give ",
         shape_text(dims));
  out = file.read<T>(key);
}

void check_indexer_rows(const ImportedBatch& b) {
  const std::string& where = b.entry.source;
  for (int64_t r = 0; r < b.rows; ++r) {
    const int32_t len = b.seq_lens[static_cast<std::size_t>(r)];
    if (len < 0 || len > b.max_num_pages * kPageSize)
      fail(where, ": seq_lens[", r, "] = ", len, ", outside [0, max_num_pages * 64 = ",
           b.max_num_pages * kPageSize, "]");
    const int32_t* table = b.block_table.data() + r * b.max_num_pages;
    std::set<int32_t> used;
    for (int64_t k = 0; k < pages_for(len); ++k) {
      const int32_t page = table[k];
      if (page < 0 || page >= b.num_pages)
        fail(where, ": block_table[", r, "][", k, "] = ", page, ", outside the workload's ", b.num_pages,
             " pages (num_pages)");
      if (!used.insert(page).second)
        fail(where, ": block_table[", r, "][", k, "] = ", page,
             " repeats a page of the row's first seq_len tokens (its tokens would be scored twice)");
    }
  }
}

void check_sparse_rows(const ImportedBatch& b) {
  const int64_t tokens = b.num_pages * kPageSize;
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t k = 0; k < kTopK; ++k) {
      const int32_t id = b.sparse_indices[static_cast<std::size_t>(r * kTopK + k)];
      if (id < -1 || id >= tokens)
        fail(b.entry.source, ": sparse_indices[", r, "][", k, "] = ", id, ", outside [-1, num_pages * 64 = ",
             tokens, ")");
    }
}

std::string number_text(const ojson& v) { return v.dump(); }

}  // namespace

const char* kind_stage(Kind kind) { return kind == Kind::indexer ? "indexer" : "attention"; }

ImportPlan plan_import(const ImportOptions& options) {
  ImportPlan plan;
  plan.options = options;
  DSA_REQUIRE(!options.definition_name.empty(), "no definition name given");
  DSA_REQUIRE(options.limit >= 0, "--limit must be >= 0 (got ", options.limit, ")");
  const std::string root = options.dataset_root.empty() ? std::string(".") : options.dataset_root;
  const std::string def_path = options.definition_path.empty()
                                   ? find_definition_file(root, options.definition_name)
                                   : options.definition_path;
  plan.definition = read_definition(def_path);
  const Definition& def = plan.definition;
  if (def.name != options.definition_name)
    fail(def_path, ": its name is \"", def.name, "\", expected \"", options.definition_name, "\"");

  // Which of the two operators, and is it the shape this program computes?
  if (def.input("q_index_fp8") != nullptr) plan.kind = Kind::indexer;
  else if (def.input("q_nope") != nullptr) plan.kind = Kind::attention;
  else
    fail(def_path, ": neither a DSA top-k indexer (inputs ", join_names(indexer_inputs()),
         ") nor a DSA sparse attention (inputs ", join_names(attention_inputs()), ")");
  const bool indexer = plan.kind == Kind::indexer;
  const std::vector<Role>& inputs = indexer ? indexer_inputs() : attention_inputs();
  Bindings bindings;
  check_tensors(def, def.inputs, inputs, "input", bindings);
  check_tensors(def, def.outputs, indexer ? indexer_outputs() : attention_outputs(), "output", bindings);
  if (options.pipeline && !indexer)
    fail("--pipeline needs the indexer definition (its seq_lens and block tables feed the "
         "pipeline); ", def.name, " is sparse attention");
  if (options.sm_scale && !indexer)
    fail("--sm-scale: the workloads of ", def.name, " carry their own sm_scale; leave the option out");
  if (options.sm_scale && !std::isfinite(*options.sm_scale))
    fail("--sm-scale: ", *options.sm_scale, " is not a finite number");

  plan.workloads_path = options.workloads_path.empty() ? find_workloads_file(root, options.definition_name)
                                                       : options.workloads_path;
  std::vector<WorkloadEntry> entries = read_workloads(plan.workloads_path, def.name);
  if (options.limit > 0 && static_cast<int64_t>(entries.size()) > options.limit)
    entries.resize(static_cast<std::size_t>(options.limit));

  std::map<std::string, SafetensorsFile> files;  // opened once each
  auto open_file = [&](const std::string& path) -> const SafetensorsFile& {
    auto it = files.find(path);
    if (it == files.end()) it = files.emplace(path, SafetensorsFile::open(path)).first;
    return it->second;
  };

  std::optional<double> sm_scale;
  std::string sm_scale_source;
  for (WorkloadEntry& entry : entries) {
    ImportedBatch b;
    b.entry = std::move(entry);
    const WorkloadEntry& w = b.entry;
    // Const axes a workload repeats must agree with the definition; unknown axes are kept as
    // written (FlashInfer-Bench does not check them either).
    for (const auto& [axis, value] : w.axes) {
      const auto it = def.axes.find(axis);
      if (it != def.axes.end() && it->second.is_const && it->second.value != value)
        fail(w.source, ": axis ", axis, " = ", value, ", but the definition fixes it at ", it->second.value);
    }
    b.rows = axis_value(def, w, bindings.at(kRows));
    b.num_pages = axis_value(def, w, bindings.at(kPages));
    b.max_num_pages = indexer ? axis_value(def, w, bindings.at(kWidth)) : 0;
    if (b.rows < 1) fail(w.source, ": ", bindings.at(kRows), " = ", b.rows, "; a batch needs at least one row");
    if (b.num_pages > std::numeric_limits<int32_t>::max() / kPageSize)
      fail(w.source, ": ", bindings.at(kPages), " = ", b.num_pages, " pages, more than int32 token ids address");
    if (b.rows > (int64_t{1} << 24) || b.max_num_pages > (int64_t{1} << 24))
      fail(w.source, ": ", b.rows, " rows of ", b.max_num_pages, " block-table pages is implausibly large");
    b.key = uuid_key(w.uuid);

    for (const auto& [name, spec] : w.inputs) {
      (void)spec;
      if (def.input(name) == nullptr)
        fail(w.source, ": input \"", name, "\" is not an input of ", def.name);
    }
    for (const Role& role : inputs) {
      const auto it = w.inputs.find(role.name);
      // FlashInfer-Bench generates inputs a workload does not mention (bench/utils.py gen_inputs).
      const InputType type = it == w.inputs.end() ? InputType::random : it->second.type;
      const std::string where = concat(w.source, ": input ", role.name);
      if (role.source == Source::scalar) {
        if (type != InputType::scalar)
          fail(where, " is ", type == InputType::random ? "random" : "recorded", ", expected a scalar value");
        const ojson& v = it->second.value;
        if (!v.is_number() || !std::isfinite(v.get<double>()))
          fail(where, ": value ", v.dump(), ", expected a finite number");
        b.scalars[role.name] = v;
        continue;
      }
      if (type == InputType::scalar) fail(where, " is a scalar, expected a tensor");
      if (type == InputType::random) {
        if (role.source == Source::recorded_only)
          fail(where, " is random; dsa-import needs it recorded (safetensors): random int32 "
                      "values are not valid lengths, pages or token ids");
        continue;
      }
      if (role.source == Source::random_only)
        fail(where, " is recorded (safetensors); dsa-import generates the KV caches into one pool "
                    "of pages shared by all batches and cannot keep a recorded one");
      const std::vector<int64_t> dims = resolve(role, b.rows, b.num_pages, b.max_num_pages);
      const std::string path = resolve_input_path(root, it->second.path);
      const SafetensorsFile& file = open_file(path);
      const std::string& key = it->second.tensor_key;
      const std::string name = role.name;
      if (name == "seq_lens") load_recorded(file, key, role, dims, where, b.seq_lens);
      else if (name == "block_table") load_recorded(file, key, role, dims, where, b.block_table);
      else if (name == "sparse_indices") load_recorded(file, key, role, dims, where, b.sparse_indices);
      else if (name == "q_index_fp8") load_recorded(file, key, role, dims, where, b.q_index);
      else if (name == "weights") load_recorded(file, key, role, dims, where, b.weights);
      else if (name == "q_nope") load_recorded(file, key, role, dims, where, b.q_nope);
      else if (name == "q_pe") load_recorded(file, key, role, dims, where, b.q_pe);
      else fail(where, ": no recorded form known");  // unreachable: roles above
    }
    if (indexer) {
      check_indexer_rows(b);
    } else {
      check_sparse_rows(b);
      const double s = b.scalars.at("sm_scale").get<double>();
      if (!sm_scale) {
        sm_scale = s;
        sm_scale_source = w.source;
      } else if (*sm_scale != s) {
        fail(w.source, ": sm_scale ", number_text(b.scalars.at("sm_scale")), " differs from ",
             number_text(plan.batches.front().scalars.at("sm_scale")), " of ", sm_scale_source,
             "; a workload file has one sm_scale (SPEC section 2)");
      }
    }
    plan.batches.push_back(std::move(b));
  }

  plan.indexer_data = indexer;
  plan.attention_data = !indexer || options.pipeline;
  plan.sparse_indices = !indexer;
  plan.sm_scale = sm_scale ? *sm_scale : options.sm_scale.value_or(1.0 / 24.0);
  plan.num_pages = 1;
  plan.max_num_pages = indexer ? 1 : 0;
  plan.batch_offsets.push_back(0);
  for (const ImportedBatch& b : plan.batches) {
    plan.num_pages = std::max(plan.num_pages, b.num_pages);
    if (indexer) plan.max_num_pages = std::max(plan.max_num_pages, b.max_num_pages);
    plan.batch_offsets.push_back(plan.batch_offsets.back() + b.rows);
  }
  plan.rows = plan.batch_offsets.back();
  return plan;
}

io::WorkloadShape ImportPlan::shape() const {
  io::WorkloadShape s;
  s.num_pages = num_pages;
  s.rows = rows;
  s.max_num_pages = max_num_pages;
  s.sm_scale = sm_scale;
  s.batch_offsets = batch_offsets;
  s.indexer_data = indexer_data;
  s.attention_data = attention_data;
  s.sparse_indices = sparse_indices;
  s.text_attributes["source"] =
      concat("FlashInfer-Bench workloads of ", definition.name, " (", workloads_path, ")");
  s.text_attributes["generator"] = concat("dsa-import ", DSA_VERSION);
  s.text_attributes["fib_definition"] = definition.name;
  s.text_attributes["fib_workloads"] = workloads_path;
  s.text_attributes["import_seed"] = std::to_string(options.seed);
  s.text_attributes["random_inputs"] =
      "as FlashInfer-Bench's evaluator makes them: float32/bf16 N(0,1); e4m3 queries "
      "e4m3(clamp(N(0,1), -2, 2)); K index cache bf16 N(0,1) packed per token with scale "
      "amax/448; rows keyed by (seed, uuid, row), KV pages by (seed, page), one page pool "
      "shared by all batches";
  return s;
}

io::BatchAttributes ImportPlan::batch_attributes() const {
  io::BatchAttributes out;
  for (const ImportedBatch& b : batches) {
    std::map<std::string, std::string> a;
    a["definition"] = definition.name;
    a["stage"] = kind_stage(kind);
    a["uuid"] = b.entry.uuid;
    a["axes"] = b.entry.axes_json.dump();
    a["inputs"] = b.entry.inputs_json.dump();
    a["jsonl_line"] = std::to_string(b.entry.line);
    for (const auto& [name, value] : b.scalars) a[name] = number_text(value);
    out.push_back(std::move(a));
  }
  return out;
}

uint64_t ImportPlan::bytes() const {
  const uint64_t r = static_cast<uint64_t>(rows), p = static_cast<uint64_t>(num_pages);
  uint64_t total = 0;
  if (indexer_data)
    total += r * (4 + kIndexHeads * kIndexHeadDim + 4 * kIndexHeads + 4 * static_cast<uint64_t>(max_num_pages)) +
             p * kIndexPageBytes;
  if (attention_data) total += r * 2 * kHeads * (kCkvDim + kKpeDim) + p * 2 * kPageSize * (kCkvDim + kKpeDim);
  if (sparse_indices) total += r * 4 * kTopK;
  return total;
}

io::QueryRows make_import_rows(const ImportPlan& plan, std::size_t index) {
  const ImportedBatch& b = plan.batches.at(index);
  const uint64_t seed = plan.options.seed;
  constexpr int64_t q_index_row = int64_t{kIndexHeads} * kIndexHeadDim;
  constexpr int64_t q_nope_row = int64_t{kHeads} * kCkvDim;
  constexpr int64_t q_pe_row = int64_t{kHeads} * kKpeDim;
  const std::size_t n = static_cast<std::size_t>(b.rows);

  io::QueryRows q;
  q.first = plan.batch_offsets[index];
  q.count = b.rows;
  auto bf16_rows = [&](Stream stream, int64_t width, std::vector<uint16_t>& out) {
    out.resize(n * static_cast<std::size_t>(width));
    for (int64_t r = 0; r < b.rows; ++r) {
      Rng rng(seed, stream, b.key + static_cast<uint64_t>(r));
      for (int64_t i = 0; i < width; ++i) out[static_cast<std::size_t>(r * width + i)] = ref::float_to_bf16(rng.normal());
    }
  };

  if (plan.indexer_data) {
    q.max_num_pages = plan.max_num_pages;
    q.seq_lens = b.seq_lens;
    q.block_table.assign(n * static_cast<std::size_t>(plan.max_num_pages), 0);
    for (int64_t r = 0; r < b.rows; ++r)
      std::copy_n(b.block_table.begin() + r * b.max_num_pages, b.max_num_pages,
                  q.block_table.begin() + r * plan.max_num_pages);
    if (!b.q_index.empty()) {
      q.q_index = b.q_index;
    } else {
      q.q_index.resize(n * q_index_row);
      for (int64_t r = 0; r < b.rows; ++r) {
        Rng rng(seed, Stream::q_index, b.key + static_cast<uint64_t>(r));
        for (int64_t i = 0; i < q_index_row; ++i)
          q.q_index[static_cast<std::size_t>(r * q_index_row + i)] =
              ref::float_to_e4m3(std::clamp(rng.normal(), -2.0f, 2.0f));
      }
    }
    if (!b.weights.empty()) {
      q.weights = b.weights;
    } else {
      q.weights.resize(n * kIndexHeads);
      for (int64_t r = 0; r < b.rows; ++r) {
        Rng rng(seed, Stream::weights, b.key + static_cast<uint64_t>(r));
        for (int h = 0; h < kIndexHeads; ++h) q.weights[static_cast<std::size_t>(r * kIndexHeads + h)] = rng.normal();
      }
    }
  }
  if (plan.attention_data) {
    if (!b.q_nope.empty()) q.q_nope = b.q_nope;
    else bf16_rows(Stream::q_nope, q_nope_row, q.q_nope);
    if (!b.q_pe.empty()) q.q_pe = b.q_pe;
    else bf16_rows(Stream::q_pe, q_pe_row, q.q_pe);
  }
  if (plan.sparse_indices) q.sparse_indices = b.sparse_indices;
  return q;
}

void check_import_output(const std::string& path, const ImportPlan& plan, bool overwrite) {
  gen::check_output_path(path, plan.bytes(), overwrite);
}

ImportSummary write_import(const std::string& path, const ImportPlan& plan, bool overwrite) {
  const auto start = std::chrono::steady_clock::now();
  check_import_output(path, plan, overwrite);
  const std::string temp = gen::temp_path_for(path);
  std::error_code ec;
  fs::remove(temp, ec);
  try {
    io::WorkloadWriter writer(temp, plan.shape(), /*overwrite=*/true);
    for (std::size_t b = 0; b < plan.batches.size(); ++b) writer.write_rows(make_import_rows(plan, b));
    // KV pages in chunks of about 64 MB, exactly as dsa-gen makes them for this seed.
    const int64_t page_bytes = (plan.indexer_data ? kIndexPageBytes : 0) +
                               (plan.attention_data ? 2 * kPageSize * (kCkvDim + kKpeDim) : 0);
    const int64_t chunk = std::max<int64_t>(1, (int64_t{64} << 20) / page_bytes);
    for (int64_t first = 0; first < plan.num_pages; first += chunk) {
      const int64_t count = std::min(chunk, plan.num_pages - first);
      writer.write_kv(gen::make_kv(plan.options.seed, first, count, plan.indexer_data, plan.attention_data,
                                   plan.options.threads));
    }
    writer.close();
    io::write_batch_attributes(temp, plan.batch_attributes());
    fs::rename(temp, path);
  } catch (...) {
    fs::remove(temp, ec);
    throw;
  }
  ImportSummary s;
  s.path = path;
  s.rows = plan.rows;
  s.batches = static_cast<int64_t>(plan.batches.size());
  s.num_pages = plan.num_pages;
  s.max_num_pages = plan.max_num_pages;
  s.file_bytes = static_cast<uint64_t>(fs::file_size(path, ec));
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace dsa::import
