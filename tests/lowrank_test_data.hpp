// Test matrices for the lowrank tests: Gaussian matrices, matrices with a
// prescribed spectrum, activations with outlier channels, and double-precision
// products to measure errors with.
#pragma once

#include <cinch/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace lowrank_test {

// Row-major double matrix.
struct matrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> v;
  matrix() = default;
  matrix(std::int64_t r, std::int64_t c) : rows(r), cols(c), v(std::size_t(r * c), 0.0) {}
  double& operator()(std::int64_t i, std::int64_t j) { return v[std::size_t(i * cols + j)]; }
  double operator()(std::int64_t i, std::int64_t j) const { return v[std::size_t(i * cols + j)]; }
};

inline matrix gaussian(std::int64_t rows, std::int64_t cols, unsigned seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  matrix m(rows, cols);
  for (double& x : m.v) x = normal(rng);
  return m;
}

inline matrix multiply(const matrix& a, const matrix& b) {
  matrix c(a.rows, b.cols);
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t k = 0; k < a.cols; ++k) {
      const double aik = a(i, k);
      for (std::int64_t j = 0; j < b.cols; ++j) c(i, j) += aik * b(k, j);
    }
  return c;
}

inline matrix transpose(const matrix& a) {
  matrix t(a.cols, a.rows);
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t j = 0; j < a.cols; ++j) t(j, i) = a(i, j);
  return t;
}

inline double frobenius(const matrix& a) {
  double s = 0;
  for (double x : a.v) s += x * x;
  return std::sqrt(s);
}

inline matrix difference(const matrix& a, const matrix& b) {
  matrix d = a;
  for (std::size_t i = 0; i < d.v.size(); ++i) d.v[i] -= b.v[i];
  return d;
}

// Applies `count` random Householder reflections (I - 2 v v^T) to the rows
// (from the left) of m: an orthogonal transform that leaves no entry untouched.
inline void reflect_rows(matrix& m, int count, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(std::size_t(m.rows)), w(std::size_t(m.cols));
  for (int r = 0; r < count; ++r) {
    double norm = 0;
    for (double& x : v) {
      x = normal(rng);
      norm += x * x;
    }
    norm = std::sqrt(norm);
    for (double& x : v) x /= norm;
    std::fill(w.begin(), w.end(), 0.0);
    for (std::int64_t i = 0; i < m.rows; ++i)
      for (std::int64_t j = 0; j < m.cols; ++j) w[std::size_t(j)] += v[std::size_t(i)] * m(i, j);
    for (std::int64_t i = 0; i < m.rows; ++i)
      for (std::int64_t j = 0; j < m.cols; ++j) m(i, j) -= 2.0 * v[std::size_t(i)] * w[std::size_t(j)];
  }
}

// A dense rows x cols matrix U diag(sigma) V^T with random orthogonal U and V.
inline matrix with_spectrum(std::int64_t rows, std::int64_t cols, const std::vector<double>& sigma, unsigned seed) {
  matrix m(rows, cols);
  for (std::size_t i = 0; i < sigma.size(); ++i) m(std::int64_t(i), std::int64_t(i)) = sigma[i];
  reflect_rows(m, 12, seed);
  matrix t = transpose(m);
  reflect_rows(t, 12, seed + 1);
  return transpose(t);
}

// sqrt(sum of sigma_i^2 for i >= k): the Eckart-Young optimum at rank k.
inline double tail_norm(const std::vector<double>& sigma, std::size_t k) {
  double s = 0;
  for (std::size_t i = k; i < sigma.size(); ++i) s += sigma[i] * sigma[i];
  return std::sqrt(s);
}

inline std::vector<float> to_f32(const matrix& m) { return {m.v.begin(), m.v.end()}; }

inline matrix from_tensor(const cinch::tensor_view& t) {
  const auto s = t.as<const float, 2>();
  matrix m(s.shape[0], s.shape[1]);
  for (std::int64_t i = 0; i < m.rows; ++i)
    for (std::int64_t j = 0; j < m.cols; ++j) m(i, j) = s.data[i * s.strides[0] + j * s.strides[1]];
  return m;
}

inline cinch::tensor_view view_of(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  return cinch::tensor_view(v.data(), cinch::dtype::f32, {rows, cols});
}
inline cinch::tensor_view view_of(std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  return cinch::tensor_view(v.data(), cinch::dtype::f32, {rows, cols});
}

// Calibration activations [tokens, width]: Gaussian channels with per-channel
// scales, and `outliers` channels 25x larger, as LLM activations have.
inline matrix activations(std::int64_t tokens, std::int64_t width, int outliers, unsigned seed) {
  matrix x = gaussian(tokens, width, seed);
  std::mt19937_64 rng(seed + 7);
  std::uniform_real_distribution<double> scale(0.5, 1.5);
  for (std::int64_t j = 0; j < width; ++j) {
    const double s = (j % (width / std::max(outliers, 1)) == 3 && outliers > 0) ? 25.0 : scale(rng);
    for (std::int64_t t = 0; t < tokens; ++t) x(t, j) *= s;
  }
  return x;
}

}  // namespace lowrank_test
