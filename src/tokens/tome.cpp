// ToMe's bipartite soft matching.
#include "cinch/tokens/tome.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

plan tome(const inputs& in, std::int64_t r, const tome_options& options) {
  constexpr std::string_view fn = "tokens::tome";
  const std::int64_t n = detail::token_count(fn, in);
  if (r < 0) fail(errc::invalid_argument, fn, "r must be >= 0, got ", r);
  const detail::matrix metric = detail::metric_of(fn, in, n);
  const std::int64_t protect = std::int64_t(options.class_token) + std::int64_t(options.distill_token);
  r = std::min(r, (n - protect) / 2);
  if (r <= 0) return identity(n);

  // A: even tokens; B: odd tokens, less a distillation token (token 1), which absorbs nothing.
  const std::int64_t b_first = options.distill_token ? 3 : 1;
  std::vector<std::int64_t> a_rows, b_rows;
  for (std::int64_t i = 0; i < n; i += 2) a_rows.push_back(i);
  for (std::int64_t i = b_first; i < n; i += 2) b_rows.push_back(i);
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed a(k, metric, a_rows), b(k, metric, b_rows);
  std::vector<float> best(a_rows.size());
  std::vector<std::int64_t> match(a_rows.size());
  detail::dots_argmax(a, b, true, false, best.data(), match.data());
  if (options.class_token) best[0] = -INFINITY;

  // The r best-matched a's merge (most similar first, ties toward the lower a).
  std::vector<std::int64_t> order(a_rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t x, std::int64_t y) { return best[std::size_t(x)] > best[std::size_t(y)]; });
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n));
  std::iota(destination.begin(), destination.end(), 0);
  for (std::int64_t e = 0; e < r; ++e) {
    const std::size_t a_index = std::size_t(order[std::size_t(e)]);
    destination[std::size_t(a_rows[a_index])] = b_rows[std::size_t(match[a_index])];
  }
  return from_destinations(destination);
}

std::vector<float> proportional_attention_bias(std::span<const std::int64_t> sizes) {
  std::vector<float> bias(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 1)
      fail(errc::invalid_argument, "tokens::proportional_attention_bias", "sizes must be >= 1, got ", sizes[i],
           " at token ", i);
    bias[i] = std::log(float(sizes[i]));
  }
  return bias;
}

std::vector<std::int64_t> tome_schedule(std::int64_t r, std::int64_t layers, double inflection) {
  constexpr std::string_view fn = "tokens::tome_schedule";
  if (r < 0) fail(errc::invalid_argument, fn, "r must be >= 0, got ", r);
  if (layers < 1) fail(errc::invalid_argument, fn, "layers must be >= 1, got ", layers);
  if (!(inflection >= -1.0 && inflection <= 1.0))
    fail(errc::invalid_argument, fn, "inflection must be in [-1, 1], got ", std::to_string(inflection));
  const auto low = std::int64_t(double(r) * (1.0 - inflection));
  const std::int64_t high = 2 * r - low;
  const double step = layers > 1 ? double(high - low) / double(layers - 1) : 0.0;
  std::vector<std::int64_t> out(static_cast<std::size_t>(layers));
  for (std::int64_t l = 0; l < layers; ++l) out[std::size_t(l)] = std::int64_t(double(low) + step * double(l));
  return out;
}

}  // namespace cinch::tokens
