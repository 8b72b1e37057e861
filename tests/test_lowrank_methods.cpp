// Activation-aware compression: streaming calibration statistics against a
// one-shot double computation (every CPU target), the SVD-LLM identity (output
// error = discarded whitened singular values) for both square roots, the published
// ordering SVD > ASVD > SVD-LLM in output error on outlier activations (also on
// held-out tokens), FWSVD's weighted optimum, the closed-form update, EoRA, the
// Cholesky fallback, and bad input.
#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/lowrank/methods.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "lowrank_test_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::lowrank;
using namespace lowrank_test;

namespace {

// ||(W - A B) X^T||_F in double.
double output_error(const matrix& w, const factors& f, const matrix& x) {
  const matrix delta = difference(w, multiply(from_tensor(f.a), from_tensor(f.b)));
  return frobenius(multiply(x, transpose(delta)));
}
double output_error(const matrix& w, const matrix& approx, const matrix& x) {
  return frobenius(multiply(x, transpose(difference(w, approx))));
}

calibration calibrate(const matrix& x) {
  const std::vector<float> xf = to_f32(x);
  calibration c(x.cols);
  c.add(view_of(xf, x.rows, x.cols));
  return c;
}

// The f32 values of a double matrix, as a double matrix: what the library sees.
matrix rounded(const matrix& m) {
  matrix r = m;
  for (double& v : r.v) v = double(float(v));
  return r;
}

struct layer {
  matrix w, x;
  std::vector<float> wf;
  tensor_view view() const { return view_of(wf, w.rows, w.cols); }
};

// A 48 x 64 weight and 2000 calibration tokens with 4 outlier channels (25x).
layer outlier_layer(unsigned seed, std::int64_t tokens = 2000) {
  layer l;
  l.w = rounded(gaussian(48, 64, seed, 0.1));
  l.x = rounded(activations(tokens, 64, 4, seed + 1));
  l.wf = to_f32(l.w);
  return l;
}

}  // namespace

TEST_CASE("lowrank::calibration accumulates batches like one pass over all tokens", "[lowrank][calibration]") {
  const std::int64_t width = 37, tokens = 700;
  const matrix x = rounded(activations(tokens, width, 2, 4));
  const std::vector<float> xf = to_f32(x);
  // Reference statistics in double.
  matrix gram(width, width), magnitude(width, width);
  std::vector<double> abs_sum(static_cast<std::size_t>(width)), abs_max(static_cast<std::size_t>(width));
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t i = 0; i < width; ++i) {
      abs_sum[std::size_t(i)] += std::abs(x(t, i));
      abs_max[std::size_t(i)] = std::max(abs_max[std::size_t(i)], std::abs(x(t, i)));
      for (std::int64_t j = 0; j < width; ++j) {
        gram(i, j) += x(t, i) * x(t, j);
        magnitude(i, j) += std::abs(x(t, i) * x(t, j));
      }
    }
  auto check = [&](const calibration& c) {
    CHECK(c.tokens() == tokens);
    CHECK(c.width() == width);
    const double u = std::ldexp(1.0, -53), gamma = double(tokens) * u / (1 - double(tokens) * u);
    for (std::int64_t i = 0; i < width; ++i) {
      CHECK(c.abs_sum()[std::size_t(i)] == Approx(abs_sum[std::size_t(i)]).epsilon(1e-12));
      CHECK(c.abs_max()[std::size_t(i)] == abs_max[std::size_t(i)]);
      CHECK(c.mean_abs()[std::size_t(i)] == Approx(abs_sum[std::size_t(i)] / double(tokens)).epsilon(1e-12));
      for (std::int64_t j = 0; j < width; ++j) {
        REQUIRE(std::abs(c.gram()[std::size_t(i * width + j)] - gram(i, j)) <= 2 * gamma * magnitude(i, j));
        REQUIRE(c.gram()[std::size_t(i * width + j)] == c.gram()[std::size_t(j * width + i)]);  // exactly symmetric
      }
    }
  };
  // Batches of 1, 299 (one token past a GEMM block) and 400 tokens, the last one as a
  // [4, 100, width] tensor, and the whole batch once as a strided (transposed) view.
  auto batched = [&] {
    calibration c(width);
    c.add(tensor_view(xf.data(), dtype::f32, {1, width}));
    c.add(tensor_view(xf.data() + width, dtype::f32, {299, width}));
    c.add(tensor_view(xf.data() + 300 * width, dtype::f32, {4, 100, width}));
    return c;
  };
  check(batched());
  std::vector<float> transposed(xf.size());
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t i = 0; i < width; ++i) transposed[std::size_t(i * tokens + t)] = xf[std::size_t(t * width + i)];
  calibration strided(width);
  strided.add(view_of(transposed, width, tokens).permute({1, 0}));
  check(strided);
  // Two shards merged.
  calibration first(width), second(width);
  first.add(tensor_view(xf.data(), dtype::f32, {250, width}));
  second.add(tensor_view(xf.data() + 250 * width, dtype::f32, {450, width}));
  first.merge(second);
  check(first);
  // The reference backend and every CPU target.
  cinch::force_backend(cinch::backend_kind::ref);
  check(batched());
  cinch::force_backend(std::nullopt);
  for_each_cpu_target([&](const std::string&) { check(batched()); });
}

