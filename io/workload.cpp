#include "io/workload.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>

#include "common/error.hpp"
#include "io/h5.hpp"
#include "io/raw_rows.hpp"
#include "io/schema.hpp"
#include "kernels/shapes.hpp"

namespace dsa::io {
namespace {

using h5::Scalar;
using schema::kAnyDim;

// ---- The schema of SPEC §2 ----------------------------------------------------------------

enum DatasetId {
  kIndexK, kCkv, kKpe,                                                  // /kv, by page
  kSeqLens, kBlockTable, kQIndex, kWeights, kQNope, kQPe, kSparse,      // /queries, by row
  kOffsets,                                                             // /batches
  kNumDatasets
};

enum class Extent { pages, rows, batches };  // what a dataset's first dimension counts
enum class Group { indexer, attention, sparse, always };  // which data a dataset belongs to

struct DatasetSpec {
  const char* path;
  Scalar type;
  const char* dtype;  // the `dtype` attribute it must carry, or nullptr
  Extent extent;
  int tail_rank;
  std::array<int64_t, 2> tail;  // trailing dims; kAnyDim = block table width
  const char* shape;                    // as messages spell it
  Group group;
};

constexpr const char* kBf16 = "bfloat16";
constexpr const char* kFp8 = "float8_e4m3fn";

const std::array<DatasetSpec, kNumDatasets>& specs() {
  static const std::array<DatasetSpec, kNumDatasets> table = {{
      {"/kv/index_k", Scalar::u8, nullptr, Extent::pages, 1, {kIndexPageBytes},
       "[num_pages, 8448]", Group::indexer},
      {"/kv/ckv", Scalar::u16, kBf16, Extent::pages, 2, {kPageSize, kCkvDim},
       "[num_pages, 64, 512]", Group::attention},
      {"/kv/kpe", Scalar::u16, kBf16, Extent::pages, 2, {kPageSize, kKpeDim},
       "[num_pages, 64, 64]", Group::attention},
      {"/queries/seq_lens", Scalar::i32, nullptr, Extent::rows, 0, {}, "[R]", Group::indexer},
      {"/queries/block_table", Scalar::i32, nullptr, Extent::rows, 1, {kAnyDim},
       "[R, max_num_pages]", Group::indexer},
      {"/queries/q_index", Scalar::u8, kFp8, Extent::rows, 2, {kIndexHeads, kIndexHeadDim},
       "[R, 64, 128]", Group::indexer},
      {"/queries/weights", Scalar::f32, nullptr, Extent::rows, 1, {kIndexHeads}, "[R, 64]",
       Group::indexer},
      {"/queries/q_nope", Scalar::u16, kBf16, Extent::rows, 2, {kHeads, kCkvDim}, "[R, 16, 512]",
       Group::attention},
      {"/queries/q_pe", Scalar::u16, kBf16, Extent::rows, 2, {kHeads, kKpeDim}, "[R, 16, 64]",
       Group::attention},
      {"/queries/sparse_indices", Scalar::i32, nullptr, Extent::rows, 1, {kTopK}, "[R, 2048]",
       Group::sparse},
      {"/batches/offsets", Scalar::i64, nullptr, Extent::batches, 0, {}, "[num_batches + 1]",
       Group::always},
  }};
  return table;
}

bool stage_reads(Stage stage, Group group) {
  switch (group) {
    case Group::indexer: return stage_needs_indexer_data(stage);
    case Group::attention: return stage_needs_attention_data(stage);
    case Group::sparse: return stage_needs_sparse_indices(stage);
    case Group::always: return true;
  }
  return false;
}

bool stage_reads(Stage stage, DatasetId id) { return stage_reads(stage, specs()[id].group); }

struct ShapeAttribute {
  const char* name;
  int64_t value;
};
constexpr std::array<ShapeAttribute, 7> kShapeAttributes = {{
    {"page_size", kPageSize},
    {"topk", kTopK},
    {"index_heads", kIndexHeads},
    {"index_head_dim", kIndexHeadDim},
    {"qo_heads", kHeads},
    {"ckv_dim", kCkvDim},
    {"kpe_dim", kKpeDim},
}};

bool is_reserved_attribute(const std::string& name) {
  if (name == "dsa_format" || name == "format_version" || name == "sm_scale") return true;
  return std::any_of(kShapeAttributes.begin(), kShapeAttributes.end(),
                     [&](const ShapeAttribute& a) { return name == a.name; });
}

// The rules for /batches/offsets (SPEC §2): start at 0, strictly increase, end at R.
void check_batch_offsets(const std::vector<int64_t>& offsets, int64_t rows,
                         const std::string& where) {
  if (offsets.empty()) fail(where, " is empty, expected num_batches + 1 entries from 0 to R");
  if (offsets[0] != 0) fail(where, " row 0: offset ", offsets[0], ", expected 0");
  for (std::size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] <= offsets[i - 1])
      fail(where, " row ", i, ": offset ", offsets[i], " after ", offsets[i - 1],
           ", offsets must increase (a batch holds at least one row)");
  }
  if (offsets.back() != rows)
    fail(where, " ends at ", offsets.back(), ", expected R = ", rows);
}

