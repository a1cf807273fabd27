# The fault suite (docs/faults.md): the whole pipeline under sb-loadgen with one fault per
# test. Each holds the stage_services lock (its services read whole topics); those that
# stop a component of the shared stack also run alone (RUN_SERIAL).
find_program(SB_PYTHON3_CHAOS NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_chaos_kill
    COMMAND ${SB_PYTHON3_CHAOS} ${CMAKE_CURRENT_LIST_DIR}/test_kill.py
    LABEL integration TIMEOUT 600 LOCK stage_services)
