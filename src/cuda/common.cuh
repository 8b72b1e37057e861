// Shared helpers of the CUDA backend: error mapping and a launch shape.
#pragma once

#include <cuda_runtime.h>

#include "cinch/core/error.hpp"

namespace cinch::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    detail::fail(status == cudaErrorMemoryAllocation ? errc::out_of_memory : errc::device_error, "cuda", what,
                 " failed: ", cudaGetErrorString(status));
}

// Makes `device` current for the scope, restoring the previous one.
class device_scope {
 public:
  explicit device_scope(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (device != previous_) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~device_scope() { cudaSetDevice(previous_); }
  device_scope(const device_scope&) = delete;
  device_scope& operator=(const device_scope&) = delete;

 private:
  int previous_ = 0;
};

// Waits for the launch on the default stream and reports its errors.
inline void finish(const char* kernel) {
  check(cudaGetLastError(), kernel);
  check(cudaDeviceSynchronize(), kernel);
}

}  // namespace cinch::cuda
