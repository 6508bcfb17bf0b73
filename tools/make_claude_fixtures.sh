#!/bin/bash
# Make the Claude Code fixtures under tests/fixtures/claude-code-VERSION/CASE/ by running the real `claude`
# binary offline against tools/mock_anthropic.py (a scripted Anthropic Messages API).
#
#   tools/make_claude_fixtures.sh [VERSION...]      (default: 1.0.128 2.0.27 2.1.1 2.1.50 2.1.332)
#   CASES='killed resumed' tools/make_claude_fixtures.sh 2.1.332    (only these cases)
#
# Each VERSION is installed from npm into $CACHE/VERSION (default /tmp/claude-code-versions). Each case runs
# in an empty HOME and TMPDIR, in the working directory /tmp/cc-fixture/CASE, and keeps only what Claude Code
# wrote under $HOME/.claude/projects/ (the history agent-traces reads): nothing is trimmed or edited. Ids and
# times are those of the run, so a new run gives new files; the tests read the figures from the files.
#
# Storage layouts (tests/fixtures/README.md): 2.0.27 writes subagents inline (isSidechain records in the
# session file), 2.1.1 flat agent-<id>.jsonl files, 2.1.50 <session>/subagents/ with the tool still called
# Task, 2.1.332 <session>/subagents/ with agent-<id>.meta.json and the tool called Agent.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OUT=${OUT:-$REPO/tests/fixtures}
CACHE=${CACHE:-/tmp/claude-code-versions}
MOCK=$HERE/mock_anthropic.py
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(1.0.128 2.0.27 2.1.1 2.1.50 2.1.332)

install() {  # install VERSION: the claude binary of that version, from npm
    local d=$CACHE/$1
    if [ ! -x "$d/node_modules/.bin/claude" ]; then
        mkdir -p "$d" && (cd "$d" && echo '{}' > package.json &&
            npm install --no-audit --no-fund --silent "@anthropic-ai/claude-code@$1" >/dev/null) || exit 1
    fi
    echo "$d/node_modules/.bin/claude"
}

RUN_DIR=""
ID_BASE=1000
next_ids() {  # each run's ids (msg_mockN, toolu_mockN) start at their own thousand: no two fixtures share one
    ID_BASE=$((ID_BASE + 1000))
}

start_mock() {  # start_mock [ENV=VALUE...]: a mock server on a free port; sets PORT and MOCK_PID
    rm -f "$RUN_DIR/port.txt"
    env MOCK_COUNTER_START="$ID_BASE" "$@" python3 "$MOCK" 0 "$RUN_DIR/port.txt" "$RUN_DIR/requests.jsonl" & MOCK_PID=$!
    for _ in $(seq 100); do [ -s "$RUN_DIR/port.txt" ] && break; sleep 0.05; done
    PORT=$(cat "$RUN_DIR/port.txt")
}

stop_mock() { kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; }

claude_env() {  # the environment of one run: isolated HOME and TMPDIR, the mock as the API, nothing else
    echo PATH=/usr/local/bin:/usr/bin:/bin HOME="$RUN_DIR/home" TMPDIR="$RUN_DIR/tmp" LANG=C.UTF-8 \
        ANTHROPIC_BASE_URL=http://127.0.0.1:$PORT ANTHROPIC_API_KEY=sk-test IS_SANDBOX=1 \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1
}

wanted() { [ -z "${CASES:-}" ] || [[ " $CASES " == *" $1 "* ]]; }

run_case() {  # run_case VERSION CASE PROMPT [claude args...]: one -p run, its history kept as the fixture
    local version=$1 case=$2 prompt=$3; shift 3
    next_ids  # before the filter: a case's ids do not depend on which cases are made
    wanted "$case" || return 0
    local bin; bin=$(install "$version")
    RUN_DIR=$(mktemp -d); mkdir -p "$RUN_DIR/home" "$RUN_DIR/tmp"
    local work=/tmp/cc-fixture/$case; rm -rf "$work"; mkdir -p "$work"
    start_mock
    (cd "$work" && env -i $(claude_env) timeout 300 "$bin" -p "$prompt" --dangerously-skip-permissions \
        --output-format json "$@" > "$RUN_DIR/out.json" 2> "$RUN_DIR/err.txt" < /dev/null)
    echo "$version $case: exit $?"
    stop_mock
    keep "$version" "$case"
}

run_killed() {  # run_killed VERSION CASE PROMPT: the run is killed (SIGKILL) while `time.sleep(60)` runs
    # (2.1.332 refuses a plain `sleep 60` in Bash, so the prompt sleeps in python3)
    local version=$1 case=$2 prompt=$3
    next_ids  # before the filter: a case's ids do not depend on which cases are made
    wanted "$case" || return 0
    local bin; bin=$(install "$version")
    RUN_DIR=$(mktemp -d); mkdir -p "$RUN_DIR/home" "$RUN_DIR/tmp"
    local work=/tmp/cc-fixture/$case; rm -rf "$work"; mkdir -p "$work"
    start_mock
    (cd "$work" && exec setsid env -i $(claude_env) "$bin" -p "$prompt" --dangerously-skip-permissions \
        --output-format json > "$RUN_DIR/out.json" 2> "$RUN_DIR/err.txt" < /dev/null) & local pid=$!
    for _ in $(seq 600); do  # until the history holds the Bash call that sleeps
        grep -rqsF 'time.sleep(60)' "$RUN_DIR/home/.claude/projects" --include='*.jsonl' && break
        sleep 0.1
    done
    sleep 2
    kill -KILL -- "-$pid" 2>/dev/null  # the whole process group: claude and the sleep it started
    wait "$pid" 2>/dev/null
    echo "$version $case: killed"
    stop_mock
    keep "$version" "$case"
}

