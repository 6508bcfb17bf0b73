"""Codex CLI histories load exactly, trace by trace and step by step: the real rollouts of codex 0.171.0, 0.140.0
and 0.120.0 in tests/fixtures/codex-* (tools/make_codex_fixtures.sh; inventory in tests/fixtures/README.md), read
through the loader's build_traces and through a load into a real DuckDB store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.codex import default_sessions_dir, open_codex_source
from analytics.errors import SourceError
from analytics.models import LLM, TOOL
from tests.codex_support import (
    ALL_CODEX,
    CODEX_120,
    CODEX_140,
    CODEX_171,
    built,
    case_root,
    expected_usage,
    raw_threads,
    span_usage,
    steps,
    stored,
    trace_usage,
    tree,
)

WAYS = ["build", "store"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    """(traces, spans, report) of each fixture history, each way, computed once."""
    cache: dict[tuple[str, str], tuple] = {}

    def get(version: str, way: str) -> tuple:
        if (version, way) not in cache:
            source = ALL_CODEX[version]
            if way == "build":
                cache[version, way] = built(source)
            else:
                cache[version, way] = stored(source, tmp_path_factory.mktemp("db") / "t.duckdb")
        return cache[version, way]

    return get


# -- every thread, every call ----------------------------------------------------------------------------------

@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_every_model_call_and_tool_call_is_one_step_of_the_trace_that_owns_its_thread(loaded, version, way):
    traces, spans, report = loaded(version, way)
    assert report.skipped == {}
    threads = raw_threads(ALL_CODEX[version])
    by_child = {t.child_session_id: t for t in traces if t.kind == "delegation"}
    assert len(traces) == len(threads)  # one trace per thread: each root a session, each child its spawn
    assert len({t.trace_id for t in traces}) == len(traces)
    for tid, th in threads.items():
        owner = next(t for t in traces if t.trace_id == tid) if th.parent is None else by_child[tid]
        own = steps(spans, owner.trace_id)
        llm = [s for s in own if s.kind == LLM]
        # each model response is one LLM step with its usage and end; steps beyond them are calls that never
        # answered (a failed call, or one in flight when the run was killed): no usage
        answered = [s for s in llm if span_usage(s) != (0, 0, 0, 0, 0)]
        assert len(answered) == len(th.calls), (version, th.path.name)
        for s, call in zip(answered, th.calls, strict=True):
            assert span_usage(s) == expected_usage(call["usage"])
            if s.status == "running":  # the run was cut while this call's tools worked: left running
                assert s.ended_at is None and s is answered[-1]
            else:
                assert s.ended_at == call["end"] and s.started_at <= s.ended_at
            if call["id"]:
                assert s.span_id == f"{tid}:{call['id']}"
            assert s.name == "mock-model" and s.title == "mock"
        assert trace_usage(owner) == tuple(sum(x) for x in zip(*(expected_usage(c["usage"]) for c in th.calls),
                                                               (0, 0, 0, 0, 0), strict=False))
        # every tool call but the spawns is one tool step under the LLM call that made it, input and output as
        # written; every spawn is one delegation
        tools = {s.span_id: s for s in own if s.kind == TOOL}
        spawns = {cid for cid, t in th.tools.items() if t["name"] == "spawn_agent"}
        assert set(tools) == {f"{tid}:{cid}" for cid in th.tools if cid not in spawns}
        for cid, t in th.tools.items():
            if cid in spawns:
                d = next(x for x in traces if x.trace_id == f"{tid}:{cid}")
                assert d.kind == "delegation" and d.session_id == tid and d.parent_trace_id == owner.trace_id
                continue
            s = tools[f"{tid}:{cid}"]
            assert (s.name, s.input, s.ended_at) == (t["name"], t["arguments"], t["end"])
            assert s.output == (t["output"] if t["output"] is not None else None)
            assert s.parent_span_id in {x.span_id for x in llm}
            assert s.started_at >= t["made"] - 1 and (s.ended_at is None or s.started_at <= s.ended_at)
        assert {t.trace_id for t in traces if t.kind == "delegation" and t.session_id == tid} == {
            f"{tid}:{cid}" for cid in spawns}


@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_build_and_store_agree(loaded, version):
    b_traces, b_spans, _ = loaded(version, "build")
    s_traces, s_spans, _ = loaded(version, "store")
    assert sorted(b_traces, key=lambda t: t.trace_id) == sorted(s_traces, key=lambda t: t.trace_id)
    assert sorted(b_spans) == sorted(s_spans)


# -- the cases -------------------------------------------------------------------------------------------------

def _thread_meta(source: Path, tid: str) -> dict:
    return raw_threads(source)[tid].meta


def _last_message(source: Path, tid: str) -> str | None:
    th = raw_threads(source)[tid]
    done = [d["payload"] for d in th.own if d["type"] == "event_msg" and d["payload"].get("type") == "task_complete"]
    return done[-1].get("last_agent_message") if done else None


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_spawned_agent_running_a_shell_command(loaded, version, way):
    traces, spans, _ = loaded(version, way)
    source = ALL_CODEX[version]
    root = case_root(traces, "Spawn shell")
    (child,) = tree(traces, root)
    threads = raw_threads(source)
    # the root session: its own prompt and answer, and the figures {{tokens}} set: 3 calls of
    # 4000 in (1500 cached) / 120 out (30 reasoning)
    assert root.prompt_input.startswith("Spawn shell. {{tokens 4000 120 1500 30}}")
    assert root.prompt_output == _last_message(source, root.trace_id)
    assert (root.status, root.parent_trace_id, root.depth, root.subagent_type) == ("completed", None, 0, "codex")
    assert trace_usage(root) == (3 * 2500, 3 * 90, 3 * 30, 3 * 1500, 0)
    assert root.tools_used == ("spawn_agent", "wait_agent")
    assert root.started_at == threads[root.trace_id].created
    assert root.model == "mock-model" and root.provider == "mock"
    # the delegation owns the child's turn: 2 calls of 3000 in (1000 cached) / 80 out (20 reasoning)
    cid = child.child_session_id
    meta = _thread_meta(source, cid)
    assert raw_threads(source)[cid].parent == root.trace_id
    assert (child.parent_trace_id, child.depth, child.session_id, child.parent_agent) == (
        root.trace_id, 1, root.trace_id, "codex")
    assert (child.status, child.subagent_type) == ("completed", "default")
    assert child.description == f"{meta['agent_nickname']}: Run it. {{{{tokens 3000 80 1000 20}}}} {{{{sh echo hi}}}}"
    assert child.prompt_input == "Run it. {{tokens 3000 80 1000 20}} {{sh echo hi}}"
    assert child.prompt_output == _last_message(source, cid)
    assert trace_usage(child) == (2 * 2000, 2 * 60, 2 * 20, 2 * 1000, 0)
    assert child.tools_used == ("exec_command",)
    assert root.started_at < child.started_at < child.ended_at <= root.ended_at
    assert child.duration_ms == child.ended_at - child.started_at
    llm1, tool, llm2 = steps(spans, child.trace_id)
    assert (llm1.kind, tool.kind, llm2.kind) == ("llm", "tool", "llm")
    assert (tool.name, tool.title, tool.status, tool.input) == ("exec_command", "echo hi", "completed",
                                                                '{"cmd": "echo hi"}')
    assert tool.output.endswith("Output:\nhi\n") and tool.parent_span_id == llm1.span_id
    assert llm1.started_at <= tool.started_at <= tool.ended_at <= llm2.started_at
    wait = next(s for s in steps(spans, root.trace_id) if s.name == "wait_agent")
    assert json.loads(wait.output)["status"][cid] == {"completed": child.prompt_output}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", ["0.171.0", "0.140.0"])
def test_two_agents_spawned_in_parallel(loaded, version, way):
    traces, spans, _ = loaded(version, way)
    root = case_root(traces, "Parallel")
    calls = tree(traces, root)
    assert sorted(c.prompt_input for c in calls) == ["Alpha. {{sh echo alpha}}", "Beta. {{sh echo beta}}"]
    assert len({c.child_session_id for c in calls}) == 2
    spawning = {s.span_id for s in steps(spans, root.trace_id) if s.kind == "llm"}
    # one model response made both calls
    made_by = {c.trace_id.split(":")[0] for c in calls}
    assert made_by == {root.trace_id}
    for c in calls:
        assert (c.parent_trace_id, c.depth, c.status) == (root.trace_id, 1, "completed")
        (tool,) = [s for s in steps(spans, c.trace_id) if s.kind == "tool"]
        word = c.prompt_input.split(".")[0].lower()
        assert (tool.title, tool.status) == (f"echo {word}", "completed") and tool.output.endswith(f"{word}\n")
    assert len(spawning) == 4
    waits = [s for s in steps(spans, root.trace_id) if s.name == "wait_agent"]
    assert len(waits) == 2 and all(w.status == "completed" for w in waits)


@pytest.mark.parametrize("way", WAYS)
def test_nested_agents(loaded, way):
    traces, spans, _ = loaded("0.171.0", way)
    root = case_root(traces, "Nested")
    outer, inner = tree(traces, root)
    assert (outer.prompt_input, outer.depth, outer.parent_trace_id) == (
        "Outer. {{spawn |Inner. {{sh echo inner}}}}{{next}}{{wait}}", 1, root.trace_id)
    assert (inner.prompt_input, inner.depth, inner.parent_trace_id) == (
        "Inner. {{sh echo inner}}", 2, outer.trace_id)
    assert inner.session_id == outer.child_session_id and inner.root_session_id == root.trace_id
    assert outer.tools_used == ("spawn_agent", "wait_agent") and inner.tools_used == ("exec_command",)
    assert outer.started_at < inner.started_at < inner.ended_at <= outer.ended_at <= root.ended_at
    assert all(t.status == "completed" for t in (root, outer, inner))


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_failing_tools(loaded, version, way):
    traces, spans, _ = loaded(version, way)
    root = case_root(traces, "Failing tool")
    (child,) = tree(traces, root)
    tools = {s.name: s for s in steps(spans, child.trace_id) if s.kind == "tool"}
    assert tools["exec_command"].status == "error" and "No such file or directory" in tools["exec_command"].output
    assert (tools["no_such_tool"].status, tools["no_such_tool"].output) == ("error", "unsupported call: no_such_tool")
    assert tools["no_such_tool"].input == '{"x": 1}'
    # both from one model response, and the agent went on to answer
    assert tools["exec_command"].parent_span_id == tools["no_such_tool"].parent_span_id
    assert child.status == "completed" and root.status == "completed"
    assert [s.status for s in steps(spans, root.trace_id) if s.kind == "tool"] == ["completed"]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_failing_model_call_in_a_child(loaded, version, way):
    traces, spans, _ = loaded(version, way)
    root = case_root(traces, "Failing model")
    (child,) = tree(traces, root)
    (llm,) = steps(spans, child.trace_id)
    assert (llm.kind, llm.status, span_usage(llm)) == ("llm", "error", (0, 0, 0, 0, 0))
    assert child.status == "error" and child.prompt_output == llm.output
    if version == "0.120.0":  # nothing says why: not in the child, and the parent's wait got {"completed": null}
        assert child.prompt_output == "the model call failed (Codex recorded no error text)"
    else:  # 0.171 in task_complete.error, 0.140 only in the parent's wait result
        assert "experiencing high demand" in child.prompt_output
    assert child.ended_at is not None and child.started_at <= llm.started_at <= llm.ended_at == child.ended_at
    assert trace_usage(child) == (0, 0, 0, 0, 0)
    assert root.status == "completed"


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", ["0.171.0", "0.140.0"])
def test_a_killed_run_is_left_running(loaded, version, way):
    traces, spans, _ = loaded(version, way)
    root = case_root(traces, "Killed")
    (child,) = tree(traces, root)
    for t in (root, child):
        assert (t.status, t.ended_at, t.duration_ms) == ("running", None, None)
    sleep = next(s for s in steps(spans, child.trace_id) if s.kind == "tool")
    assert (sleep.title, sleep.status, sleep.output, sleep.ended_at) == ("sleep 60", "running", None, None)
    wait = next(s for s in steps(spans, root.trace_id) if s.name == "wait_agent")
    assert (wait.status, wait.ended_at) == ("running", None)
    # the LLM call that made each unanswered tool call is left running too (its usage, when written, kept)
    assert next(s for s in steps(spans, child.trace_id) if s.span_id == sleep.parent_span_id).status == "running"


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", ["0.171.0", "0.140.0"])
def test_a_resumed_session_appends_a_turn_and_a_child(loaded, version, way):
    traces, spans, _ = loaded(version, way)
    root = case_root(traces, "Resumed")
    first, second = tree(traces, root)
    assert first.prompt_input == "First child. {{sh echo one}}"
    assert second.prompt_input == "Second child. {{sh echo two}}"
    assert first.parent_trace_id == second.parent_trace_id == root.trace_id
    assert first.ended_at < second.started_at
    # the root trace holds both turns: its prompt is the first, its answer the resumed turn's
    assert root.prompt_input.startswith("Resumed.")
    assert root.prompt_output.startswith("Finished. Task was: Again.")
    llm = [s for s in steps(spans, root.trace_id) if s.kind == "llm"]
    assert len(llm) == 6 and root.status == "completed"
    assert root.ended_at == llm[-1].ended_at


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_a_forked_child_does_not_count_its_copied_history(loaded, version, way):
    """v1 spawn_agent with fork_context: the child's rollout starts with the parent's history, which is the
    parent's work: counted once, in the parent."""
    traces, spans, _ = loaded(version, way)
    root = case_root(traces, "V1 fork")
    (child,) = tree(traces, root)
    own = steps(spans, child.trace_id)
    assert [s.kind for s in own] == ["llm", "tool", "llm"]
    assert own[1].title == "echo forked"
    assert child.prompt_input == "Forked. {{sh echo forked}}" and child.status == "completed"
    assert [s.title for s in steps(spans, root.trace_id) if s.name == "exec_command"] == ["echo before"]
    # nothing else was made of the copy: one delegation, no extra session
    assert len([t for t in traces if t.root_session_id == root.trace_id]) == 2


