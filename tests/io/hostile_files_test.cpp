// Hostile workload files (hostile_files.hpp): each is refused with its one-line message, naming
// the file and the dataset, whether read from disk or from a memory image. Also: memory images
// of valid files, links that do resolve, the read limit.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <iterator>

#include "hostile_files.hpp"
#include "io/h5.hpp"
#include "io/workload.hpp"
#include "io_test_util.hpp"

namespace dsa::io::test {
namespace {

using hostile::HostileFile;

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Sets the read limit for one scope.
class ReadLimit {
 public:
  explicit ReadLimit(int64_t bytes) { set_read_limit_bytes(bytes); }
  ~ReadLimit() { set_read_limit_bytes(0); }
  ReadLimit(const ReadLimit&) = delete;
  ReadLimit& operator=(const ReadLimit&) = delete;
};

class Hostile : public ::testing::TestWithParam<HostileFile> {
 protected:
  // The message of opening (and, for content cases, checking) the workload `open` returns.
  std::string error(const std::function<WorkloadFile()>& open) {
    const HostileFile& c = GetParam();
    if (c.contents) {
      std::optional<WorkloadFile> w;
      EXPECT_NO_THROW(w.emplace(open())) << "the structure checks should pass";
      if (!w) return {};
      return error_of([&] { (void)w->check_contents(); });
    }
    return error_of([&] { (void)open(); });
  }

  void expect_message(const std::string& got) {
    const HostileFile& c = GetParam();
    const std::string want = c.message(path);
    if (c.prefix) {
      EXPECT_EQ(got.substr(0, want.size()), want) << "message: " << got;
      EXPECT_GT(got.size(), want.size()) << "HDF5's reason should follow";
    } else {
      EXPECT_EQ(got, want);
    }
    EXPECT_CONTAINS(got, path);
    if (c.dataset != nullptr) {
      EXPECT_CONTAINS(got, c.dataset);
    }
  }

  TempDir dir;
  const std::string path = dir.file(std::string(GetParam().name) + ".h5");
};

TEST_P(Hostile, RefusedWithOneLineNamingFileAndDataset) {
  const HostileFile& c = GetParam();
  c.make(path);
  ReadLimit limit(c.read_limit);
  expect_message(error([&] { return WorkloadFile(path, c.stage); }));
}

TEST_P(Hostile, RefusedTheSameFromAMemoryImage) {
  const HostileFile& c = GetParam();
  c.make(path);
  const std::vector<char> bytes = file_bytes(path);
  ReadLimit limit(c.read_limit);
  expect_message(error([&] { return WorkloadFile::from_image(bytes.data(), bytes.size(), c.stage, path); }));
}

INSTANTIATE_TEST_SUITE_P(Files, Hostile, ::testing::ValuesIn(hostile::hostile_files()),
                         [](const ::testing::TestParamInfo<HostileFile>& param) {
                           return std::string(param.param.name);
                         });

// ---- Memory images of valid files ------------------------------------------------------------

TEST(FromImage, ReadsWhatTheFileHolds) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample();
  write_sample(path, s);
  const std::vector<char> bytes = file_bytes(path);
  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline}) {
    SCOPED_TRACE(stage_name(stage));
    const WorkloadFile disk(path, stage);
    const WorkloadFile image = WorkloadFile::from_image(bytes.data(), bytes.size(), stage, "mem.h5");
    EXPECT_EQ(image.info().path, "mem.h5");
    EXPECT_EQ(image.info().rows, disk.info().rows);
    EXPECT_EQ(image.info().num_pages, disk.info().num_pages);
    EXPECT_EQ(image.info().batch_offsets, disk.info().batch_offsets);
    EXPECT_EQ(image.info().datasets, disk.info().datasets);
    EXPECT_EQ(image.info().text_attributes, disk.info().text_attributes);
    const RowStats a = disk.check_contents();
    const RowStats b = image.check_contents();
    EXPECT_EQ(a.seq_lens, b.seq_lens);
    EXPECT_EQ(a.valid_ids, b.valid_ids);
    EXPECT_EQ(a.nonfinite.size(), b.nonfinite.size());
    const QueryRows ra = disk.read_rows(3, 5);
    const QueryRows rb = image.read_rows(3, 5);
    EXPECT_EQ(ra.q_index, rb.q_index);
    EXPECT_EQ(ra.q_nope, rb.q_nope);
    EXPECT_EQ(ra.sparse_indices, rb.sparse_indices);
    EXPECT_EQ(ra.block_table, rb.block_table);
    const KvCache ka = disk.read_kv();
    const KvCache kb = image.read_kv();
    EXPECT_EQ(ka.index_k, kb.index_k);
    EXPECT_EQ(ka.ckv, kb.ckv);
    EXPECT_EQ(ka.kpe, kb.kpe);
  }
}

