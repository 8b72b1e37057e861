// The GPT-2 byte-level BPE tokenizer: ids against an independent reference
// (scripts/gpt2_reference_ids.py: the `regex` module's run of GPT-2's pattern and the
// textbook merge loop; "Hello world" -> [15496, 995] is GPT-2's well-known example),
// offsets, round trips, pre-tokenizer pieces, corrupt vocabularies and UTF-8 helpers.
#include <catch2/catch.hpp>

#include <cinch/prompt/bpe.hpp>
#include <cinch/prompt/unicode.hpp>
#include <cinch/prompt/utf8.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "error_matchers.hpp"
#include "test_prompt_common.hpp"

using namespace cinch::prompt;
using cinch::errc;

namespace {

struct id_case {
  const char* text;
  std::vector<std::int32_t> ids;
};

// Output of scripts/gpt2_reference_ids.py.
const std::vector<id_case> reference_ids = {
    {"Hello world", {15496, 995}},
    {"Hello, world!", {15496, 11, 995, 0}},
    {"The quick brown fox jumps over the lazy dog.", {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13}},
    {"I'm sure you've heard they'll say it's what we'd do, don't you?", {40, 1101, 1654, 345, 1053, 2982, 484, 1183, 910, 340, 338, 644, 356, 1549, 466, 11, 836, 470, 345, 30}},
    {"'s 't 're 've 'm 'll 'd 'S 'RE", {338, 705, 83, 705, 260, 705, 303, 705, 76, 705, 297, 705, 67, 705, 50, 705, 2200}},
    {"a  b   c    d", {64, 220, 275, 220, 220, 269, 220, 220, 220, 288}},
    {"trailing spaces   ", {9535, 4386, 9029, 220, 220, 220}},
    {"   leading spaces", {220, 220, 3756, 9029}},
    {"line one\nline two\n\n\nline four\r\n", {1370, 530, 198, 1370, 734, 628, 198, 1370, 1440, 201, 198}},
    {"tabs\tand\t\tmore", {8658, 82, 197, 392, 197, 197, 3549}},
    {"\n\n\n", {628, 198}},
    {"numbers 1234567 and 3.14159, -42, 1e10", {77, 17024, 17031, 2231, 3134, 290, 513, 13, 1415, 19707, 11, 532, 3682, 11, 352, 68, 940}},
    {"punctuation!!! ... ??? --- (parens) [brackets] {braces}", {79, 16260, 2288, 10185, 2644, 34913, 11420, 357, 11730, 82, 8, 685, 1671, 25180, 60, 1391, 1671, 2114, 92}},
    {"café naïve résumé über", {66, 1878, 2634, 41492, 40560, 16345, 2634, 6184, 120, 527}},
    {"你好，世界！这是一个测试。", {19526, 254, 25001, 121, 171, 120, 234, 10310, 244, 45911, 234, 171, 120, 223, 32573, 247, 42468, 31660, 10310, 103, 38184, 233, 46237, 243, 16764}},
    {"日本語のテキスト", {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}},
    {"emoji 😀🚀 and flags 🇺🇸", {368, 31370, 30325, 222, 8582, 248, 222, 290, 9701, 12520, 229, 118, 8582, 229, 116}},
    {"Здравствуй, мир", {140, 245, 43666, 21169, 16142, 38857, 21727, 20375, 38857, 35072, 140, 117, 11, 12466, 120, 18849, 21169}},
    {"مرحبا بالعالم", {25405, 26897, 148, 255, 39848, 12919, 17550, 101, 23525, 44690, 23525, 25405}},
    {"non\u00A0breaking\u3000ideographic space", {13159, 1849, 13395, 5099, 222, 485, 6826, 2272}},
    {"def f(x):\n    return x ** 2  # square\n", {4299, 277, 7, 87, 2599, 198, 220, 220, 220, 1441, 2124, 12429, 362, 220, 1303, 6616, 198}},
    {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}},
    {"superlongwordthatneedsmanymerges antidisestablishmentarianism", {16668, 6511, 4775, 5562, 50032, 21834, 647, 3212, 1885, 29207, 44390, 3699, 1042}},
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", {24223, 24223, 24223, 24223, 24223}},
    {"—em dash— and “quotes”", {960, 368, 14470, 960, 290, 564, 250, 421, 6421, 447, 251}},
};

