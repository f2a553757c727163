// libFuzzer target over the workload reader and validator: bytes -> an HDF5 file image ->
// WorkloadFile for each stage -> check_contents() -> a few rows -> the KV caches.
//
// Every dsa::Error is a correct answer, provided it is one line of printable text naming the
// file. Anything else is a bug: a crash, a sanitizer report, a hang (-timeout), an exception of
// another type (it reaches std::terminate), a message with a newline or control character.
//
// Built by tests/fuzz/standalone with clang: -fsanitize=fuzzer,address,undefined. HDF5 is the
// system library and not instrumented, so reports inside it are HDF5's (see run_fuzz.sh).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.hpp"
#include "io/workload.hpp"
#include "kernels/shapes.hpp"

namespace {

using dsa::io::Stage;

constexpr const char* kName = "fuzz.h5";
// The io layer refuses any single allocation larger than this (a file declaring more gets a
// message, as it would on a machine with this much memory).
constexpr int64_t kReadLimit = int64_t{64} << 20;
// Files whose datasets (those the stage reads) declare more bytes than this are opened and
// checked for structure only: reading them in full, as check_contents() and read_kv() do, would
// mostly read fill values for chunks the file does not hold, and take too long per input.
constexpr double kReadBudget = 16.0 * (1 << 20);

// Bytes of the datasets `stage` reads, as declared (double: no overflow).
double declared_bytes(const dsa::io::WorkloadInfo& info, Stage stage) {
  const double rows = static_cast<double>(info.rows);
  const double pages = static_cast<double>(info.num_pages);
  double bytes = 0;
  if (dsa::io::stage_needs_indexer_data(stage))
    bytes += rows * (4.0 + 4.0 * static_cast<double>(info.max_num_pages) +
                     dsa::kIndexHeads * (dsa::kIndexHeadDim + 4.0)) +
             pages * dsa::kIndexPageBytes;
  if (dsa::io::stage_needs_attention_data(stage))
    bytes += rows * 2.0 * dsa::kHeads * (dsa::kCkvDim + dsa::kKpeDim) +
             pages * 2.0 * dsa::kPageSize * (dsa::kCkvDim + dsa::kKpeDim);
  if (dsa::io::stage_needs_sparse_indices(stage)) bytes += rows * 4.0 * dsa::kTopK;
  return bytes;
}

// Whether `s` is well-formed UTF-8 (messages end up in JSON reports).
bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (n == 0 || s.size() - i < n) return false;
    uint32_t code = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      code = code << 6 | (d & 0x3F);
    }
    const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < least[n] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

[[noreturn]] void bug(const char* what, const std::string& detail) {
  std::fprintf(stderr, "workload_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void exercise(const uint8_t* data, std::size_t size, Stage stage) {
  const auto w = dsa::io::WorkloadFile::from_image(data, size, stage, kName);
  const dsa::io::WorkloadInfo& info = w.info();
  if (declared_bytes(info, stage) > kReadBudget) return;
  const dsa::io::RowStats stats = w.check_contents();
  const auto rows = static_cast<std::size_t>(info.rows);
  if (dsa::io::stage_needs_indexer_data(stage) && stats.seq_lens.size() != rows)
    bug("check_contents", "seq_lens of the wrong size");
  if (dsa::io::stage_needs_sparse_indices(stage) && stats.valid_ids.size() != rows)
    bug("check_contents", "valid_ids of the wrong size");
  if (info.rows > 0) {
    (void)w.read_rows(0, std::min<int64_t>(info.rows, 2));
    (void)w.read_rows(info.rows - 1, 1);
  }
  (void)w.read_kv();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dsa::io::set_read_limit_bytes(kReadLimit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const bool verbose = std::getenv("DSA_FUZZ_VERBOSE") != nullptr;
  for (const Stage stage : {Stage::indexer, Stage::attention, Stage::pipeline}) {
    try {
      exercise(data, size, stage);
      if (verbose) std::fprintf(stderr, "%-9s accepted\n", dsa::io::stage_name(stage));
    } catch (const dsa::Error& e) {
      const std::string message = e.what();
      if (verbose) std::fprintf(stderr, "%-9s %s\n", dsa::io::stage_name(stage), e.what());
      for (const char c : message)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) bug("control character in a message", message);
      if (message.find(kName) == std::string::npos) bug("message without the file name", message);
      if (!valid_utf8(message)) bug("message that is not UTF-8", message);
    }
  }
  return 0;
}
