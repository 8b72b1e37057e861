// Greedy rank allocation: a max-heap of each layer's next singular value.
#include <algorithm>
#include <cmath>
#include <queue>
#include <string>

#include "cinch/lowrank/allocate.hpp"

namespace cinch::lowrank {
namespace {

constexpr std::string_view fn = "lowrank::allocate_ranks";

void check_layer(const layer_spectrum& l, std::size_t index) {
  if (l.rows < 1 || l.cols < 1)
    cinch::detail::fail(errc::invalid_argument, fn, "layer ", index, " must have rows and cols >= 1, got ", l.rows,
                        " x ", l.cols);
  if (l.sigma.empty() || std::int64_t(l.sigma.size()) > std::min(l.rows, l.cols))
    cinch::detail::fail(errc::invalid_argument, fn, "layer ", index, " must have 1 to min(m, n) = ",
                        std::min(l.rows, l.cols), " singular values, got ", l.sigma.size());
  for (std::size_t i = 0; i < l.sigma.size(); ++i)
    if (!(l.sigma[i] >= 0 && std::isfinite(l.sigma[i])) || (i > 0 && l.sigma[i] > l.sigma[i - 1]))
      cinch::detail::fail(errc::invalid_argument, fn, "layer ", index,
                          " singular values must be finite, >= 0 and descending, got ", std::to_string(l.sigma[i]),
                          " at ", i);
  if (!(l.weight >= 0 && std::isfinite(l.weight)))
    cinch::detail::fail(errc::invalid_argument, fn, "layer ", index, " weight must be finite and >= 0, got ",
                        std::to_string(l.weight));
}

struct candidate {
  double gain;  // weight * sigma^2 / (m + n)
  std::size_t layer;
  bool operator<(const candidate& o) const {  // the heap's top: largest gain, then lowest layer
    return gain != o.gain ? gain < o.gain : layer > o.layer;
  }
};

}  // namespace

std::vector<std::int64_t> allocate_ranks(std::span<const layer_spectrum> layers, std::int64_t parameter_budget) {
  if (layers.empty()) cinch::detail::fail(errc::invalid_argument, fn, "layers must not be empty");
  std::int64_t minimum = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    check_layer(layers[i], i);
    minimum += layers[i].rows + layers[i].cols;
  }
  if (parameter_budget < minimum)
    cinch::detail::fail(errc::invalid_argument, fn, "parameter_budget must cover rank 1 in every layer (", minimum,
                        " parameters), got ", parameter_budget);

  std::vector<std::int64_t> ranks(layers.size(), 1);
  std::int64_t left = parameter_budget - minimum;
  auto next = [&](std::size_t i) {
    const layer_spectrum& l = layers[i];
    const double s = l.sigma[std::size_t(ranks[i])];
    return candidate{l.weight * s * s / double(l.rows + l.cols), i};
  };
  std::priority_queue<candidate> heap;
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].sigma.size() > 1) heap.push(next(i));
  while (!heap.empty()) {
    const std::size_t i = heap.top().layer;
    heap.pop();
    const std::int64_t cost = layers[i].rows + layers[i].cols;
    if (cost > left) continue;  // every later value of this layer costs the same: the layer is done
    left -= cost;
    if (std::size_t(++ranks[i]) < layers[i].sigma.size()) heap.push(next(i));
  }
  return ranks;
}

std::vector<std::int64_t> allocate_ranks(std::span<const layer_spectrum> layers, keep_ratio keep) {
  if (!(keep.value > 0.0 && keep.value <= 1.0))
    cinch::detail::fail(errc::invalid_argument, fn, "keep_ratio must be in (0, 1], got ", detail::ratio_text(keep.value));
  double dense = 0;
  for (const layer_spectrum& l : layers) dense += double(l.rows) * double(l.cols);
  return allocate_ranks(layers, static_cast<std::int64_t>(std::floor(keep.value * dense * (1.0 + 1e-12))));
}

}  // namespace cinch::lowrank
