// tokens: plans, apply (merge + position ids), the shared kernels against the
// reference on every backend, and the random / pooling baselines.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/ref/tokens.hpp>
#include <cinch/tokens/apply.hpp>
#include <cinch/tokens/baselines.hpp>
#include <cinch/tokens/plan.hpp>
#include <cinch/tokens/similarity.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
namespace tokens = cinch::tokens;

namespace {

std::int64_t sum(const std::vector<std::int64_t>& v) { return std::accumulate(v.begin(), v.end(), std::int64_t(0)); }

// Runs check once with the reference backend and once per Highway target.
template <class Check>
void on_every_backend(Check check) {
  cinch::force_backend(cinch::backend_kind::ref);
  check(std::string("ref"));
  cinch::force_backend(cinch::backend_kind::simd);
  for_each_cpu_target(check);
  cinch::force_backend(std::nullopt);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("plans from kept tokens and destinations", "[tokens][plan]") {
  const tokens::plan p = tokens::from_kept(6, std::vector<std::int64_t>{4, 1, 2});
  CHECK(p.kept == std::vector<std::int64_t>{1, 2, 4});
  CHECK(p.assign == std::vector<std::int64_t>{-1, 0, 1, -1, 2, -1});
  CHECK(p.sizes == std::vector<std::int64_t>{1, 1, 1});
  CHECK(p.dropped() == 3);
  CHECK(sum(p.sizes) + p.dropped() == p.source_tokens);

  // 0 -> 1, 3 -> 1, 2 dropped, 1 and 4 stand for themselves.
  const tokens::plan m = tokens::from_destinations(std::vector<std::int64_t>{1, 1, -1, 1, 4});
  CHECK(m.kept == std::vector<std::int64_t>{1, 4});
  CHECK(m.assign == std::vector<std::int64_t>{0, 0, -1, 0, 1});
  CHECK(m.sizes == std::vector<std::int64_t>{3, 1});
  tokens::validate(m);

  const tokens::plan id = tokens::identity(3);
  CHECK(id.kept == std::vector<std::int64_t>{0, 1, 2});
  CHECK(id.sizes == std::vector<std::int64_t>{1, 1, 1});
}

TEST_CASE("bad plans are refused with the broken invariant named", "[tokens][plan][errors]") {
  require_error([] { (void)tokens::from_kept(4, std::vector<std::int64_t>{1, 1}); }, errc::invalid_argument,
                {"tokens::from_kept", "must not repeat"});
  require_error([] { (void)tokens::from_kept(4, std::vector<std::int64_t>{4}); }, errc::invalid_argument,
                {"tokens::from_kept", "[0, 4)", "got 4"});
  require_error([] { (void)tokens::from_destinations(std::vector<std::int64_t>{1, 2, 2}); }, errc::invalid_argument,
                {"tokens::from_destinations", "destination[0] = 1", "representative"});
  require_error([] { (void)tokens::identity(-1); }, errc::invalid_argument, {"tokens::identity", "got -1"});

  tokens::plan p = tokens::from_kept(4, std::vector<std::int64_t>{0, 2});
  tokens::plan bad = p;
  bad.sizes[1] = 2;
  require_error([&] { tokens::validate(bad); }, errc::invalid_argument, {"plan.sizes[1]", "got 2"});
  bad = p;
  bad.kept = {2, 0};
  require_error([&] { tokens::validate(bad); }, errc::invalid_argument, {"plan.kept", "ascending"});
  bad = p;
  bad.assign[1] = 5;
  require_error([&] { tokens::validate(bad); }, errc::invalid_argument, {"plan.assign[1]", "got 5"});
  bad = p;
  bad.assign.pop_back();
  require_error([&] { tokens::validate(bad); }, errc::invalid_argument, {"plan.assign", "4 entries"});
  bad = p;
  bad.weights = {1.0f, 1.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  require_error([&] { tokens::validate(bad); }, errc::invalid_argument, {"plan.weights[2]", "finite"});
  bad = p;
  bad.assign = {0, -1, -1, 1};  // kept[1] = 2 is not in its own row
  require_error([&] { tokens::validate(bad); }, errc::invalid_argument, {"plan.kept[1] = 2", "own row"});
}

TEST_CASE("merge is the size-weighted mean of each row's sources", "[tokens][apply]") {
  // 4 tokens of 3 channels: 0 and 2 merge into 2, 1 is dropped, 3 stays.
  const std::vector<float> x = {1, 2, 3, 10, 20, 30, 5, 6, 7, -1, -2, -3};
  const tokens::plan p = tokens::from_destinations(std::vector<std::int64_t>{2, -1, 2, 3});
  const tokens::applied a = tokens::apply(p, tensor_view(x.data(), dtype::f32, {4, 3}));
  REQUIRE(a.hidden.size(0) == 2);
  const float* h = a.hidden.data<float>();
  CHECK(std::vector<float>(h, h + 6) == std::vector<float>{3, 4, 5, -1, -2, -3});
  CHECK(a.sizes == std::vector<std::int64_t>{2, 1});

  // Tokens that already stand for several (ToMe after a layer) weigh by their sizes.
  const std::vector<std::int64_t> sizes = {3, 1, 1, 2};
  tokens::apply_options o;
  o.sizes = sizes;
  const tokens::applied b = tokens::apply(p, tensor_view(x.data(), dtype::f32, {4, 3}), o);
  const float* hb = b.hidden.data<float>();
  CHECK(hb[0] == (3 * 1 + 5) / 4.0f);
  CHECK(hb[1] == (3 * 2 + 6) / 4.0f);
  CHECK(b.sizes == std::vector<std::int64_t>{4, 2});

  // Explicit weights: the row is the weighted sum, not a mean.
  tokens::plan w = p;
  w.weights = {0.5f, 0.0f, 2.0f, 1.0f};
  const tokens::applied c = tokens::apply(w, tensor_view(x.data(), dtype::f32, {4, 3}));
  CHECK(c.hidden.data<float>()[0] == 0.5f * 1 + 2.0f * 5);
}

TEST_CASE("a kept token is copied bit for bit with -0 and subnormals", "[tokens][apply]") {
  const std::vector<float> x = {-0.0f, 1e-40f, std::numeric_limits<float>::max(), 7.0f};
  const tokens::plan p = tokens::from_kept(2, std::vector<std::int64_t>{0, 1});
  on_every_backend([&](const std::string&) {
    std::vector<float> out(4, 1.0f);
    tokens::merge(p, tensor_view(x.data(), dtype::f32, {2, 2}), tensor_view(out.data(), dtype::f32, {2, 2}));
    CHECK(same_bits(out, x));
  });
}

TEST_CASE("video hidden states of T frames merge across frames", "[tokens][apply]") {
  // 2 frames x 2 tokens x 1 channel, frame stride padded to 3 tokens.
  const std::vector<float> x = {1, 2, 99, 3, 4, 99};
  const tensor_view v(x.data(), dtype::f32, {2, 2, 1}, {3, 1, 1});
  // Token (0, 0) and (1, 0) merge; (0, 1) and (1, 1) merge.
  const tokens::plan p = tokens::from_destinations(std::vector<std::int64_t>{0, 1, 0, 1});
  const tokens::applied a = tokens::apply(p, v);
  CHECK(a.hidden.data<float>()[0] == 2.0f);
  CHECK(a.hidden.data<float>()[1] == 3.0f);
}

TEST_CASE("compose chains plans and keeps sizes", "[tokens][plan]") {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const tensor_view v(x.data(), dtype::f32, {6, 1});
  const tokens::plan first = tokens::from_destinations(std::vector<std::int64_t>{1, 1, 3, 3, 3, 5});  // {0,1},{2,3,4},{5}
  const tokens::plan second = tokens::from_destinations(std::vector<std::int64_t>{1, 1, 2});        // {A,B},{C}
  const tokens::plan both = tokens::compose(first, second);
  CHECK(both.kept == std::vector<std::int64_t>{3, 5});
  CHECK(both.sizes == std::vector<std::int64_t>{5, 1});
  CHECK(both.weights.empty());
  // Applying the chain with sizes carried equals the plain mean of every original token.
  const tokens::applied a1 = tokens::apply(first, v);
  tokens::apply_options o;
  o.sizes = a1.sizes;
  const tokens::applied a2 = tokens::apply(second, a1.hidden, o);
  const tokens::applied direct = tokens::apply(both, v);
  CHECK(a2.hidden.data<float>()[0] == Approx(3.0f));
  CHECK(direct.hidden.data<float>()[0] == 3.0f);
  CHECK(a2.sizes == direct.sizes);

  // With weights, coefficients multiply through.
  tokens::plan wsecond = second;
  wsecond.weights = {1.0f, 0.5f, 1.0f};
  const tokens::plan wboth = tokens::compose(first, wsecond);
  const tokens::applied w2 = tokens::apply(wsecond, a1.hidden, o);
  const tokens::applied wdirect = tokens::apply(wboth, v);
  CHECK(wdirect.hidden.data<float>()[0] == Approx(w2.hidden.data<float>()[0]));
  CHECK(wdirect.hidden.data<float>()[0] == Approx(1.5f + 0.5f * 4.0f));
  require_error([&] { (void)tokens::compose(second, first); }, errc::shape_mismatch,
                {"tokens::compose", "2 output tokens", "over 6"});
}

TEST_CASE("position ids in sequence and compact and 2-D and M-RoPE layouts", "[tokens][positions]") {
  // A 2 x 3 grid per frame, 2 frames; keep tokens 1, 5, 6 and 10.
  const tokens::plan p = tokens::from_kept(12, std::vector<std::int64_t>{10, 1, 6, 5});
  const std::vector<float> x(12, 1.0f);
  const tensor_view v(x.data(), dtype::f32, {12, 1});

  tokens::apply_options seq;
  seq.positions.offset = 35;  // the LLaVA-1.5 prompt's first image token
  tokens::applied a = tokens::apply(p, v, seq);
  const std::int32_t* ids = a.positions.data<std::int32_t>();
  CHECK(std::vector<std::int32_t>(ids, ids + 4) == std::vector<std::int32_t>{36, 40, 41, 45});
  CHECK(a.next_position == 47);

  seq.positions.compact = true;
  a = tokens::apply(p, v, seq);
  ids = a.positions.data<std::int32_t>();
  CHECK(std::vector<std::int32_t>(ids, ids + 4) == std::vector<std::int32_t>{35, 36, 37, 38});
  CHECK(a.next_position == 39);

  tokens::apply_options g2;
  g2.positions.layout = tokens::position_layout::grid_2d;
  g2.positions.shape = {2, 2, 3};
  a = tokens::apply(p, v, g2);
  REQUIRE(a.positions.size(0) == 2);
  ids = a.positions.data<std::int32_t>();
  // 1 = (0, 0, 1), 5 = (0, 1, 2), 6 = (1, 0, 0), 10 = (1, 1, 1)
  CHECK(std::vector<std::int32_t>(ids, ids + 8) == std::vector<std::int32_t>{0, 1, 0, 1, 1, 2, 0, 1});
  CHECK(a.next_position == 3);

  tokens::apply_options mr;
  mr.positions.layout = tokens::position_layout::mrope;
  mr.positions.shape = {2, 2, 3};
  mr.positions.offset = 15;  // Qwen2.5-VL's vision start
  mr.positions.temporal_stride = 2;
  a = tokens::apply(p, v, mr);
  REQUIRE(a.positions.size(0) == 3);
  ids = a.positions.data<std::int32_t>();
  CHECK(std::vector<std::int32_t>(ids, ids + 4) == std::vector<std::int32_t>{15, 15, 17, 17});  // t
  CHECK(std::vector<std::int32_t>(ids + 4, ids + 8) == std::vector<std::int32_t>{15, 16, 15, 16});  // h
  CHECK(std::vector<std::int32_t>(ids + 8, ids + 12) == std::vector<std::int32_t>{16, 17, 15, 16});  // w
  CHECK(a.next_position == 15 + 2 + 1);  // the unpruned block's largest id (t = 2) + 1
}

TEST_CASE("apply and positions refuse mismatched inputs", "[tokens][apply][errors]") {
  const tokens::plan p = tokens::from_kept(4, std::vector<std::int64_t>{0, 3});
  std::vector<float> x(12, 1.0f), out(6);
  const tensor_view v(x.data(), dtype::f32, {4, 3});
  require_error([&] { (void)tokens::apply(p, tensor_view(x.data(), dtype::f32, {3, 4})); }, errc::shape_mismatch,
                {"tokens::apply", "4 tokens", "[3, 4]"});
  require_error([&] { (void)tokens::apply(p, tensor_view(x.data(), dtype::f32, {12})); }, errc::shape_mismatch,
                {"tokens::apply", "[N, D]"});
  std::vector<std::int32_t> xi(12);
  require_error([&] { (void)tokens::apply(p, tensor_view(xi.data(), dtype::i32, {4, 3})); }, errc::invalid_argument,
                {"tokens::apply", "f32", "i32"});
  require_error([&] { tokens::merge(p, v, tensor_view(out.data(), dtype::f32, {3, 2})); }, errc::shape_mismatch,
                {"tokens::merge", "out", "[2, 3]"});
  require_error([&] { tokens::merge(p, v, tensor_view(x.data(), dtype::f32, {2, 3})); }, errc::invalid_argument,
                {"tokens::merge", "overlap"});
  const std::vector<std::int64_t> sizes = {1, 0, 1, 1};
  require_error([&] { tokens::merge(p, v, tensor_view(out.data(), dtype::f32, {2, 3}), sizes); },
                errc::invalid_argument, {"tokens::merge", "sizes must be >= 1", "token 1"});
  tokens::apply_options o;
  o.positions.layout = tokens::position_layout::mrope;
  o.positions.shape = {1, 3, 3};
  require_error([&] { (void)tokens::apply(p, v, o); }, errc::shape_mismatch, {"grid 1 x 3 x 3", "4 tokens", "got 9"});
  o.positions.shape = {};
  require_error([&] { (void)tokens::apply(p, v, o); }, errc::invalid_argument, {"needs the token grid"});
  o.positions = {};
  o.positions.offset = std::int64_t(1) << 40;
  require_error([&] { (void)tokens::apply(p, v, o); }, errc::invalid_argument, {"fit i32"});
  std::vector<std::int32_t> ids(2);
  tokens::position_options po;
  po.layout = tokens::position_layout::grid_2d;
  po.compact = true;
  require_error([&] { (void)tokens::position_ids(p, po, tensor_view(ids.data(), dtype::i32, {2})); },
                errc::invalid_argument, {"compact"});
}

TEST_CASE("cosine similarity matches the reference bit for bit on every backend", "[tokens][kernels]") {
  // Odd sizes and strided rows: tails of every tile and panel.
  for (auto [m, n, d] : {std::array<std::int64_t, 3>{1, 1, 1}, {37, 53, 19}, {70, 33, 64}, {17, 100, 130}}) {
    const std::int64_t lda = d + 3, ldb = d + 5;
    std::vector<float> a = random_values(std::size_t(m * lda), 1), b = random_values(std::size_t(n * ldb), 2);
    for (std::int64_t c = 0; c < d; ++c) b[std::size_t(2 % n * ldb + c)] = 0.0f;  // a zero row
    std::vector<float> expected(static_cast<std::size_t>(m * n));
    cinch::ref::cosine_matrix(a.data(), lda, m, b.data(), ldb, n, d, expected.data(), n);
    for (std::int64_t i = 0; i < m; ++i) REQUIRE(expected[std::size_t(i * n + 2 % n)] == 0.0f);
    const tensor_view va(a.data(), dtype::f32, {m, d}, {lda, 1}), vb(b.data(), dtype::f32, {n, d}, {ldb, 1});
    on_every_backend([&](const std::string& backend) {
      INFO(backend << " " << m << "x" << n << "x" << d);
      std::vector<float> out(static_cast<std::size_t>(m * n), -7.0f);
      tokens::cosine_similarity(va, vb, tensor_view(out.data(), dtype::f32, {m, n}));
      CHECK(same_bits(out, expected));

      std::vector<float> best(static_cast<std::size_t>(m));
      std::vector<std::int32_t> index(static_cast<std::size_t>(m));
      tokens::cosine_argmax(va, vb, tensor_view(best.data(), dtype::f32, {m}),
                            tensor_view(index.data(), dtype::i32, {m}));
      for (std::int64_t i = 0; i < m; ++i) {
        float top;
        const std::int64_t j = cinch::ref::argmax(expected.data() + i * n, n, top);
        REQUIRE(index[std::size_t(i)] == j);
        REQUIRE(best[std::size_t(i)] == top);
      }
    });
  }
}

TEST_CASE("cosines of known vectors and ties toward the lower index", "[tokens][kernels]") {
  // Rows: e0, e0 + e1, -e0, 2 e0 (a duplicate direction of row 0), 0.
  const std::vector<float> x = {1, 0, 1, 1, -1, 0, 2, 0, 0, 0};
  const tensor_view v(x.data(), dtype::f32, {5, 2});
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    std::vector<float> s(25);
    tokens::cosine_similarity(v, v, tensor_view(s.data(), dtype::f32, {5, 5}));
    CHECK(s[0] == 1.0f);
    CHECK(s[1] == Approx(std::sqrt(0.5f)));
    CHECK(s[2] == -1.0f);
    CHECK(s[3] == 1.0f);
    CHECK(s[4] == 0.0f);
    std::vector<float> best(5);
    std::vector<std::int32_t> index(5);
    // Row 0's best other row: rows 3 (cos 1); row 3's: row 0 (tie with itself excluded).
    tokens::cosine_argmax(v, v, tensor_view(best.data(), dtype::f32, {5}), tensor_view(index.data(), dtype::i32, {5}),
                          true);
    // Row 2 (-e0) is closest to the zero row (cos 0); row 4 (zero): all 0, the lowest other index.
    CHECK(index == std::vector<std::int32_t>{3, 0, 4, 0, 0});
    tokens::cosine_argmax(v, v, tensor_view(best.data(), dtype::f32, {5}), tensor_view(index.data(), dtype::i32, {5}));
    CHECK(index[3] == 0);  // cos(3, 0) == cos(3, 3) == 1: the lower index wins
  });
}

TEST_CASE("row argmax with ties and NaN and -inf", "[tokens][kernels]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::int64_t n = 37;
  std::vector<float> s(4 * n, 0.0f);
  s[5] = 3.0f, s[30] = 3.0f;                                            // row 0: tie -> 5
  for (std::int64_t j = 0; j < n; ++j) s[std::size_t(n + j)] = nan;     // row 1: all NaN -> -1
  s[std::size_t(n + 36)] = -inf;                                        // ... but one -inf -> 36
  for (std::int64_t j = 0; j < n; ++j) s[std::size_t(2 * n + j)] = nan;  // row 2: all NaN
  s[std::size_t(3 * n + 0)] = nan, s[std::size_t(3 * n + 36)] = 1.0f;   // row 3: NaN first, max in the tail
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    std::vector<float> best(4);
    std::vector<std::int32_t> index(4);
    tokens::row_argmax(tensor_view(s.data(), dtype::f32, {4, n}), tensor_view(best.data(), dtype::f32, {4}),
                       tensor_view(index.data(), dtype::i32, {4}));
    CHECK(index == std::vector<std::int32_t>{5, 36, -1, 36});
    CHECK(best[0] == 3.0f);
    CHECK(best[1] == -inf);
  });
}

