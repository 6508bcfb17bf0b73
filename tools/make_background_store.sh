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
port=$((20000 + RANDOM % 20000))
export MOCK_LOG=${MOCK_LOG:-/dev/null}
python3 "$here/background_provider.py" "$mock" "$port" & mock_pid=$!
trap 'kill $mock_pid 2>/dev/null || true' EXIT
export HOME=$(mktemp -d) XDG_DATA_HOME= XDG_CONFIG_HOME= OPENCODE_DISABLE_AUTOUPDATE=1
export OPENCODE_EXPERIMENTAL_BACKGROUND_SUBAGENTS=true
mkdir -p "$HOME/.config/opencode"
cat > "$HOME/.config/opencode/opencode.json" <<JSON
{"autoupdate": false, "share": "disabled",
 "provider": {"mock": {"npm": "@ai-sdk/openai-compatible", "name": "Mock",
   "options": {"baseURL": "http://127.0.0.1:$port/v1", "apiKey": "x"},
   "models": {"mock-1": {"name": "Mock 1", "cost": {"input": 3, "output": 15}}}}},
 "model": "mock/mock-1", "small_model": "mock/mock-1", "subagent_depth": 4,
 "agent": {"coder": {"mode": "subagent", "description": "Codes"}}}
JSON
proj="$HOME/code/proj"; mkdir -p "$proj"; cd "$proj"; git init -q
printf 'hi\n' > README.md
git add . && git -c user.email=a@b -c user.name=a commit -qm init
data="$HOME/.local/share/opencode"
sleep 1
run() { timeout 300 "$oc" run "$@" < /dev/null > /dev/null 2>&1 || echo "run exited $?" >&2; }
R="$proj/README.md"

run --title "Background tools" "Background tools. {{task coder|Background tools|&bg Inspect the project. {{bash ls -la}} {{next}} {{read $R}} {{next}} {{bash sleep 2; echo done}}}} {{next}} {{bash sleep 15}}"
run --title "Background fail" "Background fail. {{task coder|Background fail|&bg Try it. {{bash echo trying}} {{next}} {{fail}}}} {{next}} {{bash sleep 90}}"
run --title "Background cut" "Background cut. {{task coder|Background cut|&bg Take your time. {{bash echo start}} {{next}} {{bash sleep 5}}}}"
sleep 1
mkdir -p "$out"
sqlite3 "$data/opencode.db" ".backup '$out/opencode.db'"    # folds the WAL in; rows unchanged
ls -la "$out"
