"""The delegation cases real OpenCode runs produce, in both the SQLite (1.18.33) and JSON (1.1.65) stores.

The case stores were written by the real binaries (tools/make_fixture_store.sh): three parallel calls, one
nested; a child session resumed with task_id; a 400 KB prompt of hostile multi-script text; a session three
weeks old; and an OpenCode process killed while its subagent worked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.extraction import extract_traces
from tests.conftest import BACKGROUND_118, CASES_118, CASES_1165, FIXTURES

CASES = [pytest.param(CASES_118, id="sqlite-1.18.33"), pytest.param(CASES_1165 / "storage", id="json-1.1.65")]
DAY_MS = 86_400_000


def _roots(traces):
    roots = {}
    for t in traces:
        if t.kind == "session":
            roots[t.prompt_input.split(".")[0].strip('"')] = t
    return roots


def _tree(traces, root):
    return [t for t in traces if t.root_session_id == root.trace_id and t.kind == "delegation"]


@pytest.mark.parametrize("source", CASES)
def test_parallel_calls_in_one_step_with_nesting(source: Path) -> None:
    traces = extract_traces(source)
    root = _roots(traces)["Parallel work"]
    calls = {t.description: t for t in _tree(traces, root)}
    assert set(calls) == {"Alpha job", "Beta job", "Gamma job", "Check beta"}
    for name in ("Alpha job", "Beta job", "Gamma job"):
        assert calls[name].parent_trace_id == root.trace_id
        assert calls[name].depth == 1
        assert calls[name].parent_agent == "build"
    # the three calls come from the same assistant step, and each has its own child session
    assert len({calls[n].child_session_id for n in ("Alpha job", "Beta job", "Gamma job")}) == 3
    nested = calls["Check beta"]
    assert nested.parent_trace_id == calls["Beta job"].trace_id
    assert nested.session_id == calls["Beta job"].child_session_id
    assert (nested.parent_agent, nested.subagent_type, nested.depth) == ("coder", "reviewer", 2)
    assert calls["Alpha job"].tools_used == ("bash",)
    assert calls["Beta job"].tools_used == ("task",)
    assert all(t.status == "completed" and t.duration_ms and t.duration_ms > 0 for t in calls.values())


@pytest.mark.parametrize("source", CASES)
def test_resumed_task_is_split_between_its_calls(source: Path) -> None:
    traces = extract_traces(source)
    root = _roots(traces)["Write v1"]
    first, second = sorted(_tree(traces, root), key=lambda t: t.started_at)
    assert first.child_session_id == second.child_session_id  # the second call resumed the first's session
    assert (first.description, second.description) == ("Write v1", "Write v2")
    assert second.prompt_input.startswith("Write version two.")
    assert "version one" in first.prompt_output and "version two" in second.prompt_output
    # each call owns its own turn: both ran bash, both have their own usage, none counted twice
    assert first.tools_used == second.tools_used == ("bash",)
    assert first.tokens_in > 0 and second.tokens_in > 0
    assert second.tokens_in > first.tokens_in  # the second turn saw the first turn's history
    assert first.parent_trace_id == second.parent_trace_id == root.trace_id


@pytest.mark.parametrize("source", CASES)
def test_400kb_hostile_prompt_is_kept_whole(source: Path) -> None:
    traces = extract_traces(source)
    big = next(t for t in traces if t.description == "Huge context")
    assert len(big.prompt_input.encode()) >= 400 * 1024
    assert big.prompt_input.startswith("## Contexte\nLigne 0 — valider l'entrée")
    assert big.prompt_input.endswith("FIN")
    for piece in ("<script>alert('x')</script>", "\x1b[31mrouge\x1b[0m", "עברית", "中文", "🚀"):
        assert piece in big.prompt_input
    assert big.status == "completed"


@pytest.mark.parametrize("source", CASES)
def test_session_dated_weeks_back(source: Path) -> None:
    traces = extract_traces(source)
    roots = _roots(traces)
    old, recent = roots["Old work"], roots["Parallel work"]
    assert recent.started_at - old.started_at > 20 * DAY_MS
    child = _tree(traces, old)[0]
    assert abs(child.started_at - old.started_at) < 60_000


@pytest.mark.parametrize("source", CASES)
def test_killed_opencode_leaves_a_running_call(source: Path) -> None:
    traces = extract_traces(source)
    root = _roots(traces)["Slow work"]
    (call,) = _tree(traces, root)
    assert call.status == "running"
    assert call.prompt_output is None
    assert call.ended_at is None and call.duration_ms is None
    assert call.child_session_id is not None  # found by title when 1.1.x wrote no metadata
    assert root.status == "running"


def test_depth_limit_error_without_child_session() -> None:
    traces = extract_traces(FIXTURES / "depth-limit-1.18.33")
    (err,) = [t for t in traces if t.status == "error"]
    assert err.child_session_id is None
    assert err.subagent_type == "coder" and err.parent_agent == "planner"
    assert err.prompt_output.startswith("Subagent depth limit reached (1).")
    assert err.tokens_in == 0 and err.tools_used == ()
    planner = next(t for t in traces if t.subagent_type == "planner")
    assert err.parent_trace_id == planner.trace_id
    assert err.duration_ms is not None and err.duration_ms >= 0


def _child_run(db: Path, child: str) -> tuple[int, int]:
    """The child session's first message created and its last assistant message completed, as stored."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(
            "SELECT min(time_created), max(CASE WHEN json_extract(data, '$.role') = 'assistant'"
            " THEN json_extract(data, '$.time.completed') END) FROM message WHERE session_id = ?",
            (child,)).fetchone()
    finally:
        conn.close()


@pytest.mark.parametrize(("case", "status", "output"), [
    ("Background tools", "completed", "Finished. Summary of work for: Inspect the project."),
    ("Background fail", "error", "APIError: scripted provider failure"),
    ("Background cut", "error", "MessageAbortedError: Aborted"),
])
def test_a_background_delegation_runs_as_long_as_its_child_session(case: str, status: str, output: str) -> None:
    """A `task` call with `background: true` returns at once ("Background task started") and the result comes
    later; its start, end, status and answer are its child session's (tests/fixtures/background-1.18.33)."""
    traces = extract_traces(BACKGROUND_118)
    (call,) = [t for t in traces if t.kind == "delegation" and t.description == case]
    start, end = _child_run(BACKGROUND_118 / "opencode.db", call.child_session_id)
    assert (call.started_at, call.ended_at, call.duration_ms) == (start, end, end - start)
    assert call.duration_ms > 1000  # the tool call itself took about 300 ms
    assert call.status == status
    assert call.prompt_output == output
