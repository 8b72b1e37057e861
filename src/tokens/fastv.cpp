// FastV's attention ranking and the attention-row scorer.
#include "cinch/tokens/fastv.hpp"

#include <algorithm>
#include <cmath>

#include "cinch/detail/checks.hpp"
#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

plan fastv(const inputs& in, std::int64_t keep) {
  constexpr std::string_view fn = "tokens::fastv";
  const std::int64_t n = detail::token_count(fn, in);
  if (in.text_attention.rank() == 0)
    fail(errc::invalid_argument, fn,
         "needs inputs.text_attention (the text queries' attention over the visual tokens; "
         "tokens::attention_rows computes it), got none");
  keep = detail::checked_budget(fn, keep, n);
  inputs rows_only;
  rows_only.text_attention = in.text_attention;
  const std::vector<float> scores = detail::scores_of(fn, rows_only, n);
  return from_kept(n, detail::top_k_sorted(scores, keep));
}

void attention_rows(const tensor_view& q, const tensor_view& keys, std::int64_t first, const tensor_view& out,
                    const attention_options& options) {
  constexpr std::string_view fn = "tokens::attention_rows";
  for (auto [v, name, rank] : {std::tuple{&q, "q", 3}, {&keys, "keys", 3}, {&out, "out", 2}}) {
    cinch::detail::check_device(fn, name, *v, cpu_device);
    cinch::detail::check_dtype(fn, name, *v, dtype::f32);
    if (v->rank() != rank)
      fail(errc::shape_mismatch, fn, name, rank == 3 ? " must be rank 3" : " must be rank 2", ", got ", v->shape());
    cinch::detail::check_rows_dense(fn, name, *v);
  }
  const std::int64_t rows = q.size(0), heads = q.size(1), dim = q.size(2);
  const std::int64_t kv_heads = keys.size(0), length = keys.size(1), n = out.size(1);
  if (keys.size(2) != dim || kv_heads < 1 || heads % kv_heads)
    fail(errc::shape_mismatch, fn, "keys must be [Hkv, L, ", dim, "] with Hkv dividing the ", heads,
         " query heads, got ", keys.shape());
  if (out.size(0) != rows)
    fail(errc::shape_mismatch, fn, "out must have one row per query (", rows, "), got ", out.shape());
  if (first < 0 || first + n > length)
    fail(errc::invalid_argument, fn, "the visual block [first, first + N) = [", first, ", ", first + n,
         ") must lie within the ", length, " keys");
  if (!options.query_positions.empty() && std::int64_t(options.query_positions.size()) != rows)
    fail(errc::shape_mismatch, fn, "options.query_positions must hold ", rows, " positions, got ",
         options.query_positions.size());
  if (!std::isfinite(options.scale) || options.scale < 0.0f)
    fail(errc::invalid_argument, fn, "options.scale must be finite and >= 0, got ", std::to_string(options.scale));
  cinch::detail::check_output(fn, "out", out, {q, keys});
  if (out.numel() == 0) return;
  const float scale = options.scale > 0.0f ? options.scale : 1.0f / std::sqrt(float(dim));

  const auto& k = cinch::detail::active_token_kernels();
  const auto* qp = static_cast<const float*>(q.data());
  const auto* kp = static_cast<const float*>(keys.data());
  const std::int64_t group = heads / kv_heads;
  std::vector<double> sums(static_cast<std::size_t>(rows * n), 0.0);
  std::vector<float> logits(static_cast<std::size_t>(rows * group * length));
  for (std::int64_t g = 0; g < kv_heads; ++g) {
    std::vector<std::int64_t> key_rows(static_cast<std::size_t>(length)), query_rows;
    for (std::int64_t l = 0; l < length; ++l) key_rows[std::size_t(l)] = g * keys.stride(0) + l * keys.stride(1);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t h = g * group; h < (g + 1) * group; ++h) query_rows.push_back(r * q.stride(0) + h * q.stride(1));
    const detail::packed pk(k, kp, key_rows.data(), length, dim, false);
    const detail::packed pq(k, qp, query_rows.data(), rows * group, dim, false);
    detail::dots(pq, pk, false, logits.data(), length);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t visible =
          options.query_positions.empty() ? length : std::min(length, options.query_positions[std::size_t(r)] + 1);
      for (std::int64_t h = 0; h < group; ++h) {
        float* row = logits.data() + (r * group + h) * length;
        float top = -INFINITY;
        for (std::int64_t l = 0; l < visible; ++l) top = std::max(top, row[l] * scale);
        float total = 0.0f;
        for (std::int64_t l = 0; l < visible; ++l) {
          row[l] = std::exp(row[l] * scale - top);
          total += row[l];
        }
        for (std::int64_t j = 0; j < n && first + j < visible; ++j)
          sums[std::size_t(r * n + j)] += double(row[first + j] / total);
      }
    }
  }
  auto* op = static_cast<float*>(out.data());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < n; ++j)
      op[r * out.stride(0) + j] = float(sums[std::size_t(r * n + j)] / double(heads));
}

}  // namespace cinch::tokens
