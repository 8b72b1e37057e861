// bench_lowrank: truncated SVD and the factorized linear layer, each beside its
// baseline in this binary.
//
// SVD. An n x n f32 matrix with the slowly decaying spectrum sigma_i = (1 + i)^-0.3
// (an LLM weight's is similar): diag(sigma) between two products of 8 random
// Householder reflections, so it is dense. A Gaussian sketch is rotation invariant,
// so the randomized method sees the same problem as with any other singular
// vectors. Rank 256. Benchmarks:
//   randomized_svd/n/threads/q/bits  lowrank::truncated_svd randomized, p = 10, q power
//                              iterations (4, the default; 2 and 3 too at n = 4096, one thread),
//                              range finder in int16 (bits 16, the default) or f32 (bits 32,
//                              the baseline; at n = 4096, one thread)
//   exact_svd/n/threads        lowrank::truncated_svd exact (BDCSVD in double)
//   eigen_bdcsvd/n             Eigen::BDCSVD<MatrixXf> with thin U and V, the baseline
// Counters: excess_pct = 100 (||W - U S V^T||_F / optimum - 1), computed once
// outside the timing, against the Eckart-Young optimum sqrt(sum_{i >= k} sigma_i^2).
// n = 4096 for the exact methods runs only with CINCH_BENCH_FULL=1 (about a
// minute for Eigen, several for the double-precision exact SVD); n = 1024 always.
//
// Apply. A 4096 x 4096 layer at keep ratio 0.25 (rank 512), 1 and 64 tokens:
//   apply_fused/tokens/threads      lowrank::apply, rank tiles of 256 (the default)
//   apply_two_gemm/tokens/threads   lowrank::apply with rank_tile 0 (full intermediate)
//   apply_dense/tokens/threads      lowrank::apply_dense with W = A B, the baseline
//   eigen_dense/tokens              Eigen y = x W^T (one thread)
// Counters: intermediate_bytes (the B x buffer at its largest: tile x token chunk on
// the stack, or tokens x r), weight_bytes (factors or dense W), and vs_dense =
// (best dense time) / (this benchmark's best time per call), both measured in this
// process (thread CPU time with one thread, wall time with more).
//
//   bench_lowrank --benchmark_min_time=0.2
//   CINCH_BENCH_FULL=1 bench_lowrank --benchmark_filter=svd
#include <benchmark/benchmark.h>

#include "bench_common.hpp"

#include <Eigen/Dense>
#include <Eigen/SVD>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <time.h>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/lowrank/apply.hpp"
#include "cinch/lowrank/rank.hpp"
#include "cinch/lowrank/svd.hpp"

namespace {

constexpr std::int64_t svd_rank = 256;
constexpr std::int64_t layer = 4096;
constexpr std::int64_t rank_tile = 256;

bool full_run() {
  const char* env = std::getenv("CINCH_BENCH_FULL");
  return env && *env && *env != '0';
}

using cinch_bench::all_threads;
using cinch_bench::seconds_now;

class scoped_threads {
 public:
  explicit scoped_threads(int count) : previous_(cinch::threads()) { cinch::set_threads(count); }
  ~scoped_threads() { cinch::set_threads(previous_); }
  scoped_threads(const scoped_threads&) = delete;
  scoped_threads& operator=(const scoped_threads&) = delete;

