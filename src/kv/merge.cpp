// Merging instead of dropping: MiniCache's cross-layer SLERP merge and
// ZeroMerge / CAM's count-weighted merge of evicted tokens. Host loops over
// tokens in blocks, spread over threads; the formulas are in cinch/kv/merge.hpp.
#include "cinch/kv/merge.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/detail/checks.hpp"
#include "kv/group_kernels.hpp"

namespace cinch::kv {
namespace {

constexpr std::int64_t token_block = 256;

void check_host(std::string_view fn, std::string_view name, const tensor_view& v) {
  if (v.where().kind != device_kind::cpu)
    detail::fail(errc::unsupported, fn, name, " must be on cpu (merging runs on the host), got ", to_string(v.where()));
}

// A host f32 tensor of the given rank with a dense innermost dimension.
void check_f32(std::string_view fn, std::string_view name, const tensor_view& v, int rank, std::string_view layout) {
  check_host(fn, name, v);
  detail::check_dtype(fn, name, v, dtype::f32);
  if (v.rank() != rank)
    detail::fail(errc::shape_mismatch, fn, name, " must be ", layout, " (rank ", rank, "), got rank ", v.rank(), " ",
                 v.shape());
  detail::check_rows_dense(fn, name, v);
}

void check_unit_interval(std::string_view fn, std::string_view name, double v) {
  if (!(v >= 0.0 && v <= 1.0))
    detail::fail(errc::invalid_argument, fn, name, " must be in [0, 1], got ", detail::float_text(float(v)));
}

// Row i of a [rows, n] view; row (i, j) of an [.., .., n] one.
const float* row(const tensor_view& v, std::int64_t i) { return static_cast<const float*>(v.data()) + i * v.stride(0); }
const float* row(const tensor_view& v, std::int64_t i, std::int64_t j) {
  return static_cast<const float*>(v.data()) + i * v.stride(0) + j * v.stride(1);
}
float* row(const tensor& v, std::int64_t i, std::int64_t j) {
  return v.data<float>() + i * v.view().stride(0) + j * v.view().stride(1);
}

// ------------------------------------------------------------------ MiniCache

enum class pair_kind { both_zero, a_zero, b_zero, same, antipodal, general };

struct pair_geometry {
  pair_kind kind;
  double na, nb, s, theta;
};

// Unit directions ua, ub (where the rows are non-zero) and r = ub - c ua, all in double.
pair_geometry geometry(const float* a, const float* b, std::int64_t d, double* ua, double* ub, double* r) noexcept {
  double aa = 0, bb = 0;
  for (std::int64_t i = 0; i < d; ++i) {
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  pair_geometry g{pair_kind::general, std::sqrt(aa), std::sqrt(bb), 0, 0};
  for (std::int64_t i = 0; i < d; ++i) {
    ua[i] = g.na > 0 ? a[i] / g.na : 0;
    ub[i] = g.nb > 0 ? b[i] / g.nb : 0;
  }
  if (g.na == 0 || g.nb == 0) {
    g.kind = g.na > 0 ? pair_kind::b_zero : g.nb > 0 ? pair_kind::a_zero : pair_kind::both_zero;
    return g;
  }
  double c = 0;
  for (std::int64_t i = 0; i < d; ++i) c += ua[i] * ub[i];
  c = std::clamp(c, -1.0, 1.0);
  double ss = 0;
  for (std::int64_t i = 0; i < d; ++i) {
    r[i] = ub[i] - c * ua[i];
    ss += r[i] * r[i];
  }
  g.s = std::sqrt(ss);
  g.theta = std::atan2(g.s, c);
  if (g.s <= 1e-7) {
    g.kind = c > 0 ? pair_kind::same : pair_kind::antipodal;
    if (c < 0) g.theta = std::numbers::pi;
  }
  return g;
}

void scale_into(const double* x, double f, std::int64_t d, float* e) noexcept {
  for (std::int64_t i = 0; i < d; ++i) e[i] = float(f * x[i]);
}

// The shared direction e of a token (see minicache_merge); r is reused as scratch.
void shared_direction(const pair_geometry& g, const double* ua, const double* ub, double* r, std::int64_t d, double t,
                      float* e) noexcept {
  switch (g.kind) {
    case pair_kind::both_zero: std::fill(e, e + d, 0.0f); return;
    case pair_kind::a_zero: scale_into(ub, 1, d, e); return;
    case pair_kind::b_zero: scale_into(ua, 1, d, e); return;
    case pair_kind::same: {
      double nn = 0;
      for (std::int64_t i = 0; i < d; ++i) {
        r[i] = (1 - t) * ua[i] + t * ub[i];
        nn += r[i] * r[i];
      }
      scale_into(r, 1 / std::sqrt(nn), d, e);
      return;
    }
    case pair_kind::antipodal: {
      // p = normalize(axis_m - ua[m] ua), m the axis where |ua| is smallest.
      const auto smaller = [](double x, double y) { return std::abs(x) < std::abs(y); };
      const std::int64_t m = std::min_element(ua, ua + d, smaller) - ua;
      double nn = 0;
      for (std::int64_t i = 0; i < d; ++i) {
        r[i] = (i == m) - ua[m] * ua[i];
        nn += r[i] * r[i];
      }
      if (nn == 0) {  // head_dim 1: no orthogonal direction, take the nearer endpoint
        scale_into(t <= 0.5 ? ua : ub, 1, d, e);
        return;
      }
      const double cp = std::cos(t * std::numbers::pi), sp = std::sin(t * std::numbers::pi) / std::sqrt(nn);
      for (std::int64_t i = 0; i < d; ++i) e[i] = float(cp * ua[i] + sp * r[i]);
      return;
    }
    case pair_kind::general: {
      const double ca = std::cos(t * g.theta), cr = std::sin(t * g.theta) / g.s;
      for (std::int64_t i = 0; i < d; ++i) e[i] = float(ca * ua[i] + cr * r[i]);
      return;
    }
  }
}

// Runs body(head, first token, end token) over every head and block of tokens.
template <class Body>
void for_each_block(std::int64_t heads, std::int64_t tokens, std::int64_t d, Body body) {
  const std::int64_t blocks = (tokens + token_block - 1) / token_block;
  detail::parallel_tasks(heads * blocks, heads * tokens * d, [&](std::int64_t task) {
    const std::int64_t h = task / blocks, t0 = (task % blocks) * token_block;
    body(h, t0, std::min(t0 + token_block, tokens));
  });
}

// Retained indices of head h, ascending.
struct retained_row {
  const std::int32_t* begin;
  const std::int32_t* end;
};
retained_row retained_of(const tensor& retained, std::int64_t h) {
  const std::int64_t r = retained.size(1);
  const auto* p = retained.data<const std::int32_t>() + h * r;
  return {p, p + r};
}

// ------------------------------------------------------------------ ZeroMerge / CAM

void check_keep(std::string_view fn, std::string_view name, const keep_list& keep, std::int64_t tokens) {
  if (keep.empty() && tokens > 0)
    detail::fail(errc::invalid_argument, fn, name, " must not be empty when there are tokens, got 0 of ", tokens);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] < 0 || keep[i] >= tokens)
      detail::fail(errc::invalid_argument, fn, name, "[", i, "] must be in [0, ", tokens, "), got ", keep[i]);
    if (i > 0 && keep[i] <= keep[i - 1])
      detail::fail(errc::invalid_argument, fn, name, " must be strictly ascending, got ", keep[i], " after ",
                   keep[i - 1], " at [", i, "]");
  }
}