// Rows per read of the streaming content check: bounded in rows and in bytes.
int64_t check_chunk_rows(int64_t row_bytes) {
  constexpr int64_t kMaxRows = 4096;
  constexpr int64_t kMaxBytes = int64_t{16} << 20;
  return std::clamp<int64_t>(kMaxBytes / std::max<int64_t>(row_bytes, 1), 1, kMaxRows);
}

using DatasetSlots = std::array<std::optional<h5::Dataset>, kNumDatasets>;

// ---- NaN and Inf -------------------------------------------------------------------------------

// Counts of one kind of value in one dataset; becomes a RowStats::nonfinite entry when not zero.
struct Tally {
  int64_t nan = 0;
  int64_t inf = 0;
  int64_t first_row = -1;

  // Counts of a later part of the dataset.
  void merge(const Tally& later) {
    if (first_row < 0) first_row = later.first_row;
    nan += later.nan;
    inf += later.inf;
  }
  void add(int64_t row, int64_t nans, int64_t infs) {
    if (nans + infs == 0) return;
    if (first_row < 0) first_row = row;
    nan += nans;
    inf += infs;
  }
  void report(const h5::Dataset& d, const char* values, RowStats& stats) const {
    if (nan + inf == 0) return;
    NonFinite entry;
    entry.dataset = d.name();
    entry.values = values;
    entry.nan = nan;
    entry.inf = inf;
    entry.first_row = first_row;
    stats.nonfinite.push_back(std::move(entry));
  }
};

// bf16: exponent all ones; a zero mantissa is +-Inf, any other NaN.
// (Rows hold at most 64 x 512 values, as the structure checks made sure: 32-bit counts do.)
void count_bf16(int64_t row, std::span<const uint16_t> v, Tally& t) {
  uint32_t special = 0;
  for (const uint16_t x : v) special += (x & 0x7F80u) == 0x7F80u ? 1u : 0u;
  if (special == 0) return;  // the common case: one vectorised pass
  uint32_t nans = 0;
  for (const uint16_t x : v) nans += (x & 0x7FFFu) > 0x7F80u ? 1u : 0u;
  t.add(row, nans, int64_t{special} - nans);
}

// e4m3fn: S.1111.111 is NaN; there are no infinities.
void count_e4m3(int64_t row, std::span<const uint8_t> v, Tally& t) {
  uint32_t nans = 0;
  for (const uint8_t x : v) nans += (x & 0x7Fu) == 0x7Fu ? 1u : 0u;
  t.add(row, nans, 0);
}

void count_f32_bits(uint32_t bits, int64_t& nans, int64_t& infs) {
  if ((bits & 0x7F800000u) != 0x7F800000u) return;
  if ((bits & 0x007FFFFFu) != 0) ++nans;
  else ++infs;
}

void count_f32(int64_t row, std::span<const float> v, Tally& t) {
  int64_t nans = 0, infs = 0;
  for (const float x : v) {
    uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    count_f32_bits(bits, nans, infs);
  }
  t.add(row, nans, infs);
}

// One /kv/index_k page: e4m3 values, then little-endian float32 scales (SPEC §1.1).
void count_index_page(int64_t page, std::span<const uint8_t> v, Tally& fp8, Tally& scales) {
  count_e4m3(page, v.first(kIndexPageFp8Bytes), fp8);
  int64_t nans = 0, infs = 0;
  for (std::size_t i = kIndexPageFp8Bytes; i + 4 <= v.size(); i += 4) {
    const uint32_t bits = uint32_t{v[i]} | uint32_t{v[i + 1]} << 8 | uint32_t{v[i + 2]} << 16 |
                          uint32_t{v[i + 3]} << 24;
    count_f32_bits(bits, nans, infs);
  }
  scales.add(page, nans, infs);
}

}  // namespace

std::string NonFinite::text() const {
  std::string out = dataset + ": ";
  if (nan > 0) out += std::to_string(nan) + " NaN";
  if (inf > 0) out += std::string(nan > 0 ? ", " : "") + std::to_string(inf) + " Inf";
  out += values == "float32 scales" ? " in its float32 scales" : " (" + values + ")";
  out += dataset.rfind("/kv/", 0) == 0 ? ", first in page " : ", first in row ";
  return out + std::to_string(first_row);
}

// ---- Stages --------------------------------------------------------------------------------

Stage parse_stage(std::string_view name) {
  if (name == "indexer") return Stage::indexer;
  if (name == "attention") return Stage::attention;
  if (name == "pipeline") return Stage::pipeline;
  fail("unknown stage \"", name, "\" (expected indexer, attention or pipeline)");
}

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::indexer: return "indexer";
    case Stage::attention: return "attention";
    case Stage::pipeline: return "pipeline";
  }
  return "?";
}

