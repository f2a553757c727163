// Hand-made hostile workload files: each is a small valid workload broken in one way (or a
// file that is not a workload at all), with the one-line message the io layer must give.
// The io tests check every case, read from disk and from a memory image; the fuzz target's
// seed corpus (tests/fuzz/seed_corpus.cpp) is these files plus a few valid ones.
#pragma once

#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "io_test_util.hpp"

namespace dsa::io::test {

// The small workload the hostile files start from: 2 rows (seq_lens 7 and 0), 1 page, block
// tables of 1 page, one batch. About 150 KB (the page of ckv is 64 KiB), so that the fuzzer,
// which starts from these files, spends its time on HDF5's metadata rather than on data.
inline SampleWorkload small_sample() { return make_sample(2, 1, 1); }

// NaN and Inf codes replaced by finite values, so that a test can plant its own.
inline void make_finite(SampleWorkload& s) {
  auto e4m3 = [](std::vector<uint8_t>& v, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      if ((v[i] & 0x7F) == 0x7F) v[i] = static_cast<uint8_t>(v[i] - 1);
  };
  auto bf16 = [](std::vector<uint16_t>& v) {
    for (auto& x : v)
      if ((x & 0x7F80) == 0x7F80) x = static_cast<uint16_t>(x & ~0x0080);
  };
  for (int64_t p = 0; p < s.kv.num_pages; ++p) {
    const std::size_t page = static_cast<std::size_t>(p) * kIndexPageBytes;
    e4m3(s.kv.index_k, page, page + kIndexPageFp8Bytes);
    for (int t = 0; t < kPageSize; ++t) {  // scales: 0.5 + t / 64, little-endian
      const float scale = 0.5f + static_cast<float>(t) / 64.0f;
      uint32_t bits = 0;
      std::memcpy(&bits, &scale, 4);
      for (int b = 0; b < 4; ++b)
        s.kv.index_k[page + kIndexPageFp8Bytes + static_cast<std::size_t>(t * 4 + b)] =
            static_cast<uint8_t>(bits >> (8 * b));
    }
  }
  e4m3(s.rows.q_index, 0, s.rows.q_index.size());
  bf16(s.kv.ckv);
  bf16(s.kv.kpe);
  bf16(s.rows.q_nope);
  bf16(s.rows.q_pe);
}

namespace hostile {

inline void write_base(const std::string& path) { write_sample(path, small_sample()); }

// A chunked dataset of `dims` (nothing written: HDF5 stores no chunk, so any size is cheap).
inline void raw_chunked_dataset(hid_t file, const std::string& name, hid_t type,
                                const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                                const std::string& dtype = "") {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0) raw_unlink(file, name);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  EXPECT_GE(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), 0);
  const hid_t ds = H5Dcreate2(file, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  EXPECT_GE(ds, 0) << "cannot create " << name;
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  if (!dtype.empty()) raw_set_vlen_string_attr(file, name, "dtype", dtype);
}

// The base workload with `edit(file id)` applied through the raw C API.
template <typename Edit>
void edited(const std::string& path, Edit&& edit) {
  write_base(path);
  RawFile f(path);
  edit(f.id());
}

// The base workload with its sample changed before writing.
template <typename Edit>
void with_sample(const std::string& path, Edit&& edit) {
  SampleWorkload s = small_sample();
  edit(s);
  write_sample(path, s);
}

// ---- The file itself ----------------------------------------------------------------------

inline void empty_file(const std::string& path) { std::ofstream{path}; }

inline void truncated(const std::string& path) {
  write_base(path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
}

// The superblock and little else: HDF5's signature is there, its objects are not.
inline void superblock_only(const std::string& path) {
  write_base(path);
  std::filesystem::resize_file(path, 96);
}

// ---- Types --------------------------------------------------------------------------------

inline void weights_float64(const std::string& path) {
  edited(path, [](hid_t f) { raw_replace_dataset(f, "/queries/weights", H5T_IEEE_F64LE, {2, 64}); });
}

inline void seq_lens_uint32(const std::string& path) {
  edited(path, [](hid_t f) {
    const std::vector<uint32_t> lens = {7, 0};
    raw_replace_dataset(f, "/queries/seq_lens", H5T_STD_U32LE, {2}, H5T_NATIVE_UINT32, lens.data());
  });
}

inline void ckv_compound(const std::string& path) {
  edited(path, [](hid_t f) {
    const hid_t type = H5Tcreate(H5T_COMPOUND, 4);
    H5Tinsert(type, "re", 0, H5T_STD_U16LE);
    H5Tinsert(type, "im", 2, H5T_STD_U16LE);
    raw_replace_dataset(f, "/kv/ckv", type, {1, 64, 512}, -1, nullptr, "bfloat16");
    H5Tclose(type);
  });
}

inline void q_index_strings(const std::string& path) {
  edited(path, [](hid_t f) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 1);
    raw_replace_dataset(f, "/queries/q_index", type, {2, 64, 128}, -1, nullptr, "float8_e4m3fn");
    H5Tclose(type);
  });
}

