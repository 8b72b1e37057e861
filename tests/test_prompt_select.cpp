// The selection core and the single-text methods (Selective Context, LLMLingua-2
// style, extractive): hand-checked selections, exact rate adherence, UTF-8 safety,
// structure preservation, span mapping, the planted needle, and bad input.
#include <catch2/catch.hpp>

#include <cinch/prompt/extractive.hpp>
#include <cinch/prompt/llmlingua2.hpp>
#include <cinch/prompt/segment.hpp>
#include <cinch/prompt/select.hpp>
#include <cinch/prompt/selective_context.hpp>
#include <cinch/prompt/structure.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "test_prompt_common.hpp"

using namespace cinch::prompt;
using cinch::errc;

namespace {

// Every span copies its original bytes to its output position, spans ascend in
// the output without overlap, and the output is valid UTF-8.
void check_spans(std::string_view original, const result& r) {
  REQUIRE(is_valid_utf8(r.text));
  std::size_t out_end = 0, covered = 0;
  for (const kept_span& s : r.spans) {
    REQUIRE(s.begin < s.end);
    REQUIRE(s.end <= original.size());
    REQUIRE(s.out >= out_end);
    REQUIRE(r.text.substr(s.out, s.end - s.begin) == original.substr(s.begin, s.end - s.begin));
    REQUIRE(is_char_boundary(original, s.begin));
    REQUIRE(is_char_boundary(original, s.end));
    out_end = s.out + (s.end - s.begin);
    covered += s.end - s.begin;
  }
  REQUIRE(out_end <= r.text.size());
  (void)covered;
}

structure_options plain() { return {structure::plain, {}, false, {}, {}}; }

selective_context_options sc_options(budget b, granularity g = granularity::phrase, structure_options s = {}) {
  selective_context_options o;
  o.budget = b;
  o.level = g;
  o.structure = std::move(s);
  return o;
}

extractive_options ex_options(budget b) {
  extractive_options o;
  o.budget = b;
  return o;
}

llmlingua2_options l2_options(budget b) {
  llmlingua2_options o;
  o.budget = b;
  return o;
}

}  // namespace

TEST_CASE("segment: words, phrases and sentences", "[prompt][select]") {
  auto pieces = [](std::string_view text, granularity g) {
    std::vector<std::string> out;
    for (const text_range& r : segment(text, g)) out.emplace_back(text.substr(r.begin, r.end - r.begin));
    return out;
  };
  using strings = std::vector<std::string>;
  CHECK(pieces("Hello, world!  It's half-done (really).", granularity::word) ==
        strings{"Hello", ",", " world", "!", "  It's", " half-done", " (really)", "."});
  CHECK(pieces("我爱你。OK", granularity::word) == strings{"我", "爱", "你", "。", "OK"});
  // Words across 8-byte blocks: control characters and DEL stay inside a word,
  // U+00A0 and tabs separate, a non-ASCII letter does not.
  CHECK(pieces("abcdefgh\x01ijklmnopq\x7Frs tuvwxyz\xC3\xA9" "12345678\xC2\xA0" "end\tlast abcdefghijklmnop.",
               granularity::word) == strings{"abcdefgh\x01ijklmnopq\x7Frs", " tuvwxyz\xC3\xA9" "12345678",
                                             "\xC2\xA0" "end", "\tlast", " abcdefghijklmnop", "."});
  CHECK(pieces("  lead\n", granularity::word) == strings{"  lead", "\n"});
  CHECK(pieces("The old man of the sea went to the boat, slowly.", granularity::phrase) ==
        strings{"The old man", " of the sea went", " to the boat", ",", " slowly", "."});
  CHECK(pieces("Mr. Smith came. He left! Then e.g. this? Yes.\n\nNew para 3.5 here.", granularity::sentence) ==
        strings{"Mr. Smith came.", " He left!", " Then e.g. this?", " Yes.", "\n\nNew para 3.5 here."});
  CHECK(pieces("你好。世界！", granularity::sentence) == strings{"你好。", "世界！"});
  CHECK(pieces("Intro\n- item one\n- item two", granularity::sentence) ==
        strings{"Intro", "\n- item one", "\n- item two"});
  CHECK(segment("", granularity::word).empty());
  require_error([] { (void)unit_starts("x", granularity::token); }, errc::invalid_argument,
                {"prompt::unit_starts", "level must be word, phrase, sentence or line, got token"});
  CHECK(pieces("def f():\n    return 1\n", granularity::line) == strings{"def f():", "\n    return 1", "\n"});
}

