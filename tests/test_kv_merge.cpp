// Merging instead of dropping. MiniCache: a hand-checked 2-D SLERP, exact
// retained rows, magnitude preservation, equal layers, the retained set against
// independently computed angles, zero and antipodal rows, memory. ZeroMerge / CAM:
// a hand-computed merge, dot vs L2, ties, order independence, the log-count
// attention property on duplicated tokens, counts, every head of a layer, bad input.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/merge.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>
#include <vector>

#include "error_matchers.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
namespace kv = cinch::kv;

namespace {

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> out(n);
  for (float& x : out) x = dist(gen);
  return out;
}

// Angle between two rows, in double.
double angle(const float* x, const float* y, std::int64_t d) {
  double xy = 0, xx = 0, yy = 0;
  for (std::int64_t c = 0; c < d; ++c) {
    xy += double(x[c]) * y[c];
    xx += double(x[c]) * x[c];
    yy += double(y[c]) * y[c];
  }
  return std::acos(std::clamp(xy / std::sqrt(xx * yy), -1.0, 1.0));
}

double norm(const float* x, std::int64_t d) {
  double s = 0;
  for (std::int64_t c = 0; c < d; ++c) s += double(x[c]) * x[c];
  return std::sqrt(s);
}

std::vector<float> restored(const kv::merged_layers& m, int layer) {
  const cinch::tensor t = m.restore(layer);
  const float* p = t.data<const float>();
  return {p, p + t.numel()};
}

std::vector<std::int32_t> retained_of(const kv::merged_layers& m, std::int64_t h) {
  const std::int64_t r = m.retained.size(1);
  const std::int32_t* p = m.retained.data<const std::int32_t>() + h * r;
  return {p, p + r};
}

}  // namespace

// ------------------------------------------------------------------ MiniCache

TEST_CASE("minicache: the shared direction of a 2-D pair is SLERP at t", "[kv][merge]") {
  // u_a = (1, 0), u_b = (0, 1): theta = pi / 2, e = (cos 0.3 pi, sin 0.3 pi) for t = 0.6.
  const std::vector<float> a{2.0f, 0.0f}, b{0.0f, 3.0f};
  const kv::merged_layers m =
      kv::minicache_merge(tensor_view(a.data(), dtype::f32, {1, 1, 2}), tensor_view(b.data(), dtype::f32, {1, 1, 2}),
                          {.t = 0.6, .retention = 0.0});
  REQUIRE(m.heads() == 1);
  REQUIRE(m.tokens() == 1);
  REQUIRE(m.head_dim() == 2);
  REQUIRE(m.retained.size(1) == 0);
  const float* e = m.directions.data<const float>();
  const double phi = 0.6 * std::numbers::pi / 2;
  CHECK(e[0] == Approx(std::cos(phi)).epsilon(1e-7));
  CHECK(e[1] == Approx(std::sin(phi)).epsilon(1e-7));
  CHECK(norm(e, 2) == Approx(1.0).epsilon(1e-7));
  CHECK(m.magnitudes.data<const float>()[0] == 2.0f);
  CHECK(m.magnitudes.data<const float>()[1] == 3.0f);
  const std::vector<float> ra = restored(m, 0), rb = restored(m, 1);
  CHECK(ra[0] == Approx(2 * std::cos(phi)));
  CHECK(ra[1] == Approx(2 * std::sin(phi)));
  CHECK(rb[0] == Approx(3 * std::cos(phi)));
  CHECK(rb[1] == Approx(3 * std::sin(phi)));

  // t = 0 gives layer a's direction, t = 1 layer b's: that layer restores exactly (to rounding).
  const auto at = [&](double t) {
    return kv::minicache_merge(tensor_view(a.data(), dtype::f32, {1, 1, 2}),
                               tensor_view(b.data(), dtype::f32, {1, 1, 2}), {.t = t, .retention = 0.0});
  };
  CHECK(restored(at(0.0), 0)[0] == Approx(2.0f).margin(1e-6));
  CHECK(restored(at(0.0), 0)[1] == Approx(0.0f).margin(1e-6));
  CHECK(restored(at(1.0), 1)[0] == Approx(0.0f).margin(1e-6));
  CHECK(restored(at(1.0), 1)[1] == Approx(3.0f).margin(1e-6));
}

