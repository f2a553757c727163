#include "src/import/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "src/import/json_text.hpp"

namespace dsa::import {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as is");

namespace {

using json = nlohmann::ordered_json;

// The reference crate's limit (safetensors/src/tensor.rs, MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  StDtype dtype;
  const char* name;
  std::size_t size;
};
constexpr std::array<DtypeEntry, 15> kDtypes = {{
    {StDtype::BOOL, "BOOL", 1}, {StDtype::U8, "U8", 1},   {StDtype::I8, "I8", 1},
    {StDtype::F8_E5M2, "F8_E5M2", 1}, {StDtype::F8_E4M3, "F8_E4M3", 1}, {StDtype::I16, "I16", 2},
    {StDtype::U16, "U16", 2},   {StDtype::F16, "F16", 2}, {StDtype::BF16, "BF16", 2},
    {StDtype::I32, "I32", 4},   {StDtype::U32, "U32", 4}, {StDtype::F32, "F32", 4},
    {StDtype::F64, "F64", 8},   {StDtype::I64, "I64", 8}, {StDtype::U64, "U64", 8},
}};

const DtypeEntry& entry(StDtype d) {
  for (const DtypeEntry& e : kDtypes)
    if (e.dtype == d) return e;
  fail("safetensors: unknown dtype code ", static_cast<int>(d));
}

std::string known_dtypes() {
  std::string out;
  for (const DtypeEntry& e : kDtypes) out += (out.empty() ? "" : ", ") + std::string(e.name);
  return out;
}


// A non-negative integer that fits in int64 (JSON integers only: 2.0 and true are refused).
bool as_count(const json& j, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* st_dtype_name(StDtype d) { return entry(d).name; }
std::size_t st_dtype_size(StDtype d) { return entry(d).size; }

bool parse_st_dtype(std::string_view name, StDtype& out) {
  for (const DtypeEntry& e : kDtypes)
    if (name == e.name) {
      out = e.dtype;
      return true;
    }
  return false;
}

int64_t StTensorInfo::elements() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) fail(path, ": no such file");
  if (!fs::is_regular_file(status)) fail(path, ": not a regular file");
  const uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot get its size (", ec.message(), ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot be read (", std::strerror(errno), ")");
  if (size < 8)
    fail(path, ": ", size, " bytes, too short for the 8-byte header length of a safetensors file");
  unsigned char prefix[8];
  in.read(reinterpret_cast<char*>(prefix), 8);
  if (!in) fail(path, ": cannot read the header length");
  const uint64_t n = read_u64_le(prefix);
  if (n > kMaxHeaderBytes)
    fail(path, ": header length ", n, " exceeds the safetensors limit of ", kMaxHeaderBytes, " bytes");
  if (n > size - 8)
    fail(path, ": header length ", n, " runs past the end of the file (", size - 8,
         " bytes follow the length)");
  std::string header(static_cast<std::size_t>(n), '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  if (!in) fail(path, ": cannot read the ", n, "-byte header");
  return from_header(path, header, n, size);
}

SafetensorsFile SafetensorsFile::parse(const std::string& where, std::string_view bytes) {
  const uint64_t size = bytes.size();
  if (size < 8)
    fail(where, ": ", size, " bytes, too short for the 8-byte header length of a safetensors file");
  const uint64_t n = read_u64_le(reinterpret_cast<const unsigned char*>(bytes.data()));
  if (n > kMaxHeaderBytes)
    fail(where, ": header length ", n, " exceeds the safetensors limit of ", kMaxHeaderBytes, " bytes");
  if (n > size - 8)
    fail(where, ": header length ", n, " runs past the end of the file (", size - 8,
         " bytes follow the length)");
  SafetensorsFile f = from_header(where, bytes.substr(8, static_cast<std::size_t>(n)), n, size);
  f.buffer_.assign(bytes.data(), bytes.size());
  return f;
}

SafetensorsFile SafetensorsFile::from_header(const std::string& where, std::string_view header,
                                             uint64_t n, uint64_t file_size) {
  if (n < 2) fail(where, ": header length ", n, " is too small for a JSON object");
  if (header.front() != '{') fail(where, ": the header does not start with '{'");
  // JSON text holds no NUL byte (strings escape it); some parsers stop at one, so refuse it
  // here, as the reference parser does ("trailing characters").
  if (const std::size_t nul = header.find('\0'); nul != std::string_view::npos)
    fail(where, ": the header is not valid JSON: a NUL byte at offset ", nul);

  // Repeated keys: JSON parsers keep one of them silently; a tensor named twice is refused.
  std::vector<std::set<std::string>> open_objects;
  std::string repeated;
  const json::parser_callback_t watch = [&](int, json::parse_event_t event, json& value) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    else if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    else if (event == json::parse_event_t::key && !open_objects.empty() && repeated.empty() &&
             !open_objects.back().insert(value.get<std::string>()).second)
      repeated = value.get<std::string>();
    return true;
  };
  json root;
  try {
    root = json::parse(header.begin(), header.end(), watch);
  } catch (const json::exception& e) {
    fail(where, ": the header is not valid JSON: ", json_error_line(e.what()));
  }
  if (!root.is_object()) fail(where, ": the header is ", json_type(root), ", expected an object");
  if (!repeated.empty()) fail(where, ": key '", repeated, "' appears twice in the header");

