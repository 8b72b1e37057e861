// Umbrella header: the core types, dispatch, core operations and io. Interop
// adapters (Eigen, xtensor, DLPack) are opt-in: include cinch/interop/*.hpp.
#pragma once

#include "cinch/config.hpp"
#include "cinch/core/backend.hpp"
#include "cinch/core/convert.hpp"
#include "cinch/core/device.hpp"
#include "cinch/core/dtype.hpp"
#include "cinch/core/error.hpp"
#include "cinch/core/quantize.hpp"
#include "cinch/core/strided.hpp"
#include "cinch/core/tensor.hpp"
#include "cinch/core/tensor_view.hpp"
#include "cinch/io/bytes.hpp"
#include "cinch/io/crc32c.hpp"
#include "cinch/io/npy.hpp"
#include "cinch/io/stream.hpp"
