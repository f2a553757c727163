// The MPI world as the job sees it: ranks, hosts, node-local ranks, and the few collectives
// the job needs (agreement on errors, broadcasts). Nothing here knows HDF5 or the kernels.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dsa::comm {

// MPI_Init_thread / MPI_Finalize for the life of main(). Works without mpirun (singleton).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

class World {
 public:
  // Reads rank and size of MPI_COMM_WORLD, the node-local rank (MPI_Comm_split_type shared),
  // and every rank's host name; sets the rank named in error messages.
  World();
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool is_root() const { return rank_ == 0; }
  const std::string& host() const { return hosts_[static_cast<size_t>(rank_)]; }
  const std::vector<std::string>& hosts() const { return hosts_; }  // by rank
  int num_hosts() const;
  MPI_Comm comm() const { return MPI_COMM_WORLD; }

  // Every rank passes its error text ("" = fine); all get the first non-empty one by rank
  // order, so all ranks can stop together with the same message.
  std::string agree_on_error(const std::string& my_error) const;

  // Logical AND / MIN / MAX over ranks.
  bool all(bool mine) const;
  int64_t max(int64_t mine) const;
  double max(double mine) const;

  // Every rank's string, by rank, on every rank.
  std::vector<std::string> all_gather(const std::string& mine) const;
  // Every rank's `mine` (the same length on every rank), rank after rank, on every rank.
  std::vector<double> all_gather(const std::vector<double>& mine) const;

  void barrier() const;
  void broadcast(std::string& value, int root = 0) const;
  void broadcast(std::vector<int32_t>& values, int root = 0) const;
  void broadcast(std::vector<double>& values, int root = 0) const;

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::vector<std::string> hosts_;
};

// Open MPI and HDF5-style version strings for the job's header.
std::string mpi_library_version();

}  // namespace dsa::comm
