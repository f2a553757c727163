// The workload file (SPEC §2): open and check, per-rank reads of query rows, the KV caches,
// and a streaming writer used by dsa-gen and the tests. Callers never see HDF5 types.
//
// Every failure throws dsa::Error with one line naming the file, the dataset and, for content
// errors, the first bad row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsa::io {

enum class Stage { indexer, attention, pipeline };
Stage parse_stage(std::string_view name);  // "indexer" | "attention" | "pipeline", else throws
const char* stage_name(Stage stage);
// Which results a stage writes: /results/topk_indices (indexer, pipeline), /results/output and
// /results/lse (attention, pipeline).
inline bool writes_topk(Stage s) { return s != Stage::attention; }
inline bool writes_attention(Stage s) { return s != Stage::indexer; }

// "1.10.8": the HDF5 library this program runs with (for the job's header).
std::string hdf5_library_version();

// The most bytes the io layer allocates for one read (query rows, a whole KV cache, the
// per-row stats of check_contents, one chunk of a dataset). A file whose declared sizes need
// more is refused with a message naming the dataset and both sizes, before anything is
// allocated. Default: the machine's physical memory; `bytes` <= 0 restores it.
int64_t read_limit_bytes();
void set_read_limit_bytes(int64_t bytes);

// What a stage reads (SPEC §2 table, "needed by").
bool stage_needs_indexer_data(Stage stage);    // index_k, seq_lens, block_table, q_index, weights
bool stage_needs_attention_data(Stage stage);  // ckv, kpe, q_nope, q_pe
bool stage_needs_sparse_indices(Stage stage);  // sparse_indices (attention only)

struct WorkloadInfo {
  std::string path;
  int format_version = 1;
  int64_t num_pages = 0;      // first dimension of the KV datasets present
  int64_t rows = 0;           // R
  int64_t max_num_pages = 0;  // block_table width; 0 where the file has no block_table
  double sm_scale = 0.0;
  std::vector<int64_t> batch_offsets;  // num_batches + 1 entries, 0 .. R
  std::map<std::string, std::string> text_attributes;  // optional free text (source, model, ...)
  std::vector<std::string> datasets;   // paths present, e.g. "/kv/ckv"

  int64_t num_batches() const { return static_cast<int64_t>(batch_offsets.size()) - 1; }
  bool has(std::string_view dataset) const;
};

// Host copies of query rows [first, first + count).
struct QueryRows {
  int64_t first = 0;
  int64_t count = 0;
  int64_t max_num_pages = 0;            // row stride of block_table
  std::vector<int32_t> seq_lens;        // [count]
  std::vector<int32_t> block_table;     // [count, max_num_pages]
  std::vector<uint8_t> q_index;         // [count, 64, 128] e4m3
  std::vector<float> weights;           // [count, 64]
  std::vector<uint16_t> q_nope;         // [count, 16, 512] bf16
  std::vector<uint16_t> q_pe;           // [count, 16, 64] bf16
  std::vector<int32_t> sparse_indices;  // [count, 2048]
};

// Query rows as the kernels read them: pointers into host memory the caller keeps alive (a
// QueryRows' vectors, or buffers filled by read_rows_into); null where the stage reads none.
struct RowsView {
  int64_t first = 0;
  int64_t count = 0;
  int64_t max_num_pages = 0;
  const int32_t* seq_lens = nullptr;
  const int32_t* block_table = nullptr;
  const uint8_t* q_index = nullptr;
  const float* weights = nullptr;
  const uint16_t* q_nope = nullptr;
  const uint16_t* q_pe = nullptr;
  const int32_t* sparse_indices = nullptr;
};
RowsView view(const QueryRows& rows);

// Caller-owned buffers for up to `capacity` rows of each dataset (block tables
// `max_num_pages` wide), e.g. page-locked memory a GPU uploads from at full speed. A null
// buffer is a dataset the caller does not want.
struct RowBuffers {
  int64_t capacity = 0;
  int64_t max_num_pages = 0;
  int32_t* seq_lens = nullptr;
  int32_t* block_table = nullptr;
  uint8_t* q_index = nullptr;
  float* weights = nullptr;
  uint16_t* q_nope = nullptr;
  uint16_t* q_pe = nullptr;
  int32_t* sparse_indices = nullptr;
};
// Copies `rows` into `dst` (the datasets both have); returns the view of the copy.
RowsView copy_rows_into(const QueryRows& rows, const RowBuffers& dst);

// Rows [begin, begin + count) of `rows` (positions relative to rows.first), as a copy.
QueryRows slice_rows(const QueryRows& rows, int64_t begin, int64_t count);

// KV pages [first_page, first_page + num_pages). Vectors a stage does not need stay empty.
struct KvCache {
  int64_t first_page = 0;
  int64_t num_pages = 0;
  std::vector<uint8_t> index_k;  // [num_pages, 8448]
  std::vector<uint16_t> ckv;     // [num_pages, 64, 512] bf16
  std::vector<uint16_t> kpe;     // [num_pages, 64, 64] bf16
};

// Host memory for a run of KV pages, each array's pages contiguous as in KvCache; null for an
// array the stage does not read.
struct KvPages {
  uint8_t* index_k = nullptr;
  uint16_t* ckv = nullptr;
  uint16_t* kpe = nullptr;
};

// A KvCache of `num_pages` pages of the arrays `stage` reads (zeroed), its other arrays empty.
// Sizes over the read limit or that cannot be allocated fail naming `where` and the array
// ("w.h5: /kv/ckv: cannot allocate ...").
KvCache allocate_kv_cache(Stage stage, int64_t num_pages, const std::string& where);
// Where its pages are (null for the empty arrays), for WorkloadFile::read_kv_pages.
KvPages pages_of(KvCache& kv);

