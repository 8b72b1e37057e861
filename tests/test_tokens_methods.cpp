// tokens methods on hand-built cases whose right answer is known: ToMe, FastV
// (and the attention-row scorer), DivPrune, VisionZip, DART. Plans must not
// depend on the backend.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/tokens/apply.hpp>
#include <cinch/tokens/dart.hpp>
#include <cinch/tokens/divprune.hpp>
#include <cinch/tokens/fastv.hpp>
#include <cinch/tokens/similarity.hpp>
#include <cinch/tokens/tome.hpp>
#include <cinch/tokens/visionzip.hpp>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "random_data.hpp"
#include "tokens_fixture.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
namespace tokens = cinch::tokens;

namespace {

void copy_row(std::vector<float>& x, std::int64_t d, std::int64_t from, std::int64_t to, float scale = 1.0f) {
  for (std::int64_t c = 0; c < d; ++c) x[std::size_t(to * d + c)] = scale * x[std::size_t(from * d + c)];
}

tokens::inputs with_features(const std::vector<float>& x, std::int64_t n, std::int64_t d) {
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {n, d});
  return in;
}

}  // namespace

// ------------------------------------------------------------------------- ToMe

TEST_CASE("ToMe merges duplicated tokens first", "[tokens][tome]") {
  const std::int64_t n = 10, d = 16;
  std::vector<float> x = random_values(std::size_t(n * d), 11);
  copy_row(x, d, 7, 4, 3.0f);  // token 4 (in A) points exactly where token 7 (in B) does
  const tokens::inputs in = with_features(x, n, d);
  const tokens::plan p = same_on_every_backend([&] { return tokens::tome(in, 1); });
  CHECK(p.output_tokens() == 9);
  CHECK(p.assign[4] == p.assign[7]);
  CHECK(p.sizes[std::size_t(p.assign[7])] == 2);
  CHECK(std::find(p.kept.begin(), p.kept.end(), 7) != p.kept.end());  // B is the destination
  CHECK(total(p.sizes) == n);

  // Merged with sizes (3 and 1): the size-weighted mean.
  const std::vector<std::int64_t> sizes = {1, 1, 1, 1, 3, 1, 1, 1, 1, 1};
  tokens::apply_options o;
  o.sizes = sizes;
  const tokens::applied a = tokens::apply(p, tensor_view(x.data(), dtype::f32, {n, d}), o);
  const float* merged = a.hidden.data<float>() + p.assign[7] * d;
  for (std::int64_t c = 0; c < d; ++c)
    CHECK(merged[c] == Approx((3 * x[std::size_t(4 * d + c)] + x[std::size_t(7 * d + c)]) / 4).epsilon(1e-5));
  CHECK(a.sizes[std::size_t(p.assign[7])] == 4);
}

TEST_CASE("ToMe protects the class token and the distillation token", "[tokens][tome]") {
  const std::int64_t n = 9, d = 8;
  std::vector<float> x = random_values(std::size_t(n * d), 12);
  copy_row(x, d, 1, 0);  // [CLS] duplicates token 1
  copy_row(x, d, 5, 2);  // token 2 duplicates token 5
  const tokens::inputs in = with_features(x, n, d);
  const tokens::plan plain = tokens::tome(in, 2);
  CHECK(plain.assign[0] == plain.assign[1]);  // without protection both duplicates merge
  CHECK(plain.assign[2] == plain.assign[5]);
  tokens::tome_options cls;
  cls.class_token = true;
  const tokens::plan protected_cls = tokens::tome(in, 1, cls);
  CHECK(protected_cls.assign[0] != protected_cls.assign[1]);
  CHECK(protected_cls.assign[2] == protected_cls.assign[5]);
  tokens::tome_options distill;
  distill.distill_token = true;
  const tokens::plan protected_distill = tokens::tome(in, 1, distill);
  CHECK(protected_distill.assign[0] != protected_distill.assign[1]);  // token 1 absorbs nothing
  CHECK(protected_distill.assign[2] == protected_distill.assign[5]);
}

TEST_CASE("ToMe clamps r to half the unprotected tokens and keeps the original order", "[tokens][tome]") {
  const std::int64_t n = 10, d = 4;
  const std::vector<float> x = random_values(std::size_t(n * d), 13);
  const tokens::inputs in = with_features(x, n, d);
  const tokens::plan all = tokens::tome(in, 100);
  CHECK(all.output_tokens() == 5);  // every A token merged into B
  CHECK(all.kept == index_list{1, 3, 5, 7, 9});
  CHECK(total(all.sizes) == n);
  tokens::tome_options cls;
  cls.class_token = true;
  const tokens::plan with_cls = tokens::tome(in, 100, cls);
  CHECK(with_cls.output_tokens() == 6);  // floor((10 - 1) / 2) = 4 merged
  CHECK(with_cls.kept[0] == 0);
  CHECK(tokens::tome(in, 0).output_tokens() == n);
  const std::vector<float> one(3, 1.0f);
  CHECK(tokens::tome(with_features(one, 1, 3), 5).output_tokens() == 1);
}

