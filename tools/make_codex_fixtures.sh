#!/usr/bin/env bash
# Writes real Codex CLI histories (rollout files) with the delegation cases the Codex reader must handle, by
# driving the real `codex` binary offline against the scripted Responses API mock (tools/mock_responses.py).
# Maintainers run it by hand; the tests only read the histories it wrote, committed under tests/fixtures/.
#
#   tools/make_codex_fixtures.sh CODEX_BIN OUT_DIR [CASE...]
#
# CODEX_BIN: node_modules/.bin/codex of `npm install @openai/codex@VERSION` (made with 0.171.0, 0.140.0 and
# 0.120.0; see tests/fixtures/README.md). Every case runs `codex exec` once (twice for "resumed") in one isolated
# CODEX_HOME, each with a mock server of its own (some cases need its environment switches); OUT_DIR gets that
# home's `sessions/` folder, exactly as Codex wrote it. Without CASE arguments every case runs; a case the
# version lacks (multi-agent v2 before 0.150) fails in Codex and is reported, not fatal.
#
# The prompt of each case starts with its name ("Spawn shell.", ...): that is how the tests find its root thread.
set -euo pipefail
codex=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
here=$(dirname "$(realpath "$0")")
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(spawn_shell parallel nested failing_tool failing_model killed resumed
                                 v1_fork v2_spawn v2_fork v2_followup)
work=$(mktemp -d)
export CODEX_HOME_DIR="$work/home/.codex"
mkdir -p "$CODEX_HOME_DIR" "$work/home/proj"
mock_pid=
stop_mock() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true; mock_pid=; }
trap stop_mock EXIT

# A mock server with these environment settings (MOCK_*), and a config.toml pointing Codex at it.
start_mock() {
  stop_mock
  rm -f "$work/port"
  env "$@" python3 "$here/mock_responses.py" 0 "$work/port" "$work/requests.jsonl" & mock_pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  cat > "$CODEX_HOME_DIR/config.toml" <<TOML
model = "mock-model"
model_provider = "mock"
[model_providers.mock]
name = "Mock"
base_url = "http://127.0.0.1:$(cat "$work/port")/v1"
wire_api = "responses"
env_key = "MOCK_API_KEY"
request_max_retries = 0
stream_max_retries = 0
TOML
}

# codex exec ARGS..., in its own process group; KILL_AFTER=S kills the whole group after S seconds (kill -9: a
# crash or a closed terminal, which leaves calls without an answer).
codex_exec() {
  ( cd "$work/home/proj"
    setsid env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$work/home" CODEX_HOME="$CODEX_HOME_DIR" LANG=C.UTF-8 \
      MOCK_API_KEY=sk-test "$codex" exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox --json \
      "$@" < /dev/null > "$work/last.jsonl" 2>> "$work/stderr.txt" & pid=$!
    if [ -n "${KILL_AFTER:-}" ]; then
      sleep "$KILL_AFTER"; kill -9 -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    else
      for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 -- "-$pid" 2>/dev/null || true; wait "$pid" || echo "codex exec exited $? ($*)" >&2
    fi )
}

thread_of_last_run() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["thread_id"])' \
                         "$work/last.jsonl"; }

case_spawn_shell() {  # one spawned agent running a shell command; set token figures (cached and reasoning too)
  start_mock
  codex_exec 'Spawn shell. {{tokens 4000 120 1500 30}} {{spawn |Run it. {{tokens 3000 80 1000 20}} {{sh echo hi}}}}{{next}}{{wait}}'
}
case_parallel() {  # two agents spawned by one model response; v1 wait_agent returns on the first, so wait twice
  start_mock
  codex_exec 'Parallel. {{spawn |Alpha. {{sh echo alpha}}}}{{spawn |Beta. {{sh echo beta}}}}{{next}}{{wait}}{{next}}{{wait}}'
}
case_nested() {  # a spawned agent spawning one of its own (agents.max_depth=2; the default 1 gives children no spawn tool)
  start_mock
  codex_exec -c agents.max_depth=2 'Nested. {{spawn |Outer. {{spawn |Inner. {{sh echo inner}}}}{{next}}{{wait}}}}{{next}}{{wait}}'
}
case_failing_tool() {  # a command that exits 1 and a tool that does not exist, in parallel, in a spawned agent
  start_mock
  codex_exec 'Failing tool. {{spawn |Break it. {{sh cat /no/such/file}}{{call no_such_tool {"x": 1} }}}}{{next}}{{wait}}'
}
case_failing_model() {  # the spawned agent's model call fails (HTTP 500; retries are off in config.toml)
  start_mock
  codex_exec 'Failing model. {{spawn |Fail it. {{fail 500}}}}{{next}}{{wait}}'
}
case_killed() {  # the run is killed (-9) while the spawned agent's command sleeps and the parent waits
  start_mock
  KILL_AFTER=5 codex_exec 'Killed. {{spawn |Sleep. {{sh sleep 60}}}}{{next}}{{wait}}'
}
case_resumed() {  # `codex exec resume ID`: a second turn appended to the root thread, with a new spawned agent
  start_mock
  codex_exec 'Resumed. {{spawn |First child. {{sh echo one}}}}{{next}}{{wait}}'
  local id; id=$(thread_of_last_run)
  start_mock MOCK_SCRIPT_PICK=last MOCK_COUNTER_START=100
  codex_exec resume "$id" 'Again. {{spawn |Second child. {{sh echo two}}}}{{next}}{{wait}}'
}
case_v1_fork() {  # v1 spawn_agent with fork_context: the child's rollout starts with a copy of the parent's history
  start_mock MOCK_SCRIPT_PICK=last
  codex_exec 'V1 fork. {{sh echo before}}{{next}}{{call spawn_agent {"message": "Forked. {{sh echo forked}}", "fork_context": true} }}{{next}}{{wait}}'
}
case_v2_spawn() {  # multi-agent v2 (collaboration namespace, task names, the task delivered as an agent_message)
  start_mock MOCK_FORK_TURNS=none
  codex_exec --enable multi_agent_v2 'V2 spawn. {{spawn worker|Run it. {{sh echo v2}}}}{{next}}{{wait}}'
}
case_v2_followup() {  # multi-agent v2: the spawned agent finishes, then gets a second task (followup_task)
  start_mock MOCK_FORK_TURNS=none MOCK_SCRIPT_PICK=last
  codex_exec --enable multi_agent_v2 'V2 followup. {{spawn helper|First task. {{sh echo first}}}}{{next}}{{wait}}{{next}}{{call followup_task {"target": "helper", "message": "Second task. {{sh echo second}}"} }}{{next}}{{wait}}'
}
case_v2_fork() {  # multi-agent v2 with fork_turns=all, after the parent ran a command of its own
  start_mock MOCK_FORK_TURNS=all MOCK_SCRIPT_PICK=last
  codex_exec --enable multi_agent_v2 'V2 fork. {{sh echo before}}{{next}}{{spawn forked|Continue. {{sh echo forked}}}}{{next}}{{wait}}'
}

for c in "${cases[@]}"; do
  echo "case $c" >&2
  "case_$c"
  sleep 1  # distinct rollout names (they carry the time to the second)
done
stop_mock
rm -rf "$out"; mkdir -p "$out"
cp -a "$CODEX_HOME_DIR/sessions" "$out/"
find "$out" -type f | sort
