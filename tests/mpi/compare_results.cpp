// compare_results A.h5 B.h5: exit 0 when both results files are complete and their
// /results/topk_indices, output and lse are bit-identical; else one line on the first difference.
#include <cstdio>
#include <cstring>

#include "io/results.hpp"

namespace {

template <typename T>
bool same(const char* name, const std::vector<T>& a, const std::vector<T>& b, size_t row_len) {
  if (a.size() != b.size()) {
    std::printf("%s: sizes differ (%zu vs %zu)\n", name, a.size(), b.size());
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      std::printf("%s: first difference at row %zu, element %zu\n", name, i / row_len, i % row_len);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: compare_results A.h5 B.h5\n");
    return 2;
  }
  try {
    const auto a = dsa::io::read_results(argv[1]);
    const auto b = dsa::io::read_results(argv[2]);
    bool ok = true;
    for (const auto* r : {&a, &b}) {
      if (r->completed_batches != static_cast<int64_t>(r->batch_ranks.size())) {
        std::printf("%s: completed_batches %lld of %zu\n", r == &a ? argv[1] : argv[2],
                    static_cast<long long>(r->completed_batches), r->batch_ranks.size());
        ok = false;
      }
    }
    if (a.stage != b.stage) {
      std::printf("stages differ: %s vs %s\n", a.stage.c_str(), b.stage.c_str());
      return 1;
    }
    ok = same("/results/topk_indices", a.topk_indices, b.topk_indices, 2048) && ok;
    ok = same("/results/output", a.output, b.output, 16 * 512) && ok;
    ok = same("/results/lse", a.lse, b.lse, 16) && ok;
    if (ok) std::printf("identical: %s and %s\n", argv[1], argv[2]);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