run_resumed() {  # run_resumed VERSION CASE PROMPT1 PROMPT2: a run, then `--resume` of its session
    local version=$1 case=$2 first=$3 second=$4
    next_ids  # before the filter: a case's ids do not depend on which cases are made
    wanted "$case" || return 0
    local bin; bin=$(install "$version")
    RUN_DIR=$(mktemp -d); mkdir -p "$RUN_DIR/home" "$RUN_DIR/tmp"
    local work=/tmp/cc-fixture/$case; rm -rf "$work"; mkdir -p "$work"
    start_mock
    (cd "$work" && env -i $(claude_env) timeout 300 "$bin" -p "$first" --dangerously-skip-permissions \
        --output-format json > "$RUN_DIR/out1.json" 2> "$RUN_DIR/err1.txt" < /dev/null)
    stop_mock
    local sid
    sid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_id"])' "$RUN_DIR/out1.json")
    start_mock MOCK_SCRIPT_PICK=last MOCK_COUNTER_START=$((ID_BASE + 100))  # the new prompt's directives, ids not reused
    (cd "$work" && env -i $(claude_env) timeout 300 "$bin" -p "$second" --resume "$sid" \
        --dangerously-skip-permissions --output-format json > "$RUN_DIR/out2.json" 2> "$RUN_DIR/err2.txt" < /dev/null)
    echo "$version $case: resumed $sid, exit $?"
    stop_mock
    keep "$version" "$case"
}

keep() {  # keep VERSION CASE: the run's projects/ folder becomes the fixture
    local dest=$OUT/claude-code-$1/$2
    rm -rf "$dest"; mkdir -p "$dest"
    cp -a "$RUN_DIR/home/.claude/projects" "$dest/projects"
    find "$dest/projects" -type d -empty -delete  # Claude Code's empty memory/ folder
    rm -rf "$RUN_DIR"
}

for v in "${VERSIONS[@]}"; do
    ID_BASE=$(( $(echo "$v" | tr -dc 0-9 | cut -c1-4) * 10000 ))  # and no two versions
    case $v in
    1.0.*)  # inline sidechains with no agentId at all: a subagent is found by its prompt
        run_case "$v" agent-tool 'Go. {{agent general-purpose|Look|Run it. {{bash echo hi}}}}' --model claude-sonnet-4-5
        run_case "$v" parallel 'Go. {{agent general-purpose|Left|Run. {{bash echo left}}}} {{agent general-purpose|Right|Run. {{bash echo right}}}}'
        ;;
    2.0.27)  # inline sidechains (the subagents get no Task tool: the nested case answers without a call)
        run_case "$v" agent-tool 'Go. {{agent general-purpose|Look|Run it. {{bash echo hi}}}}' --model claude-sonnet-4-5
        run_case "$v" parallel 'Go. {{agent general-purpose|Left|Run. {{bash echo left}}}} {{agent general-purpose|Right|Run. {{bash echo right}}}}'
        run_case "$v" nested 'Go. {{agent general-purpose|Outer|Delegate. {{agent general-purpose|Inner|Run. {{bash echo deep}}}}}}'
        run_case "$v" tool-error 'Go. {{agent general-purpose|Failing|Try. {{bash ls /nonexistent-dir}}}}'
        run_resumed "$v" resumed 'First. {{bash echo one}}' 'Again. {{agent general-purpose|Second|Run. {{bash echo two}}}}'
        ;;
    2.1.1 | 2.1.50)  # flat agent files (2.1.1), subagents/ without meta.json (2.1.50), both calling the tool Task
        run_case "$v" agent-tool 'Go. {{agent general-purpose|Look|Run it. {{bash echo hi}}}}' --model claude-sonnet-4-5
        run_case "$v" parallel 'Go. {{agent general-purpose|Left|Run. {{bash echo left}}}} {{agent general-purpose|Right|Run. {{bash echo right}}}}'
        run_case "$v" nested 'Go. {{agent general-purpose|Outer|Delegate. {{agent general-purpose|Inner|Run. {{bash echo deep}}}}}}'
        ;;
    *)
        run_case "$v" agent-tool 'Go. {{agent general-purpose|Look|Run it. {{bash echo hi}}}}' --model claude-sonnet-4-5
        run_case "$v" parallel 'Go. {{agent general-purpose|Left|Run. {{bash echo left}}}} {{agent general-purpose|Right|Run. {{bash echo right}}}}'
        run_case "$v" nested 'Go. {{agent general-purpose|Outer|Delegate. {{agent general-purpose|Inner|Run. {{bash echo deep}}}}}}'
        run_case "$v" tool-error 'Go. {{agent general-purpose|Failing|Try. {{bash ls /nonexistent-dir}}}}'
        run_case "$v" model-error 'Go. {{agent general-purpose|Broken|Answer. {{fail 400}}}}'
        run_case "$v" background 'Go. {{bgagent general-purpose|Behind|Run. {{bash echo behind}}}}'
        run_killed "$v" killed 'Go. {{agent general-purpose|Sleeper|Wait. {{bash python3 -c "import time; time.sleep(60)"}}}}'
        run_resumed "$v" resumed 'First. {{bash echo one}}' 'Again. {{agent general-purpose|Second|Run. {{bash echo two}}}}'
        ;;
    esac
done