// ---- Shapes and sizes ---------------------------------------------------------------------

// 2^55 pages of 8448 bytes: the product leaves int64 (and the byte count leaves uint64).
inline void shape_overflows_int64(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_chunked_dataset(f, "/kv/index_k", H5T_STD_U8LE, {hsize_t{1} << 55, 8448}, {1, 8448});
  });
}

inline void shape_overflows_uint64(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_chunked_dataset(f, "/queries/block_table", H5T_STD_I32LE, {hsize_t{1} << 40, hsize_t{1} << 40},
                        {1, 1024});
  });
}

inline void scalar_seq_lens(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries/seq_lens");
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t ds = H5Dcreate2(f, "/queries/seq_lens", H5T_STD_I32LE, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(space);
  });
}

inline void null_dataspace_weights(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries/weights");
    const hid_t space = H5Screate(H5S_NULL);
    const hid_t ds = H5Dcreate2(f, "/queries/weights", H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(space);
  });
}

inline void zero_width_q_index(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_replace_dataset(f, "/queries/q_index", H5T_STD_U8LE, {2, 0, 128}, -1, nullptr,
                        "float8_e4m3fn");
  });
}

inline void zero_length_offsets(const std::string& path) {
  edited(path, [](hid_t f) { raw_replace_dataset(f, "/batches/offsets", H5T_STD_I64LE, {0}); });
}

// R = 2^36 rows, declared but never written (chunked, so the file stays small): a content
// check would need 256 GiB for the seq_lens alone.
inline void rows_past_read_limit(const std::string& path) {
  SampleWorkload s = small_sample();
  s.shape.rows = int64_t{1} << 36;
  s.shape.batch_offsets = {0, s.shape.rows};
  s.shape.attention_data = false;
  s.shape.sparse_indices = false;
  WorkloadWriter writer(path, s.shape, /*overwrite=*/true);
  writer.close();
}

// As above, with 2^36 + 1 batch offsets: opening the file would need 512 GiB for them.
inline void offsets_past_read_limit(const std::string& path) {
  rows_past_read_limit(path);
  RawFile f(path);
  raw_chunked_dataset(f.id(), "/batches/offsets", H5T_STD_I64LE, {(hsize_t{1} << 36) + 1}, {1 << 16});
}

// One chunk of /queries/q_nope holds 2^16 rows: 1 GiB to read any row of it.
inline void huge_chunk(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_chunked_dataset(f, "/queries/q_nope", H5T_STD_U16LE, {hsize_t{1} << 20, 16, 512},
                        {hsize_t{1} << 16, 16, 512}, "bfloat16");
  });
}

// ---- Contents: ids and lengths at the extremes of int32 --------------------------------------

inline void page_id_int32_min(const std::string& path) {
  with_sample(path, [](SampleWorkload& s) { s.rows.block_table[0] = std::numeric_limits<int32_t>::min(); });
}

