// Test tool: writes the FlashInfer-Bench-style dataset of fib_fixture.hpp under a folder.
// Usage: make_fib_dataset DIR
#include <cstdio>
#include <exception>

#include "tests/import/fib_fixture.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fib_dataset DIR\n");
    return 2;
  }
  try {
    dsa::import::fixture::write_dataset(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fib_dataset: %s\n", e.what());
    return 1;
  }
  return 0;
}
