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

# The email channel (GMime) and its HTML reducer; the email test also checks each parsed
# contact against the generic contact's validation (contact.c).
if(NOT TARGET PkgConfig::GMIME)
    pkg_check_modules(GMIME REQUIRED IMPORTED_TARGET gmime-3.0)
endif()
sb_add_test(NAME test_email
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_email.c
            ${PROJECT_SOURCE_DIR}/services/ingest/email.c
            ${PROJECT_SOURCE_DIR}/services/ingest/html2text.c
            ${PROJECT_SOURCE_DIR}/services/ingest/contact.c
    INCLUDES ${PROJECT_SOURCE_DIR}/services/ingest
    LABEL unit LIBS PkgConfig::GMIME)
# Named apart from the older suite's test_html2text (tests/ingest_parsers/tests.cmake),
# which registers that name too.
sb_add_test(NAME test_html2text_reducer
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_html2text.c
            ${PROJECT_SOURCE_DIR}/services/ingest/html2text.c
    INCLUDES ${PROJECT_SOURCE_DIR}/services/ingest
    LABEL unit)
