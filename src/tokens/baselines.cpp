// Random pruning and grid pooling.
#include "cinch/tokens/baselines.hpp"

#include <cmath>
#include <numeric>
#include <vector>

#include "tokens/common.hpp"

namespace cinch::tokens {
namespace {

using cinch::detail::fail;

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

plan random_prune(std::int64_t n, std::int64_t keep, std::uint64_t seed) {
  constexpr std::string_view fn = "tokens::random_prune";
  if (n < 1) fail(errc::invalid_argument, fn, "n must be >= 1 token, got ", n);
  keep = detail::checked_budget(fn, keep, n);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (std::int64_t i = 0; i < keep; ++i) {
    // An index in [i, n) from the high bits of a 64 x 64-bit product (no modulo bias to speak of).
    const std::uint64_t r = splitmix64(seed ^ splitmix64(std::uint64_t(i)));
    const auto span = static_cast<unsigned __int128>(std::uint64_t(n - i));
    const std::int64_t j = i + std::int64_t((static_cast<unsigned __int128>(r) * span) >> 64);
    std::swap(order[std::size_t(i)], order[std::size_t(j)]);
  }
  order.resize(std::size_t(keep));
  return from_kept(n, order);
}

plan pool(const grid& g, std::int64_t out_height, std::int64_t out_width) {
  constexpr std::string_view fn = "tokens::pool";
  detail::checked_grid(fn, g, g.tokens());
  if (out_height < 1 || out_height > g.height || out_width < 1 || out_width > g.width)
    fail(errc::invalid_argument, fn, "output grid must be between 1 x 1 and ", g.height, " x ", g.width, ", got ",
         out_height, " x ", out_width);
  std::vector<std::int64_t> row_bin(static_cast<std::size_t>(g.height)), col_bin(static_cast<std::size_t>(g.width));
  std::vector<std::int64_t> row_mid(static_cast<std::size_t>(out_height)), col_mid(static_cast<std::size_t>(out_width));
  for (std::int64_t b = 0; b < out_height; ++b) {
    const std::int64_t lo = b * g.height / out_height, hi = (b + 1) * g.height / out_height;
    for (std::int64_t y = lo; y < hi; ++y) row_bin[std::size_t(y)] = b;
    row_mid[std::size_t(b)] = lo + (hi - lo - 1) / 2;
  }
  for (std::int64_t b = 0; b < out_width; ++b) {
    const std::int64_t lo = b * g.width / out_width, hi = (b + 1) * g.width / out_width;
    for (std::int64_t x = lo; x < hi; ++x) col_bin[std::size_t(x)] = b;
    col_mid[std::size_t(b)] = lo + (hi - lo - 1) / 2;
  }
  std::vector<std::int64_t> destination(std::size_t(g.tokens()));
  for (std::int64_t f = 0; f < g.frames; ++f)
    for (std::int64_t y = 0; y < g.height; ++y)
      for (std::int64_t x = 0; x < g.width; ++x) {
        const std::int64_t my = row_mid[std::size_t(row_bin[std::size_t(y)])];
        const std::int64_t mx = col_mid[std::size_t(col_bin[std::size_t(x)])];
        destination[std::size_t((f * g.height + y) * g.width + x)] = (f * g.height + my) * g.width + mx;
      }
  return from_destinations(destination);
}

plan pool(const grid& g, std::int64_t keep_per_frame) {
  constexpr std::string_view fn = "tokens::pool";
  detail::checked_grid(fn, g, g.tokens());
  keep_per_frame = detail::checked_budget(fn, keep_per_frame, g.per_frame());
  const double aspect = double(g.height) / double(g.width);
  std::int64_t best_h = 0;
  double best_error = 0;
  for (std::int64_t h = 1; h <= g.height; ++h) {
    if (keep_per_frame % h || keep_per_frame / h > g.width) continue;
    const double error = std::fabs(std::log(double(h) / double(keep_per_frame / h) / aspect));
    if (best_h == 0 || error < best_error) {
      best_h = h;
      best_error = error;
    }
  }
  if (best_h == 0)
    fail(errc::invalid_argument, fn, "keep_per_frame must factor as rows x columns within the ", g.height, " x ",
         g.width, " grid, got ", keep_per_frame);
  return pool(g, best_h, keep_per_frame / best_h);
}

}  // namespace cinch::tokens
