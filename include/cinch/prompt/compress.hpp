// One entry point over every method, with each method's published defaults, for
// command-line tools and engines that pick the method at run time.
// Defined in cinch::kernels.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

enum class method { selective_context, llmlingua, longllmlingua, llmlingua2, extractive, code };

// "selective-context", "llmlingua", "longllmlingua", "llmlingua2", "extractive",
// "code" (also with '_' for '-'); anything else throws invalid_argument listing them.
[[nodiscard]] method parse_method(std::string_view name);
[[nodiscard]] std::string_view to_string(method m) noexcept;

struct request {
  prompt::method method = method::llmlingua2;
  std::string_view instruction;
  std::vector<std::string_view> contexts;  // the text(s) to compress
  std::string_view question;               // longllmlingua, extractive and code rank by it
  // Unset: the method's preset (llmlingua 0.5, longllmlingua 0.55, llmlingua2
  // 0.33, selective-context 0.65 (reduce ratio 0.35), extractive and code 0.5).
  std::optional<prompt::budget> budget;
  structure_options structure;
  // Method switches off by default as in the references; setting one for a
  // method it does not belong to throws invalid_argument.
  bool sentence_filter = false;   // llmlingua: LLMLingua's sentence-level filter (llmlingua.hpp)
  bool drop_consecutive = false;  // llmlingua2: LLMLingua-2's drop_consecutive (llmlingua2.hpp)
};

// Runs request.method. Offsets in the result are into assemble({instruction,
// contexts, question}) (llmlingua.hpp), and instruction and question stay whole:
// the single-text methods (selective-context, llmlingua2, extractive, code) compress
// that text with instruction and question protected. The other defaults are each
// method's options struct's; llmlingua2 without a keep scorer uses
// surprisal_keep_scorer(lm), and extractive uses the embedder when given.
[[nodiscard]] result compress(const request& r, const tokenizer& tok, const lm_scorer& lm,
                              const keep_scorer* keep = nullptr, const embedder* embed = nullptr);

}  // namespace cinch::prompt