std::uint64_t fnv1a64(const std::vector<std::int32_t>& ids) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (const std::int32_t id : ids)
    for (int i = 0; i < 4; ++i) h = (h ^ ((std::uint32_t(id) >> (8 * i)) & 0xFF)) * 0x100000001B3ull;
  return h;
}

// Tokens tile the text: contiguous, in order, each one's bytes those of its id.
void check_offsets(const bpe_tokenizer& tok, std::string_view text, const std::vector<token>& tokens) {
  std::size_t pos = 0;
  for (const token& t : tokens) {
    REQUIRE(t.begin == pos);
    REQUIRE(text.substr(t.begin, t.end - t.begin) == tok.token_bytes(t.id));
    pos = t.end;
  }
  REQUIRE(pos == text.size());
}

}  // namespace

TEST_CASE("bpe reproduces GPT-2 ids on Unicode, whitespace runs and contractions", "[prompt][bpe]") {
  const bpe_tokenizer& tok = gpt2();
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.merges().size() == 50000);
  CHECK(tok.eos_id() == 50256);
  for (const id_case& c : reference_ids) {
    INFO("text: " << c.text);
    const std::vector<token> tokens = tok.encode(c.text);
    CHECK(ids_of(tokens) == c.ids);
    check_offsets(tok, c.text, tokens);
    CHECK(tok.decode(c.ids) == c.text);
    CHECK(tok.count(c.text) == std::int64_t(c.ids.size()));
  }
}

TEST_CASE("bpe matches the reference on all of Moby-Dick", "[prompt][bpe]") {
  const std::vector<token> tokens = gpt2().encode(moby_dick());
  CHECK(tokens.size() == 317756);  // scripts/gpt2_reference_ids.py
  CHECK(fnv1a64(ids_of(tokens)) == 0x869E01DE69469109ull);
  check_offsets(gpt2(), moby_dick(), tokens);
  // A second pass runs from the piece cache and must agree.
  CHECK(ids_of(gpt2().encode(moby_dick())) == ids_of(tokens));
}

TEST_CASE("bpe pre-tokenizer pieces follow GPT-2's pattern", "[prompt][bpe]") {
  using pieces = std::vector<std::string>;
  auto split = [](std::string_view s) {
    pieces out;
    for (auto [b, e] : bpe_tokenizer::pre_tokenize(s)) out.emplace_back(s.substr(b, e - b));
    return out;
  };
  // \s+(?!\S) leaves the last space of a run to the word after it; a lone space
  // before punctuation joins it; contractions split before letters.
  CHECK(split("a  b") == pieces{"a", " ", " b"});
  CHECK(split("x \n y") == pieces{"x", " \n", " y"});
  CHECK(split("end  ") == pieces{"end", "  "});
  CHECK(split("\n\nword") == pieces{"\n", "\n", "word"});
  CHECK(split("don't") == pieces{"don", "'t"});
  CHECK(split("'tis") == pieces{"'t", "is"});
  CHECK(split("DON'T") == pieces{"DON", "'", "T"});  // case-sensitive
  CHECK(split("ab12cd") == pieces{"ab", "12", "cd"});
  CHECK(split(" ... !") == pieces{" ...", " !"});
  CHECK(split("x\u00A0y") == pieces{"x", "\u00A0", "y"});  // only U+0020 joins a word
  CHECK(split("٣٤ ½") == pieces{"٣٤", " ½"});            // Arabic-Indic digits and No are \p{N}
  // Invalid bytes are single `other` characters: tokenization never fails.
  const std::string bad = "a\xFF\xFE b";
  CHECK(split(bad) == pieces{"a", "\xFF\xFE", " b"});
  const std::vector<token> t = gpt2().encode(bad);
  check_offsets(gpt2(), bad, t);
}

