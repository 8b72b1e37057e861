// Selection from given scores, Selective Context, LLMLingua-2 style selection and
// extractive sentence selection: each scores tokens, then runs the document's
// budget selection.
#include "cinch/prompt/select.hpp"

#include <cmath>

#include "cinch/core/error.hpp"
#include "cinch/prompt/extractive.hpp"
#include "cinch/prompt/llmlingua2.hpp"
#include "cinch/prompt/selective_context.hpp"
#include "prompt_checks.hpp"
#include "prompt_document.hpp"

namespace cinch::prompt {
namespace {

// Keeps the best units of a scored document up to the budget (less repeats of
// `drop_repeats`, see document::drop_repeats) and settles it on the re-tokenized output.
result select_budget(detail::document& doc, std::int64_t target, bool partial, const tokenizer* recount,
                     std::span<const std::string> drop_repeats = {}) {
  doc.add(doc.ranked(), target - doc.kept_tokens(), partial);
  if (!drop_repeats.empty()) {  // on the selection; the tokens freed go to the next best units
    doc.drop_repeats(drop_repeats);
    doc.add(doc.ranked(), target - doc.kept_tokens(), partial);
  }
  const std::int64_t compressed = recount ? doc.settle(*recount, target, partial) : doc.kept_tokens();
  return doc.finish(std::int64_t(doc.tokens.size()), target, compressed);
}

// Token indices [t0, t1) of the tokens starting in each range.
std::vector<std::pair<std::size_t, std::size_t>> tokens_by_range(const std::vector<token>& tokens,
                                                                  const std::vector<text_range>& ranges) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t t = 0;
  for (const text_range& r : ranges) {
    const std::size_t t0 = t;
    while (t < tokens.size() && tokens[t].begin < r.end) ++t;
    out.emplace_back(t0, t);
  }
  out.back().second = tokens.size();
  return out;
}

// select() on behalf of `fn`, whose name its errors carry.
result select_as(std::string_view fn, std::string_view text, std::span<const token> tokens,
                 std::span<const float> scores, const selection_options& options, const tokenizer* recount,
                 std::span<const std::string> drop_repeats = {}) {
  detail::check_text(fn, "text", text);
  detail::check_tokens(fn, text, tokens, 0);
  if (scores.size() != tokens.size())
    cinch::detail::fail(errc::invalid_argument, fn, "scores must hold one value per token (", tokens.size(), "), got ",
                        scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isnan(scores[i])) cinch::detail::fail(errc::invalid_argument, fn, "score ", i, " is NaN");
  if (options.threshold && std::isnan(*options.threshold))
    cinch::detail::fail(errc::invalid_argument, fn, "threshold is NaN");
  const detail::part_spec part{text, false};
  detail::document doc(fn, std::span(&part, 1), std::span(&tokens, 1), options.structure, options.level);
  doc.scores.assign(scores.begin(), scores.end());
  if (options.force_digits) doc.force_digit_units();
  doc.score_units(options.aggregate);
  const bool partial = options.level != granularity::sentence;
  if (options.threshold) {
    for (std::size_t u = 0; u < doc.units.size(); ++u)
      if (!doc.units[u].forced && doc.units[u].score > *options.threshold) doc.keep[u] = doc.units[u].tokens;
    if (!drop_repeats.empty()) doc.drop_repeats(drop_repeats);
    const std::int64_t kept = doc.kept_tokens();
    return doc.finish(std::int64_t(tokens.size()), kept, recount ? recount->count(doc.render()) : kept);
  }
  const std::int64_t target = detail::resolve_target(fn, options.budget, std::int64_t(tokens.size()));
  return select_budget(doc, target, partial, recount, drop_repeats);
}

}  // namespace

result select(std::string_view text, std::span<const token> tokens, std::span<const float> scores,
              const selection_options& options, const tokenizer* recount) {
  return select_as("prompt::select", text, tokens, scores, options, recount);
}

result selective_context(std::string_view text, const tokenizer& tok, const lm_scorer& lm,
                         const selective_context_options& options) {
  constexpr std::string_view fn = "prompt::selective_context";
  detail::check_text(fn, "text", text);
  const detail::part_spec part{text, false};
  detail::document doc(fn, std::span(&part, 1), tok, options.structure, options.level);
  const std::int64_t target = detail::resolve_target(fn, options.budget, std::int64_t(doc.tokens.size()));
  if (doc.tokens.empty()) return doc.finish(0, 0, 0);
  // Each sentence from a fresh context: I(t) = -ln p(t | the sentence before t).
  const std::vector<std::int32_t> ids = ids_of(doc.tokens);
  for (const auto& [t0, t1] : tokens_by_range(doc.tokens, segment(text, granularity::sentence))) {
    if (t0 == t1) continue;
    const std::vector<float> lp =
        detail::checked_log_probs(fn, lm, {}, std::span(ids).subspan(t0, t1 - t0));
    for (std::size_t i = 0; i < lp.size(); ++i) doc.scores[t0 + i] = -lp[i];
  }
  doc.score_units(aggregation::mean);
  return select_budget(doc, target, options.level != granularity::sentence, &tok);
}

