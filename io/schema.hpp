// Checks and layout rules shared by the workload and results files (internal to io/).
#pragma once

#include <cstdint>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/h5.hpp"

namespace dsa::io::schema {

inline constexpr int64_t kFormatVersion = 1;
inline constexpr int64_t kAnyDim = -1;  // a trailing dimension that may take any size

// dsa_format == `format` and format_version == 1 on the root of `file`.
void check_format(const h5::File& file, const char* format);

// The stored type matches `type`; a uint8/uint16 dataset carries dtype == `dtype` (when not
// null); the rank is 1 + tail.size() and each trailing dim equals its tail entry (or kAnyDim).
// `expected_shape` is how messages spell the shape, e.g. "[R, 64, 128]".
void check_dataset(const h5::Dataset& ds, h5::Scalar type, const char* dtype,
                   std::span<const int64_t> tail, const char* expected_shape);

// Chunk shape for a dataset read and written by rows: whole rows, about 1 MiB per chunk.
std::vector<int64_t> row_chunks(const std::vector<int64_t>& dims, h5::Scalar type);

// Sizes `v` to `n` elements, refusing sizes over h5::allocation_limit() and turning an
// allocation failure into a dsa::Error naming `what`.
template <typename T>
void resize_or_fail(std::vector<T>& v, int64_t n, const std::string& what) {
  h5::check_allocation(n, sizeof(T), what);
  try {
    v.resize(static_cast<std::size_t>(n));
  } catch (const std::bad_alloc&) {
    fail(what, ": cannot allocate ", n * static_cast<int64_t>(sizeof(T)), " bytes");
  } catch (const std::length_error&) {
    fail(what, ": cannot allocate ", n, " elements");
  }
}

}  // namespace dsa::io::schema
