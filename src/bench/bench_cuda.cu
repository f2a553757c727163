// dsa-bench harness (see bench.hpp): device facts, copy bandwidth, L2 flush, event timing,
// random fills.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "src/bench/bench.hpp"

namespace dsa::bench {
namespace {

__device__ __forceinline__ uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

__device__ __forceinline__ float uniform01(uint64_t seed, size_t i) {
  return static_cast<float>(mix64(seed * 0x100000001B3ull ^ i) >> 40) * (1.0f / 16777216.0f);
}

__global__ void fill_bf16_kernel(uint16_t* dst, size_t n, float lo, float hi, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = lo + (hi - lo) * uniform01(seed, i);
    const uint32_t bits = __float_as_uint(v);
    dst[i] = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);  // RNE
  }
}

__global__ void fill_f32_kernel(float* dst, size_t n, float lo, float hi, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = lo + (hi - lo) * uniform01(seed, i);
}

// Random e4m3 codes: a uniform sign/exponent/mantissa pick limited to |value| <= amax, never
// the NaN codes 0x7F / 0xFF.
__global__ void fill_e4m3_kernel(uint8_t* dst, size_t n, uint8_t max_code, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint64_t r = mix64(seed * 0x100000001B3ull ^ i);
    const uint8_t magnitude = static_cast<uint8_t>((r & 0xFFFF) % (uint32_t(max_code) + 1));
    dst[i] = static_cast<uint8_t>(magnitude | ((r >> 16) & 1 ? 0x80 : 0));
  }
}

// Reads n 16-byte words with streaming loads and no writes (the XOR keeps them live), four
// independent loads in flight per thread.
__global__ void read_only_kernel(const uint4* src, size_t n, unsigned* sink) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  uint32_t acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) v[u] = __ldcs(src + i + u * stride);
#pragma unroll
    for (int u = 0; u < 4; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) {
    const uint4 v = __ldcs(src + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);
}

dim3 fill_grid(size_t n) {
  return dim3(static_cast<unsigned>(std::min<size_t>((n + 255) / 256, 4096)));
}

// Largest e4m3 code (sign off) whose value is <= amax; codes grow with value.
uint8_t max_e4m3_code(float amax) {
  uint8_t best = 0;
  for (int code = 0; code < 0x7F; ++code) {
    const int e = code >> 3, m = code & 7;
    const float v = e == 0 ? m / 8.0f / 64.0f : (1.0f + m / 8.0f) * float(1 << e) / 128.0f;
    if (v <= amax) best = static_cast<uint8_t>(code);
  }
  return best;
}

}  // namespace

DeviceInfo device_info() {
  DeviceInfo info;
  DSA_CHECK_CUDA(cudaGetDevice(&info.ordinal));
  cudaDeviceProp prop{};
  DSA_CHECK_CUDA(cudaGetDeviceProperties(&prop, info.ordinal));
  info.name = prop.name;
  info.sms = prop.multiProcessorCount;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
  info.global_bytes = prop.totalGlobalMem;
  DSA_CHECK_CUDA(cudaDriverGetVersion(&info.driver_version));
  DSA_CHECK_CUDA(cudaRuntimeGetVersion(&info.runtime_version));
  return info;
}

double copy_bandwidth_gbps(cudaStream_t stream, int iters) {
  // 1 GiB each way: far beyond any L2 (50-60 MB on Hopper), long enough to hide launch cost.
  const size_t bytes = size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  DSA_CHECK_CUDA(cudaMalloc(&src, bytes));
  DSA_CHECK_CUDA(cudaMalloc(&dst, bytes));
  fill_f32_kernel<<<fill_grid(bytes / 4), 256, 0, stream>>>(static_cast<float*>(src), bytes / 4, -1.f, 1.f, 7);
  DSA_CHECK_LAUNCH();
  const Timing t = time_us(
      [&](cudaStream_t s) { DSA_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s)); },
      stream, 3, iters, nullptr);
  DSA_CHECK_CUDA(cudaFree(src));
  DSA_CHECK_CUDA(cudaFree(dst));
  return 2.0 * double(bytes) / (t.median_us * 1e-6) / 1e9;
}

