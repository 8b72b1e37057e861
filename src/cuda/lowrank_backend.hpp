// Host-side launchers of the lowrank CUDA kernels (src/cuda/lowrank.cu). Plain
// C++: no CUDA types. Arguments have been validated by src/lowrank_apply.cpp.
#pragma once

#include <cstdint>

namespace cinch::cuda {

// y [tokens, m] (+)= A [m, r] (B [r, n] x [tokens, n]), the rank in tiles of `tile`.
struct lowrank_apply_layout {
  std::int64_t tokens, m, n, r, tile, lda, ldb, ldx, ldy;
  bool accumulate;
};
void lowrank_apply(const lowrank_apply_layout& l, const float* a, const float* b, const float* x, float* y,
                   int device);

// y [tokens, m] (+)= x [tokens, n] W^T for w [m, n].
struct dense_apply_layout {
  std::int64_t tokens, m, n, ldw, ldx, ldy;
  bool accumulate;
};
void dense_apply(const dense_apply_layout& l, const float* w, const float* x, float* y, int device);

}  // namespace cinch::cuda