TEST_CASE("select: hand-checked budgets, ties, prefixes and thresholds", "[prompt][select]") {
  const std::string text = "the cat sat on mat";
  const std::vector<token> tokens = gpt2().encode(text);
  REQUIRE(tokens.size() == 5);  // one token per word
  selection_options o;
  o.structure = plain();
  o.level = granularity::token;
  o.budget.target_tokens = 2;
  std::vector<float> s = {0.1f, 0.9f, 0.3f, 0.8f, 0.2f};
  result r = select(text, tokens, s, o);
  CHECK(r.text == " cat on");
  CHECK(r.compressed_tokens == 2);
  CHECK(r.origin_tokens == 5);
  CHECK(r.ratio == 2.5);
  CHECK(r.rate == 0.4);
  CHECK(r.tokens[1].kept);
  CHECK_FALSE(r.tokens[0].kept);
  CHECK(r.tokens[3].score == 0.8f);
  // Ties break toward the earlier token.
  s = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  CHECK(select(text, tokens, s, o).text == "the cat");
  // The same order past the sizes ranked by radix sort: 9000 one-token units with
  // scores 1, -2 and 0.5 in turn keep every 1, then the 0.5s from the first on,
  // then of two 0.3s (tokens 1 and 4) the earlier.
  {
    std::string many;
    for (int i = 0; i < 9000; ++i) many += i ? " a" : "a";
    const std::vector<token> mt = gpt2().encode(many);
    REQUIRE(mt.size() == 9000);
    std::vector<float> ms(9000);
    for (std::size_t i = 0; i < ms.size(); ++i) ms[i] = i % 3 == 0 ? 1.0f : i % 3 == 1 ? -2.0f : 0.5f;
    ms[1] = ms[4] = 0.3f;
    selection_options mo = o;
    for (const std::int64_t halves : {1000, 3001}) {
      mo.budget.target_tokens = 3000 + halves;
      const result mr = select(many, mt, ms, mo);
      for (std::size_t i = 0; i < ms.size(); ++i) {
        INFO("token " << i << " of a budget with " << halves << " after the 1s");
        REQUIRE(mr.tokens[i].kept == (i % 3 == 0 || (i % 3 == 2 && std::int64_t(i / 3) < halves) || (i == 1 && halves > 3000)));
      }
    }
  }
  // Thresholds keep exactly the units above them.
  o.threshold = 0.25f;
  s = {0.1f, 0.9f, 0.3f, 0.8f, 0.2f};
  r = select(text, tokens, s, o);
  CHECK(r.text == " cat sat on");
  CHECK(r.target_tokens == 3);
  o.threshold.reset();
  // rate 0.5 of 5 tokens rounds to 3 (half away from zero).
  o.budget = {0.5, {}};
  CHECK(select(text, tokens, s, o).compressed_tokens == 3);
  // Word units fill the budget with whole words first, then a prefix of the best
  // word that did not fit: "alpha" (1 token) and the first token of " xyzzyq".
  const std::string words = "alpha xyzzyq";
  const std::vector<token> wt = gpt2().encode(words);
  REQUIRE(wt.size() >= 3);
  o.level = granularity::word;
  o.budget.target_tokens = 2;
  std::vector<float> ws(wt.size(), 0.9f);
  ws[0] = 0.2f;
  r = select(words, wt, ws, o);
  CHECK(r.compressed_tokens == 2);
  CHECK(r.text == words.substr(0, wt[1].end));
}

TEST_CASE("select: forced digits and force strings", "[prompt][select]") {
  const std::string text = "We paid 1200 dollars? Yes, twice.";
  const std::vector<token> tokens = gpt2().encode(text);
  std::vector<float> s(tokens.size(), 0.0f);
  selection_options o;
  o.structure = plain();
  o.structure.force_strings = {"?"};
  o.force_digits = true;
  o.budget.target_tokens = 1;
  const result r = select(text, tokens, s, o);
  CHECK(r.text.find("1200") != std::string::npos);
  CHECK(r.text.find('?') != std::string::npos);
  for (const scored_token& t : r.tokens)
    if (text.substr(t.begin, t.end - t.begin).find_first_of("0123456789?") != std::string::npos) CHECK(t.forced);
}

