// Timing helpers shared by the benchmark binaries.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <ctime>
#include <random>
#include <thread>
#include <vector>

namespace cinch_bench {

inline int all_threads() { return std::max(1, int(std::thread::hardware_concurrency())); }

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

}  // namespace cinch_bench
