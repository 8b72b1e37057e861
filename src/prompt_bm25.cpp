// BM25 over an inverted index of term -> (document, term frequency).
#include "cinch/prompt/bm25.hpp"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "cinch/core/error.hpp"
#include "cinch/prompt/unicode.hpp"
#include "cinch/prompt/utf8.hpp"

namespace cinch::prompt {

std::vector<std::string> bm25_terms(std::string_view text) {
  std::vector<std::string> terms;
  std::string current;
  char32_t cp = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    int n = decode_utf8(text, pos, cp);
    const bool valid = n > 0;
    if (!valid) n = 1;
    const char_class cls = valid ? classify(cp) : char_class::other;
    const bool word = cls == char_class::letter || cls == char_class::number;
    if (word && is_unspaced_script(cp)) {
      if (!current.empty()) terms.push_back(std::move(current)), current.clear();
      terms.emplace_back(text.substr(pos, std::size_t(n)));
    } else if (word) {
      for (int i = 0; i < n; ++i) {
        const char c = text[pos + std::size_t(i)];
        current.push_back(c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c);
      }
    } else if (!current.empty()) {
      terms.push_back(std::move(current));
      current.clear();
    }
    pos += std::size_t(n);
  }
  if (!current.empty()) terms.push_back(std::move(current));
  return terms;
}

struct bm25_index::impl {
  bm25_params params;
  std::unordered_map<std::string, std::vector<std::pair<std::uint32_t, std::uint32_t>>> postings;
  std::vector<double> length_norm;  // k1 (1 - b + b |d| / avgdl) per document
};

bm25_index::bm25_index(std::span<const std::string_view> documents, bm25_params params) {
  if (!(params.k1 >= 0) || !std::isfinite(params.k1) || !(params.b >= 0 && params.b <= 1))
    cinch::detail::fail(errc::invalid_argument, "prompt::bm25_index", "k1 must be finite and >= 0 and b in [0, 1], got k1 = ",
                        std::to_string(params.k1), ", b = ", std::to_string(params.b));
  auto p = std::make_shared<impl>();
  p->params = params;
  std::vector<double> lengths(documents.size());
  double total = 0;
  for (std::size_t d = 0; d < documents.size(); ++d) {
    std::unordered_map<std::string, std::uint32_t> tf;
    const std::vector<std::string> terms = bm25_terms(documents[d]);
    for (const std::string& t : terms) ++tf[t];
    for (auto& [t, f] : tf) p->postings[t].emplace_back(std::uint32_t(d), f);
    lengths[d] = double(terms.size());
    total += lengths[d];
  }
  const double avgdl = documents.empty() || total == 0 ? 1.0 : total / double(documents.size());
  p->length_norm.resize(documents.size());
  for (std::size_t d = 0; d < documents.size(); ++d)
    p->length_norm[d] = params.k1 * (1 - params.b + params.b * lengths[d] / avgdl);
  impl_ = std::move(p);
}

std::vector<double> bm25_index::scores(std::string_view query) const {
  std::vector<double> out(impl_->length_norm.size(), 0.0);
  const double n = double(out.size());
  std::unordered_set<std::string> seen;
  for (const std::string& t : bm25_terms(query)) {
    if (!seen.insert(t).second) continue;
    auto it = impl_->postings.find(t);
    if (it == impl_->postings.end()) continue;
    const double df = double(it->second.size());
    const double idf = std::log(1 + (n - df + 0.5) / (df + 0.5));
    for (const auto& [d, f] : it->second)
      out[d] += idf * f * (impl_->params.k1 + 1) / (f + impl_->length_norm[d]);
  }
  return out;
}

std::size_t bm25_index::size() const noexcept { return impl_->length_norm.size(); }

}  // namespace cinch::prompt