TEST_CASE("merge rows match the reference bit for bit on every backend", "[tokens][kernels]") {
  const std::int64_t n = 41, d = 133;
  const std::vector<float> x = random_values(std::size_t(n * d), 3);
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) destination[std::size_t(i)] = i % 7 == 3 && i % 5 ? -1 : (i / 5) * 5;
  const tokens::plan p = tokens::from_destinations(destination);
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) sizes[std::size_t(i)] = 1 + i % 4;
  const std::int64_t k = p.output_tokens();
  std::vector<float> expected(static_cast<std::size_t>(k * d));
  for (std::int64_t r = 0; r < k; ++r) {
    std::vector<std::int64_t> offsets;
    std::vector<float> w;
    std::int64_t total = 0;
    for (std::int64_t i = 0; i < n; ++i)
      if (p.assign[std::size_t(i)] == r) {
        offsets.push_back(i * d);
        w.push_back(float(sizes[std::size_t(i)]));
        total += sizes[std::size_t(i)];
      }
    cinch::ref::merge_row(x.data(), offsets.data(), w.data(), std::int64_t(offsets.size()), float(total), d,
                          expected.data() + r * d);
  }
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    std::vector<float> out(static_cast<std::size_t>(k * d));
    tokens::merge(p, tensor_view(x.data(), dtype::f32, {n, d}), tensor_view(out.data(), dtype::f32, {k, d}), sizes);
    CHECK(same_bits(out, expected));
  });
}

