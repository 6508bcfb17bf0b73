#!/usr/bin/env bash
# Writes a real OpenCode store with the delegation cases the loader must handle, by driving the real
# `opencode` binary against a scripted local model provider (shared/tools/mock_provider.py in the
# steering repository). Maintainers run it by hand; the tests only read the stores it wrote, which are
# committed under tests/fixtures/.
#
#   tools/make_fixture_store.sh OPENCODE_BIN MOCK_PROVIDER_PY OUT_DIR [legacy]
#
# OPENCODE_BIN: node_modules/.bin/opencode of `npm install opencode-ai@1.18.33` (SQLite) or @1.1.65 (legacy
# JSON; pass "legacy" as the 4th argument, which leaves out the settings 1.1.x rejects).
set -euo pipefail
oc=$(realpath "$1"); mock=$(realpath "$2"); out=$(realpath -m "$3"); legacy=${4:-}
. "$(dirname "$(realpath "$0")")/sandbox.sh"
start_provider python3 "$mock" "$port"
new_home
write_config mock Mock mock-1 "Mock 1" '{"planner": {"mode": "subagent", "description": "Plans", "permission": {"task": "allow"}},
           "coder": {"mode": "subagent", "description": "Codes", "permission": {"task": "allow"}},
           "reviewer": {"mode": "subagent", "description": "Reviews"}}' "$legacy"
proj="$HOME/code/proj dir"; mkdir -p "$proj"; echo hi > "$proj/README.md"; new_project "$proj"; cd "$proj"
sql() { python3 - "$data" "$1" <<'PY'
import sqlite3, sys, json, glob, os
data, title = sys.argv[1], sys.argv[2]
db = os.path.join(data, "opencode.db")
if os.path.exists(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    print(c.execute("select id from session where title like ? order by time_created desc", (title + "%",)).fetchone()[0])
else:
    for f in glob.glob(os.path.join(data, "storage/session/*/*.json")):
        s = json.load(open(f))
        if s.get("title", "").startswith(title):
            print(s["id"]); break
PY
}
# 1. parallel delegations in one step, one of them nested
run 'Parallel work. {{task general|Alpha job|Do alpha. {{bash ls}}}} {{task coder|Beta job|Do beta. {{task reviewer|Check beta|Check it.}}}} {{task reviewer|Gamma job|Do gamma.}}'
# 2. a task resumed with task_id: two calls share one child session, each owns its own turn
run 'Write v1. {{task coder|Write v1|Write version one. {{bash echo one}}}}'
root=$(sql "Scripted session" | head -1)
child=$(sql "Write v1 (@coder subagent)")
run -s "$root" "Now v2. {{task coder|Write v2|@$child Write version two. {{bash echo two}} {{bash echo three}}}}"
# 3. a 400 KB prompt of hostile multi-script text
run 'Big context. {{bigtask reviewer|Huge context|400}}'
# 4. a session dated three weeks back
faketime -f '-21d' "$oc" run 'Old work. {{task general|Old job|Old task.}}' < /dev/null > /dev/null 2>&1 || true
# 5. a run killed while its subagent works: the task part stays running forever
timeout -s KILL 25 "$oc" run 'Slow work. {{task general|Slow job|Work slowly. {{sleep 120}}}}' < /dev/null > /dev/null 2>&1 || true
sleep 1
save_store "$out"
