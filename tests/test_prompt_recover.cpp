// recover(): fragments of a compressed prompt quoted in an answer are mapped back
// to whole original words through the kept spans; and the dispatcher's method
// switches.
#include <catch2/catch.hpp>

#include <cinch/prompt/compress.hpp>
#include <cinch/prompt/llmlingua.hpp>
#include <cinch/prompt/recover.hpp>

#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "test_prompt_common.hpp"

using namespace cinch::prompt;
using cinch::errc;

namespace {

// A result by hand: the original's byte ranges copied one after another, with
// `inserted` text placed before the span of the same index when non-empty.
result by_hand(std::string_view original, std::vector<std::pair<std::size_t, std::size_t>> ranges,
               std::vector<std::string> inserted = {}) {
  result r;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (i < inserted.size()) r.text += inserted[i];
    r.spans.push_back({ranges[i].first, ranges[i].second, r.text.size()});
    r.text += original.substr(ranges[i].first, ranges[i].second - ranges[i].first);
  }
  return r;
}

}  // namespace

TEST_CASE("recover: truncated words come back whole", "[prompt][recover]") {
  //                             0123456789012345678901234567890123456
  const std::string_view original = "The Fuel Dilution test failed twice.";
  // "uel" of Fuel, " Dil" of Dilution, " failed": the compressed text is "uel Dil failed".
  const result r = by_hand(original, {{5, 8}, {8, 12}, {22, 29}});
  REQUIRE(r.text == "uel Dil failed");
  // "The" is not in the compressed text and stays; "uel Dil" maps to [5, 12) and
  // widens to "Fuel Dilution"; "failed." does not occur (no period there): "failed"
  // alone would, but words are matched whole.
  CHECK(recover(original, r, "The  uel Dil\tfailed.") == "The Fuel Dilution failed.");
  CHECK(recover(original, r, "uel Dil failed") == "Fuel Dilution test failed");
  CHECK(recover(original, r, "") == "");
  CHECK(recover(original, r, "   ") == "");
  // A match that starts or ends on a non-word byte is not widened on that side.
  const std::string_view quoted = "say (Fuel) now";
  const result q = by_hand(quoted, {{4, 7}, {9, 10}});
  REQUIRE(q.text == "(Fu)");
  CHECK(recover(quoted, q, "(Fu)") == "(Fuel)");
}

TEST_CASE("recover: far-apart pieces and inserted bytes are left alone", "[prompt][recover]") {
  const std::string original = "alpha " + std::string(100, 'x') + " omega";
  const result r = by_hand(original, {{0, 6}, {107, 112}});
  REQUIRE(r.text == "alpha omega");
  CHECK(recover(original, r, "alpha omega") == "alpha omega");  // 101 dropped bytes > max_gap 64
  CHECK(recover(original, r, "alpha omega", {.max_gap = 101}) == original);
  CHECK(recover(original, r, "alpha omega", {.max_gap = 100}) == "alpha omega");
  // A space was inserted between two pieces: a match across it keeps the answer's words.
  const std::string_view two = "first part. second part.";
  const result s = by_hand(two, {{0, 10}, {12, 18}}, {"", " "});
  REQUIRE(s.text == "first part second");
  CHECK(recover(two, s, "part second") == "part second");
  CHECK(recover(two, s, "sec") == "second");
  // Pieces out of their original order (reordered contexts) are not joined.
  const std::string_view swapped = "one two";
  const result t = by_hand(swapped, {{4, 7}, {3, 4}, {0, 3}});
  REQUIRE(t.text == "two one");
  CHECK(recover(swapped, t, "two one") == "two one");
  CHECK(recover(swapped, t, "tw") == "two");
}

TEST_CASE("recover: answers quoting a real compression map into the original", "[prompt][recover]") {
  const std::string text = moby_excerpt(3000);
  request req;
  req.contexts = {text};
  req.budget = budget{0.4, {}};
  const result r = compress(req, gpt2(), moby_lm());
  // Quote every run of three consecutive words of the compressed text.
  std::vector<std::string> words;
  for (std::size_t i = 0; i < r.text.size();) {
    while (i < r.text.size() && std::string_view(" \n\t\r").find(r.text[i]) != std::string_view::npos) ++i;
    const std::size_t b = i;
    while (i < r.text.size() && std::string_view(" \n\t\r").find(r.text[i]) == std::string_view::npos) ++i;
    if (i > b) words.push_back(r.text.substr(b, i - b));
  }
  REQUIRE(words.size() > 100);
  int restored = 0;
  for (std::size_t w = 0; w + 3 <= words.size(); ++w) {
    const std::string answer = words[w] + " " + words[w + 1] + " " + words[w + 2];
    if (r.text.find(answer) == std::string::npos) continue;  // not separated by single spaces
    const std::string back = recover(text, r, answer);
    INFO(answer << " -> " << back);
    // Either left as it is or one piece of the original.
    if (back == answer) continue;
    CHECK(text.find(back) != std::string::npos);
    CHECK(back.size() > answer.size());
    ++restored;
  }
  CHECK(restored > 10);
}

TEST_CASE("recover: spans that do not belong to the texts are rejected", "[prompt][recover]") {
  const std::string_view original = "short text";
  result r = by_hand(original, {{0, 5}});
  r.spans[0].end = 50;
  require_error([&] { (void)recover(original, r, "short"); }, errc::invalid_argument,
                {"prompt::recover", "span 0 must lie in the original's 10 bytes", "got [0, 50)"});
  r = by_hand(original, {{0, 5}, {6, 10}});
  r.spans[1].out = 2;
  require_error([&] { (void)recover(original, r, "short"); }, errc::invalid_argument,
                {"prompt::recover", "span 1 must follow the previous one", "got output offset 2"});
}

TEST_CASE("compress: method switches reach their methods and nowhere else", "[prompt][compress]") {
  const std::string a = moby_excerpt(4000);
  request r;
  r.contexts = {a};
  r.budget = budget{0.3, {}};
  r.method = method::llmlingua;
  const result plain = compress(r, gpt2(), moby_lm());
  r.sentence_filter = true;
  const result filtered = compress(r, gpt2(), moby_lm());
  // The same as calling llmlingua with the filter on, and it changes the choice.
  llmlingua_options o;
  o.budget = *r.budget;
  o.sentence_filter = true;
  CHECK(filtered.text == llmlingua({{}, {a}, {}}, gpt2(), moby_lm(), o).text);
  CHECK(filtered.text != plain.text);
  CHECK(std::llabs(filtered.compressed_tokens - filtered.target_tokens) <= 1);
  r.method = method::extractive;
  require_error([&] { (void)compress(r, gpt2(), moby_lm()); }, errc::invalid_argument,
                {"prompt::compress", "sentence_filter applies to method llmlingua", "got extractive"});
  r.sentence_filter = false;
  r.drop_consecutive = true;
  require_error([&] { (void)compress(r, gpt2(), moby_lm()); }, errc::invalid_argument,
                {"prompt::compress", "drop_consecutive applies to method llmlingua2", "got extractive"});
  r.method = method::llmlingua2;
  const result dropped = compress(r, gpt2(), moby_lm());
  CHECK(std::llabs(dropped.compressed_tokens - dropped.target_tokens) <= 1);
}
