// Checked inputs, packed rows and the threaded similarity drivers.
#include "tokens/common.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "cinch/detail/checks.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cinch::tokens::detail {

using cinch::detail::fail;

#if defined(_OPENMP)
int omp_threads() { return omp_get_max_threads(); }
#endif

namespace {

void check_host_f32(std::string_view fn, std::string_view name, const tensor_view& v) {
  cinch::detail::check_device(fn, name, v, cpu_device);
  cinch::detail::check_dtype(fn, name, v, dtype::f32);
  cinch::detail::check_rows_dense(fn, name, v);
}

// The exponent bits of NaN and inf are all ones; an integer OR over the row
// vectorizes, and the slow path names the element only when one is found.
void check_finite(std::string_view fn, std::string_view name, const float* row, std::int64_t n, std::int64_t token) {
  std::uint32_t bad = 0;
  for (std::int64_t c = 0; c < n; ++c) {
    std::uint32_t bits;
    std::memcpy(&bits, row + c, 4);
    bad |= std::uint32_t((bits & 0x7F800000u) == 0x7F800000u);
  }
  if (!bad) return;
  for (std::int64_t c = 0; c < n; ++c)
    if (!std::isfinite(row[c]))
      fail(errc::invalid_argument, fn, name, " must be finite, got ", std::isnan(row[c]) ? "nan" : "inf",
           " at token ", token, ", element ", c);
}

}  // namespace

matrix matrix_of(std::string_view fn, std::string_view name, const tensor_view& v, std::int64_t rows,
                 bool allow_frames) {
  check_host_f32(fn, name, v);
  if (v.rank() != 2 && !(allow_frames && v.rank() == 3))
    fail(errc::shape_mismatch, fn, name, allow_frames ? " must be [N, D] or [T, n, D]" : " must be [N, D]", ", got ",
         v.shape());
  matrix m;
  m.data = static_cast<const float*>(v.data());
  m.cols = v.size(-1);
  m.rows = v.rank() == 2 ? v.size(0) : v.size(0) * v.size(1);
  if (rows >= 0 && m.rows != rows)
    fail(errc::shape_mismatch, fn, name, " must have ", rows, " rows (one per token), got shape ", v.shape());
  if (m.cols < 1) fail(errc::shape_mismatch, fn, name, " must have at least one column, got shape ", v.shape());
  m.offsets.resize(std::size_t(m.rows));
  for (std::int64_t i = 0; i < m.rows; ++i)
    m.offsets[std::size_t(i)] = v.rank() == 2 ? i * v.stride(0)
                                              : (i / v.size(1)) * v.stride(0) + (i % v.size(1)) * v.stride(1);
  for (std::int64_t i = 0; i < m.rows; ++i) check_finite(fn, name, m.row(i), m.cols, i);
  return m;
}

std::vector<float> vector_of(std::string_view fn, std::string_view name, const tensor_view& v, std::int64_t n) {
  cinch::detail::check_device(fn, name, v, cpu_device);
  cinch::detail::check_dtype(fn, name, v, dtype::f32);
  if (v.rank() < 1 || v.rank() > 2 || v.numel() != n)
    fail(errc::shape_mismatch, fn, name, " must hold one value per token ([", n, "] or [T, ", "n]), got shape ",
         v.shape());
  std::vector<float> out(static_cast<std::size_t>(n));
  const auto* p = static_cast<const float*>(v.data());
  const std::int64_t inner = v.size(-1);
  for (std::int64_t i = 0; i < n; ++i)
    out[std::size_t(i)] = v.rank() == 1 ? p[i * v.stride(0)] : p[(i / inner) * v.stride(0) + (i % inner) * v.stride(1)];
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(out[std::size_t(i)]))
      fail(errc::invalid_argument, fn, name, " must be finite, got ", std::isnan(out[std::size_t(i)]) ? "nan" : "inf",
           " at token ", i);
  return out;
}

std::int64_t token_count(std::string_view fn, const inputs& in) {
  std::int64_t n = -1;
  const char* from = "";
  auto rows = [](const tensor_view& v) { return v.rank() == 3 ? v.size(0) * v.size(1) : v.size(0); };
  if (in.features.rank() > 0) {
    n = rows(in.features);
    from = "features";
  } else if (in.keys.rank() > 0) {
    n = rows(in.keys);
    from = "keys";
  } else if (in.cls_attention.rank() > 0) {
    n = in.cls_attention.numel();
    from = "cls_attention";
  } else if (in.text_attention.rank() == 2) {
    n = in.text_attention.size(1);
    from = "text_attention";
  }
  if (n < 0) fail(errc::invalid_argument, fn, "inputs must hold features, keys or attention scores, got none");
  if (n == 0) fail(errc::invalid_argument, fn, "inputs must hold at least one token, got 0 in ", from);
  return n;
}

matrix metric_of(std::string_view fn, const inputs& in, std::int64_t n) {
  if (in.keys.rank() > 0) return matrix_of(fn, "keys", in.keys, n);
  if (in.features.rank() == 0)
    fail(errc::invalid_argument, fn, "needs features or keys to compare tokens, got neither");
  return matrix_of(fn, "features", in.features, n);
}

std::vector<float> scores_of(std::string_view fn, const inputs& in, std::int64_t n) {
  if (in.cls_attention.rank() > 0) return vector_of(fn, "cls_attention", in.cls_attention, n);
  if (in.text_attention.rank() == 0)
    fail(errc::invalid_argument, fn, "needs cls_attention or text_attention to rank tokens, got neither");
  const matrix rows = matrix_of(fn, "text_attention", in.text_attention, -1, false);
  if (rows.cols != n)
    fail(errc::shape_mismatch, fn, "text_attention must be [R, ", n, "] (one column per token), got ",
         in.text_attention.shape());
  std::vector<float> mean(static_cast<std::size_t>(n), 0.0f);
  for (std::int64_t r = 0; r < rows.rows; ++r)
    for (std::int64_t j = 0; j < n; ++j) mean[std::size_t(j)] += rows.row(r)[j];
  for (float& v : mean) v /= float(rows.rows);
  return mean;
}

