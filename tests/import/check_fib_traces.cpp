// Test tool: checks the FlashInfer-Bench traces dsa-run --fib-traces wrote against
// FlashInfer-Bench's rules and the workload's batches (one PASSED trace per batch, in order).
// Usage: check_fib_traces TRACES.jsonl WORKLOAD.h5
#include <cstdio>
#include <exception>
#include <fstream>
#include <set>
#include <string>

#include "src/import/fib_trace.hpp"
#include "tests/import/fib_trace_check.hpp"

using dsa::import::ojson;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: check_fib_traces TRACES.jsonl WORKLOAD.h5\n");
    return 2;
  }
  try {
    const std::vector<dsa::import::BatchTag> tags = dsa::import::read_batch_tags(argv[2]);
    std::ifstream traces(argv[1]);
    std::string line;
    std::set<std::string> uuids;
    std::size_t n = 0;
    while (std::getline(traces, line)) {
      const ojson t = ojson::parse(line);
      const std::string problem = dsa::import::test::fib_trace_problem(t);
      if (!problem.empty()) {
        std::fprintf(stderr, "FAIL trace %zu: %s\n", n, problem.c_str());
        return 1;
      }
      if (t["workload"]["uuid"] != tags.at(n).uuid || t["definition"] != tags.at(n).definition ||
          t["evaluation"]["status"] != "PASSED") {
        std::fprintf(stderr, "FAIL trace %zu: not batch %zu's workload, or not PASSED\n", n, n);
        return 1;
      }
      uuids.insert(t["workload"]["uuid"].get<std::string>());
      ++n;
    }
    if (n != tags.size() || uuids.size() != n) {
      std::fprintf(stderr, "FAIL %zu traces (%zu distinct uuids) for %zu batches\n", n, uuids.size(), tags.size());
      return 1;
    }
    std::printf("ok: %zu FlashInfer-Bench traces of %s in %s\n", n, tags.at(0).definition.c_str(), argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "check_fib_traces: %s\n", e.what());
    return 1;
  }
  return 0;
}