TEST_CASE("llmlingua2: drop_consecutive drops a force token repeating the last kept one", "[prompt][select]") {
  const std::string text = "Wow ! ! ! great ! end";
  const std::vector<token> tokens = gpt2().encode(text);
  REQUIRE(tokens.size() == 7);  // "Wow", " !" x3, " great", " !", " end"
  const std::int32_t great = tokens[4].id;
  const keep_scorer_fn keep([&](std::span<const std::int32_t> ids) {
    std::vector<float> p;
    for (const std::int32_t id : ids) p.push_back(id == great ? 0.9f : 0.1f);
    return p;
  });
  llmlingua2_options o;
  o.force_tokens = {"!"};
  o.structure = plain();
  o.threshold = 0.5f;
  CHECK(llmlingua2(text, gpt2(), keep, o).text == " ! ! ! great !");
  o.drop_consecutive = true;
  // The second and third " !" repeat the first with nothing kept between; the last
  // follows " great".
  const result r = llmlingua2(text, gpt2(), keep, o);
  CHECK(r.text == " ! great !");
  CHECK(r.compressed_tokens == 3);
  CHECK(r.tokens[1].kept);
  CHECK((r.tokens[2].forced && !r.tokens[2].kept && !r.tokens[3].kept));
  check_spans(text, r);
  // With a budget the repeats are found on the selection (the four " !" alone meet
  // 4 tokens, so the last one repeats too), and the tokens they free go to the best
  // words left: " great", then the earliest of the ties.
  o.threshold.reset();
  o.budget = {1.0, 4};
  const result b = llmlingua2(text, gpt2(), keep, o);
  CHECK(b.text == "Wow ! great end");
  CHECK(b.compressed_tokens == 4);
  o.drop_consecutive = false;
  CHECK(llmlingua2(text, gpt2(), keep, o).text == " ! ! ! !");
}

TEST_CASE("rate adherence is exact over many lengths and targets", "[prompt][select]") {
  const needle_fixture unused;
  surprisal_keep_scorer keep(moby_lm(), 200);
  int runs = 0;
  for (const std::size_t bytes : {20, 75, 300, 900, 2500, 7000, 16000}) {
    const std::string text = moby_excerpt(bytes, 37);
    const std::int64_t n = std::int64_t(gpt2().encode(text).size());
    std::vector<budget> budgets = {{0.1, {}}, {0.25, {}}, {0.33, {}}, {0.5, {}}, {0.75, {}}, {0.9, {}}, {1.0, {}},
                                   {0.5, 1}, {0.5, 3}, {0.5, std::max<std::int64_t>(n - 1, 1)}};
    for (const budget& b : budgets) {
      const std::int64_t target = b.target_tokens ? std::min(*b.target_tokens, n) : std::llround(b.rate * double(n));
      INFO(bytes << " bytes (" << n << " tokens), target " << target);
      const result sc = selective_context(text, gpt2(), moby_lm(), sc_options(b, granularity::word, plain()));
      CHECK(std::llabs(sc.compressed_tokens - target) <= 1);
      CHECK(sc.compressed_tokens == gpt2().count(sc.text));
      CHECK(sc.target_tokens == target);
      check_spans(text, sc);
      const result sp = selective_context(text, gpt2(), moby_lm(), sc_options(b, granularity::phrase, plain()));
      CHECK(std::llabs(sp.compressed_tokens - target) <= 1);
      llmlingua2_options lo;
      lo.budget = b;
      lo.force_tokens = {};
      lo.structure = plain();
      const result l2 = llmlingua2(text, gpt2(), keep, lo);
      CHECK(std::llabs(l2.compressed_tokens - target) <= 1);
      CHECK(l2.compressed_tokens == gpt2().count(l2.text));
      check_spans(text, l2);
      runs += 3;
    }
  }
  CHECK(runs == 210);
}

