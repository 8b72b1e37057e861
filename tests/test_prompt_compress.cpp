// The dispatcher (method names, presets, instruction and question kept) and chat
// files (parsing, malformed files, compressing contents in place).
#include <catch2/catch.hpp>

#include <cinch/prompt/chat.hpp>
#include <cinch/prompt/compress.hpp>
#include <cinch/prompt/llmlingua.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "test_prompt_common.hpp"

using namespace cinch::prompt;
using cinch::errc;

TEST_CASE("compress: method names round-trip", "[prompt][compress]") {
  for (const method m : {method::selective_context, method::llmlingua, method::longllmlingua, method::llmlingua2,
                         method::extractive, method::code})
    CHECK(parse_method(to_string(m)) == m);
  CHECK(parse_method("selective_context") == method::selective_context);
  require_error([] { (void)parse_method("lingua"); }, errc::invalid_argument,
                {"prompt::parse_method", "method must be one of selective-context", "got 'lingua'"});
}

TEST_CASE("compress: every method keeps instruction and question and meets its preset", "[prompt][compress]") {
  const std::string a = moby_excerpt(2500), b = moby_excerpt(2500, 4000);
  request r;
  r.instruction = "Summarise the passages.";
  r.contexts = {a, b};
  r.question = "What did Ishmael see?";
  const std::string original = assemble({r.instruction, r.contexts, r.question});
  for (const method m : {method::selective_context, method::llmlingua, method::longllmlingua, method::llmlingua2,
                         method::extractive, method::code}) {
    r.method = m;
    const result out = compress(r, gpt2(), moby_lm());
    INFO(to_string(m) << ": " << out.compressed_tokens << " of " << out.origin_tokens << ", target " << out.target_tokens);
    CHECK(out.text.rfind("Summarise the passages.", 0) == 0);
    CHECK(out.text.ends_with("What did Ishmael see?"));
    CHECK(out.origin_tokens == gpt2().count(original));
    for (const kept_span& s : out.spans)
      CHECK(out.text.substr(s.out, s.end - s.begin) == original.substr(s.begin, s.end - s.begin));
    const double preset = m == method::llmlingua ? 0.5 : m == method::longllmlingua ? 0.55 : m == method::llmlingua2 ? 0.33
                          : m == method::selective_context ? 0.65 : 0.5;
    CHECK(out.target_tokens == std::llround(preset * double(out.origin_tokens)));
    if (m == method::extractive || m == method::code) CHECK(out.compressed_tokens <= out.target_tokens);
    else CHECK(std::llabs(out.compressed_tokens - out.target_tokens) <= 1);
  }
  r.method = method::llmlingua2;
  r.budget = budget{0.5, 100};
  CHECK(std::llabs(compress(r, gpt2(), moby_lm()).compressed_tokens - 100) <= 1);
}

