// Video methods: DyCoke's temporal pruning, FastVID's segments and anchors,
// HoliTom's static-token windows.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "cinch/tokens/dycoke.hpp"
#include "cinch/tokens/fastvid.hpp"
#include "cinch/tokens/holitom.hpp"
#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

namespace {

std::vector<std::int64_t> frame_rows(const grid& g, std::int64_t f) {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(g.per_frame()));
  std::iota(rows.begin(), rows.end(), f * g.per_frame());
  return rows;
}

std::vector<float> negated(std::vector<float> v) {
  for (float& x : v) x = -x;
  return v;
}

}  // namespace

plan dycoke(const inputs& in, const dycoke_options& options) {
  constexpr std::string_view fn = "tokens::dycoke";
  const std::int64_t n = detail::token_count(fn, in);
  const grid g = detail::checked_grid(fn, in.shape, n);
  if (!(options.prune_ratio >= 0.0 && options.prune_ratio <= 1.0))
    fail(errc::invalid_argument, fn, "options.prune_ratio must be in [0, 1], got ", std::to_string(options.prune_ratio));
  const detail::matrix metric = detail::metric_of(fn, in, n);
  const auto keep = std::int64_t(std::floor((1.0 - options.prune_ratio) * double(g.per_frame())));
  std::vector<char> kept(static_cast<std::size_t>(n), 1);
  auto prune = [&](std::int64_t reference, std::int64_t frame) {
    const std::vector<std::int64_t> a = frame_rows(g, reference), b = frame_rows(g, frame);
    const std::vector<std::int64_t> least = top_k(negated(detail::pair_cosines(metric, a, b)), keep);
    for (std::int64_t t : b) kept[std::size_t(t)] = 0;
    for (std::int64_t p : least) kept[std::size_t(b[std::size_t(p)])] = 1;
  };
  for (std::int64_t f = 0; f + 1 < g.frames; f += 2) prune(f, f + 1);
  for (std::int64_t f = 0; f + 2 < g.frames; f += 4) prune(f, f + 2);
  std::vector<std::int64_t> rows;
  for (std::int64_t t = 0; t < n; ++t)
    if (kept[std::size_t(t)]) rows.push_back(t);
  return from_kept(n, rows);
}

plan holitom(const inputs& in, const holitom_options& options) {
  constexpr std::string_view fn = "tokens::holitom";
  const std::int64_t n = detail::token_count(fn, in);
  const grid g = detail::checked_grid(fn, in.shape, n);
  if (!std::isfinite(options.tau)) fail(errc::invalid_argument, fn, "options.tau must be finite");
  if (options.max_window < 1) fail(errc::invalid_argument, fn, "options.max_window must be >= 1, got ", options.max_window);
  const detail::matrix metric = detail::metric_of(fn, in, n);
  const std::int64_t frames = g.frames, per = g.per_frame();

  // above[t * per + p]: position p is still between frames t and t + 1.
  std::vector<char> above(static_cast<std::size_t>(std::max<std::int64_t>(frames - 1, 0) * per));
  for (std::int64_t t = 0; t + 1 < frames; ++t) {
    const std::vector<float> s = detail::pair_cosines(metric, frame_rows(g, t), frame_rows(g, t + 1));
    for (std::int64_t p = 0; p < per; ++p) above[std::size_t(t * per + p)] = s[std::size_t(p)] > options.tau;
  }
  // best[e]: the most tokens removable from frames [0, e); start[e]: where its last window starts.
  std::vector<std::int64_t> best(static_cast<std::size_t>(frames + 1), 0), start(static_cast<std::size_t>(frames + 1), 0);
  std::vector<char> still(static_cast<std::size_t>(per));
  for (std::int64_t e = 1; e <= frames; ++e) {
    std::fill(still.begin(), still.end(), 1);
    std::int64_t count = per;
    best[std::size_t(e)] = -1;
    for (std::int64_t s = e - 1; s >= 0 && e - s <= options.max_window; --s) {
      if (s < e - 1)  // the window grows by frame s: the pair (s, s + 1) must hold too
        for (std::int64_t p = 0; p < per; ++p)
          if (still[std::size_t(p)] && !above[std::size_t(s * per + p)]) still[std::size_t(p)] = 0, --count;
      const std::int64_t value = best[std::size_t(s)] + count * (e - s - 1);
      if (value > best[std::size_t(e)]) best[std::size_t(e)] = value, start[std::size_t(e)] = s;
    }
  }
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n));
  std::iota(destination.begin(), destination.end(), 0);
  for (std::int64_t e = frames; e > 0; e = start[std::size_t(e)]) {
    const std::int64_t s = start[std::size_t(e)];
    for (std::int64_t p = 0; p < per; ++p) {
      bool fixed = true;
      for (std::int64_t t = s; t + 1 < e && fixed; ++t) fixed = above[std::size_t(t * per + p)];
      if (!fixed || e - s < 2) continue;
      for (std::int64_t t = s; t < e; ++t) destination[std::size_t(t * per + p)] = s * per + p;
    }
  }
  return from_destinations(destination);
}

