# cmake -DCXX=<compiler> -DINCLUDE_DIR=<include> -P check_umbrella.cmake
# Fails if cinch/cinch.hpp reaches any header outside the standard library.
execute_process(COMMAND ${CXX} -std=c++20 -E -x c++ -I${INCLUDE_DIR} ${INCLUDE_DIR}/cinch/cinch.hpp
                OUTPUT_VARIABLE preprocessed RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "cinch/cinch.hpp does not preprocess")
endif()
foreach(heavy "/Eigen/" "/xtensor/" "/fmt/" "/hwy/" "cuda_runtime" "dlpack.h")
  string(FIND "${preprocessed}" "${heavy}" found)
  if(NOT found EQUAL -1)
    message(FATAL_ERROR "cinch/cinch.hpp includes ${heavy} headers; core headers must use the standard library only")
  endif()
endforeach()
message(STATUS "cinch/cinch.hpp includes only the standard library")
