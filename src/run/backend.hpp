// A compute backend runs the two operators on one rank's rows. The job owns the host buffers;
// the backend owns whatever device state it needs (KV caches uploaded once per job).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/workload.hpp"
#include "src/plan/plan.hpp"

namespace dsa::run {

// Seconds the last indexer/attention/pipeline call spent in each phase.
struct ComputeTimes {
  double upload = 0, index = 0, attend = 0, download = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;    // "cpu" | "cuda"
  virtual std::string device() const = 0;  // for the header: "cpu (4 threads)", "GPU 0: NVIDIA H200"
  virtual int threads() const { return 1; }
  // What identifies the device on its host (a GPU's PCI bus id); "" for the CPU.
  virtual std::string device_id() const { return ""; }

  // Called once per job with the KV caches the stage needs; `kv` outlives the backend's use.
  virtual void load_kv(const io::KvCache& kv) = 0;

  // Called once after load_kv with the largest batch slice this rank will compute: a GPU
  // backend allocates every buffer and workspace now, so no batch allocates, and refuses with
  // the sizes needed and free when the device cannot hold them (before any kernel runs).
  virtual void reserve(io::Stage, int64_t /*max_rows*/, int32_t /*max_seq_len*/, int64_t /*max_num_pages*/) {}

  // rows.count rows. topk: [count, 2048] out.
  virtual void indexer(const io::QueryRows& rows, int32_t* topk) = 0;
  // sparse_indices [count, 2048]; output [count, 16, 512] bf16 out; lse [count, 16] out.
  virtual void attention(const io::QueryRows& rows, const int32_t* sparse_indices, float sm_scale,
                         uint16_t* output, float* lse) = 0;

  // Indexer then attention on its top-k: topk [count, 2048], output, lse out. A GPU backend
  // keeps the indices on the device between the two.
  virtual void pipeline(const io::QueryRows& rows, float sm_scale, int32_t* topk, uint16_t* output, float* lse) = 0;

  // Phase times of the last call (each backend measures its own phases).
  virtual ComputeTimes last_times() const = 0;

  // Rough cost of one planner work unit on this backend, for the adaptive rank choice.
  virtual plan::CostModel cost_model() const = 0;
};

// The CPU reference on `threads` threads (0 = this rank's share of the node's cores).
std::unique_ptr<Backend> make_cpu_backend(int threads);

#ifdef DSA_HAVE_CUDA
// GPU backend on CUDA device `device`.
std::unique_ptr<Backend> make_cuda_backend(int device);
// Number of CUDA devices visible to this process (0 when none or no driver).
int visible_cuda_devices();
#endif

}  // namespace dsa::run