plan fastvid(const inputs& in, const fastvid_options& options) {
  constexpr std::string_view fn = "tokens::fastvid";
  const std::int64_t n = detail::token_count(fn, in);
  const grid g = detail::checked_grid(fn, in.shape, n);
  if (in.cls_attention.rank() == 0) fail(errc::invalid_argument, fn, "needs inputs.cls_attention (token saliency), got none");
  if (!(options.retention > 0.0 && options.retention <= 1.0) ||
      !(options.contextual_share >= 0.0 && options.contextual_share <= 1.0) || options.segments < 1 ||
      options.anchor_period < 1 || options.neighbours < 1 || !std::isfinite(options.tau) ||
      !(options.alpha >= 0.0f && options.alpha <= 1.0f))
    fail(errc::invalid_argument, fn,
         "options need retention in (0, 1], contextual_share and alpha in [0, 1], segments, anchor_period and "
         "neighbours >= 1, finite tau");
  const std::vector<float> saliency = detail::vector_of(fn, "cls_attention", in.cls_attention, n);
  const detail::matrix metric = detail::metric_of(fn, in, n);
  const std::int64_t frames = g.frames, per = g.per_frame(), d = metric.cols;

  // Segments: cuts at the lowest frame-to-frame similarities and below tau.
  std::vector<float> means(static_cast<std::size_t>(frames * d), 0.0f);
  for (std::int64_t t = 0; t < n; ++t)
    for (std::int64_t c = 0; c < d; ++c) means[std::size_t(t / per * d + c)] += metric.row(t)[c] / float(per);
  std::vector<char> cut(static_cast<std::size_t>(frames), 0);  // cut[t]: a segment ends at frame t
  cut[std::size_t(frames - 1)] = 1;
  if (frames > 1) {
    detail::matrix mean_rows{means.data(), frames, d, {}};
    for (std::int64_t f = 0; f < frames; ++f) mean_rows.offsets.push_back(f * d);
    std::vector<std::int64_t> a(static_cast<std::size_t>(frames - 1)), b(a.size());
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 1);
    const std::vector<float> s = detail::pair_cosines(mean_rows, a, b);
    for (std::int64_t t : top_k(negated(s), options.segments - 1)) cut[std::size_t(t)] = 1;
    for (std::size_t t = 0; t < s.size(); ++t)
      if (s[t] < options.tau) cut[t] = 1;
  }

  const std::int64_t r = std::max<std::int64_t>(1, std::int64_t(std::floor(options.retention * double(per))));
  const auto contextual = std::int64_t(std::floor(options.contextual_share * double(r)));
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n), -1);
  std::vector<float> weights(static_cast<std::size_t>(n), 0.0f);
  std::vector<char> salient(static_cast<std::size_t>(n), 0);
  for (std::int64_t f = 0; f < frames; ++f) {
    const std::vector<float> frame(saliency.begin() + f * per, saliency.begin() + (f + 1) * per);
    for (std::int64_t p : top_k(frame, r - contextual)) {
      const std::int64_t t = f * per + p;
      salient[std::size_t(t)] = 1, destination[std::size_t(t)] = t, weights[std::size_t(t)] = 1.0f;
    }
  }
  const auto& k = cinch::detail::active_token_kernels();
  for (std::int64_t first = 0, last = 0; first < frames; first = last + 1) {
    last = first;
    while (!cut[std::size_t(last)]) ++last;
    // Anchor frames from the end, every anchor_period; the budget split with the remainder to the nearest the end.
    std::vector<std::int64_t> anchor_frames;
    for (std::int64_t f = last; f >= first; f -= options.anchor_period) anchor_frames.push_back(f);
    const std::int64_t budget = contextual * (last - first + 1), share = budget / std::int64_t(anchor_frames.size());
    std::vector<std::int64_t> anchors, others;
    for (std::size_t a = 0; a < anchor_frames.size(); ++a) {
      std::vector<std::int64_t> candidates;
      for (std::int64_t t = anchor_frames[a] * per; t < (anchor_frames[a] + 1) * per; ++t)
        if (!salient[std::size_t(t)]) candidates.push_back(t);
      const std::int64_t want = std::min<std::int64_t>(
          share + (std::int64_t(a) < budget % std::int64_t(anchor_frames.size()) ? 1 : 0), std::int64_t(candidates.size()));
      if (want <= 0) continue;
      const detail::density_peaks peaks = detail::density_peaks_of(metric, candidates, options.neighbours);
      for (std::int64_t c : top_k(peaks.score, want)) anchors.push_back(candidates[std::size_t(c)]);
    }
    std::sort(anchors.begin(), anchors.end());
    for (std::int64_t t : anchors) destination[std::size_t(t)] = t;
    for (std::int64_t t = first * per; t < (last + 1) * per; ++t)
      if (!salient[std::size_t(t)] && destination[std::size_t(t)] != t) others.push_back(t);
    if (anchors.empty() || others.empty()) {
      for (std::int64_t t : anchors) weights[std::size_t(t)] = 1.0f;
      continue;
    }
    const detail::packed pa(k, metric, anchors), po(k, metric, others);
    std::vector<float> best(others.size());
    std::vector<std::int64_t> nearest(others.size());
    detail::dots_argmax(po, pa, true, false, best.data(), nearest.data());
    std::vector<std::int64_t> members(anchors.size(), 0);
    for (std::int64_t a : nearest) ++members[std::size_t(a)];
    // w anchor + (1 - w) mean(members), w = max(alpha, 1 / (m + 1)).
    std::vector<float> anchor_weight(anchors.size());
    for (std::size_t a = 0; a < anchors.size(); ++a) {
      anchor_weight[a] = std::max(options.alpha, 1.0f / float(members[a] + 1));
      weights[std::size_t(anchors[a])] = anchor_weight[a];
    }
    for (std::size_t o = 0; o < others.size(); ++o) {
      const auto a = std::size_t(nearest[o]);
      destination[std::size_t(others[o])] = anchors[a];
      weights[std::size_t(others[o])] = (1.0f - anchor_weight[a]) / float(members[a]);
    }
  }
  plan p = from_destinations(destination);
  p.weights = std::move(weights);
  return p;
}

}  // namespace cinch::tokens
