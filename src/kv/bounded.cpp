// kv::bounded_cache: decode-time eviction over a kv::cache (see the header).
#include "cinch/kv/bounded.hpp"

#include <algorithm>
#include <cmath>

#include "cinch/detail/checks.hpp"
#include "cinch/kv/attention.hpp"

namespace cinch::kv {
namespace {

std::int64_t recent_of(const bounded_options& o) {
  if (o.recent >= 0) return o.recent;
  switch (o.policy) {
    case decode_policy::streaming: return o.budget - o.sinks;
    case decode_policy::h2o: return o.budget / 2;
    default: return 0;
  }
}

const cache_config& checked(const cache_config& config, const bounded_options& o) {
  constexpr std::string_view fn = "kv::bounded_cache";
  if (static_cast<int>(o.policy) > static_cast<int>(decode_policy::knorm))
    detail::fail(errc::invalid_argument, fn, "policy must be a kv::decode_policy, got value ", static_cast<int>(o.policy));
  if (o.budget < 1) detail::fail(errc::invalid_argument, fn, "budget must be >= 1 token, got ", o.budget);
  if (o.sinks < 0) detail::fail(errc::invalid_argument, fn, "sinks must be >= 0, got ", o.sinks);
  if (o.slack < 0) detail::fail(errc::invalid_argument, fn, "slack must be >= 0, got ", o.slack);
  if (o.recent < -1) detail::fail(errc::invalid_argument, fn, "recent must be >= 0 (or -1: the default), got ", o.recent);
  const std::int64_t recent = recent_of(o);
  if (o.sinks + recent > o.budget)
    detail::fail(errc::invalid_argument, fn, "sinks + recent must be <= budget (", o.budget, "), got ", o.sinks, " + ",
                 recent);
  return config;
}

}  // namespace

bounded_cache::bounded_cache(const cache_config& config, const bounded_options& options)
    : cache_(checked(config, options)), options_(options), recent_(recent_of(options)) {
  const std::int64_t capacity = options.budget + options.slack + 1;
  cache_.reserve(capacity);
  scores_.resize(std::size_t(config.layers) * std::size_t(config.kv_heads));
  if (options.policy != decode_policy::streaming)
    for (auto& s : scores_) s.reserve(std::size_t(capacity));
  order_.reserve(std::size_t(capacity));
  keep_.reserve(std::size_t(capacity));
}

std::span<const float> bounded_cache::scores(int layer, int head) const {
  (void)cache_.tokens(layer, head);  // validates layer and head
  return scores_[std::size_t(layer) * std::size_t(cache_.config().kv_heads) + std::size_t(head)];
}

void bounded_cache::append(int layer, const tensor_view& k, const tensor_view& v) {
  if (k.rank() != 2)  // a chunk would append several tokens per head: one decode token at a time
    detail::fail(errc::shape_mismatch, "kv::bounded_cache::append", "k must be [kv_heads, head_dim] (one decode token), got ",
                 k.shape());
  cache_.append(layer, k, v);  // validates the rest
  const int heads = cache_.config().kv_heads, d = cache_.config().head_dim;
  if (options_.policy != decode_policy::streaming)
    for (int h = 0; h < heads; ++h) {
      float score = 0.0f;
      if (options_.policy == decode_policy::knorm) {  // rotation keeps norms: the input's norm is the stored one's
        const float* row = static_cast<const float*>(k.data()) + h * k.stride(0);
        double sum = 0;
        for (int c = 0; c < d; ++c) sum += double(row[c]) * row[c];
        score = -float(std::sqrt(sum));
      }
      scores_[std::size_t(layer * heads + h)].push_back(score);
    }
  evict(layer);
}

void bounded_cache::attend(int layer, const tensor_view& q, const tensor_view& out) {
  decode_attention(cache_, layer, q, out);  // validates q and out
  if (options_.policy == decode_policy::h2o || options_.policy == decode_policy::tova) observe(layer, q);
}

// The softmax attention each token received from every query head, reduced
// into the scores: h2o adds the mean over the heads sharing a KV head, tova
// replaces every head's scores by the mean over all query heads.
void bounded_cache::observe(int layer, const tensor_view& q) {
  const int heads = cache_.config().kv_heads;
  const auto q_heads = int(q.size(0));
  const int group = q_heads / heads;
  const std::int64_t n = cache_.tokens(layer, 0);  // every head of a layer holds the same count
  if (n == 0) return;
  probabilities_.resize(std::size_t(q_heads * (options_.budget + options_.slack + 1)));  // sized on the first call only
  attention_logits(cache_, layer, q, tensor_view(probabilities_.data(), dtype::f32, {q_heads, n}));
  for (int i = 0; i < q_heads; ++i) {
    float* p = probabilities_.data() + std::int64_t(i) * n;
    const float top = *std::max_element(p, p + n);
    double sum = 0;
    for (std::int64_t t = 0; t < n; ++t) sum += p[t] = std::exp(p[t] - top);
    for (std::int64_t t = 0; t < n; ++t) p[t] = float(p[t] / sum);
  }
  const bool tova = options_.policy == decode_policy::tova;
  for (int h = 0; h < heads; ++h) {
    std::vector<float>& s = scores_[std::size_t(layer * heads + h)];
    if (tova) std::fill(s.begin(), s.end(), 0.0f);
    const int first = tova ? 0 : h * group, count = tova ? q_heads : group;
    for (int i = first; i < first + count; ++i) {
      const float* p = probabilities_.data() + std::int64_t(i) * n;
      for (std::size_t t = 0; t < s.size(); ++t) s[t] += p[t] / float(count);
    }
  }
}

// keep_ = the sinks, the best budget - sinks - recent of the middle tokens by
// `score` (NaN lowest, ties toward the lower index), and the recent window.
void bounded_cache::keep_best(std::span<const float> score, std::int64_t n) {
  const std::int64_t sinks = std::min<std::int64_t>(options_.sinks, n), recent = std::min(recent_, n - sinks);
  const std::int64_t middle = options_.budget - sinks - recent;
  keep_.clear();
  for (std::int64_t t = 0; t < sinks; ++t) keep_.push_back(std::int32_t(t));
  if (middle > 0) {
    order_.clear();
    for (std::int64_t t = sinks; t < n - recent; ++t) order_.push_back(std::int32_t(t));
    const auto better = [&](std::int32_t a, std::int32_t b) {
      const float x = score[std::size_t(a)], y = score[std::size_t(b)];
      if (std::isnan(x) || std::isnan(y)) return std::isnan(x) == std::isnan(y) ? a < b : std::isnan(y);
      return x != y ? x > y : a < b;
    };
    std::nth_element(order_.begin(), order_.begin() + middle, order_.end(), better);
    std::sort(order_.begin(), order_.begin() + middle);
    keep_.insert(keep_.end(), order_.begin(), order_.begin() + middle);
  }
  for (std::int64_t t = n - recent; t < n; ++t) keep_.push_back(std::int32_t(t));
}

void bounded_cache::evict(int layer) {
  const int heads = cache_.config().kv_heads;
  for (int h = 0; h < heads; ++h) {
    const std::int64_t n = cache_.tokens(layer, h);
    if (n <= options_.budget + options_.slack) continue;
    std::vector<float>& s = scores_[std::size_t(layer * heads + h)];
    // TOVA keeps the same tokens in every head (its scores are shared).
    if (h == 0 || options_.policy != decode_policy::tova) keep_best(s, n);
    cache_.retain(layer, h, keep_);
    if (!s.empty()) {
      for (std::size_t i = 0; i < keep_.size(); ++i) s[i] = s[std::size_t(keep_[i])];
      s.resize(keep_.size());
    }
    evicted_ += n - std::int64_t(keep_.size());
  }
}

}  // namespace cinch::kv
