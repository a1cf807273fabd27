# sbctl replay against the real stack: the rebuilt projection equals the live one.
find_program(SB_PYTHON3_REPLAY NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
sb_add_script_test(NAME itest_replay
    COMMAND ${SB_PYTHON3_REPLAY} ${CMAKE_CURRENT_LIST_DIR}/test_replay.py
    LABEL integration TIMEOUT 400 LOCK stage_services)