// n positive finite values; `optional` accepts none as well.
void check_weights(std::string_view fn, std::string_view name, std::span<const float> weights, std::int64_t n,
                   bool optional) {
  if (std::int64_t(weights.size()) != n && !(optional && weights.empty()))
    detail::fail(errc::shape_mismatch, fn, name, " must hold one value per token (", n, ")",
                 optional ? " or none" : "", ", got ", weights.size());
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (!(weights[i] > 0 && std::isfinite(weights[i])))
      detail::fail(errc::invalid_argument, fn, name, "[", i, "] must be finite and > 0, got ",
                   detail::float_text(weights[i]));
}

double weight_of(std::span<const float> weights, std::int64_t t) {
  return weights.empty() ? 1.0 : double(weights[std::size_t(t)]);
}

// For each evicted token, the position in `keep` of the kept key most similar to its key.
std::vector<std::int32_t> assign(const tensor_view& keys, const keep_list& keep, std::span<const std::int32_t> evicted,
                                 merge_similarity similarity) {
  const std::int64_t d = keys.size(1), k = std::int64_t(keep.size()), n = std::int64_t(evicted.size());
  std::vector<float> kept_t(std::size_t(d * k));  // kept keys transposed [d, k]: the inner loop runs over slots
  for (std::int64_t j = 0; j < k; ++j) {
    const float* x = row(keys, keep[std::size_t(j)]);
    for (std::int64_t c = 0; c < d; ++c) kept_t[std::size_t(c * k + j)] = x[c];
  }
  std::vector<std::int32_t> target(static_cast<std::size_t>(n));
  const std::int64_t blocks = (n + token_block - 1) / token_block;
  detail::parallel_tasks(blocks, n * k * d, [&](std::int64_t b) {
    std::vector<float> score(static_cast<std::size_t>(k));
    for (std::int64_t e = b * token_block; e < std::min(n, (b + 1) * token_block); ++e) {
      const float* x = row(keys, evicted[std::size_t(e)]);
      std::fill(score.begin(), score.end(), 0.0f);
      for (std::int64_t c = 0; c < d; ++c) {
        const float xc = x[c];
        const float* kc = kept_t.data() + c * k;
        if (similarity == merge_similarity::dot)
          for (std::int64_t j = 0; j < k; ++j) score[std::size_t(j)] += xc * kc[j];
        else
          for (std::int64_t j = 0; j < k; ++j) score[std::size_t(j)] += (xc - kc[j]) * (xc - kc[j]);
      }
      std::int32_t best = 0;  // strict comparisons: ties stay with the lower index
      for (std::int64_t j = 1; j < k; ++j) {
        const float s = score[std::size_t(j)], top = score[std::size_t(best)];
        if (similarity == merge_similarity::dot ? s > top : s < top) best = std::int32_t(j);
      }
      target[std::size_t(e)] = best;
    }
  });
  return target;
}

