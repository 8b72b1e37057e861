// Shared by the prompt tests: the repository's data directory and the shipped
// GPT-2 tokenizer, loaded once.
#pragma once

#include <cinch/prompt/bpe.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

inline std::filesystem::path prompt_data_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "data";
}

inline const cinch::prompt::bpe_tokenizer& gpt2() {
  static const cinch::prompt::bpe_tokenizer tok =
      cinch::prompt::bpe_tokenizer::load_dir(prompt_data_dir() / "tokenizers" / "gpt2");
  return tok;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline const std::string& moby_dick() {
  static const std::string text = read_text(prompt_data_dir() / "text" / "moby_dick.txt");
  return text;
}