@pytest.mark.parametrize("way", WAYS)
def test_multi_agent_v2_spawn(loaded, way):
    traces, spans, _ = loaded("0.171.0", way)
    root = case_root(traces, "V2 spawn")
    (child,) = tree(traces, root)
    meta = _thread_meta(CODEX_171, child.child_session_id)
    assert meta["agent_path"] == "/root/worker" and meta["multi_agent_version"] == "v2"
    assert (child.description, child.prompt_input, child.status) == ("worker", "Run it. {{sh echo v2}}",
                                                                     "completed")
    assert child.prompt_output == _last_message(CODEX_171, child.child_session_id)
    assert [s.title for s in steps(spans, child.trace_id) if s.kind == "tool"] == ["echo v2"]


@pytest.mark.parametrize("way", WAYS)
def test_multi_agent_v2_fork_turns_all(loaded, way):
    """fork_turns=all copies the parent's turn into the child: its command, its spawn_agent call and a synthetic
    turn_aborted. None of it is the child's, and its spawn_agent call is not a second delegation."""
    traces, spans, _ = loaded("0.171.0", way)
    root = case_root(traces, "V2 fork")
    (child,) = tree(traces, root)
    th = raw_threads(CODEX_171)[child.child_session_id]
    assert th.meta["subagent_history_start_ordinal"] > 1
    own = steps(spans, child.trace_id)
    assert [s.title for s in own if s.kind == "tool"] == ["echo forked"]
    assert len([s for s in own if s.kind == "llm"]) == 2
    assert child.status == "completed" and child.description == "forked"
    assert [s.title for s in steps(spans, root.trace_id) if s.kind == "tool"] == ["echo before", None]
    assert len([t for t in traces if t.root_session_id == root.trace_id]) == 2


