// Helpers shared by the unit tests: a temporary directory per test, the one-line error of a
// call, and EXPECT_CONTAINS.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iterator>
#include <string>

#include "common/error.hpp"

namespace dsa::testing {

// A fresh directory named after the running test ("<prefix>-<pid>-<suite>-<test>"), removed
// with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "dsa-test") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = prefix + "-" + std::to_string(::getpid());
    if (info != nullptr) name += std::string("-") + info->test_suite_name() + "-" + info->name();
    for (char& c : name)
      if (c == '/') c = '_';
    dir_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  std::string path() const { return dir_.string(); }
  size_t entries() const {
    return static_cast<size_t>(
        std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator()));
  }

 private:
  std::filesystem::path dir_;
};

// The message of the dsa::Error that `f` throws (a test failure when it throws none, or when
// the message is not one line).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const dsa::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << "message is not one line: " << what;
    return what;
  }
  ADD_FAILURE() << "expected a dsa::Error";
  return {};
}

inline ::testing::AssertionResult contains(const char* text_expr, const char*, const std::string& text,
                                           const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text_expr << " is \"" << text << "\", which lacks \"" << part << "\"";
}

}  // namespace dsa::testing

// EXPECT_CONTAINS(text, part): `part` occurs in `text` (both printed on failure).
#define EXPECT_CONTAINS(text, part) EXPECT_PRED_FORMAT2(::dsa::testing::contains, text, part)
