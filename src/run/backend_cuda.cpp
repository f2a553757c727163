// The CUDA backend: KV caches uploaded once, row buffers reused across batches (grown, never
// shrunk), the kernels of kernels/indexer and kernels/attention on one stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/attention/attention_tuning.hpp"
#include "kernels/indexer/indexer.hpp"
#include "src/run/backend.hpp"

namespace dsa::run {
namespace {

// An allocation that grows to the largest size asked for (never shrinks): device memory, or
// page-locked host memory, which downloads fill at the full link rate with no driver staging.
enum class Memory { device, pinned_host };

template <Memory kind>
class GrowingBuffer {
 public:
  GrowingBuffer() = default;
  GrowingBuffer(const GrowingBuffer&) = delete;
  GrowingBuffer& operator=(const GrowingBuffer&) = delete;
  ~GrowingBuffer() { release(); }

  void* reserve(size_t bytes) {
    if (bytes > bytes_) {
      DSA_CHECK_CUDA(release());
      if constexpr (kind == Memory::device) DSA_CHECK_CUDA(cudaMalloc(&ptr_, bytes));
      else DSA_CHECK_CUDA(cudaMallocHost(&ptr_, bytes));
      bytes_ = bytes;
    }
    return ptr_;
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  cudaError_t release() {
    const cudaError_t e = kind == Memory::device ? cudaFree(ptr_) : cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    return e;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};
using DeviceBuffer = GrowingBuffer<Memory::device>;
using PinnedBuffer = GrowingBuffer<Memory::pinned_host>;

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
    index_k_buf_.reserve(std::max<size_t>(kv.index_k.size(), 1));
    ckv_buf_.reserve(std::max<size_t>(kv.ckv.size() * 2, 1));
    kpe_buf_.reserve(std::max<size_t>(kv.kpe.size() * 2, 1));
    index_k_ = upload(index_k_buf_, kv.index_k);
    ckv_ = upload(ckv_buf_, kv.ckv);
    kpe_ = upload(kpe_buf_, kv.kpe);
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }

  void reserve(io::Stage stage, int64_t max_rows, int64_t max_held, int32_t max_seq_len,
               int64_t max_num_pages) override {
    const size_t n = static_cast<size_t>(std::max<int64_t>(max_rows, 0));
    const size_t held = static_cast<size_t>(std::max<int64_t>(max_held, max_rows));
    const bool index = stage != io::Stage::attention, attend = stage != io::Stage::indexer;
    struct Need {
      DeviceBuffer* buffer;
      size_t bytes;
    };
    // topk: the indexer's results (held rows) or attention's input ids (computed rows).
    std::vector<Need> needs = {{&topk_buf_, (index ? held : n) * kTopK * sizeof(int32_t)}};
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
      needs.push_back({&output_buf_, held * kHeads * kCkvDim * sizeof(uint16_t)});
      needs.push_back({&lse_buf_, held * kHeads * sizeof(float)});
      needs.push_back({&attention_ws_, cuda::attention_workspace_bytes(max_rows)});
    }
    size_t total = 0;
    for (const Need& need : needs) total += need.bytes > need.buffer->bytes() ? need.bytes : 0;
    size_t free_bytes = 0, device_bytes = 0;
    DSA_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &device_bytes));
    DSA_REQUIRE(total < free_bytes, "dsa-run: batch slices of up to ", max_rows, " rows (", held,
                " held; seq_len up to ", max_seq_len, ") need ", double(total) / 1e9, " GB more on ", name_,
                " beside the KV caches, which leave ", double(free_bytes) / 1e9,
                " GB free: use more ranks or smaller batches");
    for (const Need& need : needs) need.buffer->reserve(std::max<size_t>(need.bytes, 1));
    // Two sets of page-locked host buffers for the rows (uploads at the full link rate) and
    // two for the results (downloads likewise).
    for (StagingSet& set : staging_) {
      if (index) {
        set.seq_lens.reserve(n * sizeof(int32_t));
        set.block_table.reserve(n * static_cast<size_t>(max_num_pages) * sizeof(int32_t));
        set.q_index.reserve(n * kIndexHeads * kIndexHeadDim);
        set.weights.reserve(n * kIndexHeads * sizeof(float));
      }
      if (attend) {
        set.q_nope.reserve(n * kHeads * kCkvDim * sizeof(uint16_t));
        set.q_pe.reserve(n * kHeads * kKpeDim * sizeof(uint16_t));
      }
      if (stage == io::Stage::attention) set.sparse_indices.reserve(n * kTopK * sizeof(int32_t));
    }
    staging_rows_ = static_cast<int64_t>(n);
    staging_pages_ = max_num_pages;
    for (HostSet& set : host_) {
      if (index) set.topk.reserve(held * kTopK * sizeof(int32_t));
      if (attend) {
        set.output.reserve(held * kHeads * kCkvDim * sizeof(uint16_t));
        set.lse.reserve(held * kHeads * sizeof(float));
      }
    }
    stage_ = stage;
  }

  io::RowBuffers staging(int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: staging slot ", slot);
    StagingSet& set = staging_[slot];
    io::RowBuffers b;
    b.capacity = staging_rows_;
    b.max_num_pages = staging_pages_;
    b.seq_lens = static_cast<int32_t*>(set.seq_lens.get());
    b.block_table = static_cast<int32_t*>(set.block_table.get());
    b.q_index = static_cast<uint8_t*>(set.q_index.get());
    b.weights = static_cast<float*>(set.weights.get());
    b.q_nope = static_cast<uint16_t*>(set.q_nope.get());
    b.q_pe = static_cast<uint16_t*>(set.q_pe.get());
    b.sparse_indices = static_cast<int32_t*>(set.sparse_indices.get());
    return b;
  }

  void compute(io::Stage stage, const io::RowsView& rows, float sm_scale) override {
    DSA_REQUIRE(stage == stage_, "cuda backend: compute(", io::stage_name(stage), ") after reserve(",
                io::stage_name(stage_), ")");
    begin();
    const bool index = stage != io::Stage::attention, attend = stage != io::Stage::indexer;
    if (index) upload_indexer_inputs(rows);
    if (attend) upload_attention_inputs(rows);
    int32_t* ids = checked<int32_t>(topk_buf_, size_t(rows.count) * kTopK);
    if (stage == io::Stage::attention && rows.count > 0)
      DSA_CHECK_CUDA(cudaMemcpyAsync(ids, rows.sparse_indices, size_t(rows.count) * kTopK * sizeof(int32_t),
                                     cudaMemcpyHostToDevice, stream_));
    mark(Phase::upload);
    if (index) {
      launch_indexer(ids);
      mark(Phase::index);
    }
    if (attend) {
      launch_attention(rows, ids, sm_scale);  // pipeline: the indexer's ids never leave the device
      mark(Phase::attend);
    }
    finish();
  }

  ResultRows results() override {
    ResultRows r;
    if (stage_ != io::Stage::attention) r.topk = static_cast<int32_t*>(topk_buf_.get());
    if (stage_ != io::Stage::indexer) {
      r.output = static_cast<uint16_t*>(output_buf_.get());
      r.lse = static_cast<float*>(lse_buf_.get());
    }
    return r;
  }
  bool results_on_device() const override { return true; }

  ResultRows host_results(io::Stage stage, int64_t rows, int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: host slot ", slot);
    const ResultRows dev = results();
    ResultRows host;
    if (io::writes_topk(stage)) {
      host.topk = static_cast<int32_t*>(host_[slot].topk.get());
      download(host.topk, dev.topk, rows * kTopK);
    }
    if (io::writes_attention(stage)) {
      host.output = static_cast<uint16_t*>(host_[slot].output.get());
      host.lse = static_cast<float*>(host_[slot].lse.get());
      download(host.output, dev.output, rows * kHeads * kCkvDim);
      download(host.lse, dev.lse, rows * kHeads);
    }
    DSA_CHECK_CUDA(cudaStreamSynchronize(stream_));
    return host;
  }

  void* stream() const override { return stream_; }

  int64_t min_slice_rows(io::Stage stage) const override {
    if (stage == io::Stage::indexer) return 1;  // every row's top-k is the same in any call
    // Attention splits the rows of small calls over clusters of blocks (attention_plan): a
    // slice must be large enough to run one block per row, as the whole batch would.
    int64_t rows = 1;
    while (cuda::attention_plan(rows).splits > 1) ++rows;
    return rows;
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
  // The first `count` elements of a reserved buffer, refusing a slice larger than reserve() sized.
  template <typename T>
  T* checked(DeviceBuffer& buffer, size_t count) {
    DSA_REQUIRE(count * sizeof(T) <= buffer.bytes(), "cuda backend: a slice needs ", count * sizeof(T),
                " bytes of a buffer reserved with ", buffer.bytes());
    return static_cast<T*>(buffer.get());
  }
  // count elements from host (pinned or not) into the start of a reserved buffer.
  template <typename T>
  const T* upload(DeviceBuffer& buffer, const T* host, size_t count) {
    T* dst = checked<T>(buffer, count);
    if (count > 0) {
      DSA_REQUIRE(host != nullptr, "cuda backend: rows without a dataset the stage reads");
      DSA_CHECK_CUDA(cudaMemcpyAsync(dst, host, count * sizeof(T), cudaMemcpyHostToDevice, stream_));
    }
    return dst;
  }
  template <typename T>
  const T* upload(DeviceBuffer& buffer, const std::vector<T>& host) {
    return upload(buffer, host.data(), host.size());
  }

  void upload_indexer_inputs(const io::RowsView& rows) {
    const size_t n = static_cast<size_t>(rows.count);
    ip_ = IndexerParams{};
    ip_.index_k = index_k_;
    ip_.num_pages = num_pages_;
    ip_.q_index = upload(q_index_buf_, rows.q_index, n * kIndexHeads * kIndexHeadDim);
    ip_.weights = upload(weights_buf_, rows.weights, n * kIndexHeads);
    ip_.seq_lens = upload(seq_lens_buf_, rows.seq_lens, n);
    ip_.block_table = upload(block_table_buf_, rows.block_table, n * static_cast<size_t>(rows.max_num_pages));
    ip_.max_num_pages = rows.max_num_pages;
    ip_.rows = rows.count;
    ip_.max_seq_len = rows.count == 0 ? 0 : *std::max_element(rows.seq_lens, rows.seq_lens + rows.count);
  }

  void launch_indexer(int32_t* topk) {
    ip_.topk_indices = topk;
    const size_t ws = cuda::indexer_workspace_bytes(ip_.rows, ip_.max_seq_len);
    cuda::indexer(ip_, checked<uint8_t>(workspace_, std::max<size_t>(ws, 1)), ws, stream_);
  }

  void upload_attention_inputs(const io::RowsView& rows) {
    const size_t n = static_cast<size_t>(rows.count);
    ap_ = AttentionParams{};
    ap_.q_nope = upload(q_nope_buf_, rows.q_nope, n * kHeads * kCkvDim);
    ap_.q_pe = upload(q_pe_buf_, rows.q_pe, n * kHeads * kKpeDim);
  }

  void launch_attention(const io::RowsView& rows, const int32_t* ids, float sm_scale) {
    ap_.ckv = ckv_;
    ap_.kpe = kpe_;
    ap_.num_pages = num_pages_;
    ap_.sparse_indices = ids;
    ap_.rows = rows.count;
    ap_.sm_scale = sm_scale;
    ap_.output = checked<uint16_t>(output_buf_, size_t(rows.count) * kHeads * kCkvDim);
    ap_.lse = checked<float>(lse_buf_, size_t(rows.count) * kHeads);
    const size_t ws = cuda::attention_workspace_bytes(ap_.rows);
    cuda::attention(ap_, checked<uint8_t>(attention_ws_, std::max<size_t>(ws, 1)), ws, stream_);
  }

  // Phase timing with events on the stream: begin(), mark() after each phase, finish() waits
  // for the stream and turns the marks into ComputeTimes.
  enum class Phase { upload, index, attend };
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
  DeviceBuffer index_k_buf_, ckv_buf_, kpe_buf_;
  DeviceBuffer q_index_buf_, weights_buf_, seq_lens_buf_, block_table_buf_, q_nope_buf_, q_pe_buf_;
  DeviceBuffer topk_buf_, output_buf_, lse_buf_, workspace_, attention_ws_;
  struct HostSet {
    PinnedBuffer topk, output, lse;
  };
  HostSet host_[2];
  struct StagingSet {
    PinnedBuffer seq_lens, block_table, q_index, weights, q_nope, q_pe, sparse_indices;
  };
  StagingSet staging_[2];
  int64_t staging_rows_ = 0, staging_pages_ = 0;
  io::Stage stage_ = io::Stage::pipeline;
  IndexerParams ip_;
  AttentionParams ap_;
  cudaEvent_t events_[4] = {};
  Phase phases_[3] = {};
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