TEST_CASE("output stays valid UTF-8 on CJK and emoji", "[prompt][select]") {
  const std::string text =
      "机器学习是人工智能的一个分支。它使计算机能够从数据中学习，而无需明确编程。🚀🔥 深度学习使用神经网络！"
      "日本語のテキストも含まれています。😀👍🏽 Emoji 👨‍👩‍👧 family, café, naïve. 한국어 문장도 있습니다.";
  const std::vector<token> tokens = gpt2().encode(text);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0, 1);
  for (const granularity g : {granularity::token, granularity::word, granularity::phrase}) {
    for (const double rate : {0.1, 0.3, 0.5, 0.7}) {
      for (int trial = 0; trial < 10; ++trial) {
        std::vector<float> s(tokens.size());
        for (float& v : s) v = u(rng);
        selection_options o;
        o.level = g;
        o.budget = {rate, {}};
        const result r = select(text, tokens, s, o, &gpt2());
        INFO("rate " << rate << " trial " << trial << ": " << r.text);
        check_spans(text, r);
        CHECK(std::llabs(r.compressed_tokens - r.target_tokens) <= 1);
      }
    }
  }
  // A method end to end on the same text.
  const result sc = selective_context(text, gpt2(), moby_lm(), sc_options({0.4, {}}, granularity::token));
  check_spans(text, sc);
}

TEST_CASE("JSON input stays parseable and keeps its keys", "[prompt][select]") {
  const std::string text = R"({
  "messages": [
    {"role": "system", "content": "You are a careful assistant who answers questions about whaling ships and their crews."},
    {"role": "user", "content": "Call me Ishmael. Some years ago\u2014never mind how long precisely\u2014having little or no money in my purse, I thought I would sail about.\nHe said \"hello\" and left. 😀 \ud83d\ude80 tab\there."}
  ],
  "temperature": 0.7,
  "tags": ["sea stories", "classic literature and adventure novels"],
  "n": 3
})";
  const nlohmann::json before = nlohmann::json::parse(text);
  for (const double rate : {0.2, 0.5, 0.8}) {
    const result r = selective_context(text, gpt2(), moby_lm(), sc_options({rate, {}}, granularity::word));
    INFO(r.text);
    check_spans(text, r);
    nlohmann::json after;
    REQUIRE_NOTHROW(after = nlohmann::json::parse(r.text));
    CHECK(after["messages"].size() == 2);
    CHECK(after["temperature"] == 0.7);
    CHECK(after["n"] == 3);
    CHECK(after["tags"].size() == 2);
    CHECK(r.compressed_tokens < r.origin_tokens);
  }
  // Chat files: only "content" values are compressed, roles survive.
  structure_options chat;
  chat.mode = structure::json;
  chat.json_keys = {"content"};
  llmlingua2_options lo;
  lo.budget = {0.3, {}};
  lo.structure = chat;
  const result r = llmlingua2(text, gpt2(), surprisal_keep_scorer(moby_lm()), lo);
  const nlohmann::json after = nlohmann::json::parse(r.text);
  CHECK(after["messages"][0]["role"] == "system");
  CHECK(after["messages"][1]["role"] == "user");
  CHECK(after["tags"] == before["tags"]);
  CHECK(after["messages"][1]["content"].get<std::string>().size() < before["messages"][1]["content"].get<std::string>().size());
}

TEST_CASE("Markdown structure survives compression", "[prompt][select]") {
  const std::string text =
      "# Whaling notes\n\n"
      "Some years ago, never mind how long precisely, having little or no money in my purse, "
      "I thought I would sail about a little and see the watery part of the world.\n\n"
      "## Ships\n\n"
      "- The **Pequod** sailed from [Nantucket](https://en.wikipedia.org/wiki/Nantucket) with a crew of thirty.\n"
      "- Captain Ahab commanded her, a grand, ungodly, god-like man with `ivory` leg.\n\n"
      "```python\ndef harpoon(whale):\n    return whale.strike()\n```\n\n"
      "| ship | captain |\n|---|---|\n| Pequod | Ahab |\n\n"
      "User: what did the whale do?\nAssistant: It swam away from the boats and dove deep.\n";
  const result r = selective_context(text, gpt2(), moby_lm(), sc_options({0.3, {}}, granularity::word));
  INFO(r.text);
  check_spans(text, r);
  for (const char* must : {"# ", "\n\n## ", "\n\n- ", "\n- ", "**", "](https://en.wikipedia.org/wiki/Nantucket)",
                           "```python\ndef harpoon(whale):\n    return whale.strike()\n```\n\n", "|---|---|\n",
                           "User:", "\nAssistant:"})
    CHECK(r.text.find(must) != std::string::npos);
  CHECK(r.compressed_tokens < r.origin_tokens);
}

