// Workload files: WorkloadWriter -> WorkloadFile round trips, per-rank row reads, and files
// written by other tools (the raw HDF5 C API, laid out the way h5py writes).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/workload.hpp"
#include "io_test_util.hpp"

namespace dsa::io::test {
namespace {

template <typename T>
std::vector<T> slice(const std::vector<T>& all, int64_t first, int64_t count, int64_t per_row) {
  return {all.begin() + first * per_row, all.begin() + (first + count) * per_row};
}

// Every query dataset of rows [first, first + count) equals the sample's, bit for bit.
void expect_rows_equal(const QueryRows& got, const QueryRows& all, int64_t first, int64_t count,
                       bool indexer, bool attention, bool sparse) {
  EXPECT_EQ(got.first, first);
  EXPECT_EQ(got.count, count);
  if (indexer) {
    EXPECT_EQ(got.max_num_pages, all.max_num_pages);
    EXPECT_EQ(got.seq_lens, slice(all.seq_lens, first, count, 1));
    EXPECT_EQ(got.block_table, slice(all.block_table, first, count, all.max_num_pages));
    EXPECT_EQ(got.q_index, slice(all.q_index, first, count, kIndexHeads * kIndexHeadDim));
    const auto weights = slice(all.weights, first, count, kIndexHeads);
    ASSERT_EQ(got.weights.size(), weights.size());
    if (!weights.empty()) {
      EXPECT_EQ(std::memcmp(got.weights.data(), weights.data(), weights.size() * sizeof(float)), 0);
    }
  } else {
    EXPECT_TRUE(got.seq_lens.empty() && got.block_table.empty() && got.q_index.empty() &&
                got.weights.empty());
  }
  if (attention) {
    EXPECT_EQ(got.q_nope, slice(all.q_nope, first, count, kHeads * kCkvDim));
    EXPECT_EQ(got.q_pe, slice(all.q_pe, first, count, kHeads * kKpeDim));
  } else {
    EXPECT_TRUE(got.q_nope.empty() && got.q_pe.empty());
  }
  if (sparse) {
    EXPECT_EQ(got.sparse_indices, slice(all.sparse_indices, first, count, kTopK));
  } else {
    EXPECT_TRUE(got.sparse_indices.empty());
  }
}

TEST(Workload, RoundTripsEveryDatasetAndAttribute) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample();
  write_sample(path, s);

  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline}) {
    SCOPED_TRACE(stage_name(stage));
    const WorkloadFile w(path, stage);
    const WorkloadInfo& info = w.info();
    EXPECT_EQ(w.stage(), stage);
    EXPECT_EQ(info.path, path);
    EXPECT_EQ(info.format_version, 1);
    EXPECT_EQ(info.rows, s.shape.rows);
    EXPECT_EQ(info.num_pages, s.shape.num_pages);
    EXPECT_EQ(info.max_num_pages, s.shape.max_num_pages);
    EXPECT_EQ(info.sm_scale, s.shape.sm_scale);  // bit-exact float64
    EXPECT_EQ(info.batch_offsets, s.shape.batch_offsets);
    EXPECT_EQ(info.num_batches(), 3);
    EXPECT_EQ(info.text_attributes, s.shape.text_attributes);
    EXPECT_EQ(info.datasets.size(), 11u);
    for (const char* name : {"/kv/index_k", "/kv/ckv", "/kv/kpe", "/queries/seq_lens",
                             "/queries/block_table", "/queries/q_index", "/queries/weights",
                             "/queries/q_nope", "/queries/q_pe", "/queries/sparse_indices",
                             "/batches/offsets"})
      EXPECT_TRUE(info.has(name)) << name;

    const bool indexer = stage_needs_indexer_data(stage);
    const bool attention = stage_needs_attention_data(stage);
    const bool sparse = stage_needs_sparse_indices(stage);
    expect_rows_equal(w.read_rows(0, s.shape.rows), s.rows, 0, s.shape.rows, indexer, attention,
                      sparse);

    const KvCache kv = w.read_kv();
    EXPECT_EQ(kv.first_page, 0);
    EXPECT_EQ(kv.num_pages, s.shape.num_pages);
    EXPECT_EQ(kv.index_k, indexer ? s.kv.index_k : std::vector<uint8_t>{});
    EXPECT_EQ(kv.ckv, attention ? s.kv.ckv : std::vector<uint16_t>{});
    EXPECT_EQ(kv.kpe, attention ? s.kv.kpe : std::vector<uint16_t>{});
  }
}

