// tokens methods, second part: PruMerge(+), SparseVLM, LLaVA-Scissor,
// GreedyPrune, the DCT low-pass and the video methods (DyCoke, FastVID,
// HoliTom), on hand-built cases with known answers, plus the same plan on
// every backend and bad input.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/tokens/apply.hpp>
#include <cinch/tokens/dart.hpp>
#include <cinch/tokens/divprune.hpp>
#include <cinch/tokens/dycoke.hpp>
#include <cinch/tokens/fastv.hpp>
#include <cinch/tokens/fastvid.hpp>
#include <cinch/tokens/fourier.hpp>
#include <cinch/tokens/greedy_prune.hpp>
#include <cinch/tokens/holitom.hpp>
#include <cinch/tokens/prumerge.hpp>
#include <cinch/tokens/scissor.hpp>
#include <cinch/tokens/sparsevlm.hpp>
#include <cinch/tokens/visionzip.hpp>

#include <cmath>
#include <functional>
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

// Rows near one of a few directions: direction (i / per_group) plus small noise.
std::vector<float> grouped(std::int64_t n, std::int64_t d, std::int64_t per_group, unsigned seed) {
  std::vector<float> x = random_values(std::size_t(n * d), seed, 0.02f);
  const std::vector<float> centres = random_values(std::size_t(n * d), seed + 100);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < d; ++c) x[std::size_t(i * d + c)] += centres[std::size_t(i / per_group * d + c)];
  return x;
}

}  // namespace

// --------------------------------------------------------------------- PruMerge

TEST_CASE("PruMerge keeps the attention outliers and folds the rest in", "[tokens][prumerge]") {
  const std::int64_t n = 40, d = 8;
  std::vector<float> a(std::size_t(n), 0.01f);
  a[5] = 0.5f, a[17] = 0.4f, a[30] = 0.3f;  // quartiles 0.01: the fence is 0.01
  const std::vector<float> x = grouped(n, d, 10, 21);
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {n, d});
  in.cls_attention = tensor_view(a.data(), dtype::f32, {n});
  const tokens::plan p = same_on_every_backend([&] { return tokens::prumerge(in); });
  CHECK(p.kept == index_list{5, 17, 30});
  CHECK(total(p.sizes) == n);
  CHECK(p.assign[0] == 0);   // group 0 (tokens 0-9) joins token 5
  CHECK(p.assign[12] == 1);  // group 1 joins 17
  CHECK(p.weights[12] == 0.01f);
  CHECK(p.weights[17] == 1.0f);
  const tokens::applied out = tokens::apply(p, in.features);
  float expected = x[std::size_t(5 * d)];
  for (std::int64_t t = 0; t < n; ++t)
    if (p.assign[std::size_t(t)] == 0 && t != 5) expected += 0.01f * x[std::size_t(t * d)];
  CHECK(out.hidden.data<float>()[0] == Approx(expected));

  tokens::prumerge_options plus;
  plus.plus = true;  // rho = 3/40: step floor(13 / 3) = 4, tokens 0, 4, ..., 36
  const tokens::plan q = tokens::prumerge(in, plus);
  CHECK(q.output_tokens() == 13);
  CHECK(q.kept[0] == 0);
  CHECK(std::find(q.kept.begin(), q.kept.end(), 36) != q.kept.end());
  tokens::prumerge_options fixed;
  fixed.keep = 5;
  CHECK(tokens::prumerge(in, fixed).kept == index_list{0, 1, 5, 17, 30});  // ties toward the lower index
  fixed.plus = true;
  fixed.keep = 7;
  CHECK(tokens::prumerge(in, fixed).output_tokens() == 7);
  require_error([&] { (void)tokens::prumerge(tokens::inputs{.features = in.features}); }, errc::invalid_argument,
                {"tokens::prumerge", "cls_attention"});
  fixed.keep = -1;
  require_error([&] { (void)tokens::prumerge(in, fixed); }, errc::invalid_argument, {"options.keep must be >= 0"});
}

// -------------------------------------------------------------------- SparseVLM

