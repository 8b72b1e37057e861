// What the engine supplies: per-token log-probabilities from a causal LM, per-token
// keep-probabilities from a classifier (LLMLingua-2 style), or text embeddings.
// cinch calls these and owns everything around them (segmenting, budgets,
// thresholds, word aggregation, UTF-8-safe deletion).
//
// Compressors check every answer: the wrong number of values, NaN, a log-probability
// of +inf or a keep-probability outside [0, 1] throws cinch::error(invalid_argument)
// naming the compressor. A log-probability above 0 (rounding in an fp16 softmax) is
// read as 0; -inf (an impossible token) is the largest possible surprise.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace cinch::prompt {

// A causal language model.
class lm_scorer {
 public:
  virtual ~lm_scorer() = default;
  // One value per element of `tokens`: ln p(tokens[i] | prefix, tokens[0..i)).
  // `prefix` is what precedes the segment: the compressed prompt so far (iterative
  // LLMLingua), a question (contrastive LongLLMLingua), a document (question
  // ranking), or nothing at the start of a text. An engine can keep the KV cache of
  // the last prefix and extend it when the next call's prefix starts with it.
  [[nodiscard]] virtual std::vector<float> log_probs(std::span<const std::int32_t> prefix,
                                                     std::span<const std::int32_t> tokens) const = 0;
};

// A token classifier: the probability that each token should be kept.
class keep_scorer {
 public:
  virtual ~keep_scorer() = default;
  // One value in [0, 1] per token. Called on chunks of at most max_tokens() tokens
  // cut at sentence ends, as the classifier's window requires.
  [[nodiscard]] virtual std::vector<float> keep_probs(std::span<const std::int32_t> tokens) const = 0;
  [[nodiscard]] virtual std::int64_t max_tokens() const { return 512; }
};

// A text embedding model (for extractive selection by similarity to a question).
class embedder {
 public:
  virtual ~embedder() = default;
  // A vector of the same length for every text.
  [[nodiscard]] virtual std::vector<float> embed(std::string_view text) const = 0;
};

// Adapters so a lambda can be a scorer.
class lm_scorer_fn final : public lm_scorer {
 public:
  using function = std::function<std::vector<float>(std::span<const std::int32_t>, std::span<const std::int32_t>)>;
  explicit lm_scorer_fn(function f) : f_(std::move(f)) {}
  [[nodiscard]] std::vector<float> log_probs(std::span<const std::int32_t> prefix,
                                             std::span<const std::int32_t> tokens) const override {
    return f_(prefix, tokens);
  }

 private:
  function f_;
};

class keep_scorer_fn final : public keep_scorer {
 public:
  using function = std::function<std::vector<float>(std::span<const std::int32_t>)>;
  explicit keep_scorer_fn(function f, std::int64_t max_tokens = 512) : f_(std::move(f)), max_tokens_(max_tokens) {}
  [[nodiscard]] std::vector<float> keep_probs(std::span<const std::int32_t> tokens) const override { return f_(tokens); }
  [[nodiscard]] std::int64_t max_tokens() const override { return max_tokens_; }

 private:
  function f_;
  std::int64_t max_tokens_;
};

// A keep scorer from a language model, for LLMLingua-2 style selection without a
// classifier: keep(t) = 1 - p(t | tokens before it in the chunk), so a token the
// model predicts with certainty is the first to go.
class surprisal_keep_scorer final : public keep_scorer {
 public:
  explicit surprisal_keep_scorer(const lm_scorer& lm, std::int64_t max_tokens = 512) : lm_(lm), max_tokens_(max_tokens) {}
  [[nodiscard]] std::vector<float> keep_probs(std::span<const std::int32_t> tokens) const override;
  [[nodiscard]] std::int64_t max_tokens() const override { return max_tokens_; }

 private:
  const lm_scorer& lm_;
  std::int64_t max_tokens_;
};

}  // namespace cinch::prompt
