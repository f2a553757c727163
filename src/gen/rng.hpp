// Counter-based random numbers for dsa-gen: a stream is keyed by (seed, stream, index), so
// any page or row can be generated alone, on any thread, and gives the same values everywhere.
// Integer arithmetic only, plus single IEEE operations whose result the standard fixes
// (int -> float conversion, one multiply or divide); no libm, no std:: distributions.
#pragma once

#include <cstdint>

namespace dsa::gen::detail {

// The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection on 64-bit words that mixes
// every input bit into every output bit.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Independent streams: one per kind of data, so that the datasets a file leaves out never
// change the ones it holds.
enum class Stream : uint64_t {
  batch_rows = 1,  // rows per batch, keyed by batch
  seq_len,         // keyed by row (decode: by request)
  page_order,      // page permutation, keyed by batch (decode: 0)
  garbage,         // block-table entries past seq_len, keyed by row (decode: by request)
  sparse,          // sparse_indices, keyed by row
  index_k,         // keyed by page
  ckv,
  kpe,
  q_index,         // keyed by row
  weights,
  q_nope,
  q_pe,
};

class Rng {
 public:
  Rng(uint64_t seed, Stream stream, uint64_t index) {
    uint64_t key = mix64(seed + 0x9E3779B97F4A7C15ull);
    key = mix64(key ^ (static_cast<uint64_t>(stream) * 0xD1B54A32D192ED03ull));
    state_ = mix64(key ^ mix64(index + 0x632BE59BD9B4E019ull));
  }

  // splitmix64: a Weyl sequence through the finaliser.
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix64(state_);
  }

  // Uniform in [0, n) for 1 <= n <= 2^32 (Lemire's multiply-shift; the bias, below 2^-32 * n,
  // does not matter here and keeps the draw count fixed).
  uint32_t below(uint64_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }

  // Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms, centred and scaled
  // to unit variance (bounded at +-3.46; a bell shape is all the data needs). The integer sum
  // converts to float exactly; the one multiply rounds the same way on every IEEE machine.
  float normal() {
    const uint64_t r = next();
    const int32_t sum = static_cast<int32_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) +
                                             ((r >> 32) & 0xFFFF) + (r >> 48));
    return static_cast<float>(sum - 131070) * kInvSd;
  }

 private:
  // 1 / sqrt(4 * (65536^2 - 1) / 12): the standard deviation of the sum.
  static constexpr float kInvSd = 2.6428997921303014e-05f;
  uint64_t state_ = 0;
};

}  // namespace dsa::gen::detail
