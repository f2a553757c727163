#include "io/results.hpp"

#include <unistd.h>

#include <array>
#include <filesystem>
#include <mutex>
#include <optional>

#include "common/error.hpp"
#include "io/h5.hpp"
#include "io/raw_rows.hpp"
#include "io/schema.hpp"
#include "kernels/shapes.hpp"

namespace dsa::io {
namespace {

using h5::Scalar;

// ---- The schema of SPEC §3 ----------------------------------------------------------------

enum ResultId { kTopk, kOutput, kLse, kBatchRanks, kBatchSeconds, kNumResults };
enum class Writer { indexer, attention, always };  // which stages write a dataset

struct ResultSpec {
  const char* path;
  Scalar type;
  const char* dtype;
  bool by_batch;  // first dimension counts batches, else rows
  int tail_rank;
  std::array<int64_t, 2> tail;
  const char* shape;
  Writer writer;
};

const std::array<ResultSpec, kNumResults>& specs() {
  static const std::array<ResultSpec, kNumResults> table = {{
      {"/results/topk_indices", Scalar::i32, nullptr, false, 1, {kTopK}, "[R, 2048]",
       Writer::indexer},
      {"/results/output", Scalar::u16, "bfloat16", false, 2, {kHeads, kCkvDim}, "[R, 16, 512]",
       Writer::attention},
      {"/results/lse", Scalar::f32, nullptr, false, 1, {kHeads}, "[R, 16]", Writer::attention},
      {"/results/batch_ranks", Scalar::i32, nullptr, true, 0, {}, "[num_batches]",
       Writer::always},
      {"/results/batch_seconds", Scalar::f64, nullptr, true, 0, {}, "[num_batches]",
       Writer::always},
  }};
  return table;
}

bool stage_writes(Stage stage, ResultId id) {
  switch (specs()[id].writer) {
    case Writer::indexer: return stage_needs_indexer_data(stage);
    case Writer::attention: return stage_needs_attention_data(stage);
    case Writer::always: return true;
  }
  return false;
}

void check_result_dataset(const h5::Dataset& d, ResultId id) {
  const ResultSpec& spec = specs()[id];
  schema::check_dataset(d, spec.type, spec.dtype,
                        {spec.tail.data(), static_cast<std::size_t>(spec.tail_rank)}, spec.shape);
}

// The same workload: the same string, or two names of one existing file.
bool same_workload(const std::string& a, const std::string& b) {
  if (a == b) return true;
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec) && !ec;
}

}  // namespace

// Results files larger than this are placed in the page cache at creation up to here only;
// rows past it are written into pages placed on first touch (slower, about 5 GB/s).
constexpr int64_t kPrefaultBytes = int64_t{8} << 30;

struct ResultsFile::Impl {
  h5::File file;
  ResultsMeta meta;
  std::string path;
  std::array<std::optional<h5::Dataset>, kNumResults> ds;
  int64_t completed = 0;
  // Rows written through a shared mapping of the file where their datasets lie plainly in it
  // (always for files this program created; see io/raw_rows.hpp).
  std::unique_ptr<ParallelFile> raw;
  std::array<std::optional<h5::RawLayout>, kNumResults> layouts;

  void require_open(const char* call) const {
    if (!file.is_open()) fail(path, ": ", call, " after close()");
  }
  // A dataset of result rows this stage writes (what raw writes may serve).
  bool writes_rows_of(int id) const { return ds[id] && !specs()[id].by_batch; }

  // Maps the row datasets' chunks for writing; `prefault`: places their pages first.
  void use_raw_writes(bool prefault) {
    if (meta.io_threads <= 0) return;
    const int fd = file.raw_descriptor();
    if (fd < 0) return;
    int64_t end = 0, row_bytes = 0;
    for (int id = 0; id < kNumResults; ++id) {
      if (!writes_rows_of(id)) continue;
      layouts[id] = ds[id]->raw_layout(specs()[id].type);
      if (layouts[id]) {
        end = std::max(end, layouts[id]->end());
        row_bytes += layouts[id]->row_bytes;
      }
    }
    if (end == 0) {
      ::close(fd);
      return;
    }
    raw = std::make_unique<ParallelFile>(fd, path, meta.io_threads, end);
    if (!prefault) return;
    const int64_t rows = std::min(meta.rows, kPrefaultBytes / std::max<int64_t>(row_bytes, 1));
    std::vector<RawExtent> extents;
    for (const auto& layout : layouts)
      if (layout) append_row_extents(*layout, 0, rows, nullptr, extents);
    raw->prefault(extents);
  }
};

