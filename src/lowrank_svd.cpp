// Truncated SVD: exact (Eigen BDCSVD in double) and randomized (Halko et al.),
// plus the tensor <-> Eigen conversions the lowrank module shares.
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <utility>
#include <vector>

#include "cinch/detail/checks.hpp"
#include "cinch/lowrank/svd.hpp"
#include "lowrank_kernels.hpp"
#include "lowrank_linalg.hpp"

namespace cinch::lowrank {
namespace detail {

void check_matrix(std::string_view fn, std::string_view name, const tensor_view& w) {
  cinch::detail::check_device(fn, name, w, cpu_device);
  cinch::detail::check_dtype(fn, name, w, dtype::f32);
  if (w.rank() != 2)
    cinch::detail::fail(errc::shape_mismatch, fn, name, " must be a matrix [rows, cols], got rank ", w.rank(), " ",
                        w.shape());
  if (w.size(0) < 1 || w.size(1) < 1)
    cinch::detail::fail(errc::invalid_argument, fn, name, " must not be empty, got ", w.shape());
  const auto m = w.as<const float, 2>();
  for (std::int64_t i = 0; i < m.shape[0]; ++i)
    for (std::int64_t j = 0; j < m.shape[1]; ++j)
      if (!std::isfinite(m.data[i * m.strides[0] + j * m.strides[1]]))
        cinch::detail::fail(errc::invalid_argument, fn, name, " must be finite, got ",
                            std::isnan(m.data[i * m.strides[0] + j * m.strides[1]]) ? "NaN" : "inf", " at [", i, ", ",
                            j, "]");
}

matd to_matd(const tensor_view& w) {
  const auto m = w.as<const float, 2>();
  matd out(m.shape[0], m.shape[1]);
  for (std::int64_t j = 0; j < m.shape[1]; ++j)
    for (std::int64_t i = 0; i < m.shape[0]; ++i) out(i, j) = m.data[i * m.strides[0] + j * m.strides[1]];
  return out;
}

tensor to_tensor(const matd& m) {
  tensor t = tensor::empty({m.rows(), m.cols()}, dtype::f32);
  float* p = t.data<float>();
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) p[i * m.cols() + j] = static_cast<float>(m(i, j));
  return t;
}

void check_svd_request(std::string_view fn, std::int64_t m, std::int64_t n, std::int64_t k, const svd_options& o) {
  const std::int64_t limit = std::min(m, n);
  if (k < 1 || k > limit)
    cinch::detail::fail(errc::invalid_argument, fn, "rank must be in [1, min(m, n) = ", limit, "] for a ", m, " x ", n,
                        " matrix, got ", k);
  if (o.oversampling < 0)
    cinch::detail::fail(errc::invalid_argument, fn, "svd_options::oversampling must be >= 0, got ", o.oversampling);
  if (o.power_iterations < 0)
    cinch::detail::fail(errc::invalid_argument, fn, "svd_options::power_iterations must be >= 0, got ",
                        o.power_iterations);
  if (o.power_precision != svd_precision::int16 && o.power_precision != svd_precision::f32)
    cinch::detail::fail(errc::invalid_argument, fn, "svd_options::power_precision must be int16 or f32, got ",
                        static_cast<int>(o.power_precision));
}

namespace {

// Column j of u gets its largest-magnitude entry positive (the first on ties);
// column j of v flips with it.
void fix_signs(matd& u, matd& v) {
  for (Eigen::Index j = 0; j < u.cols(); ++j) {
    Eigen::Index top = 0;
    for (Eigen::Index i = 1; i < u.rows(); ++i)
      if (std::abs(u(i, j)) > std::abs(u(top, j))) top = i;
    if (u(top, j) < 0) {
      u.col(j) = -u.col(j);
      v.col(j) = -v.col(j);
    }
  }
}

svd_parts svd_exact(const matd& w, std::int64_t k) {
  const Eigen::BDCSVD<matd> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
  svd_parts p{svd.matrixU().leftCols(k), svd.singularValues().head(k), svd.matrixV().leftCols(k), svd_method::exact};
  fix_signs(p.u, p.v);
  return p;
}

// Standard normal samples from a counter-based generator (splitmix64) and
// Box-Muller, so a seed gives the same sketch with every standard library.
class normal_stream {
 public:
  explicit normal_stream(std::uint64_t seed) : state_(seed) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (double(bits() >> 11) + 1.0) * 0x1p-53;  // (0, 1]: log is finite
    const double u2 = double(bits() >> 11) * 0x1p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * std::numbers::pi * u2;
    spare_ = float(radius * std::sin(angle));
    has_spare_ = true;
    return float(radius * std::cos(angle));
  }

