// bench_tokens: visual-token methods and their shared kernels, each next to a
// naive implementation of the same algorithm in this binary, and the cosine
// GEMM next to Eigen's GEMM when Eigen is on the include path.
//
// Workloads (deterministic pseudo-random, the same for every variant):
//   image   576 tokens (24 x 24, LLaVA-1.5), hidden states D = 1024 (CLIP-L),
//           head-mean keys dk = 64, [CLS] attention a softmax of random logits
//   anyres  2880 tokens (LLaVA-NeXT 5 x 576), keys dk = 64
//   fastv   one layer of a 7B LLM: 32 query / 8 KV heads of 128, 35 + 576 + 29 tokens
//
// Counters: vs_naive = naive time / this time (the speedup), measured lazily in
// this process (best of 3 calls after one warm-up, CPU time of the thread, as the
// benchmarks themselves are timed); gflops for the GEMMs, and
// vs_eigen = this GEMM's rate / Eigen's (single thread, same shapes, rows
// normalized first, A * A^T). Everything runs on one thread (cinch::set_threads(1),
// Eigen::setNbThreads(1)) unless the name ends in /threads:N.
//
//   bench_tokens --benchmark_min_time=0.2
//
// The naive versions are what a straight port of the reference Python does:
// full similarity matrices with scalar loops, argsort, O(K^2 N) rescans, eager
// attention over every query.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/tokens/apply.hpp"
#include "cinch/tokens/baselines.hpp"
#include "cinch/tokens/dart.hpp"
#include "cinch/tokens/divprune.hpp"
#include "cinch/tokens/fastv.hpp"
#include "cinch/tokens/similarity.hpp"
#include "cinch/tokens/tome.hpp"
#include "cinch/tokens/visionzip.hpp"

#include "bench_common.hpp"

#if __has_include(<Eigen/Core>)
#include <Eigen/Core>
#define CINCH_BENCH_EIGEN 1
#endif

namespace {

namespace tokens = cinch::tokens;
using cinch::dtype;
using cinch::tensor_view;
using cinch_bench::mix;

// ------------------------------------------------------------------ input data

// Roughly N(0, 1) (Irwin-Hall of four uniforms), from a counter.
float normal(std::uint64_t counter) { return cinch_bench::normal_of_bits(mix(counter)); }

// n x d values: 48 cluster centres plus per-token noise, so similarities are
// structured as image patches' are (neighbours of a kind, a few outliers).
std::vector<float> clustered(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint64_t centre = mix(seed ^ std::uint64_t(i) * 7919u) % 48;
    for (std::int64_t c = 0; c < d; ++c)
      x[std::size_t(i * d + c)] = normal(seed * 1000003u + centre * 65537u + std::uint64_t(c)) +
                                  0.6f * normal((seed << 32) ^ std::uint64_t(i * d + c));
  }
  return x;
}

std::vector<float> softmax_scores(std::int64_t n, std::uint64_t seed) {
  std::vector<float> s(static_cast<std::size_t>(n));
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) total += s[std::size_t(i)] = std::exp(2.0f * normal(seed + std::uint64_t(i)));
  for (float& v : s) v = float(v / total);
  return s;
}

struct image_data {
  std::int64_t n, d, dk;
  std::vector<float> hidden, keys, cls;

  // As the methods take them: hidden states [n, d], keys [n, dk], [CLS] attention [n].
  [[nodiscard]] tensor_view hidden_view() const { return tensor_view(hidden.data(), dtype::f32, {n, d}); }
  [[nodiscard]] tensor_view keys_view() const { return tensor_view(keys.data(), dtype::f32, {n, dk}); }
  [[nodiscard]] tensor_view cls_view() const { return tensor_view(cls.data(), dtype::f32, {n}); }
};

const image_data& image(std::int64_t n = 576) {
  static std::map<std::int64_t, image_data> cache;
  auto it = cache.find(n);
  if (it == cache.end())
    it = cache.emplace(n, image_data{n, 1024, 64, clustered(n, 1024, 1), clustered(n, 64, 2), softmax_scores(n, 3)})
             .first;
  return it->second;
}

// ------------------------------------------------------------------ timing

class single_thread {
 public:
  single_thread() : previous_(cinch::threads()) { cinch::set_threads(1); }
  ~single_thread() { cinch::set_threads(previous_); }
  single_thread(const single_thread&) = delete;
  single_thread& operator=(const single_thread&) = delete;