TEST_CASE("chat files: parsed, validated and compressed in place", "[prompt][compress]") {
  const std::string chat = R"({"model": "x", "messages": [
    {"role": "system", "content": "You are a helpful assistant that knows everything about whaling, ships, sailors and the sea."},
    {"role": "user", "content": "Call me Ishmael. Some years ago\u2014never mind how long precisely\u2014having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little."},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]},
    {"role": "user", "content": "What did he decide to do?"}
  ]})";
  const std::vector<chat_message> m = parse_chat(chat);
  REQUIRE(m.size() == 4);
  CHECK(m[0].role == "system");
  CHECK(m[1].content.find("ago—never") != std::string::npos);  // unescaped
  CHECK(m[2].content.empty());
  CHECK(chat.substr(m[3].content_range.begin, m[3].content_range.end - m[3].content_range.begin) ==
        "What did he decide to do?");
  CHECK(parse_chat(R"([{"role": "user", "content": "hi"}])").size() == 1);
  // Every JSON value kind in extra fields; escapes and surrogate pairs unescaped.
  const std::vector<chat_message> x = parse_chat(
      R"( [ {"role":"user","content":"a\"b\\c\/\u00e9\ud83d\ude00\n\t","n":-1.5e3,"z":0,"ok":true,"no":false,"v":null,"arr":[[],{}]} ] )");
  CHECK(x.at(0).content == "a\"b\\c/é😀\n\t");

  request r;
  r.method = method::llmlingua2;
  r.contexts = {chat};
  r.structure = chat_structure(chat, 1);
  r.budget = budget{0.6, {}};
  const result out = compress(r, gpt2(), moby_lm());
  INFO(out.text);
  const nlohmann::json before = nlohmann::json::parse(chat), after = nlohmann::json::parse(out.text);
  CHECK(after["model"] == "x");
  REQUIRE(after["messages"].size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(after["messages"][i]["role"] == before["messages"][i]["role"]);
  CHECK(after["messages"][3]["content"] == "What did he decide to do?");  // the last turn stays
  CHECK(after["messages"][2]["tool_calls"] == before["messages"][2]["tool_calls"]);
  CHECK(after["messages"][1]["content"].get<std::string>().size() < before["messages"][1]["content"].get<std::string>().size());
  CHECK(parse_chat(out.text).size() == 4);
}

TEST_CASE("chat files: malformed ones are corrupt_data naming the problem", "[prompt][compress][errors]") {
  require_error([] { (void)parse_chat(R"([{"role": "user", "content": "hi"})"); }, errc::corrupt_data,
                {"prompt::parse_chat", "the chat file is not valid JSON at byte"});
  require_error([] { (void)parse_chat(R"({"model": "x"})"); }, errc::corrupt_data, {"without a \"messages\" array"});
  require_error([] { (void)parse_chat(R"("hello")"); }, errc::corrupt_data, {"must be an array of messages"});
  require_error([] { (void)parse_chat(R"([{"role": "user", "content": "a"}, 3])"); }, errc::corrupt_data,
                {"message 1 is not an object"});
  require_error([] { (void)parse_chat(R"([{"content": "a"}])"); }, errc::corrupt_data, {"message 0 has no string \"role\""});
  require_error([] { (void)parse_chat(R"([{"role": 1, "content": "a"}])"); }, errc::corrupt_data, {"message 0 has no string"});
  require_error([] { (void)parse_chat(R"([{"role": "user", "content": 5}])"); }, errc::corrupt_data,
                {"message 0 has no \"content\" string (or null)"});
  require_error([] { (void)parse_chat(R"([{"role": "user", "content": "bad \x"}])"); }, errc::corrupt_data, {"unknown escape"});
  require_error([] { (void)parse_chat("[tru]"); }, errc::corrupt_data, {"at byte 1: expected a value"});
  require_error([] { (void)parse_chat("[1.]"); }, errc::corrupt_data, {"expected digits after '.'"});
  require_error([] { (void)parse_chat("[01]"); }, errc::corrupt_data, {"expected ',' or ']' in an array"});
  require_error([] { (void)parse_chat("[\"\\ud800\"]"); }, errc::corrupt_data, {"unpaired surrogate"});
  require_error([] { (void)parse_chat("[\"a\nb\"]"); }, errc::corrupt_data, {"control character in a string"});
  require_error([] { (void)parse_chat("[\"\xC3\"]"); }, errc::corrupt_data, {"invalid UTF-8 in a string"});
  require_error([] { (void)parse_chat("[] x"); }, errc::corrupt_data, {"unexpected data after the value"});
  require_error([] { (void)parse_chat("{\"messages\": [1,]}"); }, errc::corrupt_data, {"expected a value"});
  require_error([] { (void)parse_chat(std::string(300, '[') + std::string(300, ']')); }, errc::corrupt_data,
                {"nesting deeper than 256 levels"});
  require_error([] { (void)chat_structure("[]", -1); }, errc::invalid_argument, {"keep_last must be >= 0, got -1"});
  CHECK(chat_structure("[]", 3).protect.empty());
}
