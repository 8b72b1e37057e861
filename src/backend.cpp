// Dispatch state, the reference kernel table, memory and describe().
#include "cinch/core/backend.hpp"

#include <hwy/targets.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "cinch/core/tensor.hpp"
#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "cinch/ref/convert.hpp"
#include "cinch/ref/quantize.hpp"
#include "dispatch.hpp"
#include "host_kernels.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if CINCH_WITH_CUDA
#include "cuda/cuda_backend.hpp"
#endif

namespace cinch {
namespace detail {
namespace {

template <class From, class To>
void ref_convert(const void* src, void* dst, std::int64_t n) noexcept {
  ref::convert_row(static_cast<const From*>(src), static_cast<To*>(dst), n);
}

float ref_quantize_row_i8(const float* x, std::int8_t* codes, std::int64_t n, const float*) noexcept {
  return ref::quantize_row_i8(x, codes, n);
}

void copy_f32(const void* src, void* dst, std::int64_t n) noexcept {
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

constexpr host_kernels ref_table{
    {copy_f32, ref_convert<f16_bits, float>, ref_convert<bf16_bits, float>, ref_convert<f8_e4m3_bits, float>,
     ref_convert<f8_e5m2_bits, float>},
    {copy_f32, ref_convert<float, f16_bits>, ref_convert<float, bf16_bits>, ref_convert<float, f8_e4m3_bits>,
     ref_convert<float, f8_e5m2_bits>},
    ref_quantize_row_i8,
    ref::dequantize_row_i8,
};

constexpr host_kernels simd_table{
    {copy_f32, cpu::f16_to_f32_row, cpu::bf16_to_f32_row, cpu::e4m3_to_f32_row, cpu::e5m2_to_f32_row},
    {copy_f32, cpu::f32_to_f16_row, cpu::f32_to_bf16_row, cpu::f32_to_e4m3_row, cpu::f32_to_e5m2_row},
    cpu::quantize_row_i8,
    cpu::dequantize_row_i8,
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// CINCH_BACKEND, parsed once. Unset or empty means simd.
backend_kind backend_from_env() {
  static const backend_kind parsed = [] {
    const char* env = std::getenv("CINCH_BACKEND");
    const std::string value = env ? lower(env) : "";
    if (value.empty() || value == "simd") return backend_kind::simd;
    if (value == "ref") return backend_kind::ref;
    detail::fail(errc::invalid_argument, "cinch", "CINCH_BACKEND must be ref or simd, got '", value, "'");
  }();
  return parsed;
}

// -1: follow the environment; otherwise a forced backend_kind.
std::atomic<int> forced_host_backend{-1};

// Targets that CINCH_CPU_TARGET disabled (0: none).
std::atomic<std::int64_t> disabled_cpu_targets{0};

// Highway 1.0.3 forgets DisableTargets when its supported set is queried again: every
// query goes through here and re-applies the cap.
std::vector<std::int64_t> supported_cpu_targets() {
  std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  if (const std::int64_t mask = disabled_cpu_targets.load()) hwy::DisableTargets(mask);
  return targets;
}

// CINCH_CPU_TARGET caps Highway's choice: targets better than the named one are disabled.
void apply_cpu_target_from_env() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("CINCH_CPU_TARGET");
    if (!env || !*env) return;
    const std::string wanted = lower(env);
    std::string known;
    for (std::int64_t target : supported_cpu_targets()) {
      const std::string name = lower(hwy::TargetName(target));
      if (name == wanted) {
        disabled_cpu_targets.store(target - 1);  // every bit below: the better targets
        hwy::DisableTargets(target - 1);
        return;
      }
      known += (known.empty() ? "" : ", ") + name;
    }
    detail::fail(errc::invalid_argument, "cinch", "CINCH_CPU_TARGET must name a target this CPU supports (", known,
                 "), got '", env, "'");
  });
}

}  // namespace

const host_kernels& ref_host_kernels() noexcept { return ref_table; }
const host_kernels& simd_host_kernels() noexcept { return simd_table; }

bool use_reference_kernels() { return active_backend(cpu_device) == backend_kind::ref; }

const host_kernels& active_host_kernels() { return use_reference_kernels() ? ref_table : simd_table; }

void require_backend(std::string_view function, device where) {
  if (where.kind == device_kind::cpu) return;
#if CINCH_WITH_CUDA
  if (where.index < 0 || where.index >= cuda::device_count())
    fail(errc::invalid_argument, function, "tensors are on ", to_string(where), " but ", cuda::device_count(),
         " CUDA device(s) are visible");
#else
  fail(errc::unsupported, function, "tensors are on ", to_string(where),
       " but this build of cinch has no CUDA backend (configure with -DCINCH_CUDA=ON where nvcc is installed)");
#endif
}

}  // namespace detail

std::vector<backend_kind> compiled_backends() {
#if CINCH_WITH_CUDA
  return {backend_kind::ref, backend_kind::simd, backend_kind::cuda};
#else
  return {backend_kind::ref, backend_kind::simd};
#endif
}

void force_backend(std::optional<backend_kind> host_backend) {
  if (host_backend == backend_kind::cuda)
    detail::fail(errc::invalid_argument, "force_backend", "host_backend must be ref or simd (cuda is chosen by the ",
                 "tensors' device), got cuda");
  detail::forced_host_backend.store(host_backend ? static_cast<int>(*host_backend) : -1);
}

