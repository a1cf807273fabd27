# Deployment files (docker-compose.yml, deploy/docker, deploy/k8s, deploy/systemd,
# deploy/prometheus, deploy/grafana, docs/operations.md) checked against the real
# programs: tests/deploy/validate.py, one test per family. /usr/bin/python3 with PyYAML
# and jsonschema (Debian packages); promtool and systemd-analyze are used when installed
# (tests/deploy/requirements.txt lists the Debian packages).
foreach(check parse compose dockerfile k8s prometheus grafana systemd docs)
    sb_add_script_test(NAME test_deploy_${check}
        COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/validate.py ${check}
        LABEL unit TIMEOUT 120)
endforeach()
# The checks can fail: one broken input per check family, in a temporary copy.
sb_add_script_test(NAME test_deploy_mutations
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_mutations.py
    LABEL unit TIMEOUT 300)
# The systemd units' command lines and environment start the built services on the
# local stack (deploy/local/stack.sh up) and stop them with their KillSignal.
sb_add_script_test(NAME itest_deploy_units
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_units_run.py
    LABEL integration TIMEOUT 180 LOCK stage_services)
