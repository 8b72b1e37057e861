// Walsh-Hadamard rotation of KV vectors (QuaRot, RotateKV, llama.cpp): every row
// of the innermost dimension, whose length n must be a power of two, becomes
// H_n x / sqrt(n) in place. Rotating q and k alike keeps q . k; rotation spreads
// outlier channels before quantization. Defined in cinch::kernels; the arithmetic
// is cinch/ref/hadamard.hpp's, and every backend gives the same bits.
#pragma once

#include <cstdint>
#include <optional>

#include "cinch/core/tensor_view.hpp"

namespace cinch::kv {

// x: [..., n] f32, n a power of two. With a sign_seed the randomized transform
// H D x / sqrt(n) runs instead, D = diag(+-1) drawn from the seed.
void hadamard(const tensor_view& x, std::optional<std::uint64_t> sign_seed = std::nullopt);

// Undoes hadamard(x, sign_seed): D H x / sqrt(n). Without a seed it equals hadamard.
void inverse_hadamard(const tensor_view& x, std::optional<std::uint64_t> sign_seed = std::nullopt);

}  // namespace cinch::kv
