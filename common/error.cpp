#include "common/error.hpp"

#include <atomic>
#include <cstring>

namespace dsa {
namespace {
std::atomic<int> g_rank{-1};

const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}
}  // namespace

void set_error_rank(int rank) { g_rank.store(rank); }
int error_rank() { return g_rank.load(); }

std::string rank_prefix() {
  const int rank = error_rank();
  return rank < 0 ? std::string() : "[rank " + std::to_string(rank) + "] ";
}

void fail_call(const char* file, int line, const char* call, const std::string& why) {
  throw Error(rank_prefix() + base_name(file) + ":" + std::to_string(line) + ": " + call +
              " failed: " + why);
}

}  // namespace dsa
