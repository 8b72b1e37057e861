// Truncated SVD of a weight matrix: exact (Eigen's divide-and-conquer BDCSVD)
// or randomized (Halko, Martinsson and Tropp 2011), and the choice between them.
//
// Exact: computed in double from the f32 input, so its error is the Eckart-Young
// optimum sqrt(sum of the discarded sigma_i^2) to double rounding.
// Randomized: a Gaussian sketch Y = W Omega of k + p columns (p = oversampling),
// q power iterations Y = W orth(W^T orth(Y)) with re-orthonormalization between
// the products (without it the small directions drown in rounding), then the
// exact SVD of the small projection Q^T W. The range finder's products (the sketch
// and the power iterations) run in int16 or f32 (svd_options::power_precision), the
// projection Q^T W in f32, the orthonormalizations in f32 with their small
// factorizations in double.
//
// Signs are fixed so the output is the same wherever the method ran: the entry
// of largest magnitude in every column of U is positive (the first, on ties),
// and the matching row of V^T flips with it.
#pragma once

#include <cstdint>
#include <vector>

#include "cinch/core/tensor.hpp"

namespace cinch::lowrank {

enum class svd_method { automatic, exact, randomized };

// Arithmetic of the randomized range finder, the products W Omega, W^T Y and W Z:
// int16: W quantized once with one scale per row, each iterate with one scale per
//   column (to [-2896, 2896], so that 256 products sum exactly in int32; see
//   cinch/ref/lowrank.hpp), int32 sums flushed to f32 every 256 terms. Its GEMM runs
//   1.35 to 1.4x the f32 one on an AVX-512 core, the whole SVD 13 to 19 % faster
//   (4096 x 4096, rank 256, q = 2 to 4). The codes of W take m n int16 twice (W and
//   W^T); the f32 input is not copied.
// f32: every product on the f32 GEMM, W read in place.
// The range finder only has to find the subspace: Q^T W, the error and the factors
// are computed from the f32 W either way. On sigma_i = (1 + i)^-0.3 (docs/lowrank.md)
// the excess over optimal is f32's to three digits. The codes perturb W by about
// 1 / 5800 of each row's largest entry: for a matrix of almost exact rank below k,
// use f32.
enum class svd_precision { int16, f32 };

struct svd_options {
  svd_method method = svd_method::automatic;
  // Randomized SVD: extra sketch columns p and power iterations q. Measured on a
  // slowly decaying spectrum sigma_i = (1 + i)^-0.3 (docs/lowrank.md): q matters far
  // more than p; p = 10, q = 4 stays within 1 % of optimal for k up to n / 4.
  std::int64_t oversampling = 10;
  int power_iterations = 4;
  std::uint64_t seed = 0;  // of the Gaussian sketch: equal seeds give equal results
  svd_precision power_precision = svd_precision::int16;
};

struct svd_result {
  tensor u;                    // [m, k] f32, orthonormal columns
  std::vector<double> sigma;   // k singular values, descending
  tensor vt;                   // [k, n] f32, orthonormal rows
  svd_method method = svd_method::exact;  // the method that ran
};

// The method `options` runs for an m x n matrix at rank k: options.method, or for
// automatic, exact where it is cheap (min(m, n) <= 256: under 30 ms here) or where
// the sketch would cover more than half of min(m, n) (there randomized is at most
// 1.3x faster and less accurate), randomized otherwise (5x to 40x faster;
// docs/lowrank.md has the measurements).
[[nodiscard]] svd_method choose_svd_method(std::int64_t m, std::int64_t n, std::int64_t k,
                                           const svd_options& options = {});

// The rank-k truncated SVD of w: f32 [m, n] on the CPU, any strides, finite.
// Throws errc::invalid_argument for k outside [1, min(m, n)], non-finite entries,
// another dtype or device, negative oversampling or power iterations;
// errc::shape_mismatch for a w that is not a matrix.
[[nodiscard]] svd_result truncated_svd(const tensor_view& w, std::int64_t k, const svd_options& options = {});

// All min(m, n) singular values of w (exact, double, descending); the same checks.
[[nodiscard]] std::vector<double> singular_values(const tensor_view& w);

}  // namespace cinch::lowrank