TEST_CASE("lowrank::compress_svd_llm: output error equals the discarded whitened singular values",
          "[lowrank][methods]") {
  const layer l = outlier_layer(40);
  const calibration stats = calibrate(l.x);
  for (whitening root : {whitening::cholesky, whitening::eigen}) {
    const std::vector<double> sigma = whitened_singular_values(l.view(), stats, {root});
    REQUIRE(sigma.size() == 48);
    for (std::int64_t rank : {1, 8, 24, 47}) {
      INFO("root " << int(root) << " rank " << rank);
      const factors f = compress_svd_llm(l.view(), rank, stats, {root}, {.method = svd_method::exact});
      REQUIRE(f.rows() == 48);
      REQUIRE(f.rank() == rank);
      REQUIRE(f.cols() == 64);
      const double predicted = tail_norm(sigma, std::size_t(rank));
      CHECK(output_error(l.w, f, l.x) == Approx(predicted).epsilon(1e-6));
    }
  }
  // Any square root of the Gram matrix gives the same spectrum.
  const std::vector<double> a = whitened_singular_values(l.view(), stats, {whitening::cholesky});
  const std::vector<double> b = whitened_singular_values(l.view(), stats, {whitening::eigen});
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-9));
}

TEST_CASE("lowrank: on outlier activations SVD > ASVD > SVD-LLM in output error", "[lowrank][methods]") {
  const layer l = outlier_layer(50);
  const calibration stats = calibrate(l.x);
  const matrix held_out = rounded(activations(1500, 64, 4, 51));  // same channels, new tokens
  for (std::int64_t rank : {8, 16, 32}) {
    INFO("rank " << rank);
    const factors svd = compress_svd(l.view(), rank);
    const factors asvd = compress_asvd(l.view(), rank, stats);
    const factors llm = compress_svd_llm(l.view(), rank, stats);
    for (const matrix* x : {&l.x, &held_out}) {
      const double e_svd = output_error(l.w, svd, *x), e_asvd = output_error(l.w, asvd, *x),
                   e_llm = output_error(l.w, llm, *x);
      INFO("svd " << e_svd << " asvd " << e_asvd << " svd-llm " << e_llm);
      CHECK(e_asvd < 0.8 * e_svd);
      CHECK(e_llm < e_asvd);
    }
    // alpha = 0 scales nothing: plain SVD.
    const factors flat = compress_asvd(l.view(), rank, stats, {.alpha = 0.0});
    CHECK(output_error(l.w, flat, l.x) == Approx(output_error(l.w, svd, l.x)).epsilon(1e-6));
  }
}

