// A model-free scorer: an n-gram language model over token ids with interpolated
// modified Kneser-Ney smoothing (Chen & Goodman 1998), so prompt compression works
// without an engine. Defined in cinch::kernels.
//
// Estimation, for the highest order n with raw counts c and each lower order with
// continuation counts c(w_i..w_k) = #{distinct w_{i-1} preceding it}:
//   P_k(w | h) = max(c(h w) - D_k(c(h w)), 0) / c(h) + gamma(h) P_{k-1}(w | h')
//   gamma(h)   = (D_k1 N1(h) + D_k2 N2(h) + D_k3 N3+(h)) / c(h)
// where c(h) = sum_w c(h w), Nr(h) = #{w : c(h w) = r} (N3+: r >= 3), h' drops h's
// oldest token, and P_0(w) = 1 / vocab_size. An unseen context h gives
// P_k = P_{k-1}. Discounts per order from the count-of-counts n_r:
//   Y = n1 / (n1 + 2 n2), D_k1 = 1 - 2Y n2/n1, D_k2 = 2 - 3Y n3/n2, D_k3 = 3 - 4Y n4/n3
// (each clamped to [0, r]; 0.5, 1, 1.5 when a count-of-counts is zero).
// Sequences start with n - 1 copies of a boundary id (vocab_size), so the first
// tokens of a text are predicted from "start of text".
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

class ngram_model final : public lm_scorer {
 public:
  // Counts the n-grams of each token sequence (each starts from "start of text").
  // 1 <= order, with order * bit_width(vocab_size + 1) <= 64 (order <= 4 for
  // GPT-2's 50,257 ids); every id in [0, vocab_size).
  [[nodiscard]] static ngram_model train(std::span<const std::vector<std::int32_t>> sequences,
                                         std::int64_t vocab_size, int order = 3);
  // Tokenizes each document and trains on it; each paragraph (text between blank
  // lines) is its own sequence. This is how to train on your own text.
  [[nodiscard]] static ngram_model train(const tokenizer& tok, std::span<const std::string_view> documents,
                                         int order = 3);

  // The counts in the cinch stream container (kind "NGRM" version 1, checksummed):
  // sorted n-gram keys as delta varints, counts as varints. The discounts are
  // re-estimated on load, so a loaded model scores exactly as the saved one.
  [[nodiscard]] std::vector<std::byte> to_bytes() const;
  [[nodiscard]] static ngram_model from_bytes(std::span<const std::byte> bytes);
  void save(const std::filesystem::path& path) const;
  [[nodiscard]] static ngram_model load(const std::filesystem::path& path);

  // ln P(token | the last order-1 ids of context), context padded on the left
  // with the boundary id. Ids outside [0, vocab_size) throw invalid_argument.
  [[nodiscard]] double log_prob(std::span<const std::int32_t> context, std::int32_t token) const;
  // lm_scorer: context = boundary, prefix, tokens before each one.
  [[nodiscard]] std::vector<float> log_probs(std::span<const std::int32_t> prefix,
                                             std::span<const std::int32_t> tokens) const override;
  // exp(-mean ln P) of tokens from "start of text"; 1 for no tokens.
  [[nodiscard]] double perplexity(std::span<const std::int32_t> tokens) const;

  [[nodiscard]] int order() const noexcept;
  [[nodiscard]] std::int64_t vocab_size() const noexcept;
  // Distinct n-grams stored for n = 1..order().
  [[nodiscard]] std::int64_t ngrams(int n) const;

 private:
  struct impl;
  explicit ngram_model(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

}  // namespace cinch::prompt
