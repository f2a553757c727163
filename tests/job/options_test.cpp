#include <gtest/gtest.h>

#include <sstream>

#include "src/run/options.hpp"

namespace dsa::run {
namespace {

std::optional<JobOptions> parse(std::vector<std::string> args, std::string* help = nullptr) {
  args.insert(args.begin(), "dsa-run");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream out;
  auto o = parse_options(static_cast<int>(argv.size()), argv.data(), out);
  if (help) *help = out.str();
  return o;
}

TEST(Options, ParsesAFullCommandLine) {
  const auto o = parse({"--workload", "w.h5", "--out", "r.h5", "--stage", "attention", "--backend", "cpu",
                        "--ranks", "3", "--report", "r.json", "--force", "--threads", "2",
                        "--io-threads", "0"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->workload, "w.h5");
  EXPECT_EQ(o->results, "r.h5");
  EXPECT_EQ(o->stage, io::Stage::attention);
  EXPECT_EQ(o->backend, "cpu");
  EXPECT_EQ(o->ranks, 3);
  EXPECT_EQ(o->report, "r.json");
  EXPECT_TRUE(o->force);
  EXPECT_EQ(o->threads, 2);
  EXPECT_EQ(o->io_threads, 0);  // everything through HDF5
}

TEST(Options, DefaultsAreAutoAndNoForce) {
  const auto o = parse({"-w", "w.h5", "-o", "r.h5", "-s", "pipeline"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->backend, "auto");
  EXPECT_EQ(o->ranks, 0);
  EXPECT_EQ(o->io_threads, -1);  // auto
  EXPECT_FALSE(o->force);
}

TEST(Options, HelpPrintsUsageAndReturnsNothing) {
  std::string help;
  EXPECT_FALSE(parse({"--help"}, &help));
  EXPECT_NE(help.find("--workload"), std::string::npos);
  EXPECT_NE(help.find("Exit status"), std::string::npos);
}

TEST(Options, BadCommandLinesAreUsageErrors) {
  EXPECT_THROW(parse({"--out", "r.h5", "--stage", "indexer"}), UsageError);                     // no workload
  EXPECT_THROW(parse({"-w", "w.h5", "--stage", "indexer"}), UsageError);                        // no out
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5"}), UsageError);                                // no stage
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "prefill"}), UsageError);               // bad stage
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "-b", "rocm"}), UsageError);  // bad backend
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "--ranks", "0"}), UsageError);
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "--ranks", "2x"}), UsageError);
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "--bogus"}), UsageError);
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "--threads", "-1"}), UsageError);
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "--io-threads", "-1"}), UsageError);
  EXPECT_THROW(parse({"-w", "w.h5", "-o", "r.h5", "-s", "indexer", "--io-threads", "many"}), UsageError);
}

}  // namespace
}  // namespace dsa::run
