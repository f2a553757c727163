#include <algorithm>
#include <thread>

#include "comm/gpu_binding.hpp"
#include "common/cores.hpp"
#include "common/error.hpp"
#include "src/report/report.hpp"
#include "src/run/backend.hpp"

namespace dsa::run {

double load_kv(Backend& backend, const io::WorkloadFile& workload) {
  double reading = 0;
  backend.load_kv(workload.stage(), workload.info().num_pages,
                  [&](int64_t first, int64_t count, const io::KvPages& into) {
                    const double t = report::now_seconds();
                    workload.read_kv_pages(first, count, into);
                    reading += report::now_seconds() - t;
                  });
  return reading;
}

std::unique_ptr<Backend> make_backend(const std::string& which, int threads, const comm::World& world) {
  if (threads == 0) threads = cores_share(world.local_size());
#ifdef DSA_HAVE_CUDA
  const int gpus = visible_cuda_devices();
  const bool every_rank_has_gpu = world.all(gpus > 0);
  if (which == "cuda" || (which == "auto" && every_rank_has_gpu))
    return make_cuda_backend(comm::choose_gpu(world.local_rank(), world.local_size(), gpus, world.host()));
#else
  DSA_REQUIRE(which != "cuda", "dsa-run: --backend cuda, but this build has no CUDA backend");
#endif
  return make_cpu_backend(threads);
}

}  // namespace dsa::run
