#include "io/h5.hpp"

#include <hdf5.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/error.hpp"

static_assert(std::is_same_v<hid_t, int64_t>, "io/h5.hpp stores identifiers as int64_t");

namespace dsa::io::h5 {
namespace {

// Chunk cache of each opened or created dataset: room for several 1 MiB row chunks, so a rank
// writing a batch that ends mid-chunk does not read the chunk back for the next batch.
constexpr std::size_t kChunkCacheBytes = 16u << 20;
constexpr std::size_t kChunkCacheSlots = 12421;  // prime, about 100x the chunks that fit

// HDF5 prints its error stack to stderr by default; we report the innermost entry ourselves.
void silence_hdf5() {
  thread_local const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

// The innermost (most specific) message of the current error stack, which is then cleared.
std::string h5_error_text() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
        if (n == 0 && err != nullptr && err->desc != nullptr)
          *static_cast<std::string*>(data) = err->desc;
        return 0;
      },
      &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? std::string("HDF5 gave no reason") : printable(text);
}

// A checked HDF5 call, reported like DSA_CHECK_H5 (file:line and the call, through
// dsa::fail_call) with `where` and the HDF5 reason. Not DSA_CHECK_H5 itself: that macro would
// stringify the call after the HDF5 constants in it were expanded. `where` is evaluated only
// on failure.
template <typename T, typename Where>
T check_h5(T rc, const char* call, const char* file, int line, Where&& where) {
  if (rc < 0) fail_call(file, line, call, std::string(where()) + ": " + h5_error_text());
  return rc;
}
#define H5_CALL(call, where) check_h5((call), #call, __FILE__, __LINE__, [&] { return (where); })

hid_t native_type(Scalar s) {
  switch (s) {
    case Scalar::u8: return H5T_NATIVE_UINT8;
    case Scalar::u16: return H5T_NATIVE_UINT16;
    case Scalar::i32: return H5T_NATIVE_INT32;
    case Scalar::i64: return H5T_NATIVE_INT64;
    case Scalar::f32: return H5T_NATIVE_FLOAT;
    case Scalar::f64: return H5T_NATIVE_DOUBLE;
  }
  fail("h5: unknown scalar type");
}

hid_t file_type(Scalar s) {
  switch (s) {
    case Scalar::u8: return H5T_STD_U8LE;
    case Scalar::u16: return H5T_STD_U16LE;
    case Scalar::i32: return H5T_STD_I32LE;
    case Scalar::i64: return H5T_STD_I64LE;
    case Scalar::f32: return H5T_IEEE_F32LE;
    case Scalar::f64: return H5T_IEEE_F64LE;
  }
  fail("h5: unknown scalar type");
}

TypeInfo describe_type(hid_t type, const std::string& where) {
  TypeInfo info;
  const H5T_class_t cls = H5_CALL(H5Tget_class(type), where);
  info.size = H5Tget_size(type);
  const std::string bits = std::to_string(info.size * 8);
  switch (cls) {
    case H5T_INTEGER:
      info.cls = TypeInfo::Class::integer;
      info.is_signed = H5Tget_sign(type) == H5T_SGN_2;
      info.name = (info.is_signed ? "int" : "uint") + bits;
      break;
    case H5T_FLOAT:
      info.cls = TypeInfo::Class::floating;
      info.is_signed = true;
      info.name = "float" + bits;
      break;
    case H5T_STRING:
      info.cls = TypeInfo::Class::string;
      info.name = "string";
      break;
    case H5T_TIME: info.name = "time"; break;
    case H5T_BITFIELD: info.name = "bitfield"; break;
    case H5T_OPAQUE: info.name = "opaque"; break;
    case H5T_COMPOUND: info.name = "compound"; break;
    case H5T_REFERENCE: info.name = "reference"; break;
    case H5T_ENUM: info.name = "enum"; break;
    case H5T_VLEN: info.name = "variable-length sequence"; break;
    case H5T_ARRAY: info.name = "array"; break;
    default: info.name = "unknown type"; break;
  }
  return info;
}

herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    default: return H5Idec_ref(id) < 0 ? -1 : 0;
  }
}

// a * b, or a failure naming `where` when the product leaves int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& where, const std::vector<int64_t>& dims) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out))
    fail(where, ": shape ", shape_text(dims), " is too large (over 2^63 bytes)");
  return out;
}

std::vector<hsize_t> to_hsize(const std::vector<int64_t>& dims) {
  return {dims.begin(), dims.end()};
}

