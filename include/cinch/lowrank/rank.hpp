// Rank <-> parameter arithmetic of a factorized linear layer.
//
// An m x n weight W (m outputs, n inputs: PyTorch's layout) replaced by A [m, r]
// and B [r, n] stores r (m + n) numbers instead of m n. Papers disagree on what a
// "ratio" is (SVD-LLM's 0.2 removes 20 %, ASVD's 0.9 keeps 90 %), so the fraction
// is a type that names its meaning: keep_ratio{0.25} or remove_ratio{0.75}.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "cinch/core/error.hpp"

namespace cinch::lowrank {

// Fraction of the dense parameters the factors may use, in (0, 1].
struct keep_ratio {
  double value;
};
// Fraction of the dense parameters to remove, in [0, 1): keep_ratio{1 - value}.
struct remove_ratio {
  double value;
};

// Parameters of the factors of an m x n matrix at rank r: r (m + n).
[[nodiscard]] constexpr std::int64_t factor_parameters(std::int64_t m, std::int64_t n, std::int64_t r) noexcept {
  return r * (m + n);
}

// The largest rank whose factors are no bigger than the dense matrix: floor(m n / (m + n)).
// At and above it the factorized layer saves nothing (2048 for 4096 x 4096).
[[nodiscard]] constexpr std::int64_t break_even_rank(std::int64_t m, std::int64_t n) noexcept {
  return m + n > 0 ? m * n / (m + n) : 0;
}

namespace detail {
inline std::string ratio_text(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}
}  // namespace detail

// The largest r with r (m + n) <= keep m n, i.e. floor(keep m n / (m + n)), which is
// below min(m, n) for every keep. Throws errc::invalid_argument for m or n < 1, keep outside
// (0, 1] (NaN included), or a keep so small that not even rank 1 fits.
[[nodiscard]] inline std::int64_t rank_for(std::int64_t m, std::int64_t n, keep_ratio keep) {
  constexpr std::string_view fn = "lowrank::rank_for";
  if (m < 1 || n < 1) cinch::detail::fail(errc::invalid_argument, fn, "m and n must be >= 1, got ", m, " x ", n);
  if (!(keep.value > 0.0 && keep.value <= 1.0))
    cinch::detail::fail(errc::invalid_argument, fn, "keep_ratio must be in (0, 1], got ",
                        detail::ratio_text(keep.value));
  // A product a hair below an integer is the integer: 1 - 0.9 is 0.09999999999999998,
  // and 0.1 of a budget of exactly 10 ranks must give rank 10 (relative slack 1e-12).
  const double budget = keep.value * double(m) * double(n);
  const auto params = static_cast<std::int64_t>(std::floor(budget * (1.0 + 1e-12)));
  const std::int64_t r = params / (m + n);
  if (r < 1)
    cinch::detail::fail(errc::invalid_argument, fn, "keep_ratio ", detail::ratio_text(keep.value), " of a ", m, " x ",
                        n, " matrix leaves no room for rank 1 (needs keep_ratio >= ",
                        detail::ratio_text(double(m + n) / (double(m) * double(n))), ")");
  return r;
}

// rank_for(m, n, keep_ratio{1 - remove}); remove must be in [0, 1).
[[nodiscard]] inline std::int64_t rank_for(std::int64_t m, std::int64_t n, remove_ratio remove) {
  if (!(remove.value >= 0.0 && remove.value < 1.0))
    cinch::detail::fail(errc::invalid_argument, "lowrank::rank_for", "remove_ratio must be in [0, 1), got ",
                        detail::ratio_text(remove.value));
  return rank_for(m, n, keep_ratio{1.0 - remove.value});
}

}  // namespace cinch::lowrank