// Slot j = sum over its tokens of w x / sum of w, accumulated in double.
tensor weighted_means(const tensor_view& x, const keep_list& keep, std::span<const std::int32_t> evicted,
                      std::span<const std::int32_t> target, std::span<const float> weights,
                      std::span<const double> counts) {
  const std::int64_t d = x.size(1), k = std::int64_t(keep.size());
  std::vector<double> sum(std::size_t(k * d), 0.0);
  const auto add = [&](std::int64_t slot, std::int64_t token) {
    const double w = weight_of(weights, token);
    const float* v = row(x, token);
    for (std::int64_t c = 0; c < d; ++c) sum[std::size_t(slot * d + c)] += w * v[c];
  };
  for (std::int64_t j = 0; j < k; ++j) add(j, keep[std::size_t(j)]);
  for (std::size_t e = 0; e < evicted.size(); ++e) add(target[e], evicted[e]);
  tensor out = tensor::empty({k, d}, dtype::f32);
  auto* o = out.data<float>();
  for (std::int64_t j = 0; j < k; ++j)
    for (std::int64_t c = 0; c < d; ++c) o[j * d + c] = float(sum[std::size_t(j * d + c)] / counts[std::size_t(j)]);
  return out;
}

merged_tokens merge_head(std::string_view fn, const tensor_view& keys, const tensor_view& values, const keep_list& keep,
                         std::string_view keep_name, std::span<const float> weights, std::string_view weights_name,
                         merge_similarity similarity) {
  const std::int64_t tokens = keys.size(0);
  check_keep(fn, keep_name, keep, tokens);
  check_weights(fn, weights_name, weights, tokens, true);
  std::vector<std::int32_t> evicted;
  evicted.reserve(std::size_t(tokens) - keep.size());
  for (std::int64_t t = 0, j = 0; t < tokens; ++t) {
    if (j < std::int64_t(keep.size()) && keep[std::size_t(j)] == t)
      ++j;
    else
      evicted.push_back(std::int32_t(t));
  }
  const std::vector<std::int32_t> target = assign(keys, keep, evicted, similarity);
  std::vector<double> counts(keep.size(), 0.0);
  for (std::size_t j = 0; j < keep.size(); ++j) counts[j] += weight_of(weights, keep[j]);
  for (std::size_t e = 0; e < evicted.size(); ++e) counts[std::size_t(target[e])] += weight_of(weights, evicted[e]);
  merged_tokens out;
  out.keys = weighted_means(keys, keep, evicted, target, weights, counts);
  out.values = weighted_means(values, keep, evicted, target, weights, counts);
  out.counts.assign(counts.begin(), counts.end());
  return out;
}

}  // namespace

