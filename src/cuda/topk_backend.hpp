// Host-side launcher of the top-k CUDA kernel (src/cuda/topk.cu). Plain C++: no
// CUDA types. Arguments have been validated by kv::top_k (src/kv/select.cpp); the
// kernel ranks with the reference's CINCH_HOST_DEVICE rank_key and the reference's
// threshold rule, so the indices equal the CPU's.
#pragma once

#include <cstdint>

#include "cinch/detail/rows.hpp"

namespace cinch::cuda {

// Best k (1 <= k <= n) of each row of n scores, ascending indices into the rows of
// `indices` (device pointers).
void top_k(const detail::row_layout& score_rows, const float* scores, std::int64_t n, std::int64_t k,
           const detail::row_layout& index_rows, std::int32_t* indices, int device);

}  // namespace cinch::cuda
