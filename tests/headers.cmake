# Every public header compiles on its own (one generated source per header),
# and the umbrella header pulls in nothing but the standard library.
file(GLOB_RECURSE cinch_public_headers RELATIVE ${PROJECT_SOURCE_DIR}/include CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/include/cinch/*.hpp)
set(header_sources)
foreach(header ${cinch_public_headers})
  if(header MATCHES "^cinch/interop/([a-z]+)\\.hpp$" AND NOT TARGET cinch_interop_${CMAKE_MATCH_1})
    continue()  # its library is not installed
  endif()
  string(MAKE_C_IDENTIFIER ${header} id)
  set(source ${CMAKE_CURRENT_BINARY_DIR}/headers/${id}.cpp)
  file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n")
  list(APPEND header_sources ${source})
endforeach()
add_library(cinch_header_check OBJECT EXCLUDE_FROM_ALL ${header_sources})
target_link_libraries(cinch_header_check PRIVATE cinch_headers ${CINCH_INTEROP_TARGETS})
add_test(NAME headers_compile_alone
         COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target cinch_header_check)
add_test(NAME umbrella_header_is_light
         COMMAND ${CMAKE_COMMAND} -DCXX=${CMAKE_CXX_COMPILER} -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/check_umbrella.cmake)
set_tests_properties(headers_compile_alone umbrella_header_is_light PROPERTIES LABELS headers)