TEST_CASE("lowrank::compress_fwsvd is optimal in its Fisher-weighted norm", "[lowrank][methods]") {
  const matrix w = rounded(gaussian(30, 40, 60));
  const std::vector<float> wf = to_f32(w);
  matrix fisher = rounded(gaussian(30, 40, 61));
  std::vector<double> importance(40);
  for (std::int64_t i = 0; i < 30; ++i)
    for (std::int64_t j = 0; j < 40; ++j) {
      fisher(i, j) = double(float(fisher(i, j) * fisher(i, j) * (j % 7 == 0 ? 50.0 : 1.0)));
      importance[std::size_t(j)] += fisher(i, j);
    }
  const std::vector<float> ff = to_f32(fisher);
  std::vector<float> summed(importance.begin(), importance.end());
  // Weighted norm ||(W - W') D||_F with d_j = sqrt(sum_i I_ij), in double.
  auto weighted = [&](const factors& f) {
    matrix delta = difference(w, multiply(from_tensor(f.a), from_tensor(f.b)));
    for (std::int64_t i = 0; i < 30; ++i)
      for (std::int64_t j = 0; j < 40; ++j) delta(i, j) *= std::sqrt(double(summed[std::size_t(j)]));
    return frobenius(delta);
  };
  matrix wd = w;
  for (std::int64_t i = 0; i < 30; ++i)
    for (std::int64_t j = 0; j < 40; ++j) wd(i, j) *= std::sqrt(double(summed[std::size_t(j)]));
  const std::vector<float> wdf = to_f32(wd);
  const std::vector<double> sigma = singular_values(view_of(wdf, 30, 40));
  for (std::int64_t rank : {3, 12}) {
    const factors per_weight = compress_fwsvd(view_of(wf, 30, 40), rank, view_of(ff, 30, 40));
    const factors per_channel = compress_fwsvd(view_of(wf, 30, 40), rank, tensor_view(summed.data(), dtype::f32, {40}));
    CHECK(weighted(per_weight) == Approx(tail_norm(sigma, std::size_t(rank))).epsilon(1e-5));
    CHECK(weighted(per_channel) == Approx(weighted(per_weight)).epsilon(1e-6));
    CHECK(weighted(per_weight) < weighted(compress_svd(view_of(wf, 30, 40), rank)));
  }
}

TEST_CASE("lowrank::update_left solves the least-squares problem for A", "[lowrank][methods]") {
  const layer l = outlier_layer(70);
  const calibration stats = calibrate(l.x);
  const std::int64_t rank = 12;
  // Plain SVD factors ignore the data: the update must lower the output error.
  const factors svd = compress_svd(l.view(), rank);
  const factors updated = update_left(l.view(), svd, stats);
  CHECK(updated.b.data() == svd.b.data());  // B is kept
  CHECK(output_error(l.w, updated, l.x) < 0.5 * output_error(l.w, svd, l.x));
  // SVD-LLM's factors are already optimal: A is a fixed point.
  const factors llm = compress_svd_llm(l.view(), rank, stats);
  const factors again = update_left(l.view(), llm, stats);
  CHECK(output_error(l.w, again, l.x) == Approx(output_error(l.w, llm, l.x)).epsilon(1e-6));

  // With a reference: the compressed model feeds X = X_ref + noise; the update fits
  // X B^T A^T to X_ref W^T. At the optimum the gradient P^T (P A^T - Y) vanishes.
  matrix noisy = l.x;
  const matrix noise = gaussian(l.x.rows, l.x.cols, 71, 0.3);
  for (std::size_t i = 0; i < noisy.v.size(); ++i) noisy.v[i] = double(float(noisy.v[i] + noise.v[i]));
  const std::vector<float> xf = to_f32(noisy), rf = to_f32(l.x);
  calibration paired(64, true);
  paired.add(view_of(xf, l.x.rows, 64), view_of(rf, l.x.rows, 64));
  const factors fit = update_left(l.view(), llm, paired);
  const matrix p = multiply(noisy, transpose(from_tensor(fit.b)));  // X B^T
  const matrix y = multiply(l.x, transpose(l.w));                   // X_ref W^T
  const matrix residual = difference(multiply(p, transpose(from_tensor(fit.a))), y);
  const matrix gradient = multiply(transpose(p), residual);
  CHECK(frobenius(gradient) <= 1e-5 * frobenius(multiply(transpose(p), y)));
  auto paired_error = [&](const factors& f) {
    return frobenius(difference(multiply(multiply(noisy, transpose(from_tensor(f.b))), transpose(from_tensor(f.a))), y));
  };
  CHECK(paired_error(fit) < paired_error(llm));
}

