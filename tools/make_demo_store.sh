#!/usr/bin/env bash
# Writes the demo bundled in resources/demo, one history per agent, each by the real binary playing scripted
# sessions against a local model:
#   resources/demo/opencode.db          OpenCode (opencode-ai@1.18.33): the three sessions of tools/demo_provider.py
#   resources/demo/claude/projects/     Claude Code (@anthropic-ai/claude-code@2.1.332): a `projects` folder
#   resources/demo/codex/sessions/      Codex (@openai/codex@0.171.0): a `sessions` folder
# Claude Code's and Codex's sessions are scripted in tools/demo_agents.py. Maintainers run it by hand:
#   tools/make_demo_store.sh OPENCODE CLAUDE CODEX       (the three node_modules/.bin/ binaries)
#
# The agents run as a user's would: HOME is $DEMO_HOME (default /home/demo, made empty; KEEP_HOME=1 leaves it
# afterwards), in the projects of tools/demo_projects.sh under $DEMO_HOME/code, so that no path of the machine that
# made the demo is stored. The sessions are spread over the last days: OpenCode's SQLAlchemy upgrade two days
# back, Claude Code's checkout fix one day back, OpenCode's export investigation 20 hours back, then OpenCode's
# rate limiting and Codex's rounding fix when the script runs.
set -euo pipefail
OPENCODE=$(realpath "$1"); CLAUDE=$(realpath "$2"); CODEX=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd); out="$here/../resources/demo"
. "$here/sandbox.sh"        # the OpenCode provider's port and config
. "$here/demo_projects.sh"
. "$here/demo_agents.sh"
demo_home "${DEMO_HOME:-/home/demo}"
seed_shop_api "$HOME/code/shop-api"
seed_billing "$HOME/code/billing"

# OpenCode: the scripted sessions of tools/demo_provider.py, as before
start_provider python3 "$here/demo_provider.py" "$port"
trap cleanup EXIT
mkdir -p "$HOME/.config/opencode"
write_config demo Demo sonnet-demo "Sonnet (demo)" '{
   "coordinator": {"mode": "subagent", "description": "Splits a change into tasks and drives them", "permission": {"task": "allow"}},
   "planner": {"mode": "subagent", "description": "Plans migrations", "permission": {"task": "allow"}},
   "coder": {"mode": "subagent", "description": "Writes code"},
   "tester": {"mode": "subagent", "description": "Writes and runs tests", "permission": {"task": "allow"}},
   "refactoring": {"mode": "subagent", "description": "Restructures code without changing behaviour"},
   "reviewer": {"mode": "subagent", "description": "Reviews diffs"}}'
run_opencode "$HOME/code/billing" -2d "Upgrade SQLAlchemy from 1.4 to 2.0 across the codebase."
start_agents_model
run_claude "$HOME/code/shop-api" -1d "$(prompt CHECKOUT)"
run_opencode "$HOME/code/billing" -20h "The nightly export job fails on large accounts since Tuesday. Find out why and propose a fix."
run_opencode "$HOME/code/shop-api" "" "Add rate limiting to the API client: at most 10 requests per second per host, with retries on 429."
codex_config
run_codex "$HOME/code/billing" "$(prompt ROUNDING)"

save_opencode "$out"
save_claude "$out"
save_codex "$out"
sqlite3 "$out/opencode.db" "select title, agent from session"
find "$out/claude" "$out/codex" -type f | sort