// External links are never followed: a workload or results file holds its own objects, and a
// hostile file must not make us open other files (or devices) by name.
herr_t refuse_external_link(const char*, const char*, const char*, const char*, unsigned*, hid_t,
                            void*) {
  return -1;
}

Handle link_access_plist(const std::string& where) {
  Handle lapl(H5_CALL(H5Pcreate(H5P_LINK_ACCESS), where));
  H5_CALL(H5Pset_elink_cb(lapl.id(), refuse_external_link, nullptr), where);
  return lapl;
}

Handle dataset_access_plist(const std::string& where) {
  Handle dapl(H5_CALL(H5Pcreate(H5P_DATASET_ACCESS), where));
  H5_CALL(H5Pset_chunk_cache(dapl.id(), kChunkCacheSlots, kChunkCacheBytes, 1.0), where);
  H5_CALL(H5Pset_elink_cb(dapl.id(), refuse_external_link, nullptr), where);
  return dapl;
}

// Longest fixed-length string attribute we read (HDF5 allows 4 GiB).
constexpr std::size_t kMaxStringAttributeBytes = std::size_t{1} << 20;

// The machine's physical memory, the default allocation limit.
int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  int64_t bytes = 0;
  if (pages <= 0 || page_size <= 0 || __builtin_mul_overflow(int64_t{pages}, int64_t{page_size}, &bytes))
    return std::numeric_limits<int64_t>::max();
  return bytes;
}

std::atomic<int64_t> g_allocation_limit{0};  // 0: the machine's memory

// The HDF5 file signature, which H5Fis_hdf5 looks for at offsets 0, 512, 1024, 2048, ...
bool has_hdf5_signature(const unsigned char* data, std::size_t size) {
  static constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  for (std::size_t offset = 0; offset <= size && size - offset >= sizeof kSignature;
       offset = offset == 0 ? 512 : offset * 2) {
    if (std::memcmp(data + offset, kSignature, sizeof kSignature) == 0) return true;
  }
  return false;
}

// A scalar dataspace for the attributes we write.
Handle scalar_space(const std::string& where) {
  return Handle(H5_CALL(H5Screate(H5S_SCALAR), where));
}

Handle vlen_string_type(H5T_cset_t cset, const std::string& where) {
  Handle type(H5_CALL(H5Tcopy(H5T_C_S1), where));
  H5_CALL(H5Tset_size(type.id(), H5T_VARIABLE), where);
  H5_CALL(H5Tset_cset(type.id(), cset), where);
  return type;
}

}  // namespace

const char* scalar_name(Scalar s) {
  switch (s) {
    case Scalar::u8: return "uint8";
    case Scalar::u16: return "uint16";
    case Scalar::i32: return "int32";
    case Scalar::i64: return "int64";
    case Scalar::f32: return "float32";
    case Scalar::f64: return "float64";
  }
  return "?";
}

std::size_t scalar_size(Scalar s) {
  switch (s) {
    case Scalar::u8: return 1;
    case Scalar::u16: return 2;
    case Scalar::i32: return 4;
    case Scalar::i64: return 8;
    case Scalar::f32: return 4;
    case Scalar::f64: return 8;
  }
  return 0;
}

int64_t allocation_limit() {
  const int64_t limit = g_allocation_limit.load();
  return limit > 0 ? limit : physical_memory_bytes();
}

void set_allocation_limit(int64_t bytes) { g_allocation_limit.store(bytes > 0 ? bytes : 0); }

