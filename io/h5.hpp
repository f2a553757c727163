// A thin RAII layer over the HDF5 C API. io/h5.cpp is the only file that includes hdf5.h; the
// schema code above (workload.cpp, results.cpp) sees files, datasets and attributes, never an
// hid_t.
//
// Errors: every failure throws dsa::Error with one line naming the file (and the dataset), e.g.
// "w.h5: /kv/ckv: attribute dtype has type int32, expected a string". A failed HDF5 call is
// reported as DSA_CHECK_H5 reports one (file:line and the call) with the file, the dataset and
// the innermost message of HDF5's error stack; HDF5's own printing of that stack is off.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dsa::io::h5 {

// The element types this program keeps in memory (and stores, little-endian).
enum class Scalar { u8, u16, i32, i64, f32, f64 };

template <typename T>
constexpr Scalar scalar_of() {
  if constexpr (std::is_same_v<T, uint8_t>) return Scalar::u8;
  else if constexpr (std::is_same_v<T, uint16_t>) return Scalar::u16;
  else if constexpr (std::is_same_v<T, int32_t>) return Scalar::i32;
  else if constexpr (std::is_same_v<T, int64_t>) return Scalar::i64;
  else if constexpr (std::is_same_v<T, float>) return Scalar::f32;
  else {
    static_assert(std::is_same_v<T, double>, "no HDF5 memory type for this element type");
    return Scalar::f64;
  }
}

const char* scalar_name(Scalar s);  // "uint8", "int32", "float64", ...
std::size_t scalar_size(Scalar s);

// "1.10.8": the version of the HDF5 library linked in.
std::string library_version();

// Taken around HDF5 calls by code that two threads may run at once (the job's reader and
// writer): a build of HDF5 without its thread-safe option must never be entered twice.
std::mutex& library_mutex();

// Where a dataset's rows lie in its file, for moving them by plain positional reads and writes
// (io/raw_rows.hpp) instead of through HDF5. Given only where those bytes are exactly what HDF5
// would read or write: a plain file (HDF5's default driver, no user block), the dataset stored
// contiguously or in chunks of whole rows with no filters, every chunk placed in the file, and
// the stored type the little-endian one of the memory type.
struct RawLayout {
  int64_t row_bytes = 0;
  int64_t chunk_rows = 0;              // rows per chunk; all rows where storage is contiguous
  std::vector<int64_t> chunk_offsets;  // file offset of chunk i, which holds rows from i*chunk_rows
  int64_t end() const { return chunk_offsets.empty() ? 0 : *std::max_element(chunk_offsets.begin(), chunk_offsets.end()) + chunk_rows * row_bytes; }
};

// The most bytes the io layer allocates for one read (a dataset's rows, a whole KV cache, the
// per-row stats of a check); also the largest chunk a dataset may declare, since reading one
// allocates it whole. A larger request is refused with a message naming the dataset and both
// sizes, before anything is allocated: a file that declares absurd sizes gets a reason, not an
// out-of-memory kill. Default: the machine's physical memory. `bytes` <= 0 restores it.
int64_t allocation_limit();
void set_allocation_limit(int64_t bytes);
// Throws "<where>: cannot allocate 3.0 GiB (3221225472 bytes), more than the read limit of
// 2.0 GiB (the machine's memory)" when `elements` of `element_size` bytes exceed the limit.
void check_allocation(int64_t elements, std::size_t element_size, const std::string& where);
// "512 bytes", "1.5 MiB", "3.0 GiB": for messages.
std::string bytes_text(int64_t bytes);

// The type of a dataset or attribute as the file stores it.
struct TypeInfo {
  enum class Class { integer, floating, string, other };
  Class cls = Class::other;
  std::size_t size = 0;    // bytes per element
  bool is_signed = false;  // integers only
  std::string name;        // "int32", "float64", "string", "compound", ...

  // Same class, size and signedness: reading it as `s` loses nothing (byte order may differ).
  bool matches(Scalar s) const;
};

// "[3, 64, 128]"
std::string shape_text(const std::vector<int64_t>& dims);
// "[8, 11)" for rows 8, 9, 10 (first + count spelled out where it would overflow).
std::string range_text(int64_t first, int64_t count);
// Text read from a file, fit for a one-line message: control characters as \n, \t, \xNN,
// and cut to `max_chars` bytes with "..." after. Every message that shows a string from a
// file (an attribute's value, a link's target, HDF5's own reason) passes it through this.
std::string printable(const std::string& text, std::size_t max_chars = 200);

// Owns one HDF5 identifier of any kind and closes it with the matching H5?close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(int64_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  int64_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() noexcept;  // closes quietly
  void close();           // closes, throwing if HDF5 reports a failure

 private:
  int64_t id_ = -1;
};

// Something that carries attributes: a file's root group or a dataset.
class Object {
 public:
  const std::string& file_path() const { return file_path_; }
  const std::string& name() const { return name_; }  // "/" or "/kv/ckv"
  // "w.h5" for the root group, "w.h5: /kv/ckv" for a dataset: the start of every message.
  std::string where() const;

  bool has_attribute(const std::string& attr) const;
  std::vector<std::string> attribute_names() const;
  TypeInfo attribute_type(const std::string& attr) const;

  // Tolerant reads of one-element attributes (scalar or shape [1]), whatever wrote them:
  // integers of any width and sign, float32 or float64, fixed- or variable-length strings.
  // A missing attribute or one of another class throws.
  int64_t read_int_attribute(const std::string& attr) const;
  double read_float_attribute(const std::string& attr) const;
  std::string read_string_attribute(const std::string& attr) const;

