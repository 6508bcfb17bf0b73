# The sandbox the tools/make_*.sh scripts run the real `opencode` binary in: sourced by each of them, after
# `set -euo pipefail` and with `oc` set to the binary.
#
#   start_provider CMD ARGS...   the scripted model provider, in the background until the script exits; it listens
#                                on $port (chosen here), which CMD ARGS name themselves
#   new_home                     a fresh, empty $HOME: OpenCode's settings and data go under it only ($data)
#   write_config PROVIDER "NAME" MODEL "MODEL NAME" AGENTS [legacy]
#                                ~/.config/opencode/opencode.json: that provider at $port with its one model, these
#                                agents (a JSON object); "legacy" leaves out the settings OpenCode 1.1.x rejects
#   new_project DIR              DIR (made, filled by the caller) as a git repository with one commit
#   run ARGS...                  one `opencode run ARGS` (stdin closed, output dropped, at most 300 s)
#   save_store OUT               the store OpenCode wrote, into OUT: the SQLite file with its WAL folded in (rows
#                                unchanged), or the JSON storage of 1.1.x

port=$((20000 + RANDOM % 20000))
export MOCK_LOG=${MOCK_LOG:-/dev/null}

start_provider() {
  "$@" & provider_pid=$!
  trap 'kill $provider_pid 2>/dev/null || true' EXIT
}

new_home() {
  HOME=$(mktemp -d)
  export HOME XDG_DATA_HOME= XDG_CONFIG_HOME= OPENCODE_DISABLE_AUTOUPDATE=1
  data="$HOME/.local/share/opencode"
  mkdir -p "$HOME/.config/opencode"
}

write_config() {
  local provider=$1 provider_name=$2 model=$3 model_name=$4 agents=$5 depth='"subagent_depth": 4,'
  [ "${6:-}" = legacy ] && depth=''
  cat > "$HOME/.config/opencode/opencode.json" <<JSON
{"autoupdate": false, "share": "disabled",
 "provider": {"$provider": {"npm": "@ai-sdk/openai-compatible", "name": "$provider_name",
   "options": {"baseURL": "http://127.0.0.1:$port/v1", "apiKey": "x"},
   "models": {"$model": {"name": "$model_name", "cost": {"input": 3, "output": 15}}}}},
 "model": "$provider/$model", "small_model": "$provider/$model", $depth
 "agent": $agents}
JSON
}

new_project() {
  mkdir -p "$1"
  (cd "$1" && git init -q && git add . && git -c user.email=a@b -c user.name=a commit -qm init)
}

run() { timeout 300 "$oc" run "$@" < /dev/null > /dev/null 2>&1 || echo "run exited $?" >&2; }

save_store() {
  mkdir -p "$1"
  if [ -f "$data/opencode.db" ]; then
    sqlite3 "$data/opencode.db" ".backup '$1/opencode.db'"
  elif [ -d "$data/storage" ]; then
    cp -r "$data/storage" "$1/"
  fi
  ls -la "$1"
}
