// Token saliency and mixed-precision bit allocation (ZipCache, H2O / MiKV).
// Small host loops: the spec's sums in the spec's order, rows over threads.
#include "cinch/kv/saliency.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "kv/group_kernels.hpp"

namespace cinch::kv {
namespace {

void check_host(std::string_view fn, std::string_view name, const tensor_view& v) {
  if (v.where().kind != device_kind::cpu)
    detail::fail(errc::unsupported, fn, name, " must be on cpu (saliency runs on the host), got ", to_string(v.where()));
}

// attn [..., Q, T] f32 and a per-token output [..., T] f32.
void check_attention(std::string_view fn, const tensor_view& attn, const tensor_view& out, std::string_view out_name) {
  check_host(fn, "attn", attn);
  check_host(fn, out_name, out);
  detail::check_dtype(fn, "attn", attn, dtype::f32);
  detail::check_dtype(fn, out_name, out, dtype::f32);
  if (attn.rank() < 2)
    detail::fail(errc::shape_mismatch, fn, "attn must be [..., queries, tokens] (rank >= 2), got rank ", attn.rank(),
                 " ", attn.shape());
  std::array<std::int64_t, max_rank> expect{};
  const std::size_t lead = std::size_t(attn.rank() - 2);
  std::copy_n(attn.shape().begin(), lead, expect.begin());
  expect[lead] = attn.size(-1);
  detail::check_shape(fn, out_name, out, std::span<const std::int64_t>(expect.data(), lead + 1));
  detail::check_rows_dense(fn, "attn", attn);
  detail::check_rows_dense(fn, out_name, out);
}

constexpr std::int64_t token_block = 1024;

// Runs body(attn row pointer of query 0, query stride, out row, j0, j1) over every
// leading index and block of tokens [j0, j1).
template <class Body>
void for_each_token_block(const tensor_view& attn, const tensor_view& out, Body body) {
  const std::int64_t queries = attn.size(-2), tokens = attn.size(-1);
  const detail::row_layout lead = detail::rows_of(attn, 2), out_rows = detail::rows_of(out);
  const std::int64_t blocks = (tokens + token_block - 1) / token_block;
  const auto* a = static_cast<const float*>(attn.data());
  auto* o = static_cast<float*>(out.data());
  const std::int64_t query_stride = queries > 1 ? attn.stride(-2) : 0;
  detail::parallel_tasks(lead.rows * blocks, attn.numel(), [&](std::int64_t task) {
    const std::int64_t r = task / blocks, j0 = (task % blocks) * token_block;
    body(a + lead.row_offset(r), query_stride, o + out_rows.row_offset(r), j0, std::min(j0 + token_block, tokens));
  });
}

// position(i) gives query i's position (>= 0).
template <class Position>
void saliency_with(const tensor_view& attn, const tensor_view& saliency, Position position) {
  const std::int64_t queries = attn.size(-2), tokens = attn.size(-1);
  // visible[j] = #{i : min(p_i, T - 1) == j}, then suffix sums: #{i : p_i >= j}.
  std::vector<std::int64_t> visible(static_cast<std::size_t>(tokens), 0);
  for (std::int64_t i = 0; i < queries; ++i) ++visible[std::size_t(std::min(position(i), tokens - 1))];
  for (std::int64_t j = tokens - 2; j >= 0; --j) visible[std::size_t(j)] += visible[std::size_t(j + 1)];
  for_each_token_block(attn, saliency, [&](const float* a, std::int64_t qs, float* s, std::int64_t j0, std::int64_t j1) {
    std::fill(s + j0, s + j1, 0.0f);
    for (std::int64_t i = 0; i < queries; ++i) {
      const std::int64_t end = std::min(j1, position(i) + 1);
      for (std::int64_t j = j0; j < end; ++j) s[j] += a[i * qs + j];
    }
    for (std::int64_t j = j0; j < j1; ++j)
      s[j] = visible[std::size_t(j)] ? s[j] / float(visible[std::size_t(j)]) : 0.0f;
  });
}

}  // namespace

void normalized_attention_saliency(const tensor_view& attn, const tensor_view& query_positions,
                                   const tensor_view& saliency) {
  constexpr std::string_view fn = "kv::normalized_attention_saliency";
  check_attention(fn, attn, saliency, "saliency");
  check_host(fn, "query_positions", query_positions);
  detail::check_dtype(fn, "query_positions", query_positions, dtype::i32);
  const std::int64_t expect[] = {attn.size(-2)};
  detail::check_shape(fn, "query_positions", query_positions, expect);
  detail::check_output(fn, "saliency", saliency, {attn, query_positions});
  const auto pos = query_positions.as<const std::int32_t, 1>();
  for (std::int64_t i = 0; i < pos.shape[0]; ++i)
    if (pos(i) < 0) detail::fail(errc::invalid_argument, fn, "query_positions[", i, "] must be >= 0, got ", pos(i));
  if (saliency.numel() == 0) return;
  saliency_with(attn, saliency, [&](std::int64_t i) { return std::int64_t(pos(i)); });
}

void normalized_attention_saliency(const tensor_view& attn, const tensor_view& saliency) {
  constexpr std::string_view fn = "kv::normalized_attention_saliency";
  check_attention(fn, attn, saliency, "saliency");
  detail::check_output(fn, "saliency", saliency, {attn});
  const std::int64_t queries = attn.size(-2), tokens = attn.size(-1);
  if (queries > tokens)
    detail::fail(errc::shape_mismatch, fn, "attn without query_positions must have queries <= tokens (the queries are ",
                 "the last tokens), got ", attn.shape());
  if (saliency.numel() == 0) return;
  saliency_with(attn, saliency, [&](std::int64_t i) { return tokens - queries + i; });
}

void accumulate_attention(const tensor_view& attn, const tensor_view& scores) {
  constexpr std::string_view fn = "kv::accumulate_attention";
  check_attention(fn, attn, scores, "scores");
  detail::check_output(fn, "scores", scores, {attn});
  if (scores.numel() == 0) return;
  const std::int64_t queries = attn.size(-2);
  for_each_token_block(attn, scores, [&](const float* a, std::int64_t qs, float* s, std::int64_t j0, std::int64_t j1) {
    for (std::int64_t i = 0; i < queries; ++i)
      for (std::int64_t j = j0; j < j1; ++j) s[j] += a[i * qs + j];
  });
}

void choose_bits(const tensor_view& saliency, double low_fraction, int high_bits, int low_bits,
                 const tensor_view& bits) {
  constexpr std::string_view fn = "kv::choose_bits";
  check_host(fn, "saliency", saliency);
  check_host(fn, "bits", bits);
  detail::check_dtype(fn, "saliency", saliency, dtype::f32);
  detail::check_dtype(fn, "bits", bits, dtype::u8);
  if (saliency.rank() < 1)
    detail::fail(errc::shape_mismatch, fn, "saliency must have at least one dimension (the tokens), got rank 0");
  detail::check_shape(fn, "bits", bits, saliency.shape());
  detail::check_rows_dense(fn, "saliency", saliency);
  detail::check_rows_dense(fn, "bits", bits);
  if (!(low_fraction >= 0.0 && low_fraction <= 1.0))
    detail::fail(errc::invalid_argument, fn, "low_fraction must be in [0, 1], got ",
                 detail::float_text(static_cast<float>(low_fraction)));
  if (low_bits < 1 || high_bits > 16 || low_bits > high_bits)
    detail::fail(errc::invalid_argument, fn, "bit widths must satisfy 1 <= low_bits <= high_bits <= 16, got low_bits ",
                 low_bits, " and high_bits ", high_bits);
  detail::check_output(fn, "bits", bits, {saliency});
  if (saliency.numel() == 0) return;

  const detail::row_layout sr = detail::rows_of(saliency), br = detail::rows_of(bits);
  const std::int64_t tokens = sr.cols;
  const auto* sp = static_cast<const float*>(saliency.data());
  auto* bp = static_cast<std::uint8_t*>(bits.data());
  for (std::int64_t r = 0; r < sr.rows; ++r)
    for (std::int64_t j = 0; j < tokens; ++j)
      if (std::isnan(sp[sr.row_offset(r) + j]))
        detail::fail(errc::invalid_argument, fn, "saliency must not hold NaN, got NaN at row ", r, " token ", j);

  // A relative allowance of 1e-12 absorbs the product's rounding (0.7 of 10 is 7).
  const std::int64_t low =
      std::min(tokens, static_cast<std::int64_t>(std::floor(low_fraction * double(tokens) * (1.0 + 1e-12))));
  const std::int64_t high = tokens - low;
  detail::parallel_tasks(sr.rows, saliency.numel() * 8, [&](std::int64_t r) {
    const float* s = sp + sr.row_offset(r);
    std::uint8_t* b = bp + br.row_offset(r);
    std::vector<std::int64_t> order(static_cast<std::size_t>(tokens));
    for (std::int64_t j = 0; j < tokens; ++j) order[std::size_t(j)] = j;
    // A strict total order (no NaN): the partition is the same for any algorithm.
    const auto more_salient = [s](std::int64_t a, std::int64_t c) { return s[a] > s[c] || (s[a] == s[c] && a < c); };
    std::nth_element(order.begin(), order.begin() + high, order.end(), more_salient);
    std::fill(b, b + tokens, static_cast<std::uint8_t>(low_bits));
    for (std::int64_t k = 0; k < high; ++k) b[order[std::size_t(k)]] = static_cast<std::uint8_t>(high_bits);
  });
}

}  // namespace cinch::kv
