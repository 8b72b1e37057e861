// LLMLingua, LongLLMLingua and LongCodeZip-style code compression: exact budgets
// with instruction and question intact, the coarse filter, reordering, dynamic
// ratios, the knapsack against brute force, chunking, the planted needle and
// bad input.
#include <catch2/catch.hpp>

#include <cinch/prompt/code.hpp>
#include <cinch/prompt/llmlingua.hpp>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "test_prompt_common.hpp"

using namespace cinch::prompt;
using cinch::errc;

namespace {

// Five chapters' openings as contexts.
std::vector<std::string> moby_contexts(std::size_t bytes) {
  std::vector<std::string> out;
  for (const char* chapter : {"CHAPTER 10.", "CHAPTER 20.", "CHAPTER 30.", "CHAPTER 40.", "CHAPTER 50."}) {
    const std::size_t at = moby_dick().find(chapter);
    std::size_t end = std::min(moby_dick().size(), at + bytes);
    while (!is_char_boundary(moby_dick(), end)) --end;
    out.push_back(moby_dick().substr(at, end - at));
  }
  return out;
}

prompt_parts parts_of(const std::vector<std::string>& contexts, std::string_view instruction, std::string_view question) {
  prompt_parts p{instruction, {}, question};
  for (const std::string& c : contexts) p.contexts.push_back(c);
  return p;
}

void check_result(const prompt_parts& parts, const result& r) {
  const std::string original = assemble(parts);
  REQUIRE(is_valid_utf8(r.text));
  for (const kept_span& s : r.spans) REQUIRE(r.text.substr(s.out, s.end - s.begin) == original.substr(s.begin, s.end - s.begin));
  CHECK(r.compressed_tokens == gpt2().count(r.text));
  CHECK(r.origin_tokens == gpt2().count(original));
  if (!parts.instruction.empty()) CHECK(r.text.rfind(std::string(parts.instruction) + "\n\n", 0) == 0);
  if (!parts.question.empty()) CHECK(r.text.ends_with("\n\n" + std::string(parts.question)));
}

llmlingua_options ll(budget b) {
  llmlingua_options o;
  o.budget = b;
  return o;
}

code_options co(budget b, double beta = 0.5) {
  code_options o;
  o.budget = b;
  o.importance_beta = beta;
  return o;
}

longllmlingua_options lll(budget b, rank_method rank = rank_method::lm) {
  longllmlingua_options o;
  o.budget = b;
  o.rank = rank;
  return o;
}

// Synthetic Python: n small functions, one of them holding the needle.
std::string python_module(int n, const needle_fixture* f, int needle_at) {
  std::string code = "import os\nimport sys\n";
  for (int i = 0; i < n; ++i) {
    code += "\n\ndef step_" + std::to_string(i) + "(ship, crew):\n";
    code += "    total = len(crew) + " + std::to_string(i) + "\n";
    code += "    for sailor in crew:\n";
    code += "        total += sailor.rank * " + std::to_string(i % 7 + 1) + "\n";
    if (f && i == needle_at) code += "    note = \"" + f->needle + "\"\n";
    code += "    ship.log(total)\n";
    code += "    return total\n";
  }
  return code;
}

}  // namespace

TEST_CASE("assemble joins the non-empty parts with blank lines", "[prompt][llmlingua]") {
  CHECK(assemble({"Do X.", {"a", "", "b"}, "Why?"}) == "Do X.\n\na\n\nb\n\nWhy?");
  CHECK(assemble({"", {"a"}, ""}) == "a");
  CHECK(assemble({}).empty());
}

TEST_CASE("llmlingua meets the target exactly and keeps instruction and question", "[prompt][llmlingua]") {
  for (const std::size_t bytes : {300, 1500, 4000}) {
    const std::vector<std::string> contexts = moby_contexts(bytes);
    const prompt_parts parts = parts_of(contexts, "Answer using the passages below.", "Who commands the Pequod?");
    for (const double rate : {0.15, 0.3, 0.5, 0.8}) {
      for (const bool filter : {true, false}) {
        llmlingua_options o = ll({rate, {}});
        o.context_filter = filter;
        const result r = llmlingua(parts, gpt2(), moby_lm(), o);
        INFO(bytes << " bytes, rate " << rate << ", filter " << filter);
        check_result(parts, r);
        CHECK(std::llabs(r.compressed_tokens - r.target_tokens) <= 1);
      }
    }
  }
  // An explicit target, and word units.
  const std::vector<std::string> contexts = moby_contexts(2000);
  const prompt_parts parts = parts_of(contexts, "Read.", "What happens?");
  llmlingua_options o = ll({0.5, 333});
  o.level = granularity::word;
  const result r = llmlingua(parts, gpt2(), moby_lm(), o);
  check_result(parts, r);
  CHECK(std::llabs(r.compressed_tokens - 333) <= 1);
}

