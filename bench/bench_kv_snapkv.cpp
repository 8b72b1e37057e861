// bench_kv_snapkv: one-shot prefill eviction of a whole layer with SnapKV, the
// pipeline an engine runs after the prompt: score (the window's attention rows
// from the packed keys, pooled), select (per-head top-k) and compact
// (kv::cache::retain moves the kept records).
//
// Workload: one layer of 32 KV heads x 32768 tokens x head_dim 128 in f16 (a
// 512 MiB cache), 32 query heads, a 64-query window, keep 1/4 (8192 per head).
// Each iteration starts from a fresh copy of the filled cache (not timed).
//
// Counters:
//   score_ms, select_ms, compact_ms  the three stages
//   vs_memcpy  the time of one memcpy of the layer's bytes (best of 3, in this
//              process) / the pipeline's time: 1 means the whole eviction costs
//              as much as copying the layer once.
//
//   bench_kv_snapkv --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "bench_common.hpp"
#include "cinch/cinch.hpp"
#include "cinch/kv/cache.hpp"
#include "cinch/kv/score.hpp"
#include "cinch/kv/select.hpp"

namespace {

using namespace cinch::kv;

constexpr int heads = 32, head_dim = 128, window = 64;
constexpr std::int64_t tokens = 32768;

using cinch_bench::normal_values;

const cache& filled() {
  static const cache c = [] {
    cache out({1, heads, head_dim, format{scheme::f16}, format{scheme::f16}});
    for (int h = 0; h < heads; ++h) {  // a head at a time: 16 MiB of f32 input, not 1 GiB
      const std::vector<float> k = normal_values(std::size_t(tokens * head_dim), unsigned(h));
      const cinch::tensor_view kv(k.data(), cinch::dtype::f32, {tokens, head_dim});
      out.append(0, h, kv, kv);
    }
    return out;
  }();
  return c;
}

const std::vector<float>& queries() {
  static const std::vector<float> q = normal_values(std::size_t(heads * window * head_dim), 99);
  return q;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double memcpy_seconds() {
  static const double best = [] {
    const auto bytes = std::size_t(filled().bytes());
    std::vector<char> a(bytes, 1), b(bytes, 2);
    double t = 1e30;
    for (int i = 0; i < 3; ++i) {
      const double start = now();
      std::memcpy(b.data(), a.data(), bytes);
      benchmark::DoNotOptimize(b.data());
      t = std::min(t, now() - start);
    }
    return t;
  }();
  return best;
}

void bench_snapkv(benchmark::State& state) {
  const int threads = int(state.range(0));
  cinch::set_threads(threads);
  const cinch::tensor_view q(queries().data(), cinch::dtype::f32, {heads, window, head_dim});
  const double copy = memcpy_seconds();
  double total = 0, scoring = 0, selecting = 0;
  for (auto _ : state) {
    cache c = filled();  // untimed: a fresh cache to evict from
    const double start = now();
    const std::vector<head_scores> scores = snapkv_scores(c, 0, q);
    const double scored = now();
    const std::vector<keep_list> keep = select_top_k(scores, budget::ratio(0.25));
    const double selected = now();
    for (int h = 0; h < heads; ++h) c.retain(0, h, keep[std::size_t(h)]);
    const double took = now() - start;
    state.SetIterationTime(took);
    total += took;
    scoring += scored - start;
    selecting += selected - scored;
    benchmark::DoNotOptimize(c.bytes());
  }
  const double n = double(state.iterations());
  state.counters["vs_memcpy"] = copy / (total / n);
  state.counters["score_ms"] = 1e3 * scoring / n;
  state.counters["select_ms"] = 1e3 * selecting / n;
  state.counters["compact_ms"] = 1e3 * (total - scoring - selecting) / n;
  state.counters["layer_MiB"] = double(filled().bytes()) / (1 << 20);
  cinch::set_threads(cinch_bench::all_threads());
}

const int registered = [] {
  for (int threads : {1, cinch_bench::all_threads()})
    benchmark::RegisterBenchmark("snapkv_score_select_compact", bench_snapkv)
        ->Arg(threads)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  return 0;
}();

}  // namespace
