// File reading for the prompt module's loaders.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "cinch/core/error.hpp"

namespace cinch::prompt::detail {

// The whole file; a file that cannot be opened throws invalid_argument naming it.
inline std::string read_file(const std::filesystem::path& path, std::string_view function) {
  std::ifstream in(path, std::ios::binary);
  if (!in) cinch::detail::fail(errc::invalid_argument, function, "cannot open '", path.string(), "'");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace cinch::prompt::detail