TEST(Workload, ReadsRowHyperslabsAtUnevenRanges) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample(/*rows=*/23);
  write_sample(path, s);
  const WorkloadFile w(path, Stage::pipeline);
  // As four ranks might split 23 rows, with an empty share at the end.
  const std::vector<std::pair<int64_t, int64_t>> shares = {{0, 7}, {7, 1}, {8, 15}, {23, 0}};
  for (const auto& [first, count] : shares) {
    SCOPED_TRACE(first);
    expect_rows_equal(w.read_rows(first, count), s.rows, first, count, true, true, false);
  }
  const WorkloadFile a(path, Stage::attention);
  expect_rows_equal(a.read_rows(5, 11), s.rows, 5, 11, false, true, true);
}

TEST(Workload, ReadsRowsIntoCallerBuffersAsReadRowsDoes) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample(/*rows=*/23);
  write_sample(path, s);
  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline}) {
    SCOPED_TRACE(stage_name(stage));
    const WorkloadFile w(path, stage);
    const int64_t cap = 16, width = w.info().max_num_pages;
    std::vector<int32_t> seq(cap), bt(cap * width), sparse(cap * 2048);
    std::vector<uint8_t> qi(cap * 64 * 128);
    std::vector<float> wt(cap * 64);
    std::vector<uint16_t> qn(cap * 16 * 512), qp(cap * 16 * 64);
    RowBuffers b{cap, width, seq.data(), bt.data(), qi.data(), wt.data(), qn.data(), qp.data(), sparse.data()};
    const RowsView v = w.read_rows_into(4, 11, b);
    const QueryRows r = w.read_rows(4, 11);
    const RowsView expect = view(r);
    EXPECT_EQ(v.count, 11);
    EXPECT_EQ(v.max_num_pages, expect.max_num_pages);
    auto same = [&](const auto* got, const auto& want) {
      if (want.empty()) return got == nullptr;
      return got != nullptr && std::equal(want.begin(), want.end(), got);
    };
    EXPECT_TRUE(same(v.seq_lens, r.seq_lens));
    EXPECT_TRUE(same(v.block_table, r.block_table));
    EXPECT_TRUE(same(v.q_index, r.q_index));
    EXPECT_TRUE(same(v.weights, r.weights));
    EXPECT_TRUE(same(v.q_nope, r.q_nope));
    EXPECT_TRUE(same(v.q_pe, r.q_pe));
    EXPECT_TRUE(same(v.sparse_indices, r.sparse_indices));
    // copy_rows_into gives the same view contents from host vectors.
    const RowsView c = copy_rows_into(r, b);
    EXPECT_TRUE(same(c.q_pe, r.q_pe));
    EXPECT_TRUE(same(c.block_table, r.block_table));
    // Too many rows for the buffers: refused, naming the file.
    EXPECT_CONTAINS(error_of([&] { w.read_rows_into(0, 17, b); }), "w.h5");
  }
}