std::string hdf5_library_version() { return h5::library_version(); }

int64_t read_limit_bytes() { return h5::allocation_limit(); }
void set_read_limit_bytes(int64_t bytes) { h5::set_allocation_limit(bytes); }

bool stage_needs_indexer_data(Stage stage) { return stage != Stage::attention; }
bool stage_needs_attention_data(Stage stage) { return stage != Stage::indexer; }
bool stage_needs_sparse_indices(Stage stage) { return stage == Stage::attention; }

bool WorkloadInfo::has(std::string_view dataset) const {
  return std::find(datasets.begin(), datasets.end(), dataset) != datasets.end();
}

// ---- WorkloadFile ----------------------------------------------------------------------------

struct WorkloadFile::Impl {
  h5::File file;
  Stage stage = Stage::pipeline;
  WorkloadInfo info;
  DatasetSlots ds;
  // Positional reads, for the datasets of the stage whose rows lie plainly in the file.
  std::unique_ptr<ParallelFile> raw;
  std::array<std::optional<h5::RawLayout>, kNumDatasets> layouts;

  const h5::Dataset& need(DatasetId id) const { return *ds[id]; }
  void open_and_check();
  void use_raw_reads(int threads);
  // A dataset of rows or pages that the stage reads (what raw reads may serve).
  bool reads_rows_of(int id) const {
    return ds[id] && specs()[id].extent != Extent::batches && stage_reads(stage, static_cast<DatasetId>(id));
  }

  // Rows [first, first + count) of dataset `id` into `out`: queued in `extents` where the
  // rows can be read raw (read_extents then reads them), else read through HDF5 now.
  void read(DatasetId id, int64_t first, int64_t count, void* out, std::vector<RawExtent>& extents) const {
    const h5::Dataset& d = need(id);
    if (raw && layouts[id]) {
      append_row_extents(*layouts[id], first, count, out, extents);
      return;
    }
    std::lock_guard<std::mutex> lock(h5::library_mutex());
    d.read_rows(specs()[id].type, first, count, out);
  }
  // Reads what read() queued; `what` and [first, first + count) name it in messages.
  void read_extents(const std::vector<RawExtent>& extents, const char* what, int64_t first, int64_t count) const {
    if (!extents.empty()) raw->read(extents, what + h5::range_text(first, count));
  }

  // Calls row_fn(row, values of that row, tallies) for every row of dataset `id`, reading
  // bounded steps of rows, and returns the tallies. Steps run in parallel on the I/O threads
  // where the rows can be read raw (each step into its own tallies, merged in row order).
  template <typename T, std::size_t N, typename RowFn>
  std::array<Tally, N> scan_rows(DatasetId id, RowFn&& row_fn) const {
    const h5::Dataset& d = need(id);
    std::array<Tally, N> total{};
    const int64_t rows = d.rows(), per_row = d.row_elements();
    if (rows == 0 || per_row == 0) return total;
    const int64_t step = check_chunk_rows(per_row * static_cast<int64_t>(sizeof(T)));
    const int64_t steps = (rows + step - 1) / step;
    std::vector<std::array<Tally, N>> parts(static_cast<std::size_t>(steps));
    auto scan_step = [&](int64_t s, std::vector<T>& buffer) {
      const int64_t first = s * step, count = std::min(step, rows - first);
      schema::resize_or_fail(buffer, count * per_row, d.where());
      std::vector<RawExtent> extents;
      read(id, first, count, buffer.data(), extents);
      if (!extents.empty()) raw->read_here(extents, "rows " + h5::range_text(first, count));  // on a pool thread
      for (int64_t i = 0; i < count; ++i)
        row_fn(first + i, std::span<const T>(buffer.data() + i * per_row, static_cast<std::size_t>(per_row)),
               parts[static_cast<std::size_t>(s)]);
    };
    if (raw && layouts[id]) {
      raw->pool().run(steps, [&](int64_t s) {
        std::vector<T> buffer;  // per step: nothing stays allocated after the scan
        scan_step(s, buffer);
      });
    } else {
      std::vector<T> buffer;
      for (int64_t s = 0; s < steps; ++s) scan_step(s, buffer);
    }
    for (const auto& part : parts)
      for (std::size_t k = 0; k < N; ++k) total[k].merge(part[k]);
    return total;
  }
};

void WorkloadFile::Impl::use_raw_reads(int threads) {
  raw.reset();
  layouts = {};
  if (threads <= 0) return;
  const int fd = file.raw_descriptor();
  if (fd < 0) return;  // a file image in memory, or a driver we cannot see past
  raw = std::make_unique<ParallelFile>(fd, info.path, threads);
  for (int id = 0; id < kNumDatasets; ++id)
    if (reads_rows_of(id)) layouts[id] = ds[id]->raw_layout(specs()[id].type);
}

