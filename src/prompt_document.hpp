// The working state of every compressor: a prompt made of parts (instruction,
// contexts, question), its tokens, atoms and units, and which units are kept.
// Methods fill token scores and choose what to keep; the document renders the
// output with its spans, settles the budget on the re-tokenized output and
// builds the result.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/segment.hpp"
#include "cinch/prompt/select.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt::detail {

// The smallest deletable piece: bytes [begin, end) of the original holding
// tokens [tok0, tok1). (Whether it is forced lives in its unit: 24 bytes, as
// every pass over a large prompt reads them.)
struct atom {
  std::size_t begin, end;
  std::int32_t tok0, tok1;
};

// Atoms [atom0, atom1), ranked as one.
struct unit {
  std::int32_t atom0, atom1;
  std::int32_t tokens;
  bool forced;
  bool dropped;  // removed by a filter: never ranked, never kept (forced or not)
  float score;
};

struct part_spec {
  std::string_view text;
  bool forced = false;  // kept whole (instruction, question)
};

struct part {
  std::size_t begin, end;  // in the original
  std::int32_t tok0, tok1, atom0, atom1, unit0, unit1;
  bool forced;
  bool dropped = false;  // removed whole by a coarse filter
};

// round(rate * origin) or the explicit target, clamped to origin; throws on a
// rate outside (0, 1] or a target <= 0.
[[nodiscard]] std::int64_t resolve_target(std::string_view fn, const budget& b, std::int64_t origin);

// Throws invalid_argument when text is not valid UTF-8.
void check_text(std::string_view fn, std::string_view name, std::string_view text);

class document {
 public:
  // Parts are joined by `separator` (skipping empty ones) into the original.
  // tokens[i] are the tokens of parts[i].text (checked against the contract).
  // The structure applies to each part, its protect ranges given in the
  // original's bytes.
  document(std::string_view fn, std::span<const part_spec> parts, std::span<const std::span<const token>> tokens,
           const structure_options& structure, granularity level, std::string separator = "\n\n");
  // Tokenizes the parts with tok.
  document(std::string_view fn, std::span<const part_spec> parts, const tokenizer& tok,
           const structure_options& structure, granularity level, std::string separator = "\n\n");

  std::string_view fn;
  std::string original;
  std::string separator;
  std::vector<token> tokens;  // offsets in the original
  std::vector<float> scores;  // per token, filled by the method
  std::vector<atom> atoms;
  std::vector<unit> units;
  std::vector<part> parts;
  std::vector<std::int32_t> order;  // the output order of parts
  std::vector<std::int32_t> keep;   // per unit: tokens kept (a prefix of its atoms)

  // unit.score from the token scores, for units [u0, u1) (-1: to the end).
  void score_units(aggregation how, std::int32_t u0 = 0, std::int32_t u1 = -1);
  // Forces every unit whose text holds a digit.
  void force_digit_units();
  // keep = all tokens of forced units (of parts not dropped), 0 elsewhere.
  void reset_keep();
  [[nodiscard]] std::int64_t kept_tokens() const;
  // Non-forced, non-dropped units of [u0, u1) in parts not dropped, best first (score
  // descending, index ascending).
  [[nodiscard]] std::vector<std::int32_t> ranked(std::int32_t u0, std::int32_t u1) const;
  [[nodiscard]] std::vector<std::int32_t> ranked() const { return ranked(0, std::int32_t(units.size())); }
  // Keeps up to `amount` more tokens from `best_first`: whole units that fit,
  // then (partial) prefixes. Returns the tokens added.
  std::int64_t add(std::span<const std::int32_t> best_first, std::int64_t amount, bool partial);
  // Drops up to `amount` kept tokens, worst first. Returns the tokens dropped.
  std::int64_t remove(std::span<const std::int32_t> best_first, std::int64_t amount, bool partial);
  // Drops a part whole (its units no longer count or render).
  void drop_part(std::size_t p);
  // Drops each kept forced unit whose text, less surrounding whitespace, is one of
  // `strings` and equals the last kept unit's (nothing kept between them).
  void drop_repeats(std::span<const std::string> strings);

  // The output text; spans appended when given.
  [[nodiscard]] std::string render(std::vector<kept_span>* spans = nullptr) const;
  // Adjusts the kept units at the margin until tok.count(render()) meets target
  // (or no unit can move); returns that count.
  std::int64_t settle(const tokenizer& tok, std::int64_t target, bool partial);
  // The result; compressed = the output's token count.
  [[nodiscard]] result finish(std::int64_t origin_tokens, std::int64_t target, std::int64_t compressed) const;

  [[nodiscard]] std::int32_t atom_tokens(const atom& a) const noexcept { return a.tok1 - a.tok0; }
  // Tokens of unit u's longest atom prefix holding at most `limit` tokens.
  [[nodiscard]] std::int32_t prefix_tokens(std::int32_t u, std::int64_t limit) const;
  // Appends the indices of the kept tokens of units [u0, u1).
  void kept_tokens_of(std::int32_t u0, std::int32_t u1, std::vector<std::int32_t>& out) const;
  // First token of unit u and one past its last.
  [[nodiscard]] std::pair<std::int32_t, std::int32_t> token_range(std::int32_t u) const noexcept {
    return {atoms[std::size_t(units[std::size_t(u)].atom0)].tok0, atoms[std::size_t(units[std::size_t(u)].atom1 - 1)].tok1};
  }

 private:
  // Calls f(atom) for each kept atom of units [u0, u1), in order.
  template <class F>
  void for_each_kept_atom(std::int32_t u0, std::int32_t u1, F&& f) const {
    for (std::int32_t u = u0; u < u1; ++u) {
      const unit& x = units[std::size_t(u)];
      std::int32_t budget = keep[std::size_t(u)];
      // Most units at high compression keep nothing: their atoms (>= 1 token each) stay unread.
      if ((budget == 0 && !x.forced) || x.dropped) continue;
      for (std::int32_t a = x.atom0; a < x.atom1; ++a) {
        const atom& at = atoms[std::size_t(a)];
        if (!x.forced) {
          if (atom_tokens(at) > budget) break;
          budget -= atom_tokens(at);
        }
        f(at);
      }
    }
  }

  void build(std::span<const part_spec> specs, std::span<const std::span<const token>> tokens,
             const structure_options& structure, granularity level);
};

}  // namespace cinch::prompt::detail
