// Writes the fuzz target's seed corpus into a directory: every hostile file of
// tests/io/hostile_files.hpp (those under 512 KiB: larger inputs slow every mutation) and a
// few valid workloads, one per shape of file the reader accepts.
//   fuzz_seed_corpus DIR
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include "tests/io/hostile_files.hpp"

namespace {

using namespace dsa::io;
using namespace dsa::io::test;

void valid_seeds(const std::filesystem::path& dir) {
  write_sample((dir / "valid_pipeline.h5").string(), small_sample(), true);

  SampleWorkload indexer = small_sample();
  indexer.shape.attention_data = false;
  indexer.shape.sparse_indices = false;
  write_sample((dir / "valid_indexer.h5").string(), indexer, true);

  SampleWorkload attention = small_sample();
  attention.shape.indexer_data = false;
  write_sample((dir / "valid_attention.h5").string(), attention, true);

  write_sample((dir / "valid_zero_rows.h5").string(), make_sample(0, 0, 0), true);

  // One row, one page; NaN and Inf in every float dataset.
  SampleWorkload nan = make_sample(1, 1, 1);
  make_finite(nan);
  nan.rows.weights[0] = std::numeric_limits<float>::quiet_NaN();
  nan.rows.q_index[0] = 0x7F;
  nan.kv.index_k[0] = 0xFF;
  nan.kv.index_k[dsa::kIndexPageFp8Bytes + 3] = 0x7F;  // scale of token 0: 0x7F800000, +Inf
  nan.kv.index_k[dsa::kIndexPageFp8Bytes + 2] = 0x80;
  nan.kv.ckv[0] = 0x7F80;
  nan.kv.kpe[0] = 0xFFC0;
  nan.rows.q_nope[0] = 0x7FC1;
  nan.rows.q_pe[0] = 0xFF80;
  write_sample((dir / "valid_nan_inf.h5").string(), nan, true);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seed_corpus DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  try {
    std::filesystem::create_directories(dir);
    valid_seeds(dir);
    int written = 5;
    for (const hostile::HostileFile& c : hostile::hostile_files()) {
      const std::filesystem::path file = dir / (std::string(c.name) + ".h5");
      std::filesystem::remove(file);
      c.make(file.string());
      if (std::filesystem::file_size(file) > (512u << 10)) {
        std::filesystem::remove(file);
        continue;
      }
      ++written;
    }
    // The raw HDF5 helpers report failures as gtest expectations.
    if (::testing::UnitTest::GetInstance()->ad_hoc_test_result().Failed()) {
      std::fprintf(stderr, "fuzz_seed_corpus: a seed file could not be written\n");
      return 1;
    }
    std::printf("fuzz_seed_corpus: %d files in %s\n", written, dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seed_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
