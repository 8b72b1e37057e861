// Checked calls into engine scorers and tokenizers; the surprisal keep scorer.
#include <cmath>

#include "cinch/core/error.hpp"
#include "prompt_checks.hpp"

namespace cinch::prompt {
namespace detail {

std::vector<float> checked_log_probs(std::string_view fn, const lm_scorer& lm, std::span<const std::int32_t> prefix,
                                     std::span<const std::int32_t> tokens) {
  std::vector<float> lp = lm.log_probs(prefix, tokens);
  if (lp.size() != tokens.size())
    cinch::detail::fail(errc::invalid_argument, fn, "the scorer returned ", lp.size(), " log-probabilities for ",
                        tokens.size(), " tokens");
  for (std::size_t i = 0; i < lp.size(); ++i) {
    if (std::isnan(lp[i]) || lp[i] == INFINITY)
      cinch::detail::fail(errc::invalid_argument, fn, "the scorer returned ", std::isnan(lp[i]) ? "NaN" : "+inf",
                          " as the log-probability of token ", i, " (id ", tokens[i], ")");
    if (lp[i] > 0) lp[i] = 0;
  }
  return lp;
}

std::vector<float> checked_keep_probs(std::string_view fn, const keep_scorer& keep, std::span<const std::int32_t> tokens) {
  std::vector<float> p = keep.keep_probs(tokens);
  if (p.size() != tokens.size())
    cinch::detail::fail(errc::invalid_argument, fn, "the keep scorer returned ", p.size(), " probabilities for ",
                        tokens.size(), " tokens");
  for (std::size_t i = 0; i < p.size(); ++i)
    if (!(p[i] >= 0 && p[i] <= 1))  // also catches NaN
      cinch::detail::fail(errc::invalid_argument, fn, "the keep scorer returned ", std::to_string(p[i]),
                          " for token ", i, "; keep-probabilities must be in [0, 1]");
  return p;
}

std::vector<float> checked_embedding(std::string_view fn, const embedder& e, std::string_view text, std::size_t dim) {
  std::vector<float> v = e.embed(text);
  if (v.empty() || (dim != 0 && v.size() != dim))
    cinch::detail::fail(errc::invalid_argument, fn, "the embedder returned a vector of length ", v.size(),
                        dim ? ", expected " : ", expected a non-empty one", dim ? std::to_string(dim) : std::string());
  for (const float x : v)
    if (!std::isfinite(x)) cinch::detail::fail(errc::invalid_argument, fn, "the embedder returned a non-finite value");
  return v;
}

void check_tokens(std::string_view fn, std::string_view text, std::span<const token> tokens, std::int64_t vocab) {
  std::size_t prev_end = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const token& t = tokens[i];
    if (t.begin > t.end || t.end > text.size() || t.begin < prev_end)
      cinch::detail::fail(errc::invalid_argument, fn, "token ", i, " at bytes [", t.begin, ", ", t.end,
                          ") overlaps the token before it or leaves the ", text.size(), "-byte text");
    if (t.id < 0 || (vocab > 0 && t.id >= vocab))
      cinch::detail::fail(errc::invalid_argument, fn, "token ", i, " has id ", t.id, " outside [0, ", vocab, ")");
    prev_end = t.end;
  }
}

std::vector<token> checked_encode(std::string_view fn, const tokenizer& tok, std::string_view text) {
  std::vector<token> tokens = tok.encode(text);
  check_tokens(fn, text, tokens, tok.vocab_size());
  return tokens;
}

}  // namespace detail

std::vector<float> surprisal_keep_scorer::keep_probs(std::span<const std::int32_t> tokens) const {
  std::vector<float> p = detail::checked_log_probs("prompt::surprisal_keep_scorer", lm_, {}, tokens);
  for (float& v : p) v = float(-std::expm1(double(v)));  // 1 - p(token), accurate when p is tiny
  return p;
}

}  // namespace cinch::prompt
