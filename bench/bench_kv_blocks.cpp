// bench_kv_blocks: ggml block formats (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl),
// kv::quantize_blocks and kv::dequantize_blocks, against memcpy.
//
// Workload: a 4096 x 4096 tensor (64 MiB as f32, 32 MiB as f16) of normal-ish
// values with per-row scales and about one outlier in 1024, as activations have;
// the same values for every kernel. Counters:
//   GBps_in    bytes of INPUT per second, 1e9-based: f32 or f16 values read by a
//              quantization, block bytes read by a dequantization
//   vs_memcpy  t(memcpy of the 64 MiB f32 tensor) / t(kernel on the same 4096 x 4096
//              values), both mean times in this process with the same thread count
//              (the BM_memcpy run of that count): 1.0 is as fast as copying the f32
//              values once. For f32 input this is also GBps_in / memcpy's GBps_in.
// Each kernel runs with one thread and with std::thread::hardware_concurrency()
// threads (cinch::set_threads); multi-threaded runs use wall time, one thread its
// CPU time. /ref runs force the scalar reference backend. Every timed loop follows
// an untimed warm-up.
//
//   bench_kv_blocks --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/kv/blocks.hpp"

#include "bench_common.hpp"

namespace {

using cinch_bench::add_run;
using cinch_bench::seconds_now;
using cinch_bench::workload;

using cinch::dtype;

constexpr std::int64_t rows = 4096;
constexpr std::int64_t cols = 4096;
constexpr std::int64_t f32_bytes = rows * cols * 4;

// ------------------------------------------------------------------ input

const cinch::tensor& input(dtype type) {
  static std::map<dtype, cinch::tensor> cache;
  auto it = cache.find(type);
  if (it != cache.end()) return it->second;
  cinch::tensor x = cinch::tensor::empty({rows, cols}, dtype::f32);
  cinch_bench::fill_activations_by_row(x.data<float>(), rows, cols);
  if (type != dtype::f32) {
    cinch::tensor t = cinch::tensor::empty({rows, cols}, type);
    cinch::convert(x, t);
    x = std::move(t);
  }
  return cache.emplace(type, std::move(x)).first->second;
}

const cinch::tensor& input_blocks(dtype format) {
  static std::map<dtype, cinch::tensor> cache;
  auto it = cache.find(format);
  if (it != cache.end()) return it->second;
  cinch::tensor b = cinch::tensor::empty({rows, cols}, format);
  cinch::kv::quantize_blocks(input(dtype::f32), b);
  return cache.emplace(format, std::move(b)).first->second;
}

// ------------------------------------------------------------------ timing

// A workload's bytes are the input bytes of one call.

// Untimed calls: up to 24, or 0.3 s, so that caches and the thread pool settle.
void warm_up(const workload& w) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 24 && std::chrono::steady_clock::now() - start < std::chrono::milliseconds(300); ++i) w.call();
}

// memcpy of the f32 tensor.
workload memcpy_workload(int threads) {
  workload w;
  w.bytes = f32_bytes;
  cinch::tensor out = cinch::tensor::empty({rows, cols}, dtype::f32);
  w.call = [src = input(dtype::f32).data(), dst = out.data(), threads] {
    cinch_bench::parallel_memcpy(dst, src, std::size_t(f32_bytes), threads);
    benchmark::DoNotOptimize(dst);
  };
  w.keep.push_back(std::move(out));
  return w;
}

// Mean seconds of one memcpy of the f32 tensor with `threads` threads, measured as
// the kernels are (the loop of run(), or 20 calls after a warm-up when the
// BM_memcpy benchmark of that thread count was filtered out).
std::map<int, double>& memcpy_seconds_by_threads() {
  static std::map<int, double> seconds;
  return seconds;
}

double memcpy_seconds(int threads) {
  auto& cache = memcpy_seconds_by_threads();
  auto it = cache.find(threads);
  if (it != cache.end()) return it->second;
  const workload w = memcpy_workload(threads);
  warm_up(w);
  const double t0 = seconds_now(threads);
  for (int i = 0; i < 20; ++i) w.call();
  return cache.emplace(threads, (seconds_now(threads) - t0) / 20).first->second;
}