TEST_CASE("llmlingua compresses the last segment too and filters contexts coarsely", "[prompt][llmlingua]") {
  const std::string context = moby_excerpt(9000);
  const prompt_parts one{"", {context}, ""};
  const result r = llmlingua(one, gpt2(), moby_lm(), ll({0.3, {}}));
  std::int64_t last_total = 0, last_kept = 0;  // the final 200 tokens
  for (std::size_t t = r.tokens.size() - 200; t < r.tokens.size(); ++t) last_total++, last_kept += r.tokens[t].kept;
  CHECK(last_kept < last_total * 6 / 10);
  CHECK(last_kept > 0);
  // With a low rate and the coarse filter, whole contexts go and the rest keep their order.
  const std::vector<std::string> contexts = moby_contexts(1500);
  const prompt_parts parts = parts_of(contexts, "", "");
  const result c = llmlingua(parts, gpt2(), moby_lm(), ll({0.1, {}}));
  int present = 0;
  std::size_t last_out = 0;
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    const std::size_t begin = assemble({"", {contexts.begin(), contexts.begin() + std::ptrdiff_t(i)}, ""}).size() + (i ? 2 : 0);
    bool seen = false;
    for (const kept_span& s : c.spans)
      if (s.begin >= begin && s.begin < begin + contexts[i].size()) {
        CHECK(s.out >= last_out);
        last_out = s.out, seen = true;
      }
    present += seen;
  }
  CHECK(present < 5);
  CHECK(present >= 1);
}

TEST_CASE("longllmlingua: ranking, reordering and dynamic ratios", "[prompt][llmlingua]") {
  const needle_fixture f;
  std::vector<std::string> contexts = moby_contexts(1200);
  contexts[3] = f.plant(contexts[3], 300);
  const prompt_parts parts = parts_of(contexts, "Use the documents.", f.question);
  const needle_lm lm(f);
  for (const rank_method rank : {rank_method::lm, rank_method::bm25}) {
    const result r = longllmlingua(parts, gpt2(), lm, lll({0.3, {}}, rank));
    INFO("rank " << int(rank));
    check_result(parts, r);
    CHECK(std::llabs(r.compressed_tokens - r.target_tokens) <= 1);
    // The relevant document comes first (sort) and keeps the needle.
    CHECK(f.kept_in(r.text));
    REQUIRE_FALSE(r.spans.empty());
    const std::string original = assemble(parts);
    const std::size_t doc3 = original.find(contexts[3]);
    bool first_is_doc3 = false;
    for (const kept_span& s : r.spans)
      if (s.begin >= original.find(contexts[0])) {
        first_is_doc3 = s.begin >= doc3 && s.begin < doc3 + contexts[3].size();
        break;
      }
    CHECK(first_is_doc3);
  }
  // Original order keeps the input order of the kept documents.
  longllmlingua_options o = lll({0.3, {}}, rank_method::bm25);
  o.order = context_order::original;
  const result r = longllmlingua(parts, gpt2(), lm, o);
  for (std::size_t i = 1; i < r.spans.size(); ++i) CHECK(r.spans[i].begin > r.spans[i - 1].begin);
  // Dynamic ratio: the most relevant kept document keeps the largest share.
  o.order = context_order::sort;
  o.context_budget_extra = 100000;  // keep every document, to compare their shares
  o.dynamic_ratio = 0.4;
  const result d = longllmlingua(parts, gpt2(), lm, o);
  std::vector<double> share(contexts.size(), 0.0);
  const std::string original = assemble(parts);
  for (const scored_token& t : d.tokens)
    for (std::size_t i = 0; i < contexts.size(); ++i) {
      const std::size_t b = original.find(contexts[i]);
      if (t.begin >= b && t.begin < b + contexts[i].size()) share[i] += t.kept ? 1.0 : 0.0;
    }
  for (std::size_t i = 0; i < contexts.size(); ++i) share[i] /= double(gpt2().count(contexts[i]));
  for (std::size_t i = 0; i < contexts.size(); ++i)
    if (i != 3) CHECK(share[3] > share[i]);
}