TEST_CASE("SparseVLM ranks by the raters' attention and recycles into clusters", "[tokens][sparsevlm]") {
  const std::int64_t n = 20, d = 4, text = 3;
  std::vector<float> attention(std::size_t(text * n), 0.01f);
  attention[7] = 0.6f;                            // rater row 0 prefers token 7
  attention[n + 3] = attention[2 * n + 3] = 0.9f;  // rows 1 and 2 prefer token 3
  std::vector<float> v = random_values(std::size_t(n * d), 31, 0.1f), t(std::size_t(text * d), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i * d)] += 4.0f;  // visual tokens all point along e0 ...
  t[0] = 4.0f;                                                         // ... as text token 0 does
  tokens::inputs in;
  in.features = tensor_view(v.data(), dtype::f32, {n, d});
  in.text_attention = tensor_view(attention.data(), dtype::f32, {text, n});
  tokens::sparsevlm_options plain;
  plain.recycle = false;
  CHECK(tokens::sparsevlm(in, 1, plain).kept == index_list{3});  // every row rates: token 3 wins on average
  in.text_features = tensor_view(t.data(), dtype::f32, {text, d});
  CHECK(same_on_every_backend([&] { return tokens::sparsevlm(in, 1, plain); }).kept == index_list{7});

  // Recycling: keep 6 of 20 = 5 by relevance + 1 cluster of the next ceil(0.3 x 15) = 5.
  in.text_features = {};
  for (std::int64_t j = 0; j < n; ++j) attention[std::size_t(j)] = 0.01f * float(n - j);  // row 0 ranks 0 > 1 > ...
  attention[n + 3] = attention[2 * n + 3] = 0.01f;
  const tokens::plan p = same_on_every_backend([&] { return tokens::sparsevlm(in, 6); });
  CHECK(p.output_tokens() == 6);
  CHECK(p.dropped() == 10);
  CHECK(total(p.sizes) == 10);
  for (std::int64_t j = 0; j < 5; ++j) CHECK(p.sizes[std::size_t(p.assign[std::size_t(j)])] == 1);
  for (std::int64_t j = 5; j < 10; ++j) CHECK(p.sizes[std::size_t(p.assign[std::size_t(j)])] == 5);
  require_error([&] { (void)tokens::sparsevlm(tokens::inputs{.features = in.features}, 3); }, errc::invalid_argument,
                {"needs inputs.text_attention"});
  std::vector<float> wide(text * 5, 1.0f);
  in.text_features = tensor_view(wide.data(), dtype::f32, {text, 5});
  require_error([&] { (void)tokens::sparsevlm(in, 3); }, errc::shape_mismatch, {"text_features", "width 4"});
}

// ---------------------------------------------------------------- LLaVA-Scissor

TEST_CASE("Scissor merges connected components spatially then temporally", "[tokens][scissor]") {
  // 2 frames x 12 tokens; in each frame three groups of 4 near-identical rows (the same three directions).
  const std::int64_t per = 12, d = 6;
  const std::vector<float> frame = grouped(per, d, 4, 41);
  std::vector<float> x = frame;
  const std::vector<float> noise = random_values(std::size_t(per * d), 42, 0.02f);
  for (std::size_t i = 0; i < frame.size(); ++i) x.push_back(frame[i] + noise[i]);
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {2 * per, d});
  in.shape = {2, 3, 4};
  const tokens::plan p = same_on_every_backend([&] { return tokens::scissor(in); });
  CHECK(p.output_tokens() == 3);
  CHECK(p.sizes == index_list{8, 8, 8});
  for (std::int64_t t = 0; t < 2 * per; ++t) CHECK(p.assign[std::size_t(t)] == t % per / 4);
  tokens::inputs one_frame = in;
  one_frame.features = tensor_view(x.data(), dtype::f32, {per, d});
  one_frame.shape = {};
  CHECK(tokens::scissor(one_frame).output_tokens() == 3);
  tokens::scissor_options tight;
  tight.tau = 0.99999f;  // nothing links: every token alone
  CHECK(tokens::scissor(one_frame, tight).output_tokens() == per);
  tokens::scissor_options fixed;
  fixed.keep = 2;
  const tokens::plan two = tokens::scissor(in, fixed);
  CHECK(two.output_tokens() == 2);
  CHECK(total(two.sizes) == 2 * per);
  fixed.keep = 5;  // the spatial stage leaves 6: Kruskal stops at 5
  CHECK(tokens::scissor(in, fixed).output_tokens() == 5);
  fixed.keep = 9;
  CHECK(tokens::scissor(in, fixed).output_tokens() == 6);
  in.shape = {2, 3, 3};
  require_error([&] { (void)tokens::scissor(in); }, errc::shape_mismatch, {"grid 2 x 3 x 3", "24 tokens"});
}

