// Where an io error happened: the function and the file every message names, as
// in "load_npy: k.npy: ...".
#pragma once

#include <string_view>

#include "cinch/core/error.hpp"

namespace cinch::io {

struct origin {
  std::string_view function;
  std::string_view source;

  template <class... Parts>
  [[noreturn]] void fail(errc code, const Parts&... parts) const {
    cinch::detail::fail(code, function, source, ": ", parts...);
  }
};

}  // namespace cinch::io
