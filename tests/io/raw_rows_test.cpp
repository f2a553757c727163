// Rows moved by positional reads and mapped writes (io/raw_rows.hpp): the worker pool, which
// layouts qualify, and that every path gives the bytes HDF5 gives, whatever the thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "io/h5.hpp"
#include "io/raw_rows.hpp"
#include "io/results.hpp"
#include "io_test_util.hpp"

namespace dsa::io::test {
namespace {

TEST(WorkerPool, RunsEveryItemOnceAcrossManyRuns) {
  for (int threads : {1, 2, 5}) {
    WorkerPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t count : {0, 1, 3, 17, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
      pool.run(count, [&](int64_t i) { hits[static_cast<std::size_t>(i)]++; });
      for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)], 1) << "item " << i;
    }
  }
}

TEST(WorkerPool, RethrowsAnItemsErrorAfterTheOthersAndStaysUsable) {
  WorkerPool pool(4);
  std::atomic<int> done{0};
  EXPECT_THROW(pool.run(64,
                        [&](int64_t i) {
                          if (i == 7) throw std::runtime_error("item 7 failed");
                          done++;
                        }),
               std::runtime_error);
  EXPECT_EQ(done, 63);
  std::atomic<int64_t> sum{0};
  pool.run(100, [&](int64_t i) { sum += i; });
  EXPECT_EQ(sum, 4950);
}

TEST(WorkerPool, CallersFromSeveralThreadsTakeTurns) {
  WorkerPool pool(3);
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r) pool.run(20, [&](int64_t i) { sum += i; });
    });
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(sum, 4 * 50 * 190);
}

// ---- Layouts ---------------------------------------------------------------------------------

// A dataset of `rows` x 40 int32 written through the C API with the given storage.
struct Layout {
  const char* name;
  std::vector<hsize_t> chunk;  // empty: contiguous
  int deflate;
  hid_t file_type;
  bool write_all;  // false: only the first chunk's rows are written (the others never placed)
  bool raw;        // what raw_layout must say
};

constexpr hsize_t kRows = 23, kCols = 40;

std::vector<int32_t> values_of(int seed) {
  std::vector<int32_t> v(kRows * kCols);
  std::mt19937 rng(static_cast<unsigned>(seed));
  for (auto& x : v) x = static_cast<int32_t>(rng());
  return v;
}

void write_layout(hid_t file, const Layout& l, const std::vector<int32_t>& values) {
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!l.chunk.empty()) {
    H5Pset_chunk(dcpl, static_cast<int>(l.chunk.size()), l.chunk.data());
    if (l.deflate > 0) H5Pset_deflate(dcpl, static_cast<unsigned>(l.deflate));
  }
  const hsize_t dims[2] = {kRows, kCols};
  const hid_t space = H5Screate_simple(2, dims, nullptr);
  const hid_t ds = H5Dcreate2(file, l.name, l.file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(ds, 0) << l.name;
  if (l.write_all) {
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  } else {
    const hsize_t start[2] = {0, 0}, count[2] = {l.chunk[0], kCols};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    const hid_t mem = H5Screate_simple(2, count, nullptr);
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_INT32, mem, space, H5P_DEFAULT, values.data()), 0);
    H5Sclose(mem);
  }
  H5Dclose(ds);
  H5Sclose(space);
  H5Pclose(dcpl);
}

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> all = {
      {"/contiguous", {}, 0, H5T_STD_I32LE, true, true},
      {"/chunked_rows", {5, kCols}, 0, H5T_STD_I32LE, true, true},  // 23 = 4 x 5 + an edge chunk
      {"/one_row_chunks", {1, kCols}, 0, H5T_STD_I32LE, true, true},
      {"/deflated", {5, kCols}, 4, H5T_STD_I32LE, true, false},
      {"/chunks_cut_rows", {4, 16}, 0, H5T_STD_I32LE, true, false},
      {"/big_endian", {5, kCols}, 0, H5T_STD_I32BE, true, false},
      {"/wider_type", {5, kCols}, 0, H5T_STD_I64LE, true, false},
      {"/partly_written", {5, kCols}, 0, H5T_STD_I32LE, false, false},
  };
  return all;
}