void WorkloadFile::Impl::open_and_check() {
  const std::string& path = info.path;
  schema::check_format(file, "dsa-workload");
  info.format_version = static_cast<int>(schema::kFormatVersion);

  // Shape attributes: the file was made for the shapes this program computes.
  for (const ShapeAttribute& a : kShapeAttributes) {
    const int64_t value = file.read_int_attribute(a.name);
    if (value != a.value)
      fail(path, ": attribute ", a.name, " = ", value, ", but this program's DSA shapes have ",
           a.value);
  }
  info.sm_scale = file.read_float_attribute("sm_scale");
  if (!std::isfinite(info.sm_scale))
    fail(path, ": attribute sm_scale = ", info.sm_scale, ", expected a finite number");
  for (const std::string& name : file.attribute_names()) {
    if (is_reserved_attribute(name)) continue;
    if (file.attribute_type(name).cls == h5::TypeInfo::Class::string)
      info.text_attributes[name] = file.read_string_attribute(name);
  }

  // Presence: every dataset the stage reads, all missing ones named at once.
  std::string missing;
  for (int id = 0; id < kNumDatasets; ++id) {
    const DatasetSpec& spec = specs()[id];
    const h5::File::LinkInfo found = file.resolve(spec.path);
    const h5::File::Link link = found.kind;
    // Messages name the dataset, and the part of its path at fault where that is a parent.
    const std::string at = found.at == spec.path ? std::string(spec.path)
                                                 : std::string(spec.path) + ": " + found.at;
    if (link == h5::File::Link::other)
      fail(path, ": ", at, found.at == spec.path ? " is not a dataset" : " is not a group");
    if (link == h5::File::Link::dangling)
      fail(path, ": ", at, " is a soft link to ", found.target, ", which names nothing");
    if (link == h5::File::Link::external)
      fail(path, ": ", at, " is an external link",
           found.target.empty() ? std::string() : " (to " + found.target + ")",
           "; links to other files are not followed");
    if (link == h5::File::Link::dataset) {
      ds[id] = file.open_dataset(spec.path);
      info.datasets.emplace_back(spec.path);
    } else if (stage_reads(stage, static_cast<DatasetId>(id))) {
      missing += (missing.empty() ? "" : ", ") + std::string(spec.path);
    }
  }
  if (!missing.empty())
    fail(path, ": stage ", stage_name(stage), " needs ", missing, ", which the file lacks");

  // Types and shapes of every dataset present; R and num_pages agree among them.
  const h5::Dataset* first_rows = nullptr;
  const h5::Dataset* first_pages = nullptr;
  for (int id = 0; id < kNumDatasets; ++id) {
    if (!ds[id]) continue;
    const DatasetSpec& spec = specs()[id];
    const h5::Dataset& d = *ds[id];
    schema::check_dataset(d, spec.type, spec.dtype, {spec.tail.data(), std::size_t(spec.tail_rank)},
                          spec.shape);
    if (spec.extent == Extent::rows) {
      if (first_rows == nullptr) first_rows = &d;
      if (d.rows() != first_rows->rows())
        fail(path, ": ", d.name(), " has ", d.rows(), " rows, but ", first_rows->name(), " has ",
             first_rows->rows());
    } else if (spec.extent == Extent::pages) {
      if (first_pages == nullptr) first_pages = &d;
      if (d.rows() != first_pages->rows())
        fail(path, ": ", d.name(), " has ", d.rows(), " pages, but ", first_pages->name(),
             " has ", first_pages->rows());
    }
  }
  info.rows = first_rows != nullptr ? first_rows->rows() : 0;
  info.num_pages = first_pages != nullptr ? first_pages->rows() : 0;
  info.max_num_pages = ds[kBlockTable] ? ds[kBlockTable]->dims()[1] : 0;

  // Batches: at most R + 1 offsets can increase from 0 to R; check that before reading them.
  const h5::Dataset& offsets = need(kOffsets);
  if (offsets.rows() > info.rows + 1)
    fail(offsets.where(), " has ", offsets.rows(), " entries, more than R + 1 = ", info.rows + 1);
  info.batch_offsets = offsets.read_all<int64_t>();
  check_batch_offsets(info.batch_offsets, info.rows, offsets.where());
}

WorkloadFile::WorkloadFile(const std::string& path, Stage stage) : impl_(std::make_unique<Impl>()) {
  impl_->info.path = path;
  impl_->stage = stage;
  impl_->file = h5::File::open(path, /*writable=*/false);
  impl_->open_and_check();
  impl_->use_raw_reads(1);
}

void WorkloadFile::set_io_threads(int threads) { impl_->use_raw_reads(threads); }

int WorkloadFile::io_threads() const { return impl_->raw ? impl_->raw->threads() : 0; }

std::vector<std::string> WorkloadFile::read_through_hdf5() const {
  const Impl& m = *impl_;
  std::vector<std::string> out;
  for (int id = 0; id < kNumDatasets; ++id)
    if (m.reads_rows_of(id) && !(m.raw && m.layouts[id])) out.emplace_back(specs()[id].path);
  return out;
}

