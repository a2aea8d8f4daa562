# Small helpers so that every component is declared the same way.

# Warnings are errors for our own code (third-party headers are included as SYSTEM).
function(wec_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Werror)
  # g++ 12 reports false positives inside libstdc++'s std::string at -O2: -Wmaybe-uninitialized
  # for brace-initialised aggregates holding strings (GCC bug 105562) and -Wrestrict for
  # "literal" + std::string&& (GCC bug 105329). Both are fixed in later GCC releases.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-restrict)
  endif()
  # Sanitizer instrumentation defeats g++ 12's range tracking: -Wstringop-overflow and
  # -Warray-bounds then report impossible sizes on checked vector::resize calls (GCC's manual warns
  # that -fsanitize can cause false warnings). Sanitizer builds look for runtime faults; the plain
  # build, which CI runs first, is the one that keeps warnings fatal.
  if(WEC_SANITIZE)
    target_compile_options(${target} PRIVATE -Wno-error)
  endif()
endfunction()

# wec_library(<component> SOURCES ... [DEPS ...])
# Creates the static library wec_<component> from lib/<component>. Public headers live next to
# the sources and are included as "<component>/<header>.hpp".
function(wec_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(wec_${name} STATIC ${ARG_SOURCES})
  add_library(wec::${name} ALIAS wec_${name})
  target_include_directories(wec_${name} PUBLIC ${PROJECT_SOURCE_DIR}/lib)
  target_link_libraries(wec_${name} PUBLIC ${ARG_DEPS})
  wec_warnings(wec_${name})
  # WEC_UNITY: the sources of a library compiled in batches of 8 (one translation unit each), so
  # that the Asio, Beast, pugixml and nlohmann headers and their instantiations are compiled once
  # per batch instead of once per source (docs/dev/ci.md). Internal names must then be unique
  # within a component; a source that cannot be batched says why (lib/store). -DWEC_UNITY=OFF
  # compiles each source alone (shorter rebuilds after an edit; shows a missing #include).
  if(WEC_UNITY)
    set_target_properties(wec_${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
    # A source's anonymous-namespace types held by its Impl class: g++ warns when such a class is
    # defined in an included file, which every source of a unity batch is.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(wec_${name} PRIVATE -Wno-subobject-linkage)
    endif()
  endif()
endfunction()

# The flags of test code: warnings as for our own code, and -Og in Release and in the sanitizer
# builds (the code under test, in lib/, keeps the build's -O3 or -O1): the optimiser on GoogleTest
# code was the largest part of those builds (-O3 took 1.5 times as long as -O1, a third of the cold
# Release build's CPU). -Og compiles nearly as fast as -O0 and runs nearly as fast as -O1
# (formats_test.cpp under ASan: 25.3 CPU-s at -O1, 12.6 at -Og, 11.7 at -O0; sldc_reference_test
# runs 47 s at -O1, 50 s at -Og, 153 s at -O0, its reference decoder being test code).
function(wec_test_flags target)
  wec_warnings(${target})
  if(WEC_SANITIZE)
    target_compile_options(${target} PRIVATE -Og)
  else()
    target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-Og>)
  endif()
endfunction()

# wec_test_pch(): the precompiled header that every wec_test() reuses (GoogleTest and the standard
# headers the tests include most), built once per build tree with the tests' flags. Parsing
# GoogleTest alone is ~2.2 CPU-s in each of the 91 test files; through the precompiled header
# they took 402 CPU-s instead of 483 (cold Release build), ~0.9 CPU-s less per file. Called by
# tests/CMakeLists.txt before the tests.
function(wec_test_pch)
  add_library(wec_test_pch OBJECT ${PROJECT_SOURCE_DIR}/tests/support/pch.cpp)
  target_link_libraries(wec_test_pch PRIVATE GTest::gtest)
  wec_test_flags(wec_test_pch)
  target_precompile_headers(wec_test_pch PRIVATE
    <gtest/gtest.h> <algorithm> <chrono> <cstdint> <cstdlib> <filesystem> <fstream> <map>
    <memory> <set> <sstream> <string> <string_view> <thread> <vector>)
endfunction()

# wec_test(<name> SOURCES ... [DEPS ...] [LABELS ...] [ONE_PROCESS])
# A GoogleTest executable registered with ctest (one ctest entry per TEST via gtest_discover_tests).
# ONE_PROCESS: a single ctest entry running every TEST in one process instead, for suites whose
# SetUpTestSuite is expensive and shared (tests/package builds a .deb once).
# Tests find their data through the WEC_TEST_DATA and WEC_SHARED_DIR compile definitions.
function(wec_test name)
  cmake_parse_arguments(ARG "ONE_PROCESS" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name} PRIVATE
    WEC_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
    WEC_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    WEC_BINARY_DIR="${PROJECT_BINARY_DIR}")
  wec_test_flags(${name})
  if(TARGET wec_test_pch)
    target_precompile_headers(${name} REUSE_FROM wec_test_pch)
  endif()
  if(ARG_ONE_PROCESS)
    add_test(NAME ${name} COMMAND ${name})
    if(ARG_LABELS)
      set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}")
    endif()
    return()
  endif()
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60)
  # Labels are set after discovery by a script of our own: gtest_discover_tests (CMake 3.25)
  # flattens a list passed in PROPERTIES, so LABELS "a;b" became LABELS a plus a property "b".
  if(ARG_LABELS)
    set(labels_script "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
    file(WRITE "${labels_script}"
      "if(${name}_TESTS)\n"
      "  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\")\n"
      "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_script}")
  endif()
endfunction()

# wec_fuzzer(<name> SOURCES ... [DEPS ...]) — a libFuzzer target (only with WEC_FUZZ=ON, clang).
# Each one is also a dependency of the `fuzzers` target, which builds them all (and only the
# libraries they use): what scripts/fuzz-smoke.sh builds, whatever the generator.
function(wec_fuzzer name)
  if(NOT WEC_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  wec_warnings(${name})
  if(NOT TARGET fuzzers)
    add_custom_target(fuzzers)
  endif()
  add_dependencies(fuzzers ${name})
endfunction()

# WEC_COMPONENTS (a ;-list, developer convenience) limits this to the named folders.
# Adds every immediate sub-directory of the current source dir that has a CMakeLists.txt.
macro(wec_add_subdirectories)
  file(GLOB _wec_children RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _wec_children)
  foreach(_child ${_wec_children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_child}
       AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_child}/CMakeLists.txt
       AND NOT _child IN_LIST WEC_SKIP_SUBDIRECTORIES
       AND (NOT WEC_COMPONENTS OR _child IN_LIST WEC_COMPONENTS))
      add_subdirectory(${_child})
    endif()
  endforeach()
endmacro()