TEST(Workload, WriterTakesRowsAndPagesInAnyOrder) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample(/*rows=*/17, /*num_pages=*/9);
  {
    WorkloadWriter writer(path, s.shape, false);
    // Pages back to front in pieces of 4, 4, 1.
    for (int64_t first = 8; first >= 0; first -= 4) {
      const int64_t begin = std::max<int64_t>(first - 3, 0);
      const int64_t count = first - begin + 1;
      KvCache piece;
      piece.first_page = begin;
      piece.num_pages = count;
      piece.index_k = slice(s.kv.index_k, begin, count, kIndexPageBytes);
      piece.ckv = slice(s.kv.ckv, begin, count, kPageSize * kCkvDim);
      piece.kpe = slice(s.kv.kpe, begin, count, kPageSize * kKpeDim);
      writer.write_kv(piece);
    }
    // Rows in uneven pieces, out of order, one dataset at a time for the last piece.
    const std::vector<std::pair<int64_t, int64_t>> pieces = {{10, 7}, {0, 4}, {4, 6}};
    for (const auto& [first, count] : pieces) {
      QueryRows q;
      q.first = first;
      q.count = count;
      q.max_num_pages = s.rows.max_num_pages;
      q.seq_lens = slice(s.rows.seq_lens, first, count, 1);
      q.block_table = slice(s.rows.block_table, first, count, s.rows.max_num_pages);
      q.q_index = slice(s.rows.q_index, first, count, kIndexHeads * kIndexHeadDim);
      q.weights = slice(s.rows.weights, first, count, kIndexHeads);
      q.q_nope = slice(s.rows.q_nope, first, count, kHeads * kCkvDim);
      q.sparse_indices = slice(s.rows.sparse_indices, first, count, kTopK);
      writer.write_rows(q);
      QueryRows pe;
      pe.first = first;
      pe.count = count;
      pe.q_pe = slice(s.rows.q_pe, first, count, kHeads * kKpeDim);
      writer.write_rows(pe);
    }
    writer.close();
  }
  const WorkloadFile w(path, Stage::attention);
  expect_rows_equal(w.read_rows(0, 17), s.rows, 0, 17, false, true, true);
  EXPECT_EQ(w.read_kv().ckv, s.kv.ckv);
  const WorkloadFile p(path, Stage::pipeline);
  expect_rows_equal(p.read_rows(0, 17), s.rows, 0, 17, true, true, false);
  EXPECT_EQ(p.read_kv().index_k, s.kv.index_k);
}

TEST(Workload, WriterRefusesExistingPathUnlessOverwrite) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  std::ofstream(path) << "something precious\n";
  const SampleWorkload s = make_sample();
  EXPECT_EQ(error_of([&] { WorkloadWriter writer(path, s.shape, false); }),
            path + " exists; not overwriting it");
  write_sample(path, s, /*overwrite=*/true);
  EXPECT_EQ(WorkloadFile(path, Stage::pipeline).info().rows, s.shape.rows);
}

TEST(Workload, WriterChecksSizesAndFlags) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  SampleWorkload s = make_sample();
  s.shape.sparse_indices = false;
  WorkloadWriter writer(path, s.shape, false);
  QueryRows q = s.rows;
  q.weights.pop_back();
  EXPECT_EQ(error_of([&] { writer.write_rows(q); }),
            path + ": /queries/weights: write_rows got 639 values for 10 rows, expected 640");
  QueryRows sp;
  sp.first = 0;
  sp.count = 10;
  sp.sparse_indices = s.rows.sparse_indices;
  EXPECT_EQ(error_of([&] { writer.write_rows(sp); }),
            path + ": write_rows: /queries/sparse_indices is not part of this workload (see the "
                   "WorkloadShape flags)");
  QueryRows late;
  late.first = 8;
  late.count = 3;
  late.seq_lens = {1, 2, 3};
  EXPECT_EQ(error_of([&] { writer.write_rows(late); }),
            path + ": /queries/seq_lens: cannot write rows [8, 11), the dataset has 10 rows");
  writer.close();
  EXPECT_EQ(error_of([&] { writer.write_rows(late); }), path + ": write_rows after close()");
}

TEST(Workload, ReadRowsOutsideTheWorkloadIsRefused) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  write_sample(path, make_sample());
  const WorkloadFile w(path, Stage::indexer);
  EXPECT_EQ(error_of([&] { (void)w.read_rows(8, 3); }),
            path + ": cannot read rows [8, 11), the workload has 10 rows");
  EXPECT_EQ(error_of([&] { (void)w.read_rows(-1, 2); }),
            path + ": cannot read rows [-1, 1), the workload has 10 rows");
}

TEST(Workload, CheckContentsReturnsRowStats) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample();
  write_sample(path, s);

  const RowStats pipeline = WorkloadFile(path, Stage::pipeline).check_contents();
  EXPECT_EQ(pipeline.seq_lens, s.rows.seq_lens);
  EXPECT_TRUE(pipeline.valid_ids.empty());

  const RowStats attention = WorkloadFile(path, Stage::attention).check_contents();
  EXPECT_TRUE(attention.seq_lens.empty());
  ASSERT_EQ(attention.valid_ids.size(), 10u);
  for (int64_t r = 0; r < 10; ++r) {
    int32_t valid = 0;
    for (int64_t j = 0; j < kTopK; ++j)
      valid += s.rows.sparse_indices[static_cast<std::size_t>(r * kTopK + j)] != -1 ? 1 : 0;
    EXPECT_EQ(attention.valid_ids[static_cast<std::size_t>(r)], valid) << "row " << r;
  }
}

