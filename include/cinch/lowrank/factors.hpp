// lowrank::factors: a weight W [m, n] approximated as A [m, r] times B [r, n].
#pragma once

#include <cstdint>

#include "cinch/core/tensor.hpp"

namespace cinch::lowrank {

// Both f32, dense, on the CPU as the decompositions return them. The singular
// values are split evenly (A = U S^1/2, B = S^1/2 V^T, folded scalings included),
// which keeps the two factors on the same scale for f16/bf16 storage.
struct factors {
  tensor a;  // [m, r]
  tensor b;  // [r, n]

  [[nodiscard]] std::int64_t rows() const { return a.size(0); }
  [[nodiscard]] std::int64_t rank() const { return a.size(1); }
  [[nodiscard]] std::int64_t cols() const { return b.size(1); }
};

// W' = A B as a dense f32 [m, n] tensor. Throws errc::invalid_argument unless a
// and b are f32 CPU matrices with a's columns equal to b's rows.
[[nodiscard]] tensor reconstruct(const tensor_view& a, const tensor_view& b);
[[nodiscard]] inline tensor reconstruct(const factors& f) { return reconstruct(f.a, f.b); }

// ||W - A B||_F / ||W||_F, in double, without forming A B: W's rows are taken
// 64 at a time (scratch: B and one row tile in double), so the cost is one GEMM
// of the factors' shapes and no [m, n] buffer. 0 when W and A B are both zero,
// +inf when only W is. w, a, b: f32 CPU matrices, any strides, a [m, r], b [r, n]
// for w [m, n]; else errc::invalid_argument or errc::shape_mismatch.
[[nodiscard]] double relative_error(const tensor_view& w, const tensor_view& a, const tensor_view& b);
[[nodiscard]] inline double relative_error(const tensor_view& w, const factors& f) {
  return relative_error(w, f.a, f.b);
}

}  // namespace cinch::lowrank
