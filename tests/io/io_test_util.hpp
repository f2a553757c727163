// Helpers of the io tests (beside tests/common/test_util.hpp): a small valid workload, and raw
// HDF5 edits that make files the io layer must refuse (or, written as h5py would, accept).
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "tests/common/test_util.hpp"
#include "io/workload.hpp"
#include "kernels/shapes.hpp"

namespace dsa::io::test {

using dsa::testing::TempDir;
using dsa::testing::error_of;

// A small workload whose every dataset holds deterministic, valid contents.
struct SampleWorkload {
  WorkloadShape shape;
  KvCache kv;
  QueryRows rows;
};

inline SampleWorkload make_sample(int64_t rows = 10, int64_t num_pages = 6,
                                  int64_t max_num_pages = 3) {
  SampleWorkload s;
  s.shape.num_pages = num_pages;
  s.shape.rows = rows;
  s.shape.max_num_pages = max_num_pages;
  s.shape.sm_scale = 0.1352337788608801;
  s.shape.batch_offsets = rows >= 5 ? std::vector<int64_t>{0, 3, 4, rows}
                                    : (rows > 0 ? std::vector<int64_t>{0, rows}
                                                : std::vector<int64_t>{0});
  s.shape.text_attributes = {{"source", "io tests"}, {"model", "none (synthetic)"}};

  std::mt19937 rng(1234);
  auto fill_u8 = [&](std::vector<uint8_t>& v, int64_t n) {
    v.resize(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<uint8_t>(rng());
  };
  auto fill_u16 = [&](std::vector<uint16_t>& v, int64_t n) {
    v.resize(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<uint16_t>(rng());
  };

  s.kv.first_page = 0;
  s.kv.num_pages = num_pages;
  fill_u8(s.kv.index_k, num_pages * kIndexPageBytes);
  fill_u16(s.kv.ckv, num_pages * kPageSize * kCkvDim);
  fill_u16(s.kv.kpe, num_pages * kPageSize * kKpeDim);

  QueryRows& q = s.rows;
  q.first = 0;
  q.count = rows;
  q.max_num_pages = max_num_pages;
  const int64_t max_tokens = max_num_pages * kPageSize;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t len = (r * 53 + 7) % (max_tokens + 1);
    if (r == 1) len = 0;
    if (r == 2) len = max_tokens;
    q.seq_lens.push_back(static_cast<int32_t>(len));
    for (int64_t slot = 0; slot < max_num_pages; ++slot)
      q.block_table.push_back(static_cast<int32_t>((r * 7 + slot) % num_pages));  // distinct within a row
  }
  fill_u8(q.q_index, rows * kIndexHeads * kIndexHeadDim);
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  for (int64_t i = 0; i < rows * kIndexHeads; ++i) q.weights.push_back(weight(rng));
  fill_u16(q.q_nope, rows * kHeads * kCkvDim);
  fill_u16(q.q_pe, rows * kHeads * kKpeDim);
  const int64_t tokens = num_pages * kPageSize;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t valid = (r * 211 + 5) % (kTopK + 1);
    for (int64_t j = 0; j < kTopK; ++j) {
      // valid ids first, then -1, with one -1 inside the valid part of odd rows
      const bool hole = (r % 2 == 1) && j == 0 && valid > 0;
      q.sparse_indices.push_back(j < valid && !hole ? static_cast<int32_t>((r * 31 + j * 7) % tokens)
                                                    : -1);
    }
  }
  return s;
}

// Writes the datasets that s.shape's flags ask for (the writer refuses data for the others).
inline void write_sample(const std::string& path, const SampleWorkload& s, bool overwrite = false) {
  KvCache kv = s.kv;
  QueryRows rows = s.rows;
  if (!s.shape.indexer_data) {
    kv.index_k.clear();
    rows.seq_lens.clear();
    rows.block_table.clear();
    rows.q_index.clear();
    rows.weights.clear();
  }
  if (!s.shape.attention_data) {
    kv.ckv.clear();
    kv.kpe.clear();
    rows.q_nope.clear();
    rows.q_pe.clear();
  }
  if (!s.shape.sparse_indices) rows.sparse_indices.clear();
  WorkloadWriter writer(path, s.shape, overwrite);
  writer.write_kv(kv);
  writer.write_rows(rows);
  writer.close();
}

// ---- Raw HDF5 edits (the C API directly, as another tool would) ----------------------------

class RawFile {
 public:
  explicit RawFile(const std::string& path) : id_(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)) {
    EXPECT_GE(id_, 0) << "cannot open " << path;
  }
  ~RawFile() {
    if (id_ >= 0) H5Fclose(id_);
  }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;
  hid_t id() const { return id_; }

 private:
  hid_t id_;
};

// Sets attribute `name` of `object` ("/" or a dataset) to one value of `file_type`.
inline void raw_set_attr(hid_t file, const std::string& object, const std::string& name,
                         hid_t file_type, hid_t mem_type, const void* value) {
  if (H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attr = H5Acreate_by_name(file, object.c_str(), name.c_str(), file_type, space,
                                       H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(attr, 0) << "cannot create attribute " << name;
  EXPECT_GE(H5Awrite(attr, mem_type, value), 0);
  H5Aclose(attr);
  H5Sclose(space);
}

inline void raw_set_int_attr(hid_t file, const std::string& object, const std::string& name,
                             int64_t value, hid_t file_type = H5T_STD_I64LE) {
  raw_set_attr(file, object, name, file_type, H5T_NATIVE_INT64, &value);
}

inline void raw_set_float_attr(hid_t file, const std::string& object, const std::string& name,
                               double value, hid_t file_type = H5T_IEEE_F64LE) {
  raw_set_attr(file, object, name, file_type, H5T_NATIVE_DOUBLE, &value);
}

// A variable-length UTF-8 string, as h5py stores a Python str.
inline void raw_set_vlen_string_attr(hid_t file, const std::string& object, const std::string& name,
                                     const std::string& value) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const char* text = value.c_str();
  raw_set_attr(file, object, name, type, type, &text);
  H5Tclose(type);
}

// A fixed-length, NUL-padded ASCII string, as h5py stores numpy.bytes_.
inline void raw_set_fixed_string_attr(hid_t file, const std::string& object,
                                      const std::string& name, const std::string& value) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.size());
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  raw_set_attr(file, object, name, type, type, value.data());
  H5Tclose(type);
}

inline void raw_delete_attr(hid_t file, const std::string& object, const std::string& name) {
  EXPECT_GE(H5Adelete_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT), 0);
}

inline void raw_unlink(hid_t file, const std::string& name) {
  EXPECT_GE(H5Ldelete(file, name.c_str(), H5P_DEFAULT), 0) << "cannot unlink " << name;
}

// Replaces (or creates) dataset `name` with a contiguous one of `file_type` and `dims`; writes
// `data` (of `mem_type`) when given; adds a `dtype` string attribute when `dtype` is not empty.
inline void raw_replace_dataset(hid_t file, const std::string& name, hid_t file_type,
                                const std::vector<hsize_t>& dims, hid_t mem_type = -1,
                                const void* data = nullptr, const std::string& dtype = "") {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0) raw_unlink(file, name);
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t ds = H5Dcreate2(file, name.c_str(), file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(ds, 0) << "cannot create " << name;
  if (data != nullptr) {
    EXPECT_GE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
  }
  H5Dclose(ds);
  H5Sclose(space);
  H5Pclose(lcpl);
  if (!dtype.empty()) raw_set_vlen_string_attr(file, name, "dtype", dtype);
}

}  // namespace dsa::io::test
