#!/usr/bin/env bash
# Writes tests/fixtures/compare-agents: one task run by the three agents, each delegating to the same two
# subagents in the same order, in each agent's own storage, by the real binaries playing the DRY_RUN script of
# tools/demo_agents.py (a local model: no network):
#   opencode/opencode.db     OpenCode (opencode-ai@1.18.33)
#   claude/projects/         Claude Code (@anthropic-ai/claude-code@2.1.332): two sessions, the second with the
#                            coder call's description reworded ("Implement --dry-run in deploy.py")
#   codex/sessions/          Codex (@openai/codex@0.171.0, multi-agent v1)
# Maintainers run it by hand:
#   tools/make_compare_agents.sh OPENCODE CLAUDE CODEX [OUT]     (OUT: default tests/fixtures/compare-agents)
#
# The task: "Add a --dry-run flag to scripts/deploy.py ..." in the shop-api project of tools/demo_projects.sh. The
# main agent reads scripts/deploy.py, then delegates to `coder` ("Add the --dry-run flag": read, edit, a dry run)
# and, once it is done, to `tester` ("Test the dry-run flag": write a test, run it). Both subagents are defined in
# each agent's own way (OpenCode's config, ~/.claude/agents/*.md, Codex's [agents.*] roles), with the same
# descriptions. The project is reset (git) before each run, so each agent starts from the same tree. HOME is
# $DEMO_HOME (default /home/demo, made empty, removed afterwards unless KEEP_HOME=1), as for the demo.
set -euo pipefail
OPENCODE=$(realpath "$1"); CLAUDE=$(realpath "$2"); CODEX=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd); out=$(realpath -m "${4:-$here/../tests/fixtures/compare-agents}")
. "$here/sandbox.sh"        # OpenCode's config
. "$here/demo_projects.sh"
. "$here/demo_agents.sh"
demo_home "${DEMO_HOME:-/home/demo}"
proj="$HOME/code/shop-api"
seed_shop_api "$proj"
reset_project() { git -C "$proj" reset -q --hard && git -C "$proj" clean -qfdx; }
task=$(prompt DRY_RUN)
start_agents_model

# OpenCode
port=$model_port
mkdir -p "$HOME/.config/opencode"
write_config demo Demo claude-sonnet-4-5 "Claude Sonnet 4.5" '{
   "coder": {"mode": "subagent", "description": "Writes code"},
   "tester": {"mode": "subagent", "description": "Writes and runs tests"}}'
run_opencode "$proj" "" "$task"
reset_project

# Claude Code: the same two subagents as user-level agent files
mkdir -p "$HOME/.claude/agents"
printf -- '---\nname: coder\ndescription: Writes code\n---\nYou write and change code in this repository. Keep changes small and check what you changed.\n' \
  > "$HOME/.claude/agents/coder.md"
printf -- '---\nname: tester\ndescription: Writes and runs tests\n---\nYou write unittest tests for this repository and run them.\n' \
  > "$HOME/.claude/agents/tester.md"
run_claude "$proj" "" "$task"
reset_project

# Codex: the same two as agent roles
codex_config '[agents.coder]
description = "Writes code"
[agents.tester]
description = "Writes and runs tests"'
run_codex "$proj" "$task"
reset_project

# Claude Code again, the coder call's description reworded
start_agents_model reworded
run_claude "$proj" "" "$task"

rm -rf "$out"; mkdir -p "$out"
save_opencode "$out/opencode"
save_claude "$out"
save_codex "$out"
find "$out" -type f | sort
