// Eviction selectors and the top-k operation: validation at the boundary, the
// top-k kernel table, and the selectors built on one row kernel. Every selector
// ranks with the top-k kernel (cinch/ref/topk.hpp), so all of them share its
// ranking: ties toward the lower index, NaN lowest, -0.0 == +0.0.
#include "cinch/kv/select.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "cinch/core/backend.hpp"
#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "cinch/ref/topk.hpp"
#include "dispatch.hpp"
#include "kv/group_kernels.hpp"
#include "kv/topk_kernels.hpp"

#if CINCH_WITH_CUDA
#include "cuda/topk_backend.hpp"
#endif

namespace cinch {
namespace detail {
namespace {

constexpr topk_kernels ref_topk{[](const float* x, std::int64_t n, std::int64_t k, std::int32_t* out,
                                   std::int32_t*) noexcept { ref::top_k_row(x, n, k, out); }};
constexpr topk_kernels simd_topk{cpu::top_k_row};

}  // namespace

const topk_kernels& active_topk_kernels() { return use_reference_kernels() ? ref_topk : simd_topk; }

}  // namespace detail

namespace kv {
namespace {

constexpr std::int64_t max_row = std::numeric_limits<std::int32_t>::max();

// Best k of x[0, n) (ascending indices) with the active kernel.
class row_selector {
 public:
  void select(const float* x, std::int64_t n, std::int64_t k, std::int32_t* out) {
    scratch_.resize(std::size_t(detail::topk_scratch_words(n)));
    kernels_.row(x, n, k, out, scratch_.data());
  }

