// The bundled tokenizer and n-gram model.
#include "cinch/prompt/builtin.hpp"

#include <string>
#include <string_view>

#include "prompt_io.hpp"

namespace cinch::prompt {

builtin_models load_builtin(const std::filesystem::path& data_dir, int order) {
  bpe_tokenizer tok = bpe_tokenizer::load_dir(data_dir / "tokenizers" / "gpt2");
  const std::string text = detail::read_file(data_dir / "text" / "moby_dick.txt", "prompt::load_builtin");
  const std::string_view docs[] = {text};
  ngram_model lm = ngram_model::train(tok, docs, order);
  return {std::move(tok), std::move(lm)};
}

}  // namespace cinch::prompt
