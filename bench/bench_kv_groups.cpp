// bench_kv_groups: KIVI group quantization and the Hadamard rotation against memcpy.
//
// Workloads (the same f32 bytes for every kernel):
//   values per token:  x [4096 tokens, 4096 channels], groups of 32 channels -> int4 / int2
//   keys per channel:  x [4096 tokens, 4096 channels], groups of 32 tokens   -> int4 / int2
//   dequantization of both int4 layouts back to f32
//   hadamard:          4096 rows x 128 (a decode-sized head dimension), in place
// Every benchmark reports in_bytes/s (bytes of f32 input per second, for dequantization
// the f32 output) and vs_memcpy = that rate / the rate of std::memcpy of the same number
// of bytes, measured in this process with the same thread count (best of 20). Runs use
// one thread and std::thread::hardware_concurrency() threads (cinch::set_threads);
// one-thread runs are timed in thread CPU time, the others in wall time. The `ref`
// runs force the scalar reference, for what the SIMD kernels buy.
//
//   bench_kv_groups --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/kv/groups.hpp"
#include "cinch/kv/hadamard.hpp"

#include "bench_common.hpp"

namespace {

using cinch_bench::seconds_now;
using cinch_bench::workload;

using cinch::dtype;
using cinch::tensor;

constexpr std::int64_t tokens = 4096, channels = 4096, group = 32;
constexpr std::int64_t head_rows = 4096, head_dim = 128;

// Activations (cinch_bench::activation) with per-channel scales in [0.25, 4), as
// KV activations have.
tensor make_input(std::int64_t rows, std::int64_t cols) {
  tensor x = tensor::empty({rows, cols}, dtype::f32);
  float* p = x.data<float>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      p[r * cols + c] = cinch_bench::activation(std::uint64_t(r * cols + c)) * 0.25f *
                        float(1 + cinch_bench::mix(std::uint64_t(c) ^ 0xC1A5ull) % 15);
  return x;
}

const tensor& kv_input() {
  static const tensor x = make_input(tokens, channels);
  return x;
}

// ------------------------------------------------------------------ timing

// A workload's bytes are the f32 bytes one call processes.

// Best rate (bytes/s) of `repeats` calls after three untimed ones.
double best_rate(int threads, const workload& w, int repeats) {
  for (int i = 0; i < 3; ++i) w.call();
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    const double t0 = seconds_now(threads);
    w.call();
    benchmark::ClobberMemory();
    best = std::max(best, double(w.bytes) / (seconds_now(threads) - t0));
  }
  return best;
}

workload memcpy_workload(std::int64_t bytes, int threads) {
  workload w;
  w.bytes = bytes;
  tensor src = tensor::empty({bytes}, dtype::u8), dst = tensor::empty({bytes}, dtype::u8);
  std::memcpy(src.data(), kv_input().data(), std::size_t(std::min(bytes, kv_input().nbytes())));
  w.call = [s = src.data(), d = dst.data(), bytes, threads] {
    cinch_bench::parallel_memcpy(d, s, std::size_t(bytes), threads);
    benchmark::DoNotOptimize(d);
  };
  w.keep = {std::move(src), std::move(dst)};
  return w;
}

// memcpy rate of `bytes` bytes with `threads` threads, measured once per pair.
double memcpy_rate(std::int64_t bytes, int threads) {
  static std::map<std::pair<std::int64_t, int>, double> rates;
  const auto key = std::make_pair(bytes, threads);
  auto it = rates.find(key);
  if (it == rates.end()) it = rates.emplace(key, best_rate(threads, memcpy_workload(bytes, threads), 20)).first;
  return it->second;
}

// ------------------------------------------------------------------ workloads

dtype codes_type(int bits) { return bits == 4 ? dtype::u4x2 : dtype::u2x4; }

workload per_token_quantize(int bits) {
  workload w;
  const tensor& x = kv_input();
  tensor codes = tensor::empty({tokens, channels}, codes_type(bits));
  tensor scales = tensor::empty({tokens, channels / group}, dtype::f16), mins = tensor::empty({tokens, channels / group}, dtype::f16);
  w.bytes = x.nbytes();
  w.call = [x = x.view(), c = codes.view(), s = scales.view(), m = mins.view()] {
    cinch::kv::quantize_per_token(x, c, s, m, group);
    benchmark::DoNotOptimize(c.data());
  };
  w.keep = {std::move(codes), std::move(scales), std::move(mins)};
  return w;
}

