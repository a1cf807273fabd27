# The fault suite (docs/faults.md): the whole pipeline under sb-loadgen with one fault per
# test. Each holds the stage_services lock (its services read whole topics); those that
# stop a component of the shared stack also run alone (RUN_SERIAL).
find_program(SB_PYTHON3_CHAOS NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
# One test per killed set, each with its own time limit (a stream each).
foreach(scn ingest_triage_reporter router slawatch)
    set(method test_kill_${scn}_mid_stream)
    sb_add_script_test(NAME itest_chaos_kill_${scn}
        COMMAND ${SB_PYTHON3_CHAOS} ${CMAKE_CURRENT_LIST_DIR}/test_kill.py KillTest.${method}
        LABEL integration TIMEOUT 600 LOCK stage_services)
endforeach()
foreach(scn kafka:KafkaOutageTest postgres:PostgresRestartTest redis:RedisLossTest
        poison:PoisonTest scaleout:ScaleOutTest)
    string(REPLACE ":" ";" scn "${scn}")
    list(GET scn 0 name)
    list(GET scn 1 class)
    sb_add_script_test(NAME itest_chaos_${name}
        COMMAND ${SB_PYTHON3_CHAOS} ${CMAKE_CURRENT_LIST_DIR}/test_faults.py ${class}
        LABEL integration TIMEOUT 600 LOCK stage_services)
endforeach()
# Stopping a component of the stack affects every test running beside it.
set_tests_properties(itest_chaos_kafka itest_chaos_postgres itest_chaos_redis
    PROPERTIES RUN_SERIAL TRUE)
