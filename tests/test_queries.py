"""Each named query, against a store loaded from real OpenCode data."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.queries import trace_queries as q
from tests.conftest import CASES_118, SAMPLE_118, copy_store

PARALLEL = "Scripted session 1"


@pytest.fixture
def loaded(store: TraceStore) -> TraceStore:
    load(store, open_source(CASES_118))
    return store


def _session(store: TraceStore, title: str) -> str:
    return store.conn.execute("SELECT session_id FROM sessions WHERE title = ?", [title]).fetchone()[0]


def test_sessions_with_traces_newest_first_with_tree_totals(loaded: TraceStore) -> None:
    rows = q.get_sessions_with_traces(loaded)
    assert len(rows) == 5
    assert [r.created_at for r in rows] == sorted((r.created_at for r in rows), reverse=True)
    par = next(r for r in rows if r.title == PARALLEL)
    assert par.delegation_count == 4 and par.error_count == 0
    tree = q.get_trace_tree(loaded, par.session_id)[0]
    assert (par.tokens_in, par.tokens_out) == (tree.total_tokens_in, tree.total_tokens_out)
    assert par.cost_usd == pytest.approx(tree.total_cost_usd)
    newest = max(r.created_at for r in rows)
    recent = q.get_sessions_with_traces(loaded, since_ms=newest - 7 * 86_400_000)
    assert len(recent) == 4  # the three-week-old session is out


def test_trace_tree_nests_and_totals_descendants(loaded: TraceStore) -> None:
    (root,) = q.get_trace_tree(loaded, _session(loaded, PARALLEL))
    assert root.trace.kind == "session" and root.descendants == 4
    assert [c.trace.description for c in root.children] == ["Alpha job", "Beta job", "Gamma job"]
    beta = root.children[1]
    assert [c.trace.subagent_type for c in beta.children] == ["reviewer"]
    assert beta.total_tokens_in == beta.trace.tokens_in + beta.children[0].trace.tokens_in
    assert root.total_tokens_in == sum(n.trace.tokens_in for n in root.walk())
    # asking with a child session id gives the same tree
    (again,) = q.get_trace_tree(loaded, beta.trace.child_session_id)
    assert again.trace.trace_id == root.trace.trace_id


def _agent(store: TraceStore, agent: str) -> list[q.TraceSummary]:
    """The calls of this agent (the hits of a filter on it)."""
    traces, hits = q.filter_traces(store, q.TraceFilter(agent=agent))
    return [t for t in traces if t.trace_id in hits]


def test_traces_by_session_date_and_agent(loaded: TraceStore) -> None:
    sid = _session(loaded, PARALLEL)
    assert len(q.get_traces_by_session(loaded, sid)) == 5
    beta_child = next(t for t in q.get_traces_by_session(loaded, sid) if t.description == "Beta job")
    assert [t.description for t in q.get_traces_by_session(loaded, beta_child.child_session_id)] == ["Check beta"]
    assert {t.description for t in _agent(loaded, "reviewer")} == {"Gamma job", "Check beta", "Huge context"}
    all_traces, _hits = q.filter_traces(loaded, q.TraceFilter())
    assert len(all_traces) == 14
    start = min(t.started_at for t in all_traces)
    old, _hits = q.filter_traces(loaded, q.TraceFilter(start_ms=start, end_ms=start + 86_400_000))
    assert {t.subagent_type for t in old} == {"build", "general"} and len(old) == 2
    assert all(len(t.input_preview) <= q.PREVIEW_CHARS for t in all_traces)


def test_trace_details_full_text_chain_and_totals(loaded: TraceStore) -> None:
    big = next(t for t in _agent(loaded, "reviewer") if t.description == "Huge context")
    d = q.get_trace_details(loaded, big.trace_id)
    assert len(d.trace.prompt_input.encode()) >= 400 * 1024
    assert d.chain == ("build", "reviewer")
    nested = next(t for t in _agent(loaded, "reviewer") if t.description == "Check beta")
    d = q.get_trace_details(loaded, nested.trace_id)
    assert d.chain == ("build", "coder", "reviewer")
    assert d.directory.endswith("proj dir")
    assert q.get_trace_details(loaded, "nope") is None


@pytest.mark.parametrize("needle, expect", [
    ("CHECK IT", {"Check beta", "Beta job", None}),  # case-insensitive, prompts of the chain
    ("中文", {"Huge context"}),
    ("עברית", {"Huge context"}),
    ("ΩΜΈΓΑ", {"Huge context"}),  # case folding beyond ASCII
    ("version two", {"Write v2"}),  # the resumed call (the session prompt is its first message, v1)
    ("%_", set()),  # LIKE metacharacters are plain text
])
def test_search_any_script(loaded: TraceStore, needle: str, expect: set) -> None:
    found = {t.description if t.kind == "delegation" else None for t in q.search_traces(loaded, needle)}
    assert found == expect


@pytest.fixture
def istanbul(store: TraceStore, tmp_path: Path) -> TraceStore:
    """The cases store with the "Alpha job" task's prompt rewritten to hold a dotted capital I."""
    live = copy_store(CASES_118, tmp_path / "opencode")
    conn = sqlite3.connect(live / "opencode.db")
    pid, data = conn.execute("SELECT id, data FROM part WHERE data LIKE '%\"description\":\"Alpha job\"%'"
                             ).fetchone()
    part = json.loads(data)
    part["state"]["input"]["prompt"] = "Plan the trip to İstanbul, then do alpha."
    conn.execute("UPDATE part SET data = ? WHERE id = ?", [json.dumps(part, ensure_ascii=False), pid])
    conn.commit()
    conn.close()
    load(store, open_source(live))
    return store


