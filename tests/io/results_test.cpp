// Results files: creation, refusal of existing files, round trips per stage, the
// completed_batches protocol, and reopening for resume.
#include <gtest/gtest.h>

#include <fstream>

#include "io/results.hpp"
#include "io_test_util.hpp"

namespace dsa::io::test {
namespace {

ResultsMeta meta_for(Stage stage, int64_t rows = 12, int64_t batches = 3) {
  ResultsMeta meta;
  meta.workload_path = "/data/w.h5";
  meta.stage = stage;
  meta.backend = "cpu";
  meta.program_version = "0.1.0-test";
  meta.rows = rows;
  meta.num_batches = batches;
  return meta;
}

struct Rows {
  std::vector<int32_t> topk;
  std::vector<uint16_t> output;
  std::vector<float> lse;
};

Rows make_rows(int64_t rows) {
  Rows r;
  for (int64_t i = 0; i < rows * kTopK; ++i) r.topk.push_back(static_cast<int32_t>(i % 5000) - 1);
  for (int64_t i = 0; i < rows * kHeads * kCkvDim; ++i)
    r.output.push_back(static_cast<uint16_t>(i * 2654435761u >> 7));
  for (int64_t i = 0; i < rows * kHeads; ++i)
    r.lse.push_back(i % 7 == 0 ? -std::numeric_limits<float>::infinity()
                               : static_cast<float>(i) * 0.37f);
  return r;
}

template <typename T>
const T* at(const std::vector<T>& v, int64_t row, int64_t per_row) {
  return v.data() + row * per_row;
}

TEST(Results, CreateWritesTheSpecAttributesAndDatasets) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  ResultsFile::create(path, meta_for(Stage::pipeline), false).close();
  const ResultsData d = read_results(path);
  EXPECT_EQ(d.stage, "pipeline");
  EXPECT_EQ(d.backend, "cpu");
  EXPECT_EQ(d.workload_path, "/data/w.h5");
  EXPECT_EQ(d.program_version, "0.1.0-test");
  EXPECT_EQ(d.completed_batches, 0);
  EXPECT_EQ(d.topk_indices.size(), 12u * kTopK);
  EXPECT_EQ(d.output.size(), 12u * kHeads * kCkvDim);
  EXPECT_EQ(d.lse.size(), 12u * kHeads);
  EXPECT_EQ(d.batch_ranks.size(), 3u);
  EXPECT_EQ(d.batch_seconds.size(), 3u);

  // As h5py users see it: the raw attribute types of SPEC §3.
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t a = H5Aopen(f, "completed_batches", H5P_DEFAULT);
  const hid_t t = H5Aget_type(a);
  EXPECT_EQ(H5Tget_class(t), H5T_INTEGER);
  EXPECT_EQ(H5Tget_size(t), 8u);
  H5Tclose(t);
  H5Aclose(a);
  const hid_t ds = H5Dopen2(f, "/results/output", H5P_DEFAULT);
  EXPECT_GT(H5Aexists(ds, "dtype"), 0);
  H5Dclose(ds);
  H5Fclose(f);
}

TEST(Results, RefusesAnExistingFileUnlessForced) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  std::ofstream(path) << "an older result\n";
  EXPECT_EQ(error_of([&] { ResultsFile::create(path, meta_for(Stage::indexer), false); }),
            path + " exists; pass --force to overwrite");
  ResultsFile::create(path, meta_for(Stage::indexer), true).close();
  EXPECT_EQ(read_results(path).stage, "indexer");
}

TEST(Results, CreateNamesTheHdf5Reason) {
  TempDir dir;
  const std::string path = dir.file("no-such-dir/r.h5");
  const std::string message =
      error_of([&] { ResultsFile::create(path, meta_for(Stage::indexer), false); });
  EXPECT_CONTAINS(message, path + ": cannot create: ");
  EXPECT_CONTAINS(message, "No such file or directory");
}

