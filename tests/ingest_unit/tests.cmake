# Unit tests of sb-ingest's pure modules (contact validation, signatures, rate limits).
foreach(t contact auth ratelimit)
    sb_add_test(NAME test_ingest_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c
        LIBS sbingest LABEL unit)
endforeach()