TEST_CASE("every single-text method keeps a planted needle at 5x", "[prompt][select]") {
  const needle_fixture f;
  REQUIRE(f.needle_ids.size() == 8);
  REQUIRE(f.question_ids.size() >= 3);
  const needle_lm lm(f);
  const needle_keep keep(f);
  for (const std::size_t at : {0, 2000, 5500}) {
    const std::string text = f.plant(moby_excerpt(6000), at);
    const budget five_x{0.2, {}};
    const result sc = selective_context(text, gpt2(), lm, sc_options(five_x, granularity::phrase, {}));
    CHECK(f.kept_in(sc.text));
    CHECK(sc.ratio > 4.8);
    const result st = selective_context(text, gpt2(), lm, sc_options(five_x, granularity::token, {}));
    CHECK(f.kept_in(st.text));
    llmlingua2_options lo;
    lo.budget = five_x;
    const result l2 = llmlingua2(text, gpt2(), keep, lo);
    CHECK(f.kept_in(l2.text));
    CHECK(l2.ratio > 4.5);
    const result ex = extractive(text, f.question, gpt2(), ex_options(five_x));
    CHECK(f.kept_in(ex.text));
    CHECK(ex.compressed_tokens <= ex.target_tokens);
  }
}

TEST_CASE("extractive keeps whole sentences in order, by BM25 or embeddings", "[prompt][select]") {
  const std::string text = "Cats purr softly. Dogs bark loudly at night. The moon is bright. Cats and dogs sleep.";
  const result r = extractive(text, "dogs at night", gpt2(), ex_options({0.4, {}}));
  CHECK(r.text == " Dogs bark loudly at night.");
  // An embedder that measures the count of the letter 'o': the sentences with most.
  class vowel_embedder final : public embedder {
   public:
    std::vector<float> embed(std::string_view t) const override {
      float o = 0;
      for (const char c : t) o += c == 'o';
      return {o, 1.0f};
    }
  };
  const vowel_embedder e;
  const result re = extractive(text, "ooooo", gpt2(), ex_options({0.4, {}}), &e);
  CHECK(re.text == " Dogs bark loudly at night.");
  CHECK(extractive(text, "", gpt2(), ex_options({0.3, {}})).text == "Cats purr softly.");
}

