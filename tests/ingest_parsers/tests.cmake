# The email (GMime) and WeChat (expat) channel parsers on the committed real-format
# fixtures of tests/data/channels (see make_fixtures.py there).
foreach(t email_fixtures wechat_fixtures html2text)
    sb_add_test(NAME test_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c LIBS sbingest
        LABEL unit)
endforeach()
