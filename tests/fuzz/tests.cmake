# libFuzzer targets of every parser of untrusted input, built only in the fuzz build
# (clang, -DSB_FUZZ=ON): tests/run.sh runs each for a bounded time on a copy of its
# seed corpus (tests/fuzz/corpus/<name>). Inputs that ever crashed are kept as
# regression files in tests/data and replayed by the unit tests.
if(SB_FUZZ)
    file(GLOB SB_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
    foreach(src ${SB_FUZZ_TARGETS})
        get_filename_component(name ${src} NAME_WE)
        string(REPLACE "fuzz_" "" corpus ${name})
        add_executable(${name} ${src})
        target_link_libraries(${name} PRIVATE sbingest sbtriage)
        target_compile_definitions(${name} PRIVATE SB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
        target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
        target_link_options(${name} PRIVATE -fsanitize=fuzzer)
        set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
        add_test(NAME ${name}
            COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_fuzzer.sh $<TARGET_FILE:${name}>
                    ${CMAKE_CURRENT_LIST_DIR}/corpus/${corpus})
        set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300)
    endforeach()
endif()