 private:
  int previous_;
};

// ------------------------------------------------------------------ SVD input

std::vector<double> spectrum(std::int64_t n) {
  std::vector<double> s(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = std::pow(1.0 + double(i), -0.3);
  return s;
}

// In-place product with 8 random reflections I - 2 v v^T from the left (rows of
// the row-major n x n matrix) or the right.
void reflect(std::vector<float>& w, std::int64_t n, bool left, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<std::size_t>(n)), p(static_cast<std::size_t>(n));
  for (int r = 0; r < 8; ++r) {
    double norm = 0;
    for (double& x : v) {
      x = normal(rng);
      norm += x * x;
    }
    for (double& x : v) x /= std::sqrt(norm);
    std::fill(p.begin(), p.end(), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        p[std::size_t(left ? j : i)] += v[std::size_t(left ? i : j)] * w[std::size_t(i * n + j)];
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        w[std::size_t(i * n + j)] -= float(2.0 * (left ? v[std::size_t(i)] * p[std::size_t(j)]
                                                       : p[std::size_t(i)] * v[std::size_t(j)]));
  }
}

const std::vector<float>& svd_input(std::int64_t n) {
  static std::map<std::int64_t, std::vector<float>> cache;
  auto it = cache.find(n);
  if (it == cache.end()) {
    std::vector<float> w(static_cast<std::size_t>(n * n), 0.0f);
    const std::vector<double> s = spectrum(n);
    for (std::int64_t i = 0; i < n; ++i) w[std::size_t(i * n + i)] = float(s[std::size_t(i)]);
    reflect(w, n, true, 1);
    reflect(w, n, false, 2);
    it = cache.emplace(n, std::move(w)).first;
  }
  return it->second;
}

cinch::tensor_view svd_view(std::int64_t n) { return {svd_input(n).data(), cinch::dtype::f32, {n, n}}; }

double optimum(std::int64_t n) {
  const std::vector<double> s = spectrum(n);
  double tail = 0;
  for (std::size_t i = svd_rank; i < s.size(); ++i) tail += s[i] * s[i];
  return std::sqrt(tail);
}

// 100 (||W - U S V^T||_F / optimum - 1).
double excess_pct(const cinch::lowrank::svd_result& r, std::int64_t n) {
  cinch::tensor us = cinch::tensor::empty({n, svd_rank}, cinch::dtype::f32);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < svd_rank; ++j)
      us.data<float>()[i * svd_rank + j] = r.u.data<float>()[i * svd_rank + j] * float(r.sigma[std::size_t(j)]);
  const cinch::tensor approx = cinch::lowrank::reconstruct(us, r.vt);
  const std::vector<float>& w = svd_input(n);
  double e = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double d = double(w[i]) - approx.data<float>()[i];
    e += d * d;
  }
  return 100.0 * (std::sqrt(e) / optimum(n) - 1.0);
}

void run_svd(benchmark::State& state, cinch::lowrank::svd_method method) {
  const std::int64_t n = state.range(0);
  const scoped_threads threads(int(state.range(1)));
  const int q = state.range(2) > 0 ? int(state.range(2)) : cinch::lowrank::svd_options{}.power_iterations;
  const auto precision = state.range(3) == 32 ? cinch::lowrank::svd_precision::f32 : cinch::lowrank::svd_precision::int16;
  const cinch::tensor_view w = svd_view(n);  // made before the timing starts
  cinch::lowrank::svd_result last;
  for (auto _ : state) {
    last = cinch::lowrank::truncated_svd(w, svd_rank, {.method = method, .power_iterations = q,
                                                       .power_precision = precision});
    benchmark::DoNotOptimize(last.sigma.data());
  }
  state.counters["excess_pct"] = excess_pct(last, n);
}

void randomized_svd(benchmark::State& state) { run_svd(state, cinch::lowrank::svd_method::randomized); }
void exact_svd(benchmark::State& state) { run_svd(state, cinch::lowrank::svd_method::exact); }

void eigen_bdcsvd(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Eigen::MatrixXf w = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      svd_input(n).data(), n, n);
  for (auto _ : state) {
    Eigen::BDCSVD<Eigen::MatrixXf> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
    benchmark::DoNotOptimize(svd.singularValues().data());
  }
}

// ------------------------------------------------------------------ apply input

