# sb-router against the real stack (Python harness: kcat in and out, schemas checked).
find_program(SB_PYTHON3_ROUTER NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_router_stack
    COMMAND ${SB_PYTHON3_ROUTER} ${CMAKE_CURRENT_LIST_DIR}/test_router_stack.py
    LABEL integration TIMEOUT 600 LOCK stage_services)