 private:
  const detail::topk_kernels& kernels_ = detail::active_topk_kernels();
  std::vector<std::int32_t> scratch_;
};

// Protected tokens of a head of n: [0, sinks) and [rest_end, n), rest = [sinks, rest_end).
struct head_split {
  std::int64_t sinks, rest_end, n;
  [[nodiscard]] std::int64_t protected_count() const noexcept { return sinks + (n - rest_end); }
  [[nodiscard]] std::int64_t rest() const noexcept { return rest_end - sinks; }
};

head_split split(std::int64_t n, protection p) {
  const std::int64_t sinks = std::min<std::int64_t>(p.sinks, n);
  const std::int64_t window = std::min<std::int64_t>(p.window, n - sinks);
  return {sinks, n - window, n};
}

void check_protection(std::string_view fn, protection p) {
  if (p.sinks < 0) detail::fail(errc::invalid_argument, fn, "protect.sinks must be >= 0, got ", p.sinks);
  if (p.window < 0) detail::fail(errc::invalid_argument, fn, "protect.window must be >= 0, got ", p.window);
}

void check_lengths(std::string_view fn, std::span<const head_scores> heads) {
  for (std::size_t h = 0; h < heads.size(); ++h)
    if (std::int64_t(heads[h].size()) > max_row)
      detail::fail(errc::invalid_argument, fn, "heads[", h, "] must hold fewer than 2^31 scores, got ",
                   heads[h].size());
}

// The protected tokens of a head plus the best `extra` of the rest, ascending.
keep_list protected_plus_best(const head_scores& x, head_split s, std::int64_t extra, row_selector& rows) {
  keep_list keep(static_cast<std::size_t>(s.protected_count() + extra));
  auto* out = keep.data();
  for (std::int64_t i = 0; i < s.sinks; ++i) *out++ = std::int32_t(i);
  rows.select(x.data() + s.sinks, s.rest(), extra, out);
  for (std::int64_t j = 0; j < extra; ++j) out[j] += std::int32_t(s.sinks);
  out += extra;
  for (std::int64_t i = s.rest_end; i < s.n; ++i) *out++ = std::int32_t(i);
  return keep;
}

}  // namespace

// ------------------------------------------------------------------ top_k

void top_k(const tensor_view& scores, std::int64_t k, const tensor_view& indices) {
  constexpr std::string_view fn = "kv::top_k";
  detail::check_device(fn, "indices", indices, scores.where());
  detail::require_backend(fn, scores.where());
  detail::check_dtype(fn, "scores", scores, dtype::f32);
  detail::check_dtype(fn, "indices", indices, dtype::i32);
  if (scores.rank() < 1)
    detail::fail(errc::shape_mismatch, fn, "scores must have at least one dimension (the scores of a row), got rank 0");
  const std::int64_t n = scores.size(-1);
  if (n > max_row) detail::fail(errc::invalid_argument, fn, "scores rows must be shorter than 2^31, got ", n);
  if (k < 0 || k > n)
    detail::fail(errc::invalid_argument, fn, "k must be in [0, ", n, "] (the row length of scores), got ", k);
  std::vector<std::int64_t> expected(scores.shape().begin(), scores.shape().end());
  expected.back() = k;
  detail::check_shape(fn, "indices", indices, expected);
  detail::check_rows_dense(fn, "scores", scores);
  detail::check_rows_dense(fn, "indices", indices);
  if (k == 0 || scores.numel() == 0) return;  // nothing written (an empty view's strides may look aliased)
  detail::check_output(fn, "indices", indices, {scores});
  const detail::row_layout in = detail::rows_of(scores), out = detail::rows_of(indices);
  const auto* x = static_cast<const float*>(scores.data());
  auto* y = static_cast<std::int32_t*>(indices.data());
#if CINCH_WITH_CUDA
  if (scores.where().kind == device_kind::cuda) {
    cuda::top_k(in, x, n, k, out, y, scores.where().index);
    return;
  }
#endif
  const detail::topk_kernels& kernels = detail::active_topk_kernels();
  const std::int64_t runs = std::min<std::int64_t>(in.rows, cinch::threads());
  const std::int64_t words = detail::topk_scratch_words(n);
  std::vector<std::int32_t> scratch(static_cast<std::size_t>(runs * words));
  detail::parallel_tasks(runs, scores.numel(), [&](std::int64_t run) {
    for (std::int64_t r = in.rows * run / runs; r < in.rows * (run + 1) / runs; ++r)
      kernels.row(x + in.row_offset(r), n, k, y + out.row_offset(r), scratch.data() + run * words);
  });
}

// ------------------------------------------------------------------ budget

budget budget::ratio(double r) {
  if (!(r > 0.0 && r <= 1.0))
    detail::fail(errc::invalid_argument, "kv::budget::ratio", "r must be in (0, 1], got ", detail::float_text(float(r)));
  return {true, r, 0};
}

budget budget::tokens(std::int64_t count) {
  if (count < 1) detail::fail(errc::invalid_argument, "kv::budget::tokens", "count must be >= 1, got ", count);
  return {false, 0.0, count};
}

std::int64_t budget::count(std::int64_t n) const noexcept {
  if (n <= 0) return 0;
  if (!is_ratio_) return std::min(count_, n);
  const auto kept = static_cast<std::int64_t>(std::floor(ratio_ * double(n) + 1e-9));
  return std::clamp<std::int64_t>(kept, 1, n);
}

// ------------------------------------------------------------------ selectors

std::vector<keep_list> select_top_k(std::span<const head_scores> heads, budget keep, protection protect) {
  constexpr std::string_view fn = "kv::select_top_k";
  check_protection(fn, protect);
  check_lengths(fn, heads);
  std::vector<keep_list> out;
  out.reserve(heads.size());
  row_selector rows;
  for (const head_scores& x : heads) {
    const head_split s = split(std::int64_t(x.size()), protect);
    const std::int64_t extra = std::max<std::int64_t>(0, keep.count(s.n) - s.protected_count());
    out.push_back(protected_plus_best(x, s, extra, rows));
  }
  return out;
}

std::vector<keep_list> select_global(std::span<const head_scores> heads, budget total, double floor_share,
                                     protection protect) {
  constexpr std::string_view fn = "kv::select_global";
  if (!(floor_share >= 0.0 && floor_share <= 1.0))
    detail::fail(errc::invalid_argument, fn, "floor_share must be in [0, 1], got ",
                 detail::float_text(float(floor_share)));
  check_protection(fn, protect);
  check_lengths(fn, heads);
  std::int64_t all = 0;
  for (const head_scores& x : heads) all += std::int64_t(x.size());
  const std::int64_t budget_all = total.count(all);

  // Safeguard of each head: protected tokens plus its best up to floor(floor_share * share).
  std::vector<keep_list> out;
  out.reserve(heads.size());
  row_selector rows;
  std::int64_t mandatory = 0;
  for (const head_scores& x : heads) {
    const head_split s = split(std::int64_t(x.size()), protect);
    const double share = double(budget_all) * double(s.n) / double(all);
    const auto safe = std::min<std::int64_t>(s.n, static_cast<std::int64_t>(std::floor(floor_share * share + 1e-9)));
    out.push_back(protected_plus_best(x, s, std::max<std::int64_t>(0, safe - s.protected_count()), rows));
    mandatory += std::int64_t(out.back().size());
  }
  const std::int64_t remaining = budget_all - mandatory;
  if (remaining <= 0) return out;

  // The rest of the budget: one top-k over every other token, pooled head by head.
  std::vector<float> pool;
  std::vector<std::int64_t> pool_start(heads.size() + 1, 0);
  pool.reserve(std::size_t(all - mandatory));
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const keep_list& kept = out[h];
    auto next = kept.begin();
    for (std::int32_t i = 0; i < std::int32_t(heads[h].size()); ++i) {
      if (next != kept.end() && *next == i) {
        ++next;
        continue;
      }
      pool.push_back(heads[h][std::size_t(i)]);
    }
    pool_start[h + 1] = std::int64_t(pool.size());
  }
  if (std::int64_t(pool.size()) > max_row)
    detail::fail(errc::unsupported, fn, "the pooled scores must number fewer than 2^31, got ", pool.size());
  std::vector<std::int32_t> chosen(static_cast<std::size_t>(remaining));
  rows.select(pool.data(), std::int64_t(pool.size()), remaining, chosen.data());

