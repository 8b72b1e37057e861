// The Kneser-Ney n-gram scorer (hand-computed probabilities, normalisation,
// held-out perplexity against a unigram model, the stream format) and BM25.
#include <catch2/catch.hpp>

#include <cinch/prompt/bm25.hpp>
#include <cinch/prompt/builtin.hpp>
#include <cinch/prompt/ngram.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "test_prompt_common.hpp"

using namespace cinch::prompt;
using cinch::errc;

namespace {

double prob(const ngram_model& m, std::vector<std::int32_t> ctx, std::int32_t w) { return std::exp(m.log_prob(ctx, w)); }

// Moby-Dick split into the text before and after a held-out cut (the last ~10 %).
struct split_text {
  std::string_view train, held_out;
};
split_text moby_split() {
  const std::string& t = moby_dick();
  const std::size_t cut = t.find("CHAPTER 123.");
  REQUIRE(cut != std::string::npos);
  return {std::string_view(t).substr(0, cut), std::string_view(t).substr(cut)};
}

}  // namespace

TEST_CASE("ngram: Kneser-Ney probabilities match a hand computation", "[prompt][ngram]") {
  SECTION("unigram: D = 0.5, 1 (default discounts), c = {2, 1, 0}") {
    // gamma = (0.5 * 1 + 1 * 1) / 3 = 0.5; P(w) = max(c - D, 0) / 3 + 0.5 / 3.
    const ngram_model m = ngram_model::train(std::vector<std::vector<std::int32_t>>{{0, 0, 1}}, 3, 1);
    CHECK(prob(m, {}, 0) == Approx(0.5));
    CHECK(prob(m, {}, 1) == Approx(1.0 / 3));
    CHECK(prob(m, {}, 2) == Approx(1.0 / 6));
  }
  SECTION("bigram over 0 1 0 2") {
    // Bigrams (with the boundary b = 3): b0, 01, 10, 02. Continuation counts:
    // 0 <- {b, 1}: 2; 1 <- {0}: 1; 2 <- {0}: 1. Unigram level: total 4, gamma 0.5,
    // P1 = {5/12, 7/24, 7/24}. After 0: total 2, gamma 0.5, P(1|0) = 1/4 + 7/48.
    const ngram_model m = ngram_model::train(std::vector<std::vector<std::int32_t>>{{0, 1, 0, 2}}, 3, 2);
    CHECK(m.ngrams(1) == 3);
    CHECK(m.ngrams(2) == 4);
    CHECK(prob(m, {0}, 1) == Approx(19.0 / 48));
    CHECK(prob(m, {0}, 2) == Approx(19.0 / 48));
    CHECK(prob(m, {0}, 0) == Approx(10.0 / 48));
    CHECK(prob(m, {2}, 0) == Approx(5.0 / 12));  // unseen context: the unigram level
    CHECK(prob(m, {}, 0) == Approx(17.0 / 24));  // after the boundary: 1/2 + 5/24
    // log_probs scores a segment after a prefix exactly like log_prob with that context.
    const std::vector<float> lp = m.log_probs(std::vector<std::int32_t>{1, 0}, std::vector<std::int32_t>{1, 0});
    CHECK(lp[0] == Approx(std::log(19.0 / 48)));
    CHECK(lp[1] == Approx(m.log_prob(std::vector<std::int32_t>{1}, 0)));
  }
}

TEST_CASE("ngram: each conditional distribution sums to 1", "[prompt][ngram]") {
  const split_text s = moby_split();
  const std::string_view docs[] = {s.train.substr(0, 200000)};
  const ngram_model m = ngram_model::train(gpt2(), docs, 3);
  const std::vector<std::int32_t> tokens = ids_of(gpt2().encode(" the whale and the sea. Call me"));
  for (std::size_t i = 0; i + 2 <= tokens.size(); i += 3) {
    const std::vector<std::int32_t> ctx(tokens.begin(), tokens.begin() + std::ptrdiff_t(i));
    double sum = 0;
    for (std::int32_t w = 0; w < m.vocab_size(); ++w) sum += prob(m, ctx, w);
    CHECK(sum == Approx(1.0).epsilon(1e-9));
  }
  double sum = 0;  // a context never seen in training
  for (std::int32_t w = 0; w < m.vocab_size(); ++w) sum += prob(m, {50000, 50001}, w);
  CHECK(sum == Approx(1.0).epsilon(1e-9));
}

TEST_CASE("ngram: held-out perplexity of the trigram model is below the unigram's", "[prompt][ngram]") {
  const split_text s = moby_split();
  const std::string_view docs[] = {s.train};
  const ngram_model unigram = ngram_model::train(gpt2(), docs, 1);
  const ngram_model bigram = ngram_model::train(gpt2(), docs, 2);
  const ngram_model trigram = ngram_model::train(gpt2(), docs, 3);
  const std::vector<std::int32_t> held = ids_of(gpt2().encode(s.held_out));
  const double p1 = unigram.perplexity(held), p2 = bigram.perplexity(held), p3 = trigram.perplexity(held);
  INFO("held-out perplexity: unigram " << p1 << ", bigram " << p2 << ", trigram " << p3);
  CHECK(p3 < p2);
  CHECK(p2 < 0.6 * p1);
  CHECK(p1 < 2000);  // sanity: far below the vocabulary size
}