WorkloadFile::WorkloadFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkloadFile WorkloadFile::from_image(const void* data, std::size_t size, Stage stage,
                                      const std::string& name) {
  auto impl = std::make_unique<Impl>();
  impl->info.path = name;
  impl->stage = stage;
  impl->file = h5::File::open_image(data, size, name);
  impl->open_and_check();
  return WorkloadFile(std::move(impl));
}

WorkloadFile::~WorkloadFile() = default;
WorkloadFile::WorkloadFile(WorkloadFile&&) noexcept = default;
WorkloadFile& WorkloadFile::operator=(WorkloadFile&&) noexcept = default;

const WorkloadInfo& WorkloadFile::info() const { return impl_->info; }
Stage WorkloadFile::stage() const { return impl_->stage; }

RowStats WorkloadFile::check_contents() const {
  const Impl& m = *impl_;
  const int64_t rows = m.info.rows;
  RowStats stats;

  if (stage_needs_indexer_data(m.stage)) {
    const h5::Dataset& seq_ds = m.need(kSeqLens);
    const int64_t width = m.info.max_num_pages;
    // Capped where it exceeds any int32 seq_len (a hostile width would overflow the product).
    constexpr int64_t kMaxWidth = int64_t{std::numeric_limits<int32_t>::max()} / kPageSize + 1;
    const int64_t max_tokens = std::min(width, kMaxWidth) * kPageSize;
    schema::resize_or_fail(stats.seq_lens, rows, seq_ds.where());
    seq_ds.read_rows(0, rows, stats.seq_lens.data());
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t len = stats.seq_lens[static_cast<std::size_t>(r)];
      if (len < 0) fail(seq_ds.where(), " row ", r, ": seq_len ", len, " is negative");
      if (len > max_tokens)
        fail(seq_ds.where(), " row ", r, ": seq_len ", len, " exceeds the block table's ", width,
             " pages x ", kPageSize, " = ", max_tokens, " tokens");
    }

    // Page ids in the used part of each block table row; entries past it are ignored.
    const h5::Dataset& bt_ds = m.need(kBlockTable);
    const int64_t step = check_chunk_rows(width * 4);
    std::vector<int32_t> table;
    schema::resize_or_fail(table, std::min(step, rows) * width, bt_ds.where());
    // A page twice in one row's used part would give the same token ids twice: no top-k could
    // then be free of repeats. last_row[page] = the last row that used the page.
    std::vector<int64_t> last_row;
    schema::resize_or_fail(last_row, m.info.num_pages, bt_ds.where());
    std::fill(last_row.begin(), last_row.end(), int64_t{-1});
    for (int64_t first = 0; first < rows; first += step) {
      const int64_t count = std::min(step, rows - first);
      bt_ds.read_rows(first, count, table.data());
      for (int64_t i = 0; i < count; ++i) {
        const int64_t r = first + i;
        const int64_t used = pages_for(stats.seq_lens[static_cast<std::size_t>(r)]);
        const int32_t* row = table.data() + i * width;
        for (int64_t slot = 0; slot < used; ++slot) {
          if (row[slot] < 0 || row[slot] >= m.info.num_pages)
            fail(bt_ds.where(), " row ", r, ": page id ", row[slot], " outside [0, ",
                 m.info.num_pages, ") at page slot ", slot);
          int64_t& last = last_row[static_cast<std::size_t>(row[slot])];
          if (last == r)
            fail(bt_ds.where(), " row ", r, ": page id ", row[slot], " appears twice within seq_len (again at page slot ",
                 slot, ")");
          last = r;
        }
      }
    }
  }

  if (stage_needs_sparse_indices(m.stage)) {
    const h5::Dataset& sp_ds = m.need(kSparse);
    const int64_t num_tokens = m.info.num_pages * kPageSize;
    const int64_t step = check_chunk_rows(int64_t{kTopK} * 4);
    std::vector<int32_t> ids;
    schema::resize_or_fail(ids, std::min(step, rows) * kTopK, sp_ds.where());
    schema::resize_or_fail(stats.valid_ids, rows, sp_ds.where());
    for (int64_t first = 0; first < rows; first += step) {
      const int64_t count = std::min(step, rows - first);
      sp_ds.read_rows(first, count, ids.data());
      for (int64_t i = 0; i < count; ++i) {
        const int64_t r = first + i;
        const int32_t* row = ids.data() + i * kTopK;
        int32_t valid = 0;
        for (int slot = 0; slot < kTopK; ++slot) {
          if (row[slot] < -1 || row[slot] >= num_tokens)
            fail(sp_ds.where(), " row ", r, ": token id ", row[slot], " outside [-1, ", num_tokens,
                 ") at slot ", slot);
          valid += row[slot] != -1 ? 1 : 0;
        }
        stats.valid_ids[static_cast<std::size_t>(r)] = valid;
      }
    }
  }

  // NaN and Inf in the float data the stage reads: counted, not refused.
  if (stage_needs_indexer_data(m.stage)) {
    const auto index_k = m.scan_rows<uint8_t, 2>(
        kIndexK, [](int64_t page, std::span<const uint8_t> v, std::array<Tally, 2>& t) {
          count_index_page(page, v, t[0], t[1]);
        });
    index_k[0].report(m.need(kIndexK), "e4m3", stats);
    index_k[1].report(m.need(kIndexK), "float32 scales", stats);
    m.scan_rows<uint8_t, 1>(kQIndex, [](int64_t r, std::span<const uint8_t> v, std::array<Tally, 1>& t) {
       count_e4m3(r, v, t[0]);
     })[0].report(m.need(kQIndex), "e4m3", stats);
    m.scan_rows<float, 1>(kWeights, [](int64_t r, std::span<const float> v, std::array<Tally, 1>& t) {
       count_f32(r, v, t[0]);
     })[0].report(m.need(kWeights), "float32", stats);
  }
  if (stage_needs_attention_data(m.stage)) {
    for (const DatasetId id : {kCkv, kKpe, kQNope, kQPe})
      m.scan_rows<uint16_t, 1>(id, [](int64_t r, std::span<const uint16_t> v, std::array<Tally, 1>& t) {
         count_bf16(r, v, t[0]);
       })[0].report(m.need(id), "bf16", stats);
  }
  return stats;
}

