"""The steps inside each trace (`agent_spans`): every LLM call and tool call, from real stores written by the
real binaries with many tool calls (tests/fixtures/steps-*, made by tools/make_steps_store.sh)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.loader import load
from analytics.models import AgentSpan, AgentTrace
from analytics.opencode import open_source
from analytics.queries import trace_queries as q
from tests.conftest import STEPS_118, STEPS_1165, build_v2_store, copy_store

STORES = {"sqlite-1.18.33": STEPS_118, "json-1.1.65": STEPS_1165}


def _loaded(tmp_path: Path, source: Path) -> TraceStore:
    store = TraceStore(tmp_path / "t.duckdb")
    load(store, open_source(source))
    return store


def _traces(store: TraceStore) -> dict[str, list[AgentTrace]]:
    """Every trace, by the title of its root session (the case name)."""
    titles = {s.session_id: s.title for s in q.get_sessions_with_traces(store)}
    out: dict[str, list[AgentTrace]] = {}
    for root in titles:
        out[titles[root]] = q.get_full_traces(store, root)
    return out


def _delegation(traces: list[AgentTrace], description: str) -> AgentTrace:
    return next(t for t in traces if t.kind == "delegation" and t.description == description)


def _tools(spans: list[AgentSpan]) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in spans if s.kind == "tool"]


@pytest.fixture(params=list(STORES), ids=list(STORES))
def steps(request, tmp_path: Path):
    store = _loaded(tmp_path, STORES[request.param])
    yield request.param, store, _traces(store)
    store.close()


def test_the_llm_calls_of_every_trace_add_up_to_its_own_usage(steps) -> None:
    _name, store, by_case = steps
    for traces in by_case.values():
        for t in traces:
            llm = [s for s in q.get_spans(store, t.trace_id) if s.kind == "llm"]
            assert sum(s.tokens_in for s in llm) == t.tokens_in, t.description
            assert sum(s.tokens_out for s in llm) == t.tokens_out
            assert sum(s.tokens_cache_read for s in llm) == t.tokens_cache_read
            assert sum(s.cost_usd for s in llm) == pytest.approx(t.cost_usd)


def test_many_tools_in_a_subagent_each_with_its_input_output_and_times(steps) -> None:
    name, store, by_case = steps
    call = _delegation(by_case["Many tools"], "Many tools")
    spans = q.get_spans(store, call.trace_id)
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 7 and all(s.status == "completed" and s.name == "mock-1" for s in llm)
    assert [s.tokens_in for s in llm[:6]] == [1500, 2100, 2600, 3000, 3300, 3500]
    assert _tools(spans) == [("bash", "completed"), ("read", "completed"), ("read", "error"), ("glob", "error"),
                             ("grep", "error"), ("bash", "completed")]
    tools = [s for s in spans if s.kind == "tool"]
    assert all(s.parent_span_id == llm[i].span_id for i, s in enumerate(tools))  # one call per step
    assert json.loads(tools[0].input)["command"] == "ls -la"
    assert "README.md" in tools[0].output
    assert "File not found" in tools[2].output and "missing.txt" in json.loads(tools[2].input)["filePath"]
    slow = tools[5]
    assert slow.duration_ms == slow.ended_at - slow.started_at and slow.duration_ms > 900  # sleep 1, as timed
    assert all(s.started_at >= call.started_at - 1000 for s in spans)
    assert tools[0].title == ("ls -la" if name.startswith("sqlite") else "run ls -la")


def test_parallel_tool_calls_hang_under_the_one_llm_call_that_made_them(steps) -> None:
    _name, store, by_case = steps
    spans = q.get_spans(store, _delegation(by_case["Parallel bash"], "Parallel bash").trace_id)
    llm = [s for s in spans if s.kind == "llm"]
    first = [s for s in spans if s.parent_span_id == llm[0].span_id]
    assert [json.loads(s.input)["command"] for s in first] == ["echo one", "sleep 1; echo two", "echo three"]
    assert Counter(s.name for s in spans if s.parent_span_id == llm[1].span_id) == {"read": 1, "grep": 1,
                                                                                    "bash": 1}


def test_nested_delegations_keep_their_own_tools_and_are_no_spans_themselves(steps) -> None:
    _name, store, by_case = steps
    traces = by_case["Nested tools"]
    root = next(t for t in traces if t.kind == "session")
    assert _tools(q.get_spans(store, root.trace_id)) == [("bash", "completed")]  # the task calls are traces
    planner = _delegation(traces, "Nested tools")
    assert _tools(q.get_spans(store, planner.trace_id)) == [("read", "completed")]
    coder = _delegation(traces, "Nested child tools")
    spans = q.get_spans(store, coder.trace_id)
    assert [json.loads(s.input)["command"] for s in spans if s.kind == "tool"] == ["echo grandchild level"]


def test_tools_in_the_root_session(steps) -> None:
    _name, store, by_case = steps
    (root,) = by_case["Root tools"]
    spans = q.get_spans(store, root.trace_id)
    assert [n for n, _s in _tools(spans)] == ["bash", "read", "grep", "bash", "bash"]
    assert [s.tokens_in for s in spans if s.kind == "llm"][:2] == [1200, 1800]


def test_a_runaway_loop_is_every_call_it_made(steps) -> None:
    _name, store, by_case = steps
    spans = q.get_spans(store, _delegation(by_case["Runaway grep"], "Runaway grep").trace_id)
    assert _tools(spans) == [("grep", "error")] * 9
    assert len({s.input for s in spans if s.kind == "tool"}) == 1


def test_a_run_killed_while_a_tool_ran_leaves_it_running_with_no_end(steps) -> None:
    _name, store, by_case = steps
    spans = q.get_spans(store, _delegation(by_case["Killed bash"], "Killed bash").trace_id)
    (bash,) = [s for s in spans if s.kind == "tool"]
    assert bash.status == "running" and bash.ended_at is None and bash.duration_ms is None
    assert json.loads(bash.input)["command"] == "sleep 120"
    assert [s.status for s in spans if s.kind == "llm"] == ["running"]


def test_json_and_sqlite_stores_of_the_same_cases_give_the_same_steps(tmp_path: Path) -> None:
    shapes = {}
    for name, source in STORES.items():
        (tmp_path / name).mkdir()
        with _loaded(tmp_path / name, source) as store:
            shapes[name] = {case: [(t.description, [(s.kind, s.name if s.kind == "tool" else "", s.status)
                                                    for s in q.get_spans(store, t.trace_id)])
                                   for t in sorted(traces, key=lambda t: (t.depth, t.started_at))]
                            for case, traces in _traces(store).items() if case != "Doom loop"}
    # Doom loop differs by design: 1.18.33 rejects the 4th identical call, 1.1.65 waits for an answer forever
    assert shapes["sqlite-1.18.33"] == shapes["json-1.1.65"]


def test_the_2x_capture_reads_its_tool_calls_from_the_message_content(tmp_path: Path) -> None:
    with _loaded(tmp_path, build_v2_store(tmp_path / "oc2")) as store:
        spans = [s for t in store.conn.execute("SELECT trace_id FROM agent_traces").fetchall()
                 for s in q.get_spans(store, t[0])]
    tools = [s for s in spans if s.kind == "tool"]
    assert sorted(s.name for s in tools) == ["read", "read", "shell"]  # the subagent call is a trace, not a step
    assert all(":" in s.span_id and s.parent_span_id for s in tools)  # message id : tool call id
    read = next(s for s in tools if s.name == "read" and s.output)
    assert json.loads(read.input).get("path") and read.ended_at >= read.started_at


def test_steps_go_and_come_with_their_tree(tmp_path: Path) -> None:
    live = copy_store(STEPS_118, tmp_path / "oc")
    with _loaded(tmp_path, live) as store:
        before = store.conn.execute("SELECT count(*) FROM agent_spans").fetchone()[0]
        assert before == 95 - 22 + 61 - 11  # assistant messages + tool parts that are not task calls
        load(store, open_source(live), full=True)
        assert store.conn.execute("SELECT count(*) FROM agent_spans").fetchone()[0] == before
        store.cleanup_old_traces(1, now_ms=10**15)
        assert store.conn.execute("SELECT count(*) FROM agent_spans").fetchone()[0] == 0


def test_cli_steps_shows_the_calls_and_json_keeps_them_whole(tmp_path: Path, capsys) -> None:
    from dashboard.cli import main

    db = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(STEPS_118), "--db", db]) == 0
    with TraceStore(db, read_only=True) as store:
        call = _delegation(_traces(store)["Many tools"], "Many tools")
    capsys.readouterr()
    assert main(["steps", call.trace_id[:20], "--db", db]) == 0
    out = capsys.readouterr().out
    assert "7 LLM calls · 6 tool calls" in out and "ls -la" in out and "✗" in out
    assert main(["steps", call.trace_id, "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 13 and data[0]["kind"] == "llm" and data[1]["parent_span_id"] == data[0]["span_id"]


def test_spans_are_built_in_the_order_of_their_fields() -> None:
    """`extraction._spans` builds each span as a plain tuple in field order: a field added to `AgentSpan` must be
    added there too, where this test points."""
    assert AgentSpan._fields == (
        "span_id", "trace_id", "root_session_id", "parent_span_id", "kind", "name", "title", "status",
        "started_at", "ended_at", "duration_ms", "tokens_in", "tokens_out", "tokens_reasoning",
        "tokens_cache_read", "tokens_cache_write", "cost_usd", "input", "output")


def test_a_tool_output_holding_a_nul_is_kept_whole(tmp_path: Path) -> None:
    """SQLite's json_extract ends a string at an escaped NUL (\u0000): the output of `cat` on a binary was
    stored cut there, silently. Read and stored whole, as the JSON store and 2.x readers read it."""
    import sqlite3

    oc = copy_store(STEPS_118, tmp_path / "oc")
    conn = sqlite3.connect(oc / "opencode.db")
    pid, data = conn.execute("SELECT id, data FROM part WHERE data LIKE '%\"tool\":\"bash\"%'"
                             " AND data LIKE '%\"status\":\"completed\"%' ORDER BY id LIMIT 1").fetchone()
    part = json.loads(data)
    part["state"]["output"] = "ELF\x00\x01binary\x00 tail"
    conn.execute("UPDATE part SET data = ? WHERE id = ?", [json.dumps(part), pid])
    conn.commit()
    conn.close()
    with TraceStore(tmp_path / "t.duckdb") as store:
        report = load(store, open_source(oc))
        (output,) = store.cursor().execute("SELECT output FROM agent_spans WHERE span_id = ?", [pid]).fetchone()
    assert output == "ELF\x00\x01binary\x00 tail" and report.skipped_total == 0
