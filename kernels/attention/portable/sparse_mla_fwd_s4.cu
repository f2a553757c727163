// Explicit instantiations: the portable sparse MLA kernel with 4 pipeline stages.
#include "kernels/attention/portable/sparse_mla_fwd.cuh"

namespace dsa::cuda::attn {

const void* sparse_mla_fwd_kernel_s4(bool exact_p) {
  return exact_p ? reinterpret_cast<const void*>(&sparse_mla_fwd_kernel<4, true>)
                 : reinterpret_cast<const void*>(&sparse_mla_fwd_kernel<4, false>);
}

}  // namespace dsa::cuda::attn
