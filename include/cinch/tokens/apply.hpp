// tokens::apply: carries out a plan on hidden states, and produces the
// position ids of the tokens that remain, in one call.
//
// Hidden states are f32 [N, D], or [T, n, D] for video (T * n = N, token
// (t, i) is source t * n + i), with a dense innermost dimension, on the host or
// a CUDA device. Output row k is the plan's merge of its sources (see
// cinch/tokens/plan.hpp), computed as cinch/ref/tokens.hpp's merge_row says:
// sources in ascending order, one fused multiply-add each, then one division by
// the summed sizes; a token that stands alone is copied bit for bit.
//
// Position ids (i32) follow the representative token of each output row:
//   sequence  offset + kept[k]: the original positions, gaps included, as
//             LightCompress and FastV keep them (compact: offset + k instead)
//   grid_2d   [2, K]: offset + row, offset + column of kept[k] in its frame
//   mrope     [3, K]: Qwen2-VL's multimodal RoPE ids of kept[k] = (f, y, x):
//             offset + f * temporal_stride, offset + y, offset + x
// next_position is the id the text after the visual block continues from: one
// past the largest id of the *unpruned* block (offset + N, or offset + K when
// compact; offset + max(row, column, time id) + 1 for the grid layouts), so the
// text keeps the positions it had without pruning.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/core/tensor.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

enum class position_layout { none, sequence, grid_2d, mrope };

struct position_options {
  position_layout layout = position_layout::sequence;
  std::int64_t offset = 0;           // id of source token 0, or added to every grid id
  bool compact = false;              // sequence only: consecutive ids instead of the original ones
  grid shape;                        // grid_2d and mrope: must hold the plan's N tokens
  std::int64_t temporal_stride = 1;  // mrope: time id step per frame (Qwen2.5-VL: tokens per second x
                                     // seconds per temporal patch)
};

struct apply_options {
  position_options positions;
  // Sizes the source tokens already stand for (ToMe after its first layer); empty = 1 each.
  std::span<const std::int64_t> sizes;
};

struct applied {
  tensor hidden;                    // [K, D] f32, on the input's device
  tensor positions;                 // i32 [K], [2, K] or [3, K] on the input's device; empty for none
  std::vector<std::int64_t> sizes;  // [K]: original tokens each output row stands for
  std::int64_t next_position = 0;
};

[[nodiscard]] applied apply(const plan& p, const tensor_view& x, const apply_options& options = {});

// The pieces of apply, into buffers the caller owns. merge writes out [K, D]
// (f32, x's device, not overlapping x).
void merge(const plan& p, const tensor_view& x, const tensor_view& out, std::span<const std::int64_t> sizes = {});

// Writes the ids into out (i32, shaped as above, host or CUDA) and returns next_position.
std::int64_t position_ids(const plan& p, const position_options& options, const tensor_view& out);

// sizes[k] summed over output row k's sources (input sizes 1 when empty).
[[nodiscard]] std::vector<std::int64_t> merged_sizes(const plan& p, std::span<const std::int64_t> sizes = {});

}  // namespace cinch::tokens
