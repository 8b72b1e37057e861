// Version and portability macros shared by every cinch header.
#pragma once

#define CINCH_VERSION_MAJOR 0
#define CINCH_VERSION_MINOR 1
#define CINCH_VERSION_PATCH 0
#define CINCH_VERSION_STRING "0.1.0"

// Functions the CUDA backend calls on the device as well as the host (the
// reference conversions): the GPU then runs the very arithmetic of the spec.
#if defined(__CUDACC__)
#define CINCH_HOST_DEVICE __host__ __device__
#else
#define CINCH_HOST_DEVICE
#endif
