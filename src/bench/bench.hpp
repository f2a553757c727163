// dsa-bench's shared harness: device facts, the copy-bandwidth floor, L2 flushing, event
// timing, and device-side random fills. Each operator's benchmark (indexer_bench.cu,
// attention_bench.cu) returns rows; dsa_bench.cpp prints them against the floor.
//
// The floor of a case = bytes that must move / copy bandwidth, both from the same run.
// Copy bandwidth counts bytes read plus bytes written of a large device-to-device cudaMemcpy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "common/error.hpp"

namespace dsa::bench {

struct DeviceInfo {
  std::string name;
  int ordinal = 0;
  int sms = 0;
  int cc_major = 0, cc_minor = 0;
  size_t l2_bytes = 0;
  size_t global_bytes = 0;
  int driver_version = 0, runtime_version = 0;
};
DeviceInfo device_info();

// Median over `iters` runs of a 2 x (4 x L2)... sized device-to-device copy, in GB/s
// (1 GB = 1e9 bytes), counting bytes read plus bytes written.
double copy_bandwidth_gbps(cudaStream_t stream, int iters = 20);

// Median over `iters` runs of a kernel that only reads 1 GiB (16-byte streaming loads), in GB/s:
// what a read-bound kernel can reach at best. Reported beside the floor, not used for it (the
// issue's floor is the copy bandwidth; reads alone reach about 92% of it on an H200).
double read_bandwidth_gbps(cudaStream_t stream, int iters = 20);

// Evicts L2 by writing a buffer twice the L2 size (what FlashInfer-Bench and nccl-tests do).
class L2Flush {
 public:
  L2Flush();
  ~L2Flush();
  L2Flush(const L2Flush&) = delete;
  L2Flush& operator=(const L2Flush&) = delete;
  void operator()(cudaStream_t stream);

 private:
  void* buffer_ = nullptr;
  size_t bytes_ = 0;
};

// Median and spread, in microseconds, of `launch(stream)` timed with CUDA events: `warmup`
// untimed runs, then `iters` timed runs, each preceded by an (untimed) L2 flush when given.
struct Timing {
  double median_us = 0, min_us = 0, p90_us = 0;
};
Timing time_us(const std::function<void(cudaStream_t)>& launch, cudaStream_t stream, int warmup,
               int iters, L2Flush* flush);

// Deterministic device-side random fills (a counter hash; no cuRAND), never zeros.
void fill_uniform_bf16(uint16_t* dst, size_t n, float lo, float hi, uint64_t seed, cudaStream_t s);
void fill_uniform_f32(float* dst, size_t n, float lo, float hi, uint64_t seed, cudaStream_t s);
// Random e4m3 codes (uniform over codes) with |value| <= amax, never the NaN codes.
void fill_uniform_e4m3(uint8_t* dst, size_t n, float amax, uint64_t seed, cudaStream_t s);

// A device allocation of n T's (at least one), freed with its owner.
template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  explicit DeviceArray(size_t n) { DSA_CHECK_CUDA(cudaMalloc(&ptr, (n > 0 ? n : 1) * sizeof(T))); }
  ~DeviceArray() { cudaFree(ptr); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

// What every operator benchmark is given.
struct BenchConfig {
  int warmup = 5;
  int iters = 50;
  uint64_t seed = 1;
  std::string suite;          // operator-specific case set ("" = the operator's default table)
  cudaStream_t stream = nullptr;
  L2Flush* flush = nullptr;   // null = no flush (measures L2-resident runs)
};

// One line of the table. The harness adds floor_us = bytes_moved / copy bandwidth and the
// fraction floor_us / median_us.
struct BenchRow {
  std::string op;        // "indexer" | "attention"
  std::string shape;     // e.g. "b=64 L=32768"
  int64_t rows = 0;
  double bytes_moved = 0;  // bytes that must move, formula stated once by the operator
  Timing timing;
  std::string note;      // e.g. "topk 12% of time"
};

// Implemented by the operator benchmarks (each prints its "bytes that must move" formula
// as a '#' line when called).
std::vector<BenchRow> bench_indexer(const BenchConfig& config);
std::vector<BenchRow> bench_attention(const BenchConfig& config);

}  // namespace dsa::bench
