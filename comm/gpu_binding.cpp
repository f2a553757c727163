#include "comm/gpu_binding.hpp"

#include <map>
#include <utility>

#include "common/error.hpp"

namespace dsa::comm {

int choose_gpu(int local_rank, int local_size, int visible, const std::string& host) {
  DSA_REQUIRE(visible > 0, "no CUDA GPU is visible on host ", host, " (use --backend cpu, or check CUDA_VISIBLE_DEVICES)");
  if (visible == 1) return 0;
  DSA_REQUIRE(local_size <= visible, local_size, " ranks on host ", host, " but only ", visible,
              " GPUs visible: start one rank per GPU");
  return local_rank;
}

void check_distinct_gpus(const std::vector<std::string>& hosts, const std::vector<std::string>& gpu_ids) {
  std::map<std::pair<std::string, std::string>, size_t> owner;
  for (size_t r = 0; r < hosts.size() && r < gpu_ids.size(); ++r) {
    const auto [it, fresh] = owner.emplace(std::make_pair(hosts[r], gpu_ids[r]), r);
    DSA_REQUIRE(fresh, "ranks ", it->second, " and ", r, " on host ", hosts[r], " share GPU ", gpu_ids[r],
                ": start one rank per GPU (or give each rank its own CUDA_VISIBLE_DEVICES)");
  }
}

void check_slurm_world(int world_size, const char* slurm_ntasks, const char* slurm_job_id) {
  if (slurm_ntasks == nullptr || *slurm_ntasks == '\0') return;
  int ntasks = 0;
  try {
    ntasks = std::stoi(slurm_ntasks);
  } catch (const std::exception&) {
    return;  // not a number: not ours to judge
  }
  DSA_REQUIRE(ntasks == world_size, "Slurm job ", slurm_job_id ? slurm_job_id : "?", " has SLURM_NTASKS=", ntasks,
              " but the MPI world has ", world_size, " rank(s): launch with srun --mpi=pmix (or mpirun) so the ",
              ntasks, " tasks form one MPI job");
}

}  // namespace dsa::comm
