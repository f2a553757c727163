// Gathers each rank's slice of a batch onto rank 0, each slice landing where it belongs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "comm/world.hpp"

namespace dsa::comm {

// `cuts` has one entry per active rank plus one: active rank r owns batch rows
// [cuts[r], cuts[r+1]) (absolute or batch-relative, only differences matter). Ranks
// r >= cuts.size() - 1 are idle and take no part in the transfer beyond the collective call.
//
// Non-root active ranks pass their rows in `send` (row_bytes each). The root passes `recv`, the
// whole batch's buffer, with its own rows already computed in place at
// (cuts[0] .. cuts[1]) - cuts[0]; the others' rows are written into `recv` directly, no staging copy.
void gather_rows(const World& world, const void* send, void* recv, const std::vector<int64_t>& cuts,
                 size_t row_bytes);

}  // namespace dsa::comm
