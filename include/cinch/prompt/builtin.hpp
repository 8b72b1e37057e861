// The models that ship with cinch, so prompt compression runs without an engine:
// GPT-2's tokenizer and a Kneser-Ney n-gram model trained at load time on the
// bundled public-domain text (Moby-Dick, 318K tokens; about 0.1 s). Defined in
// cinch::kernels.
#pragma once

#include <filesystem>

#include "cinch/prompt/bpe.hpp"
#include "cinch/prompt/ngram.hpp"

namespace cinch::prompt {

struct builtin_models {
  bpe_tokenizer tokenizer;
  ngram_model lm;
};

// Reads data_dir/tokenizers/gpt2/{encoder.json, vocab.bpe} and trains an n-gram
// model of `order` on data_dir/text/moby_dick.txt; data_dir is the repository's
// (or the installed) data directory. A missing file throws invalid_argument.
[[nodiscard]] builtin_models load_builtin(const std::filesystem::path& data_dir, int order = 3);

}  // namespace cinch::prompt