@pytest.mark.parametrize("way", WAYS)
def test_a_spawned_agent_given_a_second_task_is_one_delegation_owning_both_turns(loaded, way):
    """v2 followup_task wakes the agent for another turn in its own thread: the spawn's delegation owns it too
    (nothing of the child is left unowned or counted twice); the followup is a tool call of the parent's."""
    traces, spans, _ = loaded("0.171.0", way)
    root = case_root(traces, "V2 followup")
    (child,) = tree(traces, root)
    th = raw_threads(CODEX_171)[child.child_session_id]
    own = steps(spans, child.trace_id)
    assert [s.title for s in own if s.kind == "tool"] == ["echo first", "echo second"]
    assert len([s for s in own if s.kind == "llm"]) == len(th.calls) == 4
    assert (child.description, child.prompt_input, child.status) == ("helper", "First task. {{sh echo first}}",
                                                                     "completed")
    assert "Second task." in child.prompt_output  # the answer of its last turn
    followup = next(s for s in steps(spans, root.trace_id) if s.name == "followup_task")
    assert json.loads(followup.input) == {"target": "helper", "message": "Second task. {{sh echo second}}"}
    assert followup.ended_at <= child.ended_at <= root.ended_at


@pytest.mark.parametrize("version", list(ALL_CODEX))
def test_sessions_carry_the_thread(version, tmp_path: Path):
    from analytics.db import TraceStore
    from analytics.loader import load

    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, open_codex_source(ALL_CODEX[version]))
        rows = store.cursor().execute(
            "SELECT session_id, root_session_id, parent_session_id, title, directory, agent, version, store"
            " FROM sessions").fetchall()
    threads = raw_threads(ALL_CODEX[version])
    assert len(rows) == len(threads)
    for sid, root, parent, title, directory, agent, ver, label in rows:
        meta = threads[sid].meta
        assert (parent, directory, ver, label) == (threads[sid].parent, meta["cwd"], version, "codex")
        assert (root == sid) == (parent is None)
        if parent is None:
            assert agent == "codex" and title.split(".")[0] in {
                "Spawn shell", "Parallel", "Nested", "Failing tool", "Failing model", "Killed", "Resumed", "V1 fork",
                "V2 spawn", "V2 fork", "V2 followup"}
        else:
            assert agent == "default" and title.endswith("(@default subagent)")


# -- finding the history ---------------------------------------------------------------------------------------

def test_found_in_codex_home_or_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_HOME", raising=False)
    home = Path.home()
    assert default_sessions_dir() == home / ".codex" / "sessions"
    with pytest.raises(SourceError, match="No Codex history"):
        open_codex_source()
    (home / ".codex" / "sessions").mkdir(parents=True)
    assert open_codex_source().location == home / ".codex" / "sessions"
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "elsewhere"))
    assert default_sessions_dir() == tmp_path / "elsewhere" / "sessions"
    # a CODEX_HOME given as the source means its sessions folder
    src = open_codex_source(CODEX_140)
    assert src.location == CODEX_140 / "sessions" and src.generation == "codex"


def test_the_version_is_read_from_each_thread(loaded) -> None:
    for version in ALL_CODEX:
        traces, _spans, report = loaded(version, "build")
        assert "version" not in report.skipped
    assert raw_threads(CODEX_120) and raw_threads(CODEX_140)