TEST(Workload, EmptyWorkloadRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample(/*rows=*/0, /*num_pages=*/0, /*max_num_pages=*/0);
  write_sample(path, s);
  const WorkloadFile w(path, Stage::pipeline);
  EXPECT_EQ(w.info().rows, 0);
  EXPECT_EQ(w.info().num_batches(), 0);
  EXPECT_TRUE(w.check_contents().seq_lens.empty());
  EXPECT_EQ(w.read_rows(0, 0).count, 0);
  EXPECT_TRUE(w.read_kv().ckv.empty());
}

TEST(Workload, StageNames) {
  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline})
    EXPECT_EQ(parse_stage(stage_name(stage)), stage);
  EXPECT_EQ(error_of([] { (void)parse_stage("decode"); }),
            "unknown stage \"decode\" (expected indexer, attention or pipeline)");
  EXPECT_TRUE(stage_needs_sparse_indices(Stage::attention));
  EXPECT_FALSE(stage_needs_sparse_indices(Stage::pipeline));
  EXPECT_FALSE(stage_needs_indexer_data(Stage::attention));
  EXPECT_FALSE(stage_needs_attention_data(Stage::indexer));
}

// ---- A file written as h5py (or another tool) would write it ----------------------------

// Creates `name` with the given layout: contiguous when `chunk` is empty, else chunked, with
// shuffle + deflate when `deflate` > 0. `dtype_kind`: 0 none, 1 variable-length, 2 fixed.
void raw_dataset(hid_t file, const std::string& name, hid_t file_type, hid_t mem_type,
                 const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk, int deflate,
                 const void* data, const std::string& dtype = "", int dtype_kind = 0) {
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!chunk.empty()) {
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
    if (deflate > 0) {
      H5Pset_shuffle(dcpl);
      H5Pset_deflate(dcpl, static_cast<unsigned>(deflate));
    }
  }
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t ds = H5Dcreate2(file, name.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT);
  ASSERT_GE(ds, 0) << name;
  ASSERT_GE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0) << name;
  H5Dclose(ds);
  H5Sclose(space);
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  if (dtype_kind == 1) raw_set_vlen_string_attr(file, name, "dtype", dtype);
  if (dtype_kind == 2) raw_set_fixed_string_attr(file, name, "dtype", dtype);
}

