// Internals shared by the token methods: checked views of the inputs, packed
// rows for the similarity kernels, threading, budgets.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cinch/core/tensor.hpp"
#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"
#include "cinch/tokens/similarity.hpp"
#include "tokens/kernels.hpp"

namespace cinch::tokens::detail {

// Rows of a host f32 matrix ([N, D] or [T, n, D]) with dense rows.
struct matrix {
  const float* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> offsets;  // element offset of each row from data

  [[nodiscard]] const float* row(std::int64_t i) const noexcept { return data + offsets[std::size_t(i)]; }
  [[nodiscard]] bool empty() const noexcept { return rows == 0; }
};

// Checks dtype, device, rank (2, or 3 when allow_frames), a dense innermost
// dimension, `rows` rows when rows >= 0, and finite values.
matrix matrix_of(std::string_view fn, std::string_view name, const tensor_view& v, std::int64_t rows = -1,
                 bool allow_frames = true);

// A checked f32 vector of n values ([n], or [T, n / T] when allow_frames).
std::vector<float> vector_of(std::string_view fn, std::string_view name, const tensor_view& v, std::int64_t n);

// The number of visual tokens: rows of features, else keys, else cls_attention,
// else columns of text_attention. Throws when none is given or N = 0.
std::int64_t token_count(std::string_view fn, const inputs& in);

// The similarity metric: keys when given, else features (required then).
matrix metric_of(std::string_view fn, const inputs& in, std::int64_t n);

// Per-token scores: cls_attention when given, else the mean of the
// text_attention rows; throws naming both when neither is there.
std::vector<float> scores_of(std::string_view fn, const inputs& in, std::int64_t n);

// keep checked: >= 1 (errc::invalid_argument otherwise), clamped to n.
std::int64_t checked_budget(std::string_view fn, std::int64_t keep, std::int64_t n);

// The grid, checked against n tokens; required: throw when it is empty.
grid checked_grid(std::string_view fn, const grid& g, std::int64_t n, bool required = true);

// A float buffer aligned for the SIMD kernels.
class floats {
 public:
  explicit floats(std::int64_t count);
  [[nodiscard]] float* data() const noexcept { return storage_.data<float>(); }

 private:
  tensor storage_;
};

// Rows packed for the similarity kernels (a subset of a matrix's rows when
// `rows` is given), with inverse norms when `norms`.
class packed {
 public:
  packed(const cinch::detail::token_kernels& k, const matrix& m, std::span<const std::int64_t> rows = {},
         bool norms = true);
  packed(const cinch::detail::token_kernels& k, const float* x, const std::int64_t* offsets, std::int64_t n,
         std::int64_t d, bool norms = true);

  [[nodiscard]] const cinch::detail::token_kernels& kernels() const noexcept { return *k_; }
  [[nodiscard]] const float* data() const noexcept { return panels_.data(); }
  [[nodiscard]] const float* inv() const noexcept { return inv_.empty() ? nullptr : inv_.data(); }
  [[nodiscard]] std::int64_t rows() const noexcept { return n_; }
  [[nodiscard]] std::int64_t dim() const noexcept { return d_; }

 private:
  const cinch::detail::token_kernels* k_;
  std::int64_t n_, d_;
  floats panels_;
  std::vector<float> inv_;
};

// out[i * ldo + j] = cosine (or dot) of a's row i and b's row j, threaded over a's rows.
void dots(const packed& a, const packed& b, bool cosine, float* out, std::int64_t ldo);

// Row-wise max and argmax of the same matrix, never formed; skip_self leaves j == i out.
void dots_argmax(const packed& a, const packed& b, bool cosine, bool skip_self, float* best, std::int64_t* index);

// ref::nearest of the packed rows: max over j != i of cos_sym(i, j), by halves of
// the Gram matrix, threaded over row ranges of equal area.
std::vector<float> nearest(const packed& x);

// cosine(a_i, b_i) for rows a_rows[i] and b_rows[i] of m.
std::vector<float> pair_cosines(const matrix& m, std::span<const std::int64_t> a_rows,
                                std::span<const std::int64_t> b_rows);

// Density-peak clustering (DPC-kNN) of the given rows of m, as SparseVLM,
// FastVID and HoliTom use it, without the references' random tie noise:
//   distance  D_ij = ||x_i - x_j|| / sqrt(d)
//   density   rho_i = exp(-mean of the k smallest D_ij^2 over j != i)
//   delta     delta_i = min D_ij over the rows that rank above i (higher rho, or
//             equal rho and a lower index); the top row takes max_j D_ij
//   score     rho_i * delta_i
struct density_peaks {
  std::vector<float> score;                 // per row
  std::vector<float> distance;              // n x n
};
density_peaks density_peaks_of(const matrix& m, std::span<const std::int64_t> rows, std::int64_t k);

// The `clusters` rows of highest score are centres (ties toward the lower
// index); every row joins its nearest centre (ties toward the lower centre).
// Returns, per row, the position (in `rows`) of its centre.
std::vector<std::int64_t> cluster_by_peaks(const density_peaks& peaks, std::int64_t clusters);

// Union-find with path halving; the root of a set is its lowest member.
class disjoint_sets {
 public:
  explicit disjoint_sets(std::int64_t n);
  std::int64_t find(std::int64_t i) noexcept;
  bool unite(std::int64_t a, std::int64_t b) noexcept;  // false if already joined
  [[nodiscard]] std::int64_t count() const noexcept { return count_; }

 private:
  std::vector<std::int64_t> parent_;
  std::int64_t count_;
};

// top_k over a vector (tokens::top_k), as an ascending index list.
std::vector<std::int64_t> top_k_sorted(std::span<const float> scores, std::int64_t k);

#if defined(_OPENMP)
int omp_threads();
#endif

// Runs fn(begin, end) over [0, n) in chunks of `grain` (a multiple of `align`),
// over OpenMP threads when `work` (a rough operation count) makes it worth it.
template <class Fn>
void parallel_chunks(std::int64_t n, std::int64_t align, double work, Fn fn) {
  int threads = 1;
#if defined(_OPENMP)
  threads = work > 2e5 ? omp_threads() : 1;
#endif
  std::int64_t grain = (n + threads - 1) / threads;
  grain = (grain + align - 1) / align * align;
  if (grain < 1) grain = 1;
  const std::int64_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t begin = c * grain;
    fn(begin, begin + grain < n ? begin + grain : n);
  }
}

}  // namespace cinch::tokens::detail
