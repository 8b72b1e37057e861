// Chat files: validation and the structure that protects all but message contents.
#include "cinch/prompt/chat.hpp"

#include "cinch/core/error.hpp"
#include "prompt_json.hpp"

namespace cinch::prompt {

std::vector<chat_message> parse_chat(std::string_view json) {
  constexpr std::string_view fn = "prompt::parse_chat";
  using kind = detail::json_value::kind;
  const detail::json_value root = detail::parse_json(json, fn, "the chat file", errc::corrupt_data);
  const detail::json_value* list = &root;
  if (root.type == kind::object) {
    list = root.find("messages");
    if (!list) cinch::detail::fail(errc::corrupt_data, fn, "the chat file is an object without a \"messages\" array");
  }
  if (list->type != kind::array)
    cinch::detail::fail(errc::corrupt_data, fn, "the chat file must be an array of messages or {\"messages\": [...]}");
  std::vector<chat_message> out;
  for (std::size_t i = 0; i < list->items.size(); ++i) {
    const detail::json_value& m = list->items[i];
    if (m.type != kind::object) cinch::detail::fail(errc::corrupt_data, fn, "message ", i, " is not an object");
    const detail::json_value* role = m.find("role");
    if (!role || role->type != kind::string)
      cinch::detail::fail(errc::corrupt_data, fn, "message ", i, " has no string \"role\"");
    const detail::json_value* content = m.find("content");
    if (!content || (content->type != kind::string && content->type != kind::null))
      cinch::detail::fail(errc::corrupt_data, fn, "message ", i, " has no \"content\" string (or null)");
    chat_message msg{role->string, content->string, {0, 0}};
    if (content->type == kind::string) msg.content_range = {content->begin, content->end};
    out.push_back(std::move(msg));
  }
  return out;
}

structure_options chat_structure(std::string_view json, std::int64_t keep_last) {
  if (keep_last < 0)
    cinch::detail::fail(errc::invalid_argument, "prompt::chat_structure", "keep_last must be >= 0, got ", keep_last);
  const std::vector<chat_message> messages = parse_chat(json);
  structure_options o;
  o.mode = structure::json;
  o.json_keys = {"content"};
  for (std::size_t i = messages.size() > std::size_t(keep_last) ? messages.size() - std::size_t(keep_last) : 0;
       i < messages.size(); ++i)
    o.protect.push_back(messages[i].content_range);
  return o;
}

}  // namespace cinch::prompt