// ------------------------------------------------------------------ GreedyPrune

TEST_CASE("GreedyPrune skips near-duplicates of what it already kept", "[tokens][greedy_prune]") {
  const std::int64_t n = 6, d = 3;
  // Tokens 0 and 1 point the same way; 2 is orthogonal to them; saliency 0 > 1 > 2 > ...
  std::vector<float> x = random_values(std::size_t(n * d), 51);
  const float head[9] = {1, 0, 0, 2, 0, 0, 0, 1, 0};
  std::copy(head, head + 9, x.begin());
  std::vector<float> s = {0.9f, 0.8f, 0.7f, 0.1f, 0.05f, 0.01f};
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {n, d});
  in.cls_attention = tensor_view(s.data(), dtype::f32, {n});
  const tokens::plan p = same_on_every_backend([&] { return tokens::greedy_prune(in, 2); });
  CHECK(p.kept == index_list{0, 2});
  // All tokens alike: the limit rejects everything after the first, the budget is filled by saliency.
  std::vector<float> same(std::size_t(n * d), 1.0f);
  in.features = tensor_view(same.data(), dtype::f32, {n, d});
  CHECK(tokens::greedy_prune(in, 3).kept == index_list{0, 1, 2});
  require_error([&] { (void)tokens::greedy_prune(tokens::inputs{.features = in.features}, 2); },
                errc::invalid_argument, {"cls_attention or text_attention"});
}

// --------------------------------------------------------------------- Fourier

TEST_CASE("The DCT low-pass keeps constants and low frequencies and drops high ones", "[tokens][fourier]") {
  const tokens::grid g{1, 8, 8};
  const std::int64_t d = 3;
  const double pi = 3.14159265358979323846;
  std::vector<float> x(std::size_t(64 * d));
  for (std::int64_t y = 0; y < 8; ++y)
    for (std::int64_t c = 0; c < 8; ++c) {
      float* t = x.data() + (y * 8 + c) * d;
      t[0] = 3.0f;                                                                    // constant
      t[1] = float(std::cos(pi * (y + 0.5) * 7 / 8) * std::cos(pi * (c + 0.5) * 7 / 8));  // highest frequency
      t[2] = float(std::cos(pi * (y + 0.5) / 8));                                     // lowest row frequency
    }
  std::vector<float> out(std::size_t(16 * d));
  tokens::fourier_features(tensor_view(x.data(), dtype::f32, {64, d}), g, 4, 4,
                           tensor_view(out.data(), dtype::f32, {16, d}));
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t j = 0; j < 4; ++j) {
      const float* t = out.data() + (i * 4 + j) * d;
      CHECK(t[0] == Approx(3.0f));
      CHECK(t[1] == Approx(0.0f).margin(1e-5));
      CHECK(t[2] == Approx(std::cos(pi * (i + 0.5) / 4)).margin(1e-5));  // the same cosine on the coarse grid
    }
  // Keeping every frequency changes nothing.
  std::vector<float> same(x.size());
  tokens::fourier_features(tensor_view(x.data(), dtype::f32, {64, d}), g, 8, 8,
                           tensor_view(same.data(), dtype::f32, {64, d}));
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(same[i] == Approx(x[i]).margin(1e-5));
  const tokens::plan p = tokens::fourier_plan(g, 4, 4);
  CHECK(p.output_tokens() == 16);
  CHECK(total(p.sizes) == 64);
  require_error(
      [&] {
        tokens::fourier_features(tensor_view(x.data(), dtype::f32, {64, d}), g, 4, 4,
                                 tensor_view(out.data(), dtype::f32, {8, d}));
      },
      errc::shape_mismatch, {"tokens::fourier_features", "out must have shape [16, 3]"});
  require_error(
      [&] {
        tokens::fourier_features(tensor_view(x.data(), dtype::f32, {64, d}), g, 9, 4,
                                 tensor_view(out.data(), dtype::f32, {16, d}));
      },
      errc::invalid_argument, {"between 1 x 1 and 8 x 8"});
}

// ----------------------------------------------------------------------- video

