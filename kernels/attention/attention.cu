// Launcher of the CUDA sparse MLA attention (SPEC §1.2): checks the call, picks the pipeline
// depth and the number of splits per row, sets the kernel's attributes once per device, and
// launches one kernel (splits of a row are one thread-block cluster and combine on chip, so no
// workspace and no second launch). No host synchronisation, no allocation.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "common/error.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/attention/attention_tuning.hpp"
#include "kernels/attention/portable/sparse_mla_params.hpp"

namespace dsa::cuda {
namespace {

constexpr int kDefaultStages = 5;  // one block per row
constexpr int kSplitStages = 4;    // rows split over a cluster (room for the receive buffer)
constexpr bool kDefaultExactP = true;
constexpr int kSplitChoices[] = {1, 2, 4, 8, 16};

int split_slot(int splits) {
  for (int i = 0; i < 5; ++i)
    if (kSplitChoices[i] == splits) return i;
  return -1;
}

// Per (device, stages, exact_p): the kernel, its shared memory without and with the split
// receive buffer, and how many clusters of each size the device can hold at once (0 = that
// size cannot be launched).
struct KernelSetup {
  const void* func = nullptr;
  size_t smem_single = 0, smem_split = 0;
  bool split_fits = false;
  int sms = 0;
  int max_clusters[5] = {0, 0, 0, 0, 0};
  int max_splits = 1;
};

const void* kernel_for(int stages, bool exact_p) {
  switch (stages) {
    case 4: return attn::sparse_mla_fwd_kernel_s4(exact_p);
    case 5: return attn::sparse_mla_fwd_kernel_s5(exact_p);
    default: fail("attention: unsupported pipeline depth ", stages, " (4 or 5)");
  }
}

const KernelSetup& kernel_setup(int stages, bool exact_p) {
  static std::mutex mutex;
  static std::map<std::tuple<int, int, bool>, KernelSetup> cache;
  int device = 0;
  DSA_CHECK_CUDA(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(device, stages, exact_p);
  if (auto it = cache.find(key); it != cache.end()) return it->second;

  KernelSetup s;
  s.func = kernel_for(stages, exact_p);
  s.smem_single = attn::sparse_mla_smem_bytes(stages, false);
  s.smem_split = attn::sparse_mla_smem_bytes(stages, true);
  int optin = 0;
  DSA_CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  DSA_REQUIRE(s.smem_single <= static_cast<size_t>(optin), "attention: the ", stages, "-stage kernel needs ",
              s.smem_single, " bytes of shared memory per block, device ", device, " allows ", optin);
  s.split_fits = s.smem_split <= static_cast<size_t>(optin);
  DSA_CHECK_CUDA(cudaDeviceGetAttribute(&s.sms, cudaDevAttrMultiProcessorCount, device));
  DSA_CHECK_CUDA(cudaFuncSetAttribute(s.func, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(s.split_fits ? s.smem_split : s.smem_single)));
  s.max_clusters[0] = INT_MAX;
  if (s.split_fits) {
    // Clusters of 16 are "non-portable": allowed on Hopper when asked for; else up to 8.
    const bool nonportable =
        cudaFuncSetAttribute(s.func, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess;
    if (!nonportable) (void)cudaGetLastError();
    for (int i = 1; i < 5; ++i) {
      const int c = kSplitChoices[i];
      if (c > 8 && !nonportable) continue;
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(static_cast<unsigned>(c));
      cfg.blockDim = dim3(attn::kThreads);
      cfg.dynamicSmemBytes = s.smem_split;
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeClusterDimension;
      attr.val.clusterDim.x = static_cast<unsigned>(c);
      attr.val.clusterDim.y = 1;
      attr.val.clusterDim.z = 1;
      cfg.attrs = &attr;
      cfg.numAttrs = 1;
      int n = 0;
      if (cudaOccupancyMaxActiveClusters(&n, s.func, &cfg) != cudaSuccess) {
        (void)cudaGetLastError();
        n = 0;
      }
      s.max_clusters[i] = n;
      if (n > 0) s.max_splits = c;
    }
  }
  return cache.emplace(key, s).first->second;
}

// Few rows: split each row over a cluster so that about one block per SM is busy, as long as
// all clusters of the call fit on the device at once. Many rows: one block per row.
int choose_splits(int64_t rows, const KernelSetup& s) {
  for (int i = 4; i >= 1; --i) {
    const int c = kSplitChoices[i];
    if (s.max_clusters[i] > 0 && rows * c <= s.sms && rows <= s.max_clusters[i]) return c;
  }
  return 1;
}

bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

void check_params(const AttentionParams& p) {
  DSA_REQUIRE(p.rows >= 0, "attention: rows = ", p.rows);
  DSA_REQUIRE(p.num_pages >= 0, "attention: num_pages = ", p.num_pages);
  if (p.rows == 0) return;
  DSA_REQUIRE(p.q_nope && p.q_pe && p.sparse_indices && p.output && p.lse,
              "attention: q_nope, q_pe, sparse_indices, output and lse must be set");
  DSA_REQUIRE(p.num_pages == 0 || (p.ckv && p.kpe), "attention: ckv and kpe must be set");
  DSA_REQUIRE(aligned(p.q_nope, 16) && aligned(p.q_pe, 16) && aligned(p.ckv, 16) && aligned(p.kpe, 16) &&
                  aligned(p.sparse_indices, 16) && aligned(p.output, 16) && aligned(p.lse, 4),
              "attention: device buffers must be 16-byte aligned (cudaMalloc gives 256)");
}

// Splits first (from the split-capable depth), then the depth: the 5-stage kernel has no room
// for the split receive buffer, so split launches use 4 stages.
AttentionPlan make_plan(int64_t rows, const AttentionTuning& tuning, const KernelSetup*& setup) {
  AttentionPlan plan;
  plan.exact_p = tuning.exact_p < 0 ? kDefaultExactP : tuning.exact_p != 0;
  const KernelSetup& split_setup = kernel_setup(kSplitStages, plan.exact_p);
  if (tuning.splits > 0) {
    DSA_REQUIRE(split_slot(tuning.splits) >= 0, "attention: splits = ", tuning.splits, " (1, 2, 4, 8 or 16)");
    plan.splits = tuning.splits;
  } else {
    plan.splits = choose_splits(rows, split_setup);
  }
  plan.stages = tuning.stages > 0 ? tuning.stages : plan.splits > 1 ? kSplitStages : kDefaultStages;
  setup = &kernel_setup(plan.stages, plan.exact_p);
  plan.max_splits = split_setup.max_splits;
  if (plan.splits > 1) {
    DSA_REQUIRE(setup->split_fits && setup->max_clusters[split_slot(plan.splits)] > 0, "attention: the ",
                plan.stages, "-stage kernel cannot run clusters of ", plan.splits, " blocks on this device");
  }
  plan.smem_bytes = plan.splits > 1 ? setup->smem_split : setup->smem_single;
  plan.blocks = rows * plan.splits;
  return plan;
}

}  // namespace

size_t attention_workspace_bytes(int64_t /*rows*/) {
  return 0;  // split partials are combined in distributed shared memory
}

AttentionPlan attention_plan(int64_t rows, const AttentionTuning& tuning) {
  const KernelSetup* setup = nullptr;
  return make_plan(rows, tuning, setup);
}

void attention_tuned(const AttentionParams& p, const AttentionTuning& tuning, cudaStream_t stream) {
  check_params(p);
  if (p.rows == 0) return;
  const KernelSetup* setup = nullptr;
  const AttentionPlan plan = make_plan(p.rows, tuning, setup);
  DSA_REQUIRE(plan.blocks <= INT_MAX, "attention: ", p.rows, " rows is more than one launch holds");

  attn::SparseMlaParams kp;
  kp.q_nope = p.q_nope;
  kp.q_pe = p.q_pe;
  kp.ckv = p.ckv;
  kp.kpe = p.kpe;
  kp.indices = p.sparse_indices;
  kp.num_tokens = p.num_pages * kPageSize;
  kp.rows = p.rows;
  kp.scale_log2 = static_cast<float>(static_cast<double>(p.sm_scale) * 1.4426950408889634);
  kp.splits = plan.splits;
  kp.trace = tuning.trace;
  kp.output = p.output;
  kp.lse = p.lse;

  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(plan.blocks));
  cfg.blockDim = dim3(attn::kThreads);
  cfg.dynamicSmemBytes = plan.smem_bytes;
  cfg.stream = stream;
  cudaLaunchAttribute attr{};
  if (plan.splits > 1) {
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = static_cast<unsigned>(plan.splits);
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
  }
  void* args[] = {&kp};
  DSA_CHECK_CUDA(cudaLaunchKernelExC(&cfg, setup->func, args));
  DSA_CHECK_LAUNCH();
}

void attention(const AttentionParams& p, void* /*workspace*/, size_t /*workspace_bytes*/, cudaStream_t stream) {
  attention_tuned(p, AttentionTuning{}, stream);
}

}  // namespace dsa::cuda
