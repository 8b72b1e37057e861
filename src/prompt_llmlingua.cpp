// LLMLingua (coarse context budget, iterative token-level compression with the
// dynamic threshold) and LongLLMLingua (question-aware ranking, reordering,
// dynamic per-context budgets, contrastive scores).
#include "cinch/prompt/llmlingua.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cinch/core/error.hpp"
#include "cinch/prompt/bm25.hpp"
#include "prompt_checks.hpp"
#include "prompt_document.hpp"

namespace cinch::prompt {
namespace {

// The prompt as a document: part 0 the instruction, 1..n the contexts, n+1 the question.
struct prompt_doc {
  detail::document doc;
  std::int64_t origin = 0;
  std::int64_t target = 0;
  std::int64_t context_target = 0;  // what the contexts may keep
  std::vector<std::int32_t> ids;    // every token's id
  std::vector<std::int32_t> separator_ids;

  [[nodiscard]] std::size_t contexts() const { return doc.parts.size() - 2; }
  [[nodiscard]] const detail::part& context(std::size_t i) const { return doc.parts[i + 1]; }
  [[nodiscard]] std::int64_t tokens_of(std::size_t i) const { return context(i).tok1 - context(i).tok0; }
  [[nodiscard]] std::span<const std::int32_t> ids_of_context(std::size_t i) const {
    return std::span(ids).subspan(std::size_t(context(i).tok0), std::size_t(tokens_of(i)));
  }
  // Tokens of unit u unless the sentence filter dropped it.
  [[nodiscard]] std::int64_t live_tokens(std::int32_t u) const {
    return doc.units[std::size_t(u)].dropped ? 0 : doc.units[std::size_t(u)].tokens;
  }
  // Tokens of forced units in units [u0, u1).
  [[nodiscard]] std::int64_t forced_tokens(std::int32_t u0, std::int32_t u1) const {
    std::int64_t n = 0;
    for (std::int32_t u = u0; u < u1; ++u)
      if (doc.units[std::size_t(u)].forced) n += doc.units[std::size_t(u)].tokens;
    return n;
  }
};

prompt_doc make_prompt(std::string_view fn, const prompt_parts& parts, const tokenizer& tok,
                       const structure_options& structure, granularity level, const budget& b, bool keep_split) {
  detail::check_text(fn, "instruction", parts.instruction);
  for (const std::string_view c : parts.contexts) detail::check_text(fn, "a context", c);
  detail::check_text(fn, "question", parts.question);
  std::vector<detail::part_spec> specs;
  specs.push_back({parts.instruction, true});
  for (const std::string_view c : parts.contexts) specs.push_back({c, false});
  specs.push_back({parts.question, true});
  structure_options s = structure;
  if (keep_split) s.force_strings.emplace_back("\n\n");
  prompt_doc p{detail::document(fn, specs, tok, s, level), 0, 0, 0, {}, {}};
  p.origin = tok.count(p.doc.original);
  p.target = detail::resolve_target(fn, b, p.origin);
  std::int64_t context_tokens = 0;
  for (std::size_t i = 0; i < p.contexts(); ++i) context_tokens += p.tokens_of(i);
  p.context_target = std::clamp<std::int64_t>(p.target - (p.origin - context_tokens), 0, context_tokens);
  p.ids = ids_of(p.doc.tokens);
  p.separator_ids = ids_of(tok.encode(p.doc.separator));
  return p;
}

double mean_loss(std::string_view fn, const lm_scorer& lm, std::span<const std::int32_t> prefix,
                 std::span<const std::int32_t> tokens) {
  if (tokens.empty()) return 0.0;
  const std::vector<float> lp = detail::checked_log_probs(fn, lm, prefix, tokens);
  double sum = 0;
  for (const float v : lp) sum -= double(v);
  return sum / double(lp.size());
}

// Contexts sorted by relevance (descending, ties to the earlier one).
std::vector<std::size_t> by_relevance(const std::vector<double>& relevance) {
  std::vector<std::size_t> order(relevance.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return relevance[a] > relevance[b]; });
  return order;
}

// Keeps contexts in rank order until their tokens reach scale * context target +
// extra (the one that crosses it too, so the fine step has enough to meet the
// target); drops the rest. Returns the kept ones in rank order.
std::vector<std::size_t> coarse_filter(prompt_doc& p, const std::vector<std::size_t>& ranked, double scale,
                                       std::int64_t extra) {
  const double limit = scale * double(p.context_target) + double(extra);
  std::vector<std::size_t> kept;
  double used = 0;
  for (const std::size_t c : ranked) {
    if (used < limit) {
      kept.push_back(c);
      used += double(p.tokens_of(c));
    } else {
      p.doc.drop_part(c + 1);
    }
  }
  return kept;
}

// LLMLingua's sentence-level filter over the kept contexts: each context's tokens
// scored alone, sentences ranked by mean loss (highest first, ties to the earlier
// one) and kept until their tokens reach ratio * context target (the one that
// crosses it included); the non-forced units of the others are dropped.
void sentence_filter(std::string_view fn, prompt_doc& p, const lm_scorer& lm, const std::vector<std::size_t>& kept,
                     const llmlingua_options& o) {
  detail::document& doc = p.doc;
  struct sentence {
    std::int32_t u0, u1;
    std::int64_t tokens;
  };
  std::vector<sentence> sentences;
  std::vector<double> loss;  // mean per sentence
  std::vector<bool> always;  // the first and last sentences of a context that options keep
  for (const std::size_t c : kept) {
    const std::size_t first = sentences.size();
    const detail::part& part = p.context(c);
    const std::vector<float> lp = detail::checked_log_probs(fn, lm, {}, p.ids_of_context(c));
    for (std::int32_t t = part.tok0; t < part.tok1; ++t) doc.scores[std::size_t(t)] = -lp[std::size_t(t - part.tok0)];
    doc.score_units(aggregation::mean, part.unit0, part.unit1);
    const std::vector<text_range> ranges = segment(std::string_view(doc.original).substr(part.begin, part.end - part.begin),
                                                   granularity::sentence);
    std::size_t r = 0;
    for (std::int32_t u = part.unit0; u < part.unit1; ++u) {
      const std::size_t at = doc.atoms[std::size_t(doc.units[std::size_t(u)].atom0)].begin - part.begin;
      const bool opens = u == part.unit0 || (r + 1 < ranges.size() && ranges[r + 1].begin <= at);
      while (r + 1 < ranges.size() && ranges[r + 1].begin <= at) ++r;
      if (opens) sentences.push_back({u, u, 0}), loss.push_back(0.0);
      sentence& s = sentences.back();
      s.u1 = u + 1;
      s.tokens += doc.units[std::size_t(u)].tokens;
      for (std::int32_t t = doc.token_range(u).first; t < doc.token_range(u).second; ++t)
        loss.back() += double(doc.scores[std::size_t(t)]);
    }
    const auto count = std::int64_t(sentences.size() - first);
    for (std::int64_t i = 0; i < count; ++i)
      always.push_back(i < o.keep_first_sentences || i >= count - o.keep_last_sentences);
  }
  for (std::size_t i = 0; i < sentences.size(); ++i)
    loss[i] = sentences[i].tokens ? loss[i] / double(sentences[i].tokens) : 0.0;
  const double limit = o.token_budget_ratio * double(p.context_target);
  double used = 0;
  for (std::size_t i = 0; i < sentences.size(); ++i)
    if (always[i]) used += double(sentences[i].tokens);
  for (const std::size_t i : by_relevance(loss)) {
    if (always[i]) continue;
    if (used < limit) {
      used += double(sentences[i].tokens);
      continue;
    }
    for (std::int32_t u = sentences[i].u0; u < sentences[i].u1; ++u)
      if (!doc.units[std::size_t(u)].forced) doc.units[std::size_t(u)].dropped = true;
  }
}

// The k-th largest of values (1-based), or +inf for k < 1.
float kth_largest(std::vector<float> values, std::int64_t k) {
  if (k < 1 || values.empty()) return std::numeric_limits<float>::infinity();
  k = std::min<std::int64_t>(k, std::int64_t(values.size()));
  std::nth_element(values.begin(), values.begin() + (k - 1), values.end(), std::greater<>());
  return values[std::size_t(k - 1)];
}

// Integer budgets proportional to `want` (each capped at `cap`) summing to
// min(total, sum of caps): scale the uncapped ones until the caps hold, then
// round by largest remainder (ties to the earlier one).
std::vector<std::int64_t> apportion(std::vector<double> want, const std::vector<std::int64_t>& cap, std::int64_t total) {
  const std::size_t n = want.size();
  std::int64_t cap_sum = 0;
  for (const std::int64_t c : cap) cap_sum += c;
  total = std::min(total, cap_sum);
  std::vector<bool> capped(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    double free_want = 0, room = double(total);
    for (std::size_t i = 0; i < n; ++i) {
      if (capped[i]) room -= double(cap[i]);
      else free_want += want[i];
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (capped[i]) continue;
      want[i] = free_want > 0 ? want[i] * room / free_want : room / double(n);
      if (want[i] >= double(cap[i])) want[i] = double(cap[i]), capped[i] = changed = true;
    }
  }
  std::vector<std::int64_t> out(n);
  std::int64_t sum = 0;
  std::vector<std::size_t> by_remainder(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = std::clamp<std::int64_t>(std::int64_t(std::floor(want[i])), 0, cap[i]);
    sum += out[i];
    by_remainder[i] = i;
  }
  std::stable_sort(by_remainder.begin(), by_remainder.end(), [&](std::size_t a, std::size_t b) {
    return want[a] - std::floor(want[a]) > want[b] - std::floor(want[b]);
  });
  for (const std::size_t i : by_remainder)
    if (sum < total && out[i] < cap[i]) ++out[i], ++sum;
  for (std::size_t i = 0; i < n && sum < total; ++i) {
    const std::int64_t add = std::min(cap[i] - out[i], total - sum);
    out[i] += add, sum += add;
  }
  return out;
}

}  // namespace