TEST_CASE("minicache: retained tokens, magnitudes and SLERP angles on random layers", "[kv][merge]") {
  const std::int64_t heads = 3, tokens = 41, d = 7;
  const std::size_t n = std::size_t(heads * tokens * d);
  const std::vector<float> a = random_floats(n, 1), b = random_floats(n, 2);
  const double t = 0.6;
  const kv::merged_layers m = kv::minicache_merge(tensor_view(a.data(), dtype::f32, {heads, tokens, d}),
                                                  tensor_view(b.data(), dtype::f32, {heads, tokens, d}),
                                                  {.t = t, .retention = 0.1});
  const std::int64_t r = 4;  // floor(0.1 * 41)
  REQUIRE(m.retained.size(1) == r);
  REQUIRE(m.directions.size(1) == tokens - r);
  const std::vector<float> ra = restored(m, 0), rb = restored(m, 1);
  for (std::int64_t h = 0; h < heads; ++h) {
    // Retained = the r largest angles (independently computed), ascending.
    std::vector<std::int32_t> order(static_cast<std::size_t>(tokens));
    std::iota(order.begin(), order.end(), 0);
    const auto theta = [&](std::int64_t i) {
      return angle(&a[std::size_t((h * tokens + i) * d)], &b[std::size_t((h * tokens + i) * d)], d);
    };
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t x, std::int32_t y) { return theta(x) > theta(y); });
    std::vector<std::int32_t> expect(order.begin(), order.begin() + r);
    std::sort(expect.begin(), expect.end());
    CHECK(retained_of(m, h) == expect);
    for (std::int64_t i = 0; i < tokens; ++i) {
      const std::size_t at = std::size_t((h * tokens + i) * d);
      const bool kept = std::binary_search(expect.begin(), expect.end(), std::int32_t(i));
      if (kept) {  // bit-exact for both layers
        CHECK(std::equal(&ra[at], &ra[at] + d, &a[at]));
        CHECK(std::equal(&rb[at], &rb[at] + d, &b[at]));
        continue;
      }
      // Magnitude preservation, and the shared direction lies t theta from u_a, (1 - t) theta from u_b.
      CHECK(norm(&ra[at], d) == Approx(norm(&a[at], d)).epsilon(1e-6));
      CHECK(norm(&rb[at], d) == Approx(norm(&b[at], d)).epsilon(1e-6));
      CHECK(angle(&ra[at], &a[at], d) == Approx(t * theta(i)).margin(1e-3));
      CHECK(angle(&ra[at], &b[at], d) == Approx((1 - t) * theta(i)).margin(1e-3));
      CHECK(angle(&ra[at], &rb[at], d) == Approx(0.0).margin(1e-3));
    }
  }
}

TEST_CASE("minicache: equal layers restore exactly up to rounding", "[kv][merge]") {
  const std::int64_t heads = 2, tokens = 300, d = 16;
  const std::vector<float> a = random_floats(std::size_t(heads * tokens * d), 3);
  const tensor_view v(a.data(), dtype::f32, {heads, tokens, d});
  const kv::merged_layers m = kv::minicache_merge(v, v);
  CHECK(m.retained.size(1) == 15);  // 0.05 of 300
  for (int layer = 0; layer < 2; ++layer) {
    const std::vector<float> r = restored(m, layer);
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(r[i] == Approx(a[i]).margin(1e-6));
  }
}