TEST(FromImage, SeveralImagesOpenAtOnceStayApart) {
  TempDir dir;
  SampleWorkload small = make_sample(4, 2, 2);
  SampleWorkload large = make_sample(10, 6, 3);
  write_sample(dir.file("small.h5"), small);
  write_sample(dir.file("large.h5"), large);
  const std::vector<char> a = file_bytes(dir.file("small.h5"));
  const std::vector<char> b = file_bytes(dir.file("large.h5"));
  // The same name for both, and the name of a file that exists on disk: neither matters.
  const std::string name = dir.file("small.h5");
  const WorkloadFile wa = WorkloadFile::from_image(a.data(), a.size(), Stage::pipeline, name);
  const WorkloadFile wb = WorkloadFile::from_image(b.data(), b.size(), Stage::pipeline, name);
  EXPECT_EQ(wa.info().rows, 4);
  EXPECT_EQ(wb.info().rows, 10);
  EXPECT_EQ(wa.read_kv().ckv, small.kv.ckv);
  EXPECT_EQ(wb.read_kv().ckv, large.kv.ckv);
}

TEST(FromImage, TheImageIsCopied) {
  TempDir dir;
  const SampleWorkload s = make_sample();
  write_sample(dir.file("w.h5"), s);
  std::vector<char> bytes = file_bytes(dir.file("w.h5"));
  const WorkloadFile w = WorkloadFile::from_image(bytes.data(), bytes.size(), Stage::attention, "m");
  std::fill(bytes.begin(), bytes.end(), '\0');
  bytes.clear();
  bytes.shrink_to_fit();
  EXPECT_EQ(w.read_rows(0, 10).q_pe, s.rows.q_pe);
}

TEST(FromImage, BytesThatAreNotHdf5) {
  const std::string text = "rows,seq_len\n0,17\n";
  EXPECT_EQ(error_of([&] { WorkloadFile::from_image(text.data(), text.size(), Stage::indexer, "t.h5"); }),
            "t.h5: not an HDF5 file");
  EXPECT_EQ(error_of([&] { WorkloadFile::from_image(nullptr, 0, Stage::indexer, "nothing"); }),
            "nothing: not an HDF5 file");
  // The signature alone, at offset 512 as HDF5 allows (a user block before it).
  std::vector<char> sig(1024, '\0');
  std::memcpy(sig.data() + 512, "\x89HDF\r\n\x1a\n", 8);
  EXPECT_CONTAINS(error_of([&] { WorkloadFile::from_image(sig.data(), sig.size(), Stage::indexer, "s.h5"); }),
                  "s.h5: cannot open: ");
}

// ---- Links that resolve, types that convert exactly ------------------------------------------

TEST(Links, SoftLinkToADatasetIsFollowed) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample();
  write_sample(path, s);
  {
    RawFile f(path);
    ASSERT_GE(H5Lmove(f.id(), "/queries/weights", f.id(), "/stored_weights", H5P_DEFAULT, H5P_DEFAULT), 0);
    ASSERT_GE(H5Lcreate_soft("/stored_weights", f.id(), "/queries/weights", H5P_DEFAULT, H5P_DEFAULT), 0);
  }
  const WorkloadFile w(path, Stage::indexer);
  EXPECT_NO_THROW((void)w.check_contents());
  EXPECT_EQ(w.read_rows(0, 10).weights, s.rows.weights);
}