TEST(RawRows, LayoutsQualifyOnlyWhereTheFileHoldsRowsAsMemoryDoes) {
  TempDir dir;
  const std::string path = dir.file("layouts.h5");
  {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    int seed = 0;
    for (const Layout& l : layouts()) write_layout(file, l, values_of(++seed));
    H5Fclose(file);
  }
  const h5::File f = h5::File::open(path, /*writable=*/false);
  const int fd = f.raw_descriptor();
  ASSERT_GE(fd, 0);
  ParallelFile raw(fd, path, 3);
  int seed = 0;
  std::mt19937 rng(7);
  for (const Layout& l : layouts()) {
    const std::vector<int32_t> values = values_of(++seed);
    const h5::Dataset d = f.open_dataset(l.name);
    const std::optional<h5::RawLayout> layout = d.raw_layout(h5::Scalar::i32);
    ASSERT_EQ(layout.has_value(), l.raw) << l.name;
    if (!layout) continue;
    EXPECT_EQ(layout->row_bytes, int64_t(kCols * sizeof(int32_t))) << l.name;
    // Every range, read raw, equals HDF5's read of it and the values written.
    for (int trial = 0; trial < 40; ++trial) {
      const int64_t first = std::uniform_int_distribution<int64_t>(0, kRows)(rng);
      const int64_t count = std::uniform_int_distribution<int64_t>(0, int64_t(kRows) - first)(rng);
      std::vector<int32_t> got(static_cast<std::size_t>(count * kCols), -7), want(got.size());
      std::vector<RawExtent> extents;
      append_row_extents(*layout, first, count, got.data(), extents);
      raw.read(extents, l.name);
      d.read_rows(first, count, want.data());
      ASSERT_EQ(got, want) << l.name << " rows " << first << "+" << count;
      ASSERT_TRUE(std::equal(got.begin(), got.end(), values.begin() + first * int64_t(kCols))) << l.name;
    }
  }
  // Another type than the stored one: not raw.
  EXPECT_FALSE(f.open_dataset("/contiguous").raw_layout(h5::Scalar::f32).has_value());
}

TEST(RawRows, AFileImageInMemoryHasNoDescriptor) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  write_sample(path, make_sample());
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const h5::File image = h5::File::open_image(bytes.data(), bytes.size(), "image");
  EXPECT_EQ(image.raw_descriptor(), -1);
  const WorkloadFile w = WorkloadFile::from_image(bytes.data(), bytes.size(), Stage::pipeline, "image");
  EXPECT_EQ(w.io_threads(), 0);
  const WorkloadFile on_disk(path, Stage::pipeline);
  EXPECT_EQ(on_disk.io_threads(), 1);
}

TEST(RawRows, WorkloadRowsAndKvAreTheSameAtAnyThreadCount) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample(/*rows=*/97, /*num_pages=*/9, /*max_num_pages=*/5);
  write_sample(path, s);
  WorkloadFile hdf5(path, Stage::pipeline);
  hdf5.set_io_threads(0);
  EXPECT_EQ(hdf5.io_threads(), 0);
  EXPECT_EQ(hdf5.read_through_hdf5().size(), 9u);  // every row and page dataset of the stage
  const KvCache want_kv = hdf5.read_kv();
  std::mt19937 rng(11);
  for (int threads : {1, 4}) {
    WorkloadFile w(path, Stage::pipeline);
    w.set_io_threads(threads);
    EXPECT_EQ(w.io_threads(), threads);
    EXPECT_TRUE(w.read_through_hdf5().empty()) << w.read_through_hdf5().front();
    const KvCache kv = w.read_kv();
    EXPECT_EQ(kv.index_k, want_kv.index_k);
    EXPECT_EQ(kv.ckv, want_kv.ckv);
    EXPECT_EQ(kv.kpe, want_kv.kpe);
    for (int trial = 0; trial < 20; ++trial) {
      const int64_t first = std::uniform_int_distribution<int64_t>(0, 97)(rng);
      const int64_t count = std::uniform_int_distribution<int64_t>(0, 97 - first)(rng);
      const QueryRows got = w.read_rows(first, count), want = hdf5.read_rows(first, count);
      ASSERT_EQ(got.seq_lens, want.seq_lens);
      ASSERT_EQ(got.block_table, want.block_table);
      ASSERT_EQ(got.q_index, want.q_index);
      ASSERT_EQ(got.q_nope, want.q_nope);
      ASSERT_EQ(got.q_pe, want.q_pe);
      ASSERT_EQ(got.sparse_indices, want.sparse_indices);
      ASSERT_EQ(0, std::memcmp(got.weights.data(), want.weights.data(), want.weights.size() * sizeof(float)));
      ASSERT_EQ(want.q_nope, std::vector<uint16_t>(s.rows.q_nope.begin() + first * kHeads * kCkvDim,
                                                   s.rows.q_nope.begin() + (first + count) * kHeads * kCkvDim));
    }
  }
}