  // Back to (head, token): the j-th pooled token of head h is its j-th token not yet kept.
  auto pick = chosen.begin();
  for (std::size_t h = 0; h < heads.size(); ++h) {
    keep_list& kept = out[h];
    const keep_list safeguard = kept;
    auto next = safeguard.begin();
    std::int64_t pooled = pool_start[h];
    for (std::int32_t i = 0; i < std::int32_t(heads[h].size()) && pick != chosen.end(); ++i) {
      if (next != safeguard.end() && *next == i) {
        ++next;
        continue;
      }
      if (*pick == pooled++) {
        kept.push_back(i);
        ++pick;
      }
    }
    std::sort(kept.begin(), kept.end());
  }
  return out;
}

std::vector<keep_list> select_threshold(std::span<const head_scores> heads, float threshold, protection protect) {
  constexpr std::string_view fn = "kv::select_threshold";
  if (std::isnan(threshold)) detail::fail(errc::invalid_argument, fn, "threshold must be a number, got NaN");
  check_protection(fn, protect);
  check_lengths(fn, heads);
  std::vector<keep_list> out;
  out.reserve(heads.size());
  for (const head_scores& x : heads) {
    const head_split s = split(std::int64_t(x.size()), protect);
    keep_list keep;
    for (std::int64_t i = 0; i < s.n; ++i)
      if (i < s.sinks || i >= s.rest_end || x[std::size_t(i)] >= threshold) keep.push_back(std::int32_t(i));
    out.push_back(std::move(keep));
  }
  return out;
}

std::vector<keep_list> select_chunks(std::span<const head_scores> heads, budget keep, int chunk, protection protect) {
  constexpr std::string_view fn = "kv::select_chunks";
  if (chunk < 1) detail::fail(errc::invalid_argument, fn, "chunk must be >= 1, got ", chunk);
  check_protection(fn, protect);
  check_lengths(fn, heads);
  if (heads.empty()) return {};
  const std::int64_t n = std::int64_t(heads[0].size());
  for (std::size_t h = 1; h < heads.size(); ++h)
    if (std::int64_t(heads[h].size()) != n)
      detail::fail(errc::shape_mismatch, fn, "heads must have equal lengths (the same tokens are kept in each), heads[0] has ",
                   n, ", got ", heads[h].size(), " in heads[", h, "]");
  const std::int64_t chunks = (n + chunk - 1) / chunk;

  // Chunk score: per token the sum over heads (in head order), then the mean over the chunk.
  std::vector<float> score(static_cast<std::size_t>(chunks));
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t first = c * chunk, last = std::min(n, first + chunk);
    float sum = 0.0f;
    for (std::int64_t i = first; i < last; ++i) {
      float token = 0.0f;
      for (const head_scores& x : heads) token += x[std::size_t(i)];
      sum += token;
    }
    score[std::size_t(c)] = sum / float(last - first);
  }

