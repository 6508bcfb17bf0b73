#!/usr/bin/env bash
# Writes resources/demo/opencode.db with the real opencode binary (npm: opencode-ai@1.18.33) playing the
# scripted sessions of tools/demo_provider.py. Maintainers run it by hand:
#   tools/make_demo_store.sh path/to/node_modules/.bin/opencode
set -euo pipefail
oc=$(realpath "$1"); here=$(cd "$(dirname "$0")" && pwd); out="$here/../resources/demo"
. "$here/sandbox.sh"
start_provider python3 "$here/demo_provider.py" "$port"
new_home
write_config demo Demo sonnet-demo "Sonnet (demo)" '{
   "coordinator": {"mode": "subagent", "description": "Splits a change into tasks and drives them", "permission": {"task": "allow"}},
   "planner": {"mode": "subagent", "description": "Plans migrations", "permission": {"task": "allow"}},
   "coder": {"mode": "subagent", "description": "Writes code"},
   "tester": {"mode": "subagent", "description": "Writes and runs tests", "permission": {"task": "allow"}},
   "refactoring": {"mode": "subagent", "description": "Restructures code without changing behaviour"},
   "reviewer": {"mode": "subagent", "description": "Reviews diffs"}}'
for p in shop-api billing; do mkdir -p "$HOME/code/$p" && echo "# $p" > "$HOME/code/$p/README.md" && new_project "$HOME/code/$p"; done
in_project() { (cd "$HOME/code/$1" && shift && timeout 300 "$@" < /dev/null > /dev/null 2>&1) || echo "run exited $?" >&2; }
in_project billing faketime -f '-2d' "$oc" run "Upgrade SQLAlchemy from 1.4 to 2.0 across the codebase."
in_project billing faketime -f '-20h' "$oc" run "The nightly export job fails on large accounts since Tuesday. Find out why and propose a fix."
in_project shop-api "$oc" run "Add rate limiting to the API client: at most 10 requests per second per host, with retries on 429."
mkdir -p "$out"
rm -f "$out/opencode.db"
sqlite3 "$data/opencode.db" "VACUUM INTO '$out/opencode.db'"
sqlite3 "$out/opencode.db" "select title, agent from session"
