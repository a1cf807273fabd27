# The ticket life cycle end to end (sb-ingest and sb-reporter on the real stack).
find_program(SB_PYTHON3_LIFECYCLE NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME e2e_lifecycle
    COMMAND ${SB_PYTHON3_LIFECYCLE} ${CMAKE_CURRENT_LIST_DIR}/test_lifecycle.py LABEL e2e
    TIMEOUT 400 LOCK stage_services)
# The life-cycle table and the customer follow-up rules (pure logic).
sb_add_test(NAME test_lifecycle_rules SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_lifecycle_rules.c
    LIBS sbingest LABEL unit)
