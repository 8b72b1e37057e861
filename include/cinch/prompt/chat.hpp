// Chat files: the OpenAI messages format, either [{"role": ..., "content": ...}, ...]
// or {"messages": [...]}. Compressing a chat compresses the message contents in
// place and nothing else, so roles and every other field survive and the file
// stays valid JSON. Defined in cinch::kernels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/prompt/structure.hpp"

namespace cinch::prompt {

struct chat_message {
  std::string role;
  std::string content;  // empty for a null content (e.g. an assistant's tool call)
  text_range content_range;  // the content's bytes between its quotes in the file (empty when null)
};

// The messages of a chat file. Not JSON, no message array, a message that is not
// an object, a role that is not a string or a content that is neither a string
// nor null: cinch::error(corrupt_data) naming the message.
[[nodiscard]] std::vector<chat_message> parse_chat(std::string_view json);

// Structure options for compressing the chat file `json`: JSON mode, only
// "content" values, the contents of the last keep_last messages protected too
// (the current user turn usually must stay whole). keep_last >= 0.
[[nodiscard]] structure_options chat_structure(std::string_view json, std::int64_t keep_last = 1);

}  // namespace cinch::prompt