TEST(Workload, ReadsFilesWrittenByOtherTools) {
  TempDir dir;
  const std::string path = dir.file("h5py.h5");
  const SampleWorkload s = make_sample(/*rows=*/11, /*num_pages=*/5, /*max_num_pages=*/4);
  const hsize_t R = 11, P = 5, M = 4;
  {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    // Attributes of every integer width, sign and byte order, float32 sm_scale, both string kinds.
    raw_set_vlen_string_attr(file, "/", "dsa_format", "dsa-workload");
    raw_set_int_attr(file, "/", "format_version", 1);
    raw_set_int_attr(file, "/", "page_size", kPageSize, H5T_STD_U32LE);
    raw_set_int_attr(file, "/", "topk", kTopK, H5T_STD_I64BE);
    raw_set_int_attr(file, "/", "index_heads", kIndexHeads, H5T_STD_I16LE);
    raw_set_int_attr(file, "/", "index_head_dim", kIndexHeadDim, H5T_STD_U8LE);
    raw_set_int_attr(file, "/", "qo_heads", kHeads, H5T_STD_I32BE);
    raw_set_int_attr(file, "/", "ckv_dim", kCkvDim, H5T_STD_U64LE);
    raw_set_int_attr(file, "/", "kpe_dim", kKpeDim, H5T_STD_U16LE);
    raw_set_float_attr(file, "/", "sm_scale", 0.125, H5T_IEEE_F32LE);
    raw_set_fixed_string_attr(file, "/", "source", "recorded by a python script");
    raw_set_vlen_string_attr(file, "/", "model", "DeepSeek-V3.2-Exp");
    raw_set_int_attr(file, "/", "seed", 42);  // a non-text extra attribute: ignored

    // KV: contiguous, and chunked across pages and tokens; dtype as both string kinds.
    raw_dataset(file, "/kv/index_k", H5T_STD_U8LE, H5T_NATIVE_UINT8, {P, kIndexPageBytes}, {}, 0,
                s.kv.index_k.data());
    raw_dataset(file, "/kv/ckv", H5T_STD_U16LE, H5T_NATIVE_UINT16, {P, kPageSize, kCkvDim}, {}, 0,
                s.kv.ckv.data(), "bfloat16", 1);
    raw_dataset(file, "/kv/kpe", H5T_STD_U16BE, H5T_NATIVE_UINT16, {P, kPageSize, kKpeDim},
                {2, 32, 64}, 0, s.kv.kpe.data(), "bfloat16", 2);
    // Queries: deflate-compressed, chunks that cut rows and columns, a big-endian float.
    raw_dataset(file, "/queries/seq_lens", H5T_STD_I32LE, H5T_NATIVE_INT32, {R}, {3}, 4,
                s.rows.seq_lens.data());
    raw_dataset(file, "/queries/block_table", H5T_STD_I32LE, H5T_NATIVE_INT32, {R, M}, {4, 3}, 6,
                s.rows.block_table.data());
    raw_dataset(file, "/queries/q_index", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                {R, kIndexHeads, kIndexHeadDim}, {3, 64, 128}, 1, s.rows.q_index.data(),
                "float8_e4m3fn", 1);
    raw_dataset(file, "/queries/weights", H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, {R, kIndexHeads}, {},
                0, s.rows.weights.data());
    raw_dataset(file, "/queries/q_nope", H5T_STD_U16LE, H5T_NATIVE_UINT16, {R, kHeads, kCkvDim},
                {5, 8, 512}, 9, s.rows.q_nope.data(), "bfloat16", 1);
    raw_dataset(file, "/queries/q_pe", H5T_STD_U16LE, H5T_NATIVE_UINT16, {R, kHeads, kKpeDim},
                {1, 16, 64}, 0, s.rows.q_pe.data(), "bfloat16", 1);
    raw_dataset(file, "/queries/sparse_indices", H5T_STD_I32LE, H5T_NATIVE_INT32, {R, kTopK},
                {7, 1024}, 4, s.rows.sparse_indices.data());
    const std::vector<int64_t> offsets = {0, 3, 4, 11};
    raw_dataset(file, "/batches/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, {4}, {}, 0,
                offsets.data());
    H5Fclose(file);
  }

  const WorkloadFile p(path, Stage::pipeline);
  EXPECT_EQ(p.info().rows, 11);
  EXPECT_EQ(p.info().num_pages, 5);
  EXPECT_EQ(p.info().max_num_pages, 4);
  EXPECT_EQ(p.info().sm_scale, 0.125);
  EXPECT_EQ(p.info().batch_offsets, (std::vector<int64_t>{0, 3, 4, 11}));
  const std::map<std::string, std::string> text = {{"model", "DeepSeek-V3.2-Exp"},
                                                   {"source", "recorded by a python script"}};
  EXPECT_EQ(p.info().text_attributes, text);
  EXPECT_EQ(p.check_contents().seq_lens, s.rows.seq_lens);
  expect_rows_equal(p.read_rows(0, 11), s.rows, 0, 11, true, true, false);
  expect_rows_equal(p.read_rows(2, 5), s.rows, 2, 5, true, true, false);
  const KvCache kv = p.read_kv();
  EXPECT_EQ(kv.index_k, s.kv.index_k);
  EXPECT_EQ(kv.ckv, s.kv.ckv);
  EXPECT_EQ(kv.kpe, s.kv.kpe);

  const WorkloadFile a(path, Stage::attention);
  EXPECT_EQ(a.check_contents().valid_ids.size(), 11u);
  expect_rows_equal(a.read_rows(4, 7), s.rows, 4, 7, false, true, true);
}


TEST(Workload, ReportsTheHdf5LibraryVersion) {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  EXPECT_EQ(hdf5_library_version(), std::to_string(major) + "." + std::to_string(minor) + "." +
                                        std::to_string(release));
}

}  // namespace
}  // namespace dsa::io::test
