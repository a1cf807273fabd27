# Unit tests of the common library (pure logic, no stack needed).
foreach(t config event uuid7 metrics log http)
    sb_add_test(NAME test_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c ${PROJECT_SOURCE_DIR}/tests/testutil.c LABEL unit TIMEOUT 60)
endforeach()
sb_add_script_test(NAME config_errors COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/config_errors_test.sh LABEL unit TIMEOUT 120)
