# Benchmark programs (run by tests/bench/*/run.sh from make bench; not tests).
add_executable(sb-passthrough ${CMAKE_CURRENT_LIST_DIR}/passthrough.c)
target_link_libraries(sb-passthrough PRIVATE sbcommon)
add_executable(sb-triage-bench ${CMAKE_CURRENT_LIST_DIR}/triage/bench_classify.c)
target_link_libraries(sb-triage-bench PRIVATE sbtriage)
set_target_properties(sb-passthrough sb-triage-bench PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
