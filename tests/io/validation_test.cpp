// Workload files the io layer must refuse: one test per check, each asserting the whole
// one-line message (file, dataset, and the first bad row where there is one).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "io/workload.hpp"
#include "io_test_util.hpp"

namespace dsa::io::test {
namespace {

class Validation : public ::testing::Test {
 protected:
  // Writes the sample (after `edit` changes it) to w.h5.
  template <typename Edit>
  void write(Edit&& edit) {
    edit(sample);
    write_sample(path, sample);
  }
  void write() {
    write([](SampleWorkload&) {});
  }
  std::string open_error(Stage stage) {
    return error_of([&] { WorkloadFile w(path, stage); });
  }
  std::string contents_error(Stage stage) {
    return error_of([&] { (void)WorkloadFile(path, stage).check_contents(); });
  }

  TempDir dir;
  const std::string path = dir.file("w.h5");
  SampleWorkload sample = make_sample();  // 10 rows, 6 pages, block tables of 3 pages
};

// ---- The file itself ------------------------------------------------------------------------

TEST_F(Validation, NotAnHdf5File) {
  const std::string text = dir.file("notes.h5");
  std::ofstream(text) << "rows,seq_len\n0,17\n";
  EXPECT_EQ(error_of([&] { WorkloadFile w(text, Stage::indexer); }), text + ": not an HDF5 file");
}

TEST_F(Validation, MissingFile) {
  const std::string missing = dir.file("absent.h5");
  EXPECT_EQ(error_of([&] { WorkloadFile w(missing, Stage::indexer); }), missing + ": no such file");
}

TEST_F(Validation, EmptyFileIsNotHdf5) {
  const std::string empty = dir.file("empty.h5");
  std::ofstream{empty};
  EXPECT_EQ(error_of([&] { WorkloadFile w(empty, Stage::indexer); }), empty + ": not an HDF5 file");
}

TEST_F(Validation, TruncatedFile) {
  write();
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  // The innermost message of HDF5's error stack says what is wrong.
  EXPECT_CONTAINS(open_error(Stage::attention), path + ": cannot open: truncated file: eof = ");
}

TEST_F(Validation, WrongDsaFormat) {
  write();
  { RawFile f(path); raw_set_vlen_string_attr(f.id(), "/", "dsa_format", "dsa-results"); }
  EXPECT_EQ(open_error(Stage::pipeline),
            path + ": dsa_format is \"dsa-results\", expected \"dsa-workload\"");
}

TEST_F(Validation, MissingDsaFormat) {
  write();
  { RawFile f(path); raw_delete_attr(f.id(), "/", "dsa_format"); }
  EXPECT_EQ(open_error(Stage::pipeline),
            path + ": not a DSA file (no dsa_format attribute; expected \"dsa-workload\")");
}

TEST_F(Validation, UnknownFormatVersion) {
  write();
  { RawFile f(path); raw_set_int_attr(f.id(), "/", "format_version", 2, H5T_STD_I32LE); }
  EXPECT_EQ(open_error(Stage::pipeline), path + ": unknown format_version 2, this program reads 1");
}

// ---- Root attributes ----------------------------------------------------------------------

TEST_F(Validation, AttributeContradictsShapes) {
  write();
  { RawFile f(path); raw_set_int_attr(f.id(), "/", "index_heads", 32); }
  EXPECT_EQ(open_error(Stage::attention),
            path + ": attribute index_heads = 32, but this program's DSA shapes have 64");
}

TEST_F(Validation, MissingShapeAttribute) {
  write();
  { RawFile f(path); raw_delete_attr(f.id(), "/", "topk"); }
  EXPECT_EQ(open_error(Stage::indexer), path + ": attribute topk is missing");
}

TEST_F(Validation, FloatWhereIntegerAttributeExpected) {
  write();
  { RawFile f(path); raw_set_float_attr(f.id(), "/", "page_size", 64.0); }
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": attribute page_size has type float64, expected an integer");
}

TEST_F(Validation, SmScaleNotFinite) {
  write();
  { RawFile f(path); raw_set_float_attr(f.id(), "/", "sm_scale", std::numeric_limits<double>::quiet_NaN()); }
  EXPECT_EQ(open_error(Stage::attention), path + ": attribute sm_scale = nan, expected a finite number");
}

// ---- Datasets a stage needs ---------------------------------------------------------------

TEST_F(Validation, IndexerNamesEveryMissingDataset) {
  write([](SampleWorkload& s) { s.shape.indexer_data = false; });
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": stage indexer needs /kv/index_k, /queries/seq_lens, /queries/block_table, "
                   "/queries/q_index, /queries/weights, which the file lacks");
}