  // Scalar attributes as h5py writes them: int64, float64, variable-length UTF-8 strings.
  // An existing numeric attribute of the same class is overwritten in place (converted to its
  // stored type); any other existing attribute of that name is replaced.
  void write_int_attribute(const std::string& attr, int64_t value);
  void write_float_attribute(const std::string& attr, double value);
  void write_string_attribute(const std::string& attr, const std::string& value);

 protected:
  Object() = default;
  Object(Handle handle, std::string file_path, std::string name)
      : handle_(std::move(handle)), file_path_(std::move(file_path)), name_(std::move(name)) {}
  void require_open() const;

  Handle handle_;
  std::string file_path_;
  std::string name_;
};

class Dataset : public Object {
 public:
  Dataset() = default;

  const std::vector<int64_t>& dims() const { return dims_; }
  const TypeInfo& type() const { return type_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t rows() const { return dims_.empty() ? 0 : dims_[0]; }
  int64_t row_elements() const;  // product of dims()[1:]

  // Throws "w.h5: /queries/block_table has type float32, expected int32" unless the stored
  // type matches `s` (TypeInfo::matches).
  void require_type(Scalar s) const;

  // Rows [first, first + count) along the first dimension, all of the others; `out` holds
  // count * row_elements() values. HDF5 converts byte order (and, unchecked, anything else:
  // call require_type first where the conversion must be exact).
  template <typename T>
  void read_rows(int64_t first, int64_t count, T* out) const {
    read_rows(scalar_of<T>(), first, count, out);
  }
  template <typename T>
  void write_rows(int64_t first, int64_t count, const T* in) {
    write_rows(scalar_of<T>(), first, count, in);
  }
  template <typename T>
  std::vector<T> read_all() const {
    const int64_t n = rows() * row_elements();
    check_allocation(n, sizeof(T), where());
    std::vector<T> out(static_cast<std::size_t>(n));
    read_rows(scalar_of<T>(), 0, rows(), out.data());
    return out;
  }
  void read_rows(Scalar mem, int64_t first, int64_t count, void* out) const;
  void write_rows(Scalar mem, int64_t first, int64_t count, const void* in);

  // The rows' places in the file for memory type `mem`, or nothing where they must go through
  // HDF5 (see RawLayout). Empty datasets have none.
  std::optional<RawLayout> raw_layout(Scalar mem) const;
  // Throws "w.h5: /results/lse: cannot write rows [5, 11), the dataset has 10 rows" unless
  // rows [first, first + count) exist (`verb`: "read", "write"); read_rows and write_rows call
  // it, and so does whoever moves the rows by their RawLayout instead.
  void check_rows(int64_t first, int64_t count, const char* verb) const;

 private:
  friend class File;
  Dataset(Handle handle, std::string file_path, std::string name);

  std::vector<int64_t> dims_;
  TypeInfo type_;
};

class File : public Object {
 public:
  File() = default;

  // Opens an existing file. "x.h5: no such file", "x.h5: not an HDF5 file", or the HDF5 reason.
  static File open(const std::string& path, bool writable);
  // Opens an HDF5 file image held in memory, read-only (HDF5's core driver; the bytes are
  // copied, nothing touches the disk). `name` stands for the path in messages and in
  // file_path(). "name: not an HDF5 file" where the bytes hold no HDF5 signature.
  static File open_image(const void* data, std::size_t size, const std::string& name);
  // Creates a file; an existing one is truncated when `truncate`, else creation fails.
  static File create(const std::string& path, bool truncate);

  // other: the path names something that is not a dataset (a group, a named type), or one of
  // its parents is not a group. dangling: a soft link on the path names nothing. external: a
  // link on the path leads to another file (or is a user-defined link); it is never followed.
  enum class Link { missing, dataset, other, dangling, external };
  // What `name` (an absolute path such as "/kv/ckv") names in the file.
  Link lookup(const std::string& name) const;

  struct LinkInfo {
    Link kind = Link::missing;
    std::string at;      // the path prefix where the walk stopped ("/kv" for "/kv/ckv")
    std::string target;  // dangling / external: what the link points to
  };
  // lookup() with the details messages need: which component was a dangling or external link.
  LinkInfo resolve(const std::string& name) const;

  Dataset open_dataset(const std::string& name) const;
  // A dataset of little-endian `type`, created with its groups, chunked by `chunk` (clamped to
  // the dims; contiguous when a dimension is 0), uncompressed, filled with zeros.
  // `allocate_now`: every chunk is placed in the file at creation (and not filled), so later
  // writes change raw data only, never the file's metadata: a process killed mid-write then
  // leaves a file whose structure is still the one last flushed.
  Dataset create_dataset(const std::string& name, Scalar type, const std::vector<int64_t>& dims,
                         const std::vector<int64_t>& chunk, bool allocate_now = false);

  void flush();
  void close();
  bool is_open() const { return handle_.valid(); }

  // A new descriptor of the open file (dup of HDF5's own, same access mode) for positional
  // reads and writes beside HDF5, or -1 where the file is not a plain file opened by HDF5's
  // default driver with no user block (a file image in memory, say). The caller closes it.
  int raw_descriptor() const;

 private:
  File(Handle handle, std::string path) : Object(std::move(handle), std::move(path), "/") {}
};

}  // namespace dsa::io::h5
