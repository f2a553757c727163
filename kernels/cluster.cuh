// Thread-block-cluster primitives (PTX, sm_90+) shared by the indexer's and the attention's
// kernels: the two halves of the cluster barrier, the address of a shared-memory variable in
// another block of the cluster, the 8-byte store into it that completes a transaction count on
// that block's mbarrier, a plain store and an atomic addition into it, and the receiver's wait.
#pragma once

#include <cstdint>

namespace dsa::cuda::cluster {

// Arrival with release semantics at cluster scope: this thread's earlier writes are visible to
// every thread of the cluster once its wait returns.
__device__ __forceinline__ void arrive_release() {
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
}
// Arrival that orders nothing (only that this thread has got here).
__device__ __forceinline__ void arrive_relaxed() {
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
}
// Waits for every thread of the cluster to have arrived (acquire semantics at cluster scope).
__device__ __forceinline__ void wait_acquire() { asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory"); }

// Shared-memory address (32-bit, shared::cluster window) of the same variable in block `rank`.
__device__ __forceinline__ uint32_t mapa_shared(uint32_t local_smem_addr, uint32_t rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local_smem_addr), "r"(rank));
  return remote;
}

// An 8-byte store into another block's shared memory whose bytes complete a transaction count on
// that block's mbarrier (both addresses from mapa_shared): the receiver's wait on the mbarrier
// (acquire at cluster scope) then sees the data, with no fence or cluster barrier.
__device__ __forceinline__ void st_async_b32x2(uint32_t remote_addr, uint32_t a, uint32_t b, uint32_t remote_mbar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v2.b32 [%0], {%1, %2}, [%3];" ::"r"(remote_addr),
               "r"(a), "r"(b), "r"(remote_mbar)
               : "memory");
}

// Waits for the phase of this block's mbarrier (shared address) with parity `parity`, with acquire
// semantics at cluster scope: what other blocks of the cluster wrote into this block's shared
// memory before completing the phase (st_async_b32x2, bulk copies counted on it) is visible.
__device__ __forceinline__ void mbar_wait_acquire(uint32_t mbar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(mbar), "r"(parity)
        : "memory");
}

// Relaxed atomic addition to / plain store into another block's shared memory (an address from
// mapa_shared): no generic-address resolution.
__device__ __forceinline__ void red_add_u32(uint32_t remote_addr, uint32_t v) {
  asm volatile("red.relaxed.cluster.shared::cluster.add.u32 [%0], %1;" ::"r"(remote_addr), "r"(v) : "memory");
}
__device__ __forceinline__ void st_u32(uint32_t remote_addr, uint32_t v) {
  asm volatile("st.shared::cluster.u32 [%0], %1;" ::"r"(remote_addr), "r"(v) : "memory");
}

}  // namespace dsa::cuda::cluster
