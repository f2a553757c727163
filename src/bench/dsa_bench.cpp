// dsa-bench: times the kernels on one GPU against the memory floor measured in the same run.
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "src/bench/scaling.hpp"
#ifdef DSA_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "src/bench/bench.hpp"
#endif

namespace po = boost::program_options;

namespace {

const char* kUsage =
    "Usage: dsa-bench OPERATOR [options]\n"
    "Times the DSA kernels on one GPU and prints each case against the memory floor:\n"
    "  floor = bytes that must move / device-to-device copy bandwidth (read + written),\n"
    "  both measured in this run; L2 is flushed before every timed run.\n"
    "OPERATOR: indexer | attention | all\n"
    "Also: dsa-bench calibrate --help (the cost curve dsa-run --calibration reads) and\n"
    "      mpirun -np N dsa-bench scaling --help (batch sizes x rank counts, with the job's gather).\n";

#ifdef DSA_HAVE_CUDA
std::string today() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

int run(const std::string& op, const dsa::bench::BenchConfig& base, bool flush_l2,
        const std::string& json_path) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    dsa::fail("dsa-bench: no CUDA GPU visible (it times GPU kernels only)");
  using namespace dsa::bench;
  const DeviceInfo dev = device_info();
  cudaStream_t stream;
  DSA_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double copy_gbps = copy_bandwidth_gbps(stream);
  const double read_gbps = read_bandwidth_gbps(stream);

  std::printf("# dsa-bench %s, %s\n", DSA_VERSION, today().c_str());
  std::printf("# device %d: %s, %d SMs, sm_%d%d, L2 %.0f MB, %.1f GB, driver %d, runtime %d\n",
              dev.ordinal, dev.name.c_str(), dev.sms, dev.cc_major, dev.cc_minor, double(dev.l2_bytes) / 1e6,
              double(dev.global_bytes) / 1e9, dev.driver_version, dev.runtime_version);
  std::printf("# copy bandwidth %.0f GB/s (1 GiB cudaMemcpy D2D, read + written, median)\n", copy_gbps);
  std::printf("# read bandwidth %.0f GB/s = %.0f%% of the copy bandwidth (1 GiB of 16-byte loads, no writes: "
              "the most a read-bound kernel reaches; the floor uses the copy bandwidth)\n",
              read_gbps, 100.0 * read_gbps / copy_gbps);
  std::printf("# timing: median of %d runs after %d warm-up, CUDA events, L2 %s before each run\n",
              base.iters, base.warmup, flush_l2 ? "flushed" : "NOT flushed");

  L2Flush flush;
  BenchConfig config = base;
  config.stream = stream;
  config.flush = flush_l2 ? &flush : nullptr;

  std::vector<BenchRow> rows;
  if (op == "indexer" || op == "all") {
    auto r = bench_indexer(config);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  if (op == "attention" || op == "all") {
    auto r = bench_attention(config);
    rows.insert(rows.end(), r.begin(), r.end());
  }

  std::printf("%-10s %-28s %8s %10s %10s %10s %9s %10s %7s  %s\n", "op", "shape", "rows", "median_us",
              "p90_us", "MB_moved", "GB/s", "floor_us", "%floor", "note");
  nlohmann::json out = {{"program", "dsa-bench"},        {"version", DSA_VERSION},
                        {"date", today()},               {"device", dev.name},
                        {"sms", dev.sms},                {"copy_gbps", copy_gbps},
                        {"read_gbps", read_gbps},
                        {"iters", base.iters},           {"l2_flushed", flush_l2},
                        {"cases", nlohmann::json::array()}};
  double worst = 1e9;
  for (const BenchRow& row : rows) {
    const double floor_us = row.bytes_moved / (copy_gbps * 1e3);
    const double frac = floor_us / row.timing.median_us;
    const double gbps = row.bytes_moved / (row.timing.median_us * 1e3);
    worst = std::min(worst, frac);
    std::printf("%-10s %-28s %8lld %10.2f %10.2f %10.2f %9.0f %10.2f %6.1f%%  %s\n", row.op.c_str(),
                row.shape.c_str(), static_cast<long long>(row.rows), row.timing.median_us,
                row.timing.p90_us, row.bytes_moved / 1e6, gbps, floor_us, 100.0 * frac,
                row.note.c_str());
    out["cases"].push_back({{"op", row.op},
                            {"shape", row.shape},
                            {"rows", row.rows},
                            {"median_us", row.timing.median_us},
                            {"min_us", row.timing.min_us},
                            {"p90_us", row.timing.p90_us},
                            {"bytes_moved", row.bytes_moved},
                            {"gbps", gbps},
                            {"floor_us", floor_us},
                            {"fraction_of_floor", frac},
                            {"note", row.note}});
  }
  std::printf("# %zu cases; lowest fraction of the floor %.1f%%\n", rows.size(), rows.empty() ? 0.0 : 100.0 * worst);
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    DSA_REQUIRE(f.good(), json_path, ": cannot write the JSON report");
    f << out.dump(2) << "\n";
  }
  DSA_CHECK_CUDA(cudaStreamDestroy(stream));
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  try {
    // The job-level operators have options of their own.
    if (argc >= 2 && std::string(argv[1]) == "calibrate") return dsa::bench::calibrate_main(argc - 1, argv + 1);
    if (argc >= 2 && std::string(argv[1]) == "scaling") return dsa::bench::scaling_main(argc - 1, argv + 1);
    std::string op, suite, json_path;
    int iters = 50, warmup = 5;
    unsigned long long seed = 1;
    bool no_flush = false;
    po::options_description opts("Options");
    opts.add_options()("help,h", "print this help")(
        "suite", po::value(&suite)->default_value(""),
        "case set: '' (the operator's table of shapes), 'fib' (FlashInfer-Bench-like small calls),\n'paths' (indexer: every scores path and diagnostics), 'decode' (attention: the decode-shaped\ntable), 'sweep' (attention: variants and latency probes), 'small' (attention: few-row calls\nwith per-block phase stamps)")(
        "iters", po::value(&iters)->default_value(50), "timed runs per case (median reported)")(
        "warmup", po::value(&warmup)->default_value(5), "untimed runs per case")(
        "seed", po::value(&seed)->default_value(1), "seed of the random inputs")(
        "no-flush", po::bool_switch(&no_flush), "do not flush L2 between runs")(
        "json", po::value(&json_path), "also write the figures as JSON to this file");
    po::options_description hidden;
    hidden.add_options()("op", po::value(&op));
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("op", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    if (vm.count("help") || argc == 1) {
      std::cout << kUsage << opts;
      return vm.count("help") ? 0 : 2;
    }
    po::notify(vm);
    DSA_REQUIRE(op == "indexer" || op == "attention" || op == "all",
                "dsa-bench: unknown operator '", op, "' (indexer, attention, all, calibrate or scaling)");
    DSA_REQUIRE(iters > 0 && warmup >= 0, "dsa-bench: --iters must be > 0 and --warmup >= 0");
#ifdef DSA_HAVE_CUDA
    dsa::bench::BenchConfig config;
    config.iters = iters;
    config.warmup = warmup;
    config.seed = seed;
    config.suite = suite;
    return run(op, config, !no_flush, json_path);
#else
    (void)seed;
    (void)no_flush;
    dsa::fail("dsa-bench: this build has no CUDA backend (configure with nvcc present, DSA_CUDA=ON)");
#endif
  } catch (const po::error& e) {
    std::cerr << "dsa-bench: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