TEST(Results, RoundTripsEachStage) {
  TempDir dir;
  const Rows rows = make_rows(12);
  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline}) {
    SCOPED_TRACE(stage_name(stage));
    const std::string path = dir.file(std::string(stage_name(stage)) + ".h5");
    ResultsFile r = ResultsFile::create(path, meta_for(stage), false);
    // Batches of 5, 1 and 6 rows, written last first.
    const std::vector<std::pair<int64_t, int64_t>> batches = {{6, 6}, {5, 1}, {0, 5}};
    for (std::size_t b = 0; b < batches.size(); ++b) {
      const auto [first, count] = batches[b];
      r.write_rows(first, count, at(rows.topk, first, kTopK), at(rows.output, first, kHeads * kCkvDim),
                   at(rows.lse, first, kHeads));
      r.write_batch(static_cast<int64_t>(2 - b), static_cast<int32_t>(b + 1), 0.25 * double(b));
    }
    r.set_completed_batches(3);
    r.close();

    const ResultsData d = read_results(path);
    EXPECT_EQ(d.stage, stage_name(stage));
    EXPECT_EQ(d.completed_batches, 3);
    EXPECT_EQ(d.topk_indices, stage != Stage::attention ? rows.topk : std::vector<int32_t>{});
    EXPECT_EQ(d.output, stage != Stage::indexer ? rows.output : std::vector<uint16_t>{});
    if (stage != Stage::indexer) {
      ASSERT_EQ(d.lse.size(), rows.lse.size());
      EXPECT_EQ(std::memcmp(d.lse.data(), rows.lse.data(), rows.lse.size() * sizeof(float)), 0);
    } else {
      EXPECT_TRUE(d.lse.empty());
    }
    EXPECT_EQ(d.batch_ranks, (std::vector<int32_t>{3, 2, 1}));
    EXPECT_EQ(d.batch_seconds, (std::vector<double>{0.5, 0.25, 0.0}));
  }
}

TEST(Results, CompletedBatchesAdvanceOnDisk) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  const Rows rows = make_rows(12);
  ResultsFile r = ResultsFile::create(path, meta_for(Stage::indexer), false);
  EXPECT_EQ(r.completed_batches(), 0);
  r.write_rows(0, 5, rows.topk.data(), nullptr, nullptr);
  r.write_batch(0, 1, 0.5);
  r.set_completed_batches(1);
  EXPECT_EQ(r.completed_batches(), 1);
  // Another reader sees the claim, and the rows it covers, while the writer still holds the file.
  const ResultsData mid = read_results(path);
  EXPECT_EQ(mid.completed_batches, 1);
  EXPECT_TRUE(std::equal(rows.topk.begin(), rows.topk.begin() + 5 * kTopK, mid.topk_indices.begin()));
  EXPECT_EQ(error_of([&] { r.set_completed_batches(4); }),
            path + ": completed_batches 4 outside [0, 3]");
  r.set_completed_batches(3);
  r.close();
  EXPECT_EQ(read_results(path).completed_batches, 3);
}

TEST(Results, WriteChecksItsArguments) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  const Rows rows = make_rows(12);
  ResultsFile r = ResultsFile::create(path, meta_for(Stage::attention), false);
  EXPECT_EQ(error_of([&] { r.write_rows(0, 1, nullptr, rows.output.data(), nullptr); }),
            path + ": write_rows: stage attention writes /results/lse, but no values were given");
  EXPECT_EQ(error_of([&] { r.write_rows(10, 3, nullptr, rows.output.data(), rows.lse.data()); }),
            path + ": /results/output: cannot write rows [10, 13), the dataset has 12 rows");
  EXPECT_EQ(error_of([&] { r.write_batch(3, 1, 0.0); }),
            path + ": write_batch: batch 3 outside [0, 3)");
  r.close();
  EXPECT_EQ(error_of([&] { r.write_batch(0, 1, 0.0); }), path + ": write_batch after close()");
}

TEST(Results, ReadResultsRefusesAWorkloadFile) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  write_sample(path, make_sample());
  EXPECT_EQ(error_of([&] { (void)read_results(path); }),
            path + ": dsa_format is \"dsa-workload\", expected \"dsa-results\"");
}