ResultsFile::ResultsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ResultsFile::~ResultsFile() = default;
ResultsFile::ResultsFile(ResultsFile&&) noexcept = default;
ResultsFile& ResultsFile::operator=(ResultsFile&&) noexcept = default;

ResultsFile ResultsFile::create(const std::string& path, const ResultsMeta& meta, bool force) {
  if (meta.rows < 0 || meta.num_batches < 0)
    fail(path, ": negative size in ResultsMeta (rows ", meta.rows, ", batches ", meta.num_batches,
         ")");
  if (!force && std::filesystem::exists(path)) fail(path, " exists; pass --force to overwrite");

  auto m = std::make_unique<Impl>();
  m->meta = meta;
  m->path = path;
  m->file = h5::File::create(path, /*truncate=*/force);
  h5::File& f = m->file;
  f.write_string_attribute("dsa_format", "dsa-results");
  f.write_int_attribute("format_version", schema::kFormatVersion);
  f.write_string_attribute("stage", stage_name(meta.stage));
  f.write_string_attribute("workload", meta.workload_path);
  f.write_string_attribute("version", meta.program_version);
  f.write_string_attribute("backend", meta.backend);
  f.write_int_attribute("completed_batches", 0);

  for (int id = 0; id < kNumResults; ++id) {
    if (!stage_writes(meta.stage, static_cast<ResultId>(id))) continue;
    const ResultSpec& spec = specs()[id];
    std::vector<int64_t> dims = {spec.by_batch ? meta.num_batches : meta.rows};
    for (int i = 0; i < spec.tail_rank; ++i) dims.push_back(spec.tail[static_cast<std::size_t>(i)]);
    h5::Dataset d = f.create_dataset(spec.path, spec.type, dims, schema::row_chunks(dims, spec.type),
                                     /*allocate_now=*/true);
    if (spec.dtype != nullptr) d.write_string_attribute("dtype", spec.dtype);
    m->ds[id] = std::move(d);
  }
  f.flush();  // a valid file that claims nothing yet
  m->use_raw_writes(/*prefault=*/true);
  return ResultsFile(std::move(m));
}

ResultsFile ResultsFile::open_for_resume(const std::string& path, const ResultsMeta& meta) {
  auto m = std::make_unique<Impl>();
  m->meta = meta;
  m->path = path;
  m->file = h5::File::open(path, /*writable=*/true);
  h5::File& f = m->file;
  schema::check_format(f, "dsa-results");

  const std::string stage = f.read_string_attribute("stage");
  if (stage != stage_name(meta.stage))
    fail(path, ": holds results of stage ", h5::printable(stage), ", this run's stage is ",
         stage_name(meta.stage));
  const std::string workload = f.read_string_attribute("workload");
  if (!same_workload(workload, meta.workload_path))
    fail(path, ": holds results for workload ", h5::printable(workload), ", this run reads ",
         meta.workload_path);

  for (int id = 0; id < kNumResults; ++id) {
    if (!stage_writes(meta.stage, static_cast<ResultId>(id))) continue;
    const ResultSpec& spec = specs()[id];
    if (f.lookup(spec.path) != h5::File::Link::dataset)
      fail(path, ": lacks ", spec.path, ", which stage ", stage, " writes");
    h5::Dataset d = f.open_dataset(spec.path);
    check_result_dataset(d, static_cast<ResultId>(id));
    const int64_t want = spec.by_batch ? meta.num_batches : meta.rows;
    if (d.rows() != want)
      fail(d.where(), " has ", d.rows(), spec.by_batch ? " batches" : " rows",
           ", this run's workload has ", want);
    m->ds[id] = std::move(d);
  }

  m->completed = f.read_int_attribute("completed_batches");
  if (m->completed < 0 || m->completed > meta.num_batches)
    fail(path, ": completed_batches = ", m->completed, " outside [0, ", meta.num_batches, "]");
  m->use_raw_writes(/*prefault=*/false);
  return ResultsFile(std::move(m));
}