TEST_CASE("llmlingua and longllmlingua keep a planted needle at 5x", "[prompt][llmlingua]") {
  const needle_fixture f;
  const needle_lm lm(f);
  for (const std::size_t which : {0, 2, 4}) {
    std::vector<std::string> contexts = moby_contexts(2500);
    contexts[which] = f.plant(contexts[which], 1200);
    const prompt_parts parts = parts_of(contexts, "Answer briefly.", f.question);
    const result a = llmlingua(parts, gpt2(), lm, ll({0.2, {}}));
    CHECK(f.kept_in(a.text));
    CHECK(a.ratio > 4.8);
    const result b = longllmlingua(parts, gpt2(), lm, lll({0.2, {}}));
    CHECK(f.kept_in(b.text));
    CHECK(b.ratio > 4.8);
    const result c = longllmlingua(parts, gpt2(), lm, lll({0.2, {}}, rank_method::bm25));
    CHECK(f.kept_in(c.text));
  }
}

TEST_CASE("llmlingua's sentence filter drops the least surprising sentences whole", "[prompt][llmlingua]") {
  // Losses by token ("." 1 everywhere): sentences 0 and 2 surprising throughout;
  // sentence 1 dull but for one very surprising token; sentence 3 dull.
  const std::vector<std::string> sentences = {"Whales swim deep.", " Calm seas rest quietly.", " Birds fly low.",
                                              " Rain falls now."};
  const std::vector<std::vector<float>> word_loss = {{12, 12, 12, 12}, {1, 1, 1, 20}, {9, 9, 9}, {2, 2, 2}};
  std::map<std::int32_t, float> loss;
  std::string text;
  std::vector<std::pair<std::size_t, std::size_t>> bytes;  // each sentence's bytes in text
  std::vector<std::int64_t> tokens;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    const auto t = gpt2().encode(sentences[i]);
    REQUIRE(t.size() == word_loss[i].size() + 1);  // its words, then "."
    for (std::size_t k = 0; k + 1 < t.size(); ++k) loss[t[k].id] = word_loss[i][k];
    bytes.emplace_back(text.size(), text.size() + sentences[i].size());
    tokens.push_back(std::int64_t(t.size()));
    text += sentences[i];
  }
  REQUIRE(gpt2().count(text) == 18);
  const lm_scorer_fn lm([&](auto, std::span<const std::int32_t> ids) {
    std::vector<float> out;
    for (const std::int32_t id : ids) out.push_back(loss.count(id) ? -loss[id] : -1.0f);
    return out;
  });
  const prompt_parts parts{"", {text}, ""};
  auto kept_in = [&](const result& r, std::size_t s) {
    std::int64_t n = 0;
    for (const scored_token& t : r.tokens) n += t.kept && t.begin >= bytes[s].first && t.end <= bytes[s].second;
    return n;
  };
  llmlingua_options o = ll({1.0, 8});
  o.sentence_filter = true;
  o.token_budget_ratio = 1.0;
  // Ranked by mean loss: 0 (49 / 5 = 9.8), 2 (28 / 4 = 7), 1 (24 / 5 = 4.8), 3 (7 / 4).
  // A budget of 8 tokens keeps sentence 0 (5 tokens, below 8) and sentence 2 (crossing
  // it, 9 tokens); the fine step then drops one token of those.
  const result r = llmlingua(parts, gpt2(), lm, o);
  check_result(parts, r);
  CHECK(r.compressed_tokens == 8);
  CHECK(kept_in(r, 1) == 0);
  CHECK(kept_in(r, 3) == 0);
  CHECK(kept_in(r, 0) + kept_in(r, 2) == 8);
  CHECK(r.tokens[std::size_t(tokens[0] + tokens[1] + tokens[2])].score == 2.0f);  // a dropped sentence's loss
  // Without the filter the fine step keeps sentence 1's surprising token.
  o.sentence_filter = false;
  CHECK(kept_in(llmlingua(parts, gpt2(), lm, o), 1) == 1);
  // A sentence budget of one token keeps sentence 0 only: the target is an upper bound then.
  o = ll({1.0, 8});
  o.sentence_filter = true;
  o.token_budget_ratio = 1.0 / 8;
  const result only0 = llmlingua(parts, gpt2(), lm, o);
  CHECK(only0.text == sentences[0]);
  CHECK(only0.compressed_tokens == tokens[0]);
  // The last sentences of a context are kept whatever their loss, first against the budget.
  o.keep_last_sentences = 1;
  const result last = llmlingua(parts, gpt2(), lm, o);
  CHECK(last.text == sentences[3]);
  o.keep_last_sentences = 2;
  CHECK(llmlingua(parts, gpt2(), lm, o).text == sentences[2] + sentences[3]);
  o.keep_last_sentences = 0;
  o.keep_first_sentences = 1;
  CHECK(llmlingua(parts, gpt2(), lm, o).text == sentences[0]);
  o.keep_first_sentences = -1;
  require_error([&] { (void)llmlingua(parts, gpt2(), lm, o); }, cinch::errc::invalid_argument,
                {"prompt::llmlingua", "keep_first_sentences and keep_last_sentences must be >= 0, got -1 and 0"});
  o.keep_first_sentences = 0;
  // A generous sentence budget drops nothing: the same result as without the filter.
  o.token_budget_ratio = 10;
  const result all = llmlingua(parts, gpt2(), lm, o);
  o.sentence_filter = false;
  CHECK(all.text == llmlingua(parts, gpt2(), lm, o).text);
}

