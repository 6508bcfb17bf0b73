#!/usr/bin/env bash
# Writes a real OpenCode 1.18.33 store with background subagents (a `task` call with `background: true`, which
# returns at once with "Background task started"; the subagent's result comes back later as a synthetic user
# text in the parent), by driving the real `opencode` binary with OPENCODE_EXPERIMENTAL_BACKGROUND_SUBAGENTS=true
# against the scripted provider (tools/background_provider.py over shared/tools/mock_provider.py). Maintainers run
# it by hand; the tests read the store it wrote, tests/fixtures/background-1.18.33/ (see NOTES.md there).
#
#   tools/make_background_store.sh OPENCODE_BIN MOCK_PROVIDER_PY OUT_DIR
#
# Each case is its own `opencode run --title "<case>"`. `opencode run` ends with the parent's turn and aborts a
# background subagent still working, so the parents that should see the result keep busy with a `sleep` first:
#   "Background tools"  coder subagent "Background tools" in the background: bash, read, then a 2 s bash; the
#                       parent sleeps 15 s meanwhile and answers the injected result
#   "Background fail"   coder subagent "Background fail" in the background: bash, then the provider fails (HTTP 500,
#                       retried by OpenCode for about a minute before the subagent errors); the parent sleeps 90 s
#   "Background cut"    coder subagent "Background cut" in the background (bash, then a 5 s bash); the parent ends
#                       at once, so OpenCode aborts the subagent (MessageAbortedError)
set -euo pipefail
oc=$(realpath "$1"); mock=$(realpath "$2"); out=$(realpath -m "$3")
here=$(dirname "$(realpath "$0")")
. "$here/sandbox.sh"
start_provider python3 "$here/background_provider.py" "$mock" "$port"
new_home
export OPENCODE_EXPERIMENTAL_BACKGROUND_SUBAGENTS=true
write_config mock Mock mock-1 "Mock 1" '{"coder": {"mode": "subagent", "description": "Codes"}}'
proj="$HOME/code/proj"; mkdir -p "$proj"; printf 'hi\n' > "$proj/README.md"; new_project "$proj"; cd "$proj"
sleep 1
R="$proj/README.md"

run --title "Background tools" "Background tools. {{task coder|Background tools|&bg Inspect the project. {{bash ls -la}} {{next}} {{read $R}} {{next}} {{bash sleep 2; echo done}}}} {{next}} {{bash sleep 15}}"
run --title "Background fail" "Background fail. {{task coder|Background fail|&bg Try it. {{bash echo trying}} {{next}} {{fail}}}} {{next}} {{bash sleep 90}}"
run --title "Background cut" "Background cut. {{task coder|Background cut|&bg Take your time. {{bash echo start}} {{next}} {{bash sleep 5}}}}"
sleep 1
save_store "$out"
