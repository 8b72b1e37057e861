// bench_core: float format conversion and int8 row quantization against memcpy.
//
// Workload: an f32 tensor of 4096 x 4096 (64 MiB), normal-ish values with a few
// outliers, the same bytes for every kernel. Every benchmark reports bytes/s as
// memory traffic (bytes read + bytes written per iteration; memcpy: 2 x 64 MiB)
// and a plain counter vs_memcpy = this benchmark's traffic rate / the traffic
// rate of std::memcpy of the 64 MiB input, measured lazily in this process with
// the same number of threads, buffer sets and clock (best of 5 copies).
//
// Each kernel runs with one thread and with std::thread::hardware_concurrency()
// threads (cinch::set_threads); multi-threaded runs use real time. f32 -> f16 and
// quantize_rows also run with the scalar `ref` backend forced, and their simd
// runs report vs_ref = simd traffic rate / ref traffic rate (best of 3 ref calls).
// Every timed loop follows an untimed warm-up (see warm_up).
//
//   bench_core --benchmark_min_time=0.2
//   CINCH_BENCH_SETS=4 bench_core ...   cycle through 4 copies of every buffer,
//                                       for a working set larger than a big L3
//
// This file has its own main (for benchmark::AddCustomContext with
// cinch::describe()) and registers every benchmark from main, so there are no
// static initializers. Linking it against benchmark::benchmark_main works too:
// that library is a static archive, whose main is then never pulled in.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cinch/cinch.hpp"

#include "bench_common.hpp"

namespace {

using cinch_bench::seconds_now;

constexpr std::int64_t rows = 4096;
constexpr std::int64_t cols = 4096;
constexpr std::int64_t elems = rows * cols;
constexpr std::int64_t f32_bytes = elems * 4;  // 64 MiB

// ------------------------------------------------------------------ input data

// Buffer sets: each benchmark cycles through `buffer_sets()` copies of its
// inputs and outputs, one 4096 x 4096 operation per iteration. 1 (the default)
// reuses one set, as an engine converting the same cache block would; on a CPU
// whose L3 holds the working set (96-128 MiB) that measures L3 rather than DRAM.
// CINCH_BENCH_SETS=4 or more spreads the traffic over more than that.
int buffer_sets() {
  static const int sets = [] {
    const char* env = std::getenv("CINCH_BENCH_SETS");
    const int n = env && *env ? std::atoi(env) : 1;
    return std::clamp(n, 1, 64);
  }();
  return sets;
}

// Inputs are made once per process and shared (read-only) by every benchmark:
// activation-like values with per-row scales (cinch_bench::fill_activations_by_row).
const cinch::tensor& input_f32(int set) {
  static std::deque<cinch::tensor> sets;  // a deque: references stay valid as sets are added
  while (int(sets.size()) <= set) {
    cinch::tensor x = cinch::tensor::empty({rows, cols}, cinch::dtype::f32);
    if (sets.empty())
      cinch_bench::fill_activations_by_row(x.data<float>(), rows, cols);
    else
      std::memcpy(x.data(), sets.front().data(), std::size_t(f32_bytes));
    sets.push_back(std::move(x));
  }
  return sets[std::size_t(set)];
}

// The f32 input converted to `type` with the default backend: input of f16 -> f32 etc.
const cinch::tensor& input_as(cinch::dtype type, int set) {
  static std::map<std::pair<cinch::dtype, int>, cinch::tensor> cache;
  auto it = cache.find({type, set});
  if (it == cache.end()) {
    cinch::tensor t = cinch::tensor::empty({rows, cols}, type);
    cinch::convert(input_f32(set), t);
    it = cache.emplace(std::make_pair(type, set), std::move(t)).first;
  }
  return it->second;
}

// The f32 input quantized: i8 codes [rows, cols] and f32 scales [rows].
const std::pair<cinch::tensor, cinch::tensor>& input_quantized(int set) {
  static std::map<int, std::pair<cinch::tensor, cinch::tensor>> cache;
  auto it = cache.find(set);
  if (it == cache.end()) {
    std::pair<cinch::tensor, cinch::tensor> q{cinch::tensor::empty({rows, cols}, cinch::dtype::i8),
                                              cinch::tensor::empty({rows}, cinch::dtype::f32)};
    cinch::quantize_rows(input_f32(set), q.first, q.second);
    it = cache.emplace(set, std::move(q)).first;
  }
  return it->second;
}

// ------------------------------------------------------------------ run settings

enum class host { simd, ref };

struct config {
  int threads = 1;
  host backend = host::simd;
};

// Applies a config for the life of the object, then restores the thread count
// and the default backend.
class scoped_config {
 public:
  explicit scoped_config(const config& c) : previous_threads_(cinch::threads()) {
    cinch::set_threads(c.threads);
    if (c.backend == host::ref) cinch::force_backend(cinch::backend_kind::ref);
  }
  ~scoped_config() {
    cinch::force_backend(std::nullopt);
    cinch::set_threads(previous_threads_);
  }
  scoped_config(const scoped_config&) = delete;
  scoped_config& operator=(const scoped_config&) = delete;

