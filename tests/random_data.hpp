// Reproducible test data shared by the test files.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

// n values drawn from N(0, scale^2) by std::mt19937 seeded with `seed`.
inline std::vector<float> random_values(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}
