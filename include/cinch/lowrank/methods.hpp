// Compression methods: each turns a weight W [m, n] (m outputs, n inputs, f32)
// into lowrank::factors {A [m, r], B [r, n]} with W ~ A B.
//
//   compress_svd      plain truncated SVD: minimizes ||W - A B||_F, ignores the data.
//   compress_asvd     ASVD (Yuan et al.): scales input channel j by
//                     s_j = (mean |x_j|)^alpha before the SVD and unscales B after.
//   compress_fwsvd    FWSVD (Hsu et al., ICLR 2022): the same with d_j = sqrt(sum_i I_ij)
//                     from Fisher information I the caller measured.
//   compress_svd_llm  SVD-LLM (Wang et al., ICLR 2025): truncation-aware whitening.
//                     With S S^T = X^T X, W' = Trunc_r(W S) S^-1 minimizes the output
//                     error ||(W - W') X^T||_F over all rank-r W', and that error is
//                     exactly sqrt(sum of the discarded sigma_i(W S)^2).
//   update_left       SVD-LLM's closed-form update: the least-squares A for a fixed B.
//   compress_eora     EoRA (Liu et al.): rank-r compensation of another compressor's
//                     residual W - W_c, the same optimal whitened truncation applied to
//                     the residual; the layer then computes W_c x + A (B x).
//
// Diagonal scalings (ASVD, FWSVD) are floored at 1e-6 times their largest entry,
// so channels that never fire stay invertible. Whitening runs in double.
// All of them throw errc::invalid_argument for a rank outside [1, min(m, n)],
// non-finite weights, a calibration without tokens, and errc::shape_mismatch for
// a calibration or scaling of another width.
#pragma once

#include <cstdint>
#include <vector>

#include "cinch/core/tensor_view.hpp"
#include "cinch/lowrank/calibration.hpp"
#include "cinch/lowrank/factors.hpp"
#include "cinch/lowrank/svd.hpp"

namespace cinch::lowrank {

[[nodiscard]] factors compress_svd(const tensor_view& w, std::int64_t rank, const svd_options& svd = {});

struct asvd_options {
  double alpha = 0.5;  // the exponent of mean |x|, >= 0 and finite; 0 is plain SVD
};
[[nodiscard]] factors compress_asvd(const tensor_view& w, std::int64_t rank, const calibration& stats,
                                    const asvd_options& options = {}, const svd_options& svd = {});

// fisher: f32 [m, n] (E[(dL/dW_ij)^2] per weight) or [n] (already summed over the
// outputs, per input channel); non-negative and finite, not all zero.
[[nodiscard]] factors compress_fwsvd(const tensor_view& w, std::int64_t rank, const tensor_view& fisher,
                                     const svd_options& svd = {});

// The square root S of G = X^T X.
//   cholesky  G = L L^T, S = L. When G is not positive definite (fewer tokens than
//             channels, dead channels), SVD-LLM's fallback: G + (max(-lambda_min, 0) +
//             1e-6 trace(G) / n) I, then Cholesky again.
//   eigen     G = Q diag(lambda) Q^T, S = Q diag(lambda)^1/2, eigenvalues below
//             1e-6 trace(G) / n raised to it (never fails).
// Both are exact square roots of a positive definite G, so both give the same factors' error.
enum class whitening { cholesky, eigen };
struct whitening_options {
  whitening root = whitening::cholesky;
};

[[nodiscard]] factors compress_svd_llm(const tensor_view& w, std::int64_t rank, const calibration& stats,
                                       const whitening_options& options = {}, const svd_options& svd = {});

// All singular values of W S (exact, descending): truncating at rank r costs an
// output error of exactly sqrt(sum_{i >= r} sigma_i^2). The rank allocator's input.
[[nodiscard]] std::vector<double> whitened_singular_values(const tensor_view& w, const calibration& stats,
                                                           const whitening_options& options = {});

// A = argmin ||X_ref W^T - X B^T A^T||_F for the calibration's inputs X (X_ref = X
// without reference): A = W C B^T (B G B^T)^-1 with G = X^T X, C = X_ref^T X, via a
// pseudo-inverse (eigenvalues below 1e-12 of the largest dropped). B is kept.
[[nodiscard]] factors update_left(const tensor_view& w, const factors& f, const calibration& stats);

[[nodiscard]] factors compress_eora(const tensor_view& w, const tensor_view& w_compressed, std::int64_t rank,
                                    const calibration& stats, const whitening_options& options = {whitening::eigen},
                                    const svd_options& svd = {});

}  // namespace cinch::lowrank
