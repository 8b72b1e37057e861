// Compression methods: plain SVD, ASVD and FWSVD (diagonal input scalings),
// SVD-LLM whitening and its closed-form update, EoRA residual compensation.
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <string>

#include "cinch/detail/checks.hpp"
#include "cinch/lowrank/methods.hpp"
#include "lowrank_linalg.hpp"

namespace cinch::lowrank {
namespace {

using detail::matd;
using detail::svd_parts;
using detail::vecd;

// A = U S^1/2 and B = S^1/2 V^T, B's columns then divided by `unscale` (when given).
factors split(const svd_parts& p, const vecd* unscale = nullptr) {
  const vecd root = p.s.cwiseSqrt();
  const matd a = p.u * root.asDiagonal();
  matd b = root.asDiagonal() * p.v.transpose();
  if (unscale) b = b * unscale->cwiseInverse().asDiagonal();
  return {detail::to_tensor(a), detail::to_tensor(b)};
}

void check_stats(std::string_view fn, const calibration& stats, std::int64_t n) {
  if (stats.width() != n)
    cinch::detail::fail(errc::shape_mismatch, fn, "stats must have the width of w's columns (", n, "), got ",
                        stats.width());
  if (stats.tokens() == 0) cinch::detail::fail(errc::invalid_argument, fn, "stats must hold at least one token, got 0");
}

matd gram_of(const calibration& stats) {
  return Eigen::Map<const detail::matd_rows>(stats.gram().data(), stats.width(), stats.width());
}

// d floored at 1e-6 of its largest entry; all zero is an error.
vecd floored(std::string_view fn, std::string_view what, vecd d) {
  const double top = d.maxCoeff();
  if (!(top > 0)) cinch::detail::fail(errc::invalid_argument, fn, what, " must have a positive entry, got all zeros");
  return d.cwiseMax(1e-6 * top);
}

factors scaled_svd(std::string_view fn, const tensor_view& w, std::int64_t rank, const vecd& scale,
                   const svd_options& svd) {
  const matd ws = detail::to_matd(w) * scale.asDiagonal();
  return split(detail::svd_of(fn, ws, rank, svd), &scale);
}

// A square root S of G (S S^T = G after the documented repair), applied from the right.
class whitener {
 public:
  whitener(std::string_view fn, const matd& g, whitening root) : root_(root) {
    const Eigen::Index n = g.rows();
    const double floor = 1e-6 * g.trace() / double(n);
    if (!(floor > 0))
      cinch::detail::fail(errc::invalid_argument, fn, "stats hold no activation energy (the Gram matrix is zero)");
    if (root == whitening::cholesky) {
      Eigen::LLT<matd> llt(g);
      if (llt.info() != Eigen::Success) {
        const double lowest = Eigen::SelfAdjointEigenSolver<matd>(g, Eigen::EigenvaluesOnly).eigenvalues()(0);
        llt.compute(g + (std::max(-lowest, 0.0) + floor) * matd::Identity(n, n));
        if (llt.info() != Eigen::Success)
          cinch::detail::fail(errc::invalid_argument, fn, "the Gram matrix is not positive definite even after jitter");
      }
      lower_ = llt.matrixL();
    } else {
      const Eigen::SelfAdjointEigenSolver<matd> eigen(g);
      basis_ = eigen.eigenvectors();
      root_values_ = eigen.eigenvalues().cwiseMax(floor).cwiseSqrt();
    }
  }

  // W S.
  [[nodiscard]] matd right_multiply(const matd& w) const {
    if (root_ == whitening::cholesky) return detail::product(w, lower_);
    return detail::product(w, basis_) * root_values_.asDiagonal();
  }
  // C S^-1, by a triangular solve or the orthogonal eigenbasis: no explicit inverse.
  [[nodiscard]] matd right_divide(matd c) const {
    if (root_ == whitening::cholesky) {
      lower_.triangularView<Eigen::Lower>().solveInPlace<Eigen::OnTheRight>(c);
      return c;
    }
    const matd scaled = c * root_values_.cwiseInverse().asDiagonal();
    matd out(scaled.rows(), basis_.rows());
    detail::multiply(detail::as_strided(out), detail::as_strided(scaled), detail::as_strided(basis_).t());
    return out;
  }