// ------------------------------------------------------------------ MiniCache

merged_layers minicache_merge(const tensor_view& a, const tensor_view& b, minicache_options options) {
  constexpr std::string_view fn = "kv::minicache_merge";
  check_f32(fn, "a", a, 3, "[kv_heads, tokens, head_dim]");
  check_host(fn, "b", b);
  detail::check_dtype(fn, "b", b, dtype::f32);
  detail::check_shape(fn, "b", b, a.shape());
  detail::check_rows_dense(fn, "b", b);
  check_unit_interval(fn, "options.t", options.t);
  check_unit_interval(fn, "options.retention", options.retention);
  const std::int64_t heads = a.size(0), tokens = a.size(1), d = a.size(2);
  const std::int64_t r = std::min(tokens, std::int64_t(std::floor(options.retention * double(tokens) + 1e-9)));
  const double t = options.t;

  // Pass 1: theta / pi of every token, then the r largest per head.
  tensor angles = tensor::empty({heads, tokens}, dtype::f32);
  for_each_block(heads, tokens, d, [&](std::int64_t h, std::int64_t t0, std::int64_t t1) {
    std::vector<double> scratch(std::size_t(3 * d));
    for (std::int64_t i = t0; i < t1; ++i) {
      const pair_geometry g =
          geometry(row(a, h, i), row(b, h, i), d, scratch.data(), scratch.data() + d, scratch.data() + 2 * d);
      angles.data<float>()[h * tokens + i] = float(g.theta / std::numbers::pi);
    }
  });
  merged_layers out;
  out.retained = tensor::empty({heads, r}, dtype::i32);
  top_k(angles, r, out.retained);

  // Pass 2: original rows of the retained tokens, direction and magnitudes of the others.
  out.directions = tensor::empty({heads, tokens - r, d}, dtype::f32);
  out.magnitudes = tensor::empty({2, heads, tokens - r}, dtype::f32);
  out.retained_rows = tensor::empty({2, heads, r, d}, dtype::f32);
  float* mag = out.magnitudes.data<float>();
  float* kept = out.retained_rows.data<float>();
  for_each_block(heads, tokens, d, [&](std::int64_t h, std::int64_t t0, std::int64_t t1) {
    std::vector<double> scratch(std::size_t(3 * d));
    const retained_row ret = retained_of(out.retained, h);
    const std::int32_t* next = std::lower_bound(ret.begin, ret.end, std::int32_t(t0));
    std::int64_t slot = t0 - (next - ret.begin);
    for (std::int64_t i = t0; i < t1; ++i) {
      const float *xa = row(a, h, i), *xb = row(b, h, i);
      if (next != ret.end && *next == i) {
        const std::int64_t j = next++ - ret.begin;
        std::copy_n(xa, d, kept + (h * r + j) * d);
        std::copy_n(xb, d, kept + ((heads + h) * r + j) * d);
        continue;
      }
      double* ua = scratch.data();
      const pair_geometry g = geometry(xa, xb, d, ua, ua + d, ua + 2 * d);
      shared_direction(g, ua, ua + d, ua + 2 * d, d, t, row(out.directions, h, slot));
      mag[h * (tokens - r) + slot] = float(g.na);
      mag[(heads + h) * (tokens - r) + slot] = float(g.nb);
      ++slot;
    }
  });
  return out;
}

