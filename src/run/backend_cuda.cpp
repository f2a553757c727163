// The CUDA backend: KV caches uploaded once, row buffers reused across batches (grown, never
// shrunk), the kernels of kernels/indexer and kernels/attention on one stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/indexer/indexer.hpp"
#include "src/run/backend.hpp"

namespace dsa::run {
namespace {

// A device allocation that grows to the largest size asked for.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr_); }

  void* reserve(size_t bytes) {
    if (bytes > bytes_) {
      DSA_CHECK_CUDA(cudaFree(ptr_));
      ptr_ = nullptr;
      bytes_ = 0;
      DSA_CHECK_CUDA(cudaMalloc(&ptr_, bytes));
      bytes_ = bytes;
    }
    return ptr_;
  }
  template <typename T>
  T* upload(const std::vector<T>& host, cudaStream_t stream) {
    T* dst = static_cast<T*>(reserve(std::max<size_t>(host.size() * sizeof(T), 1)));
    if (!host.empty())
      DSA_CHECK_CUDA(cudaMemcpyAsync(dst, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
    return dst;
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    DSA_CHECK_CUDA(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    DSA_CHECK_CUDA(cudaGetDeviceProperties(&prop, device_));
    char bus[32] = {};
    DSA_CHECK_CUDA(cudaDeviceGetPCIBusId(bus, sizeof bus, device_));
    bus_id_ = bus;
    name_ = "GPU " + std::to_string(device_) + ": " + prop.name + " (" + bus_id_ + ")";
    DSA_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (cudaEvent_t& e : events_) DSA_CHECK_CUDA(cudaEventCreate(&e));
  }
  ~CudaBackend() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override { return name_; }
  std::string device_id() const override { return bus_id_; }

  void load_kv(const io::KvCache& kv) override {
    // Checked up front so a too-large workload fails with the sizes, before any kernel runs.
    const size_t need = kv.index_k.size() + 2 * (kv.ckv.size() + kv.kpe.size());
    size_t free_bytes = 0, total = 0;
    DSA_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total));
    DSA_REQUIRE(need < free_bytes, "dsa-run: the KV caches need ", double(need) / 1e9, " GB on ", name_, ", which has ",
                double(free_bytes) / 1e9, " GB free");
    num_pages_ = kv.num_pages;
    index_k_ = index_k_buf_.upload(kv.index_k, stream_);
    ckv_ = ckv_buf_.upload(kv.ckv, stream_);
    kpe_ = kpe_buf_.upload(kv.kpe, stream_);
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }

  void reserve(io::Stage stage, int64_t max_rows, int32_t max_seq_len, int64_t max_num_pages) override {
    if (max_rows <= 0) return;
    const size_t n = static_cast<size_t>(max_rows);
    const bool index = stage != io::Stage::attention, attend = stage != io::Stage::indexer;
    struct Need {
      DeviceBuffer* buffer;
      size_t bytes;
    };
    std::vector<Need> needs = {{&topk_buf_, n * kTopK * sizeof(int32_t)}};
    if (index) {
      needs.push_back({&q_index_buf_, n * kIndexHeads * kIndexHeadDim});
      needs.push_back({&weights_buf_, n * kIndexHeads * sizeof(float)});
      needs.push_back({&seq_lens_buf_, n * sizeof(int32_t)});
      needs.push_back({&block_table_buf_, n * static_cast<size_t>(max_num_pages) * sizeof(int32_t)});
      needs.push_back({&workspace_, cuda::indexer_workspace_bytes(max_rows, max_seq_len)});
    }
    if (attend) {
      needs.push_back({&q_nope_buf_, n * kHeads * kCkvDim * sizeof(uint16_t)});
      needs.push_back({&q_pe_buf_, n * kHeads * kKpeDim * sizeof(uint16_t)});
      needs.push_back({&output_buf_, n * kHeads * kCkvDim * sizeof(uint16_t)});
      needs.push_back({&lse_buf_, n * kHeads * sizeof(float)});
      needs.push_back({&attention_ws_, cuda::attention_workspace_bytes(max_rows)});
    }
    size_t total = 0;
    for (const Need& need : needs) total += need.bytes;
    size_t free_bytes = 0, device_bytes = 0;
    DSA_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &device_bytes));
    DSA_REQUIRE(total < free_bytes, "dsa-run: batch slices of up to ", max_rows, " rows (seq_len up to ", max_seq_len,
                ") need ", double(total) / 1e9, " GB on ", name_, " beside the KV caches, which leave ",
                double(free_bytes) / 1e9, " GB free: use more ranks or smaller batches");
    for (const Need& need : needs) need.buffer->reserve(std::max<size_t>(need.bytes, 1));
  }

  void indexer(const io::QueryRows& rows, int32_t* topk) override {
    begin();
    upload_indexer_inputs(rows);
    mark(Phase::upload);
    launch_indexer(rows);
    mark(Phase::index);
    download(topk, d_topk_, rows.count * kTopK);
    mark(Phase::download);
    finish();
  }

  void attention(const io::QueryRows& rows, const int32_t* sparse_indices, float sm_scale, uint16_t* output,
                 float* lse) override {
    begin();
    int32_t* ids = static_cast<int32_t*>(topk_buf_.reserve(size_t(rows.count) * kTopK * sizeof(int32_t)));
    DSA_CHECK_CUDA(cudaMemcpyAsync(ids, sparse_indices, size_t(rows.count) * kTopK * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, stream_));
    upload_attention_inputs(rows);
    mark(Phase::upload);
    launch_attention(rows, ids, sm_scale);
    mark(Phase::attend);
    download(output, d_output_, rows.count * kHeads * kCkvDim);
    download(lse, d_lse_, rows.count * kHeads);
    mark(Phase::download);
    finish();
  }