TEST_CASE("ToMe over layers with composed plans and sizes and the proportional bias", "[tokens][tome]") {
  const std::int64_t n = 64, d = 12;
  const std::vector<float> x = random_values(std::size_t(n * d), 14);
  std::vector<float> current = x;
  std::vector<std::int64_t> sizes(std::size_t(n), 1);
  tokens::plan chain = tokens::identity(n);
  for (std::int64_t r : tokens::tome_schedule(8, 3)) {
    const std::int64_t m = std::int64_t(sizes.size());
    const tokens::plan step = tokens::tome(with_features(current, m, d), r);
    tokens::apply_options o;
    o.sizes = sizes;
    const tokens::applied a = tokens::apply(step, tensor_view(current.data(), dtype::f32, {m, d}), o);
    current.assign(a.hidden.data<float>(), a.hidden.data<float>() + a.hidden.numel());
    sizes = a.sizes;
    chain = tokens::compose(chain, step);
  }
  CHECK(sizes.size() == 64 - 24);
  CHECK(total(sizes) == n);
  CHECK(chain.sizes == sizes);
  // The chain in one apply averages every original token once: the same rows.
  const tokens::applied direct = tokens::apply(chain, tensor_view(x.data(), dtype::f32, {n, d}));
  for (std::size_t i = 0; i < current.size(); ++i) REQUIRE(direct.hidden.data<float>()[i] == Approx(current[i]).margin(1e-5));
  const std::vector<float> bias = tokens::proportional_attention_bias(sizes);
  for (std::size_t i = 0; i < sizes.size(); ++i) CHECK(bias[i] == Approx(std::log(double(sizes[i]))));
  CHECK(tokens::tome_schedule(16, 24) == index_list(24, 16));
  CHECK(tokens::tome_schedule(8, 5, 0.5) == index_list{4, 6, 8, 10, 12});
}

TEST_CASE("ToMe refuses bad input", "[tokens][tome][errors]") {
  std::vector<float> x(40, 1.0f);
  require_error([&] { (void)tokens::tome(with_features(x, 10, 4), -1); }, errc::invalid_argument, {"r must be >= 0"});
  x[13] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { (void)tokens::tome(with_features(x, 10, 4), 2); }, errc::invalid_argument,
                {"tokens::tome", "features must be finite", "nan at token 3, element 1"});
  tokens::inputs in = with_features(x, 10, 4);
  std::vector<float> keys(9 * 2, 0.5f);
  in.keys = tensor_view(keys.data(), dtype::f32, {9, 2});
  require_error([&] { (void)tokens::tome(in, 2); }, errc::shape_mismatch, {"keys must have 10 rows"});
  require_error([&] { (void)tokens::tome(tokens::inputs{}, 2); }, errc::invalid_argument, {"got none"});
  std::vector<float> empty;
  require_error([&] { (void)tokens::tome(with_features(empty, 0, 4), 2); }, errc::invalid_argument,
                {"at least one token"});
  require_error([] { (void)tokens::proportional_attention_bias(std::vector<std::int64_t>{1, 0}); },
                errc::invalid_argument, {"sizes must be >= 1"});
  require_error([] { (void)tokens::tome_schedule(4, 0); }, errc::invalid_argument, {"layers must be >= 1"});
}

// ------------------------------------------------------------------------ FastV