TEST_F(Validation, AttentionNamesEveryMissingDataset) {
  write([](SampleWorkload& s) {
    s.shape.attention_data = false;
    s.shape.sparse_indices = false;
  });
  EXPECT_EQ(open_error(Stage::attention),
            path + ": stage attention needs /kv/ckv, /kv/kpe, /queries/q_nope, /queries/q_pe, "
                   "/queries/sparse_indices, which the file lacks");
}

TEST_F(Validation, PipelineNamesEveryMissingDataset) {
  write();
  {
    RawFile f(path);
    raw_unlink(f.id(), "/kv/ckv");
    raw_unlink(f.id(), "/queries/q_pe");
    raw_unlink(f.id(), "/queries/sparse_indices");  // not needed by the pipeline
  }
  EXPECT_EQ(open_error(Stage::pipeline),
            path + ": stage pipeline needs /kv/ckv, /queries/q_pe, which the file lacks");
}

TEST_F(Validation, PipelineDoesNotNeedSparseIndices) {
  write([](SampleWorkload& s) { s.shape.sparse_indices = false; });
  const WorkloadFile w(path, Stage::pipeline);
  EXPECT_FALSE(w.info().has("/queries/sparse_indices"));
  EXPECT_EQ(w.check_contents().seq_lens.size(), 10u);
}

TEST_F(Validation, MissingBatchOffsets) {
  write();
  { RawFile f(path); raw_unlink(f.id(), "/batches/offsets"); }
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": stage indexer needs /batches/offsets, which the file lacks");
}

