// The fixed shapes of DeepSeek-V3.2 sparse attention (SPEC §1). Every layer takes its sizes
// from here; nothing else spells these numbers.
#pragma once

#include <cstdint>

namespace dsa {

inline constexpr int kPageSize = 64;        // tokens per KV page; global id = page * 64 + offset
inline constexpr int kTopK = 2048;          // indexer selects this many tokens per row
inline constexpr int kIndexHeads = 64;      // Hi
inline constexpr int kIndexHeadDim = 128;   // Di
inline constexpr int kHeads = 16;           // H, attention heads
inline constexpr int kCkvDim = 512;         // Dc, latent ("ckv", also V)
inline constexpr int kKpeDim = 64;          // Dr, rope part

// Index K cache page: 64 tokens x 128 e4m3 values, then 64 little-endian float32 scales.
inline constexpr int kIndexPageFp8Bytes = kPageSize * kIndexHeadDim;          // 8192
inline constexpr int kIndexPageBytes = kIndexPageFp8Bytes + kPageSize * 4;    // 8448

inline constexpr int64_t pages_for(int64_t tokens) { return (tokens + kPageSize - 1) / kPageSize; }

}  // namespace dsa
