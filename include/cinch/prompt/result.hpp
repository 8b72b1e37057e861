// What every compressor returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cinch::prompt {

// original[begin, end) was copied to text[out, out + end - begin).
struct kept_span {
  std::size_t begin;
  std::size_t end;
  std::size_t out;
};

// A token of the original prompt: its bytes there, the score the method ranked it
// by (higher = more worth keeping; what it means depends on the method, e.g.
// self-information in nats or a keep-probability), and what happened to it.
struct scored_token {
  std::int32_t id;
  std::size_t begin;
  std::size_t end;
  float score;
  bool kept;
  bool forced;  // protected structure, instruction, question or a force string
};

struct result {
  std::string text;               // the compressed prompt, valid UTF-8
  std::vector<kept_span> spans;   // in output order; bytes of `text` outside them were inserted (separators)
  std::int64_t origin_tokens = 0;      // tokens of the original prompt
  std::int64_t compressed_tokens = 0;  // tokens of `text`, re-tokenized
  std::int64_t target_tokens = 0;      // what the budget asked for
  double ratio = 1.0;                  // origin / compressed (infinity when nothing is left)
  double rate = 1.0;                   // compressed / origin
  std::vector<scored_token> tokens;    // every token of the original, in order
};

}  // namespace cinch::prompt
