// bench_kv_attention: one decode step of attention over a compressed KV cache.
//
// Workload: one layer, 8 KV heads of 32768 tokens, head_dim 128, 32 query heads
// (GQA 4), keys N(0, 1) times a per-channel scale in [0.25, 4] (keys have outlier
// channels), values N(0, 1); the same tokens in every format. Each format runs
// kv::decode_attention with 1 thread and with every hardware thread
// (cinch::set_threads; a workspace lets split-K use them all).
//
// Counters:
//   tokens/s  cache tokens attended per second (32768 per call, all 8 heads)
//   vs_f32    speed relative to the f32 cache in this process, same thread
//             count: mean f32 call time / mean call time of this format, both
//             over their timed loops (f32 runs first)
//   bytes/tok cache bytes per token (keys + values, all heads, scales included)
// f32_plain is the textbook two-pass softmax over fp32 K/V arrays in plain loops,
// one thread (whatever the compiler vectorizes without -march): a floor, not the baseline;
// the baseline for vs_f32 is the vectorized f32 cache path of cinch itself.
//
//   bench_kv_attention --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "bench_common.hpp"
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/kv/attention.hpp"

namespace {

using namespace cinch::kv;

constexpr int kv_heads = 8, query_heads = 32, head_dim = 128;
constexpr std::int64_t tokens = 32768;

using cinch_bench::all_threads;
using cinch_bench::seconds_now;

// Keys [kv_heads, tokens, head_dim] and values, generated once.
const std::vector<float>& keys() {
  static const std::vector<float> k = [] {
    std::vector<float> x(std::size_t(kv_heads * tokens * head_dim));
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (0.25f + 3.75f * float((i * 37) % head_dim) / head_dim);
    return x;
  }();
  return k;
}

const std::vector<float>& values() {
  static const std::vector<float> v = [] {
    std::vector<float> x(std::size_t(kv_heads * tokens * head_dim));
    std::mt19937 rng(2);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& e : x) e = normal(rng);
    return x;
  }();
  return v;
}

const std::vector<float>& queries() {
  static const std::vector<float> q = [] {
    std::vector<float> x(std::size_t(query_heads * head_dim));
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    for (float& e : x) e = normal(rng);
    return x;
  }();
  return q;
}

struct named_format {
  const char* name;
  format keys, values;
};

const std::vector<named_format>& formats() {
  static const std::vector<named_format> list = {
      {"f32", format{scheme::f32}, format{scheme::f32}},
      {"f16", format{scheme::f16}, format{scheme::f16}},
      {"bf16", format{scheme::bf16}, format{scheme::bf16}},
      {"fp8_e4m3", format{scheme::fp8_e4m3}, format{scheme::fp8_e4m3}},
      {"int8", format{scheme::int8}, format{scheme::int8}},
      {"q8_0", format{scheme::q8_0}, format{scheme::q8_0}},
      {"q4_0", format{scheme::q4_0}, format{scheme::q4_0}},
      {"q4_1", format{scheme::q4_1}, format{scheme::q4_1}},
      {"kivi4", format::kivi(4), format::kivi(4)},
      {"kivi2", format::kivi(2), format::kivi(2)},
  };
  return list;
}

// The cache of one format, filled once (one prefill chunk for every head).
const cache& cache_of(const named_format& f) {
  static std::map<std::string, std::unique_ptr<cache>> caches;
  auto& c = caches[f.name];
  if (!c) {
    c = std::make_unique<cache>(cache_config{1, kv_heads, head_dim, f.keys, f.values});
    const cinch::tensor_view k(keys().data(), cinch::dtype::f32, {kv_heads, tokens, head_dim});
    const cinch::tensor_view v(values().data(), cinch::dtype::f32, {kv_heads, tokens, head_dim});
    c->append(0, k, v);
  }
  return *c;
}

struct runner {
  const cache& c;
  attention_workspace ws{query_heads, head_dim};
  std::vector<float> out = std::vector<float>(std::size_t(query_heads * head_dim));
  void operator()() {
    decode_attention(c, 0, cinch::tensor_view(queries().data(), cinch::dtype::f32, {query_heads, head_dim}),
                     cinch::tensor_view(out.data(), cinch::dtype::f32, {query_heads, head_dim}), ws);
  }
};

// Mean seconds per call of every (benchmark, threads) run so far.
std::map<std::pair<std::string, int>, double>& measured() {
  static std::map<std::pair<std::string, int>, double> m;
  return m;
}

// Warm-up, then the timed loop; records the mean call time and sets the counters.
template <class Call>
void run_loop(benchmark::State& state, const std::string& name, int threads, double bytes_per_token, Call&& call) {
  for (int i = 0; i < 3; ++i) call();
  const double start = seconds_now(threads);
  for (auto _ : state) call();
  const double mine = (seconds_now(threads) - start) / double(state.iterations());
  measured()[{name, threads}] = mine;
  const auto f32 = measured().find({"f32", threads});
  state.counters["tokens/s"] = benchmark::Counter(double(tokens) * double(state.iterations()), benchmark::Counter::kIsRate);
  if (f32 != measured().end()) state.counters["vs_f32"] = f32->second / mine;
  state.counters["bytes/tok"] = bytes_per_token;
}

void bench_format(benchmark::State& state, const named_format* f) {
  const int threads = int(state.range(0));
  cinch::set_threads(threads);
  runner r{cache_of(*f)};
  run_loop(state, f->name, threads, double(r.c.bytes()) / double(tokens), r);
  cinch::set_threads(all_threads());
}

// Textbook fp32 attention: scores, max, exp, sum, weighted values, plain loops.
void plain_attention(const float* q, const float* k, const float* v, float* out, std::vector<float>& scores) {
  const int group = query_heads / kv_heads;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  for (int h = 0; h < query_heads; ++h) {
    const float* kh = k + std::int64_t(h / group) * tokens * head_dim;
    const float* vh = v + std::int64_t(h / group) * tokens * head_dim;
    float* s = scores.data() + std::int64_t(h) * tokens;
    float m = -INFINITY;
    for (std::int64_t t = 0; t < tokens; ++t) {
      float dot = 0;
      for (int i = 0; i < head_dim; ++i) dot += q[h * head_dim + i] * kh[t * head_dim + i];
      s[t] = dot * scale;
      m = std::max(m, s[t]);
    }
    float sum = 0;
    float* o = out + h * head_dim;
    std::fill(o, o + head_dim, 0.0f);
    for (std::int64_t t = 0; t < tokens; ++t) {
      const float p = std::exp(s[t] - m);
      sum += p;
      for (int i = 0; i < head_dim; ++i) o[i] += p * vh[t * head_dim + i];
    }
    for (int i = 0; i < head_dim; ++i) o[i] /= sum;
  }
}

void bench_plain(benchmark::State& state) {
  std::vector<float> scores(std::size_t(query_heads * tokens)), out(std::size_t(query_heads * head_dim));
  run_loop(state, "f32_plain", 1, 2.0 * kv_heads * head_dim * 4,
           [&] { plain_attention(queries().data(), keys().data(), values().data(), out.data(), scores); });
}

int register_all() {
  for (const int threads : {1, all_threads()}) {
    for (const named_format& f : formats()) {
      auto* b = benchmark::RegisterBenchmark(f.name, bench_format, &f)->Arg(threads)->Unit(benchmark::kMillisecond);
      if (threads > 1) b->UseRealTime();
    }
    if (threads == 1) benchmark::RegisterBenchmark("f32_plain", bench_plain)->Arg(1)->Unit(benchmark::kMillisecond);
  }
  return 0;
}

const int registered = register_all();

}  // namespace
