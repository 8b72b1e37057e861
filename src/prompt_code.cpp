// LongCodeZip-style compression: chunking, query-conditioned ranking, perplexity
// block splitting and a knapsack per chunk.
#include "cinch/prompt/code.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include "cinch/core/error.hpp"
#include "prompt_checks.hpp"
#include "prompt_document.hpp"

namespace cinch::prompt {
namespace {

constexpr std::string_view fn = "prompt::compress_code";

std::string_view trim(std::string_view s) {
  const std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

bool opens_definition(std::string_view line) {
  static constexpr std::array<std::string_view, 18> keywords = {
      "def ",  "async def ", "class ",    "fn ",     "pub ",      "func ",      "function ", "async function ", "export ",
      "impl ", "struct ",    "enum ",     "interface ", "template", "public ",  "private ",  "protected ",      "static "};
  return std::any_of(keywords.begin(), keywords.end(), [&](std::string_view k) { return line.starts_with(k); });
}

bool is_comment_or_decorator(std::string_view t) {
  return t.starts_with("@") || t.starts_with("#") || t.starts_with("//") || t.starts_with("/*") || t.starts_with("*");
}

// Brace depth change over a line, ignoring string literals and // comments.
int brace_delta(std::string_view line) {
  int d = 0;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (c == '/' && i + 1 < line.size() && line[i + 1] == '/') {
      break;
    } else {
      d += c == '{' ? 1 : c == '}' ? -1 : 0;
    }
  }
  return d;
}

double mean_loss(const lm_scorer& lm, std::span<const std::int32_t> prefix, std::span<const std::int32_t> tokens) {
  if (tokens.empty()) return 0.0;
  const std::vector<float> lp = detail::checked_log_probs(fn, lm, prefix, tokens);
  double sum = 0;
  for (const float v : lp) sum -= double(v);
  return sum / double(lp.size());
}

}  // namespace

std::vector<text_range> code_chunks(std::string_view code) {
  std::vector<std::size_t> starts;
  if (!code.empty()) starts.push_back(0);
  int depth = 0;
  std::string_view prev;  // the previous line, trimmed
  bool first = true;
  for (std::size_t b = 0; b < code.size();) {
    std::size_t e = code.find('\n', b);
    if (e == std::string_view::npos) e = code.size();
    const std::string_view line = code.substr(b, e - b), t = trim(line);
    if (!first && depth <= 0 && !t.empty() && line.front() != ' ' && line.front() != '\t') {
      const bool after_break = prev.empty() || prev == "}" || prev == "};";
      const bool definition = opens_definition(t) && !is_comment_or_decorator(prev);
      if (after_break || definition) starts.push_back(b - 1);  // at the newline before the line
    }
    depth = std::max(0, depth + brace_delta(line));
    prev = t;
    first = false;
    b = e + 1;
  }
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  std::vector<text_range> out;
  for (std::size_t i = 0; i < starts.size(); ++i) out.push_back({starts[i], i + 1 < starts.size() ? starts[i + 1] : code.size()});
  return out;
}

std::vector<bool> knapsack(std::span<const std::int64_t> weights, std::span<const double> values, std::int64_t capacity,
                           std::int64_t exact_items, std::int64_t exact_capacity) {
  if (weights.size() != values.size())
    cinch::detail::fail(errc::invalid_argument, "prompt::knapsack", "weights and values must have one entry per item, got ",
                        weights.size(), " and ", values.size());
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (weights[i] < 0 || std::isnan(values[i]))
      cinch::detail::fail(errc::invalid_argument, "prompt::knapsack", "item ", i, " has a negative weight or a NaN value");
  const std::size_t n = weights.size();
  std::vector<bool> take(n, false);
  if (capacity < 0) return take;
  if (std::int64_t(n) <= exact_items && capacity <= exact_capacity) {
    const std::size_t cap = std::size_t(capacity);
    std::vector<double> best(cap + 1, 0.0);
    std::vector<std::vector<bool>> chose(n, std::vector<bool>(cap + 1, false));
    for (std::size_t i = 0; i < n; ++i) {
      if (values[i] <= 0 || std::size_t(weights[i]) > cap) continue;
      const std::size_t w = std::size_t(weights[i]);
      for (std::size_t c = cap + 1; c-- > w;)
        if (best[c - w] + values[i] > best[c]) best[c] = best[c - w] + values[i], chose[i][c] = true;
    }
    for (std::size_t i = n, c = cap; i-- > 0;)
      if (chose[i][c]) take[i] = true, c -= std::size_t(weights[i]);
    return take;
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto density = [&](std::size_t i) { return weights[i] ? values[i] / double(weights[i]) : values[i] * 1e300; };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return density(a) > density(b); });
  std::int64_t left = capacity;
  for (const std::size_t i : order)
    if (values[i] > 0 && weights[i] <= left) take[i] = true, left -= weights[i];
  return take;
}