 private:
  int previous_threads_;
};

// One kernel on its buffers: the bytes of traffic of one call, and one call per
// buffer set. The outputs live in `keep`, allocated once per benchmark (see
// current_workload); the inputs are shared.
struct workload {
  std::int64_t bytes = 0;
  std::vector<std::function<void()>> calls;
  std::vector<cinch::tensor> keep;
};

// Untimed calls before a timed loop. A CPU whose caches can hold much of the
// working set (here a 260 MiB L3) speeds up over the first 5 to 15 passes on
// fresh buffers, and the timed loop should see the state it keeps, not the climb
// to it. `fresh` (new buffers, or other work ran since): every buffer set once,
// then more calls up to 24 or 0.3 s in all. Otherwise (Google Benchmark running
// the same benchmark again): one call per set, which also restarts the thread pool.
void warm_up(const workload& w, bool fresh) {
  const auto start = std::chrono::steady_clock::now();
  const std::size_t n = w.calls.size();
  const std::size_t most = fresh ? std::max<std::size_t>(24, n) : n;
  for (std::size_t i = 0; i < most; ++i) {
    w.calls[i % n]();
    if (i + 1 >= n && std::chrono::steady_clock::now() - start > std::chrono::milliseconds(300)) break;
  }
}

// Best traffic rate (bytes/s) of `repeats` calls after the warm-up.
double best_rate(int threads, const workload& w, int repeats) {
  warm_up(w, true);
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    const double t0 = seconds_now(threads);
    w.calls[std::size_t(i) % w.calls.size()]();
    benchmark::ClobberMemory();
    const double t1 = seconds_now(threads);
    best = std::max(best, double(w.bytes) / (t1 - t0));
  }
  return best;
}

// ------------------------------------------------------------------ workloads

workload memcpy_workload(int threads) {
  workload w;
  w.bytes = 2 * f32_bytes;
  for (int set = 0; set < buffer_sets(); ++set) {
    cinch::tensor dst = cinch::tensor::empty({rows, cols}, cinch::dtype::f32);
    w.calls.emplace_back([src = input_f32(set).data(), d = dst.data(), threads] {
      cinch_bench::parallel_memcpy(d, src, std::size_t(f32_bytes), threads);
      benchmark::DoNotOptimize(d);
    });
    w.keep.push_back(std::move(dst));
  }
  return w;
}

workload convert_workload(cinch::dtype from, cinch::dtype to) {
  workload w;
  for (int set = 0; set < buffer_sets(); ++set) {
    const cinch::tensor& src = from == cinch::dtype::f32 ? input_f32(set) : input_as(from, set);
    cinch::tensor dst = cinch::tensor::empty({rows, cols}, to);
    w.bytes = src.nbytes() + dst.nbytes();
    w.calls.emplace_back([s = src.view(), d = dst.view()] {
      cinch::convert(s, d);
      benchmark::DoNotOptimize(d.data());
    });
    w.keep.push_back(std::move(dst));
  }
  return w;
}

