# sb-slawatch pure logic (services/slawatch): time zones and calendars, clocks and the
# escalation ladder, policies, timers and the engine with its restart, the roster and
# what a ticket's team changes; and the benchmark program that
# tests/bench/slawatch/run.sh runs (not a test).
sb_add_test(NAME test_sla_calendar SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_calendar.c
    LIBS sbslacore LABEL unit)
sb_add_test(NAME test_sla_clock SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_clock.c
    LIBS sbslacore LABEL unit)
sb_add_test(NAME test_sla_policy SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_policy.c
    LIBS sbslacore LABEL unit)
sb_add_test(NAME test_sla_timers SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_timers.c
    LIBS sbslacore LABEL unit)
sb_add_test(NAME test_sla_team SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_team.c
    LIBS sbslacore LABEL unit)
add_executable(sb-slawatch-bench ${PROJECT_SOURCE_DIR}/tests/bench/slawatch/bench_slawatch.c)
target_link_libraries(sb-slawatch-bench PRIVATE sbslacore)
set_target_properties(sb-slawatch-bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