QueryRows WorkloadFile::read_rows(int64_t first, int64_t count) const {
  const Impl& m = *impl_;
  if (first < 0 || count < 0 || first > m.info.rows || count > m.info.rows - first)
    fail(m.info.path, ": cannot read rows ", h5::range_text(first, count), ", the workload has ",
         m.info.rows, " rows");
  QueryRows out;
  out.first = first;
  out.count = count;
  std::vector<RawExtent> extents;
  auto read = [&](DatasetId id, auto& values) {
    if (!stage_reads(m.stage, id)) return;
    const h5::Dataset& d = m.need(id);
    schema::resize_or_fail(values, count * d.row_elements(), d.where());
    m.read(id, first, count, values.data(), extents);
  };
  read(kSeqLens, out.seq_lens);
  read(kBlockTable, out.block_table);
  if (stage_reads(m.stage, kBlockTable)) out.max_num_pages = m.info.max_num_pages;
  read(kQIndex, out.q_index);
  read(kWeights, out.weights);
  read(kQNope, out.q_nope);
  read(kQPe, out.q_pe);
  read(kSparse, out.sparse_indices);
  m.read_extents(extents, "rows ", first, count);
  return out;
}

RowsView view(const QueryRows& rows) {
  auto ptr = [](const auto& v) { return v.empty() ? nullptr : v.data(); };
  RowsView out;
  out.first = rows.first;
  out.count = rows.count;
  out.max_num_pages = rows.max_num_pages;
  out.seq_lens = ptr(rows.seq_lens);
  out.block_table = ptr(rows.block_table);
  out.q_index = ptr(rows.q_index);
  out.weights = ptr(rows.weights);
  out.q_nope = ptr(rows.q_nope);
  out.q_pe = ptr(rows.q_pe);
  out.sparse_indices = ptr(rows.sparse_indices);
  return out;
}

RowsView copy_rows_into(const QueryRows& rows, const RowBuffers& dst) {
  DSA_REQUIRE(rows.count <= dst.capacity && (rows.block_table.empty() || rows.max_num_pages == dst.max_num_pages),
              "copy_rows_into: ", rows.count, " rows into buffers for ", dst.capacity);
  RowsView out;
  out.first = rows.first;
  out.count = rows.count;
  out.max_num_pages = rows.max_num_pages;
  auto copy = [](const auto& from, auto* to, auto& field) {
    if (from.empty()) return;
    DSA_REQUIRE(to != nullptr, "copy_rows_into: no buffer for a dataset the rows have");
    std::memcpy(to, from.data(), from.size() * sizeof(from[0]));
    field = to;
  };
  copy(rows.seq_lens, dst.seq_lens, out.seq_lens);
  copy(rows.block_table, dst.block_table, out.block_table);
  copy(rows.q_index, dst.q_index, out.q_index);
  copy(rows.weights, dst.weights, out.weights);
  copy(rows.q_nope, dst.q_nope, out.q_nope);
  copy(rows.q_pe, dst.q_pe, out.q_pe);
  copy(rows.sparse_indices, dst.sparse_indices, out.sparse_indices);
  return out;
}

