#include "comm/world.hpp"

#include <algorithm>
#include <set>

#include "common/error.hpp"

namespace dsa::comm {

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  // FUNNELED: only the main thread calls MPI (CPU worker threads never do).
  DSA_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // Errors come back as codes that DSA_CHECK_MPI turns into dsa::Error, instead of aborting
  // inside MPI with a message that names no file or rank.
  DSA_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

World::World() {
  DSA_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  DSA_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  set_error_rank(size_ > 1 ? rank_ : -1);

  MPI_Comm local;
  DSA_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
  DSA_CHECK_MPI(MPI_Comm_rank(local, &local_rank_));
  DSA_CHECK_MPI(MPI_Comm_size(local, &local_size_));
  DSA_CHECK_MPI(MPI_Comm_free(&local));

  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  DSA_CHECK_MPI(MPI_Get_processor_name(name, &len));
  std::vector<char> all(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME, '\0');
  DSA_CHECK_MPI(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME,
                              MPI_CHAR, MPI_COMM_WORLD));
  hosts_.resize(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    const char* p = all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME;
    hosts_[static_cast<size_t>(r)] = std::string(p, strnlen(p, MPI_MAX_PROCESSOR_NAME));
  }
}

World::~World() = default;

int World::num_hosts() const {
  return static_cast<int>(std::set<std::string>(hosts_.begin(), hosts_.end()).size());
}

std::string World::agree_on_error(const std::string& my_error) const {
  // The lowest rank with an error broadcasts its message.
  const int mine = my_error.empty() ? size_ : rank_;
  int first = size_;
  DSA_CHECK_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (first == size_) return {};
  std::string message = my_error;
  broadcast(message, first);
  return message;
}

bool World::all(bool mine) const {
  int in = mine ? 1 : 0, out = 0;
  DSA_CHECK_MPI(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  return out == 1;
}

int64_t World::max(int64_t mine) const {
  int64_t out = 0;
  DSA_CHECK_MPI(MPI_Allreduce(&mine, &out, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD));
  return out;
}

double World::max(double mine) const {
  double out = 0;
  DSA_CHECK_MPI(MPI_Allreduce(&mine, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return out;
}

std::vector<std::string> World::all_gather(const std::string& mine) const {
  const int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_), 0);
  DSA_CHECK_MPI(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD));
  for (int r = 1; r < size_; ++r)
    displs[static_cast<size_t>(r)] = displs[static_cast<size_t>(r) - 1] + lens[static_cast<size_t>(r) - 1];
  std::vector<char> all(static_cast<size_t>(displs.back() + lens.back()) + 1);
  DSA_CHECK_MPI(MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR,
                               MPI_COMM_WORLD));
  std::vector<std::string> out(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r)
    out[static_cast<size_t>(r)].assign(all.data() + displs[static_cast<size_t>(r)], static_cast<size_t>(lens[static_cast<size_t>(r)]));
  return out;
}

std::vector<double> World::all_gather(const std::vector<double>& mine) const {
  const int n = static_cast<int>(mine.size());
  // Both reductions on every rank (collectives), then the test.
  const int64_t most = max(int64_t{n}), least = -max(-int64_t{n});
  DSA_REQUIRE(int64_t{n} == static_cast<int64_t>(mine.size()) && most == n && least == n,
              "all_gather: ranks hold different numbers of values (this rank ", n, ")");
  std::vector<double> all(static_cast<size_t>(n) * static_cast<size_t>(size_));
  DSA_CHECK_MPI(MPI_Allgather(mine.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, MPI_COMM_WORLD));
  return all;
}

void World::barrier() const { DSA_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD)); }

namespace {
template <typename T>
void broadcast_vector(std::vector<T>& values, int root, MPI_Datatype type, int rank) {
  int64_t n = static_cast<int64_t>(values.size());
  DSA_CHECK_MPI(MPI_Bcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD));
  if (rank != root) values.resize(static_cast<size_t>(n));
  // MPI counts are int: send in pieces of at most 2^30 elements.
  const int64_t piece = int64_t(1) << 30;
  for (int64_t at = 0; at < n; at += piece) {
    const int count = static_cast<int>(std::min(piece, n - at));
    DSA_CHECK_MPI(MPI_Bcast(values.data() + at, count, type, root, MPI_COMM_WORLD));
  }
}
}  // namespace

void World::broadcast(std::string& value, int root) const {
  std::vector<char> chars(value.begin(), value.end());
  broadcast_vector(chars, root, MPI_CHAR, rank_);
  value.assign(chars.begin(), chars.end());
}

void World::broadcast(std::vector<int32_t>& values, int root) const {
  broadcast_vector(values, root, MPI_INT32_T, rank_);
}

void World::broadcast(std::vector<double>& values, int root) const {
  broadcast_vector(values, root, MPI_DOUBLE, rank_);
}

std::string mpi_library_version() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  DSA_CHECK_MPI(MPI_Get_library_version(version, &len));
  std::string text(version, static_cast<size_t>(len));
  const auto comma = text.find_first_of(",\n");
  return comma == std::string::npos ? text : text.substr(0, comma);
}

}  // namespace dsa::comm