TEST_CASE("FastV keeps the tokens the text attends to", "[tokens][fastv]") {
  const std::int64_t n = 20;
  std::vector<float> attention(2 * n, 0.01f);
  attention[13] = 0.5f;           // one salient token in the last query's row
  attention[n + 4] = 0.3f;        // another row's favourite
  attention[7] = attention[9] = 0.2f;  // a tie: the lower index first
  tokens::inputs in;
  in.text_attention = tensor_view(attention.data(), dtype::f32, {1, n});
  CHECK(tokens::fastv(in, 1).kept == index_list{13});
  CHECK(tokens::fastv(in, 2).kept == index_list{7, 13});
  in.text_attention = tensor_view(attention.data(), dtype::f32, {2, n});  // rows averaged
  CHECK(tokens::fastv(in, 2).kept == index_list{4, 13});
  CHECK(tokens::fastv(in, 99).output_tokens() == n);
  require_error([&] { (void)tokens::fastv(in, 0); }, errc::invalid_argument, {"keep must be >= 1"});
  std::vector<float> features(19 * 2, 1.0f);
  in.features = tensor_view(features.data(), dtype::f32, {19, 2});  // N = 19 from the features
  require_error([&] { (void)tokens::fastv(in, 3); }, errc::shape_mismatch, {"text_attention must be [R, 19]"});
  require_error([&] { (void)tokens::fastv(tokens::inputs{.features = in.features}, 3); }, errc::invalid_argument,
                {"needs inputs.text_attention"});
}

TEST_CASE("attention rows use a softmax over all keys with head mean and GQA and causal masks", "[tokens][fastv]") {
  // One query, 4 heads over 2 KV heads, head_dim 2, 5 keys; the visual block is keys 1..3.
  const std::int64_t heads = 4, kv = 2, dim = 2, length = 5;
  std::vector<float> q(heads * dim), keys(kv * length * dim);
  for (std::int64_t h = 0; h < heads; ++h) q[std::size_t(h * dim)] = float(h + 1);  // q_h = (h + 1, 0)
  for (std::int64_t g = 0; g < kv; ++g)
    for (std::int64_t l = 0; l < length; ++l) keys[std::size_t((g * length + l) * dim)] = float(l) * (g ? -1.0f : 1.0f);
  std::vector<float> out(3);
  tokens::attention_options o;
  o.scale = 0.5f;
  auto expected = [&](std::int64_t visible) {
    std::vector<double> mean(3, 0.0);
    for (std::int64_t h = 0; h < heads; ++h) {
      const double sign = h / 2 ? -1.0 : 1.0;  // heads 0, 1 read KV head 0; 2, 3 read KV head 1
      double z = 0;
      for (std::int64_t l = 0; l < visible; ++l) z += std::exp(0.5 * (h + 1) * l * sign);
      for (std::int64_t j = 0; j < 3 && 1 + j < visible; ++j) mean[std::size_t(j)] += std::exp(0.5 * (h + 1) * (1 + j) * sign) / z / heads;
    }
    return mean;
  };
  tokens::attention_rows(tensor_view(q.data(), dtype::f32, {1, heads, dim}),
                         tensor_view(keys.data(), dtype::f32, {kv, length, dim}), 1,
                         tensor_view(out.data(), dtype::f32, {1, 3}), o);
  std::vector<double> want = expected(length);
  for (int j = 0; j < 3; ++j) CHECK(out[std::size_t(j)] == Approx(want[std::size_t(j)]).epsilon(1e-5));
  const std::int64_t position = 2;  // a causal query at position 2 sees keys 0..2
  o.query_positions = std::span<const std::int64_t>(&position, 1);
  tokens::attention_rows(tensor_view(q.data(), dtype::f32, {1, heads, dim}),
                         tensor_view(keys.data(), dtype::f32, {kv, length, dim}), 1,
                         tensor_view(out.data(), dtype::f32, {1, 3}), o);
  want = expected(3);
  for (int j = 0; j < 3; ++j) CHECK(out[std::size_t(j)] == Approx(want[std::size_t(j)]).epsilon(1e-5));
  CHECK(out[2] == 0.0f);

  require_error(
      [&] {
        tokens::attention_rows(tensor_view(q.data(), dtype::f32, {1, heads, dim}),
                               tensor_view(keys.data(), dtype::f32, {3, 3, dim}), 1,
                               tensor_view(out.data(), dtype::f32, {1, 3}));
      },
      errc::shape_mismatch, {"Hkv dividing the 4 query heads"});
  require_error(
      [&] {
        tokens::attention_rows(tensor_view(q.data(), dtype::f32, {1, heads, dim}),
                               tensor_view(keys.data(), dtype::f32, {kv, length, dim}), 3,
                               tensor_view(out.data(), dtype::f32, {1, 3}));
      },
      errc::invalid_argument, {"[3, 6)", "within the 5 keys"});
}

