# The dashboard in headless Debian chromium against sb-reporter on the real stack; skipped
# (77) when chromium is absent. The screenshot goes to build/test-artifacts/.
find_program(SB_PYTHON3_DASHBOARD NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_reporter_dashboard
    COMMAND ${SB_PYTHON3_DASHBOARD} ${CMAKE_CURRENT_LIST_DIR}/test_dashboard.py
    LABEL integration TIMEOUT 400 LOCK stage_services)
set_tests_properties(itest_reporter_dashboard PROPERTIES SKIP_RETURN_CODE 77)
