// lowrank::reconstruct: the dense product of two factors on the lowrank GEMM.
#include <utility>

#include "cinch/detail/checks.hpp"
#include "cinch/lowrank/factors.hpp"
#include "lowrank_multiply.hpp"

namespace cinch::lowrank {

tensor reconstruct(const tensor_view& a, const tensor_view& b) {
  constexpr std::string_view fn = "lowrank::reconstruct";
  for (auto [v, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}}) {
    cinch::detail::check_device(fn, name, *v, cpu_device);
    cinch::detail::check_dtype(fn, name, *v, dtype::f32);
    if (v->rank() != 2)
      cinch::detail::fail(errc::shape_mismatch, fn, name, " must be a matrix, got rank ", v->rank(), " ", v->shape());
  }
  if (a.size(1) != b.size(0))
    cinch::detail::fail(errc::shape_mismatch, fn, "a's columns must equal b's rows, got a ", a.shape(), " and b ",
                        b.shape());
  tensor w = tensor::empty({a.size(0), b.size(1)}, dtype::f32);
  detail::multiply(detail::strided_matrix<float>{w.data<float>(), a.size(0), b.size(1), b.size(1), 1},
                   detail::strided_matrix<const float>{static_cast<const float*>(a.data()), a.size(0), a.size(1),
                                                       a.stride(0), a.stride(1)},
                   detail::strided_matrix<const float>{static_cast<const float*>(b.data()), b.size(0), b.size(1),
                                                       b.stride(0), b.stride(1)});
  return w;
}

}  // namespace cinch::lowrank