std::string bytes_text(int64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

void check_allocation(int64_t elements, std::size_t element_size, const std::string& where) {
  const int64_t limit = allocation_limit();
  int64_t bytes = 0;
  const bool overflow =
      elements < 0 || __builtin_mul_overflow(elements, static_cast<int64_t>(element_size), &bytes);
  if (overflow || bytes > limit) {
    const std::string limit_text =
        bytes_text(limit) + (g_allocation_limit.load() > 0 ? "" : " (the machine's memory)");
    if (overflow)
      fail(where, ": cannot allocate ", elements, " elements of ", element_size,
           " bytes, more than the read limit of ", limit_text);
    fail(where, ": cannot allocate ", bytes_text(bytes), " (", bytes,
         " bytes), more than the read limit of ", limit_text);
  }
}

std::string library_version() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "unknown";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

std::mutex& library_mutex() {
  static std::mutex m;
  return m;
}

bool TypeInfo::matches(Scalar s) const {
  switch (s) {
    case Scalar::u8:
    case Scalar::u16:
      return cls == Class::integer && !is_signed && size == scalar_size(s);
    case Scalar::i32:
    case Scalar::i64:
      return cls == Class::integer && is_signed && size == scalar_size(s);
    case Scalar::f32:
    case Scalar::f64:
      return cls == Class::floating && size == scalar_size(s);
  }
  return false;
}

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (Unicode Table 3-7), or 0.
std::size_t utf8_sequence(const std::string& text, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = at(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (text.size() - i < n || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

std::string printable(const std::string& text, std::size_t max_chars) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c >= 0x80 ? utf8_sequence(text, i) : 1;
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F || n == 0) {  // control characters, bytes that are not UTF-8
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out.append(text, i, n);
      i += n;
      continue;
    }
    ++i;
  }
  return out;
}

std::string range_text(int64_t first, int64_t count) {
  int64_t end = 0;
  if (__builtin_add_overflow(first, count, &end))
    return "[" + std::to_string(first) + ", " + std::to_string(first) + " + " +
           std::to_string(count) + ")";
  return "[" + std::to_string(first) + ", " + std::to_string(end) + ")";
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(dims[i]);
  }
  return out + "]";
}

// ---- Handle ------------------------------------------------------------------------------

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::reset() noexcept {
  if (id_ >= 0) {
    close_id(id_);
    H5Eclear2(H5E_DEFAULT);
    id_ = -1;
  }
}

void Handle::close() {
  if (id_ < 0) return;
  const hid_t id = id_;
  id_ = -1;
  H5_CALL(close_id(id), "closing an HDF5 object");
}

// ---- Object: attributes ----------------------------------------------------------------------

std::string Object::where() const {
  return name_ == "/" ? file_path_ : file_path_ + ": " + name_;
}

void Object::require_open() const {
  silence_hdf5();  // per thread where HDF5 is built thread-safe (dsa-gen writes from a helper thread)
  if (!handle_.valid()) fail(where(), ": already closed");
}

bool Object::has_attribute(const std::string& attr) const {
  require_open();
  return H5_CALL(H5Aexists(handle_.id(), attr.c_str()), where()) > 0;
}

std::vector<std::string> Object::attribute_names() const {
  require_open();
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5_CALL(H5Aiterate2(
              handle_.id(), H5_INDEX_NAME, H5_ITER_NATIVE, &idx,
              [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
                static_cast<std::vector<std::string>*>(data)->emplace_back(name);
                return 0;
              },
              &names),
          where());
  return names;
}

namespace {

// Opens attribute `attr` of `obj`, requiring it to exist and to hold exactly one element.
Handle open_single_attribute(hid_t obj, const std::string& where, const std::string& attr) {
  if (H5_CALL(H5Aexists(obj, attr.c_str()), where) == 0)
    fail(where, ": attribute ", attr, " is missing");
  Handle a(H5_CALL(H5Aopen(obj, attr.c_str(), H5P_DEFAULT), where + ": attribute " + attr));
  Handle space(H5_CALL(H5Aget_space(a.id()), where));
  const hssize_t n = H5_CALL(H5Sget_simple_extent_npoints(space.id()), where);
  if (n != 1) fail(where, ": attribute ", attr, " holds ", n, " values, expected one");
  return a;
}

}  // namespace

TypeInfo Object::attribute_type(const std::string& attr) const {
  require_open();
  if (H5_CALL(H5Aexists(handle_.id(), attr.c_str()), where()) == 0)
    fail(where(), ": attribute ", attr, " is missing");
  Handle a(H5_CALL(H5Aopen(handle_.id(), attr.c_str(), H5P_DEFAULT), where()));
  Handle type(H5_CALL(H5Aget_type(a.id()), where()));
  return describe_type(type.id(), where());
}

int64_t Object::read_int_attribute(const std::string& attr) const {
  require_open();
  Handle a = open_single_attribute(handle_.id(), where(), attr);
  Handle type(H5_CALL(H5Aget_type(a.id()), where()));
  const TypeInfo info = describe_type(type.id(), where());
  if (info.cls != TypeInfo::Class::integer)
    fail(where(), ": attribute ", attr, " has type ", info.name, ", expected an integer");
  if (!info.is_signed && info.size >= 8) {
    uint64_t value = 0;
    H5_CALL(H5Aread(a.id(), H5T_NATIVE_UINT64, &value), where() + ": attribute " + attr);
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(where(), ": attribute ", attr, " = ", value, " is too large");
    return static_cast<int64_t>(value);
  }
  int64_t value = 0;
  H5_CALL(H5Aread(a.id(), H5T_NATIVE_INT64, &value), where() + ": attribute " + attr);
  return value;
}