TEST_CASE("bpe refuses corrupt vocabularies", "[prompt][bpe][errors]") {
  std::string bytes_json = "{";
  // A minimal valid vocabulary: the 256 byte tokens (in GPT-2's alphabet) and "ab".
  std::vector<std::string> alphabet;
  for (int b = 0, next = 256; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    std::string s;
    append_utf8(s, printable ? char32_t(b) : char32_t(next++));
    alphabet.push_back(s);
  }
  for (int b = 0; b < 256; ++b) {
    std::string key = alphabet[std::size_t(b)];
    if (key == "\"" || key == "\\") key = "\\" + key;
    bytes_json += "\"" + key + "\": " + std::to_string(b) + ", ";
  }
  const std::string good_json = bytes_json + "\"ab\": 256}";
  const bpe_tokenizer tiny = bpe_tokenizer::from_strings(good_json, "#version: 0.2\na b\n");
  CHECK(ids_of(tiny.encode("abab a")) == std::vector<std::int32_t>{256, 256, ' ', 'a'});  // byte b has id b here
  CHECK(tiny.eos_id() == -1);

  require_error([&] { (void)bpe_tokenizer::from_strings("{\"a\": 0", "a b"); }, errc::corrupt_data,
                {"prompt::bpe_tokenizer", "encoder.json is not valid JSON at byte 7"});
  require_error([&] { (void)bpe_tokenizer::from_strings("[1, 2]", ""); }, errc::corrupt_data,
                {"encoder.json must be a non-empty object"});
  require_error([&] { (void)bpe_tokenizer::from_strings(bytes_json + "\"ab\": 300}", ""); }, errc::corrupt_data,
                {"the id of 'ab' must be an integer in [0, 257)"});
  require_error([&] { (void)bpe_tokenizer::from_strings(bytes_json + "\"ab\": 5}", ""); }, errc::corrupt_data,
                {"id 5 is used twice"});
  require_error([&] { (void)bpe_tokenizer::from_strings("{\"a\": 0}", ""); }, errc::corrupt_data,
                {"encoder.json has no token for byte 0"});
  require_error([&] { (void)bpe_tokenizer::from_strings(bytes_json + "\"a\\u0001\": 256}", ""); }, errc::corrupt_data,
                {"has a character outside the byte alphabet"});
  require_error([&] { (void)bpe_tokenizer::from_strings(good_json, "#version: 0.2\na b c\n"); }, errc::corrupt_data,
                {"vocab.bpe line 2 must be two tokens split by one space, got 'a b c'"});
  require_error([&] { (void)bpe_tokenizer::from_strings(good_json, "#version: 0.2\nb a\n"); }, errc::corrupt_data,
                {"vocab.bpe line 2 merges 'b a', but a part or the result is not in encoder.json"});
  require_error([&] { (void)bpe_tokenizer::load("/nonexistent/encoder.json", "/nonexistent/vocab.bpe"); },
                errc::invalid_argument, {"prompt::bpe_tokenizer::load", "cannot open '/nonexistent/encoder.json'"});
  require_error([&] { (void)gpt2().token_bytes(50257); }, errc::invalid_argument,
                {"prompt::bpe_tokenizer::token_bytes", "id must be in [0, 50257), got 50257"});
  CHECK(gpt2().id_of(" the") == 262);
  CHECK(gpt2().id_of("not a token at all") == -1);
}

