// Reference fast Walsh-Hadamard transform: the exact specification.
//
// For n = 2^m, in place: for h = 1, 2, 4, ..., n/2 (in this order), for every
// block start i (step 2h) and j in [i, i + h): (a, b) = (x[j], x[j + h]),
// x[j] = a + b, x[j + h] = a - b; finally every element is multiplied by
// hadamard_scale(n) = 1/sqrt(n) rounded to f32 (exact when m is even). The result
// is H_n x / sqrt(n) with Sylvester's H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]]:
// orthonormal, symmetric and so its own inverse (up to rounding).
//
// Only adds, subtracts and one final multiply: a backend that runs the same
// stages in the same order gets the same bits, however it vectorizes them.
//
// Randomized Hadamard: forward y = H D x / sqrt(n), inverse x = D H y / sqrt(n),
// with D = diag(s_i), s_i = -1 exactly when the top bit of output i (from 0) of
// splitmix64 seeded with `seed` is set: mix64(seed + (i + 1) * 0x9E3779B97F4A7C15).
#pragma once

#include <cstdint>

#include "cinch/config.hpp"
#include "cinch/ref/convert.hpp"

namespace cinch::ref {

CINCH_HOST_DEVICE constexpr bool is_power_of_two(std::int64_t n) noexcept { return n > 0 && (n & (n - 1)) == 0; }

CINCH_HOST_DEVICE inline float hadamard_scale(std::int64_t n) noexcept {
  int m = 0;
  while ((std::int64_t(1) << m) < n) ++m;
  float scale = m % 2 ? 0.70710678118654752f : 1.0f;  // 1/sqrt(2) rounded to f32
  for (int k = 0; k < m / 2; ++k) scale *= 0.5f;       // exact
  return scale;
}

CINCH_HOST_DEVICE inline std::uint64_t splitmix64_mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Sign bit (0 or 0x80000000) that element i is XOR-ed with in the randomized transform.
CINCH_HOST_DEVICE inline std::uint32_t hadamard_sign_bit(std::uint64_t seed, std::int64_t i) noexcept {
  const std::uint64_t z = splitmix64_mix(seed + std::uint64_t(i + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<std::uint32_t>(z >> 63) << 31;
}

// x <- H_n x / sqrt(n), n a power of two.
CINCH_HOST_DEVICE inline void fwht(float* x, std::int64_t n) noexcept {
  for (std::int64_t h = 1; h < n; h *= 2)
    for (std::int64_t i = 0; i < n; i += 2 * h)
      for (std::int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  const float scale = hadamard_scale(n);
  for (std::int64_t i = 0; i < n; ++i) x[i] *= scale;
}

// A row with precomputed sign bits (hadamard_sign_bit(seed, i), or null for none)
// XOR-ed in before the transform (forward) or after it (signs_after: inverse).
inline void hadamard_row(float* x, std::int64_t n, const std::uint32_t* sign_bits, bool signs_after) noexcept {
  if (sign_bits && !signs_after)
    for (std::int64_t i = 0; i < n; ++i) x[i] = float_of(bits_of(x[i]) ^ sign_bits[i]);
  fwht(x, n);
  if (sign_bits && signs_after)
    for (std::int64_t i = 0; i < n; ++i) x[i] = float_of(bits_of(x[i]) ^ sign_bits[i]);
}

}  // namespace cinch::ref