TEST_F(Validation, GroupWhereDatasetExpected) {
  write();
  {
    RawFile f(path);
    raw_unlink(f.id(), "/queries/weights");
    H5Gclose(H5Gcreate2(f.id(), "/queries/weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  }
  EXPECT_EQ(open_error(Stage::indexer), path + ": /queries/weights is not a dataset");
}

// ---- Types, dtype attributes, shapes ------------------------------------------------------

TEST_F(Validation, FloatBlockTable) {
  write();
  {
    RawFile f(path);
    raw_replace_dataset(f.id(), "/queries/block_table", H5T_IEEE_F32LE, {10, 3});
  }
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": /queries/block_table has type float32, expected int32");
}

TEST_F(Validation, Int32BatchOffsets) {
  write();
  {
    RawFile f(path);
    const std::vector<int32_t> offsets = {0, 3, 4, 10};
    raw_replace_dataset(f.id(), "/batches/offsets", H5T_STD_I32LE, {4}, H5T_NATIVE_INT32,
                        offsets.data());
  }
  EXPECT_EQ(open_error(Stage::indexer), path + ": /batches/offsets has type int32, expected int64");
}

TEST_F(Validation, WrongShape) {
  write();
  {
    RawFile f(path);
    raw_replace_dataset(f.id(), "/queries/q_index", H5T_STD_U8LE, {10, 64, 64}, -1, nullptr,
                        "float8_e4m3fn");
  }
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": /queries/q_index has shape [10, 64, 64], expected [R, 64, 128]");
}

TEST_F(Validation, WrongDtypeAttribute) {
  write();
  { RawFile f(path); raw_set_vlen_string_attr(f.id(), "/kv/ckv", "dtype", "float16"); }
  EXPECT_EQ(open_error(Stage::attention),
            path + ": /kv/ckv: dtype attribute is \"float16\", expected \"bfloat16\"");
}

TEST_F(Validation, MissingDtypeAttribute) {
  write();
  { RawFile f(path); raw_delete_attr(f.id(), "/queries/q_nope", "dtype"); }
  EXPECT_EQ(open_error(Stage::attention),
            path + ": /queries/q_nope lacks its dtype attribute (expected \"bfloat16\")");
}

TEST_F(Validation, RowCountsDisagree) {
  write();
  {
    RawFile f(path);
    raw_replace_dataset(f.id(), "/queries/q_pe", H5T_STD_U16LE, {9, 16, 64}, -1, nullptr,
                        "bfloat16");
  }
  EXPECT_EQ(open_error(Stage::attention),
            path + ": /queries/q_pe has 9 rows, but /queries/seq_lens has 10");
}

TEST_F(Validation, NumPagesDisagree) {
  write();
  {
    RawFile f(path);
    raw_replace_dataset(f.id(), "/kv/kpe", H5T_STD_U16LE, {7, 64, 64}, -1, nullptr, "bfloat16");
  }
  EXPECT_EQ(open_error(Stage::attention), path + ": /kv/kpe has 7 pages, but /kv/index_k has 6");
}

TEST_F(Validation, AbsurdShapeRefusedBeforeAllocating) {
  write();
  {
    RawFile f(path);
    // 2^62 rows of 2048 int32: 2^75 bytes, a size no int64 holds. Chunked, so HDF5 allocates
    // nothing when creating it.
    raw_unlink(f.id(), "/queries/sparse_indices");
    const hsize_t dims[2] = {hsize_t{1} << 62, 2048};
    const hsize_t chunk[2] = {1, 2048};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    const hid_t ds = H5Dcreate2(f.id(), "/queries/sparse_indices", H5T_STD_I32LE, space,
                                H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  EXPECT_EQ(open_error(Stage::attention),
            path + ": /queries/sparse_indices: shape [4611686018427387904, 2048] is too large "
                   "(over 2^63 bytes)");
}

// ---- Contents: block tables, sequence lengths, sparse ids ---------------------------------

TEST_F(Validation, PageIdOutOfRangeInUsedPart) {
  write([](SampleWorkload& s) {
    s.rows.seq_lens[7] = 65;              // two pages used
    s.rows.block_table[7 * 3 + 1] = 6;    // slot 1 of row 7: one past the last page
    s.rows.block_table[8 * 3 + 0] = -1;   // a later bad row: not the one reported
    s.rows.seq_lens[8] = 1;
  });
  EXPECT_EQ(contents_error(Stage::indexer),
            path + ": /queries/block_table row 7: page id 6 outside [0, 6) at page slot 1");
}

TEST_F(Validation, NegativePageIdInUsedPart) {
  write([](SampleWorkload& s) {
    s.rows.seq_lens[4] = 192;
    s.rows.block_table[4 * 3 + 2] = -3;
  });
  EXPECT_EQ(contents_error(Stage::pipeline),
            path + ": /queries/block_table row 4: page id -3 outside [0, 6) at page slot 2");
}

TEST_F(Validation, RepeatedPageWithinSeqLen) {
  write([](SampleWorkload& s) {
    s.rows.seq_lens[6] = 150;            // three pages used
    s.rows.block_table[6 * 3 + 0] = 2;
    s.rows.block_table[6 * 3 + 1] = 4;
    s.rows.block_table[6 * 3 + 2] = 2;   // page 2 again: its tokens would be selected twice
  });
  EXPECT_EQ(contents_error(Stage::indexer),
            path + ": /queries/block_table row 6: page id 2 appears twice within seq_len (again at page slot 2)");
}

TEST_F(Validation, SamePageInDifferentRowsIsAccepted) {
  write([](SampleWorkload& s) {
    s.rows.seq_lens[0] = 64;
    s.rows.seq_lens[1] = 64;
    s.rows.block_table[0 * 3 + 0] = 3;  // a shared prefix page
    s.rows.block_table[1 * 3 + 0] = 3;
  });
  EXPECT_NO_THROW(WorkloadFile(path, Stage::indexer).check_contents());
}

TEST_F(Validation, GarbagePastSeqLenIsAccepted) {
  write([](SampleWorkload& s) {
    s.rows.seq_lens[3] = 64;  // one page: slots 1 and 2 unused
    s.rows.block_table[3 * 3 + 1] = 9001;
    s.rows.block_table[3 * 3 + 2] = -7;
    s.rows.seq_lens[1] = 0;  // no page used: everything is garbage
    s.rows.block_table[1 * 3 + 0] = 123456;
  });
  const RowStats stats = WorkloadFile(path, Stage::indexer).check_contents();
  EXPECT_EQ(stats.seq_lens[3], 64);
  EXPECT_EQ(stats.seq_lens[1], 0);
}

TEST_F(Validation, NegativeSeqLen) {
  write([](SampleWorkload& s) { s.rows.seq_lens[5] = -3; });
  EXPECT_EQ(contents_error(Stage::indexer),
            path + ": /queries/seq_lens row 5: seq_len -3 is negative");
}

TEST_F(Validation, SeqLenBeyondBlockTable) {
  write([](SampleWorkload& s) { s.rows.seq_lens[4] = 3 * 64 + 1; });
  EXPECT_EQ(contents_error(Stage::pipeline),
            path + ": /queries/seq_lens row 4: seq_len 193 exceeds the block table's 3 pages x 64 "
                   "= 192 tokens");
}

TEST_F(Validation, SparseIdBelowMinusOne) {
  write([](SampleWorkload& s) { s.rows.sparse_indices[6 * kTopK + 100] = -2; });
  EXPECT_EQ(contents_error(Stage::attention),
            path + ": /queries/sparse_indices row 6: token id -2 outside [-1, 384) at slot 100");
}

TEST_F(Validation, SparseIdPastLastToken) {
  write([](SampleWorkload& s) { s.rows.sparse_indices[9 * kTopK + 2047] = 6 * 64; });
  EXPECT_EQ(contents_error(Stage::attention),
            path + ": /queries/sparse_indices row 9: token id 384 outside [-1, 384) at slot 2047");
}

TEST_F(Validation, SparseIdsUncheckedByPipeline) {
  write([](SampleWorkload& s) { s.rows.sparse_indices[0] = -5; });
  EXPECT_NO_THROW((void)WorkloadFile(path, Stage::pipeline).check_contents());
}

// ---- Batch offsets -------------------------------------------------------------------------

class Offsets : public Validation {
 protected:
  void write_offsets(const std::vector<int64_t>& offsets) {
    write();
    RawFile f(path);
    raw_replace_dataset(f.id(), "/batches/offsets", H5T_STD_I64LE, {offsets.size()},
                        H5T_NATIVE_INT64, offsets.data());
  }
};

TEST_F(Offsets, NotStartingAtZero) {
  write_offsets({1, 4, 10});
  EXPECT_EQ(open_error(Stage::indexer), path + ": /batches/offsets row 0: offset 1, expected 0");
}

TEST_F(Offsets, NotIncreasing) {
  write_offsets({0, 4, 4, 10});
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": /batches/offsets row 2: offset 4 after 4, offsets must increase (a batch "
                   "holds at least one row)");
}

TEST_F(Offsets, NotEndingAtR) {
  write_offsets({0, 4, 9});
  EXPECT_EQ(open_error(Stage::indexer), path + ": /batches/offsets ends at 9, expected R = 10");
}

TEST_F(Offsets, MoreEntriesThanRowsAllow) {
  write_offsets(std::vector<int64_t>(12, 0));
  EXPECT_EQ(open_error(Stage::indexer),
            path + ": /batches/offsets has 12 entries, more than R + 1 = 11");
}

}  // namespace
}  // namespace dsa::io::test
