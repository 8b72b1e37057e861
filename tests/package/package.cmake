# Packaging: install into a temporary prefix and build a consumer with
# find_package, and build the same consumer with add_subdirectory.
set(cinch_prefix ${CMAKE_BINARY_DIR}/package-prefix)
set(consumer_options -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
if(CINCH_CCACHE)
  list(APPEND consumer_options -DCMAKE_CXX_COMPILER_LAUNCHER=${CINCH_CCACHE})
endif()

add_test(NAME package_install COMMAND ${CMAKE_COMMAND} --install ${CMAKE_BINARY_DIR} --prefix ${cinch_prefix})
set_tests_properties(package_install PROPERTIES FIXTURES_SETUP cinch_installed)

add_test(NAME package_find_package
         COMMAND ${CMAKE_CTEST_COMMAND} --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/package/consumer
                 ${CMAKE_BINARY_DIR}/package-find-package --build-generator ${CMAKE_GENERATOR}
                 --build-options -DCMAKE_PREFIX_PATH=${cinch_prefix} ${consumer_options}
                 --test-command consumer)
set_tests_properties(package_find_package PROPERTIES FIXTURES_REQUIRED cinch_installed)

add_test(NAME package_add_subdirectory
         COMMAND ${CMAKE_CTEST_COMMAND} --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/package/consumer
                 ${CMAKE_BINARY_DIR}/package-add-subdirectory --build-generator ${CMAKE_GENERATOR}
                 --build-options -DCINCH_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DCINCH_CUDA=OFF ${consumer_options}
                 --test-command consumer)
set_tests_properties(package_find_package package_add_subdirectory PROPERTIES LABELS package TIMEOUT 900)