std::int64_t merged_layers::bytes() const noexcept {
  return directions.nbytes() + magnitudes.nbytes() + retained.nbytes() + retained_rows.nbytes();
}

tensor merged_layers::restore(int layer) const {
  if (layer != 0 && layer != 1)
    detail::fail(errc::invalid_argument, "kv::merged_layers::restore", "layer must be 0 (a) or 1 (b), got ", layer);
  tensor out = tensor::empty({heads(), tokens(), head_dim()}, dtype::f32);
  restore(layer, out);
  return out;
}

void merged_layers::restore(int layer, const tensor_view& out) const {
  constexpr std::string_view fn = "kv::merged_layers::restore";
  if (layer != 0 && layer != 1) detail::fail(errc::invalid_argument, fn, "layer must be 0 (a) or 1 (b), got ", layer);
  const std::int64_t heads = this->heads(), tokens = this->tokens(), d = head_dim(), r = retained.size(1);
  check_host(fn, "out", out);
  detail::check_dtype(fn, "out", out, dtype::f32);
  const std::int64_t expect[] = {heads, tokens, d};
  detail::check_shape(fn, "out", out, expect);
  detail::check_rows_dense(fn, "out", out);
  if (out.numel() == 0) return;  // nothing to write (and an empty view's strides mean nothing)
  detail::check_output(fn, "out", out, {directions, magnitudes, retained, retained_rows});
  const float* mag = magnitudes.data<const float>() + layer * heads * (tokens - r);
  const float* kept = retained_rows.data<const float>() + layer * heads * r * d;
  for_each_block(heads, tokens, d, [&](std::int64_t h, std::int64_t t0, std::int64_t t1) {
    const retained_row ret = retained_of(retained, h);
    const std::int32_t* next = std::lower_bound(ret.begin, ret.end, std::int32_t(t0));
    std::int64_t slot = t0 - (next - ret.begin);
    for (std::int64_t i = t0; i < t1; ++i) {
      float* y = static_cast<float*>(out.data()) + h * out.stride(0) + i * out.stride(1);
      if (next != ret.end && *next == i) {
        std::copy_n(kept + (h * r + (next++ - ret.begin)) * d, d, y);
        continue;
      }
      const float m = mag[h * (tokens - r) + slot];
      const float* e = row(directions, h, slot);
      for (std::int64_t c = 0; c < d; ++c) y[c] = m * e[c];
      ++slot;
    }
  });
}

// ------------------------------------------------------------------ ZeroMerge / CAM

merged_tokens merge_evicted(const tensor_view& keys, const tensor_view& values, const keep_list& keep,
                            std::span<const float> weights, merge_similarity similarity) {
  constexpr std::string_view fn = "kv::merge_evicted";
  check_f32(fn, "keys", keys, 2, "[tokens, key_dim]");
  check_f32(fn, "values", values, 2, "[tokens, value_dim]");
  if (values.size(0) != keys.size(0))
    detail::fail(errc::shape_mismatch, fn, "values must have the ", keys.size(0), " tokens of keys ", keys.shape(),
                 ", got ", values.shape());
  return merge_head(fn, keys, values, keep, "keep", weights, "weights", similarity);
}