result llmlingua2(std::string_view text, const tokenizer& tok, const keep_scorer& keep,
                  const llmlingua2_options& options) {
  constexpr std::string_view fn = "prompt::llmlingua2";
  detail::check_text(fn, "text", text);
  const std::int64_t window = keep.max_tokens();
  if (window <= 0) cinch::detail::fail(errc::invalid_argument, fn, "the keep scorer's max_tokens() must be > 0, got ", window);
  const std::vector<token> tokens = detail::checked_encode(fn, tok, text);
  const std::vector<std::int32_t> ids = ids_of(tokens);
  std::vector<float> probs(tokens.size());
  // Chunks of at most `window` tokens, each cut after the last token ending a sentence or line.
  for (std::size_t start = 0; start < tokens.size();) {
    std::size_t end = std::min(tokens.size(), start + std::size_t(window));
    if (end < tokens.size()) {
      for (std::size_t t = end; t > start + 1; --t) {
        const char last = tokens[t - 1].end > tokens[t - 1].begin ? text[tokens[t - 1].end - 1] : 0;
        if (last == '.' || last == '\n') {
          end = t;
          break;
        }
      }
    }
    const std::vector<float> p = detail::checked_keep_probs(fn, keep, std::span(ids).subspan(start, end - start));
    std::copy(p.begin(), p.end(), probs.begin() + std::ptrdiff_t(start));
    start = end;
  }
  selection_options sel;
  sel.budget = options.budget;
  sel.level = granularity::word;
  sel.aggregate = options.aggregate;
  sel.threshold = options.threshold;
  sel.force_digits = options.force_digits;
  sel.structure = options.structure;
  sel.structure.force_strings.insert(sel.structure.force_strings.end(), options.force_tokens.begin(),
                                     options.force_tokens.end());
  return select_as(fn, text, tokens, probs, sel, &tok,
                   options.drop_consecutive ? std::span<const std::string>(options.force_tokens) : std::span<const std::string>());
}

result extractive(std::string_view text, std::string_view question, const tokenizer& tok,
                  const extractive_options& options, const embedder* embed) {
  constexpr std::string_view fn = "prompt::extractive";
  detail::check_text(fn, "text", text);
  detail::check_text(fn, "question", question);
  const detail::part_spec part{text, false};
  detail::document doc(fn, std::span(&part, 1), tok, options.structure, granularity::sentence);
  const std::int64_t target = detail::resolve_target(fn, options.budget, std::int64_t(doc.tokens.size()));
  if (doc.units.empty()) return doc.finish(0, 0, 0);
  std::vector<std::string_view> sentences;  // forced ones too: they stay whatever they score
  for (const detail::unit& u : doc.units)
    sentences.push_back(std::string_view(doc.original)
                            .substr(doc.atoms[std::size_t(u.atom0)].begin,
                                    doc.atoms[std::size_t(u.atom1 - 1)].end - doc.atoms[std::size_t(u.atom0)].begin));
  std::vector<double> score(sentences.size(), 0.0);
  if (embed) {
    const std::vector<float> q = detail::checked_embedding(fn, *embed, question, 0);
    auto norm = [](const std::vector<float>& v) {
      double s = 0;
      for (const float x : v) s += double(x) * x;
      return std::sqrt(s);
    };
    const double qn = norm(q);
    for (std::size_t i = 0; i < sentences.size(); ++i) {
      const std::vector<float> e = detail::checked_embedding(fn, *embed, sentences[i], q.size());
      double dot = 0;
      for (std::size_t j = 0; j < e.size(); ++j) dot += double(e[j]) * q[j];
      const double den = qn * norm(e);
      score[i] = den > 0 ? dot / den : 0.0;
    }
  } else {
    score = bm25_index(sentences, options.bm25).scores(question);
  }
  for (std::size_t u = 0; u < doc.units.size(); ++u) {
    doc.units[u].score = float(score[u]);
    for (std::int32_t t = doc.atoms[std::size_t(doc.units[u].atom0)].tok0;
         t < doc.atoms[std::size_t(doc.units[u].atom1 - 1)].tok1; ++t)
      doc.scores[std::size_t(t)] = float(score[u]);
  }
  return select_budget(doc, target, false, &tok);
}

}  // namespace cinch::prompt