TEST_CASE("DyCoke keeps the positions that changed against the reference frame", "[tokens][dycoke]") {
  const std::int64_t frames = 4, per = 6, d = 5;
  const std::vector<float> base = random_values(std::size_t(per * d), 61);
  std::vector<float> x;
  const index_list changed[4] = {{}, {2, 4}, {0, 5}, {1, 3}};  // frame 3 is compared with frame 2
  for (std::int64_t f = 0; f < frames; ++f) {
    std::vector<float> frame = f == 3 ? std::vector<float>(x.begin() + 2 * per * d, x.begin() + 3 * per * d) : base;
    for (std::int64_t p : changed[f]) {
      const std::vector<float> fresh = random_values(std::size_t(d), unsigned(70 + f * 10 + p));
      std::copy(fresh.begin(), fresh.end(), frame.begin() + p * d);
    }
    x.insert(x.end(), frame.begin(), frame.end());
  }
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {frames, per, d});
  in.shape = {frames, 2, 3};
  tokens::dycoke_options o;
  o.prune_ratio = 0.66;  // keep floor(0.34 x 6) = 2 per compared frame
  const tokens::plan p = same_on_every_backend([&] { return tokens::dycoke(in, o); });
  CHECK(p.kept == index_list{0, 1, 2, 3, 4, 5, 8, 10, 12, 17, 19, 21});
  require_error([&] { (void)tokens::dycoke(tokens::inputs{.features = in.features}); }, errc::invalid_argument,
                {"needs the token grid"});
  o.prune_ratio = 1.5;
  require_error([&] { (void)tokens::dycoke(in, o); }, errc::invalid_argument, {"prune_ratio must be in [0, 1]"});
}

TEST_CASE("HoliTom merges static positions over the best windows", "[tokens][holitom]") {
  // 4 frames x 3 positions in 4-D: position 0 never moves, position 1 holds over frames 0-2,
  // position 2 changes every frame. Best: window [0, 2] (2 static x 2 removed) + [3].
  const std::int64_t frames = 4, per = 3, d = 4;
  std::vector<float> x(std::size_t(frames * per * d), 0.0f);
  for (std::int64_t f = 0; f < frames; ++f) {
    float* t = x.data() + f * per * d;
    t[0] = 1, t[1] = 1;                           // position 0
    t[d + (f < 3 ? 2 : 3)] = 1;                   // position 1
    t[2 * d + f] = 1;                             // position 2: e_f
  }
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {frames, per, d});
  in.shape = {frames, 1, per};
  const tokens::plan p = same_on_every_backend([&] { return tokens::holitom(in); });
  CHECK(p.output_tokens() == 8);
  CHECK(total(p.sizes) == 12);
  CHECK(p.assign[0] == p.assign[3]);
  CHECK(p.assign[0] == p.assign[6]);
  CHECK(p.assign[0] != p.assign[9]);  // frame 3 is its own window
  CHECK(p.assign[1] == p.assign[7]);
  CHECK(p.sizes[std::size_t(p.assign[0])] == 3);
  tokens::holitom_options short_windows;
  short_windows.max_window = 2;  // [0, 1] + [2, 3]: 2 + 1 removed
  CHECK(tokens::holitom(in, short_windows).output_tokens() == 9);
  short_windows.max_window = 0;
  require_error([&] { (void)tokens::holitom(in, short_windows); }, errc::invalid_argument, {"max_window must be >= 1"});
}