double read_bandwidth_gbps(cudaStream_t stream, int iters) {
  const size_t bytes = size_t(1) << 30;
  void* src = nullptr;
  unsigned* sink = nullptr;
  DSA_CHECK_CUDA(cudaMalloc(&src, bytes));
  DSA_CHECK_CUDA(cudaMalloc(&sink, sizeof(unsigned)));
  fill_f32_kernel<<<fill_grid(bytes / 4), 256, 0, stream>>>(static_cast<float*>(src), bytes / 4, -1.f, 1.f, 11);
  DSA_CHECK_LAUNCH();
  int device = 0, sms = 0;
  DSA_CHECK_CUDA(cudaGetDevice(&device));
  DSA_CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // 4 blocks of 512 threads per SM, 4 loads in flight per thread.
  const Timing t = time_us(
      [&](cudaStream_t s) {
        read_only_kernel<<<4 * sms, 512, 0, s>>>(static_cast<const uint4*>(src), bytes / 16, sink);
        DSA_CHECK_LAUNCH();
      },
      stream, 3, iters, nullptr);
  DSA_CHECK_CUDA(cudaFree(src));
  DSA_CHECK_CUDA(cudaFree(sink));
  return double(bytes) / (t.median_us * 1e-6) / 1e9;
}

L2Flush::L2Flush() {
  int device = 0, l2 = 0;
  DSA_CHECK_CUDA(cudaGetDevice(&device));
  DSA_CHECK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  bytes_ = std::max<size_t>(2 * size_t(l2), size_t(8) << 20);
  DSA_CHECK_CUDA(cudaMalloc(&buffer_, bytes_));
}

L2Flush::~L2Flush() { cudaFree(buffer_); }

void L2Flush::operator()(cudaStream_t stream) {
  DSA_CHECK_CUDA(cudaMemsetAsync(buffer_, 0x5A, bytes_, stream));
}

Timing time_us(const std::function<void(cudaStream_t)>& launch, cudaStream_t stream, int warmup,
               int iters, L2Flush* flush) {
  DSA_REQUIRE(iters > 0, "time_us: iters must be positive");
  for (int i = 0; i < warmup; ++i) launch(stream);
  cudaEvent_t start, stop;
  DSA_CHECK_CUDA(cudaEventCreate(&start));
  DSA_CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<double> us(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    if (flush) (*flush)(stream);
    DSA_CHECK_CUDA(cudaEventRecord(start, stream));
    launch(stream);
    DSA_CHECK_CUDA(cudaEventRecord(stop, stream));
    DSA_CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    DSA_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    us[static_cast<size_t>(i)] = double(ms) * 1e3;
  }
  DSA_CHECK_CUDA(cudaEventDestroy(start));
  DSA_CHECK_CUDA(cudaEventDestroy(stop));
  std::sort(us.begin(), us.end());
  Timing t;
  t.median_us = us[us.size() / 2];
  t.min_us = us.front();
  t.p90_us = us[std::min(us.size() - 1, us.size() * 9 / 10)];
  return t;
}

void fill_uniform_bf16(uint16_t* dst, size_t n, float lo, float hi, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_bf16_kernel<<<fill_grid(n), 256, 0, s>>>(dst, n, lo, hi, seed);
  DSA_CHECK_LAUNCH();
}

void fill_uniform_f32(float* dst, size_t n, float lo, float hi, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_f32_kernel<<<fill_grid(n), 256, 0, s>>>(dst, n, lo, hi, seed);
  DSA_CHECK_LAUNCH();
}

void fill_uniform_e4m3(uint8_t* dst, size_t n, float amax, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_e4m3_kernel<<<fill_grid(n), 256, 0, s>>>(dst, n, max_e4m3_code(amax), seed);
  DSA_CHECK_LAUNCH();
}

}  // namespace dsa::bench