 private:
  std::uint64_t bits() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
  float spare_ = 0;
  bool has_spare_ = false;
};

// Both products of a Cholesky QR pass skip what is known: the Gram matrix runs in
// blocks of triangle_block rows of its upper triangle (the rest is their mirror),
// and Y R^-1 in blocks of columns, each over the rows of R^-1 above its diagonal.
// At 266 columns that is 62 % of the multiply-adds of the full products.
constexpr std::int64_t triangle_block = 64;

// g (upper triangle and the diagonal blocks) = y^T y
void upper_gram(const matf_rows& y, matf_rows& g) {
  const std::int64_t l = y.cols();
  for (std::int64_t i0 = 0; i0 < l; i0 += triangle_block) {
    const std::int64_t rows = std::min(triangle_block, l - i0);
    const strided_matrix<const float> left{y.data() + i0, std::int64_t(y.rows()), rows, l, 1};
    const strided_matrix<const float> right{y.data() + i0, std::int64_t(y.rows()), l - i0, l, 1};
    multiply({g.data() + i0 * l + i0, rows, l - i0, l, 1}, left.t(), right);
  }
}

// q = y u for an upper triangular u
void times_upper(const matf_rows& y, const matf_rows& u, matf_rows& q) {
  const std::int64_t l = y.cols(), m = y.rows();
  for (std::int64_t j0 = 0; j0 < l; j0 += triangle_block) {
    const std::int64_t cols = std::min(triangle_block, l - j0), depth = j0 + cols;
    multiply({q.data() + j0, m, cols, l, 1}, {y.data(), m, depth, l, 1}, {u.data() + j0, depth, cols, l, 1});
  }
}

// Cholesky QR: the Gram matrix Y^T Y (f32 GEMM) is factored in double, R^T R = G,
// and Y becomes Y R^-1. Returns false, leaving y alone, when G is not safely
// positive definite: a pivot ratio below 2^-10 means cond(Y) near 1 / sqrt(u_f32),
// where the f32 Gram matrix has lost the small directions.
bool cholesky_qr_pass(matf_rows& y, matd& r) {
  const std::int64_t l = y.cols();
  matf_rows g(l, l);
  upper_gram(y, g);
  const matd gd = g.cast<double>().selfadjointView<Eigen::Upper>();
  const Eigen::LLT<matd> llt(gd);
  if (llt.info() != Eigen::Success) return false;
  const matd upper = llt.matrixU();
  const vecd diag = upper.diagonal();
  if (!(diag.minCoeff() > 0x1p-10 * diag.maxCoeff())) return false;
  const matf_rows inverse = upper.triangularView<Eigen::Upper>().solve(matd::Identity(l, l)).cast<float>();
  matf_rows q(y.rows(), l);
  times_upper(y, inverse, q);
  y.swap(q);
  r = upper;
  return true;
}

// Makes the columns of y orthonormal in place with `passes` Cholesky QR passes
// (Householder QR when a pass declines) and returns R with y_before = y R.
matd orthonormalize(matf_rows& y, int passes) {
  const Eigen::Index l = y.cols();
  matd r;  // the product of the passes' factors; the first pass's alone needs no product
  for (int pass = 0; pass < passes; ++pass) {
    matd step;
    const bool householder = !cholesky_qr_pass(y, step);
    if (householder) {
      const Eigen::HouseholderQR<matf_rows> qr(y);
      step = qr.matrixQR().topRows(l).triangularView<Eigen::Upper>().toDenseMatrix().cast<double>();
      y = qr.householderQ() * matf_rows::Identity(y.rows(), l);
    }
    r = pass == 0 ? std::move(step) : matd(step * r);
    if (householder) break;
  }
  return r;
}

// dst = src^T for a row-major m x n src, in tiles of 32 x 32 (fixed-size tiles
// vectorize; 3x faster than tiles of 64 with variable bounds).
void transpose(const std::int16_t* src, std::int64_t m, std::int64_t n, std::int16_t* dst) {
  constexpr std::int64_t tile = 32;
  for (std::int64_t i0 = 0; i0 < m; i0 += tile)
    for (std::int64_t j0 = 0; j0 < n; j0 += tile) {
      const std::int64_t i1 = std::min(m, i0 + tile), j1 = std::min(n, j0 + tile);
      if (i1 - i0 == tile && j1 - j0 == tile) {
        for (std::int64_t j = 0; j < tile; ++j)
          for (std::int64_t i = 0; i < tile; ++i) dst[(j0 + j) * m + i0 + i] = src[(i0 + i) * n + j0 + j];
      } else {
        for (std::int64_t j = j0; j < j1; ++j)
          for (std::int64_t i = i0; i < i1; ++i) dst[j * m + i] = src[i * n + j];
      }
    }
}

// The range finder's products y = W x and z = W^T x, in f32 on W in place or on
// int16 codes: W ~ diag(s) Wq with one scale per row, kept as Wq and Wq^T (both
// row-major, so the kernel reads them in place). W x = diag(s) Wq x, with x coded
// per column; W^T x = Wq^T (diag(s) x), with diag(s) x coded per column.
class range_products {
 public:
  range_products(strided_matrix<const float> w, svd_precision precision, std::int64_t l)
      : w_(w), int16_(precision == svd_precision::int16) {
    if (!int16_) return;
    const std::int64_t m = w.rows, n = w.cols;
    const auto& kernels = cinch::detail::active_lowrank_kernels();
    codes_.reset(new std::int16_t[std::size_t(m * n)]);  // not zeroed: every code is written
    scale_.resize(std::size_t(m));
    if (w.cs == 1) {
      kernels.quantize_rows_i16(m, n, w.data, w.rs, codes_.get(), n, scale_.data());
    } else {
      std::vector<float> row(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) row[std::size_t(j)] = w.data[i * w.rs + j * w.cs];
        kernels.quantize_rows_i16(1, n, row.data(), n, codes_.get() + i * n, n, scale_.data() + i);
      }
    }
    transposed_codes_.reset(new std::int16_t[std::size_t(m * n)]);
    transpose(codes_.get(), m, n, transposed_codes_.get());
    ones_.assign(std::size_t(n), 1.0f);
    x_codes_.resize(std::size_t(std::max(m, n) * l));
    x_scale_.resize(std::size_t(l));
  }