TEST_CASE("utf8 helpers decode, validate and find boundaries per RFC 3629", "[prompt][utf8]") {
  char32_t cp = 0;
  CHECK(decode_utf8("A", 0, cp) == 1);
  CHECK(cp == U'A');
  CHECK(decode_utf8("é", 0, cp) == 2);
  CHECK(cp == U'é');
  CHECK(decode_utf8("世", 0, cp) == 3);
  CHECK(cp == U'世');
  CHECK(decode_utf8("😀", 0, cp) == 4);
  CHECK(cp == U'😀');
  CHECK(decode_utf8("\xC0\xAF", 0, cp) == 0);          // overlong '/'
  CHECK(decode_utf8("\xE0\x80\xAF", 0, cp) == 0);      // overlong
  CHECK(decode_utf8("\xED\xA0\x80", 0, cp) == 0);      // surrogate U+D800
  CHECK(decode_utf8("\xF4\x90\x80\x80", 0, cp) == 0);  // above U+10FFFF
  CHECK(decode_utf8("\xE4\xB8", 0, cp) == 0);          // truncated
  CHECK(decode_utf8("\x80", 0, cp) == 0);              // lone continuation
  CHECK(find_invalid_utf8("ok 世界") == std::string_view::npos);
  CHECK(find_invalid_utf8("ok \xE4\xB8") == 3);
  static_assert(find_invalid_utf8("ok \xE4\xB8") == 3);  // usable at compile time too
  // ASCII runs are skipped in blocks of eight: whatever follows one is still checked exactly.
  for (std::size_t run = 0; run < 20; ++run) {
    const std::string a(run, 'a');
    CHECK(find_invalid_utf8(a + "\xFF" + std::string(10, 'b')) == run);
    CHECK(find_invalid_utf8(a + "\x80" + "\xE4\xB8\x96") == run);
    CHECK(find_invalid_utf8(a + "\xE4\xB8\x96" + std::string(9, 'c') + "\xC3") == run + 12);
    CHECK(find_invalid_utf8(a + "\xE4\xB8\x96" + std::string(9, 'c') + "\xC3\xA9") == std::string_view::npos);
  }
  const std::string_view s = "a世";
  CHECK(is_char_boundary(s, 0));
  CHECK(is_char_boundary(s, 1));
  CHECK_FALSE(is_char_boundary(s, 2));
  CHECK_FALSE(is_char_boundary(s, 3));
  CHECK(is_char_boundary(s, 4));
  std::string out;
  for (char32_t c : {U'a', U'é', U'世', U'😀'}) append_utf8(out, c);
  CHECK(out == "aé世😀");
}

TEST_CASE("unicode classes follow the general categories and White_Space", "[prompt][utf8]") {
  CHECK(classify(U'a') == char_class::letter);
  CHECK(classify(U'Ж') == char_class::letter);
  CHECK(classify(U'世') == char_class::letter);  // Lo
  CHECK(classify(U'ʰ') == char_class::letter);   // Lm
  CHECK(classify(U'7') == char_class::number);
  CHECK(classify(U'½') == char_class::number);   // No
  CHECK(classify(U'Ⅻ') == char_class::number);   // Nl
  CHECK(classify(U'٣') == char_class::number);   // Nd
  CHECK(classify(U' ') == char_class::space);
  CHECK(classify(U'\u3000') == char_class::space);
  CHECK(classify(U'\u0085') == char_class::space);
  CHECK(classify(U'\u200B') == char_class::other);  // zero-width space is not White_Space
  CHECK(classify(U'\u001C') == char_class::other);  // nor are the information separators
  CHECK(classify(U'!') == char_class::other);
  CHECK(classify(U'😀') == char_class::other);
  CHECK(classify(U'\u0301') == char_class::other);  // combining marks (Mn) are neither
  CHECK(classify(char32_t(0x110000)) == char_class::other);
  CHECK(is_unspaced_script(U'世'));
  CHECK(is_unspaced_script(U'テ'));
  CHECK_FALSE(is_unspaced_script(U'a'));
  CHECK(unicode_version() == "14.0.0");
}