// The KV caches read in runs of pages (as a GPU loads them through bounded buffers) are the
// whole caches, raw or through HDF5; an array the stage does not read is left alone; pages past
// the file are refused with the file and the range.
TEST(RawRows, KvPagesInRunsAreTheWholeCaches) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample(/*rows=*/5, /*num_pages=*/23, /*max_num_pages=*/5);
  write_sample(path, s);
  const int64_t pages = 23;
  const size_t ckv_page = size_t(kPageSize) * kCkvDim, kpe_page = size_t(kPageSize) * kKpeDim;
  for (int threads : {0, 3}) {
    for (int64_t run : {1, 4, 7, 23}) {
      SCOPED_TRACE(std::to_string(threads) + " threads, runs of " + std::to_string(run) + " pages");
      WorkloadFile w(path, Stage::pipeline);
      w.set_io_threads(threads);
      std::vector<uint8_t> index_k(size_t(pages) * kIndexPageBytes);
      std::vector<uint16_t> ckv(size_t(pages) * ckv_page), kpe(size_t(pages) * kpe_page);
      for (int64_t first = 0; first < pages; first += run) {
        const int64_t count = std::min(run, pages - first);
        // Each run into a buffer of its own, as a bounce buffer holds it.
        std::vector<uint8_t> i(size_t(count) * kIndexPageBytes);
        std::vector<uint16_t> c(size_t(count) * ckv_page), k(size_t(count) * kpe_page);
        w.read_kv_pages(first, count, {i.data(), c.data(), k.data()});
        std::copy(i.begin(), i.end(), index_k.begin() + first * kIndexPageBytes);
        std::copy(c.begin(), c.end(), ckv.begin() + first * int64_t(ckv_page));
        std::copy(k.begin(), k.end(), kpe.begin() + first * int64_t(kpe_page));
      }
      EXPECT_EQ(index_k, s.kv.index_k);
      EXPECT_EQ(ckv, s.kv.ckv);
      EXPECT_EQ(kpe, s.kv.kpe);
    }
  }
  // The indexer reads no ckv or kpe: null buffers for them are fine.
  const WorkloadFile indexer(path, Stage::indexer);
  std::vector<uint8_t> i(size_t(3) * kIndexPageBytes);
  indexer.read_kv_pages(20, 3, {i.data(), nullptr, nullptr});
  EXPECT_TRUE(std::equal(i.begin(), i.end(), s.kv.index_k.begin() + 20 * kIndexPageBytes));
  const std::string past = error_of([&] { indexer.read_kv_pages(21, 3, {i.data(), nullptr, nullptr}); });
  EXPECT_NE(past.find(path), std::string::npos) << past;
  EXPECT_NE(past.find("KV pages"), std::string::npos) << past;
  const std::string missing = error_of([&] { indexer.read_kv_pages(0, 1, {}); });
  EXPECT_NE(missing.find("/kv/index_k"), std::string::npos) << missing;
}

// The content check's NaN and Inf counts, read in parallel steps, are those of one thread.
TEST(RawRows, ContentCheckCountsTheSameAtAnyThreadCount) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  SampleWorkload s = make_sample(/*rows=*/40, /*num_pages=*/600, /*max_num_pages=*/5);
  const int64_t page_values = int64_t(kPageSize) * kCkvDim;  // 256 pages per 16 MiB step
  // The sample's random bf16 hold NaN and Inf codes of their own; make the cache free of them
  // but for a few, spread over the 16 MiB steps.
  for (uint16_t& x : s.kv.ckv)
    if ((x & 0x7F80u) == 0x7F80u) x = 0x3F80;
  s.kv.ckv[size_t(550 * page_values + 3)] = 0x7FC0;  // NaN, third step
  s.kv.ckv[size_t(300 * page_values + 9)] = 0xFF80;  // -Inf, second step
  s.kv.ckv[size_t(300 * page_values + 10)] = 0x7F81;  // NaN
  s.kv.ckv[size_t(10 * page_values)] = 0x7F80;       // +Inf, first step
  write_sample(path, s);
  std::vector<std::string> want;
  for (int threads : {0, 1, 4}) {
    WorkloadFile w(path, Stage::attention);
    w.set_io_threads(threads);
    const RowStats stats = w.check_contents();
    std::vector<std::string> got;
    for (const NonFinite& n : stats.nonfinite) got.push_back(n.text());
    if (threads == 0) {
      want = got;
      ASSERT_FALSE(want.empty());
      EXPECT_EQ(want[0], "/kv/ckv: 2 NaN, 2 Inf (bf16), first in page 10");
    }
    EXPECT_EQ(got, want) << threads << " threads";
  }
}

