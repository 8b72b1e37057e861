// Eviction scorers: hand-computed cases, agreement with straightforward double
// formulas (attention rows, pooling, LagKV partitions, Expected Attention with
// full averaged RoPE matrices), published properties under top-k, GQA mean/max,
// ragged cache heads, quantized and rotated caches against the dense scores of
// their dequantized tensors, and every argument error.
#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/kv/cache.hpp>
#include <cinch/kv/score.hpp>
#include <cinch/kv/select.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::kv;

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();
using matrix = std::vector<std::vector<double>>;

tensor_view view3(const std::vector<float>& x, std::int64_t a, std::int64_t b, std::int64_t c) {
  return tensor_view(x.data(), dtype::f32, {a, b, c});
}

// Scores equal within a relative and absolute bound; +inf only where expected.
void check_close(const std::vector<head_scores>& got, const std::vector<std::vector<double>>& want, double rel,
                 double abs = 1e-7) {
  REQUIRE(got.size() == want.size());
  for (std::size_t h = 0; h < got.size(); ++h) {
    REQUIRE(got[h].size() == want[h].size());
    for (std::size_t j = 0; j < got[h].size(); ++j) {
      INFO("head " << h << " token " << j);
      if (std::isinf(want[h][j]))
        CHECK(got[h][j] == float(want[h][j]));
      else
        CHECK(std::abs(got[h][j] - want[h][j]) <= abs + rel * std::abs(want[h][j]));
    }
  }
}
std::vector<std::vector<double>> widen(const std::vector<head_scores>& s) {
  std::vector<std::vector<double>> out;
  for (const auto& h : s) out.emplace_back(h.begin(), h.end());
  return out;
}

// ---------------------------------------------------------------- straightforward formulas in double

// Attention rows of w window queries q (w x d) over keys k (T x d): row i sees
// tokens j <= T - w + i; masked entries 0.
matrix attention_rows(const std::vector<double>& k, std::int64_t T, const std::vector<double>& q, std::int64_t w, int d,
                      double scale) {
  matrix a(static_cast<std::size_t>(w), std::vector<double>(std::size_t(T), 0.0));
  for (std::int64_t i = 0; i < w; ++i) {
    const std::int64_t seen = T - w + i + 1;
    double m = -1e300, sum = 0.0;
    std::vector<double> s(static_cast<std::size_t>(seen));
    for (std::int64_t j = 0; j < seen; ++j) {
      double dot = 0.0;
      for (int c = 0; c < d; ++c) dot += q[std::size_t(i * d + c)] * k[std::size_t(j * d + c)];
      s[std::size_t(j)] = scale * dot;
      m = std::max(m, s[std::size_t(j)]);
    }
    for (std::int64_t j = 0; j < seen; ++j) sum += std::exp(s[std::size_t(j)] - m);
    for (std::int64_t j = 0; j < seen; ++j) a[std::size_t(i)][std::size_t(j)] = std::exp(s[std::size_t(j)] - m) / sum;
  }
  return a;
}

// Rows of head h of a [heads, T, d] buffer, or w rows from row `first` of a [heads, n, d] buffer.
std::vector<double> rows_of(const std::vector<float>& x, std::int64_t n, int d, int h, std::int64_t first,
                            std::int64_t count) {
  const auto* p = x.data() + (h * n + first) * d;
  return std::vector<double>(p, p + count * d);
}

enum class scorer { h2o, observed, snapkv_avg, snapkv_max, tova };

// Per KV head scores of a window scorer over heads of given lengths (keys: one
// [T_h, d] buffer per head), queries [q_heads, n, d], group mean or max.
std::vector<std::vector<double>> window_reference(scorer kind, const std::vector<std::vector<float>>& keys,
                                                  const std::vector<float>& queries, int q_heads, std::int64_t n, int d,
                                                  double scale, std::int64_t w, int kernel, group_reduce reduce) {
  const int kv_heads = int(keys.size()), g = q_heads / kv_heads;
  std::vector<std::vector<double>> per_query;
  for (int qh = 0; qh < q_heads; ++qh) {
    const std::vector<float>& kh = keys[std::size_t(qh / g)];
    const std::int64_t T = std::int64_t(kh.size()) / d;
    const std::int64_t rows = kind == scorer::tova ? 1 : w;
    const matrix a = attention_rows(std::vector<double>(kh.begin(), kh.end()), T,
                                    rows_of(queries, n, d, qh, n - rows, rows), rows, d, scale);
    std::vector<double> s(static_cast<std::size_t>(T), 0.0);
    for (std::int64_t j = 0; j < T; ++j) {
      double col = 0.0;
      for (std::int64_t i = 0; i < rows; ++i) col += a[std::size_t(i)][std::size_t(j)];
      s[std::size_t(j)] = kind == scorer::observed ? col / double(std::min(w, T - j)) : col;
    }
    if (kind == scorer::snapkv_avg || kind == scorer::snapkv_max) {
      const std::int64_t prefix = T - w;
      std::vector<double> pooled(static_cast<std::size_t>(prefix));
      for (std::int64_t j = 0; j < prefix; ++j) {
        double acc = kind == scorer::snapkv_max ? -1e300 : 0.0;
        for (std::int64_t k = j - kernel / 2; k <= j + kernel / 2; ++k) {
          const double v = k >= 0 && k < prefix ? s[std::size_t(k)] / double(w) : 0.0;
          if (kind == scorer::snapkv_max && k >= 0 && k < prefix) acc = std::max(acc, v);
          if (kind == scorer::snapkv_avg) acc += v / kernel;
        }
        pooled[std::size_t(j)] = acc;
      }
      s = pooled;
    }
    per_query.push_back(s);
  }
  std::vector<std::vector<double>> out;
  for (int h = 0; h < kv_heads; ++h) {
    const int members = kind == scorer::tova ? q_heads : g;  // TOVA: every query head
    const int base = kind == scorer::tova ? 0 : h * g;
    std::vector<double> s = per_query[std::size_t(base)];
    for (int i = 1; i < members; ++i)
      for (std::size_t j = 0; j < s.size(); ++j)
        s[j] = reduce == group_reduce::max && kind != scorer::tova ? std::max(s[j], per_query[std::size_t(base + i)][j])
                                                                   : s[j] + per_query[std::size_t(base + i)][j];
    if (reduce == group_reduce::mean || kind == scorer::tova)
      for (double& v : s) v /= members;
    if (kind == scorer::snapkv_avg || kind == scorer::snapkv_max) s.resize(s.size() + std::size_t(w), double(inf));
    out.push_back(s);
  }
  return out;
}

