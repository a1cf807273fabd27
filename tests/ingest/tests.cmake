# The ingest channel parsers as pure modules, on the committed fixtures of tests/data.
# The WeChat channel is compiled in from source (with the contact module its output is
# checked against) and links expat itself.
if(NOT TARGET PkgConfig::EXPAT)
    pkg_check_modules(EXPAT REQUIRED IMPORTED_TARGET expat)
endif()
sb_add_test(NAME test_wechat
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_wechat.c
            ${PROJECT_SOURCE_DIR}/services/ingest/wechat.c
            ${PROJECT_SOURCE_DIR}/services/ingest/contact.c
    INCLUDES ${PROJECT_SOURCE_DIR}/services/ingest
    LABEL unit LIBS PkgConfig::EXPAT)