double Object::read_float_attribute(const std::string& attr) const {
  require_open();
  Handle a = open_single_attribute(handle_.id(), where(), attr);
  Handle type(H5_CALL(H5Aget_type(a.id()), where()));
  const TypeInfo info = describe_type(type.id(), where());
  if (info.cls != TypeInfo::Class::floating)
    fail(where(), ": attribute ", attr, " has type ", info.name, ", expected a float");
  double value = 0.0;
  H5_CALL(H5Aread(a.id(), H5T_NATIVE_DOUBLE, &value), where() + ": attribute " + attr);
  return value;
}

std::string Object::read_string_attribute(const std::string& attr) const {
  require_open();
  Handle a = open_single_attribute(handle_.id(), where(), attr);
  Handle type(H5_CALL(H5Aget_type(a.id()), where()));
  const TypeInfo info = describe_type(type.id(), where());
  if (info.cls != TypeInfo::Class::string)
    fail(where(), ": attribute ", attr, " has type ", info.name, ", expected a string");
  const std::string what = where() + ": attribute " + attr;

  if (H5_CALL(H5Tis_variable_str(type.id()), what) > 0) {
    const H5T_cset_t cset = H5Tget_cset(type.id());
    Handle mem = vlen_string_type(cset, what);
    char* text = nullptr;
    H5_CALL(H5Aread(a.id(), mem.id(), &text), what);
    std::string value = text != nullptr ? std::string(text) : std::string();
    H5free_memory(text);
    return value;
  }

  // Fixed length: the file's own string type serves as the memory type.
  if (info.size > kMaxStringAttributeBytes)
    fail(what, " is a string of ", info.size, " bytes, longer than the ",
         kMaxStringAttributeBytes, " this program reads");
  std::string value(info.size, '\0');
  H5_CALL(H5Aread(a.id(), type.id(), value.data()), what);
  if (H5Tget_strpad(type.id()) == H5T_STR_SPACEPAD) {
    const std::size_t end = value.find_last_not_of(' ');
    value.resize(end == std::string::npos ? 0 : end + 1);
  } else {
    const std::size_t nul = value.find('\0');
    if (nul != std::string::npos) value.resize(nul);
  }
  return value;
}

namespace {

// Opens `attr` for overwriting when it exists with a type of class `cls`; deletes it when it
// exists with another type; returns an invalid handle when the caller must create it.
Handle reuse_attribute(hid_t obj, const std::string& where, const std::string& attr,
                       H5T_class_t cls) {
  if (H5_CALL(H5Aexists(obj, attr.c_str()), where) == 0) return Handle();
  Handle a(H5_CALL(H5Aopen(obj, attr.c_str(), H5P_DEFAULT), where));
  Handle type(H5_CALL(H5Aget_type(a.id()), where));
  Handle space(H5_CALL(H5Aget_space(a.id()), where));
  if (cls != H5T_STRING && H5Tget_class(type.id()) == cls &&
      H5Sget_simple_extent_npoints(space.id()) == 1)
    return a;
  a.close();
  H5_CALL(H5Adelete(obj, attr.c_str()), where + ": replacing attribute " + attr);
  return Handle();
}

}  // namespace

void Object::write_int_attribute(const std::string& attr, int64_t value) {
  require_open();
  const std::string what = where() + ": attribute " + attr;
  Handle a = reuse_attribute(handle_.id(), what, attr, H5T_INTEGER);
  if (!a.valid()) {
    Handle space = scalar_space(what);
    a = Handle(H5_CALL(
        H5Acreate2(handle_.id(), attr.c_str(), H5T_STD_I64LE, space.id(), H5P_DEFAULT, H5P_DEFAULT),
        what));
  }
  H5_CALL(H5Awrite(a.id(), H5T_NATIVE_INT64, &value), what);
}

void Object::write_float_attribute(const std::string& attr, double value) {
  require_open();
  const std::string what = where() + ": attribute " + attr;
  Handle a = reuse_attribute(handle_.id(), what, attr, H5T_FLOAT);
  if (!a.valid()) {
    Handle space = scalar_space(what);
    a = Handle(H5_CALL(H5Acreate2(handle_.id(), attr.c_str(), H5T_IEEE_F64LE, space.id(),
                                  H5P_DEFAULT, H5P_DEFAULT),
                       what));
  }
  H5_CALL(H5Awrite(a.id(), H5T_NATIVE_DOUBLE, &value), what);
}