TEST(Results, OpenForResumeGoesOnWhereTheFileStopped) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  const Rows rows = make_rows(12);
  const ResultsMeta meta = meta_for(Stage::pipeline);
  {
    ResultsFile r = ResultsFile::create(path, meta, false);
    r.write_rows(0, 5, rows.topk.data(), rows.output.data(), rows.lse.data());
    r.write_batch(0, 2, 1.5);
    r.set_completed_batches(1);
    // Batch 1 written but never claimed: the job was killed here.
    r.write_rows(5, 1, at(rows.topk, 5, kTopK), at(rows.output, 5, kHeads * kCkvDim),
                 at(rows.lse, 5, kHeads));
  }
  {
    ResultsFile r = ResultsFile::open_for_resume(path, meta);
    EXPECT_EQ(r.completed_batches(), 1);
    r.write_rows(5, 7, at(rows.topk, 5, kTopK), at(rows.output, 5, kHeads * kCkvDim),
                 at(rows.lse, 5, kHeads));
    r.write_batch(1, 1, 0.5);
    r.write_batch(2, 3, 2.5);
    r.set_completed_batches(3);
    r.close();
  }
  const ResultsData d = read_results(path);
  EXPECT_EQ(d.completed_batches, 3);
  EXPECT_EQ(d.topk_indices, rows.topk);
  EXPECT_EQ(d.output, rows.output);
  EXPECT_EQ(d.batch_ranks, (std::vector<int32_t>{2, 1, 3}));
  EXPECT_EQ(d.batch_seconds, (std::vector<double>{1.5, 0.5, 2.5}));
}

TEST(Results, OpenForResumeAcceptsAnotherNameOfTheSameWorkload) {
  TempDir dir;
  const std::string workload = dir.file("w.h5");
  std::ofstream(workload) << "stand-in\n";
  const std::string path = dir.file("r.h5");
  ResultsMeta meta = meta_for(Stage::indexer);
  meta.workload_path = workload;
  ResultsFile::create(path, meta, false).close();
  meta.workload_path = (std::filesystem::path(workload).parent_path() / "." / "w.h5").string();
  EXPECT_EQ(ResultsFile::open_for_resume(path, meta).completed_batches(), 0);
}

TEST(Results, OpenForResumeRefusesAnotherRun) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  const ResultsMeta meta = meta_for(Stage::pipeline);
  ResultsFile::create(path, meta, false).close();

  ResultsMeta other = meta;
  other.stage = Stage::indexer;
  EXPECT_EQ(error_of([&] { ResultsFile::open_for_resume(path, other); }),
            path + ": holds results of stage pipeline, this run's stage is indexer");
  other = meta;
  other.workload_path = "/data/other.h5";
  EXPECT_EQ(error_of([&] { ResultsFile::open_for_resume(path, other); }),
            path + ": holds results for workload /data/w.h5, this run reads /data/other.h5");
  other = meta;
  other.rows = 13;
  EXPECT_EQ(error_of([&] { ResultsFile::open_for_resume(path, other); }),
            path + ": /results/topk_indices has 12 rows, this run's workload has 13");
  other = meta;
  other.num_batches = 4;
  EXPECT_EQ(error_of([&] { ResultsFile::open_for_resume(path, other); }),
            path + ": /results/batch_ranks has 3 batches, this run's workload has 4");
  EXPECT_EQ(error_of([&] { ResultsFile::open_for_resume(dir.file("none.h5"), meta); }),
            dir.file("none.h5") + ": no such file");
}

TEST(Results, OpenForResumeRefusesAnImpossibleCompletedCount) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  const ResultsMeta meta = meta_for(Stage::indexer);
  ResultsFile::create(path, meta, false).close();
  { RawFile f(path); raw_set_int_attr(f.id(), "/", "completed_batches", 7); }
  EXPECT_EQ(error_of([&] { ResultsFile::open_for_resume(path, meta); }),
            path + ": completed_batches = 7 outside [0, 3]");
}

}  // namespace
}  // namespace dsa::io::test
