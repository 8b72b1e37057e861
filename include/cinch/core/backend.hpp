// Backends and dispatch. Defined in cinch::kernels.
//
// Every operation runs on the backend that the tensors' device selects: cuda for
// CUDA memory, and for host memory `simd` (Highway, the best target this CPU
// supports) unless `ref` (the scalar reference) is forced. Overrides, for tests,
// benchmarks and bug reports:
//   CINCH_BACKEND=ref|simd      host kernels to use (read once, at first use)
//   CINCH_CPU_TARGET=<name>     cap the Highway target: avx3, avx2, sse4, ssse3,
//                               emu128 or scalar (whichever were compiled)
//   force_backend(...)          the same as CINCH_BACKEND, from code
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/core/tensor_view.hpp"

namespace cinch {

enum class backend_kind { ref, simd, cuda };

[[nodiscard]] constexpr std::string_view to_string(backend_kind b) noexcept {
  switch (b) {
    case backend_kind::ref: return "ref";
    case backend_kind::simd: return "simd";
    case backend_kind::cuda: return "cuda";
  }
  return "unknown";
}

// The backends compiled into this build, in the order ref, simd, cuda.
[[nodiscard]] std::vector<backend_kind> compiled_backends();

// Host kernels: nullopt restores the default (CINCH_BACKEND, else simd).
// Throws errc::invalid_argument for cuda, which is chosen by device, not forced.
void force_backend(std::optional<backend_kind> host_backend);

// The backend that runs operations on tensors living on `where`.
[[nodiscard]] backend_kind active_backend(device where = cpu_device);

// Name of the Highway target the simd backend dispatches to, e.g. "AVX2".
[[nodiscard]] std::string cpu_target();

// Names of the Highway targets compiled in and supported by this CPU, best first.
[[nodiscard]] std::vector<std::string> cpu_targets();

// CUDA devices visible to the runtime; 0 in a build without CUDA or without a GPU.
[[nodiscard]] int cuda_device_count();

// Host threads for CPU kernels (OpenMP). Engines with their own pool set 1.
void set_threads(int count);
[[nodiscard]] int threads();

// A human-readable report: version, backends, CPU target, CUDA devices.
[[nodiscard]] std::string describe();

// Copies elements between any two views of equal shape and dtype, across
// devices too. Host-to-host copies may be strided; copies that touch a CUDA
// device need both views contiguous.
void copy(const tensor_view& src, const tensor_view& dst);

}  // namespace cinch