void Object::write_string_attribute(const std::string& attr, const std::string& value) {
  require_open();
  const std::string what = where() + ": attribute " + attr;
  reuse_attribute(handle_.id(), what, attr, H5T_STRING);  // strings are always recreated
  Handle type = vlen_string_type(H5T_CSET_UTF8, what);
  Handle space = scalar_space(what);
  Handle a(H5_CALL(
      H5Acreate2(handle_.id(), attr.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT),
      what));
  const char* text = value.c_str();
  H5_CALL(H5Awrite(a.id(), type.id(), &text), what);
}

// ---- Dataset -----------------------------------------------------------------------------------

Dataset::Dataset(Handle handle, std::string file_path, std::string name)
    : Object(std::move(handle), std::move(file_path), std::move(name)) {
  Handle type(H5_CALL(H5Dget_type(handle_.id()), where()));
  type_ = describe_type(type.id(), where());
  Handle space(H5_CALL(H5Dget_space(handle_.id()), where()));
  const int rank = H5_CALL(H5Sget_simple_extent_ndims(space.id()), where());
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) H5_CALL(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), where());
  // Guard against absurd shapes before anyone sizes a buffer from them.
  int64_t bytes = static_cast<int64_t>(type_.size);
  for (const hsize_t d : dims) {
    if (d > static_cast<hsize_t>(std::numeric_limits<int64_t>::max()))
      fail(where(), ": dimension ", d, " is too large");
    dims_.push_back(static_cast<int64_t>(d));
  }
  for (const int64_t d : dims_) bytes = checked_mul(bytes, d, where(), dims_);

  // Where the data lives: in this file only (no external raw-data files, no virtual dataset
  // mapping other files), in chunks a read can afford to allocate.
  Handle dcpl(H5_CALL(H5Dget_create_plist(handle_.id()), where()));
  const H5D_layout_t layout = H5Pget_layout(dcpl.id());
  if (layout == H5D_VIRTUAL)
    fail(where(), " is a virtual dataset (its data lives in other files); this program reads "
                  "datasets stored in the file itself");
  if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED)
    fail(where(), " has an unknown storage layout");
  if (H5_CALL(H5Pget_external_count(dcpl.id()), where()) > 0)
    fail(where(), " keeps its data in external files; this program reads datasets stored in the "
                  "file itself");
  if (layout == H5D_CHUNKED && rank > 0) {
    std::vector<hsize_t> chunk(static_cast<std::size_t>(rank));
    if (H5_CALL(H5Pget_chunk(dcpl.id(), rank, chunk.data()), where()) != rank)
      fail(where(), ": chunk rank differs from the dataset's");
    int64_t chunk_elements = 1;
    bool overflow = false;
    for (const hsize_t c : chunk)
      overflow = overflow || c > static_cast<hsize_t>(std::numeric_limits<int64_t>::max()) ||
                 __builtin_mul_overflow(chunk_elements, static_cast<int64_t>(c), &chunk_elements);
    if (overflow) fail(where(), ": chunk shape is too large");
    check_allocation(chunk_elements, type_.size, where() + ": one chunk");
  }
}

int64_t Dataset::row_elements() const {
  int64_t n = 1;
  for (std::size_t i = 1; i < dims_.size(); ++i) n *= dims_[i];  // cannot overflow: checked
  return n;
}

void Dataset::require_type(Scalar s) const {
  if (!type_.matches(s))
    fail(where(), " has type ", type_.name, ", expected ", scalar_name(s));
}

void Dataset::check_rows(int64_t first, int64_t count, const char* verb) const {
  require_open();
  if (dims_.empty()) fail(where(), ": cannot ", verb, " rows of a scalar dataset");
  if (first < 0 || count < 0 || first > dims_[0] || count > dims_[0] - first)
    fail(where(), ": cannot ", verb, " rows ", range_text(first, count), ", the dataset has ",
         dims_[0], " rows");
}

namespace {

// Selects rows [first, first + count) of `dataset` in its file space; returns {file, memory}.
std::pair<Handle, Handle> row_spaces(hid_t dataset, const std::vector<int64_t>& dims,
                                     int64_t first, int64_t count, const std::string& where) {
  Handle file_space(H5_CALL(H5Dget_space(dataset), where));
  std::vector<hsize_t> start(dims.size(), 0);
  std::vector<hsize_t> extent = to_hsize(dims);
  start[0] = static_cast<hsize_t>(first);
  extent[0] = static_cast<hsize_t>(count);
  H5_CALL(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr,
                              extent.data(), nullptr),
          where);
  Handle mem_space(H5_CALL(
      H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), where));
  return {std::move(file_space), std::move(mem_space)};
}

}  // namespace

