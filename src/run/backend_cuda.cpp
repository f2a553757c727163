// The CUDA backend: KV caches uploaded once, row buffers reused across batches (grown, never
// shrunk), the kernels of kernels/indexer and kernels/attention on one stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
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
  // Device buffers for the rows of a slice; two where they fit, so that the next batch's rows
  // upload (upload_ahead) while this batch's kernels read theirs.
  struct InputSet {
    DeviceBuffer q_index, weights, seq_lens, block_table, q_nope, q_pe, ids;  // ids: attention's input
  };
  // An upload_ahead into an input set: the rows (a view of staging set `slot`) of the stage
  // reserve() sized for, not yet used by compute(); enqueued or still to be, in chunks of `chunk`
  // rows, each completing a pair of events (ahead_index_: the indexer's inputs of the chunk,
  // ahead_all_: all of them).
  struct Ahead {
    bool valid = false, enqueued = false;
    int slot = 0;
    io::RowsView rows;
    int64_t chunk = 1;
    int chunks() const { return static_cast<int>((rows.count + chunk - 1) / chunk); }
    bool same_rows(const io::RowsView& r) const {
      return r.count == rows.count && r.max_num_pages == rows.max_num_pages &&
             r.seq_lens == rows.seq_lens && r.block_table == rows.block_table && r.q_index == rows.q_index &&
             r.weights == rows.weights && r.q_nope == rows.q_nope && r.q_pe == rows.q_pe &&
             r.sparse_indices == rows.sparse_indices;
    }
  };

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
    DSA_CHECK_CUDA(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    DSA_CHECK_CUDA(cudaStreamCreateWithFlags(&download_stream_, cudaStreamNonBlocking));
    for (cudaEvent_t& e : events_) DSA_CHECK_CUDA(cudaEventCreate(&e));
    for (cudaEvent_t& e : uploaded_) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (cudaEvent_t& e : uploaded_index_) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (cudaEvent_t& e : computed_) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (cudaEvent_t& e : results_down_) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (cudaEvent_t& e : host_down_) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    DSA_CHECK_CUDA(cudaEventCreateWithFlags(&results_ready_, cudaEventDisableTiming));
    for (auto& set : ahead_index_)
      for (cudaEvent_t& e : set) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (auto& set : ahead_all_)
      for (cudaEvent_t& e : set) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (cudaEvent_t& e : inputs_free_) DSA_CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    // Tuning knobs for measurements (every rank must see the same; BatchStep checks they agree).
    if (const char* v = std::getenv("DSA_PIECE_ROWS")) piece_rows_ = gather_piece_rows_ = std::max<int64_t>(1, std::atoll(v));
    if (const char* v = std::getenv("DSA_MAX_PIECES")) max_pieces_set_ = std::clamp(std::atoi(v), 1, kPieceCap);
    if (const char* v = std::getenv("DSA_GATHER_TAPER_ROWS")) gather_taper_rows_set_ = std::max<int64_t>(0, std::atoll(v));
    if (const char* v = std::getenv("DSA_GATHER_GROWTH")) gather_growth_ = std::clamp(std::atof(v), 0.25, 4.0);
    if (const char* v = std::getenv("DSA_RESULT_SETS")) max_result_sets_ = std::clamp(std::atoi(v), 1, 2);
    if (const char* v = std::getenv("DSA_UPLOAD_AHEAD")) max_input_sets_ = std::atoi(v) == 0 ? 1 : 2;
  }
  ~CudaBackend() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    for (cudaEvent_t e : uploaded_) cudaEventDestroy(e);
    for (cudaEvent_t e : uploaded_index_) cudaEventDestroy(e);
    for (cudaEvent_t e : computed_) cudaEventDestroy(e);
    for (cudaEvent_t e : results_down_) cudaEventDestroy(e);
    for (cudaEvent_t e : host_down_) cudaEventDestroy(e);
    cudaEventDestroy(results_ready_);
    for (auto& set : ahead_index_)
      for (cudaEvent_t e : set) cudaEventDestroy(e);
    for (auto& set : ahead_all_)
      for (cudaEvent_t e : set) cudaEventDestroy(e);
    for (cudaEvent_t e : inputs_free_) cudaEventDestroy(e);
    cudaStreamDestroy(download_stream_);
    cudaStreamDestroy(copy_stream_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override { return name_; }
  std::string device_id() const override { return bus_id_; }

  void load_kv(const io::KvCache& kv) override {
    allocate_kv(kv.num_pages, kv.index_k.size(), kv.ckv.size(), kv.kpe.size());
    upload(index_k_buf_, kv.index_k.data(), 0, kv.index_k.size());
    upload(ckv_buf_, kv.ckv.data(), 0, kv.ckv.size());
    upload(kpe_buf_, kv.kpe.data(), 0, kv.kpe.size());
    DSA_CHECK_CUDA(cudaStreamSynchronize(copy_stream_));
  }

  void load_kv(io::Stage stage, int64_t num_pages, const KvPageReader& read) override {
    const bool index = io::stage_needs_indexer_data(stage), attend = io::stage_needs_attention_data(stage);
    // Bytes of one page of each array the stage reads.
    const size_t index_bytes = index ? kIndexPageBytes : 0;
    const size_t ckv_bytes = attend ? size_t(kPageSize) * kCkvDim * 2 : 0;
    const size_t kpe_bytes = attend ? size_t(kPageSize) * kKpeDim * 2 : 0;
    const size_t pages = static_cast<size_t>(std::max<int64_t>(num_pages, 0));
    allocate_kv(num_pages, pages * index_bytes, pages * ckv_bytes / 2, pages * kpe_bytes / 2);
    const size_t page_bytes = index_bytes + ckv_bytes + kpe_bytes;
    if (pages == 0 || page_bytes == 0) return;
    // Runs of pages through two page-locked buffers: run i + 1 is read while run i uploads, so
    // the caches go from the file to the GPU at the slower of the two rates, with no host copy
    // of the whole caches (whose first touch of fresh memory, page by page, took longer than
    // the reads themselves: 9 s for 11.5 GB on an H200 host). No kernel runs during a load, so
    // two of the pieces' upload events serve to know when a buffer is free again.
    const int64_t run = static_cast<int64_t>(std::max<size_t>(1, kKvRunBytes / page_bytes));
    PinnedBuffer bounce[2];
    // Destroyed before the buffers: no copy still reads them when they go (a read that throws
    // leaves copies in flight).
    struct Drain {
      cudaStream_t stream;
      ~Drain() { cudaStreamSynchronize(stream); }
    } drain{copy_stream_};
    auto* index_dst = static_cast<uint8_t*>(index_k_buf_.get());
    auto* ckv_dst = static_cast<uint8_t*>(ckv_buf_.get());
    auto* kpe_dst = static_cast<uint8_t*>(kpe_buf_.get());
    auto copy = [&](uint8_t* dst, const void* src, size_t bytes) {
      if (bytes > 0) DSA_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copy_stream_));
    };
    for (int64_t first = 0, i = 0; first < num_pages; first += run, ++i) {
      const int64_t count = std::min(run, num_pages - first);
      const size_t n = static_cast<size_t>(count), at = static_cast<size_t>(first);
      const int b = static_cast<int>(i % 2);
      if (i >= 2) DSA_CHECK_CUDA(cudaEventSynchronize(uploaded_[b]));  // its previous run is up
      auto* host = static_cast<uint8_t*>(bounce[b].reserve(static_cast<size_t>(run) * page_bytes));
      io::KvPages into;
      if (index) into.index_k = host;
      if (attend) {
        into.ckv = reinterpret_cast<uint16_t*>(host + n * index_bytes);
        into.kpe = reinterpret_cast<uint16_t*>(host + n * (index_bytes + ckv_bytes));
      }
      read(first, count, into);
      copy(index_dst + at * index_bytes, into.index_k, n * index_bytes);
      copy(ckv_dst + at * ckv_bytes, into.ckv, n * ckv_bytes);
      copy(kpe_dst + at * kpe_bytes, into.kpe, n * kpe_bytes);
      DSA_CHECK_CUDA(cudaEventRecord(uploaded_[b], copy_stream_));
    }
    DSA_CHECK_CUDA(cudaStreamSynchronize(copy_stream_));
  }

  void reserve(io::Stage stage, int64_t max_rows, int64_t max_held, int32_t max_seq_len,
               int64_t max_num_pages) override {
    // Buffers may move: no upload_ahead survives (nor runs while they do).
    std::lock_guard<std::mutex> lock(ahead_mutex_);
    DSA_CHECK_CUDA(cudaStreamSynchronize(copy_stream_));
    for (Ahead& a : ahead_) a.valid = false;
    const size_t n = static_cast<size_t>(std::max<int64_t>(max_rows, 0));
    const size_t held = static_cast<size_t>(std::max<int64_t>(max_held, max_rows));
    const bool index = stage != io::Stage::attention, attend = stage != io::Stage::indexer;
    struct Need {
      DeviceBuffer* buffer;
      size_t bytes;
    };
    // Per result set: topk (the indexer's results), output and lse, for the rows held.
    auto result_needs = [&](ResultSet& set, std::vector<Need>& into) {
      if (index) into.push_back({&set.topk, held * kTopK * sizeof(int32_t)});
      if (attend) {
        into.push_back({&set.output, held * kHeads * kCkvDim * sizeof(uint16_t)});
        into.push_back({&set.lse, held * kHeads * sizeof(float)});
      }
    };
    // Per input set: the rows of a slice the stage reads (attention's ids included).
    auto input_needs = [&](InputSet& set, std::vector<Need>& into) {
      if (index) {
        into.push_back({&set.q_index, n * kIndexHeads * kIndexHeadDim});
        into.push_back({&set.weights, n * kIndexHeads * sizeof(float)});
        into.push_back({&set.seq_lens, n * sizeof(int32_t)});
        into.push_back({&set.block_table, n * static_cast<size_t>(max_num_pages) * sizeof(int32_t)});
      }
      if (attend) {
        into.push_back({&set.q_nope, n * kHeads * kCkvDim * sizeof(uint16_t)});
        into.push_back({&set.q_pe, n * kHeads * kKpeDim * sizeof(uint16_t)});
      }
      if (stage == io::Stage::attention) into.push_back({&set.ids, n * kTopK * sizeof(int32_t)});
    };
    std::vector<Need> needs;
    result_needs(dev_[0], needs);
    input_needs(in_[0], needs);
    if (index) needs.push_back({&workspace_, cuda::indexer_workspace_bytes(max_rows, max_seq_len)});
    if (attend) needs.push_back({&attention_ws_, cuda::attention_workspace_bytes(max_rows)});
    auto more_bytes = [](const std::vector<Need>& list) {
      size_t total = 0;
      for (const Need& need : list) total += need.bytes > need.buffer->bytes() ? need.bytes : 0;
      return total;
    };
    size_t total = more_bytes(needs);
    size_t free_bytes = 0, device_bytes = 0;
    DSA_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &device_bytes));
    // A second set of `extra` where `wanted` allows it and it fits beside the rest (with a
    // margin): then 2 sets, its buffers added to the needs; else 1.
    auto second_set_if_fits = [&](const std::vector<Need>& extra, int wanted) {
      if (wanted < 2 || total + more_bytes(extra) + (size_t{256} << 20) >= free_bytes) return 1;
      needs.insert(needs.end(), extra.begin(), extra.end());
      total += more_bytes(extra);
      return 2;
    };
    // A second result set, so that one batch's results go down while the next batch computes
    // (with one, compute() waits for them); then a second input set, for upload_ahead.
    std::vector<Need> second_results, second_inputs;
    result_needs(dev_[1], second_results);
    input_needs(in_[1], second_inputs);
    result_sets_ = second_set_if_fits(second_results, max_result_sets_);
    res_ %= result_sets_;
    input_sets_ = second_set_if_fits(second_inputs, max_input_sets_);
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
    {
      // The set is about to be rewritten: an upload_ahead of its previous rows must have read
      // them, and no later compute() may take its copies for the new rows.
      std::lock_guard<std::mutex> lock(ahead_mutex_);
      for (int s = 0; s < 2; ++s)
        if (ahead_[s].valid && ahead_[s].slot == slot) forget_ahead(s);
    }
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

  void upload_ahead(io::Stage stage, const io::RowsView& rows, int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: staging slot ", slot);
    std::lock_guard<std::mutex> lock(ahead_mutex_);
    if (input_sets_ < 2 || stage != stage_ || rows.count <= 0) return;
    DSA_REQUIRE(rows.count <= staging_rows_, "cuda backend: upload_ahead of ", rows.count, " rows, reserved for ",
                staging_rows_);
    // An input set that neither the compute() in progress nor another pending upload uses.
    int set = -1;
    for (int s = 0; s < input_sets_ && set < 0; ++s)
      if (!ahead_[s].valid && s != computing_set_) set = s;
    if (set < 0) return;  // compute() uploads these rows itself
    Ahead& a = ahead_[set];
    a = Ahead{};
    a.valid = true;
    a.slot = slot;
    a.rows = rows;
    a.chunk = std::max<int64_t>(kAheadChunkRows, (rows.count + kAheadChunks - 1) / kAheadChunks);
    // The copies go after those of a compute() in progress (which waits for its own first
    // piece's): where it has not enqueued them all yet, it enqueues these after them.
    if (computing_set_ < 0 || compute_copies_enqueued_) {
      DSA_CHECK_CUDA(cudaSetDevice(device_));  // the caller may be another thread
      enqueue_ahead(set);
    }
  }

  using Backend::compute;
  void compute(io::Stage stage, const io::RowsView& rows, float sm_scale, PieceListener* listener) override {
    DSA_REQUIRE(stage == stage_, "cuda backend: compute(", io::stage_name(stage), ") after reserve(",
                io::stage_name(stage_), ")");
    const bool index = stage != io::Stage::attention, attend = stage != io::Stage::indexer;
    // The input set: the one an upload_ahead of these very rows filled (no copies of our own),
    // else one that no pending upload_ahead holds.
    int set = -1;
    int64_t ahead_chunk = 0;  // > 0: the rows came ahead, a pair of events per this many rows
    {
      std::lock_guard<std::mutex> lock(ahead_mutex_);
      for (int s = 0; s < input_sets_ && set < 0; ++s) {
        Ahead& a = ahead_[s];
        if (!a.valid || !a.same_rows(rows)) continue;
        if (!a.enqueued) enqueue_ahead(s);
        a.valid = false;
        set = s;
        ahead_chunk = a.chunk;
      }
      for (int s = 0; s < input_sets_ && set < 0; ++s)
        if (!ahead_[s].valid) set = s;
      if (set < 0) {  // both sets hold other rows' uploads (never in the job): forget the first
        forget_ahead(0);
        set = 0;
      }
      computing_set_ = set;
      compute_copies_enqueued_ = ahead_chunk > 0;
    }
    struct Computing {  // however compute() ends, no compute() is in progress after it
      CudaBackend& b;
      ~Computing() {
        std::lock_guard<std::mutex> lock(b.ahead_mutex_);
        b.computing_set_ = -1;
        b.compute_copies_enqueued_ = false;
      }
    } computing{*this};
    InputSet& in = in_[set];
    // Large slices go in pieces: piece p+1's rows upload on the copy stream while piece p's
    // kernels run, and piece p's results can leave (listener) while piece p+1's run. Each piece
    // has at least min_slice_rows rows, so every row is computed as in one call of the whole
    // slice (results do not depend on the pieces). The pipeline's indexer waits only for the
    // indexer's inputs: attention's (two thirds of the bytes) upload while it runs.
    const plan::Pieces* told = listener ? listener->rule() : nullptr;
    const std::vector<int64_t> cuts = plan::piece_cuts(rows.count, told ? *told : pieces(stage, false));
    const int64_t n_pieces = static_cast<int64_t>(cuts.size()) - 1;
    auto piece_begin = [&](int64_t p) { return cuts[size_t(p)]; };
    // The result set's previous results must be down before new ones overwrite it: the
    // downloads host_results_async or download_rows enqueued.
    DSA_CHECK_CUDA(cudaStreamWaitEvent(stream_, results_down_[res_], 0));
    begin();
    DSA_CHECK_CUDA(cudaStreamWaitEvent(copy_stream_, events_[0], 0));  // after the previous call's work
    // Each piece's copies are enqueued just before its kernels, not all pieces' first: the first
    // kernels would otherwise wait for the host to enqueue every copy (~0.1 ms for 1024 rows),
    // and the copy engine still has piece p+1 well before piece p's kernels end.
    for (int64_t p = 0; p < n_pieces; ++p) {
      const int64_t r0 = piece_begin(p), r1 = piece_begin(p + 1);
      // Uploaded ahead: the piece waits for the chunk holding its last row (chunks upload in order).
      const int64_t chunk = ahead_chunk > 0 ? std::max<int64_t>(r1 - 1, 0) / ahead_chunk : 0;
      if (ahead_chunk == 0) upload_rows(in, rows, r0, r1, uploaded_index_[p], uploaded_[p]);
      int32_t* ids = index ? checked<int32_t>(dev_[res_].topk, size_t(rows.count) * kTopK) + r0 * kTopK
                           : checked<int32_t>(in.ids, size_t(rows.count) * kTopK) + r0 * kTopK;
      if (index) {
        DSA_CHECK_CUDA(cudaStreamWaitEvent(stream_, ahead_chunk > 0 ? ahead_index_[set][chunk] : uploaded_index_[p], 0));
        mark(Phase::upload);  // the upload time the kernels waited for
        launch_indexer(in, rows, r0, r1, ids);
        mark(Phase::index);
      }
      if (attend) {
        DSA_CHECK_CUDA(cudaStreamWaitEvent(stream_, ahead_chunk > 0 ? ahead_all_[set][chunk] : uploaded_[p], 0));
        mark(Phase::upload);
        launch_attention(in, r0, r1, ids, sm_scale);  // pipeline: the indexer's ids never leave the device
        mark(Phase::attend);
      }
      if (listener) {
        DSA_CHECK_CUDA(cudaEventRecord(computed_[p], stream_));
        listener->piece_enqueued(int(p), r0, r1, computed_[p]);
      }
    }
    {
      // Our copies are all enqueued: an upload_ahead that came meanwhile goes after them.
      std::lock_guard<std::mutex> lock(ahead_mutex_);
      compute_copies_enqueued_ = true;
      for (int s = 0; s < input_sets_; ++s)
        if (ahead_[s].valid && !ahead_[s].enqueued) enqueue_ahead(s);
    }
    DSA_CHECK_CUDA(cudaEventRecord(inputs_free_[set], stream_));  // for the next upload into this set
    finish();
  }

  plan::Pieces pieces(io::Stage stage, bool alone) const override {
    const int64_t least = min_slice_rows(stage);
    // Tapered end pieces have min_rows / 2 rows or more: still at least min_slice_rows.
    const int most = max_pieces_set_.value_or(stage == io::Stage::pipeline  ? kMaxPiecesPipeline
                                              : stage == io::Stage::indexer ? kMaxPiecesIndexer
                                                                            : kMaxPiecesAttention);
    if (alone) return {std::max<int64_t>(piece_rows_, 2 * least), most, true};
    // A streamed gather across ranks: larger pieces (an NCCL group each), but a slice too short
    // for two of them still goes in two of at least piece_rows_; tapered where every slice of
    // the batch is long (the pipeline's; attention's never, see kGatherTaperRows); the indexer's
    // grow instead (see gather_growth_).
    const bool grow = stage == io::Stage::indexer && gather_growth_ != 1;
    const int64_t taper_rows =
        grow ? 0 : gather_taper_rows_set_.value_or(stage == io::Stage::attention ? 0 : kGatherTaperRows);
    return {std::max<int64_t>(gather_piece_rows_, taper_rows > 0 ? 2 * least : least),
            most,
            taper_rows > 0,
            std::max<int64_t>(piece_rows_, least),
            taper_rows,
            grow ? gather_growth_ : 1.0};
  }

  ResultRows results() override {
    ResultRows r;
    if (stage_ != io::Stage::attention) r.topk = static_cast<int32_t*>(dev_[res_].topk.get());
    if (stage_ != io::Stage::indexer) {
      r.output = static_cast<uint16_t*>(dev_[res_].output.get());
      r.lse = static_cast<float*>(dev_[res_].lse.get());
    }
    return r;
  }
  void use_result_set(int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: result set ", slot);
    res_ = slot % result_sets_;
  }
  bool results_on_device() const override { return true; }

  ResultRows host_results(io::Stage stage, int64_t rows, int slot) override {
    const ResultRows host = host_results_async(stage, rows, slot);
    wait_host_results(slot);
    return host;
  }

  ResultRows host_results_async(io::Stage stage, int64_t rows, int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: host slot ", slot);
    // After everything on stream_ (the kernels, an unstreamed NCCL gather) and the pieces
    // download_rows enqueued on the download stream.
    DSA_CHECK_CUDA(cudaEventRecord(results_ready_, stream_));
    DSA_CHECK_CUDA(cudaStreamWaitEvent(download_stream_, results_ready_, 0));
    const ResultRows host = enqueue_download(stage, 0, rows, slot, download_stream_);
    DSA_CHECK_CUDA(cudaEventRecord(host_down_[slot], download_stream_));     // for wait_host_results
    DSA_CHECK_CUDA(cudaEventRecord(results_down_[res_], download_stream_));  // for compute() into this set
    return host;
  }

  void wait_host_results(int slot) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: host slot ", slot);
    DSA_CHECK_CUDA(cudaEventSynchronize(host_down_[slot]));
  }

  bool download_rows(io::Stage stage, int64_t r0, int64_t r1, int slot, void* ready) override {
    DSA_REQUIRE(slot == 0 || slot == 1, "cuda backend: host slot ", slot);
    DSA_REQUIRE(ready != nullptr, "cuda backend: download_rows without an event");
    // On its own stream, so that it runs beside the next piece's upload (copy_stream_) and
    // kernels (stream_): the three go to different engines.
    DSA_CHECK_CUDA(cudaStreamWaitEvent(download_stream_, static_cast<cudaEvent_t>(ready), 0));
    enqueue_download(stage, r0, r1, slot, download_stream_);
    return true;
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
    // Used only without calibration (--calibration none): round figures from H200 sweeps
    // (2026-11-23: 8192-row slices took 60 / 170 / 100 ps per work unit for the indexer /
    // attention / pipeline, upload included), and NCCL over NVLink.
    plan::CostModel m;
    m.seconds_per_unit = 1.2e-10;
    m.per_rank_seconds = 0;
    m.gather_bytes_per_second = 2e11;
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
  // Device memory for KV caches of num_pages pages (bytes of index_k, bf16 values of ckv and
  // kpe), checked up front so that a too-large workload fails with the sizes before any kernel runs.
  void allocate_kv(int64_t num_pages, size_t index_k_bytes, size_t ckv_values, size_t kpe_values) {
    const size_t need = index_k_bytes + 2 * (ckv_values + kpe_values);
    size_t free_bytes = 0, total = 0;
    DSA_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total));
    DSA_REQUIRE(need < free_bytes, "dsa-run: the KV caches need ", double(need) / 1e9, " GB on ", name_, ", which has ",
                double(free_bytes) / 1e9, " GB free");
    num_pages_ = num_pages;
    index_k_buf_.reserve(std::max<size_t>(index_k_bytes, 1));
    ckv_buf_.reserve(std::max<size_t>(ckv_values * 2, 1));
    kpe_buf_.reserve(std::max<size_t>(kpe_values * 2, 1));
    index_k_ = static_cast<const uint8_t*>(index_k_buf_.get());
    ckv_ = static_cast<const uint16_t*>(ckv_buf_.get());
    kpe_ = static_cast<const uint16_t*>(kpe_buf_.get());
  }

  // Elements [first, first + count) of host (pinned or not) to the same place in a reserved
  // buffer, on the copy stream.
  template <typename T>
  void upload(DeviceBuffer& buffer, const T* host, size_t first, size_t count) {
    T* dst = checked<T>(buffer, first + count);
    if (count == 0) return;
    DSA_REQUIRE(host != nullptr, "cuda backend: rows without a dataset the stage reads");
    DSA_CHECK_CUDA(cudaMemcpyAsync(dst + first, host + first, count * sizeof(T), cudaMemcpyHostToDevice, copy_stream_));
  }

  // Rows [r0, r1) of the slice to the same rows of input set `in`, on the copy stream: the
  // indexer's inputs the stage reads, then `index_up` recorded, then attention's, then `all_up`.
  void upload_rows(InputSet& in, const io::RowsView& rows, int64_t r0, int64_t r1, cudaEvent_t index_up,
                   cudaEvent_t all_up) {
    const size_t n = static_cast<size_t>(r1 - r0), w = static_cast<size_t>(rows.max_num_pages);
    auto up = [&](DeviceBuffer& buffer, const auto* host, size_t per_row) {
      upload(buffer, host, static_cast<size_t>(r0) * per_row, n * per_row);
    };
    if (io::stage_needs_indexer_data(stage_)) {
      up(in.q_index, rows.q_index, size_t(kIndexHeads) * kIndexHeadDim);
      up(in.weights, rows.weights, kIndexHeads);
      up(in.seq_lens, rows.seq_lens, 1);
      up(in.block_table, rows.block_table, w);
    }
    DSA_CHECK_CUDA(cudaEventRecord(index_up, copy_stream_));
    if (io::stage_needs_attention_data(stage_)) {
      up(in.q_nope, rows.q_nope, size_t(kHeads) * kCkvDim);
      up(in.q_pe, rows.q_pe, size_t(kHeads) * kKpeDim);
      if (io::stage_needs_sparse_indices(stage_)) up(in.ids, rows.sparse_indices, kTopK);
    }
    DSA_CHECK_CUDA(cudaEventRecord(all_up, copy_stream_));
  }

  // Drops ahead_[set], once its copies (if enqueued) have read the staging buffers. Called with
  // ahead_mutex_ held, possibly from another thread than compute()'s.
  void forget_ahead(int set) {
    Ahead& a = ahead_[set];
    if (a.enqueued) {
      DSA_CHECK_CUDA(cudaSetDevice(device_));
      DSA_CHECK_CUDA(cudaEventSynchronize(ahead_all_[set][a.chunks() - 1]));
    }
    a.valid = false;
  }

  // Enqueues the copies of ahead_[set] on the copy stream, once the last kernels that read that
  // input set are done. Called with ahead_mutex_ held.
  void enqueue_ahead(int set) {
    Ahead& a = ahead_[set];
    DSA_CHECK_CUDA(cudaStreamWaitEvent(copy_stream_, inputs_free_[set], 0));
    for (int c = 0; c < a.chunks(); ++c) {
      const int64_t r0 = c * a.chunk, r1 = std::min(r0 + a.chunk, a.rows.count);
      upload_rows(in_[set], a.rows, r0, r1, ahead_index_[set][c], ahead_all_[set][c]);
    }
    a.enqueued = true;
  }

  void launch_indexer(const InputSet& in, const io::RowsView& rows, int64_t r0, int64_t r1, int32_t* topk) {
    IndexerParams ip;
    ip.index_k = index_k_;
    ip.num_pages = num_pages_;
    ip.q_index = static_cast<const uint8_t*>(in.q_index.get()) + r0 * kIndexHeads * kIndexHeadDim;
    ip.weights = static_cast<const float*>(in.weights.get()) + r0 * kIndexHeads;
    ip.seq_lens = static_cast<const int32_t*>(in.seq_lens.get()) + r0;
    ip.block_table = static_cast<const int32_t*>(in.block_table.get()) + r0 * rows.max_num_pages;
    ip.max_num_pages = rows.max_num_pages;
    ip.rows = r1 - r0;
    ip.max_seq_len = r1 > r0 ? *std::max_element(rows.seq_lens + r0, rows.seq_lens + r1) : 0;
    ip.scored_pages = 0;
    for (int64_t r = r0; r < r1; ++r)
      if (rows.seq_lens[r] > kTopK) ip.scored_pages += pages_for(rows.seq_lens[r]);
    ip.topk_indices = topk;
    const size_t ws = cuda::indexer_workspace_bytes(ip.rows, ip.max_seq_len);
    cuda::indexer(ip, checked<uint8_t>(workspace_, std::max<size_t>(ws, 1)), ws, stream_);
  }

  void launch_attention(const InputSet& in, int64_t r0, int64_t r1, const int32_t* ids, float sm_scale) {
    AttentionParams ap;
    ap.q_nope = static_cast<const uint16_t*>(in.q_nope.get()) + r0 * kHeads * kCkvDim;
    ap.q_pe = static_cast<const uint16_t*>(in.q_pe.get()) + r0 * kHeads * kKpeDim;
    ap.ckv = ckv_;
    ap.kpe = kpe_;
    ap.num_pages = num_pages_;
    ap.sparse_indices = ids;
    ap.rows = r1 - r0;
    ap.sm_scale = sm_scale;
    ap.output = checked<uint16_t>(dev_[res_].output, size_t(r1) * kHeads * kCkvDim) + r0 * kHeads * kCkvDim;
    ap.lse = checked<float>(dev_[res_].lse, size_t(r1) * kHeads) + r0 * kHeads;
    const size_t ws = cuda::attention_workspace_bytes(ap.rows);
    cuda::attention(ap, checked<uint8_t>(attention_ws_, std::max<size_t>(ws, 1)), ws, stream_);
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

  // Result rows [r0, r1) of the stage's arrays, from the current result set into host set
  // `slot`, enqueued on `stream`; returns the host set's pointers.
  ResultRows enqueue_download(io::Stage stage, int64_t r0, int64_t r1, int slot, cudaStream_t stream) {
    const ResultRows dev = results();
    ResultRows host;
    auto down = [&](auto* to, const auto* from, int64_t per_row) {
      if (r1 > r0)
        DSA_CHECK_CUDA(cudaMemcpyAsync(to + r0 * per_row, from + r0 * per_row, size_t((r1 - r0) * per_row) * sizeof(*to),
                                       cudaMemcpyDeviceToHost, stream));
    };
    if (io::writes_topk(stage)) {
      host.topk = static_cast<int32_t*>(host_[slot].topk.get());
      down(host.topk, dev.topk, kTopK);
    }
    if (io::writes_attention(stage)) {
      host.output = static_cast<uint16_t*>(host_[slot].output.get());
      host.lse = static_cast<float*>(host_[slot].lse.get());
      down(host.output, dev.output, int64_t(kHeads) * kCkvDim);
      down(host.lse, dev.lse, kHeads);
    }
    return host;
  }

  int device_;
  std::string name_, bus_id_;
  cudaStream_t stream_ = nullptr;
  int64_t num_pages_ = 0;
  const uint8_t* index_k_ = nullptr;
  const uint16_t* ckv_ = nullptr;
  const uint16_t* kpe_ = nullptr;
  DeviceBuffer index_k_buf_, ckv_buf_, kpe_buf_;
  DeviceBuffer workspace_, attention_ws_;
  InputSet in_[2];
  int input_sets_ = 1;      // how many reserve() made
  int max_input_sets_ = 2;  // DSA_UPLOAD_AHEAD=0: one (upload_ahead does nothing; for comparisons)
  // upload_ahead may come from another thread: what it shares with compute() and staging().
  std::mutex ahead_mutex_;
  Ahead ahead_[2];
  int computing_set_ = -1;                // the input set of the compute() in progress, or -1
  bool compute_copies_enqueued_ = false;  // that compute() has enqueued all its own copies
  // An upload ahead goes in at most kAheadChunks chunks of at least kAheadChunkRows rows, so
  // that the first piece waits only for the first chunks where they are still on their way.
  static constexpr int kAheadChunks = 16;
  static constexpr int64_t kAheadChunkRows = 256;
  cudaEvent_t ahead_index_[2][kAheadChunks] = {};
  cudaEvent_t ahead_all_[2][kAheadChunks] = {};
  cudaEvent_t inputs_free_[2] = {};  // after the last kernels that read each input set
  // Two result sets where they fit (see use_result_set), else one.
  struct ResultSet {
    DeviceBuffer topk, output, lse;
  };
  ResultSet dev_[2];
  int res_ = 0;              // the set compute() writes
  int result_sets_ = 1;      // how many reserve() made
  int max_result_sets_ = 2;  // DSA_RESULT_SETS=1: one (for tests and comparisons)
  // After the downloads enqueued from each result set, and into each host set (never
  // recorded: nothing to wait for).
  cudaEvent_t results_down_[2] = {};
  cudaEvent_t host_down_[2] = {};
  cudaEvent_t results_ready_ = nullptr;
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
  // Pieces of at least 256 rows (smaller ones cost more in launches than they hide), at most 4
  // (but see below); those of a streamed gather across ranks of at least 512 where a slice has 1024 rows or more
  // (2 x H200, 2026-11-23: pipeline 2048 rows on 2 ranks 1.195-1.22 ms in 2 pieces of 512 per
  // rank against 1.254-1.27 in 4 of 256; the indexer as fast), else 2 of at least 256 (a
  // 512-row slice in one piece: attention 1024 rows 0.685 ms against 0.59). A streamed gather's
  // batch whose every slice has 3072 rows or more is tapered, but for attention (2 x H200,
  // 2026-11-23, 2 ranks over 1 at 8192 rows, slices of ~4096, tapered against equal pieces in
  // the same calls: pipeline 1.80-1.83x against 1.78x, indexer 1.71-1.80x against 1.74-1.75x;
  // attention 1.80-1.82x against 1.82-1.84x, its upload (26 KB a row) nearly as long as its
  // kernels, so that the extra piece's wait costs more than the half-size ends save; at 4096
  // rows no gain, and shorter slices lose by it: pipeline 2048 rows 1.72-1.74x against 1.76x).
  // Since the next batch's rows upload while a batch computes (upload_ahead), a batch's first
  // piece no longer waits for its upload, and pieces are for the streamed gather (and for rows
  // that did not come ahead): fewer pay where the kernels of each piece have a tail. 2 x H200,
  // 2026-11-23, two rounds, rows uploaded ahead, at most 2 / 3 / 4 pieces: pipeline 1 rank
  // 1.94-1.96 / 2.14-2.15 / 2.02-2.08 ms at 2048 rows, 3.71-3.74 / 3.89-3.91 / 3.85-3.88 at
  // 4096; 2 ranks 1.08-1.09 / 1.09 / 1.09-1.11 ms at 2048, 2.02-2.03 / 2.17-2.18 / 2.13-2.17 at
  // 4096; indexer 2 ranks at 8192 rows 1.29-1.30 ms with 3 against 1.31 with 4; attention, whose
  // upload (26 KB a row) is nearly as long as its kernels, 1.51-1.52 ms with 3 against
  // 1.45-1.46 with 4 at 4096 rows.
  // DSA_PIECE_ROWS (both), DSA_MAX_PIECES (up to kPieceCap) and DSA_GATHER_TAPER_ROWS (0: never)
  // override them for measurements.
  static constexpr int kPieceCap = 16;
  static constexpr size_t kKvRunBytes = size_t{64} << 20;  // pages per step of a KV load
  int64_t piece_rows_ = 256;
  int64_t gather_piece_rows_ = 512;
  static constexpr int kMaxPiecesPipeline = 2, kMaxPiecesIndexer = 3, kMaxPiecesAttention = 4;
  std::optional<int> max_pieces_set_;  // DSA_MAX_PIECES
  static constexpr int64_t kGatherTaperRows = 3072;  // every slice of the batch this long: tapered
  std::optional<int64_t> gather_taper_rows_set_;     // DSA_GATHER_TAPER_ROWS (then for attention too)
  // The indexer's gather pieces grow 1.5x each instead, untapered: its kernels take ~0.3 us a
  // row and its upload ~0.18 us a row (8.8 KB at ~50 GB/s), so the tapered rule's second piece
  // (twice the first) took longer to upload than the first piece's kernels ran; 1.5x keeps every
  // upload behind the kernels before it, and the first piece small. 2 x H200, 2026-11-23, three
  // interleaved rounds against the tapered rule (2 ranks over 1): 8192 rows 1.81 / 1.81 / 1.81x
  // against 1.79 / 1.77 / 1.79x, 4096 rows 1.72x against 1.68-1.69x, 2048 rows 1.61-1.63x
  // against 1.57-1.58x. (Growth for the pipeline lost 0.1x at 2048 rows in an earlier call.)
  // DSA_GATHER_GROWTH (1: as the pipeline) overrides it.
  double gather_growth_ = 1.5;
  cudaStream_t copy_stream_ = nullptr;
  cudaStream_t download_stream_ = nullptr;  // download_rows, host_results_async
  cudaEvent_t uploaded_index_[kPieceCap] = {};  // each piece's indexer inputs
  cudaEvent_t uploaded_[kPieceCap] = {};        // and attention's
  cudaEvent_t computed_[kPieceCap] = {};        // after each piece's kernels, for the listener
  cudaEvent_t events_[1 + 4 * kPieceCap] = {};
  Phase phases_[4 * kPieceCap] = {};
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
