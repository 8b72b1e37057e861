// BM25 relevance of documents to a query (Robertson & Zaragoza), model-free: the
// question-aware ranking of LongLLMLingua's "bm25" method, extractive sentence
// selection and code chunk ranking. Defined in cinch::kernels.
//
//   score(d, q) = sum over distinct terms t of q:
//                 idf(t) * tf(t, d) (k1 + 1) / (tf(t, d) + k1 (1 - b + b |d| / avgdl))
//   idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))     (never negative)
// Terms are maximal runs of letters and numbers (unicode.hpp), ASCII-lowercased;
// each character of an unspaced script (Han, Kana, Thai...) is a term of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cinch::prompt {

struct bm25_params {
  double k1 = 1.2;  // term-frequency saturation, >= 0
  double b = 0.75;  // length normalisation, in [0, 1]
};

// The terms of `text`, in order.
[[nodiscard]] std::vector<std::string> bm25_terms(std::string_view text);

class bm25_index {
 public:
  // Indexes the documents (their text is not kept). Parameters outside their
  // ranges throw invalid_argument.
  explicit bm25_index(std::span<const std::string_view> documents, bm25_params params = {});
  // One score per document, in document order; 0 where no query term occurs.
  [[nodiscard]] std::vector<double> scores(std::string_view query) const;
  [[nodiscard]] std::size_t size() const noexcept;

 private:
  struct impl;
  std::shared_ptr<const impl> impl_;
};

}  // namespace cinch::prompt
