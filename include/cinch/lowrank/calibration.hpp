// lowrank::calibration: streaming statistics of the inputs of one linear layer,
// the data that activation-aware compression (ASVD, SVD-LLM, EoRA) needs.
//
// Batches of activations x [tokens, width] are added one at a time; memory is
// bounded by the width, never by the token count: the Gram matrix X^T X
// (width^2 doubles, accumulated in double on the lowrank GEMM), per-channel sums
// of |x| and maxima of |x|. Calibrations of shards merge.
//
// A calibration made with_reference also takes, for the same tokens, the inputs
// x_ref the layer sees in the original model, and accumulates X_ref^T X: what the
// closed-form update of SVD-LLM (lowrank::update_left) fits the compressed layer to.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/core/tensor_view.hpp"

namespace cinch::lowrank {

class calibration {
 public:
  // Throws errc::invalid_argument for width < 1.
  explicit calibration(std::int64_t width, bool with_reference = false);

  // x: f32 on the CPU, any rank >= 1 whose last dimension is the width (every other
  // dimension counts tokens), any strides. Throws errc::shape_mismatch for another
  // width, errc::invalid_argument for non-finite values or another dtype/device, and
  // when the reference is missing (with_reference) or unexpected (without).
  void add(const tensor_view& x);
  void add(const tensor_view& x, const tensor_view& x_reference);
  // Adds another calibration's statistics (same width and kind, else errc::shape_mismatch
  // or errc::invalid_argument).
  void merge(const calibration& other);

  [[nodiscard]] std::int64_t width() const noexcept { return width_; }
  [[nodiscard]] std::int64_t tokens() const noexcept { return tokens_; }
  [[nodiscard]] bool with_reference() const noexcept { return !cross_.empty(); }
  // X^T X, [width, width] row-major, symmetric.
  [[nodiscard]] std::span<const double> gram() const noexcept { return gram_; }
  // X_ref^T X, [width, width] row-major; empty without reference.
  [[nodiscard]] std::span<const double> cross() const noexcept { return cross_; }
  // Per channel: sum over tokens of |x| and the largest |x|.
  [[nodiscard]] std::span<const double> abs_sum() const noexcept { return abs_sum_; }
  [[nodiscard]] std::span<const double> abs_max() const noexcept { return abs_max_; }
  // abs_sum / tokens (zeros before the first token).
  [[nodiscard]] std::vector<double> mean_abs() const;

 private:
  void accumulate(const tensor_view& x, const tensor_view* x_reference);

  std::int64_t width_;
  std::int64_t tokens_ = 0;
  std::vector<double> gram_, cross_, abs_sum_, abs_max_;
};

}  // namespace cinch::lowrank
