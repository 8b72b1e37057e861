// cinch prompt: compress a text (or JSON) file to a rate or a token count with
// one method and the built-in scorer (GPT-2 BPE + a Kneser-Ney trigram model).
//
//   cinch prompt context.txt --method llmlingua --rate 0.4
//   cinch prompt context.txt --method longllmlingua --question "Who is Ahab?" --tokens 300 --explain
#include <cinch/cinch.hpp>
#include <cinch/prompt/builtin.hpp>
#include <cinch/prompt/compress.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "commands.hpp"

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

namespace cinch::cli {
namespace {

struct prompt_options {
  std::string input, method = "llmlingua2", question, instruction, data_dir = CINCH_DATA_DIR;
  double rate = 0;
  std::int64_t tokens = 0;
  bool explain = false, sentence_filter = false, drop_consecutive = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail(errc::invalid_argument, "cinch prompt", "cannot open ", path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The original text with every dropped run shown as [-...-].
std::string explain(const std::string& text, const prompt::result& r) {
  std::string out;
  std::size_t at = 0;
  bool dropping = false;
  for (const prompt::scored_token& t : r.tokens) {
    if (t.kept == dropping) {  // a change between kept and dropped
      out.append(text, at, t.begin - at);
      at = t.begin;
      out += dropping ? "-]" : "[-";
      dropping = !dropping;
    }
  }
  out.append(text, at, text.size() - at);
  if (dropping) out += "-]";
  return out;
}

void run_prompt(const prompt_options& o) {
  const std::string text = read_file(o.input);
  const auto start = std::chrono::steady_clock::now();
  const prompt::builtin_models models = prompt::load_builtin(o.data_dir);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  prompt::request r;
  r.method = prompt::parse_method(o.method);
  r.contexts = {text};
  r.question = o.question;
  r.instruction = o.instruction;
  r.sentence_filter = o.sentence_filter;
  r.drop_consecutive = o.drop_consecutive;
  if (o.rate > 0 || o.tokens > 0) {
    prompt::budget b;
    if (o.rate > 0) b.rate = o.rate;
    if (o.tokens > 0) b.target_tokens = o.tokens;
    r.budget = b;
  }
  const prompt::surprisal_keep_scorer keep(models.lm);
  const auto t0 = std::chrono::steady_clock::now();
  const prompt::result out = prompt::compress(r, models.tokenizer, models.lm, &keep);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::fputs(o.explain ? explain(text, out).c_str() : out.text.c_str(), stdout);
  std::fprintf(stderr,
               "\n%s: %lld -> %lld tokens (target %lld), rate %.3f, ratio %.2fx, %s in %.1f ms (scorer loaded in %.0f ms)\n",
               o.input.c_str(), static_cast<long long>(out.origin_tokens), static_cast<long long>(out.compressed_tokens),
               static_cast<long long>(out.target_tokens), out.rate, out.ratio, o.method.c_str(), ms, load_ms);
}

}  // namespace

void add_prompt_command(CLI::App& app) {
  auto options = std::make_shared<prompt_options>();
  CLI::App* cmd = app.add_subcommand("prompt", "Compress a text or JSON file with a prompt-compression method");
  cmd->add_option("input", options->input, "the text (or JSON) to compress")->required()->check(CLI::ExistingFile);
  cmd->add_option("--method", options->method,
                  "selective-context, llmlingua, longllmlingua, llmlingua2, extractive or code")
      ->check(CLI::IsMember({"selective-context", "llmlingua", "longllmlingua", "llmlingua2", "extractive", "code"}))
      ->capture_default_str();
  cmd->add_option("--rate", options->rate, "fraction of the tokens to keep (default: the method's preset)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--tokens", options->tokens, "target token count instead of a rate")->check(CLI::PositiveNumber);
  cmd->add_option("--question", options->question, "the question (longllmlingua, extractive and code rank by it)");
  cmd->add_option("--instruction", options->instruction, "an instruction kept intact");
  cmd->add_flag("--sentence-filter", options->sentence_filter,
               "llmlingua: drop the least informative sentences before the token-level pass");
  cmd->add_flag("--drop-consecutive", options->drop_consecutive,
                "llmlingua2: drop a forced token that repeats the last kept piece");
  cmd->add_flag("--explain", options->explain, "print the original with dropped parts marked [-like this-]");
  cmd->add_option("--data", options->data_dir, "directory holding tokenizers/gpt2 and text/moby_dick.txt")
      ->capture_default_str();
  cmd->callback([options] { run_prompt(*options); });
}

}  // namespace cinch::cli