TEST_CASE("FastVID keeps salient tokens per frame and anchors per segment at an exact count", "[tokens][fastvid]") {
  // 4 frames of 16 tokens: frames 0-1 alike, frames 2-3 alike, the two pairs different.
  const std::int64_t frames = 4, per = 16, d = 8;
  const std::vector<float> a = grouped(per, d, 4, 81), b = grouped(per, d, 4, 82);
  std::vector<float> x;
  for (std::int64_t f = 0; f < frames; ++f) {
    const std::vector<float> noise = random_values(std::size_t(per * d), unsigned(90 + f), 0.05f);
    const std::vector<float>& src = f < 2 ? a : b;
    for (std::size_t i = 0; i < src.size(); ++i) x.push_back(src[i] + noise[i]);
  }
  std::vector<float> saliency = random_values(std::size_t(frames * per), 99);
  for (float& s : saliency) s = std::fabs(s);
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {frames, per, d});
  in.cls_attention = tensor_view(saliency.data(), dtype::f32, {frames, per});
  in.shape = {frames, 4, 4};
  tokens::fastvid_options o;
  o.retention = 0.25;        // R = 4 per frame
  o.contextual_share = 0.5;  // 2 salient + 2 contextual per frame
  o.segments = 2;
  o.tau = -1.0f;
  const tokens::plan p = same_on_every_backend([&] { return tokens::fastvid(in, o); });
  CHECK(p.output_tokens() == frames * 4);
  CHECK(total(p.sizes) == frames * per);
  for (std::int64_t f = 0; f < frames; ++f) {
    const std::vector<float> frame(saliency.begin() + f * per, saliency.begin() + (f + 1) * per);
    const auto top = std::max_element(frame.begin(), frame.end()) - frame.begin();
    CHECK(p.sizes[std::size_t(p.assign[std::size_t(f * per + top)])] == 1);  // the most salient stays alone
  }
  // Anchors sit in the last frame of each segment (1 and 3) and absorb their segment.
  std::int64_t merged_rows = 0;
  for (std::int64_t r = 0; r < p.output_tokens(); ++r) {
    if (p.sizes[std::size_t(r)] == 1) continue;
    ++merged_rows;
    const std::int64_t frame = p.kept[std::size_t(r)] / per;
    CHECK((frame == 1 || frame == 3));
    CHECK(p.weights[std::size_t(p.kept[std::size_t(r)])] >= 0.6f);
  }
  CHECK(merged_rows >= 4);  // anchors in the same group of tokens may split it
  CHECK(merged_rows <= 8);
  const tokens::applied out = tokens::apply(p, in.features);
  CHECK(out.hidden.size(0) == 16);
  require_error([&] { (void)tokens::fastvid(tokens::inputs{.features = in.features, .shape = in.shape}); },
                errc::invalid_argument, {"needs inputs.cls_attention"});
  o.retention = 0;
  require_error([&] { (void)tokens::fastvid(in, o); }, errc::invalid_argument, {"retention in (0, 1]"});
}

// ------------------------------------------------------------------ bad input

TEST_CASE("every budgeted method refuses keep 0 and non-finite inputs", "[tokens][errors]") {
  const std::int64_t n = 16, d = 4;
  std::vector<float> x = random_values(std::size_t(n * d), 111), keys = random_values(std::size_t(n * 3), 112);
  std::vector<float> s(std::size_t(n), 0.1f);
  tokens::inputs in;
  in.features = tensor_view(x.data(), dtype::f32, {n, d});
  in.keys = tensor_view(keys.data(), dtype::f32, {n, 3});
  in.cls_attention = tensor_view(s.data(), dtype::f32, {n});
  in.text_attention = tensor_view(s.data(), dtype::f32, {1, n});
  in.shape = {1, 4, 4};
  const std::vector<std::pair<const char*, std::function<tokens::plan(std::int64_t)>>> methods = {
      {"tokens::fastv", [&](std::int64_t k) { return tokens::fastv(in, k); }},
      {"tokens::divprune", [&](std::int64_t k) { return tokens::divprune(in, k); }},
      {"tokens::visionzip", [&](std::int64_t k) { return tokens::visionzip(in, k); }},
      {"tokens::dart", [&](std::int64_t k) { return tokens::dart(in, k); }},
      {"tokens::sparsevlm", [&](std::int64_t k) { return tokens::sparsevlm(in, k); }},
      {"tokens::greedy_prune", [&](std::int64_t k) { return tokens::greedy_prune(in, k); }},
  };
  for (const auto& [name, method] : methods) {
    INFO(name);
    require_error([&] { (void)method(0); }, errc::invalid_argument, {name, "keep must be >= 1", "got 0"});
    CHECK(method(n + 5).output_tokens() == n);  // clamped
  }
  s[9] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { (void)tokens::visionzip(in, 4); }, errc::invalid_argument,
                {"cls_attention must be finite", "nan at token 9"});
  require_error([&] { (void)tokens::fastv(in, 4); }, errc::invalid_argument, {"text_attention must be finite", "token 0, element 9"});
  s[9] = 0.1f;
  keys[7] = std::numeric_limits<float>::infinity();
  require_error([&] { (void)tokens::divprune(in, 4); }, errc::invalid_argument, {"keys must be finite", "inf at token 2"});
  require_error([&] { (void)tokens::scissor(in); }, errc::invalid_argument, {"tokens::scissor", "keys must be finite"});
}