TEST_CASE("minicache: zero rows, antipodal rows and strided layers", "[kv][merge]") {
  // Token 0: a zero; token 1: both zero; token 2: b = -a (antipodal); token 3: b = -a in 1-D terms of d = 3.
  const std::vector<float> a{0, 0, 0, 0, 0, 0, 1, 2, 2, 0, 0, 5};
  const std::vector<float> b{3, 0, 4, 0, 0, 0, -2, -4, -4, 0, 0, -1};
  const auto merge = [&](double retention) {
    return kv::minicache_merge(tensor_view(a.data(), dtype::f32, {1, 4, 3}),
                               tensor_view(b.data(), dtype::f32, {1, 4, 3}), {.t = 0.6, .retention = retention});
  };
  const kv::merged_layers m = merge(0.0);
  const std::vector<float> ra = restored(m, 0), rb = restored(m, 1);
  for (int c = 0; c < 6; ++c) {  // tokens 0 and 1 restore exactly
    CHECK(ra[std::size_t(c)] == Approx(a[std::size_t(c)]).margin(1e-6));
    CHECK(rb[std::size_t(c)] == Approx(b[std::size_t(c)]).margin(1e-6));
  }
  CHECK(std::all_of(m.directions.data<const float>() + 3, m.directions.data<const float>() + 6,
                    [](float x) { return x == 0.0f; }));  // both zero: e = 0
  for (std::int64_t i = 2; i < 4; ++i) {  // antipodal: a unit e at t pi from u_a, norms kept
    const std::size_t at = std::size_t(i * 3);
    CHECK(norm(m.directions.data<const float>() + at, 3) == Approx(1.0).epsilon(1e-6));
    CHECK(angle(&ra[at], &a[at], 3) == Approx(0.6 * std::numbers::pi).margin(1e-5));
    CHECK(norm(&ra[at], 3) == Approx(norm(&a[at], 3)).epsilon(1e-6));
    CHECK(norm(&rb[at], 3) == Approx(norm(&b[at], 3)).epsilon(1e-6));
  }
  // Zero rows rank as angle 0, antipodal ones as pi: retaining 2 of 4 keeps tokens 2 and 3.
  CHECK(retained_of(merge(0.5), 0) == std::vector<std::int32_t>{2, 3});
  // Ties rank toward the lower index.
  CHECK(retained_of(merge(0.25), 0) == std::vector<std::int32_t>{2});

  // No tokens: an empty merge that restores to an empty layer.
  const kv::merged_layers none = kv::minicache_merge(tensor_view(a.data(), dtype::f32, {2, 0, 3}),
                                                     tensor_view(b.data(), dtype::f32, {2, 0, 3}));
  CHECK(none.heads() == 2);
  CHECK(none.tokens() == 0);
  CHECK(none.bytes() == 0);
  CHECK(none.restore(1).numel() == 0);

  // A strided view (every other token of a buffer) merges like its dense copy.
  const std::vector<float> wide = random_floats(2 * 10 * 2 * 5, 4), wide_b = random_floats(2 * 10 * 2 * 5, 5);
  std::vector<float> dense_a, dense_b;
  for (std::size_t i = 0; i < wide.size(); i += 10)
    for (std::size_t c = 0; c < 5; ++c) {
      dense_a.push_back(wide[i + c]);
      dense_b.push_back(wide_b[i + c]);
    }
  const kv::merged_layers s = kv::minicache_merge(tensor_view(wide.data(), dtype::f32, {2, 10, 5}, {100, 10, 1}),
                                                  tensor_view(wide_b.data(), dtype::f32, {2, 10, 5}, {100, 10, 1}),
                                                  {.t = 0.6, .retention = 0.3});
  const kv::merged_layers dn = kv::minicache_merge(tensor_view(dense_a.data(), dtype::f32, {2, 10, 5}),
                                                   tensor_view(dense_b.data(), dtype::f32, {2, 10, 5}),
                                                   {.t = 0.6, .retention = 0.3});
  CHECK(restored(s, 0) == restored(dn, 0));
  CHECK(restored(s, 1) == restored(dn, 1));
  // restore into an engine's (strided) buffer.
  std::vector<float> out(2 * 10 * 8, -1.0f);
  s.restore(1, tensor_view(out.data(), dtype::f32, {2, 10, 5}, {80, 8, 1}));
  const std::vector<float> r1 = restored(dn, 1);
  for (std::size_t h = 0; h < 2; ++h)
    for (std::size_t i = 0; i < 10; ++i)
      for (std::size_t c = 0; c < 8; ++c)
        CHECK(out[h * 80 + i * 8 + c] == (c < 5 ? r1[(h * 10 + i) * 5 + c] : -1.0f));
}

TEST_CASE("minicache: memory against two dense layers", "[kv][merge]") {
  const std::int64_t heads = 2, tokens = 200, d = 128;
  const std::vector<float> a = random_floats(std::size_t(heads * tokens * d), 6),
                           b = random_floats(std::size_t(heads * tokens * d), 7);
  const kv::merged_layers m = kv::minicache_merge(tensor_view(a.data(), dtype::f32, {heads, tokens, d}),
                                                  tensor_view(b.data(), dtype::f32, {heads, tokens, d}));
  const std::int64_t r = 10, merged = tokens - r;
  // directions + two magnitudes per merged token; index + two rows per retained token.
  CHECK(m.bytes() == heads * (merged * d * 4 + 2 * merged * 4 + r * 4 + 2 * r * d * 4));
  const std::int64_t dense = 2 * heads * tokens * d * 4;
  CHECK(double(m.bytes()) / double(dense) == Approx(0.5326).margin(1e-3));
}