workload per_channel_quantize(int bits) {
  workload w;
  const tensor& x = kv_input();
  tensor codes = tensor::empty({tokens / group, channels, group}, codes_type(bits));
  tensor scales = tensor::empty({tokens / group, channels}, dtype::f16), mins = tensor::empty({tokens / group, channels}, dtype::f16);
  w.bytes = x.nbytes();
  w.call = [x = x.view(), c = codes.view(), s = scales.view(), m = mins.view()] {
    cinch::kv::quantize_per_channel(x, c, s, m, group);
    benchmark::DoNotOptimize(c.data());
  };
  w.keep = {std::move(codes), std::move(scales), std::move(mins)};
  return w;
}

workload per_token_dequantize() {
  workload w = per_token_quantize(4);
  w.call();
  tensor y = tensor::empty({tokens, channels}, dtype::f32);
  w.call = [c = w.keep[0].view(), s = w.keep[1].view(), m = w.keep[2].view(), y = y.view()] {
    cinch::kv::dequantize_per_token(c, s, m, y, group);
    benchmark::DoNotOptimize(y.data());
  };
  w.keep.push_back(std::move(y));
  return w;
}

workload per_channel_dequantize() {
  workload w = per_channel_quantize(4);
  w.call();
  tensor y = tensor::empty({tokens, channels}, dtype::f32);
  w.call = [c = w.keep[0].view(), s = w.keep[1].view(), m = w.keep[2].view(), y = y.view()] {
    cinch::kv::dequantize_per_channel(c, s, m, y, group);
    benchmark::DoNotOptimize(y.data());
  };
  w.keep.push_back(std::move(y));
  return w;
}

workload hadamard_rows() {
  workload w;
  tensor x = make_input(head_rows, head_dim);
  w.bytes = x.nbytes();
  w.call = [x = x.view()] {
    cinch::kv::hadamard(x);
    benchmark::DoNotOptimize(x.data());
  };
  w.keep = {std::move(x)};
  return w;
}

// ------------------------------------------------------------------ registration

void run(benchmark::State& state, int threads, bool reference, const std::function<workload()>& make) {
  const int previous = cinch::threads();
  cinch::set_threads(threads);
  cinch::force_backend(reference ? std::optional(cinch::backend_kind::ref) : std::nullopt);
  const workload w = make();
  const double baseline = memcpy_rate(w.bytes, threads);
  for (int i = 0; i < 3; ++i) w.call();  // warm-up
  const double t0 = seconds_now(threads);
  for (auto _ : state) {
    w.call();
    benchmark::ClobberMemory();
  }
  const double rate = double(w.bytes) * double(state.iterations()) / (seconds_now(threads) - t0);
  state.SetBytesProcessed(w.bytes * std::int64_t(state.iterations()));
  state.SetLabel(reference ? std::string("ref") : cinch::cpu_target());
  state.counters["in_GBps"] = benchmark::Counter(rate * 1e-9);
  state.counters["vs_memcpy"] = benchmark::Counter(rate / baseline);
  cinch::force_backend(std::nullopt);
  cinch::set_threads(previous);
}

void add(const std::string& name, int threads, bool reference, std::function<workload()> make) {
  cinch_bench::add_run(name, threads, reference, [threads, reference, make = std::move(make)](benchmark::State& state) {
    run(state, threads, reference, make);
  });
}

void register_all() {
  const std::vector<int> thread_counts = cinch_bench::thread_counts();
  for (const int t : thread_counts) {
    add("BM_memcpy/64MiB", t, false, [t] { return memcpy_workload(tokens * channels * 4, t); });
    for (const int bits : {4, 2}) {
      const std::string suffix = "/int" + std::to_string(bits);
      add("BM_quantize_per_token" + suffix, t, false, [bits] { return per_token_quantize(bits); });
      add("BM_quantize_per_channel" + suffix, t, false, [bits] { return per_channel_quantize(bits); });
    }
    add("BM_dequantize_per_token/int4", t, false, per_token_dequantize);
    add("BM_dequantize_per_channel/int4", t, false, per_channel_dequantize);
    add("BM_hadamard/4096x128", t, false, hadamard_rows);
  }
  add("BM_quantize_per_token/int4", 1, true, [] { return per_token_quantize(4); });
  add("BM_quantize_per_channel/int4", 1, true, [] { return per_channel_quantize(4); });
  add("BM_hadamard/4096x128", 1, true, hadamard_rows);
}

}  // namespace

int main(int argc, char** argv) {
  return cinch_bench::run_main(argc, argv,
                               "f32 4096 x 4096 (64 MiB) KV rows, G = 32; hadamard 4096 x 128; "
                               "in_GBps = f32 input bytes per second",
                               register_all);
}
