// The factorized linear layer y = A (B x) for a batch of tokens, fused: the rank
// is streamed in tiles, so the [tokens, r] intermediate B x never exists at full
// size, only [tokens, rank_tile] (FlashSVD's point; on the CPU a tile of every
// token chunk lives on the stack). Also the dense y = W x it replaces.
//
// Shapes: x [tokens, n], y [tokens, m], a [m, r], b [r, n], f32, rows dense
// (unit column stride), any row strides, all on one device (CPU or CUDA). On the
// CPU, results equal cinch::ref::apply_factors up to the rounding of reordered
// dot products (bound in cinch/ref/lowrank.hpp); on CUDA the rank tiles add into y
// atomically, in no fixed order, within the same bound.
#pragma once

#include <cstdint>

#include "cinch/core/tensor_view.hpp"
#include "cinch/lowrank/factors.hpp"

namespace cinch::lowrank {

struct apply_options {
  // Rank rows per tile; 0 takes the whole rank at once: the two-GEMM form, which
  // allocates the full [tokens, r] intermediate.
  std::int64_t rank_tile = 256;
  // y += A (B x) instead of y = A (B x): EoRA's W_c x + A (B x).
  bool accumulate = false;
};

// Throws errc::shape_mismatch for inconsistent shapes, errc::invalid_argument for
// other dtypes, mixed devices, a negative rank_tile, a y that overlaps an input or
// is read-only, errc::unsupported for non-unit column strides.
void apply(const tensor_view& a, const tensor_view& b, const tensor_view& x, const tensor_view& y,
           const apply_options& options = {});
inline void apply(const factors& f, const tensor_view& x, const tensor_view& y, const apply_options& options = {}) {
  apply(f.a, f.b, x, y, options);
}

// y (+)= x W^T for w [m, n]: the dense layer, with the same checks.
void apply_dense(const tensor_view& w, const tensor_view& x, const tensor_view& y, bool accumulate = false);

}  // namespace cinch::lowrank