std::vector<merged_tokens> merge_evicted(const tensor_view& keys, const tensor_view& values,
                                         std::span<const keep_list> keep, std::span<const std::vector<float>> weights,
                                         merge_similarity similarity) {
  constexpr std::string_view fn = "kv::merge_evicted";
  check_f32(fn, "keys", keys, 3, "[kv_heads, tokens, key_dim]");
  check_f32(fn, "values", values, 3, "[kv_heads, tokens, value_dim]");
  if (values.size(0) != keys.size(0) || values.size(1) != keys.size(1))
    detail::fail(errc::shape_mismatch, fn, "values must have the heads and tokens of keys ", keys.shape(), ", got ",
                 values.shape());
  const std::int64_t heads = keys.size(0);
  if (std::int64_t(keep.size()) != heads)
    detail::fail(errc::shape_mismatch, fn, "keep must hold one list per head (", heads, "), got ", keep.size());
  if (!weights.empty() && std::int64_t(weights.size()) != heads)
    detail::fail(errc::shape_mismatch, fn, "weights must hold one vector per head (", heads, ") or none, got ",
                 weights.size());
  std::vector<merged_tokens> out;
  out.reserve(std::size_t(heads));
  for (std::int64_t h = 0; h < heads; ++h) {
    const std::string keep_name = detail::cat("keep[", h, "]"), weights_name = detail::cat("weights[", h, "]");
    const std::span<const float> w = weights.empty() ? std::span<const float>() : weights[std::size_t(h)];
    out.push_back(merge_head(fn, keys.select(0, h), values.select(0, h), keep[std::size_t(h)], keep_name, w,
                             weights_name, similarity));
  }
  return out;
}

std::vector<float> attention_with_counts(const tensor_view& q, const tensor_view& keys, const tensor_view& values,
                                         std::span<const float> counts, double alpha) {
  constexpr std::string_view fn = "kv::attention_with_counts";
  check_f32(fn, "q", q, 1, "[head_dim]");
  check_f32(fn, "keys", keys, 2, "[slots, head_dim]");
  check_f32(fn, "values", values, 2, "[slots, value_dim]");
  const std::int64_t d = q.size(0), k = keys.size(0), dv = values.size(1);
  if (keys.size(1) != d)
    detail::fail(errc::shape_mismatch, fn, "keys must have the head_dim ", d, " of q, got ", keys.shape());
  if (values.size(0) != k)
    detail::fail(errc::shape_mismatch, fn, "values must have the ", k, " slots of keys, got ", values.shape());
  if (k == 0) detail::fail(errc::invalid_argument, fn, "keys must hold at least one slot, got 0");
  check_weights(fn, "counts", counts, k, false);
  if (!std::isfinite(alpha))
    detail::fail(errc::invalid_argument, fn, "alpha must be finite, got ", detail::float_text(float(alpha)));
  const auto* qp = static_cast<const float*>(q.data());
  std::vector<double> logit(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < k; ++j) {
    const float* kj = row(keys, j);
    double dot = 0;
    for (std::int64_t c = 0; c < d; ++c) dot += double(qp[c]) * kj[c];
    logit[std::size_t(j)] = dot / std::sqrt(double(d)) + alpha * std::log(double(counts[std::size_t(j)]));
  }
  const double top = *std::max_element(logit.begin(), logit.end());
  double total = 0;
  std::vector<double> acc(std::size_t(dv), 0.0);
  for (std::int64_t j = 0; j < k; ++j) {
    const double p = std::exp(logit[std::size_t(j)] - top);
    total += p;
    const float* vj = row(values, j);
    for (std::int64_t c = 0; c < dv; ++c) acc[std::size_t(c)] += p * vj[c];
  }
  std::vector<float> out(static_cast<std::size_t>(dv));
  for (std::int64_t c = 0; c < dv; ++c) out[std::size_t(c)] = float(acc[std::size_t(c)] / total);
  return out;
}

}  // namespace cinch::kv