TEST_CASE("bad input gives clear errors or documented results", "[prompt][select][errors]") {
  const std::string text = moby_excerpt(400);
  SECTION("empty text: an empty result") {
    const result r = selective_context("", gpt2(), moby_lm());
    CHECK(r.text.empty());
    CHECK(r.origin_tokens == 0);
    CHECK(r.ratio == 1.0);
    CHECK(llmlingua2("", gpt2(), surprisal_keep_scorer(moby_lm())).text.empty());
    CHECK(extractive("", "q", gpt2()).text.empty());
    CHECK(select("", {}, {}, {}).text.empty());
  }
  SECTION("invalid UTF-8") {
    require_error([] { (void)selective_context("ok \xE4\xB8 broken", gpt2(), moby_lm()); }, errc::invalid_argument,
                  {"prompt::selective_context", "text is not valid UTF-8 at byte 3"});
    require_error([] { (void)extractive("fine", "\xFF", gpt2()); }, errc::invalid_argument,
                  {"prompt::extractive", "question is not valid UTF-8 at byte 0"});
  }
  SECTION("targets") {
    require_error([&] { (void)selective_context(text, gpt2(), moby_lm(), sc_options({0.0, {}})); }, errc::invalid_argument,
                  {"rate must be in (0, 1], got 0"});
    require_error([&] { (void)selective_context(text, gpt2(), moby_lm(), sc_options({1.5, {}})); }, errc::invalid_argument,
                  {"rate must be in (0, 1], got 1.5"});
    require_error([&] { (void)selective_context(text, gpt2(), moby_lm(), sc_options({std::nan(""), {}})); },
                  errc::invalid_argument, {"rate must be in (0, 1]"});
    require_error([&] { (void)selective_context(text, gpt2(), moby_lm(), sc_options({0.5, 0})); }, errc::invalid_argument,
                  {"target_tokens must be > 0, got 0"});
    require_error([&] { (void)llmlingua2(text, gpt2(), surprisal_keep_scorer(moby_lm()), l2_options({0.5, -3})); },
                  errc::invalid_argument, {"prompt::llmlingua2", "target_tokens must be > 0, got -3"});
    // Above the input: everything is kept.
    const result all = selective_context(text, gpt2(), moby_lm(), sc_options({0.5, 1000000}, granularity::word, plain()));
    CHECK(all.text == text);
    CHECK(all.target_tokens == all.origin_tokens);
  }
  SECTION("scorers that misbehave") {
    const lm_scorer_fn short_lm([](auto, std::span<const std::int32_t> t) { return std::vector<float>(t.size() - 1, -1.0f); });
    require_error([&] { (void)selective_context(text, gpt2(), short_lm); }, errc::invalid_argument,
                  {"prompt::selective_context", "the scorer returned", "log-probabilities for"});
    const lm_scorer_fn nan_lm([](auto, std::span<const std::int32_t> t) {
      std::vector<float> v(t.size(), -1.0f);
      v.back() = std::numeric_limits<float>::quiet_NaN();
      return v;
    });
    require_error([&] { (void)selective_context(text, gpt2(), nan_lm); }, errc::invalid_argument,
                  {"the scorer returned NaN as the log-probability of token"});
    const lm_scorer_fn inf_lm([](auto, std::span<const std::int32_t> t) { return std::vector<float>(t.size(), INFINITY); });
    require_error([&] { (void)selective_context(text, gpt2(), inf_lm); }, errc::invalid_argument, {"+inf"});
    // Slightly positive log-probabilities (fp16 rounding) read as 0; -inf is allowed.
    const lm_scorer_fn pos_lm([](auto, std::span<const std::int32_t> t) {
      std::vector<float> v(t.size(), 1e-4f);
      v[0] = -INFINITY;
      return v;
    });
    const result r = selective_context(text, gpt2(), pos_lm, sc_options({0.5, {}}, granularity::token, plain()));
    CHECK(r.tokens[0].score == INFINITY);
    CHECK(r.tokens[1].score == 0.0f);
    const keep_scorer_fn bad_keep([](std::span<const std::int32_t> t) { return std::vector<float>(t.size(), 1.5f); });
    require_error([&] { (void)llmlingua2(text, gpt2(), bad_keep); }, errc::invalid_argument,
                  {"prompt::llmlingua2", "keep-probabilities must be in [0, 1]"});
    const keep_scorer_fn long_keep([](std::span<const std::int32_t> t) { return std::vector<float>(t.size() + 2, 0.5f); });
    require_error([&] { (void)llmlingua2(text, gpt2(), long_keep); }, errc::invalid_argument,
                  {"the keep scorer returned", "probabilities for"});
    const keep_scorer_fn no_window([](std::span<const std::int32_t> t) { return std::vector<float>(t.size(), 0.5f); }, 0);
    require_error([&] { (void)llmlingua2(text, gpt2(), no_window); }, errc::invalid_argument,
                  {"max_tokens() must be > 0, got 0"});
    class bad_embedder final : public embedder {
     public:
      std::vector<float> embed(std::string_view t) const override {
        return t.size() > 20 ? std::vector<float>{1, 2, 3} : std::vector<float>{1, 2};
      }
    };
    const bad_embedder be;
    require_error([&] { (void)extractive(text, "short q", gpt2(), {}, &be); }, errc::invalid_argument,
                  {"the embedder returned a vector of length 3, expected 2"});
  }
  SECTION("select arguments") {
    const std::vector<token> tokens = gpt2().encode(text);
    require_error([&] { (void)select(text, tokens, std::vector<float>(3), {}); }, errc::invalid_argument,
                  {"prompt::select", "scores must hold one value per token"});
    std::vector<float> s(tokens.size(), 0.0f);
    s[2] = std::nanf("");
    require_error([&] { (void)select(text, tokens, s, {}); }, errc::invalid_argument, {"score 2 is NaN"});
    std::vector<token> overlapping = tokens;
    overlapping[3].begin = overlapping[2].begin;
    require_error([&] { (void)select(text, overlapping, std::vector<float>(tokens.size()), {}); },
                  errc::invalid_argument, {"token 3 at bytes", "overlaps the token before it"});
  }
  SECTION("structure") {
    structure_options json;
    json.mode = structure::json;
    require_error([&] { (void)selective_context("{\"a\": [1, 2", gpt2(), moby_lm(), sc_options({0.5, {}}, granularity::word, json)); },
                  errc::invalid_argument, {"the text is not valid JSON at byte 11"});
    structure_options beyond;
    beyond.protect = {{5, 50000}};
    require_error([&] { (void)selective_context(text, gpt2(), moby_lm(), sc_options({0.5, {}}, granularity::word, beyond)); },
                  errc::invalid_argument, {"prompt::selective_context", "protect range [5, 50000) must lie within the prompt"});
    require_error([&] { (void)analyze_structure(text, beyond); }, errc::invalid_argument,
                  {"prompt::analyze_structure", "protect range [5, 50000) must lie within the text"});
  }
}