TEST_CASE("minicache: bad input", "[kv][merge]") {
  std::vector<float> a(2 * 4 * 6, 1.0f), b(2 * 4 * 6, 1.0f);
  const tensor_view va(a.data(), dtype::f32, {2, 4, 6}), vb(b.data(), dtype::f32, {2, 4, 6});
  require_error([&] { (void)kv::minicache_merge(va, tensor_view(b.data(), dtype::f32, {2, 3, 6})); },
                errc::shape_mismatch, {"kv::minicache_merge", "b", "[2, 4, 6]", "got [2, 3, 6]"});
  require_error([&] { (void)kv::minicache_merge(tensor_view(a.data(), dtype::f32, {8, 6}), vb); },
                errc::shape_mismatch, {"kv::minicache_merge", "a", "rank 3", "got rank 2"});
  require_error([&] { (void)kv::minicache_merge(tensor_view(a.data(), dtype::f16, {2, 4, 6}), vb); },
                errc::invalid_argument, {"kv::minicache_merge", "a", "f32", "got f16"});
  require_error([&] { (void)kv::minicache_merge(va, tensor_view(b.data(), dtype::f16, {2, 4, 6})); },
                errc::invalid_argument, {"b", "f32", "got f16"});
  require_error([&] { (void)kv::minicache_merge(tensor_view(a.data(), dtype::f32, {2, 4, 3}, {24, 6, 2}), vb); },
                errc::unsupported, {"kv::minicache_merge", "a", "dense"});
  require_error(
      [&] {
        (void)kv::minicache_merge(tensor_view(a.data(), dtype::f32, {2, 4, 3}),
                                  tensor_view(b.data(), dtype::f32, {2, 4, 3}, {24, 6, 2}));
      },
      errc::unsupported, {"b", "dense"});
  for (double t : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()})
    require_error([&] { (void)kv::minicache_merge(va, vb, {.t = t}); }, errc::invalid_argument,
                  {"kv::minicache_merge", "options.t", "[0, 1]"});
  require_error([&] { (void)kv::minicache_merge(va, vb, {.retention = 1.01}); }, errc::invalid_argument,
                {"options.retention", "[0, 1]", "got 1.01"});
  require_error([&] { (void)kv::minicache_merge(va, vb, {.retention = -1}); }, errc::invalid_argument,
                {"options.retention", "got -1"});

  const kv::merged_layers m = kv::minicache_merge(va, vb);
  require_error([&] { (void)m.restore(2); }, errc::invalid_argument, {"kv::merged_layers::restore", "layer", "got 2"});
  std::vector<float> out(2 * 4 * 6);
  require_error([&] { m.restore(-1, tensor_view(out.data(), dtype::f32, {2, 4, 6})); }, errc::invalid_argument,
                {"layer", "got -1"});
  require_error([&] { m.restore(0, tensor_view(out.data(), dtype::f32, {2, 6, 4})); }, errc::shape_mismatch,
                {"kv::merged_layers::restore", "out", "[2, 4, 6]", "got [2, 6, 4]"});
  require_error([&] { m.restore(0, tensor_view(out.data(), dtype::i32, {2, 4, 6})); }, errc::invalid_argument,
                {"out", "f32", "got i32"});
  require_error([&] { m.restore(0, tensor_view(out.data(), dtype::f32, {2, 4, 3}, {12, 3, 2})); }, errc::shape_mismatch,
                {"out", "[2, 4, 6]"});
  require_error(
      [&] { m.restore(0, tensor_view(static_cast<const float*>(out.data()), dtype::f32, {2, 4, 6})); },
      errc::invalid_argument, {"out", "writable"});
}

// ------------------------------------------------------------------ ZeroMerge / CAM