 private:
  int previous_;
};

double best_seconds(const std::function<void()>& call) {
  call();
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const double t0 = cinch_bench::seconds_now(1);
    call();
    best = std::min(best, cinch_bench::seconds_now(1) - t0);
  }
  return best;
}

// The naive baseline's time, measured once per name.
double naive_seconds(const std::string& name, const std::function<void()>& call) {
  static std::map<std::string, double> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    single_thread one;
    it = cache.emplace(name, best_seconds(call)).first;
  }
  return it->second;
}

// Runs `call` as the benchmark body and reports vs_naive against `naive`.
void run(benchmark::State& state, const std::string& naive_name, const std::function<void()>& naive,
         const std::function<void()>& call) {
  const double baseline = naive ? naive_seconds(naive_name, naive) : 0.0;
  single_thread one;
  call();
  for (auto _ : state) call();
  if (naive)
    state.counters["vs_naive"] =
        benchmark::Counter(baseline * double(state.iterations()), benchmark::Counter::kIsRate);
}

// ------------------------------------------------------------------ naive versions

// Rows divided by their norms, as the Python references do before their matmul.
std::vector<float> normalized(const float* x, std::int64_t n, std::int64_t d) {
  std::vector<float> out(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    float ss = 0;
    for (std::int64_t c = 0; c < d; ++c) ss += x[i * d + c] * x[i * d + c];
    const float inv = ss > 0 ? 1.0f / std::sqrt(ss) : 0.0f;
    for (std::int64_t c = 0; c < d; ++c) out[std::size_t(i * d + c)] = x[i * d + c] * inv;
  }
  return out;
}

float dot(const float* a, const float* b, std::int64_t d) {
  float s = 0;
  for (std::int64_t c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

// out = a * b^T, scalar loops.
void naive_gram(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t d, float* out) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) out[i * n + j] = dot(a + i * d, b + j * d, d);
}

// ToMe's bipartite_soft_matching + merge_wavg: scores, argmax, argsort, scatter mean;
// output [unmerged A, B] as the reference emits it.
std::vector<float> naive_tome(const float* metric, std::int64_t dm, const float* x, std::int64_t d, std::int64_t n,
                              std::int64_t r) {
  const std::vector<float> m = normalized(metric, n, dm);
  const std::int64_t na = (n + 1) / 2, nb = n / 2;
  std::vector<float> a(static_cast<std::size_t>(na * dm)), b(static_cast<std::size_t>(nb * dm)), scores(static_cast<std::size_t>(na * nb));
  for (std::int64_t i = 0; i < n; ++i)
    std::copy_n(m.data() + i * dm, dm, (i % 2 ? b.data() + i / 2 * dm : a.data() + i / 2 * dm));
  naive_gram(a.data(), na, b.data(), nb, dm, scores.data());
  std::vector<float> node_max(static_cast<std::size_t>(na));
  std::vector<std::int64_t> node_idx(static_cast<std::size_t>(na)), order(static_cast<std::size_t>(na));
  for (std::int64_t i = 0; i < na; ++i) {
    const float* row = scores.data() + i * nb;
    node_idx[std::size_t(i)] = std::max_element(row, row + nb) - row;
    node_max[std::size_t(i)] = row[node_idx[std::size_t(i)]];
  }
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t p, std::int64_t q) { return node_max[std::size_t(p)] > node_max[std::size_t(q)]; });
  std::vector<float> dst(static_cast<std::size_t>(nb * d)), count(std::size_t(nb), 1.0f);
  for (std::int64_t j = 0; j < nb; ++j) std::copy_n(x + (2 * j + 1) * d, d, dst.data() + j * d);
  for (std::int64_t e = 0; e < r; ++e) {
    const std::int64_t i = order[std::size_t(e)], j = node_idx[std::size_t(i)];
    for (std::int64_t c = 0; c < d; ++c) dst[std::size_t(j * d + c)] += x[2 * i * d + c];
    count[std::size_t(j)] += 1.0f;
  }
  std::vector<float> out;
  for (std::int64_t e = r; e < na; ++e) out.insert(out.end(), x + 2 * order[std::size_t(e)] * d, x + (2 * order[std::size_t(e)] + 1) * d);
  for (std::int64_t j = 0; j < nb; ++j)
    for (std::int64_t c = 0; c < d; ++c) out.push_back(dst[std::size_t(j * d + c)] / count[std::size_t(j)]);
  return out;
}