TEST_CASE("analyze_structure protects the right bytes", "[prompt][select]") {
  auto protected_text = [](std::string_view text, const structure_options& o) {
    std::string out;
    for (const text_range& r : analyze_structure(text, o).protect) {
      out.push_back('[');
      out.append(text.substr(r.begin, r.end - r.begin));
      out.push_back(']');
    }
    return out;
  };
  structure_options md;
  CHECK(protected_text("# Title here\nSee [docs](http://x.y/z) and `code` now.", md) ==
        "[# ][\n][[][](http://x.y/z)][`code`]");
  // Bare URLs less trailing punctuation; words starting with h or w are no URLs.
  CHECK(protected_text("Whales: see https://a.b/c, http://d.e and www.f.org. Who wha hw ww. h", md) ==
        "[https://a.b/c][http://d.e][www.f.org]");
  CHECK(protected_text("<|im_start|>user\nHi there<|im_end|>", md) == "[<|im_start|>user\n][<|im_end|>]");
  CHECK(protected_text("a | b\nc", md) == "");  // a pipe alone is no table
  CHECK(protected_text("| a | b |\n|---|---|\n| c | d |", md) == "[|][|][|\n|---|---|\n|][|][|]");
  structure_options js;
  CHECK(protected_text(R"({"k": "v a\nb", "n": [1, "x"]})", js) == R"([{"k": "][", "n": [1, "]["]}])");
  const structure_plan p = analyze_structure(R"({"k": "v a\nb"})", js);
  CHECK(p.mode == structure::json);
  CHECK(p.protect == std::vector<text_range>{{0, 7}, {13, 15}});
  CHECK(p.unbreakable == std::vector<text_range>{{10, 12}});
  CHECK(analyze_structure("{not json", js).mode == structure::markdown);  // detect falls back
}

TEST_CASE("engine tokenizers with gaps and zero-width tokens work", "[prompt][select]") {
  // Words only (spaces belong to no token), ids from the word's length, and a
  // zero-width start-of-text token as some engines emit.
  class word_tokenizer final : public tokenizer {
   public:
    std::vector<token> encode(std::string_view text) const override {
      std::vector<token> out = {{1, 0, 0}};
      for (std::size_t p = 0; p < text.size();) {
        const std::size_t b = text.find_first_not_of(' ', p);
        if (b == std::string_view::npos) break;
        std::size_t e = text.find(' ', b);
        if (e == std::string_view::npos) e = text.size();
        out.push_back({std::int32_t(2 + (e - b) % 50), b, e});
        p = e;
      }
      return out;
    }
    std::string decode(std::span<const std::int32_t>) const override { return {}; }
    std::int64_t vocab_size() const override { return 100; }
  };
  const word_tokenizer words;
  const std::string text = "  the quick brown fox jumps over the lazy dog and runs far away";
  const lm_scorer_fn lm([](auto, std::span<const std::int32_t> t) {
    std::vector<float> v;
    for (const std::int32_t id : t) v.push_back(-float(id));  // longer words are more surprising
    return v;
  });
  for (const std::int64_t target : {3, 6, 9}) {
    const result r = selective_context(text, words, lm, sc_options({0.5, target}, granularity::token, plain()));
    INFO(r.text);
    check_spans(text, r);
    CHECK(std::llabs(r.compressed_tokens - target) <= 1);
    CHECK(r.text.find("quick") != std::string::npos);  // among the longest words
  }
}