void Dataset::read_rows(Scalar mem, int64_t first, int64_t count, void* out) const {
  check_rows(first, count, "read");
  if (count == 0 || row_elements() == 0) return;
  const std::string what = concat(where(), ": reading rows ", range_text(first, count));
  auto [file_space, mem_space] = row_spaces(handle_.id(), dims_, first, count, what);
  H5_CALL(H5Dread(handle_.id(), native_type(mem), mem_space.id(), file_space.id(), H5P_DEFAULT,
                  out),
          what);
}

void Dataset::write_rows(Scalar mem, int64_t first, int64_t count, const void* in) {
  check_rows(first, count, "write");
  if (count == 0 || row_elements() == 0) return;
  const std::string what = concat(where(), ": writing rows ", range_text(first, count));
  auto [file_space, mem_space] = row_spaces(handle_.id(), dims_, first, count, what);
  H5_CALL(H5Dwrite(handle_.id(), native_type(mem), mem_space.id(), file_space.id(), H5P_DEFAULT,
                   in),
          what);
}

std::optional<RawLayout> Dataset::raw_layout(Scalar mem) const {
  static_assert(std::endian::native == std::endian::little, "raw rows assume a little-endian host");
  require_open();
  if (dims_.empty() || rows() == 0 || row_elements() == 0) return std::nullopt;
  const std::string what = where() + ": locating rows in the file";
  {
    Handle type(H5_CALL(H5Dget_type(handle_.id()), what));
    if (H5_CALL(H5Tequal(type.id(), file_type(mem)), what) <= 0) return std::nullopt;
  }
  RawLayout out;
  out.row_bytes = row_elements() * static_cast<int64_t>(scalar_size(mem));
  Handle dcpl(H5_CALL(H5Dget_create_plist(handle_.id()), what));
  const H5D_layout_t layout = H5Pget_layout(dcpl.id());
  if (layout == H5D_CONTIGUOUS) {
    const haddr_t at = H5Dget_offset(handle_.id());  // HADDR_UNDEF where never written
    H5Eclear2(H5E_DEFAULT);
    if (at == HADDR_UNDEF) return std::nullopt;
    out.chunk_rows = rows();
    out.chunk_offsets.push_back(static_cast<int64_t>(at));
    return out;
  }
  if (layout != H5D_CHUNKED) return std::nullopt;  // compact: the rows live in the header
  if (H5_CALL(H5Pget_nfilters(dcpl.id()), what) != 0) return std::nullopt;
  std::vector<hsize_t> chunk(dims_.size());
  H5_CALL(H5Pget_chunk(dcpl.id(), rank(), chunk.data()), what);
  for (std::size_t i = 1; i < dims_.size(); ++i)
    if (static_cast<int64_t>(chunk[i]) != dims_[i]) return std::nullopt;  // chunks split rows
  out.chunk_rows = static_cast<int64_t>(chunk[0]);
  const int64_t chunks = (rows() + out.chunk_rows - 1) / out.chunk_rows;
  // Each chunk is looked up once (a B-tree search): past a million, HDF5 may read them itself.
  if (chunks > (int64_t{1} << 20)) return std::nullopt;
  const hsize_t chunk_bytes = static_cast<hsize_t>(out.chunk_rows * out.row_bytes);
  std::vector<hsize_t> coord(dims_.size(), 0);
  out.chunk_offsets.reserve(static_cast<std::size_t>(chunks));
  for (int64_t c = 0; c < chunks; ++c) {
    coord[0] = static_cast<hsize_t>(c * out.chunk_rows);
    unsigned filter_mask = 0;
    haddr_t at = HADDR_UNDEF;
    hsize_t size = 0;
    H5_CALL(H5Dget_chunk_info_by_coord(handle_.id(), coord.data(), &filter_mask, &at, &size), what);
    if (at == HADDR_UNDEF || filter_mask != 0 || size != chunk_bytes) return std::nullopt;
    out.chunk_offsets.push_back(static_cast<int64_t>(at));
  }
  return out;
}

// ---- File ----------------------------------------------------------------------------------