QueryRows slice_rows(const QueryRows& rows, int64_t begin, int64_t count) {
  DSA_REQUIRE(begin >= 0 && count >= 0 && begin + count <= rows.count, "slice_rows: rows ", begin, "+", count,
              " of ", rows.count);
  QueryRows out;
  out.first = rows.first + begin;
  out.count = count;
  out.max_num_pages = rows.max_num_pages;
  auto cut = [&](const auto& from, auto& to) {
    if (from.empty()) return;
    const size_t per_row = from.size() / static_cast<size_t>(rows.count);
    to.assign(from.begin() + static_cast<ptrdiff_t>(size_t(begin) * per_row),
              from.begin() + static_cast<ptrdiff_t>(size_t(begin + count) * per_row));
  };
  cut(rows.seq_lens, out.seq_lens);
  cut(rows.block_table, out.block_table);
  cut(rows.q_index, out.q_index);
  cut(rows.weights, out.weights);
  cut(rows.q_nope, out.q_nope);
  cut(rows.q_pe, out.q_pe);
  cut(rows.sparse_indices, out.sparse_indices);
  return out;
}

RowsView WorkloadFile::read_rows_into(int64_t first, int64_t count, const RowBuffers& dst) const {
  const Impl& m = *impl_;
  if (first < 0 || count < 0 || first > m.info.rows || count > m.info.rows - first)
    fail(m.info.path, ": cannot read rows ", h5::range_text(first, count), ", the workload has ",
         m.info.rows, " rows");
  DSA_REQUIRE(count <= dst.capacity, m.info.path, ": ", count, " rows into buffers for ", dst.capacity);
  RowsView out;
  out.first = first;
  out.count = count;
  std::vector<RawExtent> extents;
  auto read = [&](DatasetId id, auto* buffer, auto& field) {
    if (!stage_reads(m.stage, id)) return;
    DSA_REQUIRE(buffer != nullptr, m.need(id).where(), ": no buffer to read into");
    m.read(id, first, count, buffer, extents);
    field = buffer;
  };
  if (stage_reads(m.stage, kBlockTable)) {
    DSA_REQUIRE(dst.max_num_pages == m.info.max_num_pages, m.info.path, ": block tables ", m.info.max_num_pages,
                " pages wide, buffers for ", dst.max_num_pages);
    out.max_num_pages = m.info.max_num_pages;
  }
  read(kSeqLens, dst.seq_lens, out.seq_lens);
  read(kBlockTable, dst.block_table, out.block_table);
  read(kQIndex, dst.q_index, out.q_index);
  read(kWeights, dst.weights, out.weights);
  read(kQNope, dst.q_nope, out.q_nope);
  read(kQPe, dst.q_pe, out.q_pe);
  read(kSparse, dst.sparse_indices, out.sparse_indices);
  m.read_extents(extents, "rows ", first, count);
  return out;
}

KvCache allocate_kv_cache(Stage stage, int64_t num_pages, const std::string& where) {
  KvCache out;
  out.first_page = 0;
  out.num_pages = num_pages;
  auto size = [&](DatasetId id, auto& values, int64_t per_page) {
    if (stage_reads(stage, id)) schema::resize_or_fail(values, num_pages * per_page, where + ": " + specs()[id].path);
  };
  size(kIndexK, out.index_k, kIndexPageBytes);
  size(kCkv, out.ckv, int64_t{kPageSize} * kCkvDim);
  size(kKpe, out.kpe, int64_t{kPageSize} * kKpeDim);
  return out;
}

KvPages pages_of(KvCache& kv) { return {kv.index_k.data(), kv.ckv.data(), kv.kpe.data()}; }

KvCache WorkloadFile::read_kv() const {
  const Impl& m = *impl_;
  KvCache out = allocate_kv_cache(m.stage, m.info.num_pages, m.info.path);
  read_kv_pages(0, out.num_pages, pages_of(out));
  return out;
}

void WorkloadFile::read_kv_pages(int64_t first, int64_t count, const KvPages& dst) const {
  const Impl& m = *impl_;
  DSA_REQUIRE(first >= 0 && count >= 0 && first + count <= m.info.num_pages, m.info.path, ": KV pages ",
              h5::range_text(first, count), " asked for, the file has ", m.info.num_pages);
  std::vector<RawExtent> extents;
  auto read = [&](DatasetId id, void* out) {
    if (!stage_reads(m.stage, id) || count == 0) return;
    DSA_REQUIRE(out != nullptr, m.need(id).where(), ": no buffer given for KV pages ", h5::range_text(first, count));
    m.read(id, first, count, out, extents);
  };
  read(kIndexK, dst.index_k);
  read(kCkv, dst.ckv);
  read(kKpe, dst.kpe);
  m.read_extents(extents, "KV pages ", first, count);
}

// ---- WorkloadWriter --------------------------------------------------------------------------

struct WorkloadWriter::Impl {
  std::string path;
  WorkloadShape shape;
  h5::File file;
  DatasetSlots ds;

  bool writes(Group group) const {
    switch (group) {
      case Group::indexer: return shape.indexer_data;
      case Group::attention: return shape.attention_data;
      case Group::sparse: return shape.sparse_indices;
      case Group::always: return true;
    }
    return false;
  }