  // out = W x
  void times(matf_rows& out, const matf_rows& x) {
    if (!int16_) return multiply(as_strided(out), w_, as_strided(x));
    code_columns(x, nullptr);
    multiply_i16(as_strided(out), {codes_.get(), w_.rows, w_.cols, w_.cols, 1}, x_codes_of(x), scale_.data(),
                 x_scale_.data());
  }
  // out = W^T x
  void transposed_times(matf_rows& out, const matf_rows& x) {
    if (!int16_) return multiply(as_strided(out), w_.t(), as_strided(x));
    code_columns(x, scale_.data());
    multiply_i16(as_strided(out), {transposed_codes_.get(), w_.cols, w_.rows, w_.rows, 1}, x_codes_of(x),
                 ones_.data(), x_scale_.data());
  }

 private:
  void code_columns(const matf_rows& x, const float* weight) {
    cinch::detail::active_lowrank_kernels().quantize_columns_i16(x.rows(), x.cols(), x.data(), x.cols(), weight,
                                                                  x_codes_.data(), x.cols(), x_scale_.data());
  }
  strided_matrix<const std::int16_t> x_codes_of(const matf_rows& x) const {
    return {x_codes_.data(), std::int64_t(x.rows()), std::int64_t(x.cols()), std::int64_t(x.cols()), 1};
  }