File File::open(const std::string& path, bool writable) {
  silence_hdf5();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail(path, ": no such file");
  if (std::filesystem::is_directory(status)) fail(path, ": is a directory, not an HDF5 file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail(path, ": cannot be read (", std::strerror(errno), ")");
  }
#if H5_VERSION_GE(1, 12, 0)
  const htri_t is_hdf5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
#endif
  if (is_hdf5 == 0) fail(path, ": not an HDF5 file");
  if (is_hdf5 < 0) fail(path, ": not an HDF5 file (", h5_error_text(), ")");
  const hid_t file = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) fail(path, ": cannot open", writable ? " for writing" : "", ": ", h5_error_text());
  return File(Handle(file), path);
}

File File::create(const std::string& path, bool truncate) {
  silence_hdf5();
  const hid_t file =
      H5Fcreate(path.c_str(), truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) fail(path, ": cannot create: ", h5_error_text());
  return File(Handle(file), path);
}

File File::open_image(const void* data, std::size_t size, const std::string& name) {
  silence_hdf5();
  if (data == nullptr || size == 0 ||
      !has_hdf5_signature(static_cast<const unsigned char*>(data), size))
    fail(name, ": not an HDF5 file");
  // The core driver opens the image under a name that must not exist on disk (it refuses one
  // that does), and that no other open image shares (HDF5 would take them for the same file).
  static std::atomic<uint64_t> counter{0};
  std::string internal;
  do {
    internal = "<dsa memory image " + std::to_string(counter.fetch_add(1)) + ">";
  } while (std::filesystem::exists(internal));
  const std::string what = name + ": opening a file image";
  Handle fapl(H5_CALL(H5Pcreate(H5P_FILE_ACCESS), what));
  H5_CALL(H5Pset_fapl_core(fapl.id(), std::size_t{1} << 16, /*backing_store=*/0), what);
  H5_CALL(H5Pset_file_image(fapl.id(), const_cast<void*>(data), size), what);
  const hid_t file = H5Fopen(internal.c_str(), H5F_ACC_RDONLY, fapl.id());
  if (file < 0) fail(name, ": cannot open: ", h5_error_text());
  return File(Handle(file), name);
}

File::Link File::lookup(const std::string& name) const { return resolve(name).kind; }

File::LinkInfo File::resolve(const std::string& name) const {
  require_open();
  if (name.empty() || name[0] != '/') fail(where(), ": dataset path ", name, " is not absolute");
  const Handle lapl = link_access_plist(where());
  LinkInfo out;
  // Walk "/kv", then "/kv/ckv": H5Lexists needs every parent to exist. Each link on the way is
  // looked at before it is followed: soft links must resolve, external ones are not followed.
  std::size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    out.at = name.substr(0, pos);
    const char* prefix = out.at.c_str();
    const std::string what = where() + ": " + out.at;
    if (H5_CALL(H5Lexists(handle_.id(), prefix, lapl.id()), what) == 0) {
      out.kind = Link::missing;
      return out;
    }
    H5L_info_t link{};
    H5_CALL(H5Lget_info(handle_.id(), prefix, &link, lapl.id()), what);
    if (link.type == H5L_TYPE_SOFT || link.type == H5L_TYPE_EXTERNAL) {
      // The link's value: a path (soft), or flags, a file name and a path (external).
      std::vector<char> value(std::min<std::size_t>(link.u.val_size, 1u << 16) + 1, '\0');
      H5_CALL(H5Lget_val(handle_.id(), prefix, value.data(), value.size() - 1, lapl.id()), what);
      if (link.type == H5L_TYPE_SOFT) {
        out.target = printable(std::string(value.data(), strnlen(value.data(), value.size())));
      } else {
        const char* file = nullptr;
        const char* object = nullptr;
        unsigned flags = 0;
        if (H5Lunpack_elink_val(value.data(), value.size() - 1, &flags, &file, &object) >= 0 &&
            file != nullptr && object != nullptr)
          out.target = printable(std::string(file) + ":" + object);
        H5Eclear2(H5E_DEFAULT);
      }
    }
    if (link.type != H5L_TYPE_HARD && link.type != H5L_TYPE_SOFT) {
      out.kind = Link::external;
      return out;
    }
    const htri_t exists = H5Oexists_by_name(handle_.id(), prefix, lapl.id());
    if (exists < 0 && link.type == H5L_TYPE_SOFT)  // a loop, or a path through another file
      fail(what, " is a soft link to ", out.target, ", which cannot be followed: ", h5_error_text());
    if (exists < 0)
      fail_call(__FILE__, __LINE__, "H5Oexists_by_name(file, path, lapl)", what + ": " + h5_error_text());
    if (exists == 0) {
      out.kind = link.type == H5L_TYPE_SOFT ? Link::dangling : Link::missing;
      return out;
    }
    Handle object(H5_CALL(H5Oopen(handle_.id(), prefix, lapl.id()), what));
    const H5I_type_t type = H5Iget_type(object.id());
    if (pos == std::string::npos) {
      out.kind = type == H5I_DATASET ? Link::dataset : Link::other;
      return out;
    }
    if (type != H5I_GROUP) {  // "/queries" is a dataset: "/queries/seq_lens" cannot exist
      out.kind = Link::other;
      return out;
    }
    out.target.clear();
  }
}

