// Timing helpers, input generators and registration shared by the benchmark binaries.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cinch/cinch.hpp"

namespace cinch_bench {

inline int all_threads() { return std::max(1, int(std::thread::hardware_concurrency())); }

// The thread counts every kernel runs with: one, and all_threads() when that is more.
inline std::vector<int> thread_counts() {
  std::vector<int> counts{1};
  if (all_threads() > 1) counts.push_back(all_threads());
  return counts;
}

// One thread: CPU time of this thread, as Google Benchmark times by default (robust
// when other processes share the cores); several: wall time, as UseRealTime does.
inline double seconds_now(int threads) {
  if (threads == 1) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// n values from N(0, 1), reproducible from `seed`.
inline std::vector<float> normal_values(std::size_t n, unsigned seed) {
  std::vector<float> x(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& e : x) e = normal(rng);
  return x;
}

// splitmix64's finalizer: 64 well-mixed bits from a counter.
inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// About N(0, 1) from 64 random bits: the Irwin-Hall sum of their four 16-bit
// parts, centred and divided by 65535 * sqrt(4 / 12) (unit variance).
inline float normal_of_bits(std::uint64_t h) {
  const float sum = float(h & 0xFFFF) + float((h >> 16) & 0xFFFF) + float((h >> 32) & 0xFFFF) + float(h >> 48);
  return (sum - 2.0f * 65535.0f) * (1.0f / 37837.0f);
}

// Element `i` of an activation-like tensor: about N(0, 1), and about one element
// in 1024 an outlier 24x larger.
inline float activation(std::uint64_t i) {
  const std::uint64_t h = mix(i);
  float v = normal_of_bits(h);
  if ((mix(h) & 1023) == 0) v *= 24.0f;
  return v;
}

// rows x cols activations with per-row scales in {0.25, 0.5, ..., 3.75}.
inline void fill_activations_by_row(float* x, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float row_scale = 0.25f * float(1 + mix(std::uint64_t(r) ^ 0xC1A5ull) % 15);
    for (std::int64_t c = 0; c < cols; ++c) x[r * cols + c] = activation(std::uint64_t(r * cols + c)) * row_scale;
  }
}

// std::memcpy of n bytes, split into `threads` cache-line aligned parts, one per thread.
inline void parallel_memcpy(void* dst, const void* src, std::size_t n, int threads) {
  if (threads <= 1) {
    std::memcpy(dst, src, n);
    return;
  }
  const std::size_t part = (n / std::size_t(threads) + 63) / 64 * 64;
  auto copy_part = [&](int t) {
    const std::size_t begin = std::min(n, part * std::size_t(t));
    const std::size_t end = std::min(n, begin + part);
    std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(copy_part, t);
  copy_part(0);
  for (std::thread& w : workers) w.join();
}

// One kernel call on prepared buffers: the bytes it is credited with per call, the
// call, and the tensors it writes, kept alive with it.
struct workload {
  std::int64_t bytes = 0;
  std::function<void()> call;
  std::vector<cinch::tensor> keep;
};

// The registered name of a benchmark: name[/ref]/threads:N.
inline std::string run_name(const std::string& name, int threads, bool reference) {
  return name + (reference ? "/ref" : "") + "/threads:" + std::to_string(threads);
}

// Registers `body` as run_name(name, threads, reference), reported in milliseconds
// and, with several threads, in wall time; an exception skips it with its message.
inline void add_run(const std::string& name, int threads, bool reference,
                    std::function<void(benchmark::State&)> body) {
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(
      run_name(name, threads, reference).c_str(), [body = std::move(body)](benchmark::State& state) {
        try {
          body(state);
        } catch (const std::exception& e) {
          state.SkipWithError(e.what());
        }
      });
  b->Unit(benchmark::kMillisecond);
  if (threads > 1) b->UseRealTime();
}

// main() of a benchmark binary: cinch's version and CPU target and `workload` as
// context, the benchmarks that register_all adds, then the run.
inline int run_main(int argc, char** argv, const std::string& workload, void (*register_all)()) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cinch", "cinch " CINCH_VERSION_STRING "; cpu target: " + cinch::cpu_target());
  benchmark::AddCustomContext("workload", workload);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace cinch_bench
