// Per-batch text attributes of a workload file: an addition to SPEC §2 made by dsa-import, so
// that each batch keeps where it came from (a FlashInfer-Bench workload's uuid, axes, inputs).
//
// Layout (readable with h5py): the dataset /batches/attributes, int64 [num_batches] with entry
// i = i, carries one variable-length UTF-8 string attribute per batch and key, named
// "<key>[<i>]", e.g. f["/batches/attributes"].attrs["uuid[3]"]. A file without the dataset has
// no per-batch attributes; readers that do not know it ignore it (the workload checks look at
// the SPEC's datasets only).
//
// Cost: HDF5 finds an attribute by a linear scan of the object's header, so writing or reading
// n attributes takes O(n^2) name comparisons; fine for the hundreds of batches of a
// FlashInfer-Bench definition, slow past some ten thousand attributes.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace dsa::io {

// One map per batch: key -> text. Keys are non-empty and made of letters, digits, '_', '.'
// and '-' (so "<key>[<i>]" parses back unambiguously).
using BatchAttributes = std::vector<std::map<std::string, std::string>>;

inline constexpr const char* kBatchAttributesDataset = "/batches/attributes";

// Adds the attributes to an existing, complete workload file (opened read-write). `batches`
// must hold one map per batch of /batches/offsets; the dataset must not exist yet. Throws
// dsa::Error with one line naming the file.
void write_batch_attributes(const std::string& path, const BatchAttributes& batches);

// The per-batch attributes of `path`: one map per batch, or an empty vector when the file has
// no /batches/attributes. A malformed dataset (wrong type or length, an attribute name that is
// not "<key>[<i>]" with i < num_batches, a non-string attribute) throws with one line.
BatchAttributes read_batch_attributes(const std::string& path);

}  // namespace dsa::io