TEST_CASE("knapsack: exact matches brute force, greedy beyond the limits", "[prompt][code]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + int(rng() % 12);
    std::vector<std::int64_t> w(static_cast<std::size_t>(n));
    std::vector<double> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) w[std::size_t(i)] = std::int64_t(rng() % 20), v[std::size_t(i)] = double(rng() % 100) - 10;
    const std::int64_t cap = std::int64_t(rng() % 60);
    double best = 0;
    for (unsigned mask = 0; mask < (1u << n); ++mask) {
      std::int64_t tw = 0;
      double tv = 0;
      for (int i = 0; i < n; ++i)
        if (mask >> i & 1) tw += w[std::size_t(i)], tv += v[std::size_t(i)];
      if (tw <= cap) best = std::max(best, tv);
    }
    const std::vector<bool> take = knapsack(w, v, cap);
    std::int64_t tw = 0;
    double tv = 0;
    for (std::size_t i = 0; i < std::size_t(n); ++i) {
      if (!take[i]) continue;
      tw += w[i], tv += v[i];
      CHECK(v[i] > 0);
    }
    CHECK(tw <= cap);
    CHECK(tv == best);
  }
  // Greedy by value per weight when the instance is over the exact limits.
  const std::vector<std::int64_t> w = {10, 4, 6};
  const std::vector<double> v = {10, 8, 9};
  CHECK(knapsack(w, v, 10, 2, 2000) == std::vector<bool>{false, true, true});
  CHECK(knapsack(w, v, 10) == std::vector<bool>{false, true, true});
  CHECK(knapsack(w, v, -1) == std::vector<bool>{false, false, false});
  require_error([] { (void)knapsack(std::vector<std::int64_t>{1}, std::vector<double>{1, 2}, 5); }, errc::invalid_argument,
                {"prompt::knapsack", "one entry per item, got 1 and 2"});
  require_error([] { (void)knapsack(std::vector<std::int64_t>{-1}, std::vector<double>{1}, 5); }, errc::invalid_argument,
                {"item 0 has a negative weight"});
}

TEST_CASE("code_chunks splits at top-level definitions", "[prompt][code]") {
  auto chunks = [](std::string_view code) {
    std::vector<std::string> out;
    for (const text_range& r : code_chunks(code)) out.emplace_back(code.substr(r.begin, r.end - r.begin));
    return out;
  };
  using strings = std::vector<std::string>;
  CHECK(chunks("import os\n\ndef f():\n    return 1\n\n@cache\ndef g():\n    x = {\n\n}\n    return x\nclass C:\n    pass\n") ==
        strings{"import os\n", "\ndef f():\n    return 1\n", "\n@cache\ndef g():\n    x = {\n\n}\n    return x",
                "\nclass C:\n    pass\n"});
  CHECK(chunks("#include <x>\nint f() {\n  if (a) {\n\n  }\n  return 0;\n}\nint g() { return 1; }\n") ==
        strings{"#include <x>\nint f() {\n  if (a) {\n\n  }\n  return 0;\n}", "\nint g() { return 1; }\n"});
  CHECK(code_chunks("").empty());
}

