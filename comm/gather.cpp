#include "comm/gather.hpp"

#include <limits>

#include "common/error.hpp"

namespace dsa::comm {

void gather_rows(const World& world, const void* send, void* recv, const std::vector<int64_t>& cuts,
                 size_t row_bytes) {
  const int active = static_cast<int>(cuts.size()) - 1;
  DSA_REQUIRE(active >= 1 && active <= world.size(), "gather_rows: ", active, " active ranks of ", world.size());
  DSA_REQUIRE(row_bytes > 0 && row_bytes <= size_t(std::numeric_limits<int>::max()),
              "gather_rows: row size ", row_bytes, " bytes out of range");
  const int64_t batch_rows = cuts.back() - cuts.front();
  DSA_REQUIRE(batch_rows <= std::numeric_limits<int>::max(), "gather_rows: batch of ", batch_rows, " rows too large");

  // Counts and displacements in rows (a contiguous row type), so large batches stay within int.
  MPI_Datatype row_type;
  DSA_CHECK_MPI(MPI_Type_contiguous(static_cast<int>(row_bytes), MPI_BYTE, &row_type));
  DSA_CHECK_MPI(MPI_Type_commit(&row_type));

  const int me = world.rank();
  const int my_rows = me < active ? static_cast<int>(cuts[static_cast<size_t>(me) + 1] - cuts[static_cast<size_t>(me)]) : 0;
  if (world.is_root()) {
    std::vector<int> counts(static_cast<size_t>(world.size()), 0), displs(static_cast<size_t>(world.size()), 0);
    for (int r = 0; r < active; ++r) {
      counts[static_cast<size_t>(r)] = static_cast<int>(cuts[static_cast<size_t>(r) + 1] - cuts[static_cast<size_t>(r)]);
      displs[static_cast<size_t>(r)] = static_cast<int>(cuts[static_cast<size_t>(r)] - cuts.front());
    }
    DSA_CHECK_MPI(MPI_Gatherv(MPI_IN_PLACE, 0, row_type, recv, counts.data(), displs.data(), row_type, 0,
                              world.comm()));
  } else {
    DSA_CHECK_MPI(MPI_Gatherv(send, my_rows, row_type, nullptr, nullptr, nullptr, row_type, 0, world.comm()));
  }
  DSA_CHECK_MPI(MPI_Type_free(&row_type));
}

}  // namespace dsa::comm