std::string assemble(const prompt_parts& parts) {
  std::string out;
  auto put = [&](std::string_view s) {
    if (s.empty()) return;
    if (!out.empty()) out += "\n\n";
    out += s;
  };
  put(parts.instruction);
  for (const std::string_view c : parts.contexts) put(c);
  put(parts.question);
  return out;
}

result llmlingua(const prompt_parts& parts, const tokenizer& tok, const lm_scorer& lm, const llmlingua_options& o) {
  constexpr std::string_view fn = "prompt::llmlingua";
  if (o.iterative_size < 1) cinch::detail::fail(errc::invalid_argument, fn, "iterative_size must be >= 1, got ", o.iterative_size);
  if (!(o.context_budget_scale > 0) || !std::isfinite(o.context_budget_scale))
    cinch::detail::fail(errc::invalid_argument, fn, "context_budget_scale must be finite and > 0, got ",
                        std::to_string(o.context_budget_scale));
  if (!(o.token_budget_ratio > 0) || !std::isfinite(o.token_budget_ratio))
    cinch::detail::fail(errc::invalid_argument, fn, "token_budget_ratio must be finite and > 0, got ",
                        std::to_string(o.token_budget_ratio));
  if (o.keep_first_sentences < 0 || o.keep_last_sentences < 0)
    cinch::detail::fail(errc::invalid_argument, fn, "keep_first_sentences and keep_last_sentences must be >= 0, got ",
                        o.keep_first_sentences, " and ", o.keep_last_sentences);
  prompt_doc p = make_prompt(fn, parts, tok, o.structure, o.level, o.budget, o.keep_split);
  detail::document& doc = p.doc;
  const bool partial = o.level != granularity::sentence && o.level != granularity::line;

  // 1. Coarse: the most surprising contexts first.
  std::vector<std::size_t> kept;
  for (std::size_t c = 0; c < p.contexts(); ++c)
    if (p.tokens_of(c) > 0) kept.push_back(c);
  if (o.context_filter && kept.size() > 1) {
    std::vector<double> ppl(p.contexts(), -std::numeric_limits<double>::infinity());
    for (const std::size_t c : kept) ppl[c] = mean_loss(fn, lm, {}, p.ids_of_context(c));
    std::vector<std::size_t> ranked;
    for (const std::size_t c : by_relevance(ppl))
      if (p.tokens_of(c) > 0) ranked.push_back(c);
    kept = coarse_filter(p, ranked, o.context_budget_scale, o.context_budget_extra);
    std::sort(kept.begin(), kept.end());
  }

  if (o.sentence_filter) sentence_filter(fn, p, lm, kept, o);

  // 2. Fine: segments of whole units, at most iterative_size tokens (at least one unit;
  // units dropped by the sentence filter neither count nor are scored).
  struct segment_range {
    std::int32_t u0, u1;
    bool opens_context;
  };
  std::vector<segment_range> segments;
  for (const std::size_t c : kept) {
    const detail::part& part = p.context(c);
    for (std::int32_t u = part.unit0; u < part.unit1;) {
      std::int32_t end = u;
      std::int64_t n = 0;
      while (end < part.unit1 && (end == u || n + p.live_tokens(end) <= o.iterative_size)) n += p.live_tokens(end++);
      segments.push_back({u, end, u == part.unit0});
      u = end;
    }
  }
  // What later segments must keep (forced) and can keep (the rest).
  std::vector<std::int64_t> forced_after(segments.size() + 1, 0), free_after(segments.size() + 1, 0);
  for (std::size_t s = segments.size(); s-- > 0;) {
    const std::int64_t forced = p.forced_tokens(segments[s].u0, segments[s].u1);
    std::int64_t all = 0;
    for (std::int32_t u = segments[s].u0; u < segments[s].u1; ++u) all += p.live_tokens(u);
    forced_after[s] = forced_after[s + 1] + forced;
    free_after[s] = free_after[s + 1] + all - forced;
  }
  std::vector<std::int32_t> prefix;  // kept ids so far, with separators between contexts
  std::vector<float> history;        // unit losses scored so far, once per token
  std::int64_t kept_so_far = 0;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const segment_range& seg = segments[s];
    if (seg.opens_context && !prefix.empty()) prefix.insert(prefix.end(), p.separator_ids.begin(), p.separator_ids.end());
    std::vector<std::int32_t> live;  // the segment's tokens, less those the sentence filter dropped
    for (std::int32_t u = seg.u0; u < seg.u1; ++u)
      if (!doc.units[std::size_t(u)].dropped)
        for (std::int32_t t = doc.token_range(u).first; t < doc.token_range(u).second; ++t) live.push_back(t);
    std::vector<std::int32_t> live_ids(live.size());
    for (std::size_t i = 0; i < live.size(); ++i) live_ids[i] = p.ids[std::size_t(live[i])];
    const std::vector<float> lp = live.empty() ? std::vector<float>() : detail::checked_log_probs(fn, lm, prefix, live_ids);
    for (std::size_t i = 0; i < live.size(); ++i) doc.scores[std::size_t(live[i])] = -lp[i];
    doc.score_units(aggregation::mean, seg.u0, seg.u1);
    // The dynamic threshold over every loss so far, this segment's included. Losses
    // equal to it share the places left at the threshold in proportion.
    for (std::int32_t u = seg.u0; u < seg.u1; ++u)
      if (!doc.units[std::size_t(u)].forced && !doc.units[std::size_t(u)].dropped)
        history.insert(history.end(), std::size_t(doc.units[std::size_t(u)].tokens), doc.units[std::size_t(u)].score);
    // tau: what the budget still allows for the free tokens from here on, so a
    // segment that kept more than its share lowers the ratio of the rest.
    const std::int64_t room_here = p.context_target - kept_so_far - forced_after[s];
    const double tau = free_after[s] ? std::clamp(double(room_here) / double(free_after[s]), 0.0, 1.0) : 1.0;
    const std::int64_t k = std::int64_t(std::floor(double(history.size()) * tau));
    const float threshold = kth_largest(history, k);
    const auto above_all = std::count_if(history.begin(), history.end(), [&](float l) { return l > threshold; });
    const auto tied_all = std::count(history.begin(), history.end(), threshold);
    std::int64_t above = 0, tied = 0;
    for (std::int32_t u = seg.u0; u < seg.u1; ++u) {
      const detail::unit& x = doc.units[std::size_t(u)];
      if (x.forced || x.dropped) continue;
      if (x.score > threshold) above += x.tokens;
      else if (x.score == threshold) tied += x.tokens;
    }
    std::int64_t want = above;
    if (tied_all > 0) want += std::llround(double(tied) * double(k - above_all) / double(tied_all));
    const std::int64_t forced = forced_after[s] - forced_after[s + 1];
    const std::int64_t room = p.context_target - kept_so_far - forced - forced_after[s + 1];
    const std::int64_t hi = std::min(free_after[s] - free_after[s + 1], room);
    const std::int64_t lo = room - free_after[s + 1];
    want = std::clamp(want, std::max<std::int64_t>(lo, 0), std::max<std::int64_t>(hi, 0));
    kept_so_far += forced + doc.add(doc.ranked(seg.u0, seg.u1), want, partial);
    std::vector<std::int32_t> kept_tokens;
    doc.kept_tokens_of(seg.u0, seg.u1, kept_tokens);
    for (const std::int32_t t : kept_tokens) prefix.push_back(p.ids[std::size_t(t)]);
  }
  const std::int64_t compressed = doc.settle(tok, p.target, partial);
  return doc.finish(p.origin, p.target, compressed);
}

