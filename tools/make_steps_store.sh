#!/usr/bin/env bash
# Writes a real OpenCode store full of tool calls inside delegations (issue 8: every LLM call and tool call
# of a delegation), by driving the real `opencode` binary against a scripted local model provider
# (shared/tools/mock_provider.py in the steering repository). Maintainers run it by hand; the tests only
# read the stores it wrote, committed under tests/fixtures/steps-<version>/. See tests/fixtures/steps-NOTES.md.
#
#   tools/make_steps_store.sh OPENCODE_BIN MOCK_PROVIDER_PY OUT_DIR [legacy]
#
# OPENCODE_BIN: node_modules/.bin/opencode of `npm install opencode-ai@1.18.33` (SQLite) or @1.1.65 (legacy
# JSON; pass "legacy" as the 4th argument, which leaves out the settings 1.1.x rejects).
# Needs python3, git, sqlite3 and `timeout`. Without network access OpenCode cannot fetch ripgrep, so every
# grep/glob call ends in a real tool error ("ripgrep execution failed"); the cases rely on that.
#
# Each case is its own `opencode run`, with its root session titled by --title:
#   "Many tools"     coder subagent "Many tools": 6 rounds of bash/read/read-missing/glob/grep/bash, {{tokens}} per round
#   "Failing tools"  coder subagent "Failing tools": read of a missing file, then grep
#   "Runaway grep"   coder subagent "Runaway grep": the same grep FIXME 9 times, one per round
#   "Runaway bash"   coder subagent "Runaway bash": the same (succeeding) bash 8 times, one per round
#   "Error streak"   coder subagent "Error streak": 4 different failing calls in a row, then a bash that works
#   "Parallel bash"  coder subagent "Parallel bash": 3 bash calls in one step, then read+grep+bash in one step
#   "Nested tools"   root bash, then planner "Nested tools" (read, then coder "Nested child tools" with bash)
#   "Root tools"     no delegation: bash, read, grep, then 2 parallel bash, all in the root session
#   "Rate limited"   coder subagent "Rate limited": HTTP 429 twice before its first step, 5 times before its second
#   "Doom loop"      coder subagent "Doom loop": 4 identical bash calls in ONE step, which trips OpenCode's doom-loop
#                    guard (3 identical calls in one message): 1.18.x rejects it (run mode), 1.1.x waits for an
#                    answer forever, so that run is SIGKILLed after 30 s
#   "Killed bash"    general subagent "Killed bash" runs `sleep 120`; the run is SIGKILLed after 25 s
set -euo pipefail
oc=$(realpath "$1"); mock=$(realpath "$2"); out=$(realpath -m "$3"); legacy=${4:-}
. "$(dirname "$(realpath "$0")")/sandbox.sh"
start_provider python3 "$mock" "$port"
new_home
write_config mock Mock mock-1 "Mock 1" '{"planner": {"mode": "subagent", "description": "Plans", "permission": {"task": "allow"}},
           "coder": {"mode": "subagent", "description": "Codes", "permission": {"task": "allow"}}}' "$legacy"
proj="$HOME/code/proj dir"; mkdir -p "$proj/src"
printf 'hi\n' > "$proj/README.md"
printf 'def main():\n    # FIXME: handle errors\n    return 0\n' > "$proj/src/app.py"
new_project "$proj"; cd "$proj"
sleep 1
R="$proj/README.md"; A="$proj/src/app.py"; M="$proj/missing.txt"

# 1. many tools of several kinds over several rounds, usage differing per step
run --title "Many tools" "Many tools. {{task coder|Many tools|Inspect the project. {{tokens 1500 120}} {{bash ls -la}} {{next}} {{tokens 2100 240}} {{read $R}} {{next}} {{tokens 2600 90}} {{read $M}} {{next}} {{tokens 3000 300}} {{glob **/*.py}} {{next}} {{tokens 3300 50}} {{grep main}} {{next}} {{tokens 3500 400}} {{bash sleep 1; echo done}}}}"
# 2. failing tools
run --title "Failing tools" "Failing tools. {{task coder|Failing tools|Look for notes. {{read $M}} {{next}} {{grep TODO}}}}"
# 3. runaway loops (same tool, same input, one call per step) and an error streak (different failing calls)
g='{{grep FIXME}}'; n='{{next}}'
run --title "Runaway grep" "Runaway grep. {{task coder|Runaway grep|Find FIXMEs. $g $n $g $n $g $n $g $n $g $n $g $n $g $n $g $n $g}}"
b='{{bash git status --short}}'
run --title "Runaway bash" "Runaway bash. {{task coder|Runaway bash|Check status. $b $n $b $n $b $n $b $n $b $n $b $n $b $n $b}}"
run --title "Error streak" "Error streak. {{task coder|Error streak|Try everything. {{read $M}} {{next}} {{glob *.md}} {{next}} {{grep needle}} {{next}} {{read $proj/nope/also-missing.md}} {{next}} {{bash echo recovered}}}}"
# 4. parallel tool calls in one step
run --title "Parallel bash" "Parallel bash. {{task coder|Parallel bash|Run three at once. {{bash echo one}} {{bash sleep 1; echo two}} {{bash echo three}} {{next}} {{read $A}} {{grep def}} {{bash echo four}}}}"
# 5. nested delegations with tools at every level
run --title "Nested tools" "Nested tools. {{bash echo root level}} {{next}} {{task planner|Nested tools|Plan it. {{read $A}} {{next}} {{task coder|Nested child tools|Code it. {{bash echo grandchild level}}}}}}"
# 6. tools in the root session itself, no delegation
run --title "Root tools" "Root tools. {{tokens 1200 80}} {{bash echo root one}} {{next}} {{tokens 1800 160}} {{read $R}} {{next}} {{grep hi}} {{next}} {{bash echo root two}} {{bash echo root three}}"
# 7. HTTP 429 before a subagent's steps (neither version stores a trace of the retries)
run --title "Rate limited" "Rate limited. {{task coder|Rate limited|Try under rate limits. {{ratelimit 2}} {{bash echo after retries}} {{next}} {{ratelimit 5}} {{bash echo again}}}}"
# 9. the doom-loop guard: the same call 4 times in one step (1.1.x hangs on the permission question: killed)
timeout -s KILL 30 "$oc" run --title "Doom loop" "Doom loop. {{task coder|Doom loop|Same call four times at once. {{bash echo same}} {{bash echo same}} {{bash echo same}} {{bash echo same}}}}" < /dev/null > /dev/null 2>&1 || true
# 8. a run killed while a subagent's bash tool runs: the bash part (and the task part) stay running
timeout -s KILL 25 "$oc" run --title "Killed bash" "Killed bash. {{task general|Killed bash|Run slowly. {{bash sleep 120}}}}" < /dev/null > /dev/null 2>&1 || true
sleep 1
save_store "$out"