std::int64_t checked_budget(std::string_view fn, std::int64_t keep, std::int64_t n) {
  if (keep < 1) fail(errc::invalid_argument, fn, "keep must be >= 1 token, got ", keep);
  return keep < n ? keep : n;
}

grid checked_grid(std::string_view fn, const grid& g, std::int64_t n, bool required) {
  if (g.empty()) {
    if (required) fail(errc::invalid_argument, fn, "needs the token grid (inputs.shape), got none");
    return g;
  }
  if (g.frames < 1 || g.height < 1 || g.width < 1)
    fail(errc::invalid_argument, fn, "grid extents must be >= 1, got ", g.frames, " x ", g.height, " x ", g.width);
  if (g.tokens() != n)
    fail(errc::shape_mismatch, fn, "grid ", g.frames, " x ", g.height, " x ", g.width, " must hold the ", n,
         " tokens, got ", g.tokens());
  return g;
}

floats::floats(std::int64_t count) : storage_(tensor::empty({count > 0 ? count : 1}, dtype::f32)) {}

packed::packed(const cinch::detail::token_kernels& k, const matrix& m, std::span<const std::int64_t> rows, bool norms)
    : k_(&k),
      n_(rows.empty() ? m.rows : std::int64_t(rows.size())),
      d_(m.cols),
      panels_(k.packed_rows(n_) * d_),
      inv_(norms ? std::size_t(k.packed_rows(n_)) : 0) {
  std::vector<std::int64_t> offsets;
  const std::int64_t* off = m.offsets.data();
  if (!rows.empty()) {
    offsets.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) offsets[i] = m.offsets[std::size_t(rows[i])];
    off = offsets.data();
  }
  k.pack(m.data, off, n_, d_, panels_.data(), norms ? inv_.data() : nullptr);
}

packed::packed(const cinch::detail::token_kernels& k, const float* x, const std::int64_t* offsets, std::int64_t n,
               std::int64_t d, bool norms)
    : k_(&k), n_(n), d_(d), panels_(k.packed_rows(n) * d), inv_(norms ? std::size_t(k.packed_rows(n)) : 0) {
  k.pack(x, offsets, n, d, panels_.data(), norms ? inv_.data() : nullptr);
}

void dots(const packed& a, const packed& b, bool cosine, float* out, std::int64_t ldo) {
  const cinch::detail::token_kernels& k = a.kernels();
  const std::int64_t d = a.dim(), width = k.panel_width();
  parallel_chunks(a.rows(), width, double(a.rows()) * double(b.rows()) * double(d),
                  [&](std::int64_t begin, std::int64_t end) {
                    k.dots(a.data() + begin * d, cosine ? a.inv() + begin : nullptr, end - begin, b.data(),
                           cosine ? b.inv() : nullptr, b.rows(), d, out + begin * ldo, ldo);
                  });
}

void dots_argmax(const packed& a, const packed& b, bool cosine, bool skip_self, float* best, std::int64_t* index) {
  const cinch::detail::token_kernels& k = a.kernels();
  const std::int64_t d = a.dim(), width = k.panel_width();
  parallel_chunks(a.rows(), width, double(a.rows()) * double(b.rows()) * double(d),
                  [&](std::int64_t begin, std::int64_t end) {
                    k.dots_argmax(a.data() + begin * d, cosine ? a.inv() + begin : nullptr, end - begin, b.data(),
                                  cosine ? b.inv() : nullptr, b.rows(), d, skip_self, begin, best + begin,
                                  index + begin);
                  });
}

std::vector<float> nearest(const packed& x) {
  const cinch::detail::token_kernels& k = x.kernels();
  const std::int64_t n = x.rows(), d = x.dim(), width = k.panel_width();
  int chunks = 1;
#if defined(_OPENMP)
  if (double(n) * double(n) * double(d) > 4e5) chunks = omp_threads();
#endif
  // Row i costs n - i: chunk boundaries at equal shares of the triangle.
  std::vector<std::int64_t> bounds(static_cast<std::size_t>(chunks + 1), n);
  for (int c = 0; c < chunks; ++c) {
    const double share = double(c) / double(chunks);
    const auto b = std::int64_t(double(n) * (1.0 - std::sqrt(1.0 - share)));
    bounds[std::size_t(c)] = std::min(n, b / width * width);
  }
  std::vector<std::vector<float>> rows(static_cast<std::size_t>(chunks)), cols(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int c = 0; c < chunks; ++c) {
    rows[std::size_t(c)].assign(std::size_t(n), -INFINITY);
    cols[std::size_t(c)].assign(std::size_t(k.packed_rows(n)), -INFINITY);
    k.nearest(x.data(), x.inv(), n, d, bounds[std::size_t(c)], bounds[std::size_t(c + 1)], rows[std::size_t(c)].data(),
              cols[std::size_t(c)].data());
  }
  std::vector<float> best(static_cast<std::size_t>(n), -INFINITY);
  for (int c = 0; c < chunks; ++c)
    for (std::int64_t i = 0; i < n; ++i)
      best[std::size_t(i)] = std::max({best[std::size_t(i)], rows[std::size_t(c)][std::size_t(i)], cols[std::size_t(c)][std::size_t(i)]});
  return best;
}

std::vector<std::int64_t> top_k_sorted(std::span<const float> scores, std::int64_t k) {
  std::vector<std::int64_t> out = top_k(scores, k);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace cinch::tokens::detail
