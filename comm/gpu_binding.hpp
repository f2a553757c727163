// Which GPU a rank uses, and whether the launch is sane. Pure logic (no CUDA calls): the
// caller passes what it sees, so every rule is tested without a GPU.
#pragma once

#include <string>
#include <vector>

namespace dsa::comm {

// One rank per GPU. `visible` is the number of CUDA devices this process sees.
//  - none visible: refused;
//  - exactly one visible: that one (the launcher isolated GPUs per rank, or one rank per node);
//  - several visible: the node-local rank's own, refused when more local ranks than GPUs.
// Returns the device ordinal or throws dsa::Error naming the host and the counts.
int choose_gpu(int local_rank, int local_size, int visible, const std::string& host);

// After binding: `gpu_ids[r]` identifies rank r's GPU (e.g. its PCI bus id), `hosts[r]` its
// host. Two ranks on one host with the same GPU are refused (a launch that isolated nothing
// but left one device visible to every rank).
void check_distinct_gpus(const std::vector<std::string>& hosts, const std::vector<std::string>& gpu_ids);

// Under Slurm (SLURM_NTASKS set), the MPI world must have SLURM_NTASKS ranks: otherwise the
// launcher started N independent copies of rank 0 (srun without MPI support) or too few ranks.
// `slurm_ntasks` and `slurm_job_id` are the environment's values (null when unset).
void check_slurm_world(int world_size, const char* slurm_ntasks, const char* slurm_job_id);

}  // namespace dsa::comm
