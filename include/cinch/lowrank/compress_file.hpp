// lowrank::compress_file: factorizes the weight matrices of a safetensors file,
// one tensor at a time, into another safetensors file (what `cinch lowrank` runs).
//
// Every selected tensor W [m, n] (rank 2, F32, F16 or BF16, name matching
// `include` and not `exclude`) becomes "<name>.lowrank_a" [m, r] and
// "<name>.lowrank_b" [r, n] in W's dtype, with r = rank_for(m, n, keep) from plain
// truncated SVD (the file carries no calibration data); tensors too small for
// rank 1 at that ratio, and every other tensor, are copied unchanged. The output
// metadata keeps the input's and adds "cinch.lowrank.keep_ratio" and
// "cinch.lowrank.method". At most one input tensor and its factors are held in
// memory besides the mapped input.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "cinch/lowrank/rank.hpp"
#include "cinch/lowrank/svd.hpp"

namespace cinch::lowrank {

struct file_options {
  keep_ratio keep{0.5};
  svd_options svd{};
  // ECMAScript regular expressions searched in tensor names.
  std::string include = R"(\.weight$)";
  std::string exclude = R"(embed|lm_head|norm)";
};

struct file_progress {
  std::size_t index = 0;  // of this tensor, in file order
  std::size_t count = 0;  // tensors in the input
  std::string_view name;
  std::int64_t rows = 0, cols = 0;  // of a factorized matrix; 0 for copied tensors
  std::int64_t rank = 0;            // 0 when copied
  // ||W - A B||_F / ||W||_F of the factors as written (in the file's dtype), by
  // lowrank::relative_error; 0 for copied tensors.
  double relative_error = 0;
  double seconds = 0;  // spent on this tensor
};

struct file_report {
  std::size_t factorized = 0, copied = 0;
  std::int64_t dense_parameters = 0;   // of the factorized matrices
  std::int64_t factor_parameters = 0;  // of their factors
  double max_relative_error = 0;       // the largest file_progress::relative_error
};

// Calls `progress` after each tensor. Throws what io::safetensors_file::open and
// io::safetensors_writer throw, errc::invalid_argument for a bad keep ratio, an
// invalid regular expression, or an output path equal to the input, and what
// the decomposition throws (non-finite weights name the tensor).
file_report compress_file(const std::string& input, const std::string& output, const file_options& options = {},
                          const std::function<void(const file_progress&)>& progress = {});

}  // namespace cinch::lowrank
