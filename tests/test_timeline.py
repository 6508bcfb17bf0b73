"""The time line's arithmetic (analytics/timeline.py), without Qt: where a running call ends, and where a bar
lies on its session's time scale; and the findings and the time split judging "interrupted" by the one rule,
so that the tree (findings) and the detail pane (the split) agree at the threshold itself."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from analytics import timeline
from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.queries import findings as sf
from analytics.queries import time_split as ts
from analytics.queries import trace_queries as q
from analytics.timeline import INTERRUPTED_MS, Bounds
from tests.conftest import STEPS_118


@dataclass(frozen=True)
class Call:
    started_at: int
    ended_at: int | None
    status: str
    trace_id: str = "t"
    root_session_id: str = "r"


def test_a_running_call_is_interrupted_once_its_tree_is_silent_for_the_threshold() -> None:
    assert timeline.interrupted_at(1000, 1000 + INTERRUPTED_MS - 1) is None
    assert timeline.interrupted_at(1000, 1000 + INTERRUPTED_MS) == 1000
    assert timeline.interrupted_at(None, 10**15) is None


def test_where_a_call_ends() -> None:
    assert timeline.end_of(Call(100, 300, "completed"), now=900) == 300
    assert timeline.end_of(Call(100, None, "running"), now=900) == 900
    assert timeline.end_of(Call(100, None, "running"), now=900, stopped=400) == 400
    assert timeline.end_of(Call(100, None, "running"), now=900, stopped=50) == 100  # never before its start
    assert timeline.end_of(Call(100, None, "error"), now=900) == 100  # its end lost: a bar of no length
    assert timeline.running_for(Call(100, None, "running"), now=900) == 800
    assert timeline.running_for(Call(100, None, "running"), now=900, stopped=400) == 300
    assert timeline.running_for(Call(100, None, "running"), now=50) == 0


def test_a_bar_on_its_sessions_time_scale() -> None:
    scale = Bounds(start=1000, end=2000, running=False)
    assert timeline.call_bar(Call(1000, 2000, "completed"), scale, now=5000) == (0.0, 1.0)
    assert timeline.call_bar(Call(1250, 1500, "completed"), scale, now=5000) == (0.25, 0.25)
    # a running session's scale reaches now; an interrupted call ends at its tree's last write
    running = Bounds(1000, 2000, True)
    assert timeline.call_bar(Call(1500, None, "running"), running, now=3000) == (0.25, 0.75)
    assert timeline.call_bar(Call(1500, None, "running"), scale, now=3000, stopped=2000) == (0.5, 0.5)
    # clipped to the column, stretched to a call that ends past the scale
    assert timeline.bar(1500, 3000, 1000, 1000) == (0.5, 0.5)
    assert timeline.call_bar(Call(1000, 3000, "completed"), scale, now=0) == (0.0, 1.0)


def test_a_sessions_scale_runs_on_while_a_call_in_it_runs_and_is_not_interrupted() -> None:
    calls = [Call(1000, None, "running", "root"), Call(1200, 1800, "completed", "a"),
             Call(1300, None, "running", "b"), Call(5000, 6000, "completed", "c", "other")]
    bounds = timeline.session_bounds(calls, stops={})
    assert bounds == {"r": Bounds(1000, 1800, True), "other": Bounds(5000, 6000, False)}
    stopped = timeline.session_bounds(calls, stops={"root": 2500, "b": 2500})
    assert stopped["r"] == Bounds(1000, 2500, False)


def test_the_arithmetic_needs_no_qt() -> None:
    code = "import sys, analytics.timeline; sys.exit(1 if any(m.startswith('PyQt') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.fixture
def steps(tmp_path: Path):
    store = TraceStore(tmp_path / "t.duckdb")
    load(store, open_source(STEPS_118))
    yield store
    store.close()


def test_the_findings_and_the_time_split_agree_at_the_threshold(steps: TraceStore) -> None:
    """"Killed bash" is still running in OpenCode's store: one millisecond before the threshold neither calls
    it interrupted, at the threshold both do, and both end it at the same last write."""
    root = next(t for t in q.search_traces(steps, "Killed bash") if t.kind == "session")
    ids = [t.trace_id for t in q.get_traces_by_session(steps, root.trace_id)]
    last = sf.last_write_ms(steps, root)
    for now, interrupted in ((last + INTERRUPTED_MS - 1, False), (last + INTERRUPTED_MS, True)):
        found = {f.trace.trace_id: f for f in sf.time_findings(steps, now) if f.rule == sf.INTERRUPTED}
        splits = ts.time_splits(steps, ids, now_ms=now)
        assert {tid for tid in ids if tid in found} == ({tid for tid in ids if splits[tid].running}
                                                       if interrupted else set())
        assert {splits[tid].stopped_ms for tid in ids if splits[tid].running} == ({last} if interrupted else {None})
        assert all(found[tid].last_write_ms == last for tid in found)