  // Chunks holding a protected token: [0, forced_head) and [forced_tail, chunks).
  const head_split s = split(n, protect);
  const std::int64_t forced_head = (s.sinks + chunk - 1) / chunk;
  const std::int64_t forced_tail = s.rest_end == n ? chunks : std::max(forced_head, s.rest_end / chunk);
  const std::int64_t forced = forced_head + (chunks - forced_tail);
  const std::int64_t wanted =
      keep.is_ratio() ? static_cast<std::int64_t>(std::floor(double(chunks) * keep.keep_ratio() + 1e-9))
                      : keep.token_count() / chunk;
  const std::int64_t target = std::min(chunks, std::max<std::int64_t>(1, wanted));
  const std::int64_t extra = std::max<std::int64_t>(0, target - forced);

  std::vector<std::int32_t> best(static_cast<std::size_t>(extra));
  row_selector rows;
  rows.select(score.data() + forced_head, forced_tail - forced_head, extra, best.data());
  keep_list tokens;
  const auto add_chunk = [&](std::int64_t c) {
    for (std::int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) tokens.push_back(std::int32_t(i));
  };
  for (std::int64_t c = 0; c < forced_head; ++c) add_chunk(c);
  for (std::int32_t c : best) add_chunk(forced_head + c);
  for (std::int64_t c = forced_tail; c < chunks; ++c) add_chunk(c);
  return std::vector<keep_list>(heads.size(), tokens);
}

// ------------------------------------------------------------------ PyramidKV

std::vector<std::int64_t> pyramid_budgets(int layers, std::int64_t tokens, std::int64_t capacity, int window,
                                          double beta) {
  constexpr std::string_view fn = "kv::pyramid_budgets";
  if (layers < 1) detail::fail(errc::invalid_argument, fn, "layers must be >= 1, got ", layers);
  if (tokens < 0) detail::fail(errc::invalid_argument, fn, "tokens must be >= 0, got ", tokens);
  if (capacity < 1) detail::fail(errc::invalid_argument, fn, "capacity must be >= 1, got ", capacity);
  if (window < 0) detail::fail(errc::invalid_argument, fn, "window must be >= 0, got ", window);
  if (!(beta >= 1.0 && std::isfinite(beta)))
    detail::fail(errc::invalid_argument, fn, "beta must be finite and >= 1, got ", detail::float_text(float(beta)));
  if (tokens <= capacity) return std::vector<std::int64_t>(std::size_t(layers), tokens);
  if (layers == 1 || capacity <= window) return std::vector<std::int64_t>(std::size_t(layers), capacity);
  const std::int64_t b = capacity - window;
  std::int64_t lo = static_cast<std::int64_t>(std::floor(double(b) / beta));
  std::int64_t hi = 2 * b - lo;
  if (hi > tokens - window) {
    hi = tokens - window;
    lo = 2 * b - hi;
  }
  std::vector<std::int64_t> out(static_cast<std::size_t>(layers));
  for (int l = 0; l < layers; ++l) out[std::size_t(l)] = window + hi - std::int64_t(l) * (hi - lo) / (layers - 1);
  return out;
}

}  // namespace kv
}  // namespace cinch