TEST_CASE("lowrank::compress_eora compensates a compressor's residual in the activation eigenspace",
          "[lowrank][methods]") {
  const layer l = outlier_layer(80);
  const calibration stats = calibrate(l.x);
  // W_c: every row rounded to 8 levels of its absmax (a crude 3-bit quantizer).
  matrix wc = l.w;
  for (std::int64_t i = 0; i < wc.rows; ++i) {
    double top = 0;
    for (std::int64_t j = 0; j < wc.cols; ++j) top = std::max(top, std::abs(wc(i, j)));
    for (std::int64_t j = 0; j < wc.cols; ++j) wc(i, j) = double(float(std::round(wc(i, j) / top * 3.5) / 3.5 * top));
  }
  const std::vector<float> wcf = to_f32(wc);
  const tensor_view wcv = view_of(wcf, 48, 64);
  const double uncompensated = output_error(l.w, wc, l.x);
  matrix residual = difference(l.w, wc);
  const std::vector<float> rf = to_f32(residual);
  for (std::int64_t rank : {4, 16}) {
    INFO("rank " << rank);
    const factors eora = compress_eora(l.view(), wcv, rank, stats);
    const factors plain = compress_svd(view_of(rf, 48, 64), rank);
    auto error_with = [&](const factors& f) {
      matrix total = wc;
      const matrix ab = multiply(from_tensor(f.a), from_tensor(f.b));
      for (std::size_t i = 0; i < total.v.size(); ++i) total.v[i] += ab.v[i];
      return output_error(l.w, total, l.x);
    };
    CHECK(error_with(eora) < 0.9 * uncompensated);
    CHECK(error_with(eora) < error_with(plain));
    // The same optimum with a Cholesky root.
    CHECK(error_with(compress_eora(l.view(), wcv, rank, stats, {whitening::cholesky})) ==
          Approx(error_with(eora)).epsilon(1e-6));
  }
}

TEST_CASE("lowrank::compress_svd_llm falls back when the Gram matrix is singular", "[lowrank][methods]") {
  layer l = outlier_layer(90);
  for (std::int64_t t = 0; t < l.x.rows; ++t) l.x(t, 5) = 0.0;  // a dead channel: G has a zero row
  const calibration stats = calibrate(l.x);
  for (std::int64_t rank : {8, 24}) {
    const factors chol = compress_svd_llm(l.view(), rank, stats, {whitening::cholesky});
    const factors eig = compress_svd_llm(l.view(), rank, stats, {whitening::eigen});
    for (const factors* f : {&chol, &eig}) {
      const matrix a = from_tensor(f->a), b = from_tensor(f->b);
      for (double v : a.v) REQUIRE(std::isfinite(v));
      for (double v : b.v) REQUIRE(std::isfinite(v));
    }
    // Both repairs stay within a hair of the data's optimum (W restricted to the live channels).
    const std::vector<double> sigma = whitened_singular_values(l.view(), stats, {whitening::eigen});
    CHECK(output_error(l.w, chol, l.x) <= 1.001 * tail_norm(sigma, std::size_t(rank)));
    CHECK(output_error(l.w, eig, l.x) <= 1.001 * tail_norm(sigma, std::size_t(rank)));
  }
}

