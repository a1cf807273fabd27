# sb-triage pure logic: 5W1H extraction and masking of personal data.
sb_add_test(NAME test_triage_extract SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_extract.c
    LIBS sbtriage LABEL unit)
sb_add_test(NAME test_triage_mask SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mask.c
    LIBS sbtriage LABEL unit)
# Rules (Hyperscan), model, their combination and the priority model, on the committed
# rule book and model.
sb_add_test(NAME test_triage_classify SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_classify.c
    LIBS sbtriage LABEL unit)
