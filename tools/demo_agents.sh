# Running the real Claude Code, Codex and OpenCode binaries against tools/demo_agents.py, as a user would in the
# neutral home of tools/demo_projects.sh. Sourced by tools/make_demo_store.sh and tools/make_compare_agents.sh
# (after `set -euo pipefail`, with $HOME set by demo_home).
#
#   start_agents_model [VARIANT]     tools/demo_agents.py in the background until the script exits (or the next
#                                    start); it listens on $model_port
#   prompt NAME                      the prompt NAME of tools/demo_agents.py (CHECKOUT, ROUNDING, DRY_RUN...)
#   run_claude DIR OFFSET PROMPT     `claude -p PROMPT` in DIR, model claude-sonnet-4-5
#   run_codex DIR PROMPT             `codex exec PROMPT` in DIR, model gpt-5.1-codex from the provider "openai"
#   run_opencode DIR OFFSET ARGS...  `opencode run ARGS` in DIR, with the caller's PATH (as the demo's OpenCode
#                                    sessions were first made: their `pytest` calls find one if the caller has it)
#   save_claude OUT / save_codex OUT   the `projects` / `sessions` folder the runs wrote, copied to OUT/...
#   save_opencode OUT                the SQLite store, its WAL folded in, as OUT/opencode.db
#   cleanup                          (on exit) the servers stopped, the demo home removed unless KEEP_HOME=1
#
# Claude Code runs with TMPDIR in the home: it names its background subagents' output files after TMPDIR.
# libfaketime is preloaded into the agent itself, not through the `faketime` wrapper: Claude Code's binary cannot
# open the wrapper's shared clock. Codex is a static binary that libfaketime cannot reach: its sessions carry the
# time they were made.

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run_dir=$(mktemp -d)
if [ -z "${LIBFAKETIME:-}" ]; then  # Debian's package `libfaketime`
  for LIBFAKETIME in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    [ -e "$LIBFAKETIME" ] && break
  done
fi
model_pid=

stop_agents_model() { if [ -n "$model_pid" ]; then kill "$model_pid" 2>/dev/null || true; wait "$model_pid" 2>/dev/null || true; fi; model_pid=; }

cleanup() {  # on exit: the model servers stopped, the run folder removed, the demo home too unless KEEP_HOME=1
  stop_agents_model
  if [ -n "${provider_pid:-}" ]; then kill "$provider_pid" 2>/dev/null || true; fi  # sandbox.sh's provider
  rm -rf "$run_dir"
  if [ "${KEEP_HOME:-}" != 1 ] && [ -e "$HOME/$MARKER" ]; then rm -rf "$HOME"; fi
}
trap cleanup EXIT  # (set again after sandbox.sh's start_provider, which sets its own)

start_agents_model() {
  stop_agents_model
  rm -f "$run_dir/port"
  python3 "$tools_dir/demo_agents.py" "$run_dir/port" "${1:-}" 2>> "$run_dir/model.log" & model_pid=$!
  for _ in $(seq 100); do [ -s "$run_dir/port" ] && break; sleep 0.05; done
  model_port=$(cat "$run_dir/port")
}

prompt() { python3 "$tools_dir/demo_agents.py" prompt "$1"; }

_clock() {  # _clock OFFSET: the environment that sets an agent's clock OFFSET away (libfaketime's "-1d", "-20h";
  # nothing for now), given last to the `env` that starts the agent so that the agent is the first to load it
  if [ -n "$1" ]; then echo "LD_PRELOAD=$LIBFAKETIME FAKETIME=$1"; fi
}

_in() {  # _in DIR CMD...: CMD in DIR, stdin closed, output kept in the run folder, at most 300 s
  local dir=$1; shift
  (cd "$dir" && timeout 300 "$@" < /dev/null >> "$run_dir/out.log" 2>> "$run_dir/err.log") ||
    { echo "run exited $? in $dir: $*" | cut -c1-200 >&2; tail -5 "$run_dir/err.log" >&2; }
}

run_claude() {
  local dir=$1 offset=$2 text=$3
  _in "$dir" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" TMPDIR="$HOME/.cache" LANG=C.UTF-8 \
    ANTHROPIC_BASE_URL="http://127.0.0.1:$model_port" ANTHROPIC_API_KEY=sk-demo IS_SANDBOX=1 \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 $(_clock "$offset") \
    "$CLAUDE" -p "$text" --model claude-sonnet-4-5 --dangerously-skip-permissions --output-format json
}

codex_config() {  # codex_config [TOML]: ~/.codex/config.toml, the built-in "openai" provider at the local model
  mkdir -p "$HOME/.codex"
  cat > "$HOME/.codex/config.toml" <<TOML
model = "gpt-5.1-codex"
openai_base_url = "http://127.0.0.1:$model_port/v1"
${1:-}
TOML
}

run_codex() {
  local dir=$1 text=$2
  _in "$dir" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" LANG=C.UTF-8 OPENAI_API_KEY=sk-demo \
    "$CODEX" exec --dangerously-bypass-approvals-and-sandbox --json "$text"
}

run_opencode() {
  local dir=$1 offset=$2; shift 2
  _in "$dir" env OPENCODE_DISABLE_AUTOUPDATE=1 $(_clock "$offset") "$OPENCODE" run "$@"
}

save_claude() {
  rm -rf "$1/claude"; mkdir -p "$1/claude"
  cp -a "$HOME/.claude/projects" "$1/claude/projects"
  find "$1/claude" -type d -empty -delete  # Claude Code's empty memory/ folders
}

save_codex() {
  rm -rf "$1/codex"; mkdir -p "$1/codex"
  cp -a "$HOME/.codex/sessions" "$1/codex/sessions"
}

save_opencode() {
  mkdir -p "$1"; rm -f "$1/opencode.db"
  sqlite3 "$HOME/.local/share/opencode/opencode.db" "VACUUM INTO '$1/opencode.db'"
}