Dataset File::open_dataset(const std::string& name) const {
  require_open();
  const std::string what = where() + ": " + name;
  Handle dapl = dataset_access_plist(what);
  Handle dataset(H5_CALL(H5Dopen2(handle_.id(), name.c_str(), dapl.id()), what));
  return Dataset(std::move(dataset), file_path_, name);
}

Dataset File::create_dataset(const std::string& name, Scalar type, const std::vector<int64_t>& dims,
                             const std::vector<int64_t>& chunk, bool allocate_now) {
  require_open();
  const std::string what = where() + ": creating " + name;
  if (dims.size() != chunk.size()) fail(what, ": chunk rank differs from the dataset's");
  bool any_zero = false;
  int64_t bytes = static_cast<int64_t>(scalar_size(type));
  for (const int64_t d : dims) {
    if (d < 0) fail(what, ": negative dimension in ", shape_text(dims));
    any_zero = any_zero || d == 0;
    bytes = checked_mul(bytes, d, what, dims);
  }

  Handle lcpl(H5_CALL(H5Pcreate(H5P_LINK_CREATE), what));
  H5_CALL(H5Pset_create_intermediate_group(lcpl.id(), 1), what);
  Handle dcpl(H5_CALL(H5Pcreate(H5P_DATASET_CREATE), what));
  // No modification times in the file: the same data must give the same bytes (dsa-gen --seed).
  H5_CALL(H5Pset_obj_track_times(dcpl.id(), 0), what);
  // A chunk may not exceed a fixed dimension, so datasets with an empty dimension stay
  // contiguous (they hold nothing anyway).
  if (!dims.empty() && !any_zero) {
    std::vector<hsize_t> c(dims.size());
    for (std::size_t i = 0; i < dims.size(); ++i)
      c[i] = static_cast<hsize_t>(std::clamp<int64_t>(chunk[i], 1, dims[i]));
    H5_CALL(H5Pset_chunk(dcpl.id(), static_cast<int>(c.size()), c.data()), what);
  }
  if (allocate_now) {
    H5_CALL(H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY), what);
    H5_CALL(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER), what);
  }
  const std::vector<hsize_t> extent = to_hsize(dims);
  Handle space(dims.empty()
                   ? H5_CALL(H5Screate(H5S_SCALAR), what)
                   : H5_CALL(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr),
                             what));
  Handle dapl = dataset_access_plist(what);
  Handle dataset(H5_CALL(H5Dcreate2(handle_.id(), name.c_str(), file_type(type), space.id(),
                                    lcpl.id(), dcpl.id(), dapl.id()),
                         what));
  return Dataset(std::move(dataset), file_path_, name);
}

void File::flush() {
  require_open();
  H5_CALL(H5Fflush(handle_.id(), H5F_SCOPE_LOCAL), where() + ": flushing");
}

void File::close() { handle_.close(); }

int File::raw_descriptor() const {
  require_open();
  const std::string what = where() + ": finding the file's descriptor";
  Handle fapl(H5_CALL(H5Fget_access_plist(handle_.id()), what));
  if (H5_CALL(H5Pget_driver(fapl.id()), what) != H5FD_SEC2) return -1;
  Handle fcpl(H5_CALL(H5Fget_create_plist(handle_.id()), what));
  hsize_t user_block = 0;
  H5_CALL(H5Pget_userblock(fcpl.id(), &user_block), what);
  if (user_block != 0) return -1;  // addresses would count from its end
  void* handle = nullptr;
  H5_CALL(H5Fget_vfd_handle(handle_.id(), H5P_DEFAULT, &handle), what);
  const int fd = ::dup(*static_cast<int*>(handle));
  if (fd < 0) fail(what, ": dup: ", std::strerror(errno));
  return fd;
}

}  // namespace dsa::io::h5
