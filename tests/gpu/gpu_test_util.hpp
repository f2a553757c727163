// Shared by the GPU tests: skip, saying so, where no GPU is visible.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

namespace dsa::testing {

inline bool gpu_visible() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the "no device / no driver" error
    return false;
  }
  return n > 0;
}

}  // namespace dsa::testing

// First line of every GPU test: skips it visibly without a GPU.
#define REQUIRE_GPU()                                                                 \
  do {                                                                                \
    if (!::dsa::testing::gpu_visible()) GTEST_SKIP() << "no CUDA GPU visible";        \
  } while (0)