// DivPrune's reference selection on a distance matrix: rescans the selected rows every step.
std::vector<std::int64_t> naive_divprune_selection(const std::vector<float>& distance, std::int64_t n, std::int64_t k) {
  std::vector<std::int64_t> selected;
  std::int64_t first = 0;
  float first_value = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    float nearest = INFINITY;
    for (std::int64_t j = 0; j < n; ++j)
      if (j != i) nearest = std::min(nearest, distance[std::size_t(i * n + j)]);
    if (nearest > first_value) first_value = nearest, first = i;
  }
  selected.push_back(first);
  std::vector<char> taken(static_cast<std::size_t>(n), 0);
  taken[std::size_t(first)] = 1;
  while (std::int64_t(selected.size()) < k) {
    std::int64_t pick = -1;
    float pick_value = -1;
    for (std::int64_t j = 0; j < n; ++j) {
      if (taken[std::size_t(j)]) continue;
      float m = INFINITY;
      for (std::int64_t s : selected) m = std::min(m, distance[std::size_t(s * n + j)]);
      if (m > pick_value) pick_value = m, pick = j;
    }
    selected.push_back(pick);
    taken[std::size_t(pick)] = 1;
  }
  return selected;
}

std::vector<float> distances(const float* x, std::int64_t n, std::int64_t d) {
  const std::vector<float> m = normalized(x, n, d);
  std::vector<float> s(static_cast<std::size_t>(n * n));
  naive_gram(m.data(), n, m.data(), n, d, s.data());
  for (float& v : s) v = 1.0f - v;
  return s;
}

// DivPrune's incremental selection on the same matrix: a running min-distance vector.
std::vector<std::int64_t> incremental_divprune_selection(const std::vector<float>& distance, std::int64_t n,
                                                         std::int64_t k) {
  std::int64_t pick = 0;
  float pick_value = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    float nearest = INFINITY;
    for (std::int64_t j = 0; j < n; ++j)
      if (j != i) nearest = std::min(nearest, distance[std::size_t(i * n + j)]);
    if (nearest > pick_value) pick_value = nearest, pick = i;
  }
  std::vector<float> m(static_cast<std::size_t>(n), INFINITY);
  std::vector<std::int64_t> selected;
  while (true) {
    selected.push_back(pick);
    m[std::size_t(pick)] = -INFINITY;
    if (std::int64_t(selected.size()) == k) break;
    const float* row = distance.data() + pick * n;
    pick = -1;
    for (std::int64_t j = 0; j < n; ++j) {
      if (m[std::size_t(j)] == -INFINITY) continue;
      m[std::size_t(j)] = std::min(m[std::size_t(j)], row[j]);
      if (pick < 0 || m[std::size_t(j)] > m[std::size_t(pick)]) pick = j;
    }
  }
  return selected;
}

// VisionZip as the reference computes it: top-k, then a full similarity of the
// remaining tokens to the targets, argmax, and the target + mean merge.
std::vector<float> naive_visionzip(const image_data& in, std::int64_t keep, std::int64_t contextual) {
  const std::int64_t n = in.n, d = in.d;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return in.cls[std::size_t(a)] > in.cls[std::size_t(b)]; });
  std::vector<char> dominant(static_cast<std::size_t>(n), 0);
  std::vector<float> out;
  for (std::int64_t i = 0; i < keep - contextual; ++i) {
    dominant[std::size_t(order[std::size_t(i)])] = 1;
    out.insert(out.end(), in.hidden.begin() + order[std::size_t(i)] * d, in.hidden.begin() + (order[std::size_t(i)] + 1) * d);
  }
  std::vector<std::int64_t> rest;
  for (std::int64_t i = 0; i < n; ++i)
    if (!dominant[std::size_t(i)]) rest.push_back(i);
  const std::vector<float> m = normalized(in.keys.data(), n, in.dk);
  const std::int64_t step = std::max<std::int64_t>(1, std::int64_t(rest.size()) / contextual);
  std::vector<std::int64_t> targets, others;
  for (std::size_t i = 0; i < rest.size(); ++i)
    (std::int64_t(i) % step == 0 && std::int64_t(targets.size()) < contextual ? targets : others).push_back(rest[i]);
  std::vector<float> sum(static_cast<std::size_t>(contextual * d), 0.0f), count(std::size_t(contextual), 0.0f);
  for (std::int64_t o : others) {
    std::int64_t best = 0;
    float best_value = -INFINITY;
    for (std::size_t t = 0; t < targets.size(); ++t) {
      const float s = dot(m.data() + o * in.dk, m.data() + targets[t] * in.dk, in.dk);
      if (s > best_value) best_value = s, best = std::int64_t(t);
    }
    for (std::int64_t c = 0; c < d; ++c) sum[std::size_t(best * d + c)] += in.hidden[std::size_t(o * d + c)];
    count[std::size_t(best)] += 1.0f;
  }
  for (std::size_t t = 0; t < targets.size(); ++t)
    for (std::int64_t c = 0; c < d; ++c)
      out.push_back(in.hidden[std::size_t(targets[t] * d + c)] + sum[t * std::size_t(d) + std::size_t(c)] / std::max(1.0f, count[t]));
  return out;
}

