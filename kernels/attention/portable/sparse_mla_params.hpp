// Parameters and fixed geometry of the portable sparse MLA decode kernel (SPEC §1.2). Plain
// struct, shared by the launcher (attention.cu, host) and the device code (sparse_mla_fwd.cuh).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/shapes.hpp"

namespace dsa::cuda::attn {

struct SparseMlaParams {
  const uint16_t* q_nope = nullptr;   // [rows, 16, 512] bf16
  const uint16_t* q_pe = nullptr;     // [rows, 16, 64] bf16
  const uint16_t* ckv = nullptr;      // [num_tokens, 512] bf16 (token id = page * 64 + offset); also V
  const uint16_t* kpe = nullptr;      // [num_tokens, 64] bf16
  const int32_t* indices = nullptr;   // [rows, 2048] token ids; -1 (or any id outside the cache) = unused
  int64_t num_tokens = 0;             // num_pages * 64
  int64_t rows = 0;
  float scale_log2 = 0.f;             // sm_scale * log2(e): logits go straight to the exp2 domain
  int splits = 1;                     // blocks per row = thread-block cluster size (1, 2, 4, 8, 16)
  uint16_t* output = nullptr;         // [rows, 16, 512] bf16 out
  float* lse = nullptr;               // [rows, 16] float32 out, base 2
  // Diagnostics only (null in normal calls): per block kTraceSlots 64-bit stamps of thread 0
  // (globaltimer at entry and exit, clock64 at the phase boundaries), for dsa-bench's probes.
  unsigned long long* trace = nullptr;
};
// Trace slots of a block: 0 globaltimer at entry; clock64 at 1 entry, 2 id list ready, 3 Q and
// tile 0 landed (every tile, one-shot; not written without a tile), 4 main loop done, 5 cluster
// wait done and 6 partials received (not written with one split), 7 output written; one-shot:
// 8 Q fragments loaded (before the tiles land), 9 logits stored, 10 P visible; split exchange:
// 11 partials staged, 12 copies sent, 13 combine weights visible, 14 combine done; the last
// slot: globaltimer at exit.
inline constexpr int kTraceSlots = 16;

// Geometry: one block = 8 warps; a pipeline stage holds one tile of 32 gathered tokens.
inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;
inline constexpr int kTileTokens = 32;
inline constexpr int kQkDim = kCkvDim + kKpeDim;                      // 576
inline constexpr int kCkvRowBytes = kCkvDim * 2;                      // 1024
inline constexpr int kKpeRowBytes = kKpeDim * 2;                      // 128
inline constexpr int kStageCkvBytes = kTileTokens * kCkvRowBytes;     // 32 KB
inline constexpr int kStageBytes = kStageCkvBytes + kTileTokens * kKpeRowBytes;  // 36 KB
inline constexpr int kSPartStride = kTileTokens + 8;                  // floats; +8 avoids bank conflicts
inline constexpr int kSPartBufFloats = 2 * kHeads * kSPartStride;     // two K-halves of S [16, 32]
inline constexpr int kSPartFloats = 2 * kSPartBufFloats;              // double-buffered
inline constexpr int kOPartStride = kCkvDim + 8;                      // floats per head of a split partial (m, l at 512)
inline constexpr int kMaxSplits = 16;
// Rows with at most this many valid ids are not split: one block of the cluster takes them.
inline constexpr int kAloneMaxIds = 3 * kTileTokens;
inline constexpr int kQBytes = kHeads * kQkDim * 2;                   // Q of the row, 18 KB
// A block with at most kOneShotTiles tiles takes them all at once (no online softmax): the
// logits of every tile, one softmax, one P V. Its logits [2 halves][16][kSAllStride] reuse the
// id list and the loop's logit buffers (contiguous, free once every tile is issued); P (bf16
// hi and lo, [16][128] each) and the per-head (m, l) reuse the Q region once Q is in registers.
inline constexpr int kOneShotTiles = 4;
inline constexpr int kSAllStride = kOneShotTiles * kTileTokens + 8;   // floats; +8 spreads the rows' banks
inline constexpr int kPAllBytes = kHeads * kOneShotTiles * kTileTokens * 2;  // one bf16 P, 4 KB
static_assert(2 * kHeads * kSAllStride * 4 <= kTopK * 4 + kSPartFloats * 4, "one-shot logits fit the id list + S");
static_assert(2 * kPAllBytes + kHeads * 8 <= kQBytes, "one-shot P and (m, l) fit the Q region");

// Dynamic shared memory of the kernel with `stages` pipeline stages; `split` adds the buffer
// that receives the other splits' partials of this block's heads.
constexpr size_t sparse_mla_smem_bytes(int stages, bool split) {
  return size_t(stages) * kStageBytes      // gathered ckv + kpe tiles
         + size_t(kQBytes)                 // Q, swizzled for ldmatrix
         + size_t(kTopK) * 4               // the row's compacted valid ids
         + size_t(kSPartFloats) * 4        // partial logits of the two K-halves, two tiles
         + size_t(kWarps) * 4              // per-warp valid counts (compaction scan)
         + size_t(2 * kHeads) * 4          // (unused pad, keeps the receive buffer 16-byte aligned)
         + (split ? size_t(kHeads * kOPartStride + 2 * kHeads) * 4 : 0);  // partials received
}

// Kernel entry points, instantiated per pipeline depth in sparse_mla_fwd_s<stages>.cu (with and
// without the exact-P split); the launcher takes them as untyped function pointers for
// cudaLaunchKernelExC.
const void* sparse_mla_fwd_kernel_s4(bool exact_p);
const void* sparse_mla_fwd_kernel_s5(bool exact_p);

}  // namespace dsa::cuda::attn
