// bench_kv_evict: kv::top_k and the eviction selectors against the standard library.
//
// Workload: 32 rows (KV heads) x 32768 scores, k = 1024 kept per row (a 1/32 keep
// ratio), scores shaped like attention mass: exp(2 N(0, 1)), so a few tokens stand
// out, plus exact ties (one score in 64 repeats its neighbour). The same floats for
// every benchmark.
//
// Baselines, on the same data in this binary and producing the same indices (checked
// once before timing): per row, std::iota indices then
//   partial_sort: std::partial_sort of the best k, then std::sort of those k by index;
//   nth_element:  std::nth_element at k, then std::sort of the first k by index;
// both with the ranking of kv::top_k (higher score first, ties to the lower index).
// Every kv benchmark reports vs_partial_sort and vs_nth_element = the baseline's time
// for the same work / this benchmark's time (best of 5 baseline runs, one thread,
// thread CPU time), so > 1 means faster than the baseline. Runs use one thread and
// std::thread::hardware_concurrency() threads (wall time); `ref` forces the scalar
// reference.
//
//   bench_kv_evict --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/kv/select.hpp"

#include "bench_common.hpp"

namespace {

using cinch_bench::all_threads;
using cinch_bench::seconds_now;

constexpr std::int64_t rows = 32, n = 32768, k = 1024;

const std::vector<float>& scores() {
  static const std::vector<float> x = [] {
    std::vector<float> v(std::size_t(rows * n));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::uint64_t h = cinch_bench::mix(i);
      v[i] = (i % n != 0 && (cinch_bench::mix(h) & 63) == 0) ? v[i - 1]
                                                              : std::exp(2.0f * cinch_bench::normal_of_bits(h));
    }
    return v;
  }();
  return x;
}

std::vector<cinch::kv::head_scores> heads() {
  std::vector<cinch::kv::head_scores> out;
  for (std::int64_t r = 0; r < rows; ++r) out.emplace_back(scores().begin() + r * n, scores().begin() + (r + 1) * n);
  return out;
}

// ------------------------------------------------------------------ baselines

enum class baseline { partial_sort, nth_element };

void baseline_top_k(baseline how, std::vector<std::int32_t>& idx, std::int32_t* out) {
  const float* all = scores().data();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* x = all + r * n;
    const auto better = [x](std::int32_t a, std::int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
    std::iota(idx.begin(), idx.end(), 0);
    if (how == baseline::partial_sort) std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
    else std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
    std::sort(idx.begin(), idx.begin() + k);
    std::copy(idx.begin(), idx.begin() + k, out + r * k);
  }
}

// Seconds per call of a baseline, best of 5, and a check that it agrees with kv::top_k.
double baseline_seconds(baseline how) {
  static double cached[2] = {0, 0};
  double& best = cached[int(how)];
  if (best > 0) return best;
  std::vector<std::int32_t> idx(n), got(rows * k), want(rows * k);
  baseline_top_k(how, idx, got.data());
  cinch::kv::top_k(cinch::tensor_view(scores().data(), cinch::dtype::f32, {rows, n}), k,
                   cinch::tensor_view(want.data(), cinch::dtype::i32, {rows, k}));
  if (got != want) throw std::runtime_error("baseline and kv::top_k disagree");
  best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const double t0 = seconds_now(1);
    baseline_top_k(how, idx, got.data());
    benchmark::DoNotOptimize(got.data());
    best = std::min(best, seconds_now(1) - t0);
  }
  return best;
}

// ------------------------------------------------------------------ runs

void run(benchmark::State& state, int threads, bool reference, const std::function<void()>& call) {
  const int previous = cinch::threads();
  const double partial = baseline_seconds(baseline::partial_sort), nth = baseline_seconds(baseline::nth_element);
  cinch::set_threads(threads);
  cinch::force_backend(reference ? std::optional(cinch::backend_kind::ref) : std::nullopt);
  for (int i = 0; i < 2; ++i) call();  // warm-up
  const double t0 = seconds_now(threads);
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  const double per_call = (seconds_now(threads) - t0) / double(state.iterations());
  state.SetItemsProcessed(rows * n * std::int64_t(state.iterations()));
  state.SetLabel(reference ? std::string("ref") : cinch::cpu_target());
  state.counters["vs_partial_sort"] = benchmark::Counter(partial / per_call);
  state.counters["vs_nth_element"] = benchmark::Counter(nth / per_call);
  cinch::force_backend(std::nullopt);
  cinch::set_threads(previous);
}

void add(const std::string& name, int threads, bool reference, std::function<void()> call) {
  cinch_bench::add_run(name, threads, reference, [threads, reference, call = std::move(call)](benchmark::State& state) {
    run(state, threads, reference, call);
  });
}

void register_all() {
  static std::vector<std::int32_t> out(rows * k), idx(n);
  static const std::vector<cinch::kv::head_scores> all_heads = heads();
  const auto top_k = [] {
    cinch::kv::top_k(cinch::tensor_view(scores().data(), cinch::dtype::f32, {rows, n}), k,
                     cinch::tensor_view(out.data(), cinch::dtype::i32, {rows, k}));
    benchmark::DoNotOptimize(out.data());
  };
  const auto select = [] { benchmark::DoNotOptimize(cinch::kv::select_top_k(all_heads, cinch::kv::budget::tokens(k))); };
  const auto global = [] {
    benchmark::DoNotOptimize(cinch::kv::select_global(all_heads, cinch::kv::budget::tokens(rows * k)));
  };
  const auto chunks = [] {
    benchmark::DoNotOptimize(cinch::kv::select_chunks(all_heads, cinch::kv::budget::ratio(1.0 / 32)));
  };
  add("BM_std_partial_sort", 1, false, [] { baseline_top_k(baseline::partial_sort, idx, out.data()); });
  add("BM_std_nth_element", 1, false, [] { baseline_top_k(baseline::nth_element, idx, out.data()); });
  add("BM_top_k", 1, false, top_k);
  add("BM_top_k", 1, true, top_k);
  if (all_threads() > 1) add("BM_top_k", all_threads(), false, top_k);
  add("BM_select_top_k", 1, false, select);
  add("BM_select_global", 1, false, global);
  add("BM_select_chunks", 1, false, chunks);
}

}  // namespace

int main(int argc, char** argv) {
  return cinch_bench::run_main(argc, argv,
                               "32 rows x 32768 f32 scores, k = 1024 per row (AdaKV: 32768 in all; "
                               "ChunkKV: chunks of 20, ratio 1/32); items = scores",
                               register_all);
}