workload quantize_workload() {
  workload w;
  for (int set = 0; set < buffer_sets(); ++set) {
    const cinch::tensor& x = input_f32(set);
    cinch::tensor codes = cinch::tensor::empty({rows, cols}, cinch::dtype::i8);
    cinch::tensor scales = cinch::tensor::empty({rows}, cinch::dtype::f32);
    w.bytes = x.nbytes() + codes.nbytes() + scales.nbytes();
    w.calls.emplace_back([x = x.view(), c = codes.view(), s = scales.view()] {
      cinch::quantize_rows(x, c, s);
      benchmark::DoNotOptimize(c.data());
      benchmark::DoNotOptimize(s.data());
    });
    w.keep.push_back(std::move(codes));
    w.keep.push_back(std::move(scales));
  }
  return w;
}

workload dequantize_workload() {
  workload w;
  for (int set = 0; set < buffer_sets(); ++set) {
    const auto& [codes, scales] = input_quantized(set);
    cinch::tensor y = cinch::tensor::empty({rows, cols}, cinch::dtype::f32);
    w.bytes = codes.nbytes() + scales.nbytes() + y.nbytes();
    w.calls.emplace_back([c = codes.view(), s = scales.view(), y = y.view()] {
      cinch::dequantize_rows(c, s, y);
      benchmark::DoNotOptimize(y.data());
    });
    w.keep.push_back(std::move(y));
  }
  return w;
}

// ------------------------------------------------------------------ baselines and the loop

// Traffic rate of memcpy of the 64 MiB input with `threads` threads: best of 5
// copies after the warm-up, measured on first use and kept.
double memcpy_rate(int threads) {
  static std::map<int, double> rates;
  auto it = rates.find(threads);
  if (it == rates.end()) it = rates.emplace(threads, best_rate(threads, memcpy_workload(threads), 5)).first;
  return it->second;
}

// Traffic rate of `w` on the ref backend: best of 3 calls, kept per kernel and thread count.
double ref_rate(const std::string& kernel, int threads, const workload& w) {
  static std::map<std::pair<std::string, int>, double> rates;
  const auto key = std::make_pair(kernel, threads);
  auto it = rates.find(key);
  if (it == rates.end()) {
    cinch::force_backend(cinch::backend_kind::ref);
    const double rate = best_rate(threads, w, 3);
    cinch::force_backend(std::nullopt);
    it = rates.emplace(key, rate).first;
  }
  return it->second;
}

// The buffers of the benchmark now running: allocated on its first run, kept
// while Google Benchmark runs it again (to choose and then run its iteration
// count), freed when the next benchmark starts.
struct current_workload {
  std::string benchmark;
  std::unique_ptr<workload> w;
};

// Times one kernel under `c`; sets bytes/s and the vs_memcpy (and vs_ref) counters.
void run(benchmark::State& state, const std::string& benchmark_name, const std::string& kernel, const config& c,
         const std::function<workload()>& make, bool with_vs_ref) {
  static current_workload current;
  scoped_config scope(c);
  const double baseline = memcpy_rate(c.threads);  // measured before the kernel's warm-up, when first used
  const bool fresh = current.benchmark != benchmark_name;
  if (fresh) {
    current.w.reset();  // the previous benchmark's buffers go first
    current.benchmark.clear();
    current.w = std::make_unique<workload>(make());
    current.benchmark = benchmark_name;
  }
  const workload& w = *current.w;
  const double ref = with_vs_ref ? ref_rate(kernel, c.threads, w) : 0;  // c.backend is simd here

  warm_up(w, fresh);
  const std::size_t sets = w.calls.size();
  std::size_t next = 0;
  const double t0 = seconds_now(c.threads);
  for (auto _ : state) {
    w.calls[next]();
    benchmark::ClobberMemory();
    next = next + 1 == sets ? 0 : next + 1;
  }
  const double t1 = seconds_now(c.threads);

  const double rate = double(w.bytes) * double(state.iterations()) / (t1 - t0);
  state.SetBytesProcessed(w.bytes * std::int64_t(state.iterations()));
  state.SetLabel(c.backend == host::ref ? std::string("ref") : cinch::cpu_target());  // the target that ran
  state.counters["vs_memcpy"] = benchmark::Counter(rate / baseline);
  if (with_vs_ref) state.counters["vs_ref"] = benchmark::Counter(rate / ref);
}

