// Plans: invariants, builders and composition.
#include "cinch/tokens/plan.hpp"

#include <algorithm>
#include <cmath>

#include "cinch/core/error.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

void validate(const plan& p, std::string_view function) {
  const std::int64_t n = p.source_tokens, k = p.output_tokens();
  if (n < 0) fail(errc::invalid_argument, function, "plan.source_tokens must be >= 0, got ", n);
  if (std::int64_t(p.assign.size()) != n)
    fail(errc::invalid_argument, function, "plan.assign must hold ", n, " entries (one per source token), got ",
         p.assign.size());
  if (std::int64_t(p.sizes.size()) != k)
    fail(errc::invalid_argument, function, "plan.sizes must hold ", k, " entries (one per kept token), got ",
         p.sizes.size());
  if (!p.weights.empty() && std::int64_t(p.weights.size()) != n)
    fail(errc::invalid_argument, function, "plan.weights must be empty or hold ", n, " entries, got ",
         p.weights.size());
  std::vector<std::int64_t> count(static_cast<std::size_t>(k), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t a = p.assign[std::size_t(i)];
    if (a < -1 || a >= k)
      fail(errc::invalid_argument, function, "plan.assign[", i, "] must be -1 or an output row in [0, ", k, "), got ",
           a);
    if (a >= 0) ++count[std::size_t(a)];
    if (!p.weights.empty() && !std::isfinite(p.weights[std::size_t(i)]))
      fail(errc::invalid_argument, function, "plan.weights[", i, "] must be finite");
  }
  for (std::int64_t r = 0; r < k; ++r) {
    const std::int64_t t = p.kept[std::size_t(r)];
    if (t < 0 || t >= n || (r > 0 && t <= p.kept[std::size_t(r - 1)]))
      fail(errc::invalid_argument, function, "plan.kept must be ascending source indices in [0, ", n, "), got ", t,
           " at row ", r);
  }
  for (std::int64_t r = 0; r < k; ++r) {
    const std::int64_t t = p.kept[std::size_t(r)];
    if (p.assign[std::size_t(t)] != r)
      fail(errc::invalid_argument, function, "plan.kept[", r, "] = ", t, " must belong to its own row, but assign[",
           t, "] = ", p.assign[std::size_t(t)]);
    if (p.sizes[std::size_t(r)] != count[std::size_t(r)])
      fail(errc::invalid_argument, function, "plan.sizes[", r, "] must count the ", count[std::size_t(r)],
           " sources assigned to row ", r, ", got ", p.sizes[std::size_t(r)]);
  }
}

plan identity(std::int64_t n) {
  if (n < 0) fail(errc::invalid_argument, "tokens::identity", "n must be >= 0, got ", n);
  plan p;
  p.source_tokens = n;
  p.kept.resize(std::size_t(n));
  p.assign.resize(std::size_t(n));
  p.sizes.assign(std::size_t(n), 1);
  for (std::int64_t i = 0; i < n; ++i) p.kept[std::size_t(i)] = p.assign[std::size_t(i)] = i;
  return p;
}

plan from_kept(std::int64_t n, std::span<const std::int64_t> kept) {
  constexpr std::string_view fn = "tokens::from_kept";
  if (n < 0) fail(errc::invalid_argument, fn, "n must be >= 0, got ", n);
  plan p;
  p.source_tokens = n;
  p.kept.assign(kept.begin(), kept.end());
  std::sort(p.kept.begin(), p.kept.end());
  p.assign.assign(std::size_t(n), -1);
  for (std::size_t r = 0; r < p.kept.size(); ++r) {
    const std::int64_t t = p.kept[r];
    if (t < 0 || t >= n) fail(errc::invalid_argument, fn, "kept indices must be in [0, ", n, "), got ", t);
    if (r > 0 && t == p.kept[r - 1]) fail(errc::invalid_argument, fn, "kept indices must not repeat, got ", t, " twice");
    p.assign[std::size_t(t)] = std::int64_t(r);
  }
  p.sizes.assign(p.kept.size(), 1);
  return p;
}

plan from_destinations(std::span<const std::int64_t> destination) {
  constexpr std::string_view fn = "tokens::from_destinations";
  const std::int64_t n = std::int64_t(destination.size());
  plan p;
  p.source_tokens = n;
  std::vector<std::int64_t> row(static_cast<std::size_t>(n), -1);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t t = destination[std::size_t(i)];
    if (t < -1 || t >= n)
      fail(errc::invalid_argument, fn, "destination[", i, "] must be -1 or a token in [0, ", n, "), got ", t);
    if (t >= 0 && destination[std::size_t(t)] != t)
      fail(errc::invalid_argument, fn, "destination[", i, "] = ", t, " must be a representative (destination[", t,
           "] == ", t, "), got ", destination[std::size_t(t)]);
    if (t == i) {
      row[std::size_t(i)] = p.output_tokens();
      p.kept.push_back(i);
    }
  }
  p.assign.resize(std::size_t(n));
  p.sizes.assign(p.kept.size(), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t t = destination[std::size_t(i)];
    p.assign[std::size_t(i)] = t < 0 ? -1 : row[std::size_t(t)];
    if (t >= 0) ++p.sizes[std::size_t(row[std::size_t(t)])];
  }
  return p;
}

plan compose(const plan& first, const plan& second) {
  constexpr std::string_view fn = "tokens::compose";
  validate(first, fn);
  validate(second, fn);
  if (second.source_tokens != first.output_tokens())
    fail(errc::shape_mismatch, fn, "second must take first's ", first.output_tokens(), " output tokens, got a plan over ",
         second.source_tokens);
  plan p;
  p.source_tokens = first.source_tokens;
  p.kept.resize(second.kept.size());
  for (std::size_t r = 0; r < second.kept.size(); ++r) p.kept[r] = first.kept[std::size_t(second.kept[r])];
  p.assign.resize(std::size_t(first.source_tokens));
  p.sizes.assign(second.kept.size(), 0);
  for (std::size_t i = 0; i < p.assign.size(); ++i) {
    const std::int64_t mid = first.assign[i];
    p.assign[i] = mid < 0 ? -1 : second.assign[std::size_t(mid)];
    if (p.assign[i] >= 0) ++p.sizes[std::size_t(p.assign[i])];
  }
  if (first.weights.empty() && second.weights.empty()) return p;
  // Coefficient of source i (i -> j -> k): second's weight of j times first's weight of i,
  // where a plan without weights weighs a mean (first: 1 / size of j; second: size of
  // j / total size of k, j's size being what first's apply passes along).
  std::vector<std::int64_t> total(second.kept.size(), 0);
  for (std::size_t j = 0; j < second.assign.size(); ++j)
    if (second.assign[j] >= 0) total[std::size_t(second.assign[j])] += first.sizes[j];
  p.weights.assign(p.assign.size(), 0.0f);
  for (std::size_t i = 0; i < p.assign.size(); ++i) {
    const std::int64_t j = first.assign[i];
    if (j < 0 || p.assign[i] < 0) continue;
    const float outer = second.weights.empty()
                            ? float(first.sizes[std::size_t(j)]) / float(total[std::size_t(p.assign[i])])
                            : second.weights[std::size_t(j)];
    const float inner = first.weights.empty() ? 1.0f / float(first.sizes[std::size_t(j)]) : first.weights[i];
    p.weights[i] = outer * inner;
  }
  return p;
}

}  // namespace cinch::tokens
