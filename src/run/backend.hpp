// A compute backend runs the two operators on one rank's rows. The job owns the host buffers;
// the backend owns whatever device state it needs (KV caches uploaded once per job).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "comm/world.hpp"
#include "io/workload.hpp"
#include "src/plan/plan.hpp"

namespace dsa::run {

// Seconds the last compute call spent in each phase.
struct ComputeTimes {
  double upload = 0, index = 0, attend = 0;
};

// One batch slice's results, row-major: topk [rows, 2048] (indexer, pipeline), output
// [rows, 16, 512] bf16 and lse [rows, 16] (attention, pipeline); null where the stage has none.
struct ResultRows {
  int32_t* topk = nullptr;
  uint16_t* output = nullptr;
  float* lse = nullptr;
};

// Told by Backend::compute() as each piece of the slice (plan::piece_cuts of its rows by the
// backend's pieces(stage)) has been enqueued, in order, so that its results can be sent on
// while the next pieces compute.
class PieceListener {
 public:
  virtual ~PieceListener() = default;
  // Rows [r0, r1) of the slice, piece `piece`: their results are in rows [r0, r1) of results()
  // once `ready` (a cudaEvent_t) has completed; null: they are there already.
  virtual void piece_enqueued(int piece, int64_t r0, int64_t r1, void* ready) = 0;
  // The rule compute() must cut the slice by (the one every rank of a streamed gather follows;
  // the backend's pieces(stage, true) where no other rank's rule must match), or null:
  // the backend's own pieces(stage).
  virtual const plan::Pieces* rule() const { return nullptr; }
};

// Puts pages [first, first + count) of the KV arrays a stage reads into `into`
// (io::WorkloadFile::read_kv_pages).
using KvPageReader = std::function<void(int64_t first, int64_t count, const io::KvPages& into)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;    // "cpu" | "cuda"
  virtual std::string device() const = 0;  // for the header: "cpu (4 threads)", "GPU 0: NVIDIA H200"
  virtual int threads() const { return 1; }
  // What identifies the device on its host (a GPU's PCI bus id); "" for the CPU.
  virtual std::string device_id() const { return ""; }

  // Called once per job: the `num_pages` pages of the KV caches `stage` needs, which `read`
  // puts into host memory the backend provides, in runs of pages the backend chooses. A GPU
  // streams them through bounded page-locked buffers to the device, each run's upload
  // overlapping the next run's read, so no host copy of the whole caches is made; the CPU
  // reads them into its own copy, which it computes from.
  virtual void load_kv(io::Stage stage, int64_t num_pages, const KvPageReader& read) = 0;
  // The same from caches already in host memory (tests, benchmarks); `kv` must outlive the
  // backend's use of it (the CPU computes from it, a GPU copies it).
  virtual void load_kv(const io::KvCache& kv) = 0;

  // Sizes every buffer before the batches: this rank computes at most `max_rows` rows of a
  // batch and holds at most `max_held` result rows (rank 0 holds whole batches, the other
  // ranks' rows gathered after its own). A GPU backend allocates everything now, so no batch
  // allocates, and refuses with the sizes needed and free when the device cannot hold them.
  // May be called again with larger sizes (buffers grow, never shrink).
  virtual void reserve(io::Stage, int64_t max_rows, int64_t max_held, int32_t max_seq_len,
                       int64_t max_num_pages) = 0;

  // Runs `stage` on `rows` (indexer: topk; attention on rows.sparse_indices: output, lse;
  // pipeline: the indexer's topk feeds attention on the device). The results land in rows
  // [0, rows.count) of results(). Returns when they are there. `listener` (may be null) is
  // told of each piece (see pieces()) as soon as its work is enqueued.
  virtual void compute(io::Stage stage, const io::RowsView& rows, float sm_scale, PieceListener* listener) = 0;
  void compute(io::Stage stage, const io::RowsView& rows, float sm_scale) { compute(stage, rows, sm_scale, nullptr); }

  // How compute() cuts a slice into pieces (plan::piece_cuts): a GPU computes piece p while
  // piece p+1 uploads. The same on every rank of one kind of device; one piece by default.
  // `alone` false: the rule of a streamed gather, which every rank of a batch follows (it may
  // taper a batch whose slices are all long, plan::batch_pieces); true: where no other rank
  // follows (rank 0 computing a batch alone), half-pieces at both ends of every slice long
  // enough. Every piece, tapered ends included, has at least min_slice_rows rows.
  virtual plan::Pieces pieces(io::Stage, bool /*alone*/ = false) const { return {}; }

  // Host buffers for the rows of a slice (set `slot`, 0 or 1, each max_rows rows), which
  // compute() uploads from fastest: page-locked memory on a GPU. capacity 0 (the CPU): none,
  // compute from wherever the rows are. Call it before writing the set: it forgets an
  // upload_ahead of the set's previous rows (waiting for its copies to be done).
  virtual io::RowBuffers staging(int /*slot*/) { return {}; }

