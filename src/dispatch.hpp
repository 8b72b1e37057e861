// Internal dispatch helpers shared by the compiled operations.
#pragma once

#include <string_view>

#include "cinch/core/device.hpp"
#include "host_kernels.hpp"

namespace cinch::detail {

// True when CINCH_BACKEND / force_backend select the scalar reference for host
// tensors; every kernel family picks its ref or simd table with it.
bool use_reference_kernels();

// The core host table so selected.
const host_kernels& active_host_kernels();

// Throws unless a backend for `where` is compiled in and the device exists.
void require_backend(std::string_view function, device where);

}  // namespace cinch::detail