  void pipeline(const io::QueryRows& rows, float sm_scale, int32_t* topk, uint16_t* output, float* lse) override {
    begin();
    upload_indexer_inputs(rows);
    upload_attention_inputs(rows);
    mark(Phase::upload);
    launch_indexer(rows);
    mark(Phase::index);
    launch_attention(rows, d_topk_, sm_scale);  // the indices stay on the device
    mark(Phase::attend);
    download(topk, d_topk_, rows.count * kTopK);
    download(output, d_output_, rows.count * kHeads * kCkvDim);
    download(lse, d_lse_, rows.count * kHeads);
    mark(Phase::download);
    finish();
  }

  ComputeTimes last_times() const override { return times_; }

  plan::CostModel cost_model() const override {
    // Placeholder figures until calibration: ~4 TB/s over ~132 B per scored token.
    plan::CostModel m;
    m.seconds_per_unit = 5e-11;
    m.per_rank_seconds = 5e-5;
    m.gather_bytes_per_second = 2e10;
    m.gather_latency_seconds = 2e-5;
    return m;
  }

 private:
  void upload_indexer_inputs(const io::QueryRows& rows) {
    ip_ = IndexerParams{};
    ip_.index_k = index_k_;
    ip_.num_pages = num_pages_;
    ip_.q_index = q_index_buf_.upload(rows.q_index, stream_);
    ip_.weights = weights_buf_.upload(rows.weights, stream_);
    ip_.seq_lens = seq_lens_buf_.upload(rows.seq_lens, stream_);
    ip_.block_table = block_table_buf_.upload(rows.block_table, stream_);
    ip_.max_num_pages = rows.max_num_pages;
    ip_.rows = rows.count;
    ip_.max_seq_len = rows.seq_lens.empty() ? 0 : *std::max_element(rows.seq_lens.begin(), rows.seq_lens.end());
  }

  void launch_indexer(const io::QueryRows& rows) {
    d_topk_ = static_cast<int32_t*>(topk_buf_.reserve(size_t(rows.count) * kTopK * sizeof(int32_t)));
    ip_.topk_indices = d_topk_;
    const size_t ws = cuda::indexer_workspace_bytes(ip_.rows, ip_.max_seq_len);
    cuda::indexer(ip_, workspace_.reserve(std::max<size_t>(ws, 1)), ws, stream_);
  }

  void upload_attention_inputs(const io::QueryRows& rows) {
    ap_ = AttentionParams{};
    ap_.q_nope = q_nope_buf_.upload(rows.q_nope, stream_);
    ap_.q_pe = q_pe_buf_.upload(rows.q_pe, stream_);
  }

  void launch_attention(const io::QueryRows& rows, const int32_t* ids, float sm_scale) {
    ap_.ckv = ckv_;
    ap_.kpe = kpe_;
    ap_.num_pages = num_pages_;
    ap_.sparse_indices = ids;
    ap_.rows = rows.count;
    ap_.sm_scale = sm_scale;
    d_output_ = static_cast<uint16_t*>(output_buf_.reserve(size_t(rows.count) * kHeads * kCkvDim * 2));
    d_lse_ = static_cast<float*>(lse_buf_.reserve(size_t(rows.count) * kHeads * sizeof(float)));
    ap_.output = d_output_;
    ap_.lse = d_lse_;
    const size_t ws = cuda::attention_workspace_bytes(ap_.rows);
    cuda::attention(ap_, attention_ws_.reserve(std::max<size_t>(ws, 1)), ws, stream_);
  }

  // Phase timing with events on the stream: begin(), mark() after each phase, finish() waits
  // for the stream and turns the marks into ComputeTimes.
  enum class Phase { upload, index, attend, download };
  void begin() {
    marks_ = 0;
    DSA_CHECK_CUDA(cudaEventRecord(events_[0], stream_));
  }
  void mark(Phase phase) {
    phases_[marks_] = phase;
    DSA_CHECK_CUDA(cudaEventRecord(events_[++marks_], stream_));
  }
  void finish() {
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream_));
    times_ = ComputeTimes{};
    for (int i = 0; i < marks_; ++i) {
      float ms = 0;
      DSA_CHECK_CUDA(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
      const double s = double(ms) * 1e-3;
      switch (phases_[i]) {
        case Phase::upload: times_.upload += s; break;
        case Phase::index: times_.index += s; break;
        case Phase::attend: times_.attend += s; break;
        case Phase::download: times_.download += s; break;
      }
    }
  }

  template <typename T>
  void download(T* host, const T* dev, int64_t n) {
    DSA_CHECK_CUDA(cudaMemcpyAsync(host, dev, size_t(n) * sizeof(T), cudaMemcpyDeviceToHost, stream_));
  }

  int device_;
  std::string name_, bus_id_;
  cudaStream_t stream_ = nullptr;
  int64_t num_pages_ = 0;
  const uint8_t* index_k_ = nullptr;
  const uint16_t* ckv_ = nullptr;
  const uint16_t* kpe_ = nullptr;
  int32_t* d_topk_ = nullptr;
  uint16_t* d_output_ = nullptr;
  float* d_lse_ = nullptr;
  DeviceBuffer index_k_buf_, ckv_buf_, kpe_buf_;
  DeviceBuffer q_index_buf_, weights_buf_, seq_lens_buf_, block_table_buf_, q_nope_buf_, q_pe_buf_;
  DeviceBuffer topk_buf_, output_buf_, lse_buf_, workspace_, attention_ws_;
  IndexerParams ip_;
  AttentionParams ap_;
  cudaEvent_t events_[5] = {};
  Phase phases_[4] = {};
  int marks_ = 0;
  ComputeTimes times_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

int visible_cuda_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

}  // namespace dsa::run