  SafetensorsFile f;
  f.path_ = where;
  f.data_start_ = 8 + n;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& value = it.value();
    if (name == "__metadata__") {
      if (!value.is_object())
        fail(where, ": __metadata__ is ", json_type(value), ", expected an object of strings");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string())
          fail(where, ": __metadata__ key '", m.key(), "' holds ", json_type(m.value()),
               ", expected a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = concat(where, ": tensor '", name, "'");
    if (!value.is_object())
      fail(what, " is ", json_type(value), ", expected an object with dtype, shape and data_offsets");
    for (auto k = value.begin(); k != value.end(); ++k)
      if (k.key() != "dtype" && k.key() != "shape" && k.key() != "data_offsets")
        fail(what, ": unexpected key '", k.key(), "' (expected dtype, shape and data_offsets)");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!value.contains(key)) fail(what, ": missing '", key, "'");

    StTensorInfo info;
    info.name = name;
    const json& dtype = value["dtype"];
    if (!dtype.is_string()) fail(what, ": dtype is ", json_type(dtype), ", expected a string");
    if (!parse_st_dtype(dtype.get<std::string>(), info.dtype))
      fail(what, ": unknown dtype '", dtype.get<std::string>(), "' (known: ", known_dtypes(), ")");

    const json& shape = value["shape"];
    if (!shape.is_array()) fail(what, ": shape is ", json_type(shape), ", expected a list of integers");
    uint64_t elements = 1;
    bool overflow = false;
    for (const json& d : shape) {
      uint64_t dim = 0;
      if (!as_count(d, dim))
        fail(what, ": shape ", shape.dump(), " holds ", d.dump(), ", expected non-negative integers");
      info.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && elements > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
      elements *= dim;
    }
    const uint64_t esize = st_dtype_size(info.dtype);
    const uint64_t max_bytes = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (overflow || elements > max_bytes / esize)
      fail(what, ": shape ", shape.dump(), " of ", dtype.get<std::string>(), " overflows 63-bit byte counts");

    const json& offsets = value["data_offsets"];
    uint64_t begin = 0, end = 0;
    if (!offsets.is_array() || offsets.size() != 2 || !as_count(offsets[0], begin) ||
        !as_count(offsets[1], end))
      fail(what, ": data_offsets ", offsets.dump(), ", expected [begin, end] with two non-negative integers");
    if (end < begin) fail(what, ": data_offsets ", offsets.dump(), " end before they begin");
    info.begin = begin;
    info.end = end;
    if (end - begin != elements * esize)
      fail(what, ": data_offsets ", offsets.dump(), " span ", end - begin, " bytes, but shape ",
           shape_text(info.shape), " of ", dtype.get<std::string>(), " needs ", elements * esize);
    f.tensors_.push_back(std::move(info));
  }

  // The tensors tile the data buffer: sorted by offsets, each starts where the last ended.
  std::vector<const StTensorInfo*> by_offset;
  for (const StTensorInfo& t : f.tensors_) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](const StTensorInfo* a, const StTensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t next = 0;
  for (const StTensorInfo* t : by_offset) {
    if (t->begin != next)
      fail(where, ": tensor '", t->name, "' starts at byte ", t->begin, " of the data, expected ",
           next, " (tensors must tile the data buffer without gaps or overlaps)");
    next = t->end;
  }
  const uint64_t data_bytes = file_size - 8 - n;
  if (next != data_bytes)
    fail(where, ": the tensors end at byte ", next, " of the data, but the file holds ", data_bytes,
         " data bytes");
  return f;
}

const StTensorInfo* SafetensorsFile::find(const std::string& name) const {
  for (const StTensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const StTensorInfo& SafetensorsFile::require(const std::string& name) const {
  const StTensorInfo* t = find(name);
  if (t == nullptr) {
    std::string names;
    for (const StTensorInfo& x : tensors_) names += (names.empty() ? "" : ", ") + x.name;
    fail(path_, ": no tensor '", name, "' (it holds ", names.empty() ? "none" : names, ")");
  }
  return *t;
}

std::vector<uint8_t> SafetensorsFile::read_bytes(const std::string& name) const {
  const StTensorInfo& t = require(name);
  const uint64_t count = t.end - t.begin;
  std::vector<uint8_t> out(static_cast<std::size_t>(count));
  if (count == 0) return out;
  if (!buffer_.empty()) {
    std::memcpy(out.data(), buffer_.data() + data_start_ + t.begin, out.size());
    return out;
  }
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(data_start_ + t.begin));
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(count));
  if (!in) fail(path_, ": cannot read the ", count, " bytes of tensor '", name, "'");
  return out;
}

std::string serialize_safetensors(const std::vector<StTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const StTensor& t : tensors) {
    int64_t elements = 1;
    for (const int64_t d : t.shape) elements *= d;
    const uint64_t bytes = static_cast<uint64_t>(elements) * st_dtype_size(t.dtype);
    DSA_REQUIRE(t.data.size() == bytes, "safetensors: tensor '", t.name, "' has ", t.data.size(),
                " bytes, its shape ", shape_text(t.shape), " of ", st_dtype_name(t.dtype), " needs ", bytes);
    header[t.name] = {{"dtype", st_dtype_name(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out += text;
  for (const StTensor& t : tensors) out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string bytes = serialize_safetensors(tensors, metadata);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  DSA_REQUIRE(out.good(), path, ": cannot be written (", std::strerror(errno), ")");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  DSA_REQUIRE(out.good(), path, ": write failed");
}

}  // namespace dsa::import