TEST_CASE("FastV over attention rows is the same plan on every backend", "[tokens][fastv]") {
  const std::int64_t heads = 8, kv = 2, dim = 32, length = 300, first = 20, n = 256, rows = 3;
  const std::vector<float> q = random_values(std::size_t(rows * heads * dim), 15);
  const std::vector<float> keys = random_values(std::size_t(kv * length * dim), 16);
  std::vector<float> scores(std::size_t(rows * n));
  tokens::inputs in;
  in.text_attention = tensor_view(scores.data(), dtype::f32, {rows, n});
  same_on_every_backend([&] {
    tokens::attention_rows(tensor_view(q.data(), dtype::f32, {rows, heads, dim}),
                           tensor_view(keys.data(), dtype::f32, {kv, length, dim}), first,
                           tensor_view(scores.data(), dtype::f32, {rows, n}));
    return tokens::fastv(in, 64);
  });
  double sum = 0;
  for (std::int64_t j = 0; j < n; ++j) sum += scores[std::size_t(j)];
  CHECK(sum < 1.0);  // the visual block's share of a softmax over 300 keys
}

// --------------------------------------------------------------------- DivPrune

TEST_CASE("DivPrune starts from the most isolated token and spreads out", "[tokens][divprune]") {
  // Three copies of e0 (tokens 0-2), three of e1 (3-5), one isolated (-1, -1) (6).
  const std::vector<float> x = {1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, -1, -1};
  const tokens::inputs in = with_features(x, 7, 2);
  CHECK(same_on_every_backend([&] { return tokens::divprune(in, 1); }).kept == index_list{6});
  CHECK(tokens::divprune(in, 2).kept == index_list{0, 6});  // e0 and e1 tie at 1.707: lower index
  CHECK(tokens::divprune(in, 3).kept == index_list{0, 3, 6});
  CHECK(tokens::divprune(in, 4).kept == index_list{0, 1, 3, 6});  // only duplicates left: distance 0
  CHECK(tokens::divprune(in, 7).output_tokens() == 7);
}

TEST_CASE("DivPrune equals the naive max-min rescan", "[tokens][divprune]") {
  const std::int64_t n = 150, d = 24, keep = 30;
  const std::vector<float> x = random_values(std::size_t(n * d), 17);
  const tokens::inputs in = with_features(x, n, d);
  const tokens::plan p = same_on_every_backend([&] { return tokens::divprune(in, keep); });
  // The naive algorithm on the same cosine matrix: rescan every selected row each step.
  std::vector<float> s(std::size_t(n * n));
  cinch::force_backend(cinch::backend_kind::ref);
  tokens::cosine_similarity(in.features, in.features, tensor_view(s.data(), dtype::f32, {n, n}));
  cinch::force_backend(std::nullopt);
  index_list selected;
  std::int64_t first = 0;
  float first_distance = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    float nearest = INFINITY;
    for (std::int64_t j = 0; j < n; ++j)  // the symmetric cosine: row lo, column hi
      if (j != i) nearest = std::min(nearest, 1.0f - s[std::size_t(std::min(i, j) * n + std::max(i, j))]);
    if (nearest > first_distance) first_distance = nearest, first = i;
  }
  selected.push_back(first);
  while (std::int64_t(selected.size()) < keep) {
    std::int64_t pick = -1;
    float pick_distance = -1;
    for (std::int64_t j = 0; j < n; ++j) {
      if (std::find(selected.begin(), selected.end(), j) != selected.end()) continue;
      float m = INFINITY;
      for (std::int64_t t : selected) m = std::min(m, 1.0f - s[std::size_t(t * n + j)]);
      if (m > pick_distance) pick_distance = m, pick = j;
    }
    selected.push_back(pick);
  }
  std::sort(selected.begin(), selected.end());
  CHECK(p.kept == selected);
}

// -------------------------------------------------------------------- VisionZip

