// bench_kv_bounded: what decode-time eviction adds to a decode step.
//
// Workload: one layer, 8 KV heads, head_dim 128, 32 query heads (GQA 4), q8_0
// keys and values, a budget of 4096 tokens per head, one thread. Each step
// appends one token to every head (evicting when a head passes budget + slack)
// and attends one query; the baseline `attention` is kv::decode_attention alone
// over a cache holding 4096 tokens, the step an engine takes anyway.
//
// Counters:
//   overhead  (step time - attention time) / attention time, both measured in
//             this process (attention runs first)
//
//   bench_kv_bounded --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench_common.hpp"
#include "cinch/cinch.hpp"
#include "cinch/kv/attention.hpp"
#include "cinch/kv/bounded.hpp"

namespace {

using namespace cinch::kv;

constexpr int kv_heads = 8, query_heads = 32, head_dim = 128;
constexpr std::int64_t budget = 4096;
const format stored{scheme::q8_0};

using cinch_bench::normal_values;

// 256 distinct decode tokens, reused in turn, and one query.
const std::vector<float>& tokens() {
  static const std::vector<float> x = normal_values(std::size_t(256 * kv_heads * head_dim), 1);
  return x;
}
const std::vector<float>& query() {
  static const std::vector<float> q = normal_values(std::size_t(query_heads * head_dim), 2);
  return q;
}

double& attention_seconds() {
  static double s = 0;
  return s;
}

template <class Step>
double timed(benchmark::State& state, Step&& step) {
  for (int i = 0; i < 8; ++i) step(i);
  const double start = cinch_bench::seconds_now(1);
  std::int64_t i = 0;
  for (auto _ : state) step(i++);
  return (cinch_bench::seconds_now(1) - start) / double(state.iterations());
}

void bench_attention(benchmark::State& state) {
  cinch::set_threads(1);
  cache c({1, kv_heads, head_dim, stored, stored});
  const std::vector<float> prefill = normal_values(std::size_t(kv_heads * budget * head_dim), 3);
  const cinch::tensor_view kv(prefill.data(), cinch::dtype::f32, {kv_heads, budget, head_dim});
  c.append(0, kv, kv);
  std::vector<float> out(query().size());
  const cinch::tensor_view q(query().data(), cinch::dtype::f32, {query_heads, head_dim});
  const cinch::tensor_view o(out.data(), cinch::dtype::f32, {query_heads, head_dim});
  attention_seconds() = timed(state, [&](std::int64_t) { decode_attention(c, 0, q, o); });
  cinch::set_threads(cinch_bench::all_threads());
}

void bench_step(benchmark::State& state, decode_policy policy) {
  cinch::set_threads(1);
  bounded_options options{policy, budget, policy == decode_policy::streaming ? 4 : 0, -1, state.range(0)};
  bounded_cache b({1, kv_heads, head_dim, stored, stored}, options);
  std::vector<float> out(query().size());
  const cinch::tensor_view q(query().data(), cinch::dtype::f32, {query_heads, head_dim});
  const cinch::tensor_view o(out.data(), cinch::dtype::f32, {query_heads, head_dim});
  const auto step = [&](std::int64_t i) {
    const cinch::tensor_view kv(tokens().data() + (i % 256) * kv_heads * head_dim, cinch::dtype::f32,
                                {kv_heads, head_dim});
    b.append(0, kv, kv);
    b.attend(0, q, o);
  };
  for (std::int64_t i = 0; i < budget + state.range(0); ++i) {  // fill to the budget: every step now evicts
    const cinch::tensor_view kv(tokens().data() + (i % 256) * kv_heads * head_dim, cinch::dtype::f32,
                                {kv_heads, head_dim});
    b.append(0, kv, kv);
  }
  const double mine = timed(state, step);
  if (attention_seconds() > 0) state.counters["overhead"] = (mine - attention_seconds()) / attention_seconds();
  cinch::set_threads(cinch_bench::all_threads());
}

int register_all() {
  benchmark::RegisterBenchmark("attention_4096", bench_attention)->Unit(benchmark::kMicrosecond);
  for (auto [name, policy] : {std::pair{"streaming", decode_policy::streaming}, std::pair{"h2o", decode_policy::h2o},
                              std::pair{"tova", decode_policy::tova}, std::pair{"knorm", decode_policy::knorm}})
    benchmark::RegisterBenchmark(name, bench_step, policy)->Arg(0)->Arg(64)->Unit(benchmark::kMicrosecond);
  return 0;
}
const int registered = register_all();

}  // namespace
