// Shared by the prompt tests: the repository's data directory and the shipped
// GPT-2 tokenizer, loaded once.
#pragma once

#include <cinch/prompt/bpe.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

inline std::filesystem::path prompt_data_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "data";
}

inline const cinch::prompt::bpe_tokenizer& gpt2() {
  static const cinch::prompt::bpe_tokenizer tok =
      cinch::prompt::bpe_tokenizer::load_dir(prompt_data_dir() / "tokenizers" / "gpt2");
  return tok;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline const std::string& moby_dick() {
  static const std::string text = read_text(prompt_data_dir() / "text" / "moby_dick.txt");
  return text;
}

#include <cinch/prompt/builtin.hpp>
#include <cinch/prompt/scorer.hpp>
#include <cinch/prompt/utf8.hpp>

#include <algorithm>
#include <set>
#include <span>
#include <vector>

// The shipped trigram model (trained once per test run).
inline const cinch::prompt::ngram_model& moby_lm() {
  static const cinch::prompt::ngram_model lm = cinch::prompt::load_builtin(prompt_data_dir()).lm;
  return lm;
}

// The first `bytes` bytes of Moby-Dick's third chapter, cut back to a character boundary.
inline std::string moby_excerpt(std::size_t bytes, std::size_t from = 0) {
  const std::string& t = moby_dick();
  std::size_t b = t.find("CHAPTER 3.") + from;
  while (!cinch::prompt::is_char_boundary(t, b)) ++b;
  std::size_t e = std::min(t.size(), b + bytes);
  while (!cinch::prompt::is_char_boundary(t, e)) --e;
  return t.substr(b, e - b);
}

// A planted needle whose words are tokens that never occur in Moby-Dick (only its
// period does), and a question about it with rare tokens of its own. The scorers below know nothing but these token ids, so a method keeps
// the needle only if it follows its scores.
struct needle_fixture {
  std::string needle = " Bluetooth selfie hashtag Bitcoin podcasts smartphone emoji cryptocurrency.";
  std::string question = "Nvidia Ethereum Pokemon Bluetooth selfie hashtag?";
  std::set<std::int32_t> needle_ids, question_ids;

  needle_fixture() {
    std::set<std::int32_t> hay;
    for (const auto& t : gpt2().encode(moby_dick())) hay.insert(t.id);
    for (const auto& t : gpt2().encode(needle))
      if (!hay.count(t.id)) needle_ids.insert(t.id);
    for (const auto& t : gpt2().encode(question))
      if (!hay.count(t.id) && !needle_ids.count(t.id)) question_ids.insert(t.id);
  }
  // Whether all the needle's words are in `text`, in one piece.
  [[nodiscard]] bool kept_in(std::string_view text) const {
    return text.find(needle.substr(1, needle.size() - 2)) != std::string_view::npos;
  }
  // `hay` with the needle planted after its first sentence end past `at`.
  [[nodiscard]] std::string plant(std::string hay, std::size_t at) const {
    const std::size_t dot = hay.find(". ", at);
    return hay.insert(dot + 1, needle);
  }
};

// An LM that finds the needle surprising (-20 nats) unless the question precedes
// it (-0.5: the question makes it predictable), finds the question predictable
// after the needle, and everything else mildly predictable (-3).
class needle_lm final : public cinch::prompt::lm_scorer {
 public:
  explicit needle_lm(const needle_fixture& f) : f_(f) {}
  std::vector<float> log_probs(std::span<const std::int32_t> prefix, std::span<const std::int32_t> tokens) const override {
    auto has = [&](const std::set<std::int32_t>& ids) {
      return std::any_of(prefix.begin(), prefix.end(), [&](std::int32_t id) { return ids.count(id) > 0; });
    };
    const bool question_before = has(f_.question_ids), needle_before = has(f_.needle_ids);
    std::vector<float> out;
    for (const std::int32_t id : tokens) {
      if (f_.needle_ids.count(id)) out.push_back(question_before ? -0.5f : -20.0f);
      else if (f_.question_ids.count(id)) out.push_back(needle_before ? -0.5f : -8.0f);
      else out.push_back(-3.0f);
    }
    return out;
  }

 private:
  const needle_fixture& f_;
};

// A keep classifier that keeps the needle (0.99) and little else (0.1).
class needle_keep final : public cinch::prompt::keep_scorer {
 public:
  explicit needle_keep(const needle_fixture& f) : f_(f) {}
  std::vector<float> keep_probs(std::span<const std::int32_t> tokens) const override {
    std::vector<float> out;
    for (const std::int32_t id : tokens) out.push_back(f_.needle_ids.count(id) ? 0.99f : 0.1f);
    return out;
  }

 private:
  const needle_fixture& f_;
};