TEST_CASE("compress_code keeps relevant functions and blocks within the budget", "[prompt][code]") {
  const needle_fixture f;
  const needle_lm lm(f);
  const std::string code = python_module(30, &f, 17);
  for (const double rate : {0.2, 0.35, 0.6}) {
    const result r = compress_code(code, f.question, gpt2(), lm, co({rate, {}}));
    INFO("rate " << rate << "\n" << r.text);
    CHECK(r.compressed_tokens <= r.target_tokens);
    CHECK(r.compressed_tokens >= r.target_tokens * 8 / 10);
    CHECK(f.kept_in(r.text));
    CHECK(r.text.find("def step_17(ship, crew):") != std::string::npos);  // its signature
    CHECK(r.compressed_tokens == gpt2().count(r.text));
    for (const kept_span& s : r.spans) CHECK(r.text.substr(s.out, s.end - s.begin) == code.substr(s.begin, s.end - s.begin));
  }
  // The n-gram scorer end to end.
  const result r = compress_code(code, "sum the ranks of the crew", gpt2(), moby_lm());
  CHECK(r.compressed_tokens <= r.target_tokens);
  CHECK(r.compressed_tokens > 0);
}

TEST_CASE("llmlingua family: bad input", "[prompt][llmlingua][errors]") {
  const prompt_parts parts{"Do.", {"Some context here.", "More context."}, "Why?"};
  require_error([&] { (void)longllmlingua({"x", {"a"}, ""}, gpt2(), moby_lm()); }, errc::invalid_argument,
                {"prompt::longllmlingua", "question must not be empty"});
  llmlingua_options o;
  o.iterative_size = 0;
  require_error([&] { (void)llmlingua(parts, gpt2(), moby_lm(), o); }, errc::invalid_argument,
                {"prompt::llmlingua", "iterative_size must be >= 1, got 0"});
  o = {};
  o.context_budget_scale = 0;
  require_error([&] { (void)llmlingua(parts, gpt2(), moby_lm(), o); }, errc::invalid_argument,
                {"context_budget_scale must be finite and > 0"});
  o = {};
  o.token_budget_ratio = NAN;
  require_error([&] { (void)llmlingua(parts, gpt2(), moby_lm(), o); }, errc::invalid_argument,
                {"prompt::llmlingua", "token_budget_ratio must be finite and > 0"});
  longllmlingua_options lo;
  lo.dynamic_ratio = 2;
  require_error([&] { (void)longllmlingua(parts, gpt2(), moby_lm(), lo); }, errc::invalid_argument,
                {"dynamic_ratio must be in [0, 1], got 2"});
  require_error([&] { (void)llmlingua({"ok", {"bad \xC3"}, "q"}, gpt2(), moby_lm()); }, errc::invalid_argument,
                {"prompt::llmlingua", "a context is not valid UTF-8 at byte 4"});
  require_error([&] { (void)llmlingua(parts, gpt2(), moby_lm(), ll({0, {}})); }, errc::invalid_argument,
                {"rate must be in (0, 1], got 0"});
  const lm_scorer_fn nan_lm([](auto, std::span<const std::int32_t> t) { return std::vector<float>(t.size(), NAN); });
  require_error([&] { (void)llmlingua(parts, gpt2(), nan_lm); }, errc::invalid_argument, {"prompt::llmlingua", "NaN"});
  require_error([&] { (void)compress_code("def f():\n    pass\n", "", gpt2(), moby_lm()); }, errc::invalid_argument,
                {"prompt::compress_code", "query must not be empty"});
  require_error([&] { (void)compress_code("x = 1\n", "q", gpt2(), moby_lm(), co({0.5, {}}, -1)); },
                errc::invalid_argument, {"importance_beta must be in [0, 1], got -1"});
  // Empty prompts and empty contexts are fine.
  const result e = llmlingua({}, gpt2(), moby_lm());
  CHECK(e.text.empty());
  CHECK(e.origin_tokens == 0);
  const result only_q = llmlingua({"", {"", ""}, "Why?"}, gpt2(), moby_lm());
  CHECK(only_q.text == "Why?");
  CHECK(compress_code("", "q", gpt2(), moby_lm()).text.empty());
}