// ------------------------------------------------------------------ registration

void add(const std::string& name, const config& c, std::function<workload()> make, bool with_vs_ref = false) {
  const bool reference = c.backend == host::ref;
  cinch_bench::add_run(name, c.threads, reference,
                       [full = cinch_bench::run_name(name, c.threads, reference), name, c, make = std::move(make),
                        with_vs_ref](benchmark::State& state) { run(state, full, name, c, make, with_vs_ref); });
}

struct convert_case {
  const char* name;
  cinch::dtype from, to;
};

void register_all() {
  using cinch::dtype;
  const std::vector<int> thread_counts = cinch_bench::thread_counts();

  const convert_case converts[] = {
      {"f32_f16", dtype::f32, dtype::f16},         {"f16_f32", dtype::f16, dtype::f32},
      {"f32_bf16", dtype::f32, dtype::bf16},       {"f32_f8_e4m3", dtype::f32, dtype::f8_e4m3},
      {"f8_e4m3_f32", dtype::f8_e4m3, dtype::f32},
  };
  for (int t : thread_counts) {
    const config simd{t, host::simd};
    add("BM_memcpy", simd, [t] { return memcpy_workload(t); });
    for (const convert_case& k : converts)
      add(std::string("BM_convert/") + k.name, simd, [k] { return convert_workload(k.from, k.to); },
          k.from == dtype::f32 && k.to == dtype::f16);
    add("BM_quantize_rows/f32_i8", simd, quantize_workload, true);
    add("BM_dequantize_rows/i8_f32", simd, dequantize_workload);
  }
  // The scalar reference, to show what the SIMD kernels buy.
  for (int t : thread_counts) {
    const config ref{t, host::ref};
    add("BM_convert/f32_f16", ref, [] { return convert_workload(dtype::f32, dtype::f16); });
    add("BM_quantize_rows/f32_i8", ref, quantize_workload);
  }
}

// describe() on one line, for the benchmark context.
std::string one_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  std::string out;
  for (char ch : s) out += ch == '\n' ? std::string("; ") : std::string(1, ch);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  try {
    const char* cap = std::getenv("CINCH_CPU_TARGET");
    if (cap && *cap) {
      // describe() lists cinch::cpu_targets(), and with Highway 1.0.3 listing the
      // targets re-selects the best one, undoing the cap. Report without it.
      benchmark::AddCustomContext("cinch", "cinch " CINCH_VERSION_STRING "; host backend: " +
                                               std::string(cinch::to_string(cinch::active_backend())) +
                                               "; cpu target: " + cinch::cpu_target() + " (CINCH_CPU_TARGET=" +
                                               cap + "; describe() skipped, it would undo the cap)");
    } else {
      benchmark::AddCustomContext("cinch", one_line(cinch::describe()));
    }
  } catch (const std::exception& e) {
    benchmark::AddCustomContext("cinch", std::string("describe() failed: ") + e.what());
  }
  benchmark::AddCustomContext("workload", "f32 4096 x 4096 (64 MiB) x " + std::to_string(buffer_sets()) +
                                              " buffer set(s); bytes/s = bytes read + written");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
