// Byte-level BPE in GPT-2's format (encoder.json + vocab.bpe), reproducing GPT-2's
// token ids: text is split by GPT-2's pre-tokenizer pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (implemented by hand, classes from unicode.hpp), each piece's UTF-8 bytes are
// mapped to the vocabulary's printable byte alphabet, and merges are applied
// lowest rank first, every occurrence of the winning pair left to right, until
// none applies. Special tokens such as <|endoftext|> are not recognised inside
// text: it is encoded as the plain characters it is made of (eos_id() names the id).
// Defined in cinch::kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

class bpe_tokenizer final : public tokenizer {
 public:
  // From the contents of encoder.json (token -> id) and vocab.bpe (a "#version"
  // line, then one merge "a b" per line, best first). Every byte's token and every
  // merge's parts and result must be in the vocabulary, ids must be distinct and
  // dense; anything else throws cinch::error(corrupt_data) naming the line or token.
  [[nodiscard]] static bpe_tokenizer from_strings(std::string_view encoder_json, std::string_view vocab_bpe);
  // Reads the two files (a missing file throws invalid_argument).
  [[nodiscard]] static bpe_tokenizer load(const std::filesystem::path& encoder_json,
                                          const std::filesystem::path& vocab_bpe);
  // dir/encoder.json and dir/vocab.bpe, e.g. the repository's data/tokenizers/gpt2.
  [[nodiscard]] static bpe_tokenizer load_dir(const std::filesystem::path& dir);

  [[nodiscard]] std::vector<token> encode(std::string_view text) const override;
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const override;
  [[nodiscard]] std::int64_t vocab_size() const override;
  [[nodiscard]] std::int64_t count(std::string_view text) const override;

  // The raw bytes a token stands for; an id outside the vocabulary throws.
  [[nodiscard]] std::string_view token_bytes(std::int32_t id) const;
  // The id of the token whose raw bytes are `bytes`, or -1.
  [[nodiscard]] std::int32_t id_of(std::string_view bytes) const;
  // The id of <|endoftext|>, or -1 when the vocabulary has none.
  [[nodiscard]] std::int32_t eos_id() const noexcept;
  // The merges in rank order, as pairs of token ids.
  [[nodiscard]] std::span<const std::pair<std::int32_t, std::int32_t>> merges() const noexcept;

  // GPT-2's pre-tokenizer alone: the byte ranges [begin, end) of the pieces of
  // `text`, which must be valid UTF-8 (invalid bytes each form a piece of their own).
  [[nodiscard]] static std::vector<std::pair<std::size_t, std::size_t>> pre_tokenize(std::string_view text);

 private:
  struct impl;
  explicit bpe_tokenizer(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

}  // namespace cinch::prompt
