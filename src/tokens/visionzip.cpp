// VisionZip: dominant tokens by [CLS] attention, contextual tokens by merging.
#include "cinch/tokens/visionzip.hpp"

#include <algorithm>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

plan visionzip(const inputs& in, std::int64_t keep, const visionzip_options& options) {
  constexpr std::string_view fn = "tokens::visionzip";
  const std::int64_t n = detail::token_count(fn, in);
  keep = detail::checked_budget(fn, keep, n);
  if (in.cls_attention.rank() == 0)
    fail(errc::invalid_argument, fn,
         "needs inputs.cls_attention ([CLS] attention, or the mean attention each token receives), got none");
  const std::vector<float> scores = detail::vector_of(fn, "cls_attention", in.cls_attention, n);
  const std::int64_t contextual = options.contextual < 0 ? (keep * 5 + 16) / 32 : options.contextual;
  if (contextual >= keep)
    fail(errc::invalid_argument, fn, "options.contextual must be below keep (", keep, "), got ", contextual);
  const detail::matrix metric = detail::metric_of(fn, in, n);

  std::vector<std::int64_t> destination(static_cast<std::size_t>(n), -1);
  for (std::int64_t t : top_k(scores, keep - contextual)) destination[std::size_t(t)] = t;
  if (contextual == 0) return from_kept(n, top_k(scores, keep));

  std::vector<std::int64_t> remaining, targets, others;
  for (std::int64_t i = 0; i < n; ++i)
    if (destination[std::size_t(i)] < 0) remaining.push_back(i);
  const std::int64_t step = std::max<std::int64_t>(1, std::int64_t(remaining.size()) / contextual);
  for (std::size_t m = 0; m < remaining.size(); ++m) {
    const bool target = std::int64_t(m) % step == 0 && std::int64_t(targets.size()) < contextual;
    (target ? targets : others).push_back(remaining[m]);
  }
  for (std::int64_t t : targets) destination[std::size_t(t)] = t;

  std::vector<float> weights(static_cast<std::size_t>(n), 1.0f);
  if (!others.empty()) {
    const auto& k = cinch::detail::active_token_kernels();
    const detail::packed pt(k, metric, targets), po(k, metric, others);
    std::vector<float> best(others.size());
    std::vector<std::int64_t> nearest(others.size());
    detail::dots_argmax(po, pt, true, false, best.data(), nearest.data());
    std::vector<std::int64_t> members(targets.size(), 0);
    for (std::size_t o = 0; o < others.size(); ++o) {
      destination[std::size_t(others[o])] = targets[std::size_t(nearest[o])];
      ++members[std::size_t(nearest[o])];
    }
    // Target + mean of its members: weight 1 for the target, 1 / m for each member.
    for (std::size_t o = 0; o < others.size(); ++o)
      weights[std::size_t(others[o])] = 1.0f / float(members[std::size_t(nearest[o])]);
  }
  plan p = from_destinations(destination);
  p.weights = std::move(weights);
  return p;
}

}  // namespace cinch::tokens
