// The method dispatcher and its presets.
#include "cinch/prompt/compress.hpp"

#include <array>
#include <string>
#include <utility>

#include "cinch/core/error.hpp"
#include "cinch/prompt/code.hpp"
#include "cinch/prompt/extractive.hpp"
#include "cinch/prompt/llmlingua.hpp"
#include "cinch/prompt/llmlingua2.hpp"
#include "cinch/prompt/selective_context.hpp"

namespace cinch::prompt {
namespace {

constexpr std::array<std::pair<std::string_view, method>, 6> names = {{
    {"selective-context", method::selective_context},
    {"llmlingua", method::llmlingua},
    {"longllmlingua", method::longllmlingua},
    {"llmlingua2", method::llmlingua2},
    {"extractive", method::extractive},
    {"code", method::code},
}};

}  // namespace

method parse_method(std::string_view name) {
  std::string n(name);
  for (char& c : n)
    if (c == '_') c = '-';
  for (const auto& [text, m] : names)
    if (n == text) return m;
  cinch::detail::fail(errc::invalid_argument, "prompt::parse_method",
                      "method must be one of selective-context, llmlingua, longllmlingua, llmlingua2, extractive, code; got '",
                      name, "'");
}

std::string_view to_string(method m) noexcept {
  for (const auto& [text, value] : names)
    if (value == m) return text;
  return "unknown";
}

result compress(const request& r, const tokenizer& tok, const lm_scorer& lm, const keep_scorer* keep,
                const embedder* embed) {
  if (r.sentence_filter && r.method != method::llmlingua)
    cinch::detail::fail(errc::invalid_argument, "prompt::compress", "sentence_filter applies to method llmlingua, got ",
                        to_string(r.method));
  if (r.drop_consecutive && r.method != method::llmlingua2)
    cinch::detail::fail(errc::invalid_argument, "prompt::compress",
                        "drop_consecutive applies to method llmlingua2, got ", to_string(r.method));
  const prompt_parts parts{r.instruction, r.contexts, r.question};
  auto budget_or = [&](budget preset) { return r.budget.value_or(preset); };
  switch (r.method) {
    case method::llmlingua: {
      llmlingua_options o;
      o.budget = budget_or(o.budget);
      o.structure = r.structure;
      o.sentence_filter = r.sentence_filter;
      return llmlingua(parts, tok, lm, o);
    }
    case method::longllmlingua: {
      longllmlingua_options o;
      o.budget = budget_or(o.budget);
      o.structure = r.structure;
      return longllmlingua(parts, tok, lm, o);
    }
    default: break;
  }
  // Single-text methods: the assembled prompt, instruction and question protected.
  const std::string text = assemble(parts);
  structure_options s = r.structure;
  if (!r.instruction.empty()) s.protect.push_back({0, r.instruction.size()});
  if (!r.question.empty()) s.protect.push_back({text.size() - r.question.size(), text.size()});
  switch (r.method) {
    case method::selective_context: {
      selective_context_options o;
      o.budget = budget_or(o.budget);
      o.structure = std::move(s);
      return selective_context(text, tok, lm, o);
    }
    case method::llmlingua2: {
      llmlingua2_options o;
      o.budget = budget_or(o.budget);
      o.structure = std::move(s);
      o.drop_consecutive = r.drop_consecutive;
      const surprisal_keep_scorer fallback(lm);
      return llmlingua2(text, tok, keep ? *keep : fallback, o);
    }
    case method::extractive: {
      extractive_options o;
      o.budget = budget_or(o.budget);
      o.structure.protect = std::move(s.protect);
      return extractive(text, r.question, tok, o, embed);
    }
    case method::code: {
      code_options o;
      o.budget = budget_or(o.budget);
      o.structure.protect = std::move(s.protect);
      return compress_code(text, r.question, tok, lm, o);
    }
    default: break;
  }
  cinch::detail::fail(errc::invalid_argument, "prompt::compress", "unknown method ", int(r.method));
}

}  // namespace cinch::prompt