@pytest.mark.parametrize("needle", ["İstanbul", "İSTANBUL", "istanbul", "ISTANBUL", "trip to i"])
def test_search_and_the_window_filter_fold_a_dotted_capital_i(istanbul: TraceStore, needle: str) -> None:
    """Python's "İ".lower() is "i" + a combining dot, DuckDB's lower() is "i": both sides go through SQL."""
    assert [t.description for t in q.search_traces(istanbul, needle)] == ["Alpha job"]
    assert q.count_matching(istanbul, needle) == 1
    traces, hits = q.filter_traces(istanbul, q.TraceFilter(text=needle))
    assert [t.description for t in traces if t.trace_id in hits] == ["Alpha job"]


def test_search_total_counts_past_the_limit(loaded: TraceStore) -> None:
    everything = q.search_traces(loaded, "", limit=1000)
    assert len(q.search_traces(loaded, "", limit=3)) == 3
    assert q.count_matching(loaded, "") == len(everything) == 14


def test_session_summary(loaded: TraceStore) -> None:
    s = q.get_session_summary(loaded, _session(loaded, PARALLEL))
    assert s.delegation_count == 4 and s.error_count == 0 and s.running_count == 0
    assert s.max_depth == 2 and s.deepest_chain == ("build", "coder", "reviewer")
    assert s.status == "completed" and s.total_ms and s.total_ms > 0
    slow = q.get_session_summary(loaded, _session(loaded, "Scripted session 43"))
    assert slow.running_count == 2 and slow.status == "running"


def test_session_summary_counts_errors(store: TraceStore) -> None:
    load(store, open_source(SAMPLE_118))
    deploy = store.conn.execute("SELECT root_session_id FROM agent_traces WHERE status = 'error'").fetchone()[0]
    s = q.get_session_summary(store, deploy)
    assert s.error_count == 1 and s.delegation_count == 1


def test_prefix_resolution(loaded: TraceStore) -> None:
    sid = _session(loaded, PARALLEL)
    assert q.resolve_session_id(loaded, sid[:14]) == sid
    assert q.resolve_session_id(loaded, "ses_") is None  # ambiguous
    tid = _agent(loaded, "coder")[0].trace_id
    assert q.resolve_trace_id(loaded, tid) == tid