void ResultsFile::write_rows(int64_t first, int64_t count, const int32_t* topk,
                             const uint16_t* output, const float* lse) {
  Impl& m = *impl_;
  m.require_open("write_rows");
  std::vector<RawExtent> extents;
  auto write = [&](ResultId id, const auto* values) {
    if (!m.ds[id]) return;  // not written by this stage
    if (values == nullptr)
      fail(m.path, ": write_rows: stage ", stage_name(m.meta.stage), " writes ", specs()[id].path,
           ", but no values were given");
    h5::Dataset& d = *m.ds[id];
    d.check_rows(first, count, "write");
    if (m.raw && m.layouts[id]) {
      append_row_extents(*m.layouts[id], first, count, const_cast<void*>(static_cast<const void*>(values)), extents);
      return;
    }
    std::lock_guard<std::mutex> lock(h5::library_mutex());
    d.write_rows(first, count, values);
  };
  write(kTopk, topk);
  write(kOutput, output);
  write(kLse, lse);
  if (!extents.empty()) m.raw->write(extents, "writing rows " + h5::range_text(first, count));
}

void ResultsFile::write_batch(int64_t batch, int32_t ranks, double seconds) {
  Impl& m = *impl_;
  m.require_open("write_batch");
  if (batch < 0 || batch >= m.meta.num_batches)
    fail(m.path, ": write_batch: batch ", batch, " outside [0, ", m.meta.num_batches, ")");
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  m.ds[kBatchRanks]->write_rows(batch, 1, &ranks);
  m.ds[kBatchSeconds]->write_rows(batch, 1, &seconds);
}

void ResultsFile::set_completed_batches(int64_t n) {
  Impl& m = *impl_;
  m.require_open("set_completed_batches");
  if (n < 0 || n > m.meta.num_batches)
    fail(m.path, ": completed_batches ", n, " outside [0, ", m.meta.num_batches, "]");
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  m.file.flush();  // the rows first, then the claim that they are there
  m.file.write_int_attribute("completed_batches", n);
  m.file.flush();
  m.completed = n;
}

int64_t ResultsFile::completed_batches() const { return impl_->completed; }

int ResultsFile::io_threads() const { return impl_->raw ? impl_->raw->threads() : 0; }

std::vector<std::string> ResultsFile::written_through_hdf5() const {
  const Impl& m = *impl_;
  std::vector<std::string> out;
  for (int id = 0; id < kNumResults; ++id)
    if (m.writes_rows_of(id) && !(m.raw && m.layouts[id])) out.emplace_back(specs()[id].path);
  return out;
}

void ResultsFile::close() {
  if (!impl_) return;
  Impl& m = *impl_;
  if (!m.file.is_open()) return;
  m.raw.reset();  // rows written through the mapping are in the page cache already
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  m.file.flush();
  for (auto& d : m.ds) d.reset();
  m.file.close();
}

ResultsData read_results(const std::string& path) {
  h5::File f = h5::File::open(path, /*writable=*/false);
  schema::check_format(f, "dsa-results");
  ResultsData out;
  out.stage = f.read_string_attribute("stage");
  out.backend = f.read_string_attribute("backend");
  out.workload_path = f.read_string_attribute("workload");
  out.program_version = f.read_string_attribute("version");
  out.completed_batches = f.read_int_attribute("completed_batches");

  auto read = [&](ResultId id, auto& values) {
    if (f.lookup(specs()[id].path) != h5::File::Link::dataset) return;
    const h5::Dataset d = f.open_dataset(specs()[id].path);
    check_result_dataset(d, id);
    schema::resize_or_fail(values, d.rows() * d.row_elements(), d.where());
    d.read_rows(0, d.rows(), values.data());
  };
  read(kTopk, out.topk_indices);
  read(kOutput, out.output);
  read(kLse, out.lse);
  read(kBatchRanks, out.batch_ranks);
  read(kBatchSeconds, out.batch_seconds);
  return out;
}

}  // namespace dsa::io
