# sb-reporter's projection against the real stack (events in, PostgreSQL rows out).
find_program(SB_PYTHON3_REPORTER NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_reporter_projection
    COMMAND ${SB_PYTHON3_REPORTER} ${CMAKE_CURRENT_LIST_DIR}/test_projection.py
    LABEL integration TIMEOUT 400 LOCK stage_services)
sb_add_script_test(NAME itest_reporter_bi
    COMMAND ${SB_PYTHON3_REPORTER} ${CMAKE_CURRENT_LIST_DIR}/test_bi.py
    LABEL integration TIMEOUT 300 LOCK stage_services)
sb_add_script_test(NAME itest_reporter_api
    COMMAND ${SB_PYTHON3_REPORTER} ${CMAKE_CURRENT_LIST_DIR}/test_api.py
    LABEL integration TIMEOUT 300 LOCK stage_services)
sb_add_script_test(NAME itest_reporter_staffing
    COMMAND ${SB_PYTHON3_REPORTER} ${CMAKE_CURRENT_LIST_DIR}/test_staffing.py
    LABEL integration TIMEOUT 300 LOCK stage_services)
# It starts its reporter with staffing.* of its own, which every reporter publishes to the
# one staffing_settings row: no other reporter may run meanwhile.
set_tests_properties(itest_reporter_staffing PROPERTIES RUN_SERIAL TRUE)