  // Writes `values` (count rows of dataset `id`) at `first`, after checking their size.
  template <typename T>
  void write(DatasetId id, const char* call, int64_t first, int64_t count,
             const std::vector<T>& values) {
    if (values.empty()) return;
    if (!file.is_open()) fail(path, ": ", call, " after close()");
    if (!ds[id])
      fail(path, ": ", call, ": ", specs()[id].path,
           " is not part of this workload (see the WorkloadShape flags)");
    h5::Dataset& d = *ds[id];
    const int64_t expected = count * d.row_elements();
    if (static_cast<int64_t>(values.size()) != expected)
      fail(d.where(), ": ", call, " got ", values.size(), " values for ", count, " rows, expected ",
           expected);
    d.write_rows(first, count, values.data());
  }
};

WorkloadWriter::WorkloadWriter(const std::string& path, const WorkloadShape& shape, bool overwrite)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.shape = shape;
  if (shape.rows < 0 || shape.num_pages < 0 || shape.max_num_pages < 0)
    fail(path, ": negative size in WorkloadShape (rows ", shape.rows, ", num_pages ",
         shape.num_pages, ", max_num_pages ", shape.max_num_pages, ")");
  if (!std::isfinite(shape.sm_scale)) fail(path, ": sm_scale ", shape.sm_scale, " is not finite");
  check_batch_offsets(shape.batch_offsets, shape.rows, path + ": batch offsets");
  for (const auto& [name, text] : shape.text_attributes) {
    (void)text;
    if (is_reserved_attribute(name))
      fail(path, ": text attribute ", name, " would replace a format attribute");
  }
  if (!overwrite && std::filesystem::exists(path)) fail(path, " exists; not overwriting it");

  m.file = h5::File::create(path, /*truncate=*/overwrite);
  m.file.write_string_attribute("dsa_format", "dsa-workload");
  m.file.write_int_attribute("format_version", schema::kFormatVersion);
  for (const ShapeAttribute& a : kShapeAttributes) m.file.write_int_attribute(a.name, a.value);
  m.file.write_float_attribute("sm_scale", shape.sm_scale);
  for (const auto& [name, text] : shape.text_attributes) m.file.write_string_attribute(name, text);

  for (int id = 0; id < kNumDatasets; ++id) {
    const DatasetSpec& spec = specs()[id];
    if (!m.writes(spec.group)) continue;
    std::vector<int64_t> dims;
    switch (spec.extent) {
      case Extent::pages: dims.push_back(shape.num_pages); break;
      case Extent::rows: dims.push_back(shape.rows); break;
      case Extent::batches: dims.push_back(static_cast<int64_t>(shape.batch_offsets.size())); break;
    }
    for (int i = 0; i < spec.tail_rank; ++i) {
      const int64_t d = spec.tail[static_cast<std::size_t>(i)];
      dims.push_back(d == kAnyDim ? shape.max_num_pages : d);
    }
    h5::Dataset d = m.file.create_dataset(spec.path, spec.type, dims,
                                          schema::row_chunks(dims, spec.type));
    if (spec.dtype != nullptr) d.write_string_attribute("dtype", spec.dtype);
    if (id == kIndexK)
      d.write_string_attribute("layout",
                               "per page: 64 tokens x 128 float8_e4m3fn, then 64 float32 "
                               "(little-endian) scales, one per token");
    m.ds[id] = std::move(d);
  }
  m.ds[kOffsets]->write_rows(0, static_cast<int64_t>(shape.batch_offsets.size()),
                             shape.batch_offsets.data());
}

WorkloadWriter::~WorkloadWriter() = default;

void WorkloadWriter::write_kv(const KvCache& pages) {
  Impl& m = *impl_;
  m.write(kIndexK, "write_kv", pages.first_page, pages.num_pages, pages.index_k);
  m.write(kCkv, "write_kv", pages.first_page, pages.num_pages, pages.ckv);
  m.write(kKpe, "write_kv", pages.first_page, pages.num_pages, pages.kpe);
}

void WorkloadWriter::write_rows(const QueryRows& rows) {
  Impl& m = *impl_;
  if (!rows.block_table.empty() && rows.max_num_pages != m.shape.max_num_pages)
    fail(m.path, ": write_rows: block table rows of ", rows.max_num_pages,
         " pages, the workload's are ", m.shape.max_num_pages);
  m.write(kSeqLens, "write_rows", rows.first, rows.count, rows.seq_lens);
  m.write(kBlockTable, "write_rows", rows.first, rows.count, rows.block_table);
  m.write(kQIndex, "write_rows", rows.first, rows.count, rows.q_index);
  m.write(kWeights, "write_rows", rows.first, rows.count, rows.weights);
  m.write(kQNope, "write_rows", rows.first, rows.count, rows.q_nope);
  m.write(kQPe, "write_rows", rows.first, rows.count, rows.q_pe);
  m.write(kSparse, "write_rows", rows.first, rows.count, rows.sparse_indices);
}

void WorkloadWriter::close() {
  Impl& m = *impl_;
  if (!m.file.is_open()) return;
  m.file.flush();
  for (auto& d : m.ds) d.reset();
  m.file.close();
}

}  // namespace dsa::io