result longllmlingua(const prompt_parts& parts, const tokenizer& tok, const lm_scorer& lm,
                     const longllmlingua_options& o) {
  constexpr std::string_view fn = "prompt::longllmlingua";
  if (parts.question.empty())
    cinch::detail::fail(errc::invalid_argument, fn, "question must not be empty (the method is question-aware)");
  if (!(o.context_budget_scale > 0) || !std::isfinite(o.context_budget_scale))
    cinch::detail::fail(errc::invalid_argument, fn, "context_budget_scale must be finite and > 0, got ",
                        std::to_string(o.context_budget_scale));
  if (!(o.dynamic_ratio >= 0 && o.dynamic_ratio <= 1))
    cinch::detail::fail(errc::invalid_argument, fn, "dynamic_ratio must be in [0, 1], got ", std::to_string(o.dynamic_ratio));
  prompt_doc p = make_prompt(fn, parts, tok, o.structure, o.level, o.budget, false);
  detail::document& doc = p.doc;
  const bool partial = o.level != granularity::sentence && o.level != granularity::line;
  const std::vector<std::int32_t> question_ids = ids_of(tok.encode(parts.question));

  // 1. Relevance of each context to the question.
  std::vector<double> relevance(p.contexts(), -std::numeric_limits<double>::infinity());
  if (o.rank == rank_method::bm25) {
    const std::vector<double> s = bm25_index(parts.contexts).scores(parts.question);
    for (std::size_t c = 0; c < p.contexts(); ++c)
      if (p.tokens_of(c) > 0) relevance[c] = s[c];
  } else {
    std::string probe(parts.question);
    if (!o.condition.empty()) probe += " " + o.condition;
    const std::vector<std::int32_t> probe_ids = ids_of(tok.encode(probe));
    for (std::size_t c = 0; c < p.contexts(); ++c) {
      if (p.tokens_of(c) == 0) continue;
      std::vector<std::int32_t> prefix(p.ids_of_context(c).begin(), p.ids_of_context(c).end());
      prefix.insert(prefix.end(), p.separator_ids.begin(), p.separator_ids.end());
      relevance[c] = -mean_loss(fn, lm, prefix, probe_ids);
    }
  }
  std::vector<std::size_t> ranked;
  for (const std::size_t c : by_relevance(relevance))
    if (p.tokens_of(c) > 0) ranked.push_back(c);
  const std::vector<std::size_t> kept = coarse_filter(p, ranked, o.context_budget_scale, o.context_budget_extra);

  // 2. Output order.
  if (o.order == context_order::sort) {
    doc.order = {0};
    for (const std::size_t c : kept) doc.order.push_back(std::int32_t(c + 1));
    doc.order.push_back(std::int32_t(doc.parts.size() - 1));
  }

  // 3. Budgets per context, more for the more relevant.
  std::int64_t kept_tokens = 0;
  for (const std::size_t c : kept) kept_tokens += p.tokens_of(c);
  const double tau = kept_tokens ? double(p.context_target) / double(kept_tokens) : 1.0;
  std::vector<double> want;
  std::vector<std::int64_t> cap;
  for (std::size_t k = 0; k < kept.size(); ++k) {
    const double offset = kept.size() > 1 ? o.dynamic_ratio * (1.0 - 2.0 * double(k) / double(kept.size() - 1)) : 0.0;
    want.push_back(std::clamp(tau + offset, 0.0, 1.0) * double(p.tokens_of(kept[k])));
    cap.push_back(p.tokens_of(kept[k]));
  }
  const std::vector<std::int64_t> budgets = apportion(want, cap, p.context_target);

  // 4. Scores (contrastive) and selection per context.
  std::vector<std::int32_t> with_question = question_ids;
  with_question.insert(with_question.end(), p.separator_ids.begin(), p.separator_ids.end());
  for (std::size_t k = 0; k < kept.size(); ++k) {
    const detail::part& part = p.context(kept[k]);
    const std::span<const std::int32_t> ids = p.ids_of_context(kept[k]);
    const std::vector<float> lp0 = detail::checked_log_probs(fn, lm, {}, ids);
    std::vector<float> lp1;
    if (o.contrastive) lp1 = detail::checked_log_probs(fn, lm, with_question, ids);
    for (std::size_t i = 0; i < ids.size(); ++i)
      doc.scores[std::size_t(part.tok0) + i] = o.contrastive ? lp1[i] - lp0[i] : -lp0[i];
    doc.score_units(aggregation::mean, part.unit0, part.unit1);
    const std::int64_t forced = p.forced_tokens(part.unit0, part.unit1);
    doc.add(doc.ranked(part.unit0, part.unit1), std::max<std::int64_t>(budgets[k] - forced, 0), partial);
  }
  const std::int64_t compressed = doc.settle(tok, p.target, partial);
  return doc.finish(p.origin, p.target, compressed);
}

}  // namespace cinch::prompt
