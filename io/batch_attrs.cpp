#include "io/batch_attrs.hpp"

#include <charconv>
#include <cstdint>
#include <numeric>

#include "common/error.hpp"
#include "io/h5.hpp"

namespace dsa::io {

namespace {

bool valid_key(const std::string& key) {
  if (key.empty()) return false;
  for (const char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Batches of the file: /batches/offsets holds num_batches + 1 entries.
int64_t num_batches(const h5::File& file) {
  if (file.lookup("/batches/offsets") != h5::File::Link::dataset)
    fail(file.file_path(), ": /batches/offsets is missing, so the batches are unknown");
  const h5::Dataset offsets = file.open_dataset("/batches/offsets");
  if (offsets.rank() != 1 || offsets.rows() < 1)
    fail(offsets.where(), " has shape ", h5::shape_text(offsets.dims()),
         ", expected [num_batches + 1]");
  return offsets.rows() - 1;
}

}  // namespace

void write_batch_attributes(const std::string& path, const BatchAttributes& batches) {
  h5::File file = h5::File::open(path, /*writable=*/true);
  const int64_t n = num_batches(file);
  if (static_cast<int64_t>(batches.size()) != n)
    fail(path, ": ", batches.size(), " sets of batch attributes for ", n, " batches");
  if (file.lookup(kBatchAttributesDataset) != h5::File::Link::missing)
    fail(path, ": ", kBatchAttributesDataset, " exists already");
  for (std::size_t i = 0; i < batches.size(); ++i)
    for (const auto& [key, value] : batches[i]) {
      (void)value;
      if (!valid_key(key))
        fail(path, ": batch ", i, ": attribute key \"", key,
             "\" (expected letters, digits, '_', '.' or '-')");
    }

  h5::Dataset ds = file.create_dataset(kBatchAttributesDataset, h5::Scalar::i64, {n}, {n});
  std::vector<int64_t> index(static_cast<std::size_t>(n));
  std::iota(index.begin(), index.end(), int64_t{0});
  ds.write_rows(0, n, index.data());
  for (std::size_t i = 0; i < batches.size(); ++i)
    for (const auto& [key, value] : batches[i])
      ds.write_string_attribute(concat(key, "[", i, "]"), value);
  file.flush();
  file.close();
}

BatchAttributes read_batch_attributes(const std::string& path) {
  const h5::File file = h5::File::open(path, /*writable=*/false);
  if (file.lookup(kBatchAttributesDataset) == h5::File::Link::missing) return {};
  if (file.lookup(kBatchAttributesDataset) != h5::File::Link::dataset)
    fail(path, ": ", kBatchAttributesDataset, " is not a dataset");
  const int64_t n = num_batches(file);
  const h5::Dataset ds = file.open_dataset(kBatchAttributesDataset);
  ds.require_type(h5::Scalar::i64);
  if (ds.rank() != 1 || ds.rows() != n)
    fail(ds.where(), " has shape ", h5::shape_text(ds.dims()), ", expected [", n,
         "] (one entry per batch)");

  BatchAttributes batches(static_cast<std::size_t>(n));
  for (const std::string& name : ds.attribute_names()) {
    const std::size_t open = name.rfind('[');
    int64_t index = -1;
    bool ok = open != std::string::npos && open > 0 && name.size() > open + 2 && name.back() == ']';
    if (ok) {
      const char* first = name.data() + open + 1;
      const char* last = name.data() + name.size() - 1;
      const auto [ptr, ec] = std::from_chars(first, last, index);
      ok = ec == std::errc() && ptr == last && index >= 0 && valid_key(name.substr(0, open));
    }
    if (!ok)
      fail(ds.where(), ": attribute \"", h5::printable(name), "\" is not named <key>[<batch>]");
    if (index >= n)
      fail(ds.where(), ": attribute \"", name, "\" names batch ", index, ", but the file has ", n,
           " batches");
    if (ds.attribute_type(name).cls != h5::TypeInfo::Class::string)
      fail(ds.where(), ": attribute \"", name, "\" has type ", ds.attribute_type(name).name,
           ", expected a string");
    batches[static_cast<std::size_t>(index)][name.substr(0, open)] = ds.read_string_attribute(name);
  }
  return batches;
}

}  // namespace dsa::io