workload quantize_workload(dtype from, dtype format) {
  workload w;
  const cinch::tensor& x = input(from);
  w.bytes = x.nbytes();
  cinch::tensor out = cinch::tensor::empty({rows, cols}, format);
  w.call = [x = x.view(), b = out.view()] {
    cinch::kv::quantize_blocks(x, b);
    benchmark::DoNotOptimize(b.data());
  };
  w.keep.push_back(std::move(out));
  return w;
}

workload dequantize_workload(dtype format, dtype to) {
  workload w;
  const cinch::tensor& b = input_blocks(format);
  w.bytes = b.nbytes();
  cinch::tensor out = cinch::tensor::empty({rows, cols}, to);
  w.call = [b = b.view(), y = out.view()] {
    cinch::kv::dequantize_blocks(b, y);
    benchmark::DoNotOptimize(y.data());
  };
  w.keep.push_back(std::move(out));
  return w;
}

// ------------------------------------------------------------------ the loop

struct config {
  int threads = 1;
  bool reference = false;
  bool is_memcpy = false;  // the baseline itself: its mean becomes the vs_memcpy reference
};

void run(benchmark::State& state, const config& c, const std::function<workload()>& make) {
  const int previous = cinch::threads();
  cinch::set_threads(c.threads);
  if (c.reference) cinch::force_backend(cinch::backend_kind::ref);
  const workload w = make();
  warm_up(w);
  const double t0 = seconds_now(c.threads);
  for (auto _ : state) {
    w.call();
    benchmark::ClobberMemory();
  }
  const double seconds = (seconds_now(c.threads) - t0) / double(state.iterations());
  if (c.is_memcpy) memcpy_seconds_by_threads()[c.threads] = seconds;
  const double baseline = memcpy_seconds(c.threads);
  cinch::force_backend(std::nullopt);
  cinch::set_threads(previous);

  state.SetBytesProcessed(w.bytes * std::int64_t(state.iterations()));
  state.SetLabel(c.reference ? std::string("ref") : cinch::cpu_target());
  state.counters["GBps_in"] = benchmark::Counter(double(w.bytes) / seconds * 1e-9);
  state.counters["vs_memcpy"] = benchmark::Counter(baseline / seconds);
}

void add(const std::string& name, const config& c, std::function<workload()> make) {
  add_run(name, c.threads, c.reference, [c, make = std::move(make)](benchmark::State& state) { run(state, c, make); });
}

void register_all() {
  const dtype formats[] = {dtype::q8_0, dtype::q4_0, dtype::q4_1, dtype::q5_0, dtype::q5_1, dtype::iq4_nl};
  const std::vector<int> thread_counts = cinch_bench::thread_counts();
  for (int t : thread_counts) {
    const config simd{t, false};
    add("BM_memcpy/f32", {t, false, true}, [t] { return memcpy_workload(t); });
    for (dtype f : formats) {
      const std::string name(cinch::to_string(f));
      add("BM_quantize/f32_" + name, simd, [f] { return quantize_workload(dtype::f32, f); });
      add("BM_quantize/f16_" + name, simd, [f] { return quantize_workload(dtype::f16, f); });
      add("BM_dequantize/" + name + "_f32", simd, [f] { return dequantize_workload(f, dtype::f32); });
      add("BM_dequantize/" + name + "_f16", simd, [f] { return dequantize_workload(f, dtype::f16); });
    }
  }
  // The scalar reference, to show what the SIMD kernels buy.
  for (int t : thread_counts)
    for (dtype f : {dtype::q8_0, dtype::q4_0}) {
      add("BM_quantize/f32_" + std::string(cinch::to_string(f)), {t, true}, [f] { return quantize_workload(dtype::f32, f); });
      add("BM_dequantize/" + std::string(cinch::to_string(f)) + "_f32", {t, true}, [f] { return dequantize_workload(f, dtype::f32); });
    }
}

}  // namespace

int main(int argc, char** argv) {
  return cinch_bench::run_main(argc, argv,
                               "4096 x 4096 values (f32 64 MiB, f16 32 MiB); GBps_in = input bytes / s (1e9); "
                               "vs_memcpy = t(memcpy of the f32 tensor) / t(kernel)",
                               register_all);
}