// LagKV of one head (keys, values T x d): see the header.
std::vector<double> lagkv_reference(const std::vector<float>& k, const std::vector<float>& v, std::int64_t T, int d,
                                    int sinks, int lag, bool rank) {
  std::vector<double> out(static_cast<std::size_t>(T), double(inf));
  if (T < sinks + 2 * lag) {
    for (std::int64_t t = sinks; t < T; ++t) out[std::size_t(t)] = double(t - sinks) / double(T - sinks);
    return out;
  }
  auto side_scores = [&](const std::vector<float>& x, std::int64_t t0) {
    std::vector<double> s(static_cast<std::size_t>(lag));
    for (int i = 0; i < lag; ++i) {
      std::vector<double> z(static_cast<std::size_t>(d));
      for (int c = 0; c < d; ++c) {
        double lo = 1e300, hi = -1e300;
        for (int r = 0; r < lag; ++r) {
          lo = std::min(lo, double(x[std::size_t((t0 + lag + r) * d + c)]));
          hi = std::max(hi, double(x[std::size_t((t0 + lag + r) * d + c)]));
        }
        z[std::size_t(c)] = hi > lo ? (x[std::size_t((t0 + i) * d + c)] - lo) / (hi - lo) : 0.0;
      }
      double mean = 0.0, var = 0.0;
      for (double e : z) mean += e / d;
      for (double e : z) var += (e - mean) * (e - mean);
      s[std::size_t(i)] = std::sqrt(var / (d - 1));
    }
    double sum = 0.0;
    for (double e : s) sum += std::exp(e);
    for (double& e : s) e = std::exp(e) / sum;
    return s;
  };
  const std::int64_t partitions = (T - sinks) / lag;
  for (std::int64_t p = 0; p + 1 < partitions; ++p) {
    const std::int64_t t0 = sinks + p * lag;
    const auto ks = side_scores(k, t0), vs = side_scores(v, t0);
    for (int i = 0; i < lag; ++i) {
      const double s = (ks[std::size_t(i)] + vs[std::size_t(i)]) / 2;
      if (!rank) {
        out[std::size_t(t0 + i)] = s;
        continue;
      }
      int below = 0;
      for (int j = 0; j < lag; ++j) {
        const double o = (ks[std::size_t(j)] + vs[std::size_t(j)]) / 2;
        below += o < s || (o == s && j < i);
      }
      out[std::size_t(t0 + i)] = double(below) / lag;
    }
  }
  return out;
}

// The averaged RoPE matrix mean_p R(p) (d x d), R(p) built whole.
matrix mean_rope(int d, std::int64_t first, int count, double theta, rope_pairing pairing) {
  matrix r(static_cast<std::size_t>(d), std::vector<double>(std::size_t(d), 0.0));
  for (std::int64_t p = first; p < first + count; ++p)
    for (int i = 0; i < d / 2; ++i) {
      const double angle = double(p) * std::pow(theta, -2.0 * i / d);
      const int a = pairing == rope_pairing::half_split ? i : 2 * i;
      const int b = pairing == rope_pairing::half_split ? i + d / 2 : 2 * i + 1;
      r[std::size_t(a)][std::size_t(a)] += std::cos(angle) / count;
      r[std::size_t(a)][std::size_t(b)] -= std::sin(angle) / count;
      r[std::size_t(b)][std::size_t(a)] += std::sin(angle) / count;
      r[std::size_t(b)][std::size_t(b)] += std::cos(angle) / count;
    }
  return r;
}

// Expected Attention of a dense layer (keys, values [kv, T, d]; pre-RoPE queries [q, n, d]).
std::vector<std::vector<double>> expected_reference(const std::vector<float>& keys, const std::vector<float>& values,
                                                    int kv_heads, std::int64_t T, const std::vector<float>& queries,
                                                    int q_heads, std::int64_t n, int d,
                                                    const expected_attention_options& o) {
  const int g = q_heads / kv_heads;
  const double scale = o.attention.scale ? *o.attention.scale : 1.0 / std::sqrt(double(d));
  const matrix r = mean_rope(d, o.next_position.value_or(T), o.n_future, o.rope_theta, o.pairing);
  std::vector<std::vector<double>> out(static_cast<std::size_t>(kv_heads), std::vector<double>(std::size_t(T), 0.0));
  for (int qh = 0; qh < q_heads; ++qh) {
    const int h = qh / g;
    const std::int64_t m = n - o.sinks;
    const std::vector<double> x = rows_of(queries, n, d, qh, o.sinks, m);
    std::vector<double> mu(static_cast<std::size_t>(d), 0.0);
    matrix sigma(static_cast<std::size_t>(d), std::vector<double>(std::size_t(d), 0.0));
    for (std::int64_t i = 0; i < m; ++i)
      for (int c = 0; c < d; ++c) mu[std::size_t(c)] += x[std::size_t(i * d + c)] / double(m);
    if (o.use_covariance)
      for (std::int64_t i = 0; i < m; ++i)
        for (int a = 0; a < d; ++a)
          for (int b = 0; b < d; ++b)
            sigma[std::size_t(a)][std::size_t(b)] +=
                (x[std::size_t(i * d + a)] - mu[std::size_t(a)]) * (x[std::size_t(i * d + b)] - mu[std::size_t(b)]) / double(m);
    std::vector<double> mu_r(static_cast<std::size_t>(d), 0.0);
    matrix rs(static_cast<std::size_t>(d), std::vector<double>(std::size_t(d), 0.0)), sigma_r = rs;
    for (int a = 0; a < d; ++a)
      for (int b = 0; b < d; ++b) {
        mu_r[std::size_t(a)] += r[std::size_t(a)][std::size_t(b)] * mu[std::size_t(b)];
        for (int c = 0; c < d; ++c) rs[std::size_t(a)][std::size_t(b)] += r[std::size_t(a)][std::size_t(c)] * sigma[std::size_t(c)][std::size_t(b)];
      }
    for (int a = 0; a < d; ++a)
      for (int b = 0; b < d; ++b)
        for (int c = 0; c < d; ++c) sigma_r[std::size_t(a)][std::size_t(b)] += rs[std::size_t(a)][std::size_t(c)] * r[std::size_t(b)][std::size_t(c)];
    std::vector<double> e;
    for (std::int64_t t = o.sinks; t < T; ++t) {
      const float* k = keys.data() + (h * T + t) * d;
      double lin = 0.0, quad = 0.0;
      for (int a = 0; a < d; ++a) {
        lin += mu_r[std::size_t(a)] * k[a];
        for (int b = 0; b < d; ++b) quad += k[a] * sigma_r[std::size_t(a)][std::size_t(b)] * k[b];
      }
      e.push_back(scale * lin + scale * scale * quad / 2);
    }
    const double mx = *std::max_element(e.begin(), e.end());
    double sum = 0.0;
    for (double v : e) sum += std::exp(v - mx);
    for (std::size_t i = 0; i < e.size(); ++i) {
      const double a = std::exp(e[i] - mx) / sum;
      double& s = out[std::size_t(h)][std::size_t(o.sinks) + i];
      s = o.attention.reduce == group_reduce::max ? (qh % g ? std::max(s, a) : a) : s + a / g;
    }
  }
  for (int h = 0; h < kv_heads; ++h)
    for (std::int64_t t = 0; t < T; ++t) {
      double& s = out[std::size_t(h)][std::size_t(t)];
      if (t < o.sinks) {
        s = double(inf);
        continue;
      }
      if (!o.use_vnorm) continue;
      double nv = 0.0;
      for (int c = 0; c < d; ++c) nv += double(values[std::size_t((h * T + t) * d + c)]) * values[std::size_t((h * T + t) * d + c)];
      s = (s + o.epsilon) * std::sqrt(nv);
    }
  return out;
}