TEST_CASE("VisionZip keeps dominant tokens and merges the rest into strided targets", "[tokens][visionzip]") {
  // 12 tokens of 2-D keys: 1-4 point near token 0's direction, 6-11 near token 6's.
  const std::int64_t n = 12, d = 2;
  std::vector<float> keys = {1, 0,  0.9f, 0.1f, 0.8f, 0.2f, 1, 0.1f, 0.95f, 0,  0, 1,
                             0, 1,  0.1f, 1,    0.2f, 0.9f, 0, 1,     0.1f,  1,  0.05f, 1};
  std::vector<float> hidden(std::size_t(n * 3));
  std::iota(hidden.begin(), hidden.end(), 0.0f);
  std::vector<float> cls(std::size_t(n), 0.01f);
  cls[5] = 0.5f, cls[9] = 0.3f;
  tokens::inputs in;
  in.features = tensor_view(hidden.data(), dtype::f32, {n, 3});
  in.keys = tensor_view(keys.data(), dtype::f32, {n, d});
  in.cls_attention = tensor_view(cls.data(), dtype::f32, {n});
  tokens::visionzip_options o;
  o.contextual = 2;
  const tokens::plan p = same_on_every_backend([&] { return tokens::visionzip(in, 4, o); });
  // Dominant 5 and 9; remaining [0 1 2 3 4 6 7 8 10 11], stride 5: targets 0 and 6.
  CHECK(p.kept == index_list{0, 5, 6, 9});
  CHECK(p.sizes == index_list{5, 1, 5, 1});
  CHECK(total(p.sizes) == n);
  const tokens::applied a = tokens::apply(p, in.features);
  for (std::int64_t c = 0; c < 3; ++c) {
    // target + mean of members: token 0 + mean(1..4), token 6 + mean(7, 8, 10, 11)
    CHECK(a.hidden.data<float>()[c] == Approx(hidden[std::size_t(c)] + (3 * (1 + 2 + 3 + 4) / 4.0f + c)));
    CHECK(a.hidden.data<float>()[2 * 3 + c] ==
          Approx(hidden[std::size_t(6 * 3 + c)] + (3 * (7 + 8 + 10 + 11) / 4.0f + c)));
    CHECK(a.hidden.data<float>()[3 + c] == hidden[std::size_t(5 * 3 + c)]);
  }
  // Default split: 64 -> 54 + 10.
  std::vector<float> big_keys = random_values(576 * 8, 18), big_cls = random_values(576, 19);
  tokens::inputs big;
  big.keys = tensor_view(big_keys.data(), dtype::f32, {576, 8});
  big.cls_attention = tensor_view(big_cls.data(), dtype::f32, {576});
  const tokens::plan q = same_on_every_backend([&] { return tokens::visionzip(big, 64); });
  CHECK(q.output_tokens() == 64);
  CHECK(total(q.sizes) == 576);
  std::int64_t merged_rows = 0;
  for (std::int64_t s : q.sizes) merged_rows += s > 1;
  CHECK(merged_rows <= 10);
  require_error([&] { (void)tokens::visionzip(tokens::inputs{.keys = big.keys}, 64); }, errc::invalid_argument,
                {"needs inputs.cls_attention"});
  o.contextual = 4;
  require_error([&] { (void)tokens::visionzip(in, 4, o); }, errc::invalid_argument,
                {"options.contextual must be below keep (4), got 4"});
}

// ------------------------------------------------------------------------- DART

TEST_CASE("DART keeps pivots and the tokens least similar to them", "[tokens][dart]") {
  // 8 tokens in 2-D: token 2 has the largest key norm and points along e0.
  const std::int64_t n = 8;
  const std::vector<float> x = {1, 0.1f, 1, 0.2f, 1, 0, 0.7f, 0.7f, -1, 0.1f, 0, 1, 1, 0.05f, -0.9f, -0.3f};
  std::vector<float> keys(n, 1.0f);
  keys[2] = 5.0f;
  tokens::inputs in = with_features(x, n, 2);
  in.keys = tensor_view(keys.data(), dtype::f32, {n, 1});
  tokens::dart_options o;
  o.image_pivots = 1;
  o.text_pivots = 0;
  // cos to e0: token 4 (-0.995), 7 (-0.95), 5 (0): the two lowest join the pivot.
  const tokens::plan p = same_on_every_backend([&] { return tokens::dart(in, 3, o); });
  CHECK(p.kept == index_list{2, 4, 7});
  // A text pivot along e1 takes half of the quota: the least similar to e1 is token 7.
  const std::vector<float> text = {0, 1};
  in.text_features = tensor_view(text.data(), dtype::f32, {1, 2});
  o.text_pivots = 1;
  CHECK(tokens::dart(in, 3, o).kept == index_list{2, 4, 7});  // e0 pivot: 4; e1 pivot: 7 (cos -0.32)
  CHECK(tokens::dart(in, 4, o).kept == index_list{2, 4, 6, 7});  // e0 takes 4 and 7, e1 then 6 (cos 0.05)
  CHECK(tokens::dart(in, 8, o).output_tokens() == 8);
  CHECK(tokens::dart(in, 1, o).kept == index_list{2});
  o.image_pivots = 0;
  o.text_pivots = 0;
  require_error([&] { (void)tokens::dart(in, 3, o); }, errc::invalid_argument, {"at least one pivot"});
  const std::vector<float> wide = {0, 1, 0};
  in.text_features = tensor_view(wide.data(), dtype::f32, {1, 3});
  o.text_pivots = 1;
  require_error([&] { (void)tokens::dart(in, 3, o); }, errc::shape_mismatch, {"text_features", "width 2"});
}
