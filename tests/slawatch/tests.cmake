# sb-slawatch against the real stack (Python harness: kcat in and out, schemas checked).
# One test per class, each with its own time limit (the ASan build runs them slower).
find_program(SB_PYTHON3_SLAWATCH NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
foreach(cls stack:SlawatchStackTest restart:SlawatchRestartTest recovery:SlawatchRecoveryTest
        team:SlawatchTeamTest)
    string(REPLACE ":" ";" cls "${cls}")
    list(GET cls 0 name)
    list(GET cls 1 class)
    sb_add_script_test(NAME itest_slawatch_${name}
        COMMAND ${SB_PYTHON3_SLAWATCH} ${CMAKE_CURRENT_LIST_DIR}/test_slawatch_stack.py ${class}
        LABEL integration TIMEOUT 900 LOCK stage_services)
endforeach()