struct layer_data {
  std::int64_t r = cinch::lowrank::rank_for(layer, layer, cinch::lowrank::keep_ratio{0.25});
  cinch::tensor a, b, w, x, y;
  layer_data() {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    a = cinch::tensor::empty({layer, r}, cinch::dtype::f32);
    b = cinch::tensor::empty({r, layer}, cinch::dtype::f32);
    x = cinch::tensor::empty({64, layer}, cinch::dtype::f32);
    y = cinch::tensor::empty({64, layer}, cinch::dtype::f32);
    for (cinch::tensor* t : {&a, &b, &x})
      for (std::int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = normal(rng);
    w = cinch::lowrank::reconstruct(a, b);
  }
  cinch::tensor_view tokens_of(const cinch::tensor& t, std::int64_t tokens) const { return t.view().slice(0, 0, tokens); }
};

const layer_data& data() {
  static const layer_data d;
  return d;
}

enum class form { fused, two_gemm, dense };

void run_form(form f, std::int64_t tokens) {
  const layer_data& d = data();
  const cinch::tensor_view x = d.tokens_of(d.x, tokens), y = d.tokens_of(d.y, tokens);
  if (f == form::dense)
    cinch::lowrank::apply_dense(d.w, x, y);
  else
    cinch::lowrank::apply(d.a, d.b, x, y, {.rank_tile = f == form::fused ? rank_tile : 0});
}

// Best seconds per dense call of `tokens` on `threads`, measured once per process.
double dense_seconds(std::int64_t tokens, int threads) {
  static std::map<std::pair<std::int64_t, int>, double> cache;
  auto it = cache.find({tokens, threads});
  if (it == cache.end()) {
    const scoped_threads scope(threads);
    double best = 1e30;
    for (int i = 0; i < 12; ++i) {
      const double start = seconds_now(threads);
      run_form(form::dense, tokens);
      best = std::min(best, seconds_now(threads) - start);
    }
    it = cache.emplace(std::make_pair(tokens, threads), best).first;
  }
  return it->second;
}

void run_apply(benchmark::State& state, form f) {
  const std::int64_t tokens = state.range(0);
  const int threads = int(state.range(1));
  const double baseline = dense_seconds(tokens, threads);
  const scoped_threads scope(threads);
  const layer_data& d = data();
  double best = 1e30;
  for (auto _ : state) {
    const double start = seconds_now(threads);
    run_form(f, tokens);
    best = std::min(best, seconds_now(threads) - start);
  }
  const std::int64_t chunk = std::max<std::int64_t>(1, 8192 / rank_tile);
  const double intermediate = f == form::fused      ? double(std::min(tokens, chunk) * rank_tile * 4)
                              : f == form::two_gemm ? double(tokens * d.r * 4)
                                                    : 0.0;
  state.counters["intermediate_bytes"] = intermediate;
  state.counters["weight_bytes"] = f == form::dense ? double(layer * layer * 4) : double(2 * layer * d.r * 4);
  state.counters["vs_dense"] = baseline / best;
}

void apply_fused(benchmark::State& state) { run_apply(state, form::fused); }
void apply_two_gemm(benchmark::State& state) { run_apply(state, form::two_gemm); }
void apply_dense(benchmark::State& state) { run_apply(state, form::dense); }

void eigen_dense(benchmark::State& state) {
  const std::int64_t tokens = state.range(0);
  using rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const layer_data& d = data();
  const Eigen::Map<const rows> w(d.w.data<float>(), layer, layer), x(d.x.data<float>(), tokens, layer);
  rows y(tokens, layer);
  for (auto _ : state) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
}

void register_all() {
  for (std::int64_t n : {std::int64_t(1024), layer}) {
    for (std::int64_t q : {2, 3, 4})
      for (std::int64_t bits : {16, 32})
        if (n == layer || (q == 4 && bits == 16))
          benchmark::RegisterBenchmark("randomized_svd", randomized_svd)
              ->Args({n, 1, q, bits})
              ->Unit(benchmark::kMillisecond);
    if (all_threads() > 1)
      benchmark::RegisterBenchmark("randomized_svd", randomized_svd)
          ->Args({n, all_threads(), 4, 16})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    if (n == layer && !full_run()) continue;
    benchmark::RegisterBenchmark("exact_svd", exact_svd)->Args({n, 1, 0, 0})->Unit(benchmark::kMillisecond)->Iterations(1);
    benchmark::RegisterBenchmark("eigen_bdcsvd", eigen_bdcsvd)->Arg(n)->Unit(benchmark::kMillisecond)->Iterations(1);
  }
  std::vector<int> thread_counts{1};
  if (all_threads() > 1) thread_counts.push_back(all_threads());
  for (std::int64_t tokens : {1, 64}) {
    for (int threads : thread_counts)
      for (auto [name, fn] : {std::pair{"apply_fused", &apply_fused}, std::pair{"apply_two_gemm", &apply_two_gemm},
                              std::pair{"apply_dense", &apply_dense}}) {
        auto* b = benchmark::RegisterBenchmark(name, fn)->Args({tokens, threads})->Unit(benchmark::kMicrosecond);
        if (threads > 1) b->UseRealTime();
      }
    benchmark::RegisterBenchmark("eigen_dense", eigen_dense)->Arg(tokens)->Unit(benchmark::kMicrosecond);
  }
}

const int registered = (register_all(), 0);

}  // namespace
