// lowrank::compress_file: factorizes the weight matrices of a safetensors file,
// one tensor at a time, into another safetensors file (what `cinch lowrank` runs).
//
// Every selected tensor W [m, n] (rank 2, F32, F16 or BF16, name matching
// `include` and not `exclude`) becomes "<name>.lowrank_a" [m, r] and
// "<name>.lowrank_b" [r, n] in W's dtype, with r = rank_for(m, n, keep); tensors
// too small for rank 1 at that ratio, and every other tensor, are copied
// unchanged. The method is plain truncated SVD, or ASVD / SVD-LLM with the
// inputs of each weight read from `calibration`/<name>.npy: f32 [tokens, n] (any
// leading dimensions count tokens), added to a lowrank::calibration one file at
// a time. A selected tensor without such a file gets plain SVD, and its
// file_progress says so. The output metadata keeps the input's and adds
// "cinch.lowrank.keep_ratio" and "cinch.lowrank.method" (the method asked for).
// At most one input tensor, its factors and its activation file are held in
// memory besides the mapped input (the statistics are width^2 doubles).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "cinch/lowrank/methods.hpp"
#include "cinch/lowrank/rank.hpp"
#include "cinch/lowrank/svd.hpp"

namespace cinch::lowrank {

enum class file_method { svd, asvd, svd_llm };

// "svd", "asvd", "svd-llm".
[[nodiscard]] constexpr std::string_view to_string(file_method m) noexcept {
  return m == file_method::asvd ? "asvd" : m == file_method::svd_llm ? "svd-llm" : "svd";
}

struct file_options {
  keep_ratio keep{0.5};
  file_method method = file_method::svd;
  // The directory of <tensor name>.npy activation files; asvd and svd_llm need it,
  // svd takes none.
  std::string calibration{};
  asvd_options asvd{};
  whitening_options whitening{};
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
  // The method that ran: file_options::method, or svd for a tensor without an
  // activation file (and for copied tensors).
  file_method method = file_method::svd;
  std::int64_t calibration_tokens = 0;  // rows of its activation file
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
// invalid regular expression, an output path equal to the input, a calibration
// directory missing for asvd / svd_llm (or given to svd, or not a directory),
// and what the decomposition throws (non-finite weights name the tensor). An
// activation file that load_npy rejects, that is not f32, not [tokens >= 1, n]
// or not finite throws with the file's path and the tensor's name; the output
// is then left incomplete (io::safetensors_file::open rejects it).
file_report compress_file(const std::string& input, const std::string& output, const file_options& options = {},
                          const std::function<void(const file_progress&)>& progress = {});

}  // namespace cinch::lowrank
