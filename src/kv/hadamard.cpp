// Walsh-Hadamard rotation: validation, the kernel table, rows over threads.
#include "cinch/kv/hadamard.hpp"

#include <array>
#include <string_view>
#include <vector>

#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "cinch/ref/hadamard.hpp"
#include "dispatch.hpp"
#include "kv/group_kernels.hpp"

#if CINCH_WITH_CUDA
#include "cuda/groups_backend.hpp"
#endif

namespace cinch {
namespace detail {
namespace {

constexpr hadamard_kernels ref_hadamard{ref::hadamard_row};
constexpr hadamard_kernels simd_hadamard{cpu::hadamard_row};

}  // namespace

const hadamard_kernels& active_hadamard_kernels() { return use_reference_kernels() ? ref_hadamard : simd_hadamard; }

}  // namespace detail

namespace kv {
namespace {

// Sign bits of the randomized transform, on the stack for rows up to 4096.
class sign_table {
 public:
  sign_table(std::uint64_t seed, std::int64_t n) {
    if (n > std::int64_t(local_.size())) heap_.resize(static_cast<std::size_t>(n));
    std::uint32_t* bits = data();
    for (std::int64_t i = 0; i < n; ++i) bits[i] = ref::hadamard_sign_bit(seed, i);
  }
  [[nodiscard]] std::uint32_t* data() { return heap_.empty() ? local_.data() : heap_.data(); }

 private:
  std::array<std::uint32_t, 4096> local_;
  std::vector<std::uint32_t> heap_;
};

void transform(std::string_view fn, const tensor_view& x, std::optional<std::uint64_t> sign_seed, bool inverse) {
  detail::require_backend(fn, x.where());
  detail::check_dtype(fn, "x", x, dtype::f32);
  if (x.rank() < 1) detail::fail(errc::shape_mismatch, fn, "x must have at least one dimension (the row), got rank 0");
  const std::int64_t n = x.size(-1);
  if (!ref::is_power_of_two(n))
    detail::fail(errc::invalid_argument, fn, "the row length of x (its innermost dimension) must be a power of two, got ",
                 n, " in shape ", x.shape());
  detail::check_rows_dense(fn, "x", x);
  detail::check_output(fn, "x", x, {});
  if (x.numel() == 0) return;
  const detail::row_layout rows = detail::rows_of(x);
  auto* xp = static_cast<float*>(x.data());
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::hadamard(rows, xp, sign_seed.has_value(), sign_seed.value_or(0), inverse, x.where().index);
    return;
  }
#endif
  std::optional<sign_table> signs;
  if (sign_seed) signs.emplace(*sign_seed, n);
  const std::uint32_t* sign_bits = signs ? signs->data() : nullptr;
  const detail::hadamard_kernels& k = detail::active_hadamard_kernels();
  detail::parallel_tasks(rows.rows, x.numel(), [&](std::int64_t r) { k.row(xp + rows.row_offset(r), n, sign_bits, inverse); });
}

}  // namespace

void hadamard(const tensor_view& x, std::optional<std::uint64_t> sign_seed) {
  transform("kv::hadamard", x, sign_seed, false);
}

void inverse_hadamard(const tensor_view& x, std::optional<std::uint64_t> sign_seed) {
  transform("kv::inverse_hadamard", x, sign_seed, true);
}

}  // namespace kv
}  // namespace cinch
