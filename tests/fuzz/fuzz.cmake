# Fuzzing the safetensors parser (tests/fuzz/fuzz_safetensors.cpp). Included from
# tests/CMakeLists.txt; paths are relative to this file.
#
#   fuzz_safetensors_replay  the target with replay_main.cpp: ctest runs it over the
#                            seed corpus and over 5000 seeded mutations of it.
#   fuzz_safetensors_asan    the same with the parser's source compiled again under
#                            AddressSanitizer, in builds that are not already ASan
#                            (where the compiler has it); the same two tests.
#   fuzz_safetensors         real libFuzzer, clang only, built on request:
#                              cmake --build <dir> --target fuzz_safetensors
#                              <dir>/tests/fuzz_safetensors -max_total_time=180 \
#                                  <new corpus dir> tests/fuzz/corpus/safetensors
set(cinch_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
set(cinch_fuzz_corpus ${cinch_fuzz_dir}/corpus/safetensors)
get_filename_component(cinch_fuzz_src ${CMAKE_CURRENT_LIST_DIR}/../../src ABSOLUTE)

# name: executable; sanitize: -fsanitize= value or empty (then the library's own
# parser is used); further arguments: extra sources.
function(cinch_add_fuzz_target name sanitize)
  add_executable(${name} ${cinch_fuzz_dir}/fuzz_safetensors.cpp ${ARGN})
  target_link_libraries(${name} PRIVATE cinch::cinch)
  target_compile_options(${name} PRIVATE ${CINCH_WARNINGS})
  if(sanitize)
    # The parser compiled into the executable with the sanitizer: its definitions
    # come first, so the library's copy of that object is never linked.
    target_sources(${name} PRIVATE ${cinch_fuzz_src}/io/safetensors.cpp)
    target_include_directories(${name} PRIVATE ${cinch_fuzz_src})
    target_link_libraries(${name} PRIVATE nlohmann_json::nlohmann_json)
    target_compile_options(${name} PRIVATE -fsanitize=${sanitize} -fno-omit-frame-pointer -g)
    target_link_options(${name} PRIVATE -fsanitize=${sanitize})
  endif()
endfunction()

function(cinch_add_fuzz_tests name)
  add_test(NAME ${name}_corpus COMMAND ${name} ${cinch_fuzz_corpus})
  add_test(NAME ${name}_mutations COMMAND ${name} --mutations 5000 --seed 1 ${cinch_fuzz_corpus})
  set_tests_properties(${name}_corpus ${name}_mutations PROPERTIES LABELS fuzz
                       PASS_REGULAR_EXPRESSION "ran without a crash")
endfunction()

cinch_add_fuzz_target(fuzz_safetensors_replay "" ${cinch_fuzz_dir}/replay_main.cpp)
cinch_add_fuzz_tests(fuzz_safetensors_replay)

include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS -fsanitize=address)
set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=address)
check_cxx_source_compiles("int main() { return 0; }" CINCH_HAVE_ASAN)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
if(CINCH_HAVE_ASAN AND NOT CMAKE_CXX_FLAGS MATCHES "sanitize=address")
  cinch_add_fuzz_target(fuzz_safetensors_asan address ${cinch_fuzz_dir}/replay_main.cpp)
  cinch_add_fuzz_tests(fuzz_safetensors_asan)
endif()

if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  cinch_add_fuzz_target(fuzz_safetensors fuzzer,address)
  set_target_properties(fuzz_safetensors PROPERTIES EXCLUDE_FROM_ALL ON)
endif()
