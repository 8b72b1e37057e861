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
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/kv/blocks.hpp"

#include "bench_common.hpp"

namespace {

using cinch_bench::all_threads;
using cinch_bench::seconds_now;

using cinch::dtype;

constexpr std::int64_t rows = 4096;
constexpr std::int64_t cols = 4096;
constexpr std::int64_t f32_bytes = rows * cols * 4;

// ------------------------------------------------------------------ input

std::uint64_t mix(std::uint64_t z) {  // splitmix64 finalizer: a counter-based generator
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

const cinch::tensor& input(dtype type) {
  static std::map<dtype, cinch::tensor> cache;
  auto it = cache.find(type);
  if (it != cache.end()) return it->second;
  cinch::tensor x = cinch::tensor::empty({rows, cols}, dtype::f32);
  float* p = x.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float row_scale = 0.25f * float(1 + mix(std::uint64_t(r) ^ 0xC1A5ull) % 15);
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::uint64_t h = mix(std::uint64_t(r * cols + c));
      const float sum = float(h & 0xFFFF) + float((h >> 16) & 0xFFFF) + float((h >> 32) & 0xFFFF) + float(h >> 48);
      float v = (sum - 2.0f * 65535.0f) * (1.0f / 37837.0f);  // Irwin-Hall: about N(0, 1)
      if ((mix(h) & 1023) == 0) v *= 24.0f;
      p[r * cols + c] = v * row_scale;
    }
  }
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

// One kernel on its buffers: the input bytes of one call and the call.
struct workload {
  std::int64_t input_bytes = 0;
  std::function<void()> call;
  cinch::tensor output;
};

// Untimed calls: up to 24, or 0.3 s, so that caches and the thread pool settle.
void warm_up(const workload& w) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 24 && std::chrono::steady_clock::now() - start < std::chrono::milliseconds(300); ++i) w.call();
}

// memcpy of the f32 tensor in `threads` cache-line aligned parts.
void parallel_memcpy(void* dst, const void* src, std::size_t n, int threads) {
  const std::size_t part = (n / std::size_t(threads) + 63) / 64 * 64;
  auto copy_part = [&](int t) {
    const std::size_t begin = std::min(n, part * std::size_t(t)), end = std::min(n, begin + part);
    std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(copy_part, t);
  copy_part(0);
  for (std::thread& w : workers) w.join();
}

workload memcpy_workload(int threads) {
  workload w;
  w.input_bytes = f32_bytes;
  w.output = cinch::tensor::empty({rows, cols}, dtype::f32);
  w.call = [src = input(dtype::f32).data(), dst = w.output.data(), threads] {
    parallel_memcpy(dst, src, std::size_t(f32_bytes), threads);
    benchmark::DoNotOptimize(dst);
  };
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
  w.input_bytes = x.nbytes();
  w.output = cinch::tensor::empty({rows, cols}, format);
  w.call = [x = x.view(), b = w.output.view()] {
    cinch::kv::quantize_blocks(x, b);
    benchmark::DoNotOptimize(b.data());
  };
  return w;
}

workload dequantize_workload(dtype format, dtype to) {
  workload w;
  const cinch::tensor& b = input_blocks(format);
  w.input_bytes = b.nbytes();
  w.output = cinch::tensor::empty({rows, cols}, to);
  w.call = [b = b.view(), y = w.output.view()] {
    cinch::kv::dequantize_blocks(b, y);
    benchmark::DoNotOptimize(y.data());
  };
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

  state.SetBytesProcessed(w.input_bytes * std::int64_t(state.iterations()));
  state.SetLabel(c.reference ? std::string("ref") : cinch::cpu_target());
  state.counters["GBps_in"] = benchmark::Counter(double(w.input_bytes) / seconds * 1e-9);
  state.counters["vs_memcpy"] = benchmark::Counter(baseline / seconds);
}

void add(const std::string& name, const config& c, std::function<workload()> make) {
  const std::string full = name + (c.reference ? "/ref" : "") + "/threads:" + std::to_string(c.threads);
  benchmark::internal::Benchmark* b =
      benchmark::RegisterBenchmark(full.c_str(), [c, make = std::move(make)](benchmark::State& state) {
        try {
          run(state, c, make);
        } catch (const std::exception& e) {
          state.SkipWithError(e.what());
        }
      });
  b->Unit(benchmark::kMillisecond);
  if (c.threads > 1) b->UseRealTime();
}

void register_all() {
  const dtype formats[] = {dtype::q8_0, dtype::q4_0, dtype::q4_1, dtype::q5_0, dtype::q5_1, dtype::iq4_nl};
  std::vector<int> thread_counts{1};
  if (all_threads() > 1) thread_counts.push_back(all_threads());
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cinch", "cinch " CINCH_VERSION_STRING "; cpu target " + cinch::cpu_target());
  benchmark::AddCustomContext("workload", "4096 x 4096 values (f32 64 MiB, f16 32 MiB); GBps_in = input bytes / s (1e9); "
                                          "vs_memcpy = t(memcpy of the f32 tensor) / t(kernel)");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
