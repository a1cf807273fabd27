# sb-ingest against the real stack (Python harness: HTTP in, Kafka out).
find_program(SB_PYTHON3_API NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_ingest_api
    COMMAND ${SB_PYTHON3_API} ${CMAKE_CURRENT_LIST_DIR}/test_ingest_api.py LABEL integration
    TIMEOUT 300)
# Stops the shared broker: runs alone.
sb_add_script_test(NAME itest_ingest_kafka_outage
    COMMAND ${SB_PYTHON3_API} ${CMAKE_CURRENT_LIST_DIR}/test_kafka_outage.py LABEL integration
    TIMEOUT 400)
set_tests_properties(itest_ingest_kafka_outage PROPERTIES RUN_SERIAL TRUE)
sb_add_script_test(NAME itest_ingest_ratelimit
    COMMAND ${SB_PYTHON3_API} ${CMAKE_CURRENT_LIST_DIR}/test_ratelimit.py LABEL integration
    TIMEOUT 120)
# Hangs the shared Redis: runs alone.
sb_add_script_test(NAME itest_ingest_redis_outage
    COMMAND ${SB_PYTHON3_API} ${CMAKE_CURRENT_LIST_DIR}/test_redis_outage.py LABEL integration
    TIMEOUT 300)
set_tests_properties(itest_ingest_redis_outage PROPERTIES RUN_SERIAL TRUE)