inline void page_id_past_last_page(const std::string& path) {
  with_sample(path, [](SampleWorkload& s) { s.rows.block_table[0] = 1; });
}

inline void token_id_int32_max(const std::string& path) {
  with_sample(path, [](SampleWorkload& s) { s.rows.sparse_indices[1 * kTopK + 0] = std::numeric_limits<int32_t>::max(); });
}

inline void token_id_negative(const std::string& path) {
  with_sample(path, [](SampleWorkload& s) { s.rows.sparse_indices[0 * kTopK + 5] = -1000; });
}

inline void seq_len_int32_max(const std::string& path) {
  with_sample(path, [](SampleWorkload& s) { s.rows.seq_lens[1] = std::numeric_limits<int32_t>::max(); });
}

inline void seq_len_int32_min(const std::string& path) {
  with_sample(path, [](SampleWorkload& s) { s.rows.seq_lens[1] = std::numeric_limits<int32_t>::min(); });
}

inline void offsets_negative(const std::string& path) {
  edited(path, [](hid_t f) {
    const std::vector<int64_t> offsets = {0, -1, 2};
    raw_replace_dataset(f, "/batches/offsets", H5T_STD_I64LE, {3}, H5T_NATIVE_INT64, offsets.data());
  });
}

inline void offsets_past_rows(const std::string& path) {
  edited(path, [](hid_t f) {
    const std::vector<int64_t> offsets = {0, std::numeric_limits<int64_t>::max()};
    raw_replace_dataset(f, "/batches/offsets", H5T_STD_I64LE, {2}, H5T_NATIVE_INT64, offsets.data());
  });
}

// ---- Links, groups and datasets in each other's places ---------------------------------------

