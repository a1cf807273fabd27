# Integration tests of the common library against the local stack.
foreach(t kafka redis stage)
    sb_add_test(NAME itest_${t}
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c ${CMAKE_CURRENT_LIST_DIR}/kafkautil.c
                ${PROJECT_SOURCE_DIR}/tests/testutil.c
        LABEL integration TIMEOUT 180)
endforeach()
sb_add_script_test(NAME itest_stack COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/stack_test.sh
    LABEL integration TIMEOUT 90)