backend_kind active_backend(device where) {
  if (where.kind == device_kind::cuda) return backend_kind::cuda;
  detail::apply_cpu_target_from_env();
  const int forced = detail::forced_host_backend.load();
  return forced >= 0 ? static_cast<backend_kind>(forced) : detail::backend_from_env();
}

std::string cpu_target() {
  detail::apply_cpu_target_from_env();
  return hwy::TargetName(cpu::dispatched_target());
}

std::vector<std::string> cpu_targets() {
  detail::apply_cpu_target_from_env();
  std::vector<std::string> names;
  for (std::int64_t target : detail::supported_cpu_targets()) names.emplace_back(hwy::TargetName(target));
  return names;
}

int cuda_device_count() {
#if CINCH_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void set_threads(int count) {
  if (count < 1) detail::fail(errc::invalid_argument, "set_threads", "count must be >= 1, got ", count);
#if defined(_OPENMP)
  omp_set_num_threads(count);
#endif
}

int threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::string describe() {
  std::string out = "cinch " CINCH_VERSION_STRING "\n";
  out += "backends compiled: ";
  for (backend_kind b : compiled_backends()) out += std::string(to_string(b)) + " ";
  out.back() = '\n';
  out += "host backend: " + std::string(to_string(active_backend(cpu_device))) + "\n";
  const std::vector<std::string> targets = cpu_targets();
  out += "cpu target: " + cpu_target() + " (supported: ";
  for (std::size_t i = 0; i < targets.size(); ++i) out += (i ? ", " : "") + targets[i];
  out += ")\nthreads: " + std::to_string(threads()) + "\n";
#if CINCH_WITH_CUDA
  const int n = cuda::device_count();
  out += "cuda devices: " + std::to_string(n) + "\n";
  for (int i = 0; i < n; ++i) out += "  cuda:" + std::to_string(i) + " " + cuda::device_summary(i) + "\n";
#else
  out += "cuda: not compiled in\n";
#endif
  return out;
}

tensor tensor::empty(dims shape, dtype type, device where) {
  detail::require_backend("tensor::empty", where);
  std::int64_t numel = 1;
  for (std::int64_t e : shape.span()) {
    if (e < 0) detail::fail(errc::invalid_argument, "tensor::empty", "extents must be >= 0, got ", shape.span());
    if (e && numel > (std::int64_t(1) << 56) / e)
      detail::fail(errc::invalid_argument, "tensor::empty", "element count of ", shape.span(), " overflows");
    numel *= e;
  }
  const dtype_info i = info(type);
  if (numel % i.block_elems)
    detail::fail(errc::invalid_argument, "tensor::empty", "element count of ", i.name, " must be a multiple of ",
                 i.block_elems, ", got ", shape.span());
  const auto bytes = static_cast<std::size_t>(numel / i.block_elems * i.block_bytes);
  constexpr std::size_t align = 64;
  std::shared_ptr<void> owner;
  if (where.kind == device_kind::cpu) {
    void* p = ::operator new((bytes + align - 1) / align * align + align, std::align_val_t(align), std::nothrow);
    if (!p) detail::fail(errc::out_of_memory, "tensor::empty", "could not allocate ", bytes, " bytes on cpu");
    owner.reset(p, [](void* q) { ::operator delete(q, std::align_val_t(align)); });
  } else {
#if CINCH_WITH_CUDA
    void* p = cuda::allocate(where.index, bytes);
    owner.reset(p, [index = where.index](void* q) { cuda::release(index, q); });
#endif
  }
  // The view checks rank and block alignment; a throw here frees the memory.
  return adopt(tensor_view(owner.get(), type, shape, where), owner);
}

void copy(const tensor_view& src, const tensor_view& dst) {
  constexpr std::string_view fn = "copy";
  detail::require_backend(fn, src.where());
  detail::require_backend(fn, dst.where());
  detail::check_dtype(fn, "dst", dst, src.type());
  detail::check_shape(fn, "dst", dst, src.shape());
  detail::check_output(fn, "dst", dst, {src});
  if (src.numel() == 0) return;
  if (src.where().kind == device_kind::cpu && dst.where().kind == device_kind::cpu) {
    detail::check_rows_dense(fn, "src", src);
    detail::check_rows_dense(fn, "dst", dst);
    const detail::row_layout s = detail::rows_of(src), d = detail::rows_of(dst);
    const dtype_info i = info(src.type());
    const auto row_bytes = static_cast<std::size_t>(s.cols / i.block_elems * i.block_bytes);
    for (std::int64_t r = 0; r < s.rows; ++r) std::memcpy(dst.address(d.row_offset(r)), src.address(s.row_offset(r)), row_bytes);
    return;
  }
#if CINCH_WITH_CUDA
  if (!src.is_contiguous() || !dst.is_contiguous())
    detail::fail(errc::unsupported, fn, "copies that touch a CUDA device need contiguous views, got strides ",
                 src.strides(), " -> ", dst.strides());
  cuda::copy_bytes(dst.data(), src.data(), static_cast<std::size_t>(src.nbytes()));
#endif
}

}  // namespace cinch
