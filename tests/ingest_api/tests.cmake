# sb-ingest against the real stack (Python harness: HTTP in, Kafka out).
find_program(SB_PYTHON3_API NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_ingest_api
    COMMAND ${SB_PYTHON3_API} ${CMAKE_CURRENT_LIST_DIR}/test_ingest_api.py LABEL integration
    TIMEOUT 300)
