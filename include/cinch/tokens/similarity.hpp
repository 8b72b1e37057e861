// The shared kernels that the token methods are built from, exposed for
// engines that compose their own: cosine similarity, row-wise argmax and top-k.
// Arithmetic as cinch/ref/tokens.hpp specifies it, identical on every backend
// (ref, every Highway target, CUDA), so selections never depend on the machine.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/core/tensor_view.hpp"

namespace cinch::tokens {

// out[i, j] = cos(a_i, b_j) for a [M, D], b [N, D], out [M, N]; f32, all on one
// device (host or CUDA), dense innermost dimensions. A zero row has cosine 0
// with everything. Values are not checked: NaN in a row gives NaN in its cosines.
void cosine_similarity(const tensor_view& a, const tensor_view& b, const tensor_view& out);

// best[i] = max_j cos(a_i, b_j) and index[i] = the lowest j that attains it
// (best f32 [M], index i32 [M]), without forming the matrix. With
// exclude_diagonal (a and b the same rows), j == i is left out.
void cosine_argmax(const tensor_view& a, const tensor_view& b, const tensor_view& best, const tensor_view& index,
                   bool exclude_diagonal = false);

// best[i] = max_j s[i, j], index[i] = the lowest j attaining it; NaN never wins
// and a row of NaN gets index -1. s f32 [M, N], best f32 [M], index i32 [M].
void row_argmax(const tensor_view& s, const tensor_view& best, const tensor_view& index);

// Indices of the k largest scores, largest first, ties toward the lower index;
// NaN ranks below every number. k is clamped to scores.size().
[[nodiscard]] std::vector<std::int64_t> top_k(std::span<const float> scores, std::int64_t k);

}  // namespace cinch::tokens
