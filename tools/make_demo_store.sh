#!/usr/bin/env bash
# Writes resources/demo/opencode.db with the real opencode binary (npm: opencode-ai@1.18.33) playing the
# scripted sessions of tools/demo_provider.py. Maintainers run it by hand:
#   tools/make_demo_store.sh path/to/node_modules/.bin/opencode
set -euo pipefail
oc=$(realpath "$1"); here=$(cd "$(dirname "$0")" && pwd); out="$here/../resources/demo"
port=$((20000 + RANDOM % 20000))
python3 "$here/demo_provider.py" "$port" & provider=$!
trap 'kill $provider 2>/dev/null || true' EXIT
export HOME=$(mktemp -d) XDG_DATA_HOME= XDG_CONFIG_HOME=
mkdir -p "$HOME/.config/opencode"
cat > "$HOME/.config/opencode/opencode.json" <<JSON
{"autoupdate": false, "share": "disabled",
 "provider": {"demo": {"npm": "@ai-sdk/openai-compatible", "name": "Demo",
   "options": {"baseURL": "http://127.0.0.1:$port/v1", "apiKey": "x"},
   "models": {"sonnet-demo": {"name": "Sonnet (demo)", "cost": {"input": 3, "output": 15}}}}},
 "model": "demo/sonnet-demo", "small_model": "demo/sonnet-demo", "subagent_depth": 4,
 "agent": {
   "coordinator": {"mode": "subagent", "description": "Splits a change into tasks and drives them", "permission": {"task": "allow"}},
   "planner": {"mode": "subagent", "description": "Plans migrations", "permission": {"task": "allow"}},
   "coder": {"mode": "subagent", "description": "Writes code"},
   "tester": {"mode": "subagent", "description": "Writes and runs tests", "permission": {"task": "allow"}},
   "refactoring": {"mode": "subagent", "description": "Restructures code without changing behaviour"},
   "reviewer": {"mode": "subagent", "description": "Reviews diffs"}}}
JSON
for p in shop-api billing; do mkdir -p "$HOME/code/$p" && (cd "$HOME/code/$p" && git init -q && echo "# $p" > README.md \
  && git add . && git -c user.email=a@b -c user.name=a commit -qm init); done
run() { (cd "$HOME/code/$1" && shift && timeout 300 "$@" < /dev/null > /dev/null 2>&1) || echo "run exited $?" >&2; }
run billing faketime -f '-2d' "$oc" run "Upgrade SQLAlchemy from 1.4 to 2.0 across the codebase."
run billing faketime -f '-20h' "$oc" run "The nightly export job fails on large accounts since Tuesday. Find out why and propose a fix."
run shop-api "$oc" run "Add rate limiting to the API client: at most 10 requests per second per host, with retries on 429."
mkdir -p "$out"
rm -f "$out/opencode.db"
sqlite3 "$HOME/.local/share/opencode/opencode.db" "VACUUM INTO '$out/opencode.db'"
sqlite3 "$out/opencode.db" "select title, agent from session"
