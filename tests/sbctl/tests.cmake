# sbctl: the CSV reader (unit), the PostgreSQL client's reconnect and re-prepare, and
# sbctl end to end against the local stack (integration).
sb_add_test(NAME test_sbctl_csv SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_csv.c
    LABEL unit TIMEOUT 60)
sb_add_test(NAME itest_pg_reconnect
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pg_reconnect.c ${PROJECT_SOURCE_DIR}/tests/testutil.c
    LIBS Threads::Threads LABEL integration TIMEOUT 120)
sb_add_script_test(NAME itest_sbctl COMMAND bash tests/integration/sbctl_test.sh
    LABEL integration TIMEOUT 300)