// check() on the reference kernels, then on every Highway target.
template <class Check>
void for_every_backend(Check check) {
  cinch::force_backend(cinch::backend_kind::ref);
  {
    INFO("backend ref");
    check();
  }
  cinch::force_backend(std::nullopt);
  for_each_cpu_target([&](const std::string&) { check(); });
}

std::vector<std::int32_t> range(std::int32_t first, std::int32_t last) {
  std::vector<std::int32_t> out;
  for (std::int32_t i = first; i < last; ++i) out.push_back(i);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- hand-computed cases

TEST_CASE("window scorers on a hand-computed 4-token head", "[kv][score]") {
  // k_j = (sqrt(2) ln a_j, 0), q = (1, 0): with the default scale 1/sqrt(2) the
  // logits are ln a_j, a = (1, 2, 1, 4). Window of 2: query 0 sees tokens 0..2,
  // query 1 all four.
  //   row 0: (1, 2, 1) / 4     = 0.25  0.5  0.25  -
  //   row 1: (1, 2, 1, 4) / 8  = 0.125 0.25 0.125 0.5
  const float r2 = std::sqrt(2.0f);
  const std::vector<float> keys{0.0f, 0.0f, r2 * std::log(2.0f), 0.0f, 0.0f, 0.0f, r2 * std::log(4.0f), 0.0f};
  const std::vector<float> queries{1.0f, 0.0f, 1.0f, 0.0f};
  const tensor_view k = view3(keys, 1, 4, 2), q = view3(queries, 1, 2, 2);
  using V = std::vector<std::vector<double>>;

  check_close(h2o_scores(k, q), V{{0.375, 0.75, 0.375, 0.5}}, 1e-6);
  // mean over the queries that see each token: 2, 2, 2, 1
  check_close(observed_attention_scores(k, q), V{{0.1875, 0.375, 0.1875, 0.5}}, 1e-6);
  // SnapKV: the window's two tokens +inf, before it the row mean (0.1875, 0.375), pooled
  snapkv_options snap;
  snap.window = 2;
  snap.kernel = 1;
  check_close(snapkv_scores(k, q, snap), V{{0.1875, 0.375, inf, inf}}, 1e-6);
  snap.kernel = 3;  // avg pool counts the zero padding: (0 + .1875 + .375) / 3 twice
  check_close(snapkv_scores(k, q, snap), V{{0.1875, 0.1875, inf, inf}}, 1e-6);
  snap.pool = pooling::max;
  check_close(snapkv_scores(k, q, snap), V{{0.375, 0.375, inf, inf}}, 1e-6);
  // TOVA: the last query's row
  check_close(tova_scores(k, q), V{{0.125, 0.25, 0.125, 0.5}}, 1e-6);
  // An explicit scale: logits sqrt(2) ln a_j, i.e. weights a_j^sqrt(2).
  tova_options scaled;
  scaled.scale = 1.0f;
  const double w[] = {1.0, std::pow(2.0, std::sqrt(2.0)), 1.0, std::pow(4.0, std::sqrt(2.0))};
  const double sum = w[0] + w[1] + w[2] + w[3];
  check_close(tova_scores(k, q, scaled), V{{w[0] / sum, w[1] / sum, w[2] / sum, w[3] / sum}}, 1e-6);

  // H2O decode: a step of one query adds its row; the total grows with the new token.
  head_scores total{0.375, 0.75, 0.375};
  h2o_accumulate(total, std::vector<float>{0.125f, 0.25f, 0.125f, 0.5f});
  CHECK(total == head_scores{0.5f, 1.0f, 0.5f, 0.5f});
}

TEST_CASE("key scorers on hand-computed keys", "[kv][score]") {
  // KNorm: -||k||.
  const std::vector<float> keys{3, 4, 1, 0, 0, 0, 1, 1};
  const auto norms = knorm_scores(view3(keys, 1, 4, 2));
  check_close(norms, {{-5.0, -1.0, 0.0, -std::sqrt(2.0)}}, 1e-7);
  // KNorm keeps the smallest norms.
  CHECK(select_top_k(norms, budget::tokens(2))[0] == keep_list{1, 2});

  // KeyDiff: normalized keys (1,0), (0,1), (1,1)/sqrt2 average along (1,1): cosines 1/sqrt2, 1/sqrt2, 1.
  const std::vector<float> diff{1, 0, 0, 2, 1, 1};
  check_close(keydiff_scores(view3(diff, 1, 3, 2)), {{-std::sqrt(0.5), -std::sqrt(0.5), -1.0}}, 1e-6);
  // A zero key has cosine 0 (the norm floor), and leaves the anchor alone.
  const std::vector<float> with_zero{1, 0, 0, 0};
  check_close(keydiff_scores(view3(with_zero, 1, 2, 2)), {{-1.0, 0.0}}, 1e-7);

  // StreamingLLM: sinks +inf, then minus the age.
  const std::vector<float> six(12, 1.0f);
  check_close(streaming_llm_scores(view3(six, 1, 6, 2), {2}), {{inf, inf, -3.0, -2.0, -1.0, 0.0}}, 0.0);
  check_close(streaming_llm_scores(view3(six, 1, 6, 2)), {{inf, inf, inf, inf, -1.0, 0.0}}, 0.0);  // default 4 sinks
}

TEST_CASE("LagKV on a hand-sized head: one scored partition, sink and tail protected", "[kv][score]") {
  // sinks 1, lag 2, T = 6: partition [1, 3) is scored against [3, 5); the sink and [3, 6) are +inf.
  const int d = 3;
  const std::vector<float> keys{9, 9, 9, /**/ 1, 2, 3, /**/ 0, 5, 1, /**/ 0, 1, 2, /**/ 2, 3, 2, /**/ 7, 7, 7};
  const std::vector<float> values{5, 5, 5, /**/ 2, 2, 0, /**/ 1, 0, 3, /**/ 1, 0, 0, /**/ 3, 1, 4, /**/ 6, 6, 6};
  lagkv_options o;
  o.sinks = 1;
  o.lag = 2;
  o.rank = false;
  // By hand, keys: ref lo = (0,1,2), hi = (2,3,2): token 1 z = (0.5, 0.5, 0) (channel 2 has no range),
  // std = sqrt(1/12); token 2 z = (0, 2, 0), std = sqrt(4/3); softmax over the two.
  const double ks1 = std::sqrt(1.0 / 12), ks2 = std::sqrt(4.0 / 3);
  // values: lo = (1,0,0), hi = (3,1,4): token 1 z = (0.5, 2, 0), token 2 z = (0, 0, 0.75).
  auto sd = [](double a, double b, double c) {
    const double m = (a + b + c) / 3;
    return std::sqrt(((a - m) * (a - m) + (b - m) * (b - m) + (c - m) * (c - m)) / 2);
  };
  const double vs1 = sd(0.5, 2, 0), vs2 = sd(0, 0, 0.75);
  const double k1 = std::exp(ks1) / (std::exp(ks1) + std::exp(ks2)), v1 = std::exp(vs1) / (std::exp(vs1) + std::exp(vs2));
  const double s1 = (k1 + v1) / 2, s2 = (1 - k1 + 1 - v1) / 2;
  const auto got = lagkv_scores(view3(keys, 1, 6, d), view3(values, 1, 6, d), o);
  check_close(got, {{inf, s1, s2, inf, inf, inf}}, 1e-6);
  check_close(got, {lagkv_reference(keys, values, 6, d, 1, 2, false)}, 1e-6);
  o.rank = true;  // ranks within the partition, over lag
  check_close(lagkv_scores(view3(keys, 1, 6, d), view3(values, 1, 6, d), o), {{inf, s1 < s2 ? 0.0 : 0.5, s1 < s2 ? 0.5 : 0.0, inf, inf, inf}}, 0.0);
  // Too short for two partitions after the sinks: recency after the sink.
  o.lag = 3;
  check_close(lagkv_scores(view3(keys, 1, 6, d), view3(values, 1, 6, d), o), {{inf, 0.0, 0.2, 0.4, 0.6, 0.8}}, 1e-7);
}

TEST_CASE("Expected Attention equals the softmax of the Gaussian MGF exponent", "[kv][score]") {
  // Constant queries (no covariance), no future rotation (n_future 1 at position
  // 0: R = I), no sinks, no value norms: the attention row of that query.
  const float r2 = std::sqrt(2.0f);
  const std::vector<float> keys{0.0f, 0.0f, r2 * std::log(2.0f), 0.0f, 0.0f, 0.0f, r2 * std::log(4.0f), 0.0f};
  const std::vector<float> queries{1, 0, 1, 0, 1, 0};
  expected_attention_options o;
  o.sinks = 0;
  o.n_future = 1;
  o.next_position = 0;
  o.use_vnorm = false;
  check_close(expected_attention_scores(view3(keys, 1, 4, 2), view3(keys, 1, 4, 2), view3(queries, 1, 3, 2), o),
              {{0.125, 0.25, 0.125, 0.5}}, 1e-6);

  // Gaussian queries: softmax_t(exponent) is E_q[exp(s q.k_t)] normalized over t
  // (the MGF), checked by sampling (the statistics are the samples' own).
  const int d = 4, n = 200000, T = 6;
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  const double mu[d] = {0.3, -0.2, 0.5, 0.1};
  const double l[d][d] = {{0.6, 0, 0, 0}, {0.2, 0.5, 0, 0}, {-0.1, 0.3, 0.4, 0}, {0.0, 0.1, -0.2, 0.3}};
  std::vector<float> gq(static_cast<std::size_t>(n) * d);
  for (int i = 0; i < n; ++i) {
    double z[d];
    for (double& v : z) v = normal(rng);
    for (int a = 0; a < d; ++a) {
      double x = mu[a];
      for (int b = 0; b <= a; ++b) x += l[a][b] * z[b];
      gq[std::size_t(i * d + a)] = float(x);
    }
  }
  const std::vector<float> gk = random_values(std::size_t(T) * d, 11, 0.8f);
  o.epsilon = 0.0f;
  const auto got = expected_attention_scores(view3(gk, 1, T, d), view3(gk, 1, T, d), view3(gq, 1, n, d), o);
  std::vector<double> sampled(T, 0.0);
  for (int i = 0; i < n; ++i)
    for (int t = 0; t < T; ++t) {
      double dot = 0.0;
      for (int c = 0; c < d; ++c) dot += double(gq[std::size_t(i * d + c)]) * gk[std::size_t(t * d + c)];
      sampled[std::size_t(t)] += std::exp(dot / 2.0) / n;  // scale 1/sqrt(4)
    }
  double sum = 0.0;
  for (double v : sampled) sum += v;
  for (double& v : sampled) v /= sum;
  check_close(got, {sampled}, 0.006);
}

// ---------------------------------------------------------------- against straightforward formulas

TEST_CASE("window scorers match direct attention rows on ragged cache heads, every backend", "[kv][score]") {
  const int kv_heads = 3, q_heads = 6;
  const std::int64_t lengths[] = {37, 20, 64};
  const std::int64_t n = 11;  // query rows; SnapKV uses the last 8
  for (const int d : {16, 20}) {  // 20: no whole vector of 8 or 16 lanes
    INFO("head_dim " << d);
    cache c({2, kv_heads, d, format{scheme::f32}, format{scheme::f32}});
    std::vector<std::vector<float>> keys;
    for (int h = 0; h < kv_heads; ++h) {
      keys.push_back(random_values(std::size_t(lengths[h] * d), 100 + h));
      const std::vector<float> v = random_values(std::size_t(lengths[h] * d), 200 + h);
      c.append(1, h, tensor_view(keys.back().data(), dtype::f32, {lengths[h], d}),
               tensor_view(v.data(), dtype::f32, {lengths[h], d}));
    }
    const std::vector<float> queries = random_values(std::size_t(q_heads * n * d), 300, 1.5f);
    const tensor_view q = view3(queries, q_heads, n, d);
    const double scale = 1.0 / std::sqrt(double(d));
    for_every_backend([&] {
      for (group_reduce reduce : {group_reduce::mean, group_reduce::max}) {
        INFO("reduce " << int(reduce));
        attention_options a;
        a.reduce = reduce;
        check_close(h2o_scores(c, 1, q, a),
                    window_reference(scorer::h2o, keys, queries, q_heads, n, d, scale, n, 1, reduce), 1e-5);
        check_close(observed_attention_scores(c, 1, q, a),
                    window_reference(scorer::observed, keys, queries, q_heads, n, d, scale, n, 1, reduce), 1e-5);
        snapkv_options s;
        s.window = 8;
        s.attention = a;
        check_close(snapkv_scores(c, 1, q, s),
                    window_reference(scorer::snapkv_avg, keys, queries, q_heads, n, d, scale, 8, 5, reduce), 1e-5);
        s.pool = pooling::max;
        s.kernel = 7;
        check_close(snapkv_scores(c, 1, q, s),
                    window_reference(scorer::snapkv_max, keys, queries, q_heads, n, d, scale, 8, 7, reduce), 1e-5);
      }
    });
  }
  // A window of 70 rows spans two blocks of attention rows (64 at a time), and
  // 600 tokens two of the ranges the logits are computed in.
  const int d = 16;
  const std::vector<float> long_q = random_values(std::size_t(2 * 70 * d), 301);
  const std::vector<float> long_k = random_values(std::size_t(600 * d), 302);
  cache one({1, 1, d, format{scheme::f32}, format{scheme::f32}});
  one.append(0, 0, tensor_view(long_k.data(), dtype::f32, {600, d}), tensor_view(long_k.data(), dtype::f32, {600, d}));
  check_close(h2o_scores(one, 0, view3(long_q, 2, 70, d)),
              window_reference(scorer::h2o, {long_k}, long_q, 2, 70, d, 0.25, 70, 1, group_reduce::mean), 1e-5);
  check_close(observed_attention_scores(one, 0, view3(long_q, 2, 70, d)),
              window_reference(scorer::observed, {long_k}, long_q, 2, 70, d, 0.25, 70, 1, group_reduce::mean), 1e-5);
}

TEST_CASE("TOVA averages the last query over every head: the same scores for all heads", "[kv][score]") {
  const int kv_heads = 2, q_heads = 4, d = 8, T = 30, n = 3;
  const std::vector<float> keys = random_values(std::size_t(kv_heads * T * d), 1);
  const std::vector<float> queries = random_values(std::size_t(q_heads * n * d), 2);
  const auto got = tova_scores(view3(keys, kv_heads, T, d), view3(queries, q_heads, n, d));
  std::vector<std::vector<float>> per_head{std::vector<float>(keys.begin(), keys.begin() + T * d),
                                           std::vector<float>(keys.begin() + T * d, keys.end())};
  const auto want = window_reference(scorer::tova, per_head, queries, q_heads, n, d, 1.0 / std::sqrt(8.0), 1, 1,
                                     group_reduce::mean);
  check_close(got, want, 1e-5);
  CHECK(got[0] == got[1]);
  double sum = 0.0;  // a mean of attention rows: sums to 1
  for (float v : got[0]) sum += v;
  CHECK(sum == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("GQA: the query heads of a group are combined by mean or max", "[kv][score]") {
  // Each KV head alone with one query head gives that head's scores; the layer's
  // scores are their mean (sum in order / g) or max, bit for bit.
  const int kv_heads = 2, q_heads = 6, g = 3, d = 8, T = 40, n = 6;
  const std::vector<float> keys = random_values(std::size_t(kv_heads * T * d), 3);
  const std::vector<float> values = random_values(std::size_t(kv_heads * T * d), 4);
  const std::vector<float> queries = random_values(std::size_t(q_heads * n * d), 5, 2.0f);
  const tensor_view k = view3(keys, kv_heads, T, d), v = view3(values, kv_heads, T, d), q = view3(queries, q_heads, n, d);
  auto check_groups = [&](auto score, auto options) {
    for (group_reduce reduce : {group_reduce::mean, group_reduce::max}) {
      INFO("reduce " << int(reduce));
      options.attention.reduce = reduce;
      const auto all = score(k, v, q, options);
      for (int h = 0; h < kv_heads; ++h) {
        head_scores want;
        for (int i = 0; i < g; ++i) {
          const auto one = score(k.slice(0, h, h + 1), v.slice(0, h, h + 1), q.slice(0, h * g + i, h * g + i + 1), options)[0];
          if (i == 0) {
            want = one;
            continue;
          }
          for (std::size_t j = 0; j < want.size(); ++j)
            want[j] = reduce == group_reduce::max ? std::max(want[j], one[j]) : want[j] + one[j];
        }
        if (reduce == group_reduce::mean)
          for (float& x : want) x /= float(g);
        CHECK(all[std::size_t(h)] == want);
      }
    }
  };
  struct wrap {
    attention_options attention;
  };
  check_groups([](auto k, auto, auto q, const wrap& o) { return h2o_scores(k, q, o.attention); }, wrap{});
  check_groups([](auto k, auto, auto q, const wrap& o) { return observed_attention_scores(k, q, o.attention); }, wrap{});
  snapkv_options s;
  s.window = 4;
  s.pool = pooling::max;  // max pooling happens per query head, before the group
  check_groups([](auto k, auto, auto q, const snapkv_options& o) { return snapkv_scores(k, q, o); }, s);
  expected_attention_options e;
  e.use_vnorm = false;  // value norms apply after the group
  e.sinks = 1;
  check_groups([](auto k, auto v, auto q, const expected_attention_options& o) {
    return expected_attention_scores(k, v, q, o);
  }, e);
}

TEST_CASE("LagKV matches its partition formula on a longer head", "[kv][score]") {
  const int kv_heads = 2, d = 16, T = 61;
  const std::vector<float> keys = random_values(std::size_t(kv_heads * T * d), 21);
  const std::vector<float> values = random_values(std::size_t(kv_heads * T * d), 22);
  for (bool rank : {false, true}) {
    lagkv_options o;
    o.lag = 8;
    o.rank = rank;
    const auto got = lagkv_scores(view3(keys, kv_heads, T, d), view3(values, kv_heads, T, d), o);
    std::vector<std::vector<double>> want;
    for (int h = 0; h < kv_heads; ++h)
      want.push_back(lagkv_reference(std::vector<float>(keys.begin() + h * T * d, keys.begin() + (h + 1) * T * d),
                                     std::vector<float>(values.begin() + h * T * d, values.begin() + (h + 1) * T * d), T,
                                     d, 4, 8, rank));
    check_close(got, want, rank ? 0.0 : 1e-5);
    // 4 sinks, partitions [4, 12) .. [44, 52) scored, [52, 61) (last full partition + 1) protected.
    for (int t = 0; t < T; ++t) CHECK(std::isinf(got[0][std::size_t(t)]) == (t < 4 || t >= 52));
  }
}

TEST_CASE("Expected Attention matches averaged RoPE matrices, both pairings", "[kv][score]") {
  const int kv_heads = 2, q_heads = 4, d = 8, T = 25, n = 40;
  const std::vector<float> keys = random_values(std::size_t(kv_heads * T * d), 31);
  const std::vector<float> values = random_values(std::size_t(kv_heads * T * d), 32);
  const std::vector<float> queries = random_values(std::size_t(q_heads * n * d), 33, 1.3f);
  for (rope_pairing pairing : {rope_pairing::half_split, rope_pairing::interleaved})
    for (bool covariance : {true, false}) {
      INFO("pairing " << int(pairing) << " covariance " << covariance);
      expected_attention_options o;
      o.pairing = pairing;
      o.use_covariance = covariance;
      o.n_future = 64;
      o.rope_theta = 100.0;  // fast-turning pairs: the averaged rotation differs from I
      const auto got = expected_attention_scores(view3(keys, kv_heads, T, d), view3(values, kv_heads, T, d),
                                                 view3(queries, q_heads, n, d), o);
      check_close(got, expected_reference(keys, values, kv_heads, T, queries, q_heads, n, d, o), 1e-4);
      o.next_position = 1000;
      o.attention.reduce = group_reduce::max;
      const auto later = expected_attention_scores(view3(keys, kv_heads, T, d), view3(values, kv_heads, T, d),
                                                   view3(queries, q_heads, n, d), o);
      check_close(later, expected_reference(keys, values, kv_heads, T, queries, q_heads, n, d, o), 1e-4);
    }
}

// ---------------------------------------------------------------- properties under top-k

TEST_CASE("published properties survive selection", "[kv][score]") {
  const int d = 8, T = 50;
  const std::vector<float> keys = random_values(std::size_t(2 * T * d), 41);
  const std::vector<float> values = random_values(std::size_t(2 * T * d), 42);
  const std::vector<float> queries = random_values(std::size_t(2 * 16 * d), 43);
  const tensor_view k = view3(keys, 2, T, d), v = view3(values, 2, T, d);

  // SnapKV: the observation window is always kept.
  snapkv_options s;
  s.window = 16;
  const keep_list window = range(T - 16, T);
  for (const keep_list& kept : select_top_k(snapkv_scores(k, view3(queries, 2, 16, d), s), budget::tokens(20)))
    CHECK(std::includes(kept.begin(), kept.end(), window.begin(), window.end()));

  // StreamingLLM: sinks plus the most recent tokens.
  for (const keep_list& kept : select_top_k(streaming_llm_scores(k), budget::tokens(10))) {
    keep_list want = range(0, 4);
    for (std::int32_t t : range(T - 6, T)) want.push_back(t);
    CHECK(kept == want);
  }

  // LagKV: sinks and the reference-less tail kept under any budget that holds them.
  lagkv_options lag;
  lag.lag = 10;  // partitions [4,14) .. [34,44) scored, [44, 50) protected
  const keep_list sinks = range(0, 4), tail = range(34, 50);
  for (const keep_list& kept : select_top_k(lagkv_scores(k, v, lag), budget::tokens(20))) {
    CHECK(std::includes(kept.begin(), kept.end(), sinks.begin(), sinks.end()));
    CHECK(std::includes(kept.begin(), kept.end(), tail.begin(), tail.end()));
  }

  // KNorm: doubling a key's norm moves it out of the kept set.
  std::vector<float> scaled = keys;
  const auto before = knorm_scores(k)[0];
  const auto best = select_top_k(std::vector<head_scores>{before}, budget::tokens(1))[0][0];
  for (int c = 0; c < d; ++c) scaled[std::size_t(best * d + c)] *= 10.0f;
  CHECK(select_top_k(knorm_scores(view3(scaled, 2, T, d)), budget::tokens(1))[0][0] != best);

  // Expected Attention: the sinks score +inf.
  const auto ea = expected_attention_scores(k, v, view3(queries, 2, 16, d));
  for (int t = 0; t < 4; ++t) CHECK(ea[1][std::size_t(t)] == inf);
  CHECK(std::isfinite(ea[1][4]));
}

// ---------------------------------------------------------------- caches

TEST_CASE("quantized and rotated caches score as the dense f32 of their dequantized tensors", "[kv][score]") {
  struct fmt_case {
    format keys, values;
    int d;
  };
  format rotated_int8{scheme::int8};
  rotated_int8.rotate = true;
  format rotated_f16{scheme::f16};
  rotated_f16.rotate = true;
  const fmt_case cases[] = {
      {format{scheme::q8_0}, format{scheme::q8_0}, 32},
      {format::kivi(4, 32, 64), format::kivi(4, 32, 64), 64},  // packed chunks plus an f32 residual window
      {format{scheme::q4_0}, format::kivi(2), 64},
      {rotated_int8, rotated_f16, 32},
  };
  const int kv_heads = 2, q_heads = 4, T = 150, n = 70;
  for (const fmt_case& fc : cases) {
    const int d = fc.d;
    INFO("keys " << to_string(fc.keys.kind) << " values " << to_string(fc.values.kind) << " rotated " << fc.keys.rotate);
    cache c({1, kv_heads, d, fc.keys, fc.values});
    const std::vector<float> k = random_values(std::size_t(kv_heads * T * d), 51);
    const std::vector<float> v = random_values(std::size_t(kv_heads * T * d), 52);
    c.append(0, view3(k, kv_heads, T, d), view3(v, kv_heads, T, d));
    std::vector<float> dk(k.size()), dv(v.size());
    for (int h = 0; h < kv_heads; ++h)
      c.dequantize(0, h, tensor_view(dk.data() + h * T * d, dtype::f32, {T, d}),
                   tensor_view(dv.data() + h * T * d, dtype::f32, {T, d}));
    const tensor_view K = view3(dk, kv_heads, T, d), V = view3(dv, kv_heads, T, d);
    const std::vector<float> queries = random_values(std::size_t(q_heads * n * d), 53);
    const tensor_view q = view3(queries, q_heads, n, d);
    // Logits from the codes (the kernels' own rounding); other reads decode rows
    // as cache::dequantize does.
    const double tol = 1e-4;
    for_every_backend([&] {
      check_close(h2o_scores(c, 0, q), widen(h2o_scores(K, q)), tol, 1e-6);
      check_close(snapkv_scores(c, 0, q), widen(snapkv_scores(K, q)), tol, 1e-6);
      check_close(tova_scores(c, 0, q), widen(tova_scores(K, q)), tol, 1e-6);
    });
    check_close(observed_attention_scores(c, 0, q), widen(observed_attention_scores(K, q)), tol, 1e-6);
    check_close(knorm_scores(c, 0), widen(knorm_scores(K)), tol);
    check_close(keydiff_scores(c, 0), widen(keydiff_scores(K)), tol, 1e-6);
    lagkv_options lag;
    lag.lag = 32;
    lag.rank = false;
    check_close(lagkv_scores(c, 0, lag), widen(lagkv_scores(K, V, lag)), tol, 1e-6);
    check_close(expected_attention_scores(c, 0, q), widen(expected_attention_scores(K, V, q)), tol, 1e-6);
    check_close(streaming_llm_scores(c, 0), widen(streaming_llm_scores(K)), 0.0);
  }
}

TEST_CASE("a strided dense input scores as its contiguous copy", "[kv][score]") {
  // Token-major [T, kv_heads, d] seen as [kv_heads, T, d].
  const int kv_heads = 2, T = 20, d = 8;
  const std::vector<float> token_major = random_values(std::size_t(T * kv_heads * d), 61);
  std::vector<float> head_major(token_major.size());
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < kv_heads; ++h)
      for (int c = 0; c < d; ++c)
        head_major[std::size_t((h * T + t) * d + c)] = token_major[std::size_t((t * kv_heads + h) * d + c)];
  const tensor_view strided = tensor_view(token_major.data(), dtype::f32, {T, kv_heads, d}).permute({1, 0, 2});
  const tensor_view dense = view3(head_major, kv_heads, T, d);
  const std::vector<float> queries = random_values(std::size_t(kv_heads * 4 * d), 62);
  CHECK(h2o_scores(strided, view3(queries, kv_heads, 4, d)) == h2o_scores(dense, view3(queries, kv_heads, 4, d)));
  CHECK(knorm_scores(strided) == knorm_scores(dense));
  lagkv_options o;
  o.lag = 4;
  CHECK(lagkv_scores(strided, strided, o) == lagkv_scores(dense, dense, o));
}

// ---------------------------------------------------------------- errors

TEST_CASE("scorer argument errors", "[kv][score]") {
  const int d = 8, T = 10;
  const std::vector<float> keys = random_values(std::size_t(2 * T * d), 71);
  const std::vector<float> queries = random_values(std::size_t(4 * 12 * d), 72);
  const tensor_view k = view3(keys, 2, T, d), q = view3(queries, 4, 3, d);

  // q_heads not a multiple of kv_heads
  require_error([&] { (void)h2o_scores(k, view3(queries, 3, 3, d)); }, errc::shape_mismatch,
                {"kv::h2o_scores", "queries", "multiple of kv_heads", "[3, 3, 8]"});
  // window longer than the context
  require_error([&] { (void)observed_attention_scores(k, view3(queries, 4, 12, d)); }, errc::invalid_argument,
                {"kv::observed_attention_scores", "window of 12", "longer than the context", "10 tokens"});
  snapkv_options s;
  s.window = 11;
  require_error([&] { (void)snapkv_scores(k, view3(queries, 4, 12, d), s); }, errc::invalid_argument,
                {"kv::snapkv_scores", "window of 11"});
  s.window = 64;  // the default window needs 64 query rows
  require_error([&] { (void)snapkv_scores(k, q, s); }, errc::shape_mismatch, {"options.window (64)", "got 3"});
  // head_dim mismatch
  require_error([&] { (void)tova_scores(k, view3(queries, 4, 6, 4)); }, errc::shape_mismatch,
                {"kv::tova_scores", "head_dim", "[4, 6, 4]"});
  // wrong dtype and rank
  const std::vector<std::uint16_t> halves(std::size_t(2 * T * d));
  require_error([&] { (void)knorm_scores(tensor_view(halves.data(), dtype::f16, {2, T, d})); }, errc::invalid_argument,
                {"kv::knorm_scores", "keys", "dtype f32", "f16"});
  require_error([&] { (void)h2o_scores(k, tensor_view(halves.data(), dtype::f16, {2, T, d})); }, errc::invalid_argument,
                {"queries", "dtype f32"});
  require_error([&] { (void)keydiff_scores(tensor_view(keys.data(), dtype::f32, {2 * T, d})); }, errc::shape_mismatch,
                {"kv::keydiff_scores", "keys must be [kv_heads, T, head_dim]", "[20, 8]"});
  require_error([&] { (void)h2o_scores(k, tensor_view(queries.data(), dtype::f32, {4, d})); }, errc::shape_mismatch,
                {"queries must be [q_heads, w, head_dim]"});
  require_error([&] { (void)lagkv_scores(k, view3(keys, 1, 2 * T, d)); }, errc::shape_mismatch,
                {"kv::lagkv_scores", "values must have shape [2, 10, 8]"});
  require_error([&] { (void)h2o_scores(tensor_view(keys.data(), dtype::f32, {2, T, d}, cinch::cuda_device()), q); },
                errc::invalid_argument, {"keys must be on cpu"});
  const std::vector<float> odd = random_values(std::size_t(2 * T * 7), 73);
  require_error([&] { (void)expected_attention_scores(view3(odd, 2, T, 7), view3(odd, 2, T, 7), view3(odd, 2, T, 7)); },
                errc::unsupported, {"head_dim must be even", "got 7"});
  const std::vector<float> single = random_values(std::size_t(2 * T), 74);
  require_error([&] { (void)lagkv_scores(view3(single, 2, T, 1), view3(single, 2, T, 1)); }, errc::unsupported,
                {"head_dim must be >= 2"});

  // options
  attention_options bad_scale;
  bad_scale.scale = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { (void)h2o_scores(k, q, bad_scale); }, errc::invalid_argument, {"scale must be finite"});
  s = {};
  s.window = 2;
  s.kernel = 4;
  require_error([&] { (void)snapkv_scores(k, q, s); }, errc::invalid_argument, {"options.kernel must be odd", "got 4"});
  s.kernel = 5;
  s.window = 0;
  require_error([&] { (void)snapkv_scores(k, q, s); }, errc::invalid_argument, {"options.window must be >= 1", "got 0"});
  require_error([&] { (void)streaming_llm_scores(k, {-1}); }, errc::invalid_argument, {"options.sinks must be >= 0"});
  lagkv_options lag;
  lag.lag = 0;
  require_error([&] { (void)lagkv_scores(k, k, lag); }, errc::invalid_argument, {"options.lag must be >= 1", "got 0"});
  lag = {};
  lag.sinks = -2;
  require_error([&] { (void)lagkv_scores(k, k, lag); }, errc::invalid_argument, {"options.sinks must be >= 0", "got -2"});
  expected_attention_options e;
  require_error([&] { (void)expected_attention_scores(k, k, q); }, errc::shape_mismatch,
                {"queries must hold more rows than options.sinks (4)", "got 3"});
  const tensor_view q12 = view3(queries, 4, 12, d);
  e.n_future = 0;
  require_error([&] { (void)expected_attention_scores(k, k, q12, e); }, errc::invalid_argument, {"options.n_future"});
  e = {};
  e.rope_theta = 0.0;
  require_error([&] { (void)expected_attention_scores(k, k, q12, e); }, errc::invalid_argument, {"options.rope_theta"});
  e = {};
  e.epsilon = -1.0f;
  require_error([&] { (void)expected_attention_scores(k, k, q12, e); }, errc::invalid_argument, {"options.epsilon"});
  e = {};
  e.next_position = -1;
  require_error([&] { (void)expected_attention_scores(k, k, q12, e); }, errc::invalid_argument,
                {"options.next_position must be >= 0"});

  // H2O accumulation never shrinks
  head_scores total(5, 1.0f);
  require_error([&] { h2o_accumulate(total, std::vector<float>(4, 0.0f)); }, errc::shape_mismatch,
                {"kv::h2o_accumulate", "at least the 5 tokens", "got 4"});

  // caches: mixed precision, layer range, ragged heads for TOVA
  cache mixed({1, 2, d, format{scheme::f16}, format{scheme::f16}}, mixed_precision{format{scheme::int8}, format{scheme::int8}});
  {  // while part 1 is empty (before MiKV's demote) a mixed cache scores as its part 0 alone
    cache single({1, 2, d, format{scheme::f16}, format{scheme::f16}});
    std::vector<float> x(std::size_t(5 * d));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) - 3.0f;
    for (cache* c : {&mixed, &single})
      for (int h = 0; h < 2; ++h) c->append(0, h, tensor_view(x.data(), dtype::f32, {5, d}), tensor_view(x.data(), dtype::f32, {5, d}));
    REQUIRE(knorm_scores(mixed, 0) == knorm_scores(single, 0));
  }
  {
    std::vector<float> x(std::size_t(3 * d), 0.5f);
    const std::uint8_t low[] = {1, 0, 1};
    mixed.append(0, 1, tensor_view(x.data(), dtype::f32, {3, d}), tensor_view(x.data(), dtype::f32, {3, d}), {}, low);
  }
  require_error([&] { (void)knorm_scores(mixed, 0); }, errc::unsupported,
                {"kv::knorm_scores", "part 1 of a mixed-precision cache", "got 1 in head 1"});
  require_error([&] { (void)snapkv_scores(mixed, 0, q); }, errc::unsupported, {"kv::snapkv_scores", "mixed-precision"});
  cache ragged({2, 2, d, format{scheme::f32}, format{scheme::f32}});
  require_error([&] { (void)h2o_scores(ragged, 2, q); }, errc::invalid_argument, {"layer must be in [0, 2)", "got 2"});
  require_error([&] { (void)lagkv_scores(ragged, -1); }, errc::invalid_argument, {"kv::lagkv_scores", "layer"});
  ragged.append(0, 0, tensor_view(keys.data(), dtype::f32, {T, d}), tensor_view(keys.data(), dtype::f32, {T, d}));
  ragged.append(0, 1, tensor_view(keys.data(), dtype::f32, {T - 1, d}), tensor_view(keys.data(), dtype::f32, {T - 1, d}));
  require_error([&] { (void)tova_scores(ragged, 0, q); }, errc::shape_mismatch,
                {"kv::tova_scores", "same number of tokens", "10 in head 0", "9 in head 1"});
  require_error([&] { (void)h2o_scores(ragged, 1, q); }, errc::invalid_argument,
                {"window of 3", "head 0 with 0 tokens"});
}