  strided_matrix<const float> w_;
  bool int16_;
  std::unique_ptr<std::int16_t[]> codes_, transposed_codes_;
  std::vector<std::int16_t> x_codes_;
  std::vector<float> scale_, ones_, x_scale_;
};

// w is read in place through its strides: the GEMM takes any.
svd_parts svd_randomized(strided_matrix<const float> w, std::int64_t k, const svd_options& o) {
  const std::int64_t m = w.rows, n = w.cols;
  const std::int64_t l = std::min(k + o.oversampling, std::min(m, n));
  const auto wt = w.t();
  matf_rows omega(n, l);
  normal_stream normal(o.seed);
  for (Eigen::Index i = 0; i < omega.size(); ++i) omega.data()[i] = normal.next();

  range_products range(w, o.power_precision, l);
  matf_rows y(m, l), z(n, l);
  range.times(y, omega);
  orthonormalize(y, 1);
  for (int it = 0; it < o.power_iterations; ++it) {
    range.transposed_times(z, y);
    orthonormalize(z, 1);
    range.times(y, z);
    orthonormalize(y, 1);
  }
  orthonormalize(y, 1);  // a second pass: Q must be orthonormal to working precision

  // B = Q^T W, taken as B^T = W^T Q = Qb R; with R = Ur S Vr^T, W ~ Q B = (Q Vr) S (Qb Ur)^T.
  multiply(as_strided(z), wt, as_strided(std::as_const(y)));
  const matd r = orthonormalize(z, 2);
  const Eigen::BDCSVD<matd> small(r, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const matf_rows vr = small.matrixV().leftCols(k).cast<float>(), ur = small.matrixU().leftCols(k).cast<float>();
  matf_rows u(m, k), v(n, k);
  multiply(as_strided(u), as_strided(std::as_const(y)), as_strided(vr));
  multiply(as_strided(v), as_strided(std::as_const(z)), as_strided(ur));
  svd_parts p{u.cast<double>(), small.singularValues().head(k), v.cast<double>(), svd_method::randomized};
  fix_signs(p.u, p.v);
  return p;
}

}  // namespace

svd_parts svd_of(std::string_view fn, const matd& w, std::int64_t k, const svd_options& options) {
  check_svd_request(fn, w.rows(), w.cols(), k, options);
  if (choose_svd_method(w.rows(), w.cols(), k, options) == svd_method::randomized) {
    const matf_rows f = w.cast<float>();
    return svd_randomized(as_strided(f), k, options);
  }
  return svd_exact(w, k);
}

svd_parts svd_of(std::string_view fn, const tensor_view& w, std::int64_t k, const svd_options& options) {
  check_svd_request(fn, w.size(0), w.size(1), k, options);
  if (choose_svd_method(w.size(0), w.size(1), k, options) == svd_method::randomized)
    return svd_randomized({static_cast<const float*>(w.data()), w.size(0), w.size(1), w.stride(0), w.stride(1)}, k,
                          options);
  return svd_exact(to_matd(w), k);
}

vecd all_singular_values(const matd& w) { return Eigen::BDCSVD<matd>(w).singularValues(); }

}  // namespace detail

svd_method choose_svd_method(std::int64_t m, std::int64_t n, std::int64_t k, const svd_options& options) {
  if (options.method != svd_method::automatic) return options.method;
  const std::int64_t small = std::min(m, n);
  if (small <= 256 || 2 * (k + options.oversampling) > small) return svd_method::exact;
  return svd_method::randomized;
}

svd_result truncated_svd(const tensor_view& w, std::int64_t k, const svd_options& options) {
  constexpr std::string_view fn = "lowrank::truncated_svd";
  detail::check_matrix(fn, "w", w);
  const detail::svd_parts p = detail::svd_of(fn, w, k, options);
  return {detail::to_tensor(p.u), std::vector<double>(p.s.data(), p.s.data() + p.s.size()),
          detail::to_tensor(p.v.transpose()), p.method};
}

std::vector<double> singular_values(const tensor_view& w) {
  detail::check_matrix("lowrank::singular_values", "w", w);
  const detail::vecd s = detail::all_singular_values(detail::to_matd(w));
  return {s.data(), s.data() + s.size()};
}

}  // namespace cinch::lowrank