TEST_CASE("top-k ranks largest first with ties toward the lower index and NaN last", "[tokens][kernels]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> s = {0.5f, nan, 2.0f, 0.5f, 2.0f, -1.0f};
  CHECK(tokens::top_k(s, 4) == std::vector<std::int64_t>{2, 4, 0, 3});
  CHECK(tokens::top_k(s, 99) == std::vector<std::int64_t>{2, 4, 0, 3, 5, 1});
  CHECK(tokens::top_k(s, 0).empty());
}

TEST_CASE("kernel operations refuse bad shapes", "[tokens][kernels][errors]") {
  std::vector<float> a(12), b(12), out(9);
  std::vector<std::int32_t> index(3);
  require_error(
      [&] {
        tokens::cosine_similarity(tensor_view(a.data(), dtype::f32, {3, 4}), tensor_view(b.data(), dtype::f32, {4, 3}),
                                  tensor_view(out.data(), dtype::f32, {3, 4}));
      },
      errc::shape_mismatch, {"tokens::cosine_similarity", "row length 4", "[4, 3]"});
  require_error(
      [&] {
        tokens::cosine_similarity(tensor_view(a.data(), dtype::f32, {3, 4}), tensor_view(b.data(), dtype::f32, {3, 4}),
                                  tensor_view(out.data(), dtype::f32, {3, 2}));
      },
      errc::shape_mismatch, {"out must have shape [3, 3]"});
  require_error(
      [&] {
        tokens::cosine_argmax(tensor_view(a.data(), dtype::f32, {3, 4}), tensor_view(b.data(), dtype::f32, {3, 4}),
                              tensor_view(out.data(), dtype::f32, {3}), tensor_view(out.data() + 3, dtype::f32, {3}));
      },
      errc::invalid_argument, {"index must have dtype i32"});
  require_error(
      [&] {
        tokens::row_argmax(tensor_view(a.data(), dtype::f32, {12}), tensor_view(out.data(), dtype::f32, {3}),
                           tensor_view(index.data(), dtype::i32, {3}));
      },
      errc::shape_mismatch, {"tokens::row_argmax", "rank 2"});
}