  // Starts moving the rows of the next compute() call, staged in staging(slot), to the device
  // now, while the current call computes: the next call then finds them there instead of
  // waiting for its first piece's upload. A GPU keeps two sets of device input buffers where
  // they fit (else, and on the CPU, this does nothing); the copies go after those of a call in
  // progress, so they never delay it. May be called from another thread than compute()'s
  // (the job's reader, as soon as a batch is read). Only a compute() call of the very same rows
  // (the same view of the same staging set, not re-staged since) uses them.
  virtual void upload_ahead(io::Stage, const io::RowsView& /*rows*/, int /*slot*/) {}

  // The result buffers, `max_held` rows each: device memory when results_on_device().
  virtual ResultRows results() = 0;
  virtual bool results_on_device() const = 0;
  // Rows [0, rows) of results() in host memory, in host buffer set `slot` (0 or 1; each holds
  // max_held rows): a GPU backend downloads into pinned buffers, the CPU backend copies. Two
  // sets, so that rank 0 can write one batch's results while the next batch's come down.
  // rows = 0 returns the set as it is (after a gather into it, or once the downloads that
  // download_rows enqueued are done: it waits for them).
  virtual ResultRows host_results(io::Stage stage, int64_t rows, int slot) = 0;
  // host_results in two halves, so that one batch's results go down to host memory while the
  // next batch computes: the first enqueues the downloads (after everything enqueued so far)
  // and returns where the rows will be; they are there once wait_host_results(slot) returns,
  // which may be called from another thread. Backends whose results are in host memory copy
  // at once (the defaults).
  virtual ResultRows host_results_async(io::Stage stage, int64_t rows, int slot) {
    return host_results(stage, rows, slot);
  }
  virtual void wait_host_results(int /*slot*/) {}
  // The result set that compute() writes, results() returns and host_results / download_rows
  // take down from now on: 0 or 1 (the job passes the batch's host slot). A GPU keeps two sets
  // of device result buffers where they fit, so that compute() into one does not wait for the
  // downloads from the other (with one, compute() waits for the previous batch's downloads
  // first). Backends with results in host memory have one set.
  virtual void use_result_set(int /*slot*/) {}
  // Enqueues the download of result rows [r0, r1) into host set `slot`, to start once `ready`
  // (a cudaEvent_t from a PieceListener) has completed, while later work runs: rank 0 takes a
  // batch's results down piece by piece as they are computed. Nothing where results() are in
  // host memory already; false where the backend cannot (then host_results downloads them).
  virtual bool download_rows(io::Stage, int64_t /*r0*/, int64_t /*r1*/, int /*slot*/, void* /*ready*/) { return false; }
  // The stream results are produced on (a cudaStream_t), for a device-side gather; null for the CPU.
  virtual void* stream() const { return nullptr; }

  // The fewest rows a call may have and still compute each row exactly as a call with more
  // rows would (a GPU spreads the rows of small calls over more blocks, which sums in another
  // order). The planner gives every slice of a spread batch at least this many rows, so the
  // results do not depend on how many ranks computed them.
  virtual int64_t min_slice_rows(io::Stage) const { return 1; }

  // Phase times of the last compute call (each backend measures its own phases).
  virtual ComputeTimes last_times() const = 0;

  // Rough cost of one planner work unit on this backend, for the adaptive rank choice when
  // nothing was measured (see src/run/calibrate.hpp).
  virtual plan::CostModel cost_model() const = 0;
};

// `rows` where backend.compute() uploads them fastest: copied into its staging set `slot`
// where it has one that holds them (pinned memory on a GPU), else viewed where they are.
inline io::RowsView staged(Backend& backend, const io::QueryRows& rows, int slot) {
  const io::RowBuffers staging = backend.staging(slot);
  return staging.capacity >= rows.count ? io::copy_rows_into(rows, staging) : io::view(rows);
}

// The KV caches of `workload` into `backend` (load_kv, in runs of pages); returns the seconds
// spent reading the file.
double load_kv(Backend& backend, const io::WorkloadFile& workload);

// The backend a job asked for: "cuda", "cpu", or "auto" (a GPU where every rank sees one, else
// the CPU). A GPU rank binds the GPU of its node-local rank (comm/gpu_binding.hpp). `threads`:
// CPU threads per rank, 0 = the node's cores shared among its ranks. Collective.
std::unique_ptr<Backend> make_backend(const std::string& which, int threads, const comm::World& world);

// The CPU reference on `threads` threads (0 = this rank's share of the node's cores).
std::unique_ptr<Backend> make_cpu_backend(int threads);

#ifdef DSA_HAVE_CUDA
// GPU backend on CUDA device `device`.
std::unique_ptr<Backend> make_cuda_backend(int device);
// Number of CUDA devices visible to this process (0 when none or no driver).
int visible_cuda_devices();
#endif

}  // namespace dsa::run