TEST_CASE("ngram: the stream format round-trips and refuses corrupt bytes", "[prompt][ngram][errors]") {
  const split_text s = moby_split();
  const std::string_view docs[] = {s.train.substr(0, 50000)};
  const ngram_model m = ngram_model::train(gpt2(), docs, 3);
  const std::vector<std::byte> bytes = m.to_bytes();
  const ngram_model back = ngram_model::from_bytes(bytes);
  CHECK(back.order() == 3);
  CHECK(back.vocab_size() == 50257);
  for (int n = 1; n <= 3; ++n) CHECK(back.ngrams(n) == m.ngrams(n));
  const std::vector<std::int32_t> probe = ids_of(gpt2().encode(s.held_out.substr(0, 3000)));
  CHECK(back.log_probs({}, probe) == m.log_probs({}, probe));

  const auto path = std::filesystem::temp_directory_path() / "cinch_test_prompt_ngram.bin";
  m.save(path);
  CHECK(ngram_model::load(path).perplexity(probe) == m.perplexity(probe));
  std::filesystem::remove(path);

  std::vector<std::byte> flipped = bytes;
  flipped[bytes.size() / 2] ^= std::byte{0x10};
  require_error([&] { (void)ngram_model::from_bytes(flipped); }, errc::corrupt_data, {});
  require_error([&] { (void)ngram_model::from_bytes(std::span(bytes).first(bytes.size() - 9)); }, errc::corrupt_data, {});
  require_error([&] { (void)ngram_model::load("/nonexistent/model.bin"); }, errc::invalid_argument,
                {"prompt::ngram_model::load", "cannot open"});
}

TEST_CASE("ngram: bad arguments", "[prompt][ngram][errors]") {
  const std::vector<std::vector<std::int32_t>> seq = {{0, 1, 2}};
  require_error([&] { (void)ngram_model::train(seq, 3, 0); }, errc::invalid_argument,
                {"prompt::ngram_model::train", "order must be in [1, 21] for vocab_size 3, got 0"});
  require_error([&] { (void)ngram_model::train(seq, 50257, 5); }, errc::invalid_argument,
                {"order must be in [1, 4] for vocab_size 50257, got 5"});
  require_error([&] { (void)ngram_model::train(seq, 0, 2); }, errc::invalid_argument, {"vocab_size must be in [1"});
  require_error([&] { (void)ngram_model::train(seq, 2, 2); }, errc::invalid_argument,
                {"token id 2 is outside [0, 2)"});
  const ngram_model m = ngram_model::train(seq, 3, 2);
  require_error([&] { (void)m.log_prob({}, 3); }, errc::invalid_argument, {"prompt::ngram_model", "token id 3 is outside [0, 3)"});
  require_error([&] { (void)m.log_probs(std::vector<std::int32_t>{-1}, std::vector<std::int32_t>{0}); },
                errc::invalid_argument, {"token id -1"});
  require_error([&] { (void)m.ngrams(3); }, errc::invalid_argument, {"n must be in [1, 2], got 3"});
  CHECK(m.perplexity({}) == 1.0);
  CHECK(m.log_probs({}, {}).empty());
}

TEST_CASE("bm25 scores follow the formula", "[prompt][bm25]") {
  CHECK(bm25_terms("Hello, WORLD 42 世界 naïve x2") ==
        std::vector<std::string>{"hello", "world", "42", "世", "界", "naïve", "x2"});
  const std::string_view docs[] = {"The cat sat.", "the dog", "cat CAT cat"};
  const bm25_index index(docs);
  CHECK(index.size() == 3);
  const std::vector<double> s = index.scores("cat cat");  // repeated query terms count once
  const double idf = std::log(1 + (3 - 2 + 0.5) / (2 + 0.5)), avgdl = 8.0 / 3;
  auto term = [&](double tf, double len) { return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avgdl)); };
  CHECK(s[0] == Approx(term(1, 3)));
  CHECK(s[1] == 0);
  CHECK(s[2] == Approx(term(3, 3)));
  CHECK(index.scores("unrelated").at(0) == 0);
  const bm25_index empty(std::span<const std::string_view>{});
  CHECK(empty.scores("cat").empty());
  require_error([&] { (void)bm25_index(docs, {-1.0, 0.75}); }, errc::invalid_argument,
                {"prompt::bm25_index", "k1 must be finite and >= 0 and b in [0, 1]"});
  require_error([&] { (void)bm25_index(docs, {1.2, 1.5}); }, errc::invalid_argument, {"b = 1.5"});
}

TEST_CASE("builtin models load from the data directory", "[prompt][ngram]") {
  const builtin_models m = load_builtin(prompt_data_dir());
  CHECK(m.tokenizer.vocab_size() == 50257);
  CHECK(m.lm.order() == 3);
  const std::vector<std::int32_t> ids = ids_of(m.tokenizer.encode("Call me Ishmael."));
  // Text the model was trained on is far more predictable than shuffled tokens.
  std::vector<std::int32_t> shuffled = {ids[3], ids[1], ids[0], ids[2]};
  CHECK(m.lm.perplexity(ids) < m.lm.perplexity(shuffled));
  require_error([] { (void)load_builtin("/nonexistent"); }, errc::invalid_argument, {"cannot open"});
}
