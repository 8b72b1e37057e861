// lowrank::calibration: streaming Gram matrices in double on the lowrank GEMM.
#include <algorithm>
#include <cmath>

#include "cinch/detail/checks.hpp"
#include "cinch/lowrank/calibration.hpp"
#include "lowrank_multiply.hpp"

namespace cinch::lowrank {
namespace {

constexpr std::string_view add_fn = "lowrank::calibration::add";
// Tokens converted to double per GEMM: bounds the scratch at chunk x width doubles.
constexpr std::int64_t chunk_tokens = 256;

void check_batch(const tensor_view& x, std::string_view name, std::int64_t width) {
  cinch::detail::check_device(add_fn, name, x, cpu_device);
  cinch::detail::check_dtype(add_fn, name, x, dtype::f32);
  if (x.rank() < 1 || x.size(-1) != width)
    cinch::detail::fail(errc::shape_mismatch, add_fn, name, " must have width ", width,
                        " (its last dimension), got ", x.shape());
}

// Element c of row r of x (rows: every dimension but the last, in order).
struct row_reader {
  const float* data;
  std::int64_t outer_shape[max_rank], outer_strides[max_rank];
  int outer_rank;
  std::int64_t col_stride;

  explicit row_reader(const tensor_view& x)
      : data(static_cast<const float*>(x.data())), outer_rank(x.rank() - 1), col_stride(x.stride(-1)) {
    for (int d = 0; d < outer_rank; ++d) {
      outer_shape[d] = x.size(d);
      outer_strides[d] = x.stride(d);
    }
  }
  const float* row(std::int64_t r) const {
    std::int64_t offset = 0;
    for (int d = outer_rank - 1; d >= 0; --d) {
      offset += (r % outer_shape[d]) * outer_strides[d];
      r /= outer_shape[d];
    }
    return data + offset;
  }
};

void check_finite(const tensor_view& x, std::string_view name, std::int64_t rows, std::int64_t width) {
  const row_reader reader(x);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* p = reader.row(r);
    for (std::int64_t c = 0; c < width; ++c)
      if (!std::isfinite(p[c * reader.col_stride]))
        cinch::detail::fail(errc::invalid_argument, add_fn, name, " must be finite, got ",
                            std::isnan(p[c * reader.col_stride]) ? "NaN" : "inf", " in row ", r, " column ", c);
  }
}

void to_double(const row_reader& reader, std::int64_t first, std::int64_t rows, std::int64_t width, double* out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* p = reader.row(first + r);
    for (std::int64_t c = 0; c < width; ++c) out[r * width + c] = p[c * reader.col_stride];
  }
}

}  // namespace

calibration::calibration(std::int64_t width, bool with_reference) : width_(width) {
  if (width < 1) cinch::detail::fail(errc::invalid_argument, "lowrank::calibration", "width must be >= 1, got ", width);
  gram_.assign(std::size_t(width * width), 0.0);
  if (with_reference) cross_.assign(std::size_t(width * width), 0.0);
  abs_sum_.assign(std::size_t(width), 0.0);
  abs_max_.assign(std::size_t(width), 0.0);
}

void calibration::add(const tensor_view& x) {
  if (with_reference())
    cinch::detail::fail(errc::invalid_argument, add_fn,
                        "this calibration was made with_reference: add (x, x_reference) pairs");
  accumulate(x, nullptr);
}

void calibration::add(const tensor_view& x, const tensor_view& x_reference) {
  if (!with_reference())
    cinch::detail::fail(errc::invalid_argument, add_fn,
                        "this calibration has no reference: construct it with_reference to add pairs");
  accumulate(x, &x_reference);
}

void calibration::accumulate(const tensor_view& x, const tensor_view* x_reference) {
  check_batch(x, "x", width_);
  const std::int64_t rows = x.numel() / width_;
  check_finite(x, "x", rows, width_);
  if (x_reference) {
    check_batch(*x_reference, "x_reference", width_);
    if (!std::equal(x.shape().begin(), x.shape().end(), x_reference->shape().begin(), x_reference->shape().end()))
      cinch::detail::fail(errc::shape_mismatch, add_fn, "x_reference must have the shape of x ", x.shape(), ", got ",
                          x_reference->shape());
    check_finite(*x_reference, "x_reference", rows, width_);
  }
  if (rows == 0) return;

  const row_reader reader(x);
  const std::int64_t chunk = std::min(rows, chunk_tokens);
  std::vector<double> xd(std::size_t(chunk * width_)), xr(x_reference ? xd.size() : 0);
  using detail::strided_matrix;
  const strided_matrix<double> gram{gram_.data(), width_, width_, width_, 1};
  for (std::int64_t first = 0; first < rows; first += chunk) {
    const std::int64_t n = std::min(chunk, rows - first);
    to_double(reader, first, n, width_, xd.data());
    const strided_matrix<const double> batch{xd.data(), n, width_, width_, 1};
    detail::multiply(gram, batch.t(), batch, true);
    if (x_reference) {
      to_double(row_reader(*x_reference), first, n, width_, xr.data());
      const strided_matrix<const double> reference{xr.data(), n, width_, width_, 1};
      detail::multiply(strided_matrix<double>{cross_.data(), width_, width_, width_, 1}, reference.t(), batch, true);
    }
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t c = 0; c < width_; ++c) {
        const double a = std::abs(xd[std::size_t(r * width_ + c)]);
        abs_sum_[std::size_t(c)] += a;
        abs_max_[std::size_t(c)] = std::max(abs_max_[std::size_t(c)], a);
      }
  }
  tokens_ += rows;
}

void calibration::merge(const calibration& other) {
  constexpr std::string_view fn = "lowrank::calibration::merge";
  if (other.width_ != width_)
    cinch::detail::fail(errc::shape_mismatch, fn, "other must have width ", width_, ", got ", other.width_);
  if (other.with_reference() != with_reference())
    cinch::detail::fail(errc::invalid_argument, fn, "other must ", with_reference() ? "" : "not ",
                        "carry a reference like this calibration");
  for (std::size_t i = 0; i < gram_.size(); ++i) gram_[i] += other.gram_[i];
  for (std::size_t i = 0; i < cross_.size(); ++i) cross_[i] += other.cross_[i];
  for (std::size_t i = 0; i < abs_sum_.size(); ++i) {
    abs_sum_[i] += other.abs_sum_[i];
    abs_max_[i] = std::max(abs_max_[i], other.abs_max_[i]);
  }
  tokens_ += other.tokens_;
}

std::vector<double> calibration::mean_abs() const {
  std::vector<double> m(abs_sum_.size(), 0.0);
  if (tokens_ > 0)
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = abs_sum_[i] / double(tokens_);
  return m;
}

}  // namespace cinch::lowrank