TEST_CASE("merge_evicted: a hand-computed 4-token head", "[kv][merge]") {
  // Keep tokens 0 and 1. Token 2's key dots 0.9 with k0, 0.1 with k1: into slot 0;
  // token 3's dots 0.2 and 0.8: into slot 1.
  const std::vector<float> keys{1, 0, 0, 1, 0.9f, 0.1f, 0.2f, 0.8f};
  const std::vector<float> values{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // value_dim 3
  const std::vector<float> w{1, 2, 3, 1};
  const kv::merged_tokens m = kv::merge_evicted(tensor_view(keys.data(), dtype::f32, {4, 2}),
                                                tensor_view(values.data(), dtype::f32, {4, 3}), {0, 1}, w);
  REQUIRE(m.keys.size(0) == 2);
  REQUIRE(m.values.size(1) == 3);
  CHECK(m.counts == std::vector<float>{4, 3});
  const float* k = m.keys.data<const float>();
  const float* v = m.values.data<const float>();
  CHECK(k[0] == Approx((1 * 1 + 3 * 0.9) / 4));  // (w0 k0 + w2 k2) / (w0 + w2)
  CHECK(k[1] == Approx((3 * 0.1) / 4));
  CHECK(k[2] == Approx((2 * 0 + 1 * 0.2) / 3));  // (w1 k1 + w3 k3) / (w1 + w3)
  CHECK(k[3] == Approx((2 * 1 + 1 * 0.8) / 3));
  CHECK(v[0] == Approx((1 * 1 + 3 * 7) / 4.0));
  CHECK(v[1] == Approx((1 * 2 + 3 * 8) / 4.0));
  CHECK(v[2] == Approx((1 * 3 + 3 * 9) / 4.0));
  CHECK(v[3] == Approx((2 * 4 + 1 * 10) / 3.0));
  CHECK(v[4] == Approx((2 * 5 + 1 * 11) / 3.0));
  CHECK(v[5] == Approx((2 * 6 + 1 * 12) / 3.0));

  // Default weights: plain means, counts 2 and 2.
  const kv::merged_tokens u = kv::merge_evicted(tensor_view(keys.data(), dtype::f32, {4, 2}),
                                                tensor_view(values.data(), dtype::f32, {4, 3}), {0, 1});
  CHECK(u.counts == std::vector<float>{2, 2});
  CHECK(u.values.data<const float>()[0] == 4.0f);  // (1 + 7) / 2
}

TEST_CASE("merge_evicted: dot against L2, ties to the lower slot, order independence", "[kv][merge]") {
  // Token 2 = (1, 0): dot prefers the long key (3, 0), L2 the near key (1.1, 0.1).
  const std::vector<float> keys{3, 0, 1.1f, 0.1f, 1, 0};
  const std::vector<float> values{10, 20, 30};
  const tensor_view kv3(keys.data(), dtype::f32, {3, 2}), vv3(values.data(), dtype::f32, {3, 1});
  CHECK(kv::merge_evicted(kv3, vv3, {0, 1}).counts == std::vector<float>{2, 1});
  CHECK(kv::merge_evicted(kv3, vv3, {0, 1}, {}, kv::merge_similarity::l2).counts == std::vector<float>{1, 2});
  CHECK(kv::merge_evicted(kv3, vv3, {0, 1}, {}, kv::merge_similarity::l2).values.data<const float>()[1] == 25.0f);

  // Token 0 = (0, 1) is equally similar to (1, 1) and (-1, 1) by both measures: the lower slot.
  const std::vector<float> tie{0, 1, 1, 1, -1, 1};
  const tensor_view kt(tie.data(), dtype::f32, {3, 2});
  for (auto sim : {kv::merge_similarity::dot, kv::merge_similarity::l2})
    CHECK(kv::merge_evicted(kt, vv3, {1, 2}, {}, sim).counts == std::vector<float>{2, 1});

  // The batched result equals the pairwise running average (w_i x_i + w_j x_j) / (w_i + w_j),
  // applied token by token in reverse order, against the original kept keys.
  const std::int64_t tokens = 50, d = 6;
  const std::vector<float> k = random_floats(std::size_t(tokens * d), 8), v = random_floats(std::size_t(tokens * d), 9);
  std::vector<float> w(static_cast<std::size_t>(tokens));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + float(i % 4);
  const kv::keep_list keep{0, 3, 7, 20, 21, 33, 49};
  const kv::merged_tokens m = kv::merge_evicted(tensor_view(k.data(), dtype::f32, {tokens, d}),
                                                tensor_view(v.data(), dtype::f32, {tokens, d}), keep, w);
  std::vector<double> sk, sv, cnt;
  for (std::int32_t j : keep) {
    sk.insert(sk.end(), &k[std::size_t(j * d)], &k[std::size_t((j + 1) * d)]);
    sv.insert(sv.end(), &v[std::size_t(j * d)], &v[std::size_t((j + 1) * d)]);
    cnt.push_back(w[std::size_t(j)]);
  }
  for (std::int64_t i = tokens - 1; i >= 0; --i) {
    if (std::binary_search(keep.begin(), keep.end(), std::int32_t(i))) continue;
    std::size_t best = 0;
    double best_dot = -1e300;
    for (std::size_t j = 0; j < keep.size(); ++j) {
      double dot = 0;
      for (std::int64_t c = 0; c < d; ++c) dot += double(k[std::size_t(i * d + c)]) * k[std::size_t(keep[j] * d + c)];
      if (dot > best_dot) best_dot = dot, best = j;
    }
    const double wi = w[std::size_t(i)], wj = cnt[best];
    for (std::int64_t c = 0; c < d; ++c) {
      double& xk = sk[best * std::size_t(d) + std::size_t(c)];
      double& xv = sv[best * std::size_t(d) + std::size_t(c)];
      xk = (wi * k[std::size_t(i * d + c)] + wj * xk) / (wi + wj);
      xv = (wi * v[std::size_t(i * d + c)] + wj * xv) / (wi + wj);
    }
    cnt[best] = wi + wj;
  }
  for (std::size_t j = 0; j < keep.size(); ++j) {
    CHECK(m.counts[j] == Approx(cnt[j]));
    for (std::size_t c = 0; c < std::size_t(d); ++c) {
      CHECK(m.keys.data<const float>()[j * std::size_t(d) + c] == Approx(sk[j * std::size_t(d) + c]).margin(1e-6));
      CHECK(m.values.data<const float>()[j * std::size_t(d) + c] == Approx(sv[j * std::size_t(d) + c]).margin(1e-6));
    }
  }
  CHECK(std::accumulate(m.counts.begin(), m.counts.end(), 0.0) == Approx(std::accumulate(w.begin(), w.end(), 0.0)));
}

TEST_CASE("merge_evicted: log-count attention over merged duplicates equals the unmerged cache", "[kv][merge]") {
  // Three distinct unit keys, duplicated: tokens u0 u1 u0 u2 u0 u1 (values follow the keys).
  const std::int64_t d = 8;
  const std::vector<float> base = random_floats(std::size_t(3 * d), 10);
  std::vector<float> unit(base.size()), vals = random_floats(std::size_t(3 * 5), 11);
  for (std::size_t j = 0; j < 3; ++j) {
    const double n = norm(&base[j * std::size_t(d)], d);
    for (std::size_t c = 0; c < std::size_t(d); ++c)
      unit[j * std::size_t(d) + c] = float(base[j * std::size_t(d) + c] / n);
  }
  const std::vector<int> pattern{0, 1, 0, 2, 0, 1};
  std::vector<float> keys, values;
  for (int p : pattern) {
    keys.insert(keys.end(), &unit[std::size_t(p * d)], &unit[std::size_t((p + 1) * d)]);
    values.insert(values.end(), &vals[std::size_t(p * 5)], &vals[std::size_t((p + 1) * 5)]);
  }
  const std::int64_t tokens = std::int64_t(pattern.size());
  const tensor_view kt(keys.data(), dtype::f32, {tokens, d}), vt(values.data(), dtype::f32, {tokens, 5});
  for (auto sim : {kv::merge_similarity::dot, kv::merge_similarity::l2}) {
    const kv::merged_tokens m = kv::merge_evicted(kt, vt, {0, 1, 3}, {}, sim);
    REQUIRE(m.counts == std::vector<float>{3, 2, 1});
    // Identical tokens average to themselves exactly.
    CHECK(std::equal(m.keys.data<const float>(), m.keys.data<const float>() + d, unit.data()));
    const std::vector<float> ones(std::size_t(tokens), 1.0f);
    for (std::uint32_t seed = 20; seed < 25; ++seed) {
      const std::vector<float> q = random_floats(std::size_t(d), seed);
      const tensor_view qv(q.data(), dtype::f32, {d});
      const std::vector<float> full = kv::attention_with_counts(qv, kt, vt, ones);
      const std::vector<float> merged = kv::attention_with_counts(qv, m.keys, m.values, m.counts);
      for (std::size_t c = 0; c < full.size(); ++c) CHECK(merged[c] == Approx(full[c]).epsilon(1e-6));
      // Without the bias (alpha = 0) the merged slots are under-weighted.
      const std::vector<float> plain = kv::attention_with_counts(qv, m.keys, m.values, m.counts, 0.0);
      double diff = 0;
      for (std::size_t c = 0; c < full.size(); ++c) diff += std::abs(double(plain[c]) - full[c]);
      CHECK(diff > 1e-3);
    }
  }
}

TEST_CASE("attention_with_counts: a hand-computed two-slot case", "[kv][merge]") {
  // q . k / sqrt(4) = 1 and 0; counts 1 and e: logits 1 and 1, equal weights.
  const std::vector<float> q{1, 1, 0, 0}, keys{1, 1, 0, 0, 0, 0, 3, 3}, values{2, 6};
  const std::vector<float> counts{1.0f, float(std::exp(1.0))};
  const std::vector<float> out = kv::attention_with_counts(tensor_view(q.data(), dtype::f32, {4}),
                                                           tensor_view(keys.data(), dtype::f32, {2, 4}),
                                                           tensor_view(values.data(), dtype::f32, {2, 1}), counts);
  CHECK(out[0] == Approx(4.0).epsilon(1e-6));
  // alpha = 0.5: logits 1 and 0.5.
  const std::vector<float> half =
      kv::attention_with_counts(tensor_view(q.data(), dtype::f32, {4}), tensor_view(keys.data(), dtype::f32, {2, 4}),
                                tensor_view(values.data(), dtype::f32, {2, 1}), counts, 0.5);
  const double p0 = std::exp(1.0) / (std::exp(1.0) + std::exp(0.5));
  CHECK(half[0] == Approx(2 * p0 + 6 * (1 - p0)).epsilon(1e-6));
}

TEST_CASE("merge_evicted: every head of a layer, counts sum to T", "[kv][merge]") {
  const std::int64_t heads = 3, tokens = 37, dk = 5, dv = 3;
  const std::vector<float> k = random_floats(std::size_t(heads * tokens * dk), 12),
                           v = random_floats(std::size_t(heads * tokens * dv), 13);
  const std::vector<kv::keep_list> keep{{0, 1, 2, 3, 36}, {5}, {0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}};
  const tensor_view kt(k.data(), dtype::f32, {heads, tokens, dk}), vt(v.data(), dtype::f32, {heads, tokens, dv});
  const std::vector<kv::merged_tokens> all = kv::merge_evicted(kt, vt, keep, {}, kv::merge_similarity::l2);
  REQUIRE(all.size() == 3);
  for (std::int64_t h = 0; h < heads; ++h) {
    const kv::merged_tokens& m = all[std::size_t(h)];
    CHECK(m.keys.size(0) == std::int64_t(keep[std::size_t(h)].size()));
    CHECK(m.values.size(1) == dv);
    CHECK(std::accumulate(m.counts.begin(), m.counts.end(), 0.0f) == float(tokens));
    const kv::merged_tokens one =
        kv::merge_evicted(kt.select(0, h), vt.select(0, h), keep[std::size_t(h)], {}, kv::merge_similarity::l2);
    CHECK(one.counts == m.counts);
    CHECK(std::equal(one.keys.data<const float>(), one.keys.data<const float>() + one.keys.numel(),
                     m.keys.data<const float>()));
  }
  // A single kept slot takes everything: the plain mean.
  const kv::merged_tokens single = all[1];
  double mean = 0;
  for (std::int64_t i = 0; i < tokens; ++i) mean += v[std::size_t((tokens + i) * dv)];
  CHECK(single.values.data<const float>()[0] == Approx(mean / double(tokens)).margin(1e-6));
  // Weighted, per head.
  const std::vector<std::vector<float>> w(3, std::vector<float>(std::size_t(tokens), 2.5f));
  const std::vector<kv::merged_tokens> weighted = kv::merge_evicted(kt, vt, keep, w);
  CHECK(std::accumulate(weighted[0].counts.begin(), weighted[0].counts.end(), 0.0f) == 2.5f * float(tokens));
  // No tokens: nothing to keep, nothing merged.
  const kv::merged_tokens empty = kv::merge_evicted(tensor_view(k.data(), dtype::f32, {0, dk}),
                                                    tensor_view(v.data(), dtype::f32, {0, dv}), kv::keep_list{});
  CHECK(empty.keys.size(0) == 0);
  CHECK(empty.counts.empty());
}

TEST_CASE("merge_evicted and attention_with_counts: bad input", "[kv][merge]") {
  std::vector<float> k(4 * 3, 1.0f), v(4 * 2, 1.0f);
  const tensor_view kt(k.data(), dtype::f32, {4, 3}), vt(v.data(), dtype::f32, {4, 2});
  const auto merge = [&](const kv::keep_list& keep, std::vector<float> w = {}) {
    return [=] { (void)kv::merge_evicted(kt, vt, keep, w); };
  };
  require_error(merge({1, 0}), errc::invalid_argument,
                {"kv::merge_evicted", "keep", "strictly ascending", "got 0 after 1"});
  require_error(merge({1, 1}), errc::invalid_argument, {"keep", "strictly ascending"});
  require_error(merge({0, 4}), errc::invalid_argument, {"keep[1]", "[0, 4)", "got 4"});
  require_error(merge({-1}), errc::invalid_argument, {"keep[0]", "got -1"});
  require_error(merge({}), errc::invalid_argument, {"keep", "not be empty", "4"});
  require_error(merge({0}, {1, 1, 1}), errc::shape_mismatch, {"weights", "one value per token (4)", "got 3"});
  require_error(merge({0}, {1, 0, 1, 1}), errc::invalid_argument, {"weights[1]", "> 0", "got 0"});
  require_error(merge({0}, {1, 1, -2, 1}), errc::invalid_argument, {"weights[2]", "got -2"});
  require_error(merge({0}, {1, 1, 1, std::numeric_limits<float>::infinity()}), errc::invalid_argument,
                {"weights[3]", "finite"});
  require_error(merge({0}, {std::numeric_limits<float>::quiet_NaN(), 1, 1, 1}), errc::invalid_argument,
                {"weights[0]"});
  require_error([&] { (void)kv::merge_evicted(kt, tensor_view(v.data(), dtype::f32, {3, 2}), {0}); },
                errc::shape_mismatch, {"kv::merge_evicted", "values", "4 tokens", "got [3, 2]"});
  require_error([&] { (void)kv::merge_evicted(tensor_view(k.data(), dtype::f16, {4, 3}), vt, {0}); },
                errc::invalid_argument, {"keys", "f32", "got f16"});
  require_error([&] { (void)kv::merge_evicted(tensor_view(k.data(), dtype::f32, {4, 1, 3}), vt, {0}); },
                errc::shape_mismatch, {"keys", "rank 2", "got rank 3"});
  require_error([&] { (void)kv::merge_evicted(kt, tensor_view(v.data(), dtype::f32, {4, 2}, {2, 2}), {0}); },
                errc::unsupported, {"values", "dense"});

  // Every head of a layer.
  const tensor_view k3(k.data(), dtype::f32, {2, 2, 3}), v3(v.data(), dtype::f32, {2, 2, 2});
  const std::vector<kv::keep_list> one_list{{0}};
  require_error([&] { (void)kv::merge_evicted(k3, v3, one_list); }, errc::shape_mismatch,
                {"kv::merge_evicted", "keep", "one list per head (2)", "got 1"});
  const std::vector<kv::keep_list> lists{{0}, {0, 2}};
  require_error([&] { (void)kv::merge_evicted(k3, v3, lists); }, errc::invalid_argument, {"keep[1][1]", "got 2"});
  const std::vector<kv::keep_list> ok{{0}, {1}};
  const std::vector<std::vector<float>> one_w{{1, 1}};
  require_error([&] { (void)kv::merge_evicted(k3, v3, ok, one_w); }, errc::shape_mismatch,
                {"weights", "one vector per head (2)", "got 1"});
  const std::vector<std::vector<float>> bad_w{{1, 1}, {1, 0}};
  require_error([&] { (void)kv::merge_evicted(k3, v3, ok, bad_w); }, errc::invalid_argument, {"weights[1][1]"});
  require_error([&] { (void)kv::merge_evicted(k3, tensor_view(v.data(), dtype::f32, {2, 1, 2}), ok); },
                errc::shape_mismatch, {"values", "heads and tokens", "got [2, 1, 2]"});

  // attention_with_counts.
  const std::vector<float> q(3, 1.0f), counts{1, 2, 3, 4};
  const tensor_view qv(q.data(), dtype::f32, {3});
  require_error([&] { (void)kv::attention_with_counts(qv, kt, vt, std::vector<float>{1, 2, 3}); }, errc::shape_mismatch,
                {"kv::attention_with_counts", "counts", "(4)", "got 3"});
  require_error([&] { (void)kv::attention_with_counts(qv, kt, vt, std::vector<float>{1, 2, 0, 4}); },
                errc::invalid_argument, {"counts[2]", "> 0"});
  require_error([&] { (void)kv::attention_with_counts(qv, kt, vt, counts, std::numeric_limits<double>::infinity()); },
                errc::invalid_argument, {"alpha", "finite"});
  require_error([&] { (void)kv::attention_with_counts(tensor_view(q.data(), dtype::f32, {2}), kt, vt, counts); },
                errc::shape_mismatch, {"keys", "head_dim 2", "got [4, 3]"});
  require_error([&] { (void)kv::attention_with_counts(qv, kt, tensor_view(v.data(), dtype::f32, {3, 2}), counts); },
                errc::shape_mismatch, {"values", "4 slots", "got [3, 2]"});
  require_error(
      [&] {
        (void)kv::attention_with_counts(qv, tensor_view(k.data(), dtype::f32, {0, 3}),
                                        tensor_view(v.data(), dtype::f32, {0, 2}), {});
      },
      errc::invalid_argument, {"keys", "at least one slot"});
  require_error([&] { (void)kv::attention_with_counts(tensor_view(q.data(), dtype::f32, {1, 3}), kt, vt, counts); },
                errc::shape_mismatch, {"q", "rank 1"});
}
