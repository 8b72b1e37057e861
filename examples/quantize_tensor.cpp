// Quantize a tensor to int8 rows (one scale per row) and convert it to f16,
// bf16 and fp8 on every backend this build has, printing error and speed.
//
//   ./quantize_tensor [rows] [cols]      (default 4096 x 4096)
#include <cinch/cinch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

// Runs `work` a few times and returns the best time in seconds.
template <class Work>
double best_seconds(Work work) {
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = clock_type::now();
    work();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
  }
  return best;
}

// Root-mean-square error of y against x, relative to the RMS of x.
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : 4096;
  const std::int64_t cols = argc > 2 ? std::atoll(argv[2]) : 4096;
  std::fputs(cinch::describe().c_str(), stdout);

  // Activations-like data: Gaussian with a few large outliers.
  std::vector<float> x(std::size_t(rows * cols));
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 997 == 0 ? 40.0f * normal(rng) : normal(rng);
  const cinch::tensor_view input(x.data(), cinch::dtype::f32, {rows, cols});
  const double mib = double(x.size() * sizeof(float)) / (1 << 20);
  std::printf("\ninput: %lld x %lld f32 (%.0f MiB)\n\n", static_cast<long long>(rows), static_cast<long long>(cols), mib);
  std::printf("%-8s %-14s %10s %14s\n", "backend", "operation", "GB/s in", "rel. RMS error");

  for (const cinch::backend_kind backend : cinch::compiled_backends()) {
    // Where the data lives picks the backend: host memory runs ref or simd, CUDA memory runs cuda.
    const bool gpu = backend == cinch::backend_kind::cuda;
    if (gpu && cinch::cuda_device_count() == 0) {
      std::printf("%-8s (no CUDA device visible: skipped)\n", "cuda");
      continue;
    }
    if (!gpu) cinch::force_backend(backend);
    const cinch::device where = gpu ? cinch::cuda_device(0) : cinch::cpu_device;
    cinch::tensor src = cinch::tensor::empty(input.shape(), cinch::dtype::f32, where);
    cinch::copy(input, src);

    // int8 rows: codes [rows, cols] and one scale per row.
    cinch::tensor codes = cinch::tensor::empty({rows, cols}, cinch::dtype::i8, where);
    cinch::tensor scales = cinch::tensor::empty({rows}, cinch::dtype::f32, where);
    cinch::tensor back = cinch::tensor::empty({rows, cols}, cinch::dtype::f32, where);
    std::vector<float> y(x.size());
    const double t = best_seconds([&] { cinch::quantize_rows(src, codes, scales); });
    cinch::dequantize_rows(codes, scales, back);
    cinch::copy(back, cinch::tensor_view(y.data(), cinch::dtype::f32, {rows, cols}));
    std::printf("%-8s %-14s %10.2f %14.2e\n", std::string(cinch::to_string(backend)).c_str(), "int8 rows",
                mib * (1 << 20) / t / 1e9, relative_rms_error(x, y));

    for (const cinch::dtype narrow : {cinch::dtype::f16, cinch::dtype::bf16, cinch::dtype::f8_e4m3, cinch::dtype::f8_e5m2}) {
      cinch::tensor packed = cinch::tensor::empty({rows, cols}, narrow, where);
      const double tc = best_seconds([&] { cinch::convert(src, packed); });
      cinch::convert(packed, back);
      cinch::copy(back, cinch::tensor_view(y.data(), cinch::dtype::f32, {rows, cols}));
      std::printf("%-8s %-14s %10.2f %14.2e\n", std::string(cinch::to_string(backend)).c_str(),
                  (std::string("to ") + std::string(cinch::to_string(narrow))).c_str(), mib * (1 << 20) / tc / 1e9,
                  relative_rms_error(x, y));
    }
  }
  cinch::force_backend(std::nullopt);
  return 0;
}