// NaN or Inf values in data a stage reads. They are not errors: the job computes with them as
// the math says (a NaN weight makes that row's scores NaN, an Inf in ckv makes the outputs that
// select it NaN or Inf) and reports how many there were, so that nothing is silently hidden.
struct NonFinite {
  std::string dataset;     // "/queries/weights", "/kv/index_k", ...
  std::string values;      // what was counted: "float32", "float32 scales" (/kv/index_k bytes
                           // [8192, 8448) of each page), "e4m3" (NaN codes 0x7F/0xFF; e4m3fn
                           // has no Inf), "bf16"
  int64_t nan = 0;
  int64_t inf = 0;
  int64_t first_row = -1;  // the first row (for /kv datasets: page) holding one
  int64_t count() const { return nan + inf; }
  // "/kv/index_k: 3 NaN, 1 Inf in its float32 scales, first in page 7"
  std::string text() const;
};

// Per-row facts gathered by the content check, used to balance work across ranks.
struct RowStats {
  std::vector<int32_t> seq_lens;   // [R] (empty when the stage has no indexer data)
  std::vector<int32_t> valid_ids;  // [R] count of ids != -1 in sparse_indices (attention stage)
  // Datasets of the stage holding NaN or Inf, empty when there are none. Order: /kv/index_k
  // (e4m3 part, then scales), /queries/q_index, /queries/weights, /kv/ckv, /kv/kpe,
  // /queries/q_nope, /queries/q_pe.
  std::vector<NonFinite> nonfinite;
};

class WorkloadFile {
 public:
  // Opens `path` read-only and checks its structure for `stage`: an HDF5 file, dsa_format and
  // format_version, the shape attributes, every dataset the stage needs (all missing ones named
  // in one message), their types and shapes, row counts that agree, attributes that agree with
  // shapes, batch offsets (start at 0, increasing, end at R).
  WorkloadFile(const std::string& path, Stage stage);
  // The same checks on an HDF5 file image held in memory (read-only; the bytes are copied).
  // `name` stands for the path in messages and info().path.
  static WorkloadFile from_image(const void* data, std::size_t size, Stage stage,
                                 const std::string& name);
  ~WorkloadFile();
  WorkloadFile(WorkloadFile&&) noexcept;
  WorkloadFile& operator=(WorkloadFile&&) noexcept;

  const WorkloadInfo& info() const;
  Stage stage() const;

  // Content checks over every row, read in bounded chunks: seq_len in [0, max_num_pages*64];
  // page ids in [0, num_pages) in the used part of each block table row; sparse ids in
  // [-1, num_pages*64). Throws on the first bad row; returns the per-row stats.
  // Also counts NaN and Inf in every float dataset the stage reads (RowStats::nonfinite),
  // streaming the KV caches in chunks of at most 16 MiB.
  RowStats check_contents() const;

  // Rows [first, first + count) of the datasets the stage needs. Rows that lie plainly in the
  // file (h5::RawLayout: uncompressed, chunked by whole rows or contiguous) are read by
  // positional reads on io_threads() threads; others through HDF5. read_rows, read_rows_into
  // and read_kv may run beside ResultsFile's writes in another thread (they take
  // h5::library_mutex around HDF5 calls); one at a time per WorkloadFile.
  QueryRows read_rows(int64_t first, int64_t count) const;
  // The same rows, read straight into `dst` (count <= dst.capacity; every dataset the stage
  // reads needs a buffer); returns their view.
  RowsView read_rows_into(int64_t first, int64_t count, const RowBuffers& dst) const;

  // The whole KV caches the stage needs.
  KvCache read_kv() const;
  // Pages [first, first + count) of them into `dst` (every array the stage reads needs a
  // buffer; the others are left alone): for loading the caches in bounded steps.
  void read_kv_pages(int64_t first, int64_t count, const KvPages& dst) const;

  // Threads for the positional reads (1 after opening a file on disk); 0 reads everything
  // through HDF5. A file image in memory is always read through HDF5 (io_threads() is 0).
  void set_io_threads(int threads);
  int io_threads() const;
  // The datasets the stage reads rows of that go through HDF5 all the same (compressed, chunks
  // that cut rows, another byte order, chunks never written; or io_threads() is 0).
  std::vector<std::string> read_through_hdf5() const;

 private:
  struct Impl;
  explicit WorkloadFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a new workload file will hold. Datasets of a group are written when its flag is set.
struct WorkloadShape {
  int64_t num_pages = 0;
  int64_t rows = 0;
  int64_t max_num_pages = 0;
  double sm_scale = 0.0;
  std::vector<int64_t> batch_offsets;
  bool indexer_data = true;    // /kv/index_k, seq_lens, block_table, q_index, weights
  bool attention_data = true;  // /kv/ckv, /kv/kpe, q_nope, q_pe
  bool sparse_indices = true;  // /queries/sparse_indices
  std::map<std::string, std::string> text_attributes;
};

// Streaming writer: creates every dataset at full size (chunked by rows / pages), then takes
// pages and rows in any order. The file is complete once close() returns.
class WorkloadWriter {
 public:
  WorkloadWriter(const std::string& path, const WorkloadShape& shape, bool overwrite);
  ~WorkloadWriter();
  void write_kv(const KvCache& pages);    // the non-empty vectors, at pages.first_page
  void write_rows(const QueryRows& rows);  // the non-empty vectors, at rows.first
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsa::io
