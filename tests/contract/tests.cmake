# Contract tests of proto/ (JSON Schemas, examples, topics, OpenAPI). Debian's Python,
# whose jsonschema and yaml modules deploy/setup.sh installs.
find_program(SB_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SB_PYTHON3)
    find_program(SB_PYTHON3 NAMES python3)
endif()
sb_add_script_test(NAME contract_schemas
    COMMAND ${SB_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_schemas.py LABEL unit TIMEOUT 120)
