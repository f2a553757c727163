// Explicit instantiations: the portable sparse MLA kernel with 5 pipeline stages.
#include "kernels/attention/portable/sparse_mla_fwd.cuh"

namespace dsa::cuda::attn {

const void* sparse_mla_fwd_kernel_s5(bool exact_p) {
  return exact_p ? reinterpret_cast<const void*>(&sparse_mla_fwd_kernel<5, true>)
                 : reinterpret_cast<const void*>(&sparse_mla_fwd_kernel<5, false>);
}

}  // namespace dsa::cuda::attn
