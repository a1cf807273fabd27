# sb-slawatch against the real stack (Python harness: kcat in and out, schemas checked).
find_program(SB_PYTHON3_SLAWATCH NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_slawatch_stack
    COMMAND ${SB_PYTHON3_SLAWATCH} ${CMAKE_CURRENT_LIST_DIR}/test_slawatch_stack.py
    LABEL integration TIMEOUT 600 LOCK stage_services)