// Results written through the mapping (batches in any order, some rewritten, a reopen for
// resume between) read back as through HDF5.
TEST(RawRows, ResultsWrittenByAnyThreadCountReadBackTheSame) {
  TempDir dir;
  constexpr int64_t kResultRows = 301;
  std::vector<int32_t> topk(kResultRows * kTopK);
  std::vector<uint16_t> output(kResultRows * kHeads * kCkvDim);
  std::vector<float> lse(kResultRows * kHeads);
  std::mt19937 rng(5);
  for (auto& x : topk) x = static_cast<int32_t>(rng());
  for (auto& x : output) x = static_cast<uint16_t>(rng());
  for (auto& x : lse) x = static_cast<float>(rng()) * 1e-3f;
  const std::vector<int64_t> cuts = {0, 64, 65, 200, 301};  // batches of 64, 1, 135, 101 rows

  std::vector<ResultsData> read_back;
  for (int threads : {0, 1, 3}) {
    const std::string path = dir.file("r" + std::to_string(threads) + ".h5");
    ResultsMeta meta;
    meta.workload_path = "/data/w.h5";
    meta.stage = Stage::pipeline;
    meta.backend = "cpu";
    meta.program_version = "test";
    meta.rows = kResultRows;
    meta.num_batches = 4;
    meta.io_threads = threads;
    auto write_batch = [&](ResultsFile& f, int b) {
      const int64_t first = cuts[b], count = cuts[b + 1] - cuts[b];
      f.write_rows(first, count, topk.data() + first * kTopK, output.data() + first * kHeads * kCkvDim,
                   lse.data() + first * kHeads);
      f.write_batch(b, 1, 0.5 * b);
    };
    {
      ResultsFile f = ResultsFile::create(path, meta, false);
      EXPECT_EQ(f.io_threads(), threads);
      EXPECT_EQ(f.written_through_hdf5().size(), threads == 0 ? 3u : 0u);
      write_batch(f, 1);
      write_batch(f, 0);
      f.set_completed_batches(2);
      f.close();
    }
    {
      ResultsFile f = ResultsFile::open_for_resume(path, meta);
      EXPECT_EQ(f.completed_batches(), 2);
      EXPECT_EQ(f.io_threads(), threads);
      EXPECT_EQ(f.written_through_hdf5().size(), threads == 0 ? 3u : 0u);
      write_batch(f, 3);
      write_batch(f, 2);
      write_batch(f, 3);
      f.set_completed_batches(4);
      f.close();
    }
    read_back.push_back(read_results(path));
    const ResultsData& r = read_back.back();
    EXPECT_EQ(r.completed_batches, 4);
    ASSERT_EQ(r.topk_indices, topk) << threads << " threads";
    ASSERT_EQ(r.output, output) << threads << " threads";
    ASSERT_EQ(0, std::memcmp(r.lse.data(), lse.data(), lse.size() * sizeof(float))) << threads << " threads";
    EXPECT_EQ(r.batch_seconds, (std::vector<double>{0, 0.5, 1.0, 1.5}));
  }
}

TEST(RawRows, AResultsRowRangeOutsideTheFileIsRefused) {
  TempDir dir;
  ResultsMeta meta;
  meta.stage = Stage::indexer;
  meta.rows = 10;
  meta.num_batches = 1;
  meta.io_threads = 2;
  ResultsFile f = ResultsFile::create(dir.file("r.h5"), meta, false);
  std::vector<int32_t> topk(20 * kTopK);
  EXPECT_NE(error_of([&] { f.write_rows(5, 6, topk.data(), nullptr, nullptr); }).find("cannot write rows [5, 11)"),
            std::string::npos);
}

}  // namespace
}  // namespace dsa::io::test
