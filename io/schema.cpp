#include "io/schema.hpp"

#include <algorithm>

namespace dsa::io::schema {
namespace {
constexpr int64_t kChunkTargetBytes = int64_t{1} << 20;
constexpr int64_t kMaxChunkRows = int64_t{1} << 16;
}  // namespace

void check_format(const h5::File& file, const char* format) {
  if (!file.has_attribute("dsa_format"))
    fail(file.where(), ": not a DSA file (no dsa_format attribute; expected \"", format, "\")");
  const std::string found = file.read_string_attribute("dsa_format");
  if (found != format)
    fail(file.where(), ": dsa_format is \"", h5::printable(found), "\", expected \"", format, "\"");
  const int64_t version = file.read_int_attribute("format_version");
  if (version != kFormatVersion)
    fail(file.where(), ": unknown format_version ", version, ", this program reads ",
         kFormatVersion);
}

void check_dataset(const h5::Dataset& ds, h5::Scalar type, const char* dtype,
                   std::span<const int64_t> tail, const char* expected_shape) {
  ds.require_type(type);
  if (dtype != nullptr) {
    if (!ds.has_attribute("dtype"))
      fail(ds.where(), " lacks its dtype attribute (expected \"", dtype, "\")");
    const std::string found = ds.read_string_attribute("dtype");
    if (found != dtype)
      fail(ds.where(), ": dtype attribute is \"", h5::printable(found), "\", expected \"", dtype, "\"");
  }
  bool ok = ds.rank() == static_cast<int>(tail.size()) + 1;
  for (std::size_t i = 0; ok && i < tail.size(); ++i) {
    const int64_t want = tail[i];
    ok = want == kAnyDim || ds.dims()[i + 1] == want;
  }
  if (!ok) fail(ds.where(), " has shape ", h5::shape_text(ds.dims()), ", expected ", expected_shape);
}

std::vector<int64_t> row_chunks(const std::vector<int64_t>& dims, h5::Scalar type) {
  std::vector<int64_t> chunk = dims;
  if (dims.empty()) return chunk;
  int64_t row_bytes = static_cast<int64_t>(h5::scalar_size(type));
  for (std::size_t i = 1; i < dims.size(); ++i) {
    if (__builtin_mul_overflow(row_bytes, std::max<int64_t>(dims[i], 1), &row_bytes)) {
      row_bytes = kChunkTargetBytes;  // absurd rows: one per chunk (creation then refuses them)
      break;
    }
  }
  chunk[0] = std::clamp<int64_t>(kChunkTargetBytes / row_bytes, 1, kMaxChunkRows);
  return chunk;  // File::create_dataset clamps to the dims
}

}  // namespace dsa::io::schema
