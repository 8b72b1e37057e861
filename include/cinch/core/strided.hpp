// strided<T, Rank>: the typed, trivially copyable view that kernels take by
// value, CUDA __global__ functions included. Strides are in elements.
#pragma once

#include <cstdint>

#include "cinch/config.hpp"

namespace cinch {

template <class T, int Rank>
struct strided {
  static_assert(Rank >= 1 && Rank <= 6, "cinch::strided: rank must be 1..6");
  T* data;
  std::int64_t shape[Rank];
  std::int64_t strides[Rank];

  template <class... Index>
  CINCH_HOST_DEVICE T& operator()(Index... index) const noexcept {
    static_assert(sizeof...(Index) == Rank, "cinch::strided: one index per dimension");
    const std::int64_t idx[] = {static_cast<std::int64_t>(index)...};
    std::int64_t offset = 0;
    for (int d = 0; d < Rank; ++d) offset += idx[d] * strides[d];
    return data[offset];
  }
};

}  // namespace cinch