 private:
  whitening root_;
  matd lower_, basis_;
  vecd root_values_;
};

// The optimal rank-r approximation of `target` in the output norm of `stats`:
// Trunc_r(target S) S^-1, as factors.
factors whitened_truncation(std::string_view fn, const matd& target, std::int64_t rank, const calibration& stats,
                            const whitening_options& options, const svd_options& svd) {
  const whitener s(fn, gram_of(stats), options.root);
  const svd_parts p = detail::svd_of(fn, s.right_multiply(target), rank, svd);
  const vecd root = p.s.cwiseSqrt();
  const matd b = s.right_divide(root.asDiagonal() * p.v.transpose());
  return {detail::to_tensor(p.u * root.asDiagonal()), detail::to_tensor(b)};
}

}  // namespace

factors compress_svd(const tensor_view& w, std::int64_t rank, const svd_options& svd) {
  constexpr std::string_view fn = "lowrank::compress_svd";
  detail::check_matrix(fn, "w", w);
  return split(detail::svd_of(fn, w, rank, svd));
}

factors compress_asvd(const tensor_view& w, std::int64_t rank, const calibration& stats, const asvd_options& options,
                      const svd_options& svd) {
  constexpr std::string_view fn = "lowrank::compress_asvd";
  detail::check_matrix(fn, "w", w);
  check_stats(fn, stats, w.size(1));
  if (!(options.alpha >= 0 && std::isfinite(options.alpha)))
    cinch::detail::fail(errc::invalid_argument, fn, "asvd_options::alpha must be finite and >= 0, got ",
                        std::to_string(options.alpha));
  detail::check_svd_request(fn, w.size(0), w.size(1), rank, svd);
  const std::vector<double> mean = stats.mean_abs();
  const vecd scale = Eigen::Map<const vecd>(mean.data(), Eigen::Index(mean.size())).array().pow(options.alpha);
  return scaled_svd(fn, w, rank, floored(fn, "the mean |x| of stats", scale), svd);
}

factors compress_fwsvd(const tensor_view& w, std::int64_t rank, const tensor_view& fisher, const svd_options& svd) {
  constexpr std::string_view fn = "lowrank::compress_fwsvd";
  detail::check_matrix(fn, "w", w);
  const std::int64_t m = w.size(0), n = w.size(1);
  cinch::detail::check_device(fn, "fisher", fisher, cpu_device);
  cinch::detail::check_dtype(fn, "fisher", fisher, dtype::f32);
  if (!(fisher.rank() == 1 && fisher.size(0) == n) && !(fisher.rank() == 2 && fisher.size(0) == m && fisher.size(1) == n))
    cinch::detail::fail(errc::shape_mismatch, fn, "fisher must have shape [", m, ", ", n, "] (per weight) or [", n,
                        "] (per input channel), got ", fisher.shape());
  detail::check_svd_request(fn, m, n, rank, svd);
  const tensor_view f2 = fisher.rank() == 2 ? fisher : fisher.reshape({1, n});
  const auto f = f2.as<const float, 2>();
  vecd importance = vecd::Zero(n);
  for (std::int64_t i = 0; i < f.shape[0]; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const float v = f.data[i * f.strides[0] + j * f.strides[1]];
      if (!(v >= 0 && std::isfinite(v)))
        cinch::detail::fail(errc::invalid_argument, fn, "fisher must be finite and >= 0, got ", std::to_string(v),
                            " at input channel ", j);
      importance(j) += v;
    }
  return scaled_svd(fn, w, rank, floored(fn, "fisher", importance.cwiseSqrt()), svd);
}

factors compress_svd_llm(const tensor_view& w, std::int64_t rank, const calibration& stats,
                         const whitening_options& options, const svd_options& svd) {
  constexpr std::string_view fn = "lowrank::compress_svd_llm";
  detail::check_matrix(fn, "w", w);
  check_stats(fn, stats, w.size(1));
  detail::check_svd_request(fn, w.size(0), w.size(1), rank, svd);
  return whitened_truncation(fn, detail::to_matd(w), rank, stats, options, svd);
}

std::vector<double> whitened_singular_values(const tensor_view& w, const calibration& stats,
                                             const whitening_options& options) {
  constexpr std::string_view fn = "lowrank::whitened_singular_values";
  detail::check_matrix(fn, "w", w);
  check_stats(fn, stats, w.size(1));
  const whitener s(fn, gram_of(stats), options.root);
  const vecd sigma = detail::all_singular_values(s.right_multiply(detail::to_matd(w)));
  return {sigma.data(), sigma.data() + sigma.size()};
}

factors update_left(const tensor_view& w, const factors& f, const calibration& stats) {
  constexpr std::string_view fn = "lowrank::update_left";
  detail::check_matrix(fn, "w", w);
  detail::check_matrix(fn, "f.a", f.a);
  detail::check_matrix(fn, "f.b", f.b);
  const std::int64_t m = w.size(0), n = w.size(1);
  if (f.a.size(0) != m || f.b.size(1) != n || f.a.size(1) != f.b.size(0))
    cinch::detail::fail(errc::shape_mismatch, fn, "factors must be a [", m, ", r] and b [r, ", n, "] for w ", w.shape(),
                        ", got a ", f.a.shape(), " and b ", f.b.shape());
  check_stats(fn, stats, n);
  const matd g = gram_of(stats);
  const matd c = stats.with_reference()
                     ? matd(Eigen::Map<const detail::matd_rows>(stats.cross().data(), n, n))
                     : g;
  const matd b = detail::to_matd(f.b), bt = b.transpose();
  // Normal equations A (B G B^T) = W C B^T, solved with a pseudo-inverse of the small SPD matrix.
  const matd normal = detail::product(detail::product(b, g), bt);
  const matd rhs = detail::product(detail::to_matd(w), detail::product(c, bt));
  const Eigen::SelfAdjointEigenSolver<matd> eigen(normal);
  const vecd values = eigen.eigenvalues();
  const double cut = 1e-12 * values.cwiseAbs().maxCoeff();
  const vecd inverse = values.unaryExpr([cut](double v) { return v > cut ? 1.0 / v : 0.0; });
  const matd basis = eigen.eigenvectors();
  const matd a = detail::product(rhs, basis) * inverse.asDiagonal() * basis.transpose();
  return {detail::to_tensor(a), f.b};
}

factors compress_eora(const tensor_view& w, const tensor_view& w_compressed, std::int64_t rank,
                      const calibration& stats, const whitening_options& options, const svd_options& svd) {
  constexpr std::string_view fn = "lowrank::compress_eora";
  detail::check_matrix(fn, "w", w);
  detail::check_matrix(fn, "w_compressed", w_compressed);
  cinch::detail::check_shape(fn, "w_compressed", w_compressed, w.shape());
  check_stats(fn, stats, w.size(1));
  detail::check_svd_request(fn, w.size(0), w.size(1), rank, svd);
  return whitened_truncation(fn, detail::to_matd(w) - detail::to_matd(w_compressed), rank, stats, options, svd);
}

}  // namespace cinch::lowrank
