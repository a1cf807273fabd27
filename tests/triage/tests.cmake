# sb-triage against the real stack (Python harness: kcat in and out, schemas checked).
find_program(SB_PYTHON3_TRIAGE NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_triage_stack
    COMMAND ${SB_PYTHON3_TRIAGE} ${CMAKE_CURRENT_LIST_DIR}/test_triage_stack.py
    LABEL integration TIMEOUT 400 LOCK stage_services)
