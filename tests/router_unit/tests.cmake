# sb-router's pure logic (services/router): the routing core and Erlang C; and the
# simulator (tools/sb-routesim) that checks the core against queueing theory.
sb_add_test(NAME test_router_core SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_core.c
    LIBS sbroutecore LABEL unit)
sb_add_test(NAME test_router_erlang SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_erlang.c
    LIBS sbroutecore LABEL unit)
# Long M/M/c runs (about ten million customers): the only slow one.
sb_add_test(NAME test_routesim SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_routesim.c
    LIBS sbroutesim LABEL unit TIMEOUT 300)
sb_add_script_test(NAME routesim_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/routesim_cli_test.sh
    LABEL unit TIMEOUT 300)
