// Selectors of KV-cache eviction: they turn per-token scores (higher = keep) into
// the indices each KV head keeps. Heads may be ragged (different token counts).
//
// Ranking, everywhere: a higher score ranks higher; equal scores rank toward the
// lower token index; NaN ranks below every number (below -inf) and NaNs tie with
// each other; -0.0 and +0.0 are equal (they tie, the lower index wins). The
// result is deterministic and equal on every backend.
//
// Protection: the first `sinks` and the last `window` tokens of a head are always
// kept. They count toward the budget: a head with budget b and p protected tokens
// keeps its p protected tokens plus the best b - p others. When p >= b the head
// keeps exactly its p protected tokens (more than the budget, never fewer than
// the protected ones). In a head shorter than sinks + window every token is
// protected (p = min(n, sinks + window)). Negative sinks or window are
// errc::invalid_argument in every selector.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/core/tensor_view.hpp"

namespace cinch::kv {

using head_scores = std::vector<float>;       // one score per token of a head, oldest first; higher = keep
using keep_list = std::vector<std::int32_t>;  // indices of a head's kept tokens (0 = its oldest), strictly ascending

// The k largest scores of each row, by the ranking above, as indices written in
// ascending index order. scores: [rows, n] f32 (or [..., n]: every leading index is
// a row); indices: [rows, k] i32 (the same leading shape), both with a dense
// innermost dimension and on the same device (CPU or CUDA; the same indices on
// every backend). 0 <= k <= n < 2^31, else errc::invalid_argument; k == n writes
// 0 .. n-1; k == 0 writes nothing. A selection, not a sort: O(n) per row on the CPU
// (cinch/ref/topk.hpp is the exact rule).
void top_k(const tensor_view& scores, std::int64_t k, const tensor_view& indices);

// How many tokens a head keeps: a fraction of its length or a token count.
class budget {
 public:
  // Keep floor(r * n) of n tokens (at least 1 of a non-empty head, so no head is
  // emptied by rounding). 0 < r <= 1, else errc::invalid_argument.
  [[nodiscard]] static budget ratio(double r);
  // Keep min(count, n) of n tokens. count >= 1, else errc::invalid_argument.
  [[nodiscard]] static budget tokens(std::int64_t count);

  [[nodiscard]] bool is_ratio() const noexcept { return is_ratio_; }
  [[nodiscard]] double keep_ratio() const noexcept { return ratio_; }       // meaningful when is_ratio()
  [[nodiscard]] std::int64_t token_count() const noexcept { return count_; }  // meaningful when !is_ratio()

  // Tokens kept of n. The ratio product is floored after adding 1e-9, so decimal
  // ratios whose double product lands just below an integer (0.29 * 100 =
  // 28.999999999999996) give the integer (29).
  [[nodiscard]] std::int64_t count(std::int64_t n) const noexcept;

 private:
  budget(bool is_ratio, double ratio, std::int64_t count) noexcept : is_ratio_(is_ratio), ratio_(ratio), count_(count) {}
  bool is_ratio_;
  double ratio_;
  std::int64_t count_;
};

// Tokens of every head that are always kept (see the protection rule above).
struct protection {
  int sinks = 0;   // the first `sinks` tokens
  int window = 0;  // the last `window` tokens
};

// Per head: its own top budget.count(n) tokens (uniform per-head top-k). Exactly
// max(budget.count(n), protected) tokens per head.
[[nodiscard]] std::vector<keep_list> select_top_k(std::span<const head_scores> heads, budget keep,
                                                  protection protect = {});

// AdaKV: one budget over every given head (of any number of layers), spent by
// one top-k over all their scores pooled. total = keep.count(n_all), n_all the
// tokens of all heads. Each head h of n_h tokens first keeps its safeguard: its
// protected tokens plus its best others up to safe_h = min(n_h, floor(floor_share *
// total * n_h / n_all)) tokens (its proportional share times floor_share, computed
// in double; protected tokens count toward it). The rest of the total goes to the
// best remaining tokens of all heads; pooled ties rank toward the lower head, then
// the lower token index. Exactly max(total, sum_h max(safe_h, protected_h)) tokens
// in all; a head may keep none when floor_share is 0. 0 <= floor_share <= 1, else
// errc::invalid_argument.
[[nodiscard]] std::vector<keep_list> select_global(std::span<const head_scores> heads, budget total,
                                                   double floor_share = 0.2, protection protect = {});

// Variable budget: every token scoring >= threshold (a NaN score never passes)
// plus the protected ones. A NaN threshold is errc::invalid_argument.
[[nodiscard]] std::vector<keep_list> select_threshold(std::span<const head_scores> heads, float threshold,
                                                      protection protect = {});

// ChunkKV: whole chunks of `chunk` consecutive tokens, the same for every head.
// Heads must have equal lengths n (else errc::shape_mismatch); chunk >= 1 (else
// errc::invalid_argument). Tokens split into ceil(n / chunk) chunks, a trailing
// partial chunk being a chunk of its own; a chunk's score is the mean over its
// tokens of the sum over heads (f32: per token the heads summed in order, then the
// chunk's tokens summed in order and divided by their count; a NaN makes it NaN:
// lowest). Keeps the best max(1, floor(n_chunks * r)) chunks for a ratio
// budget r, max(1, floor(count / chunk)) for a token budget (at most n_chunks).
// A chunk holding a protected token is always kept and counts toward that number.
[[nodiscard]] std::vector<keep_list> select_chunks(std::span<const head_scores> heads, budget keep, int chunk = 20,
                                                   protection protect = {});

// PyramidKV's layer schedule: tokens kept by each of `layers` layers for a prompt
// of `tokens` tokens, an average capacity `capacity` per layer and an observation
// window `window` (kept in every layer). With b = capacity - window:
//   lo = floor(b / beta), hi = 2 b - lo; if hi > tokens - window: hi = tokens - window, lo = 2 b - hi;
//   C_l = window + hi - floor(l (hi - lo) / (layers - 1)),  l = 0 .. layers - 1,
// so the first layer keeps the most, the last the least, and the mean is about
// capacity. Falls back to the uniform SnapKV budget (capacity in every layer) when
// the pyramid does not apply: one layer, or capacity <= window. tokens <= capacity
// keeps every token in every layer. layers >= 1, tokens >= 0, capacity >= 1,
// window >= 0, beta >= 1 (finite), else errc::invalid_argument.
[[nodiscard]] std::vector<std::int64_t> pyramid_budgets(int layers, std::int64_t tokens, std::int64_t capacity,
                                                        int window, double beta = 20);

}  // namespace cinch::kv
