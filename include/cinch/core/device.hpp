// Where a tensor's memory lives. The kind values equal DLPack's DLDeviceType.
#pragma once

#include <cstdint>
#include <string>

namespace cinch {

enum class device_kind : std::int32_t { cpu = 1, cuda = 2 };

struct device {
  device_kind kind = device_kind::cpu;
  std::int32_t index = 0;

  friend constexpr bool operator==(const device&, const device&) = default;
};

inline constexpr device cpu_device{};
[[nodiscard]] constexpr device cuda_device(std::int32_t index = 0) noexcept {
  return {device_kind::cuda, index};
}

[[nodiscard]] inline std::string to_string(device d) {
  return d.kind == device_kind::cpu ? std::string("cpu") : "cuda:" + std::to_string(d.index);
}

}  // namespace cinch
