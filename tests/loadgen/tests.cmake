# sb-loadgen against a real sb-ingest and Kafka.
find_program(SB_PYTHON3_LOADGEN NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_loadgen
    COMMAND ${SB_PYTHON3_LOADGEN} ${CMAKE_CURRENT_LIST_DIR}/test_loadgen.py
    LABEL integration TIMEOUT 300)
