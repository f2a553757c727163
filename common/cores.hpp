// How many CPU cores this process may run on, and a rank's share of them.
#pragma once

namespace dsa {

// Cores in this process's CPU affinity mask (what the launcher's binding left it: 1 under
// `mpirun --bind-to core`, --cpus-per-task under srun), else every core the machine has.
int usable_cores();

// The node's cores shared among its `local_ranks` ranks, at least 1, whatever the binding.
int node_share(int local_ranks);

// Threads a rank should start for work of its own: node_share, but no more than its affinity
// allows; at least 1.
int cores_share(int local_ranks);

}  // namespace dsa
