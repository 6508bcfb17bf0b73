#!/usr/bin/env bash
# Writes a real OpenCode store holding the same task run twice with a different shape (issue 9: compare two
# runs), by driving the real `opencode` binary against the scripted local model provider
# (shared/tools/mock_provider.py in the steering repository). The tests read the store it wrote, committed
# under tests/fixtures/compare-1.18.33/.
#
#   tools/make_compare_store.sh OPENCODE_BIN MOCK_PROVIDER_PY OUT_DIR
#
# "Ship it" (the first run):   planner "Plan" (read, then coder "Code": grep once, bash), then reviewer "Review"
# "Ship it" (after a prompt change, the second run): planner "Plan" (read, then coder "Code": grep three times,
#                               bash, then coder "Test": bash), no reviewer; more tokens at every level
# "Ship it" (a third run, killed while coder "Code" sleeps): still running for ever
set -euo pipefail
oc=$(realpath "$1"); mock=$(realpath "$2"); out=$(realpath -m "$3")
. "$(dirname "$(realpath "$0")")/sandbox.sh"
start_provider python3 "$mock" "$port"
new_home
write_config mock Mock mock-1 "Mock 1" '{"planner": {"mode": "subagent", "description": "Plans", "permission": {"task": "allow"}},
           "coder": {"mode": "subagent", "description": "Codes", "permission": {"task": "allow"}},
           "reviewer": {"mode": "subagent", "description": "Reviews"}}'
proj="$HOME/code/proj"; mkdir -p "$proj/src"
printf 'hi\n' > "$proj/README.md"
printf 'def main():\n    # FIXME: handle errors\n    return 0\n' > "$proj/src/app.py"
new_project "$proj"; cd "$proj"
sleep 1
A="$proj/src/app.py"; n='{{next}}'; g='{{grep FIXME}}'

run --title "Ship it" "Ship the error handling in src/app.py. {{tokens 1200 100}} {{task planner|Plan|Plan the change to app.py. {{tokens 1500 120}} {{read $A}} $n {{task coder|Code|Write the error handling. {{tokens 1800 150}} $g $n {{bash echo done}}}}}} $n {{task reviewer|Review|Review the change. {{tokens 900 60}}}}"
sleep 2
run --title "Ship it" "Ship the error handling in src/app.py, with tests. {{tokens 1400 130}} {{task planner|Plan|Plan the change to app.py and its tests. {{tokens 2100 200}} {{read $A}} $n {{task coder|Code|Write the error handling carefully. {{tokens 2600 260}} $g $n $g $n $g $n {{bash echo done}}}} $n {{task coder|Test|Test it. {{tokens 1100 90}} {{bash echo test}}}}}}"
sleep 2
timeout -s KILL 25 "$oc" run --title "Ship it" "Ship the error handling in src/app.py. {{task planner|Plan|Plan the change. {{read $A}} $n {{task coder|Code|Write it slowly. {{bash sleep 120}}}}}}" < /dev/null > /dev/null 2>&1 || true
sleep 1
save_store "$out"
