// How many CPU cores this process may run on, and a rank's share of them.
#pragma once

namespace dsa {

// Cores in this process's CPU affinity mask (what the launcher's binding left it: 1 under
// `mpirun --bind-to core`, --cpus-per-task under srun), else every core the machine has.
int usable_cores();

// Threads a rank should start for work of its own: the node's cores shared among its
// `local_ranks` ranks, but no more than its affinity allows; at least 1.
int cores_share(int local_ranks);

}  // namespace dsa
