# sbctl and the PostgreSQL client.
sb_add_test(NAME test_csv SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_csv.c LIBS sbctl_csv LABEL unit)
sb_add_test(NAME itest_pg SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pg.c ${PROJECT_SOURCE_DIR}/tests/testutil.c
    LABEL integration TIMEOUT 120)
sb_add_script_test(NAME itest_sbctl COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sbctl_test.sh
    LABEL integration TIMEOUT 300)