inline void dangling_soft_link(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries/weights");
    EXPECT_GE(H5Lcreate_soft("/nowhere", f, "/queries/weights", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
}

inline void dangling_group_link(const std::string& path) {
  edited(path, [](hid_t f) {
    EXPECT_GE(H5Lmove(f, "/kv", f, "/kv_moved", H5P_DEFAULT, H5P_DEFAULT), 0);
    EXPECT_GE(H5Lcreate_soft("/gone", f, "/kv", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
}

inline void soft_link_loop(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries/q_pe");
    EXPECT_GE(H5Lcreate_soft("/queries/q_pe", f, "/queries/q_pe", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
}

inline void external_link(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries/q_nope");
    EXPECT_GE(H5Lcreate_external("other.h5", "/q_nope", f, "/queries/q_nope", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
}

inline void group_for_dataset(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/kv/ckv");
    H5Gclose(H5Gcreate2(f, "/kv/ckv", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  });
}

inline void dataset_for_group(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries");
    raw_replace_dataset(f, "/queries", H5T_STD_I32LE, {2});
  });
}

// /kv/kpe's data lives in a raw file beside the workload (HDF5's external storage).
inline void external_storage(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/kv/kpe");
    const hsize_t dims[3] = {1, 64, 64};
    const hid_t space = H5Screate_simple(3, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    EXPECT_GE(H5Pset_external(dcpl, "kpe.raw", 0, 64 * 64 * 2), 0);
    const hid_t ds = H5Dcreate2(f, "/kv/kpe", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    EXPECT_GE(ds, 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    raw_set_vlen_string_attr(f, "/kv/kpe", "dtype", "bfloat16");
  });
}

// /queries/seq_lens is a virtual dataset mapping a dataset of another file.
inline void virtual_dataset(const std::string& path) {
  edited(path, [](hid_t f) {
    raw_unlink(f, "/queries/seq_lens");
    const hsize_t dims[1] = {2};
    const hid_t space = H5Screate_simple(1, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    EXPECT_GE(H5Pset_virtual(dcpl, space, "source.h5", "/seq_lens", space), 0);
    const hid_t ds = H5Dcreate2(f, "/queries/seq_lens", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl,
                                H5P_DEFAULT);
    EXPECT_GE(ds, 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
  });
}

// ---- Attributes of the wrong type or size -------------------------------------------------

inline void dsa_format_integer(const std::string& path) {
  edited(path, [](hid_t f) { raw_set_int_attr(f, "/", "dsa_format", 1); });
}

// Text from the file is shown escaped and cut, so that a message stays one line.
inline void dsa_format_multiline(const std::string& path) {
  edited(path, [](hid_t f) { raw_set_vlen_string_attr(f, "/", "dsa_format", "dsa-\nworkload\r\x01"); });
}

inline void dtype_attribute_long(const std::string& path) {
  edited(path, [](hid_t f) { raw_set_vlen_string_attr(f, "/kv/ckv", "dtype", std::string(300, 'b')); });
}

inline void format_version_string(const std::string& path) {
  edited(path, [](hid_t f) { raw_set_vlen_string_attr(f, "/", "format_version", "1"); });
}

inline void sm_scale_string(const std::string& path) {
  edited(path, [](hid_t f) { raw_set_fixed_string_attr(f, "/", "sm_scale", "0.125"); });
}

inline void dtype_attribute_integer(const std::string& path) {
  edited(path, [](hid_t f) { raw_set_int_attr(f, "/kv/kpe", "dtype", 16); });
}

inline void page_size_two_values(const std::string& path) {
  edited(path, [](hid_t f) {
    H5Adelete_by_name(f, "/", "page_size", H5P_DEFAULT);
    const hsize_t two = 2;
    const hid_t space = H5Screate_simple(1, &two, nullptr);
    const hid_t attr = H5Acreate2(f, "page_size", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const int64_t values[2] = {64, 64};
    EXPECT_GE(H5Awrite(attr, H5T_NATIVE_INT64, values), 0);
    H5Aclose(attr);
    H5Sclose(space);
  });
}

// A 2 MiB fixed-length string as dsa_format (attributes over 64 KiB need the newer file format,
// which stores them outside the object header).
inline void huge_string_attribute(const std::string& path) {
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  EXPECT_GE(f, 0);
  raw_set_fixed_string_attr(f, "/", "dsa_format", std::string(2u << 20, 'x'));
  H5Fclose(f);
  H5Pclose(fapl);
}

// ---- The table ----------------------------------------------------------------------------

struct HostileFile {
  const char* name;                        // file stem and test name
  void (*make)(const std::string& path);   // writes the file
  Stage stage;                             // the stage it is opened for
  bool contents;                           // refused by check_contents(), not when opened
  const char* dataset;                     // the dataset the message must name, or nullptr
  std::string (*message)(const std::string& path);  // the whole message, or its start
  bool prefix = false;                     // message() is the start: HDF5's reason follows
  int64_t read_limit = 0;                  // set_read_limit_bytes() during the check (0: default)
};

inline void PrintTo(const HostileFile& c, std::ostream* os) { *os << c.name; }

using P = const std::string&;

inline const std::vector<HostileFile>& hostile_files() {
  constexpr int64_t GiB = int64_t{1} << 30;
  static const std::vector<HostileFile> table = {
      {"empty_file", empty_file, Stage::indexer, false, nullptr,
       [](P p) { return p + ": not an HDF5 file"; }},
      {"truncated", truncated, Stage::attention, false, nullptr,
       [](P p) { return p + ": cannot open: truncated file: eof = "; }, true},
      {"superblock_only", superblock_only, Stage::pipeline, false, nullptr,
       [](P p) { return p + ": cannot open: "; }, true},

      {"weights_float64", weights_float64, Stage::indexer, false, "/queries/weights",
       [](P p) { return p + ": /queries/weights has type float64, expected float32"; }},
      {"seq_lens_uint32", seq_lens_uint32, Stage::pipeline, false, "/queries/seq_lens",
       [](P p) { return p + ": /queries/seq_lens has type uint32, expected int32"; }},
      {"ckv_compound", ckv_compound, Stage::attention, false, "/kv/ckv",
       [](P p) { return p + ": /kv/ckv has type compound, expected uint16"; }},
      {"q_index_strings", q_index_strings, Stage::indexer, false, "/queries/q_index",
       [](P p) { return p + ": /queries/q_index has type string, expected uint8"; }},

      {"shape_overflows_int64", shape_overflows_int64, Stage::indexer, false, "/kv/index_k",
       [](P p) {
         return p + ": /kv/index_k: shape [36028797018963968, 8448] is too large (over 2^63 bytes)";
       }},
      {"shape_overflows_uint64", shape_overflows_uint64, Stage::indexer, false, "/queries/block_table",
       [](P p) {
         return p + ": /queries/block_table: shape [1099511627776, 1099511627776] is too large "
                    "(over 2^63 bytes)";
       }},
      {"scalar_seq_lens", scalar_seq_lens, Stage::indexer, false, "/queries/seq_lens",
       [](P p) { return p + ": /queries/seq_lens has shape [], expected [R]"; }},
      {"null_dataspace_weights", null_dataspace_weights, Stage::pipeline, false, "/queries/weights",
       [](P p) { return p + ": /queries/weights has shape [], expected [R, 64]"; }},
      {"zero_width_q_index", zero_width_q_index, Stage::indexer, false, "/queries/q_index",
       [](P p) { return p + ": /queries/q_index has shape [2, 0, 128], expected [R, 64, 128]"; }},
      {"zero_length_offsets", zero_length_offsets, Stage::attention, false, "/batches/offsets",
       [](P p) {
         return p + ": /batches/offsets is empty, expected num_batches + 1 entries from 0 to R";
       }},
      {"rows_past_read_limit", rows_past_read_limit, Stage::indexer, true, "/queries/seq_lens",
       [](P p) {
         return p + ": /queries/seq_lens: cannot allocate 256.0 GiB (274877906944 bytes), more "
                    "than the read limit of 1.0 GiB";
       },
       false, GiB},
      {"offsets_past_read_limit", offsets_past_read_limit, Stage::indexer, false, "/batches/offsets",
       [](P p) {
         return p + ": /batches/offsets: cannot allocate 512.0 GiB (549755813896 bytes), more "
                    "than the read limit of 1.0 GiB";
       },
       false, GiB},
      {"huge_chunk", huge_chunk, Stage::attention, false, "/queries/q_nope",
       [](P p) {
         return p + ": /queries/q_nope: one chunk: cannot allocate 1.0 GiB (1073741824 bytes), "
                    "more than the read limit of 256.0 MiB";
       },
       false, GiB / 4},

      {"page_id_int32_min", page_id_int32_min, Stage::indexer, true, "/queries/block_table",
       [](P p) {
         return p + ": /queries/block_table row 0: page id -2147483648 outside [0, 1) at page slot 0";
       }},
      {"page_id_past_last_page", page_id_past_last_page, Stage::pipeline, true, "/queries/block_table",
       [](P p) { return p + ": /queries/block_table row 0: page id 1 outside [0, 1) at page slot 0"; }},
      {"token_id_int32_max", token_id_int32_max, Stage::attention, true, "/queries/sparse_indices",
       [](P p) {
         return p + ": /queries/sparse_indices row 1: token id 2147483647 outside [-1, 64) at slot 0";
       }},
      {"token_id_negative", token_id_negative, Stage::attention, true, "/queries/sparse_indices",
       [](P p) {
         return p + ": /queries/sparse_indices row 0: token id -1000 outside [-1, 64) at slot 5";
       }},
      {"seq_len_int32_max", seq_len_int32_max, Stage::indexer, true, "/queries/seq_lens",
       [](P p) {
         return p + ": /queries/seq_lens row 1: seq_len 2147483647 exceeds the block table's 1 "
                    "pages x 64 = 64 tokens";
       }},
      {"seq_len_int32_min", seq_len_int32_min, Stage::pipeline, true, "/queries/seq_lens",
       [](P p) { return p + ": /queries/seq_lens row 1: seq_len -2147483648 is negative"; }},
      {"offsets_negative", offsets_negative, Stage::attention, false, "/batches/offsets",
       [](P p) {
         return p + ": /batches/offsets row 1: offset -1 after 0, offsets must increase (a batch "
                    "holds at least one row)";
       }},
      {"offsets_past_rows", offsets_past_rows, Stage::indexer, false, "/batches/offsets",
       [](P p) { return p + ": /batches/offsets ends at 9223372036854775807, expected R = 2"; }},

      {"dangling_soft_link", dangling_soft_link, Stage::indexer, false, "/queries/weights",
       [](P p) { return p + ": /queries/weights is a soft link to /nowhere, which names nothing"; }},
      {"dangling_group_link", dangling_group_link, Stage::attention, false, "/kv/index_k",
       [](P p) { return p + ": /kv/index_k: /kv is a soft link to /gone, which names nothing"; }},
      {"soft_link_loop", soft_link_loop, Stage::attention, false, "/queries/q_pe",
       [](P p) {
         return p + ": /queries/q_pe is a soft link to /queries/q_pe, which cannot be followed: ";
       },
       true},
      {"external_link", external_link, Stage::attention, false, "/queries/q_nope",
       [](P p) {
         return p + ": /queries/q_nope is an external link (to other.h5:/q_nope); links to other "
                    "files are not followed";
       }},
      {"group_for_dataset", group_for_dataset, Stage::pipeline, false, "/kv/ckv",
       [](P p) { return p + ": /kv/ckv is not a dataset"; }},
      {"dataset_for_group", dataset_for_group, Stage::indexer, false, "/queries",
       [](P p) { return p + ": /queries/seq_lens: /queries is not a group"; }},
      {"external_storage", external_storage, Stage::attention, false, "/kv/kpe",
       [](P p) {
         return p + ": /kv/kpe keeps its data in external files; this program reads datasets "
                    "stored in the file itself";
       }},
      {"virtual_dataset", virtual_dataset, Stage::indexer, false, "/queries/seq_lens",
       [](P p) {
         return p + ": /queries/seq_lens is a virtual dataset (its data lives in other files); "
                    "this program reads datasets stored in the file itself";
       }},

      {"dsa_format_integer", dsa_format_integer, Stage::indexer, false, nullptr,
       [](P p) { return p + ": attribute dsa_format has type int64, expected a string"; }},
      {"dsa_format_multiline", dsa_format_multiline, Stage::indexer, false, nullptr,
       [](P p) {
         return p + ": dsa_format is \"dsa-\\nworkload\\r\\x01\", expected \"dsa-workload\"";
       }},
      {"dtype_attribute_long", dtype_attribute_long, Stage::pipeline, false, "/kv/ckv",
       [](P p) {
         return p + ": /kv/ckv: dtype attribute is \"" + std::string(200, 'b') +
                "...\", expected \"bfloat16\"";
       }},
      {"format_version_string", format_version_string, Stage::attention, false, nullptr,
       [](P p) { return p + ": attribute format_version has type string, expected an integer"; }},
      {"sm_scale_string", sm_scale_string, Stage::attention, false, nullptr,
       [](P p) { return p + ": attribute sm_scale has type string, expected a float"; }},
      {"dtype_attribute_integer", dtype_attribute_integer, Stage::attention, false, "/kv/kpe",
       [](P p) { return p + ": /kv/kpe: attribute dtype has type int64, expected a string"; }},
      {"page_size_two_values", page_size_two_values, Stage::indexer, false, nullptr,
       [](P p) { return p + ": attribute page_size holds 2 values, expected one"; }},
      {"huge_string_attribute", huge_string_attribute, Stage::indexer, false, nullptr,
       [](P p) {
         return p + ": attribute dsa_format is a string of 2097152 bytes, longer than the "
                    "1048576 this program reads";
       }},
  };
  return table;
}

}  // namespace hostile
}  // namespace dsa::io::test