// DART as the reference does it: per pivot a full cosine row and a sort.
std::vector<std::int64_t> naive_dart(const image_data& in, std::int64_t keep, std::int64_t pivots) {
  const std::int64_t n = in.n, d = in.d;
  std::vector<float> norm(static_cast<std::size_t>(n), 0.0f);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < in.dk; ++c) norm[std::size_t(i)] += std::fabs(in.keys[std::size_t(i * in.dk + c)]);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return norm[std::size_t(a)] > norm[std::size_t(b)]; });
  const std::vector<float> m = normalized(in.hidden.data(), n, d);
  std::vector<char> chosen(static_cast<std::size_t>(n), 0);
  std::vector<std::int64_t> kept(order.begin(), order.begin() + pivots);
  for (std::int64_t p : kept) chosen[std::size_t(p)] = 1;
  const std::int64_t quota = (keep - pivots + pivots - 1) / pivots;
  for (std::int64_t p = 0; p < pivots; ++p) {
    std::vector<std::pair<float, std::int64_t>> cand;
    for (std::int64_t j = 0; j < n; ++j)
      if (!chosen[std::size_t(j)]) cand.emplace_back(dot(m.data() + kept[std::size_t(p)] * d, m.data() + j * d, d), j);
    std::sort(cand.begin(), cand.end());
    for (std::int64_t q = 0; q < quota && q < std::int64_t(cand.size()); ++q) {
      chosen[std::size_t(cand[std::size_t(q)].second)] = 1;
      kept.push_back(cand[std::size_t(q)].second);
    }
  }
  return kept;
}

// ------------------------------------------------------------------ FastV workload

struct layer_data {
  std::int64_t heads = 32, kv_heads = 8, dim = 128, first = 35, n = 576, length = 35 + 576 + 29;
  std::vector<float> q, keys;
};

const layer_data& layer() {
  static const layer_data l = [] {
    layer_data x;
    x.q = clustered(x.length * x.heads, x.dim, 4);  // every query row of the layer (the naive path needs all)
    x.keys = clustered(x.kv_heads * x.length, x.dim, 5);
    return x;
  }();
  return l;
}

// Eager attention at layer K-1 (output_attentions): the full L x L probabilities of
// every head, causal, then the last row's visual block, head-mean.
std::vector<float> naive_fastv_scores(const layer_data& l) {
  const std::int64_t L = l.length, group = l.heads / l.kv_heads;
  std::vector<float> probs(static_cast<std::size_t>(L * L)), out(std::size_t(l.n), 0.0f);
  const float scale = 1.0f / std::sqrt(float(l.dim));
  for (std::int64_t h = 0; h < l.heads; ++h) {
    const float* k = l.keys.data() + (h / group) * L * l.dim;
    for (std::int64_t i = 0; i < L; ++i) {
      const float* qi = l.q.data() + (i * l.heads + h) * l.dim;
      float top = -INFINITY;
      for (std::int64_t j = 0; j <= i; ++j) top = std::max(top, probs[std::size_t(i * L + j)] = scale * dot(qi, k + j * l.dim, l.dim));
      float total = 0;
      for (std::int64_t j = 0; j <= i; ++j) total += probs[std::size_t(i * L + j)] = std::exp(probs[std::size_t(i * L + j)] - top);
      for (std::int64_t j = 0; j <= i; ++j) probs[std::size_t(i * L + j)] /= total;
    }
    for (std::int64_t j = 0; j < l.n; ++j) out[std::size_t(j)] += probs[std::size_t((L - 1) * L + l.first + j)] / float(l.heads);
  }
  return out;
}