TEST(Links, SoftLinkThroughAnExternalLinkIsNotFollowed) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const std::string other = dir.file("other.h5");
  write_sample(path, make_sample());
  write_sample(other, make_sample());
  {
    RawFile f(path);
    raw_unlink(f.id(), "/queries/q_index");
    ASSERT_GE(H5Lcreate_external(other.c_str(), "/queries", f.id(), "/elsewhere", H5P_DEFAULT, H5P_DEFAULT), 0);
    ASSERT_GE(H5Lcreate_soft("/elsewhere/q_index", f.id(), "/queries/q_index", H5P_DEFAULT, H5P_DEFAULT), 0);
  }
  EXPECT_CONTAINS(error_of([&] { WorkloadFile w(path, Stage::indexer); }),
                  path + ": /queries/q_index is a soft link to /elsewhere/q_index, which cannot be followed: ");
}

TEST(Types, BigEndianDataIsReadExactly) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  const SampleWorkload s = make_sample();
  write_sample(path, s);
  {
    RawFile f(path);
    raw_replace_dataset(f.id(), "/queries/weights", H5T_IEEE_F32BE, {10, 64}, H5T_NATIVE_FLOAT,
                        s.rows.weights.data());
    raw_replace_dataset(f.id(), "/kv/ckv", H5T_STD_U16BE, {6, 64, 512}, H5T_NATIVE_UINT16,
                        s.kv.ckv.data(), "bfloat16");
  }
  const WorkloadFile w(path, Stage::pipeline);
  EXPECT_EQ(w.read_rows(0, 10).weights, s.rows.weights);
  EXPECT_EQ(w.read_kv().ckv, s.kv.ckv);
}

// ---- Text from files in messages ----------------------------------------------------------------

TEST(Printable, EscapesControlCharactersAndBytesThatAreNotUtf8) {
  EXPECT_EQ(h5::printable("plain text"), "plain text");
  EXPECT_EQ(h5::printable("a\nb\r\tc\x01\x7f"), "a\\nb\\r\\tc\\x01\\x7f");
  EXPECT_EQ(h5::printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(h5::printable("\x89HDF"), "\\x89HDF");          // a lone continuation byte
  EXPECT_EQ(h5::printable("\xc3"), "\\xc3");                // cut short
  EXPECT_EQ(h5::printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(h5::printable("\xc0\xaf"), "\\xc0\\xaf");        // overlong
  EXPECT_EQ(h5::printable(std::string(10, 'x'), 4), "xxxx...");
}

// ---- The read limit ----------------------------------------------------------------------------

TEST(ReadLimitTest, DefaultIsTheMachinesMemory) {
  set_read_limit_bytes(0);
  EXPECT_GT(read_limit_bytes(), int64_t{1} << 26);
  set_read_limit_bytes(12345);
  EXPECT_EQ(read_limit_bytes(), 12345);
  set_read_limit_bytes(-1);
  EXPECT_GT(read_limit_bytes(), int64_t{1} << 26);
}

TEST(ReadLimitTest, RefusesAKvCacheLargerThanTheLimit) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  write_sample(path, make_sample());  // ckv: 6 pages x 64 KiB
  const WorkloadFile w(path, Stage::attention);
  ReadLimit limit(256 << 10);
  EXPECT_EQ(error_of([&] { (void)w.read_kv(); }),
            path + ": /kv/ckv: cannot allocate 384.0 KiB (393216 bytes), more than the read limit "
                   "of 256.0 KiB");
  EXPECT_NO_THROW((void)w.read_rows(0, 2));
}

TEST(ReadLimitTest, RowRangesThatOverflowAreRefused) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  write_sample(path, make_sample());
  const WorkloadFile w(path, Stage::attention);
  EXPECT_EQ(error_of([&] { (void)w.read_rows(5, std::numeric_limits<int64_t>::max()); }),
            path + ": cannot read rows [5, 5 + 9223372036854775807), the workload has 10 rows");
}

}  // namespace
}  // namespace dsa::io::test