TEST_CASE("lowrank methods and calibration reject bad input", "[lowrank][methods][errors]") {
  const layer l = outlier_layer(100, 50);
  const calibration stats = calibrate(l.x);
  const calibration narrow = calibrate(rounded(gaussian(10, 32, 3)));
  const calibration empty(64);
  std::vector<float> x(10 * 64, 1.0f);

  require_error([] { calibration c(0); }, errc::invalid_argument, {"lowrank::calibration", "width must be >= 1, got 0"});
  calibration c(64);
  require_error([&] { c.add(view_of(x, 20, 32)); }, errc::shape_mismatch,
                {"lowrank::calibration::add", "x must have width 64 (its last dimension), got [20, 32]"});
  std::vector<float> bad = x;
  bad[70] = std::numeric_limits<float>::infinity();
  require_error([&] { c.add(view_of(bad, 10, 64)); }, errc::invalid_argument,
                {"x must be finite, got inf in row 1 column 6"});
  CHECK(c.tokens() == 0);  // nothing was added by the failed calls
  std::vector<std::uint16_t> half(640);
  require_error([&] { c.add(tensor_view(half.data(), dtype::f16, {10, 64})); }, errc::invalid_argument,
                {"x must have dtype f32, got f16"});
  require_error([&] { c.add(view_of(x, 10, 64), view_of(x, 10, 64)); }, errc::invalid_argument,
                {"this calibration has no reference"});
  calibration paired(64, true);
  require_error([&] { paired.add(view_of(x, 10, 64)); }, errc::invalid_argument, {"add (x, x_reference) pairs"});
  require_error([&] { paired.add(view_of(x, 10, 64), view_of(x, 5, 64)); }, errc::shape_mismatch,
                {"x_reference must have the shape of x [10, 64], got [5, 64]"});
  require_error([&] { c.merge(calibration(32)); }, errc::shape_mismatch,
                {"lowrank::calibration::merge", "other must have width 64, got 32"});
  require_error([&] { c.merge(paired); }, errc::invalid_argument, {"other must not carry a reference"});

  require_error([&] { (void)compress_svd_llm(l.view(), 4, narrow); }, errc::shape_mismatch,
                {"lowrank::compress_svd_llm", "stats must have the width of w's columns (64), got 32"});
  require_error([&] { (void)compress_asvd(l.view(), 4, empty); }, errc::invalid_argument,
                {"lowrank::compress_asvd", "stats must hold at least one token, got 0"});
  require_error([&] { (void)compress_asvd(l.view(), 4, stats, {.alpha = -1}); }, errc::invalid_argument,
                {"asvd_options::alpha must be finite and >= 0"});
  require_error([&] { (void)compress_svd_llm(l.view(), 0, stats); }, errc::invalid_argument,
                {"lowrank::compress_svd_llm", "rank must be in [1, min(m, n) = 48]"});
  require_error([&] { (void)compress_svd(l.view(), 49); }, errc::invalid_argument,
                {"lowrank::compress_svd", "rank must be in [1, min(m, n) = 48]"});
  calibration zeros(64);
  std::vector<float> nothing(10 * 64, 0.0f);
  zeros.add(view_of(nothing, 10, 64));
  require_error([&] { (void)compress_svd_llm(l.view(), 4, zeros); }, errc::invalid_argument,
                {"stats hold no activation energy"});
  require_error([&] { (void)compress_asvd(l.view(), 4, zeros); }, errc::invalid_argument,
                {"the mean |x| of stats must have a positive entry"});

  std::vector<float> fisher(64, 1.0f);
  require_error([&] { (void)compress_fwsvd(l.view(), 4, tensor_view(fisher.data(), dtype::f32, {32})); },
                errc::shape_mismatch, {"fisher must have shape [48, 64] (per weight) or [64] (per input channel), got [32]"});
  fisher[3] = -1.0f;
  require_error([&] { (void)compress_fwsvd(l.view(), 4, tensor_view(fisher.data(), dtype::f32, {64})); },
                errc::invalid_argument, {"fisher must be finite and >= 0", "at input channel 3"});
  std::vector<float> no_fisher(64, 0.0f);
  require_error([&] { (void)compress_fwsvd(l.view(), 4, tensor_view(no_fisher.data(), dtype::f32, {64})); },
                errc::invalid_argument, {"fisher must have a positive entry"});

  std::vector<float> wrong(48 * 32, 1.0f);
  require_error([&] { (void)compress_eora(l.view(), view_of(wrong, 48, 32), 4, stats); }, errc::shape_mismatch,
                {"lowrank::compress_eora", "w_compressed must have shape [48, 64], got [48, 32]"});
  const factors f = compress_svd(l.view(), 4);
  const factors swapped{f.b, f.a};
  require_error([&] { (void)update_left(l.view(), swapped, stats); }, errc::shape_mismatch,
                {"lowrank::update_left", "factors must be a [48, r] and b [r, 64]"});
  std::vector<float> nan_w = l.wf;
  nan_w[100] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { (void)compress_svd_llm(view_of(nan_w, 48, 64), 4, stats); }, errc::invalid_argument,
                {"w must be finite, got NaN at [1, 36]"});
}