result compress_code(std::string_view code, std::string_view query, const tokenizer& tok, const lm_scorer& lm,
                     const code_options& o) {
  detail::check_text(fn, "code", code);
  detail::check_text(fn, "query", query);
  if (query.empty()) cinch::detail::fail(errc::invalid_argument, fn, "query must not be empty (chunks are ranked by it)");
  if (!(o.importance_beta >= 0 && o.importance_beta <= 1))
    cinch::detail::fail(errc::invalid_argument, fn, "importance_beta must be in [0, 1], got ", std::to_string(o.importance_beta));
  const std::vector<text_range> chunks = code_chunks(code);
  std::vector<detail::part_spec> specs;
  for (const text_range& c : chunks) specs.push_back({code.substr(c.begin, c.end - c.begin), false});
  detail::document doc(fn, specs, tok, o.structure, granularity::line, "");
  const std::int64_t origin = tok.count(code);
  const std::int64_t target = detail::resolve_target(fn, o.budget, origin);
  if (doc.tokens.empty()) return doc.finish(origin, target, origin);
  const std::vector<std::int32_t> ids = ids_of(doc.tokens), q = ids_of(tok.encode(query));
  const double base = mean_loss(lm, {}, q);
  auto span_of = [&](std::int32_t t0, std::int32_t t1) { return std::span(ids).subspan(std::size_t(t0), std::size_t(t1 - t0)); };
  auto chunk_tokens = [&](std::size_t c) { return std::int64_t(doc.parts[c].tok1 - doc.parts[c].tok0); };

  // Coarse: relevance of each chunk, kept in rank order while they fit.
  std::vector<double> relevance(chunks.size());
  for (std::size_t c = 0; c < chunks.size(); ++c)
    relevance[c] = base - mean_loss(lm, span_of(doc.parts[c].tok0, doc.parts[c].tok1), q);
  std::vector<std::size_t> ranked(chunks.size());
  std::iota(ranked.begin(), ranked.end(), std::size_t{0});
  std::stable_sort(ranked.begin(), ranked.end(), [&](std::size_t a, std::size_t b) { return relevance[a] > relevance[b]; });
  std::vector<bool> kept(chunks.size(), false);
  std::int64_t used = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c)  // chunks with protected lines stay
    for (std::int32_t u = doc.parts[c].unit0; u < doc.parts[c].unit1 && !kept[c]; ++u)
      if (doc.units[std::size_t(u)].forced) kept[c] = true, used += chunk_tokens(c);
  for (const std::size_t c : ranked)
    if (!kept[c] && used < target) kept[c] = true, used += chunk_tokens(c);
  for (std::size_t c = 0; c < chunks.size(); ++c)
    if (!kept[c]) doc.drop_part(c);

  // Fine: small chunks whole; large chunks share the rest by relevance.
  std::vector<std::size_t> large;
  std::int64_t small_tokens = 0, large_tokens = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    if (!kept[c]) continue;
    const detail::part& p = doc.parts[c];
    if (p.unit1 - p.unit0 >= o.min_lines_for_fine) {
      large.push_back(c);
      large_tokens += chunk_tokens(c);
    } else {
      small_tokens += chunk_tokens(c);
      for (std::int32_t u = p.unit0; u < p.unit1; ++u) {
        doc.units[std::size_t(u)].score = float(relevance[c]);
        doc.keep[std::size_t(u)] = doc.units[std::size_t(u)].tokens;
      }
    }
  }
  double lo = INFINITY, hi = -INFINITY;
  for (const std::size_t c : large) lo = std::min(lo, relevance[c]), hi = std::max(hi, relevance[c]);
  const std::int64_t room = std::max<std::int64_t>(0, target - small_tokens);
  const double rate = large_tokens ? std::min(1.0, double(room) / double(large_tokens)) : 0.0;
  for (const std::size_t c : large) {
    const detail::part& p = doc.parts[c];
    const double s = hi > lo ? (relevance[c] - lo) / (hi - lo) : 0.5;
    const std::int64_t budget =
        std::llround(std::clamp(rate * (1 + o.importance_beta * (2 * s - 1)), 0.0, 1.0) * double(chunk_tokens(c)));
    // Line losses within the chunk.
    const std::vector<float> lp = detail::checked_log_probs(fn, lm, {}, span_of(p.tok0, p.tok1));
    for (std::int32_t t = p.tok0; t < p.tok1; ++t) doc.scores[std::size_t(t)] = -lp[std::size_t(t - p.tok0)];
    doc.score_units(aggregation::mean, p.unit0, p.unit1);
    const std::int32_t lines = p.unit1 - p.unit0;
    std::vector<double> loss(static_cast<std::size_t>(lines));
    double mean = 0, var = 0;
    for (std::int32_t i = 0; i < lines; ++i) mean += loss[std::size_t(i)] = doc.units[std::size_t(p.unit0 + i)].score;
    mean /= lines;
    for (const double l : loss) var += (l - mean) * (l - mean);
    const double spike = 0.2 * std::sqrt(var / lines);
    // Blocks: at blank lines and at loss spikes.
    std::vector<std::int32_t> block_start = {0};
    for (std::int32_t i = 1; i < lines; ++i) {
      const detail::unit& u = doc.units[std::size_t(p.unit0 + i)];
      const std::string_view text = std::string_view(doc.original).substr(
          doc.atoms[std::size_t(u.atom0)].begin, doc.atoms[std::size_t(u.atom1 - 1)].end - doc.atoms[std::size_t(u.atom0)].begin);
      const double neighbours = i + 1 < lines ? (loss[std::size_t(i - 1)] + loss[std::size_t(i + 1)]) / 2 : loss[std::size_t(i - 1)];
      if (trim(text).empty() || loss[std::size_t(i)] - neighbours > spike) block_start.push_back(i);
    }
    block_start.push_back(lines);
    // Block values and weights (the signature line is kept apart).
    const std::int32_t signature = o.keep_signatures ? 1 : 0;
    if (signature) {
      doc.units[std::size_t(p.unit0)].forced = true;
      doc.keep[std::size_t(p.unit0)] = doc.units[std::size_t(p.unit0)].tokens;
    }
    std::vector<std::int64_t> weight;
    std::vector<double> value;
    for (std::size_t b = 0; b + 1 < block_start.size(); ++b) {
      const std::int32_t u0 = p.unit0 + std::max(block_start[b], signature), u1 = p.unit0 + block_start[b + 1];
      if (u0 >= u1) {
        weight.push_back(0), value.push_back(0);
        continue;
      }
      const std::int32_t t0 = doc.token_range(u0).first, t1 = doc.token_range(u1 - 1).second;
      weight.push_back(t1 - t0);
      value.push_back(base - mean_loss(lm, span_of(t0, t1), q));
      for (std::int32_t u = u0; u < u1; ++u) doc.units[std::size_t(u)].score = float(value.back());
    }
    const std::int64_t capacity = budget - (signature ? doc.units[std::size_t(p.unit0)].tokens : 0);
    const std::vector<bool> take = knapsack(weight, value, capacity, o.knapsack_items, o.knapsack_capacity);
    for (std::size_t b = 0; b < take.size(); ++b)
      if (take[b])
        for (std::int32_t u = p.unit0 + std::max(block_start[b], signature); u < p.unit0 + block_start[b + 1]; ++u)
          doc.keep[std::size_t(u)] = doc.units[std::size_t(u)].tokens;
  }
  for (const detail::part& p : doc.parts)  // token scores for inspection: their line's
    for (std::int32_t u = p.unit0; u < p.unit1; ++u)
      for (std::int32_t t = doc.token_range(u).first; t < doc.token_range(u).second; ++t)
        doc.scores[std::size_t(t)] = doc.units[std::size_t(u)].score;
  const std::int64_t compressed = doc.settle(tok, target, false);
  return doc.finish(origin, target, compressed);
}

}  // namespace cinch::prompt
