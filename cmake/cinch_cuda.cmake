# The optional CUDA backend, cinch::cuda. CINCH_CUDA=AUTO builds it when nvcc is
# found (no GPU is needed to compile); ON requires it; OFF skips it.
if(CINCH_CUDA STREQUAL "OFF")
  return()
endif()
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(CINCH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CINCH_CUDA=ON but no CUDA compiler was found")
  endif()
  message(STATUS "cinch: no nvcc found, building without the CUDA backend")
  return()
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # Ampere and Hopper; nvcc 13 accepts sm_75 and newer.
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# One translation unit per kernel family, so the two CI cores compile them in parallel.
file(GLOB cinch_cuda_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu)
add_library(cinch_cuda STATIC ${cinch_cuda_sources})
add_library(cinch::cuda ALIAS cinch_cuda)
set_target_properties(cinch_cuda PROPERTIES EXPORT_NAME cuda POSITION_INDEPENDENT_CODE ON)
target_include_directories(cinch_cuda PRIVATE ${PROJECT_SOURCE_DIR}/src)
# CMake 3.25 cannot request C++20 from nvcc 13 (cuda_std_20 is unknown): pass it directly.
target_compile_options(cinch_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr>)
target_link_libraries(cinch_cuda PUBLIC cinch_headers PRIVATE CUDA::cudart)
message(STATUS "cinch: CUDA backend for architectures ${CMAKE_CUDA_ARCHITECTURES}")
