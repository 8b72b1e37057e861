// Decode-time eviction: a kv::cache whose heads never hold more than
// budget + slack tokens. Each decode step appends one token to every head of a
// layer; a head that passes budget + slack is compacted back to `budget` tokens
// with the chosen policy (slack > 0 evicts in batches, so the O(budget)
// compaction is amortized over slack + 1 steps). Buffers are sized at
// construction: appends, attention and eviction allocate nothing for
// per-token formats (KIVI keys re-group on eviction and do allocate).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/core/tensor_view.hpp"
#include "cinch/kv/cache.hpp"

namespace cinch::kv {

enum class decode_policy : std::uint8_t {
  streaming,  // StreamingLLM: the first `sinks` tokens and the most recent ones
  h2o,        // H2O: heavy hitters by attention accumulated over every attended query, plus a recent window
  tova,       // TOVA: the current query's attention averaged over all heads; every head keeps the same tokens
  knorm,      // KNorm: the keys of smallest L2 norm, plus a recent window
};

struct bounded_options {
  decode_policy policy = decode_policy::h2o;
  std::int64_t budget = 0;  // tokens each head keeps after an eviction, >= 1
  int sinks = 0;            // first tokens always kept (StreamingLLM: 4)
  // Most recent tokens always kept; -1 = the policy's default: everything but the
  // sinks for streaming, budget / 2 for h2o (the paper's even heavy / recent
  // split), 0 for tova and knorm. sinks + recent <= budget.
  std::int64_t recent = -1;
  std::int64_t slack = 0;   // extra tokens a head may hold before it is compacted, >= 0

  [[nodiscard]] static bounded_options streaming_llm(std::int64_t budget, int sinks = 4) {
    return {decode_policy::streaming, budget, sinks, -1, 0};
  }
  [[nodiscard]] static bounded_options heavy_hitters(std::int64_t budget) { return {decode_policy::h2o, budget, 0, -1, 0}; }
};

class bounded_cache {
 public:
  // errc::invalid_argument for a budget < 1, sinks or slack < 0, or sinks + recent
  // > budget; the cache's own errors for the rest.
  bounded_cache(const cache_config& config, const bounded_options& options);

  // One decode token for every head of `layer`: k, v [kv_heads, head_dim] f32.
  // Evicts the heads that then hold more than budget + slack tokens.
  void append(int layer, const tensor_view& k, const tensor_view& v);

  // Decode attention of q [q_heads, head_dim] over the layer (kv::decode_attention),
  // and, for h2o and tova, the attention each cached token received from q, which
  // those policies score by (computed from the packed codes, not stored).
  void attend(int layer, const tensor_view& q, const tensor_view& out);

  [[nodiscard]] const cache& kv() const noexcept { return cache_; }
  [[nodiscard]] const bounded_options& options() const noexcept { return options_; }
  // Tokens evicted so far, over all heads.
  [[nodiscard]] std::int64_t evicted() const noexcept { return evicted_; }
  // The policy's score of every token a head holds, oldest first (higher = keep;
  // empty for streaming).
  [[nodiscard]] std::span<const float> scores(int layer, int head) const;

 private:
  void observe(int layer, const tensor_view& q);
  void evict(int layer);
  void keep_best(std::span<const float> score, std::int64_t n);

  cache cache_;
  bounded_options options_;
  std::int64_t recent_ = 0;
  std::int64_t evicted_ = 0;
  std::vector<std::vector<float>> scores_;  // [layer * kv_heads + head], capacity budget + slack + 1
  std::vector<std::int32_t> order_, keep_;  // eviction scratch
  std::vector<float> probabilities_;        // [q_heads, budget + slack + 1]
};

}  // namespace cinch::kv
