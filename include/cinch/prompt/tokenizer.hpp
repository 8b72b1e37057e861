// The tokenizer interface: engines plug in their own (SentencePiece, tiktoken,
// Hugging Face); cinch ships a byte-level BPE that reads GPT-2's files (bpe.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cinch::prompt {

// One token and the bytes [begin, end) of the encoded text it came from.
struct token {
  std::int32_t id;
  std::size_t begin;
  std::size_t end;
};

class tokenizer {
 public:
  virtual ~tokenizer() = default;

  // Tokens of `text` in order, with byte offsets into it. Compressors need
  // begin <= end <= text.size() and each begin >= the previous token's end (they
  // check, and throw cinch::error otherwise); bytes no token covers travel with
  // the token before them. Must be safe to call from several threads.
  [[nodiscard]] virtual std::vector<token> encode(std::string_view text) const = 0;

  // The text of `ids` (for a byte-level tokenizer, exactly the bytes they stand for).
  [[nodiscard]] virtual std::string decode(std::span<const std::int32_t> ids) const = 0;

  // Ids are in [0, vocab_size()).
  [[nodiscard]] virtual std::int64_t vocab_size() const = 0;

  // How many tokens `text` becomes; override when counting is cheaper than encoding.
  [[nodiscard]] virtual std::int64_t count(std::string_view text) const {
    return static_cast<std::int64_t>(encode(text).size());
  }
};

// The ids of `tokens`, in order.
[[nodiscard]] inline std::vector<std::int32_t> ids_of(std::span<const token> tokens) {
  std::vector<std::int32_t> ids(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) ids[i] = tokens[i].id;
  return ids;
}

}  // namespace cinch::prompt
