// One error type for the whole job, and the checks that raise it.
//
// Every failed CUDA, NCCL, MPI or HDF5 call, and every bad input, becomes a dsa::Error whose
// message is one line: "[rank R] file:line: what failed: why". main() prints it and exits
// non-zero (or aborts MPI when other ranks may be waiting).
//
// The macros expand only where used, so this header needs none of the libraries it can check:
// a translation unit that uses DSA_CHECK_CUDA includes cuda_runtime.h itself, and so on.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dsa {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The MPI rank named in error messages; -1 until comm/ sets it (single process, or before MPI).
void set_error_rank(int rank);
int error_rank();

// "[rank R] " or "" when no rank is known.
std::string rank_prefix();

[[noreturn]] void fail_call(const char* file, int line, const char* call, const std::string& why);

// Concatenates its arguments with operator<< into one message.
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// Throws dsa::Error with a message built from the arguments (no file:line: for user-facing input errors).
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(rank_prefix() + concat(std::forward<Args>(args)...));
}

}  // namespace dsa

// Input checks: DSA_REQUIRE(cond, "message parts", ...) throws dsa::Error with the message.
#define DSA_REQUIRE(cond, ...)          \
  do {                                  \
    if (!(cond)) ::dsa::fail(__VA_ARGS__); \
  } while (0)

#define DSA_CHECK_CUDA(call)                                                                 \
  do {                                                                                       \
    const cudaError_t dsa_err_ = (call);                                                     \
    if (dsa_err_ != cudaSuccess)                                                             \
      ::dsa::fail_call(__FILE__, __LINE__, #call,                                            \
                       std::string(cudaGetErrorName(dsa_err_)) + ": " + cudaGetErrorString(dsa_err_)); \
  } while (0)

// After a kernel launch: the launch's own error (bad configuration, too much shared memory).
#define DSA_CHECK_LAUNCH() DSA_CHECK_CUDA(cudaGetLastError())

#define DSA_CHECK_NCCL(call)                                                                 \
  do {                                                                                       \
    const ncclResult_t dsa_res_ = (call);                                                    \
    if (dsa_res_ != ncclSuccess && dsa_res_ != ncclInProgress)                               \
      ::dsa::fail_call(__FILE__, __LINE__, #call, ncclGetErrorString(dsa_res_));             \
  } while (0)

#define DSA_CHECK_MPI(call)                                                                  \
  do {                                                                                       \
    const int dsa_rc_ = (call);                                                              \
    if (dsa_rc_ != MPI_SUCCESS) {                                                            \
      char dsa_msg_[MPI_MAX_ERROR_STRING];                                                   \
      int dsa_len_ = 0;                                                                      \
      MPI_Error_string(dsa_rc_, dsa_msg_, &dsa_len_);                                        \
      ::dsa::fail_call(__FILE__, __LINE__, #call, std::string(dsa_msg_, dsa_len_));          \
    }                                                                                        \
  } while (0)

// HDF5 calls return a negative value (herr_t or hid_t) on failure; `what` names the file or
// dataset concerned. The HDF5 error stack's innermost message is added by io/h5.cpp.
#define DSA_CHECK_H5(call, what)                                                             \
  ([&]() {                                                                                   \
    auto dsa_h5_ = (call);                                                                   \
    if (dsa_h5_ < 0) ::dsa::fail_call(__FILE__, __LINE__, #call, std::string(what));         \
    return dsa_h5_;                                                                          \
  }())
