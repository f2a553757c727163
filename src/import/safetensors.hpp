// A small, strict reader (and a writer, for tests and fixtures) of safetensors files, the
// format of FlashInfer-Bench's recorded tensors.
//
// The format (huggingface/safetensors, safetensors/src/tensor.rs):
//   8 bytes    N, the header length, a little-endian u64
//   N bytes    a UTF-8 JSON object: {"<name>": {"dtype": "I32", "shape": [2, 3],
//              "data_offsets": [begin, end]}, ..., "__metadata__": {"<key>": "<text>"}}
//              (writers pad it with spaces to a multiple of 8 bytes)
//   the rest   the data buffer; a tensor's bytes are [begin, end) of it, little-endian,
//              row-major.
// Checks, each failure one line naming the file: the file holds the 8 bytes; 2 <= N <=
// 100,000,000 (the reference crate's limit) and N fits in the file; the header starts with
// '{', is valid JSON (trailing spaces allowed) and an object; no key repeats; __metadata__ maps
// strings to strings; each tensor has exactly dtype, shape and data_offsets; dtype is known;
// shape holds non-negative integers whose product does not overflow; data_offsets is [begin,
// end] with begin <= end; end - begin = product(shape) x dtype size; sorted by offset, the
// tensors tile the buffer from 0 without gaps or overlaps, and the last one ends where the
// file ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.hpp"

namespace dsa::import {

// The safetensors dtype names and their sizes in bytes.
enum class StDtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };
const char* st_dtype_name(StDtype d);
std::size_t st_dtype_size(StDtype d);
bool parse_st_dtype(std::string_view name, StDtype& out);

struct StTensorInfo {
  std::string name;
  StDtype dtype = StDtype::U8;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets in the data buffer
  uint64_t end = 0;

  int64_t elements() const;
};

// "[2, 3]"
std::string shape_text(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  // Reads the header of `path` and checks it (see the top of this file); the data is read on
  // demand. Throws dsa::Error "<path>: <reason>".
  static SafetensorsFile open(const std::string& path);
  // The same checks on a whole file held in memory; `where` names it in messages.
  static SafetensorsFile parse(const std::string& where, std::string_view bytes);

  const std::string& path() const { return path_; }
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }  // in header order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const StTensorInfo* find(const std::string& name) const;  // nullptr if absent

  // The raw bytes of tensor `name` (little-endian), read from the file or the parsed buffer.
  std::vector<uint8_t> read_bytes(const std::string& name) const;

  // The tensor as elements of T; throws unless its dtype has sizeof(T) bytes per element.
  template <typename T>
  std::vector<T> read(const std::string& name) const {
    static_assert(std::is_trivially_copyable_v<T>);
    const StTensorInfo& info = require(name);
    DSA_REQUIRE(st_dtype_size(info.dtype) == sizeof(T), path_, ": tensor '", name, "' is ",
                st_dtype_name(info.dtype), ", not ", sizeof(T), " bytes per element");
    const std::vector<uint8_t> bytes = read_bytes(name);
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }

  const StTensorInfo& require(const std::string& name) const;  // throws if absent

 private:
  static SafetensorsFile from_header(const std::string& where, std::string_view header,
                                     uint64_t header_length, uint64_t file_size);

  std::string path_;
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_start_ = 0;  // 8 + N
  std::string buffer_;       // the whole file when made by parse(), else empty
};

// A tensor to write: raw little-endian bytes of `shape` elements of `dtype`.
struct StTensor {
  std::string name;
  StDtype dtype = StDtype::U8;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

template <typename T>
StTensor make_st_tensor(std::string name, StDtype dtype, std::vector<int64_t> shape,
                        const std::vector<T>& values) {
  StTensor t{std::move(name), dtype, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

// A safetensors file as the reference writer makes it: tensors in the given order, header
// padded with spaces to a multiple of 8 bytes. Checks each tensor's byte count.
std::string serialize_safetensors(const std::vector<StTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace dsa::import