// ------------------------------------------------------------------ benchmarks

void BM_similarity(benchmark::State& state) {
  const std::int64_t n = state.range(0), d = state.range(1);
  const std::vector<float> x = clustered(n, d, 6);
  std::vector<float> out(static_cast<std::size_t>(n * n));
  const tensor_view v(x.data(), dtype::f32, {n, d}), o(out.data(), dtype::f32, {n, n});
  run(state, "similarity/" + std::to_string(n) + "/" + std::to_string(d),
      [&] { const std::vector<float> m = normalized(x.data(), n, d); naive_gram(m.data(), n, m.data(), n, d, out.data()); },
      [&] { tokens::cosine_similarity(v, v, o); });
  const double flops = 2.0 * double(n) * double(n) * double(d);
  state.counters["gflops"] = benchmark::Counter(flops * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
#if CINCH_BENCH_EIGEN
  static std::map<std::pair<std::int64_t, std::int64_t>, double> eigen_rate;
  auto it = eigen_rate.find({n, d});
  if (it == eigen_rate.end()) {
    Eigen::setNbThreads(1);
    using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const matrix> xm(x.data(), n, d);
    matrix s(n, n);
    const double seconds = best_seconds([&] {
      const matrix m = xm.rowwise().normalized();
      s.noalias() = m * m.transpose();
      benchmark::DoNotOptimize(s.data());
    });
    it = eigen_rate.emplace(std::make_pair(n, d), flops / seconds).first;
  }
  state.counters["vs_eigen"] = benchmark::Counter(double(state.iterations()) * flops / it->second, benchmark::Counter::kIsRate);
#endif
}
BENCHMARK(BM_similarity)->Args({576, 1024})->Args({576, 64})->Args({2880, 64})->Unit(benchmark::kMillisecond);

#if CINCH_BENCH_EIGEN
void BM_similarity_eigen(benchmark::State& state) {
  const std::int64_t n = state.range(0), d = state.range(1);
  const std::vector<float> x = clustered(n, d, 6);
  Eigen::setNbThreads(1);
  using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const matrix> xm(x.data(), n, d);
  matrix s(n, n);
  for (auto _ : state) {
    const matrix m = xm.rowwise().normalized();
    s.noalias() = m * m.transpose();
    benchmark::DoNotOptimize(s.data());
  }
  state.counters["gflops"] = benchmark::Counter(2e-9 * double(n * n * d) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_similarity_eigen)->Args({576, 1024})->Args({576, 64})->Args({2880, 64})->Unit(benchmark::kMillisecond);
#endif

// ToMe, r = 288 on 576 tokens (every A token merges): plan + size-weighted merge of
// the 576 x 1024 hidden states. Metric: the hidden states themselves (range 1 = 0)
// or head-mean keys of 64 (range 1 = 1), as ToMe uses them.
void BM_tome(benchmark::State& state) {
  const image_data& in = image();
  const bool keys = state.range(0) == 1;
  const std::int64_t r = 288, dm = keys ? in.dk : in.d;
  const float* metric = keys ? in.keys.data() : in.hidden.data();
  tokens::inputs inputs;
  inputs.features = in.hidden_view();
  if (keys) inputs.keys = in.keys_view();
  cinch::tensor out = cinch::tensor::empty({in.n - r, in.d}, dtype::f32);
  run(state, keys ? "tome/keys" : "tome/hidden",
      [&] { benchmark::DoNotOptimize(naive_tome(metric, dm, in.hidden.data(), in.d, in.n, r).data()); },
      [&] {
        const tokens::plan p = tokens::tome(inputs, r);
        tokens::merge(p, inputs.features, out);
        benchmark::DoNotOptimize(out.data());
      });
}
BENCHMARK(BM_tome)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// DivPrune, 2880 -> 288 on 64-d keys: the whole method (first pick over the
// full similarity + incremental steps) against the naive matrix + O(K^2 N) rescans.
void BM_divprune(benchmark::State& state) {
  const image_data& in = image(2880);
  tokens::inputs inputs;
  inputs.keys = in.keys_view();
  run(state, "divprune",
      [&] { benchmark::DoNotOptimize(naive_divprune_selection(distances(in.keys.data(), in.n, in.dk), in.n, 288).data()); },
      [&] { benchmark::DoNotOptimize(tokens::divprune(inputs, 288).kept.data()); });
}
BENCHMARK(BM_divprune)->Unit(benchmark::kMillisecond);

// The selection step alone on a precomputed distance matrix: incremental vs rescan
// (the comparison of the research notes, 108 vs 8.4 ms there).
void BM_divprune_selection(benchmark::State& state) {
  const image_data& in = image(2880);
  static const std::vector<float> dist = distances(in.keys.data(), in.n, in.dk);
  run(state, "divprune_selection", [&] { benchmark::DoNotOptimize(naive_divprune_selection(dist, in.n, 288).data()); },
      [&] { benchmark::DoNotOptimize(incremental_divprune_selection(dist, in.n, 288).data()); });
}
BENCHMARK(BM_divprune_selection)->Unit(benchmark::kMillisecond);

// FastV's scores at layer K-1: attention_rows for the last query against eager
// attention over every query (what output_attentions costs), then the top 144.
void BM_fastv(benchmark::State& state) {
  const layer_data& l = layer();
  std::vector<float> scores(static_cast<std::size_t>(l.n));
  const tensor_view q(l.q.data() + (l.length - 1) * l.heads * l.dim, dtype::f32, {1, l.heads, l.dim});
  const tensor_view k(l.keys.data(), dtype::f32, {l.kv_heads, l.length, l.dim});
  tokens::inputs in;
  in.text_attention = tensor_view(scores.data(), dtype::f32, {1, l.n});
  run(state, "fastv",
      [&] {
        const std::vector<float> s = naive_fastv_scores(l);
        benchmark::DoNotOptimize(tokens::top_k(s, 144).data());
      },
      [&] {
        tokens::attention_rows(q, k, l.first, in.text_attention);
        benchmark::DoNotOptimize(tokens::fastv(in, 144).kept.data());
      });
}
BENCHMARK(BM_fastv)->Unit(benchmark::kMillisecond);

// VisionZip 576 -> 64 (54 dominant + 10 contextual), plan + apply.
void BM_visionzip(benchmark::State& state) {
  const image_data& in = image();
  tokens::inputs inputs;
  inputs.features = in.hidden_view();
  inputs.keys = in.keys_view();
  inputs.cls_attention = in.cls_view();
  cinch::tensor out = cinch::tensor::empty({64, in.d}, dtype::f32);
  run(state, "visionzip", [&] { benchmark::DoNotOptimize(naive_visionzip(in, 64, 10).data()); },
      [&] {
        tokens::merge(tokens::visionzip(inputs, 64), inputs.features, out);
        benchmark::DoNotOptimize(out.data());
      });
}
BENCHMARK(BM_visionzip)->Unit(benchmark::kMillisecond);

// DART 576 -> 128 with 4 image pivots (no text), cosine on the 1024-d hidden states.
void BM_dart(benchmark::State& state) {
  const image_data& in = image();
  tokens::inputs inputs;
  inputs.features = in.hidden_view();
  inputs.keys = in.keys_view();
  tokens::dart_options o;
  o.text_pivots = 0;
  run(state, "dart", [&] { benchmark::DoNotOptimize(naive_dart(in, 128, 4).data()); },
      [&] { benchmark::DoNotOptimize(tokens::dart(inputs, 128, o).kept.data()); });
}
BENCHMARK(BM_dart)->Unit(benchmark::kMillisecond);

// apply: the 576 x 1024 hidden states merged by a 2 x 2 pooling plan (every output
// row a mean of 4) with sizes; bytes = read + written.
void BM_apply_pool(benchmark::State& state) {
  const image_data& in = image();
  const tokens::plan p = tokens::pool(tokens::grid{1, 24, 24}, 12, 12);
  const tensor_view x = in.hidden_view();
  cinch::tensor out = cinch::tensor::empty({144, in.d}, dtype::f32);
  run(state, "", nullptr, [&] {
    tokens::merge(p, x, out);
    benchmark::DoNotOptimize(out.data());
  });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * (in.n + 144) * in.d * 4);
}
BENCHMARK(BM_apply_pool)->Unit(benchmark::kMicrosecond);

}  // namespace