TEST_CASE("random pruning keeps an exact sorted count deterministic per seed", "[tokens][baselines]") {
  const tokens::plan a = tokens::random_prune(576, 64, 7), b = tokens::random_prune(576, 64, 7);
  const tokens::plan c = tokens::random_prune(576, 64, 8);
  CHECK(a.output_tokens() == 64);
  CHECK(a.kept == b.kept);
  CHECK(a.kept != c.kept);
  CHECK(std::is_sorted(a.kept.begin(), a.kept.end()));
  CHECK(sum(a.sizes) + a.dropped() == 576);
  // Roughly uniform: each half of the sequence gets a fair share over many seeds.
  std::int64_t first_half = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed)
    for (std::int64_t t : tokens::random_prune(100, 10, seed).kept) first_half += t < 50;
  CHECK(first_half > 900);
  CHECK(first_half < 1100);
  CHECK(tokens::random_prune(5, 9).output_tokens() == 5);  // clamped
  require_error([] { (void)tokens::random_prune(5, 0); }, errc::invalid_argument, {"keep must be >= 1", "got 0"});
  require_error([] { (void)tokens::random_prune(0, 1); }, errc::invalid_argument, {"n must be >= 1"});
}

TEST_CASE("pooling merges each bin into its middle token", "[tokens][baselines]") {
  // 4 x 4 -> 2 x 2: bins of 2 x 2, represented by their top-left token.
  const tokens::plan p = tokens::pool(tokens::grid{1, 4, 4}, 2, 2);
  CHECK(p.kept == std::vector<std::int64_t>{0, 2, 8, 10});
  CHECK(p.sizes == std::vector<std::int64_t>{4, 4, 4, 4});
  CHECK(p.assign[5] == 0);
  CHECK(p.assign[15] == 3);
  std::vector<float> x(16);
  std::iota(x.begin(), x.end(), 0.0f);
  const tokens::applied a = tokens::apply(p, tensor_view(x.data(), dtype::f32, {16, 1}));
  CHECK(std::vector<float>(a.hidden.data<float>(), a.hidden.data<float>() + 4) ==
        std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});

  // 24 x 24 to exactly 64, 128 and 192 tokens; sizes always sum to N.
  for (std::int64_t keep : {64, 128, 192, 144}) {
    const tokens::plan q = tokens::pool(tokens::grid{1, 24, 24}, keep);
    CHECK(q.output_tokens() == keep);
    CHECK(sum(q.sizes) == 576);
  }
  // 3 x 3 bins of a 6 x 6 grid, 2 frames: representatives in the middle of each bin.
  const tokens::plan v = tokens::pool(tokens::grid{2, 6, 6}, 2, 2);
  CHECK(v.kept == std::vector<std::int64_t>{7, 10, 25, 28, 43, 46, 61, 64});
  require_error([] { (void)tokens::pool(tokens::grid{1, 4, 4}, 5, 2); }, errc::invalid_argument,
                {"tokens::pool", "between 1 x 1 and 4 x 4", "5 x 2"});
  require_error([] { (void)tokens::pool(tokens::grid{1, 24, 24}, 191); }, errc::invalid_argument,
                {"factor", "got 191"});
  require_error([] { (void)tokens::pool(tokens::grid{1, 0, 4}, 1, 1); }, errc::invalid_argument, {"grid extents"});
  require_error([] { (void)tokens::pool(tokens::grid{}, 1, 1); }, errc::invalid_argument, {"needs the token grid"});
}
