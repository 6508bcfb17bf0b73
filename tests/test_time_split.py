"""Where the time went (analytics/queries/time_split.py), on every real fixture store: the four parts add up to
each trace's duration, agree with a plain merge of the intervals, count parallel delegations once, and keep
growing for a running trace; per-agent sums and per-tool figures."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.queries import time_split as ts
from analytics.queries import trace_queries as q
from analytics.queries.analysis_queries import percentile
from analytics.timeline import INTERRUPTED_MS
from dashboard.data import open_store
from tests.conftest import (
    CASES_118,
    CASES_1165,
    FIXTURES,
    SAMPLE_118,
    SAMPLE_1165,
    STEPS_118,
    STEPS_1165,
    build_v2_store,
)

SOURCES = {
    "steps-1.18.33": STEPS_118, "steps-1.1.65": STEPS_1165, "cases-1.18.33": CASES_118,
    "cases-1.1.65": CASES_1165 / "storage", "sample-1.18.33": SAMPLE_118, "sample-1.1.65": SAMPLE_1165 / "storage",
    "depth-limit-1.18.33": FIXTURES / "depth-limit-1.18.33", "imported-1.15.13": FIXTURES / "imported-1.15.13",
    "sample-2.0.26": None,
}
NOW = 1_900_000_000_000  # after every fixture was written: a running trace runs until then


def loaded(tmp_path: Path, name: str) -> TraceStore:
    source = SOURCES[name] or build_v2_store(tmp_path / "oc2").parent
    store = TraceStore(tmp_path / f"{name}.duckdb")
    load(store, open_source(source))
    return store


@pytest.fixture(params=list(SOURCES), ids=list(SOURCES))
def any_store(request, tmp_path: Path):
    store = loaded(tmp_path, request.param)
    yield store
    store.close()


@pytest.fixture
def steps(tmp_path: Path):
    store = loaded(tmp_path, "steps-1.18.33")
    yield store
    store.close()


def _union(intervals: list[tuple[int, int]]) -> int:
    """The length of a union of intervals, by merging them (the plain way, to check the SQL against)."""
    total, reach = 0, None
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if reach is None or a >= reach:
            total, reach = total + b - a, b
        elif b > reach:
            total, reach = total + b - reach, b
    return total


def _expected(store: TraceStore, t: q.TraceSummary, children: list[q.TraceSummary], now: int) -> tuple[int, ...]:
    """(LLM, tools, waiting, idle) by the precedence the module documents, from the traces and spans as read."""
    t0 = t.started_at
    t1 = t.ended_at if t.ended_at is not None else max(now, t0)

    def clip(a: int, b: int | None) -> tuple[int, int]:
        return max(a, t0), min(t1 if b is None else b, t1)

    spans = q.get_spans(store, t.trace_id)
    d = [clip(c.started_at, c.ended_at) for c in children]
    tools = [clip(s.started_at, s.ended_at) for s in spans if s.kind == "tool"]
    llm = [clip(s.started_at, s.ended_at) for s in spans if s.kind == "llm"]
    waiting, with_tools, everything = _union(d), _union(d + tools), _union(d + tools + llm)
    return everything - with_tools, with_tools - waiting, waiting, (t1 - t0) - everything


def _all_traces(store: TraceStore) -> list[q.TraceSummary]:
    return [t for s in q.get_sessions_with_traces(store) for t in q.get_traces_by_session(store, s.session_id)]


def _by_title(store: TraceStore, title: str) -> q.TraceSummary:
    session = next(s for s in q.get_sessions_with_traces(store) if s.title == title)
    return next(t for t in q.get_traces_by_session(store, session.session_id) if t.kind == "session")


def test_the_four_parts_add_up_to_the_duration_of_every_trace(any_store: TraceStore) -> None:
    traces = _all_traces(any_store)
    assert traces
    splits = ts.time_splits(any_store, now_ms=NOW)
    assert set(splits) == {t.trace_id for t in traces}
    for t in traces:
        s = splits[t.trace_id]
        parts = (s.llm_ms, s.tool_ms, s.waiting_ms, s.idle_ms)
        assert min(parts) >= 0, (t.trace_id, parts)
        assert sum(parts) == s.total_ms
        if t.ended_at is not None:
            assert s.total_ms == t.ended_at - t.started_at and not s.running
        else:  # every running call of the fixtures is interrupted by NOW: it ends at its tree's last write
            end = ts.last_writes(any_store.cursor(), [t.root_session_id])[t.root_session_id]
            assert s.running and s.stopped_ms == end and s.total_ms == max(end - t.started_at, 0)
        children = [c for c in traces if c.parent_trace_id == t.trace_id and c.kind == "delegation"]
        assert parts == _expected(any_store, t, children, s.stopped_ms or NOW), t.trace_id


def test_one_trace_split_is_the_same_as_in_the_whole_store(steps: TraceStore) -> None:
    everything = ts.time_splits(steps, now_ms=NOW)
    for tid, split in everything.items():
        assert ts.time_split(steps, tid, now_ms=NOW) == split
    assert ts.time_split(steps, "no-such-trace") is None
    assert ts.time_splits(steps, [], now_ms=NOW) == {}


def test_a_delegation_with_tools_spends_its_steps_in_llm_and_tools(steps: TraceStore) -> None:
    """The "Many tools" coder child: six tool calls inside its LLM calls, no delegations of its own; its
    session waits on it, and counts none of its tools."""
    root = _by_title(steps, "Many tools")
    child = next(t for t in q.get_traces_by_session(steps, root.trace_id) if t.kind == "delegation")
    split = ts.time_split(steps, child.trace_id)
    tools = [s for s in q.get_spans(steps, child.trace_id) if s.kind == "tool"]
    assert split.waiting_ms == 0
    assert split.tool_ms == sum(s.duration_ms for s in tools)  # one call per step: no overlap
    assert split.tool_ms >= 1000  # `sleep 1; echo done`
    assert split.llm_ms > 0 and split.idle_ms > 0
    session = ts.time_split(steps, root.trace_id)
    assert session.waiting_ms == child.duration_ms
    assert session.tool_ms == 0


def test_parallel_delegations_are_waited_on_once(tmp_path: Path) -> None:
    for name in ("cases-1.18.33", "cases-1.1.65"):
        store = loaded(tmp_path, name)
        root = next(t for t in _all_traces(store)
                    if t.kind == "session" and t.input_preview.split(".")[0].strip('"') == "Parallel work")
        calls = [t for t in q.get_traces_by_session(store, root.trace_id) if t.parent_trace_id == root.trace_id]
        assert len(calls) == 3
        first = min(c.started_at for c in calls)
        last = max(c.ended_at for c in calls)
        split = ts.time_split(store, root.trace_id)
        assert split.waiting_ms == last - first  # the three overlap: their span, once
        assert split.waiting_ms < sum(c.duration_ms for c in calls)
        store.close()


def test_a_running_trace_runs_until_now_then_stops_at_its_last_write_once_interrupted(steps: TraceStore) -> None:
    """"Killed bash": the session and its child are still running (OpenCode was killed); the child's `sleep 120`
    never ended. While the tree was written less than 10 minutes ago the split grows with the clock: the session
    waits longer on its child, the child spends longer in its tool. Once the tree is silent for 10 minutes the
    call is interrupted: its split ends at the last write, like its bar, and no longer grows."""
    root = _by_title(steps, "Killed bash")
    child = next(t for t in q.get_traces_by_session(steps, root.trace_id) if t.kind == "delegation")
    assert root.status == child.status == "running"
    last = ts.last_writes(steps.cursor(), [root.trace_id])[root.trace_id]
    ids = [root.trace_id, child.trace_id]
    before = ts.time_splits(steps, ids, now_ms=last + 60_000)
    after = ts.time_splits(steps, ids, now_ms=last + 120_000)
    assert before[root.trace_id].running and before[child.trace_id].stopped_ms is None
    assert after[root.trace_id].waiting_ms - before[root.trace_id].waiting_ms == 60_000
    assert after[child.trace_id].tool_ms - before[child.trace_id].tool_ms == 60_000
    for tid in ids:
        b, a = before[tid], after[tid]
        assert (a.llm_ms, a.idle_ms) == (b.llm_ms, b.idle_ms)
        assert a.total_ms == b.total_ms + 60_000
    stopped = ts.time_splits(steps, ids, now_ms=last + INTERRUPTED_MS)
    assert stopped == ts.time_splits(steps, ids, now_ms=NOW)  # no longer growing
    for tid in ids:
        assert stopped[tid].running and stopped[tid].stopped_ms == last
    assert stopped[root.trace_id].total_ms == last - root.started_at
    assert ts.split_note(stopped[root.trace_id]).startswith(" (interrupted: no write since ")
    # a clock behind the trace's start: nothing is negative
    early = ts.time_split(steps, root.trace_id, now_ms=root.started_at - 5_000)
    assert early.total_ms == 0 and (early.llm_ms, early.tool_ms, early.waiting_ms, early.idle_ms) == (0, 0, 0, 0)


def test_per_agent_sums_leave_running_traces_out(steps: TraceStore) -> None:
    splits = ts.time_splits(steps, now_ms=NOW)
    agents = {a.agent: a for a in ts.agent_times(splits.values())}
    assert agents == {a.agent: a for a in ts.agent_time_splits(steps, now_ms=NOW)}
    for agent, a in agents.items():
        mine = [s for s in splits.values() if s.agent == agent]
        done = [s for s in mine if not s.running]
        assert (a.traces, a.running) == (len(done), len(mine) - len(done))
        for part in (*ts.PARTS, "total_ms"):
            assert getattr(a, part) == sum(getattr(s, part) for s in done)
        assert a.llm_ms + a.tool_ms + a.waiting_ms + a.idle_ms == a.total_ms
    assert agents["general"].running == 1 and agents["general"].traces == 0  # only the killed run
    assert agents["build"].running == 1
    assert ts.agent_times([]) == []


def test_per_tool_figures(steps: TraceStore) -> None:
    stats = ts.tool_stats(steps)
    spans = [(t.subagent_type, s) for t in _all_traces(steps) for s in q.get_spans(steps, t.trace_id)
             if s.kind == "tool"]
    by_key = {(x.agent, x.tool): x for x in stats}
    for (agent, tool), x in by_key.items():
        mine = [s for a, s in spans if s.name == tool and (agent is None or a == agent)]
        durations = [s.duration_ms for s in mine if s.duration_ms is not None]
        assert x.calls == len(mine)
        assert x.errors == sum(s.status == "error" for s in mine)
        assert x.median_ms == (statistics.median(durations) if durations else None)
        assert x.p95_ms == percentile(durations, 95)
        assert x.total_ms == sum(durations)
    assert (by_key[("coder", "grep")].calls, by_key[("coder", "grep")].errors) == (13, 13)  # no ripgrep offline
    assert by_key[(None, "bash")].calls == 26
    assert by_key[("general", "bash")].median_ms is None  # its one call never ended
    for agent in {x.agent for x in stats}:
        shares = [x.share for x in stats if x.agent == agent]
        if any(shares):
            assert sum(shares) == pytest.approx(1.0)
    # busiest first within each agent; the all-agents rows last
    assert [x.agent for x in stats][-4:] == [None] * 4
    coder = [x.total_ms for x in stats if x.agent == "coder"]
    assert coder == sorted(coder, reverse=True)


def test_per_tool_figures_in_a_scope(steps: TraceStore) -> None:
    root = _by_title(steps, "Runaway grep")
    ids = [t.trace_id for t in q.get_traces_by_session(steps, root.trace_id)]
    stats = ts.tool_stats(steps, ids)
    assert {(x.agent, x.tool, x.calls, x.errors) for x in stats} == {("coder", "grep", 9, 9), (None, "grep", 9, 9)}
    assert all(x.share == 1.0 for x in stats)
    assert ts.tool_stats(steps, []) == []


def test_split_text() -> None:
    split = ts.TimeSplit("t", "coder", False, 100_000, 41_200, 3_000, 2_500, 53_300)
    assert ts.split_text(split) == "LLM 41.2 s · tools 3.0 s · waiting on delegations 2.5 s · idle 53.3 s"


# -- on real widgets -------------------------------------------------------------------------------------------


@pytest.fixture
def window(qtbot, tmp_path: Path):
    from tests.conftest import open_window, wait_idle

    w, section = open_window(qtbot, STEPS_118, tmp_path / "t.duckdb")
    wait_idle(qtbot, section.service)
    yield w
    w.close()


def _colour_at(widget, x: int, y: int):
    return widget.grab().toImage().pixelColor(x, y).name()


@pytest.mark.gui
def test_the_detail_pane_says_where_the_time_went(qtbot, window, tmp_path: Path) -> None:
    from dashboard.widgets.detail_pane import TIME_FIELD
    from dashboard.widgets.roles import Role
    from dashboard.widgets.time_split_bar import TIME_COLOURS
    from tests.conftest import delegation, expand, wait_idle

    section = window.tracing
    row = delegation(section, "Many tools")
    tid = row.data(0, Role.TRACE).trace_id
    section.tree.setCurrentItem(row)
    qtbot.wait_until(lambda: section.detail.details is not None and section.detail.details.trace.trace_id == tid,
                     timeout=20_000)
    pane = section.detail
    with open_store(window.service.db_path, read_only=True) as store:  # waits out a live refresh
        expected = ts.time_split(store, tid)
    assert pane.details.time == expected
    assert pane.values[TIME_FIELD].text() == ts.split_text(expected)
    assert pane.values[TIME_FIELD].text().startswith("LLM ") and "· idle " in pane.values[TIME_FIELD].text()
    assert pane.form.isRowVisible(pane.field_widgets[TIME_FIELD])
    assert pane.time_bar.split == expected
    bar = pane.time_bar
    assert _colour_at(bar, 1, bar.height() // 2) == TIME_COLOURS["llm_ms"].name()  # LLM first, and the most of it
    assert _colour_at(bar, bar.width() - 1, bar.height() // 2) == TIME_COLOURS["idle_ms"].name()
    # a step shows no split; the session OpenCode was killed in shows its split up to its last write
    rows = expand(qtbot, section, row)
    section.tree.setCurrentItem(rows[0])
    qtbot.wait_until(lambda: pane.step is not None)
    assert not pane.form.isRowVisible(pane.field_widgets[TIME_FIELD])
    killed = next(i for i in section.tree.items.values()
                  if i.data(0, Role.TRACE).kind == "session" and i.data(0, Role.TRACE).status == "running")
    section.tree.setCurrentItem(killed)
    qtbot.wait_until(lambda: pane.details is not None and pane.details.trace.status == "running", timeout=20_000)
    assert "(interrupted: no write since " in pane.values[TIME_FIELD].text()
    assert "waiting on delegations" in pane.values[TIME_FIELD].text()
    assert pane.values["Duration"].text().startswith("interrupted after ")
    wait_idle(qtbot, section.service)


@pytest.mark.gui
@pytest.mark.qt_log_ignore("This plugin does not support raise")  # the offscreen platform, showing a tooltip
def test_the_metrics_tab_shows_time_per_agent_and_tools(qtbot, window) -> None:
    from PyQt6.QtCore import QEvent, QPoint, Qt
    from PyQt6.QtGui import QHelpEvent
    from PyQt6.QtWidgets import QApplication, QToolTip

    from dashboard.widgets.time_split_bar import TIME_COLOURS

    window.tabs.setCurrentWidget(window.metrics)
    m = window.metrics
    with open_store(window.service.db_path, read_only=True) as store:  # waits out a live refresh
        expected = ts.agent_time_splits(store)
        tools = ts.tool_stats(store)
    chart = m.time_chart
    assert chart.times == [a for a in expected if a.total_ms > 0]  # "general" ran only in the killed run
    assert [a.agent for a in chart.times] == ["build", "coder", "planner"]
    image = chart.grab().toImage()
    first_bar_y = 26 + 11  # the first row, mid-height
    colours = {image.pixelColor(x, first_bar_y).name() for x in range(chart.width())}
    assert {c.name() for c in TIME_COLOURS.values()} <= colours  # build waits, runs tools, thinks and idles
    pos = QPoint(50, first_bar_y)
    QToolTip.hideText()
    QApplication.sendEvent(chart, QHelpEvent(QEvent.Type.ToolTip, pos, chart.mapToGlobal(pos)))
    tip = QToolTip.text()
    assert "build: " in tip and "over 10 runs" in tip and "1 running not counted" in tip
    assert ts.split_text(chart.times[0]).split(" · ")[2] in tip  # "waiting on delegations 35.9 s"
    # the tools of all agents, then of the agent selected in the table above
    assert m.tool_agent.currentText() == "All agents"

    def table() -> dict[str, tuple]:
        return {m.tools.topLevelItem(i).text(0): tuple(m.tools.topLevelItem(i).data(c, Qt.ItemDataRole.DisplayRole)
                                                       for c in range(1, 7))
                for i in range(m.tools.topLevelItemCount())}

    everyone = {x.tool: (x.calls, x.errors, x.median_ms, x.p95_ms, x.total_ms, x.share) for x in tools
                if x.agent is None}
    assert table() == everyone
    assert m.tools.topLevelItem(0).text(0) == "bash"  # the most time first
    coder = next(m.agents.topLevelItem(i) for i in range(m.agents.topLevelItemCount())
                 if m.agents.topLevelItem(i).text(0) == "coder")
    m.agents.setCurrentItem(coder)
    assert m.tool_agent.currentText() == "coder"
    assert table()["grep"][:2] == (13, 13)
    assert set(table()) == {"bash", "grep", "read", "glob"}
    m.show_tools_of(None)
    assert table() == everyone


# -- the command line -------------------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path) -> str:
    from dashboard.cli import main

    path = str(tmp_path / "cli.duckdb")
    assert main(["load", "--source", str(STEPS_118), "--db", path]) == 0
    return path


def _run(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    from dashboard.cli import main

    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_cli_metrics_time_and_tools(cli_db: str, capsys: pytest.CaptureFixture) -> None:
    import json

    with TraceStore(cli_db, read_only=True) as store:
        times = {a.agent: a for a in ts.agent_time_splits(store)}
        tools = ts.tool_stats(store)
    data = json.loads(_run(capsys, ["metrics", "--db", cli_db, "--json", "--tools"]))
    assert {a["agent"]: ts.AgentTime(**a) for a in data["time"]} == times
    assert [ts.ToolStats(**x) for x in data["tools"]] == tools
    assert "tools" not in json.loads(_run(capsys, ["metrics", "--db", cli_db, "--json"]))
    out = _run(capsys, ["metrics", "--db", cli_db, "--tools"])
    assert "Where the time went (finished runs):" in out
    time_part = out.split("Where the time went (finished runs):")[1].split("Tools:")[0]
    coder = next(line for line in time_part.splitlines() if line.startswith("coder "))
    c = times["coder"]
    assert coder.split()[:2] == ["coder", str(c.traces)]
    assert f"{c.llm_ms / c.total_ms * 100:.0f}%" in coder
    build = next(line for line in time_part.splitlines() if line.startswith("build "))
    assert build.endswith("(+1 running)")
    tools_part = out.split("Tools:")[1].split("Slowest delegations:")[0].splitlines()
    coder_at = tools_part.index("coder")
    grep = next(line for line in tools_part[coder_at:] if line.strip().startswith("grep"))
    assert grep.split()[:3] == ["grep", "13", "13"]
    assert tools_part[tools_part.index("all agents") + 1].split()[:2] == ["bash", "26"]
    assert "Tools:" not in _run(capsys, ["metrics", "--db", cli_db])


def test_cli_show_has_the_split(cli_db: str, capsys: pytest.CaptureFixture) -> None:
    import json

    with TraceStore(cli_db, read_only=True) as store:
        root = _by_title(store, "Many tools")
        child = next(t for t in q.get_traces_by_session(store, root.trace_id) if t.kind == "delegation")
        expected = ts.time_split(store, child.trace_id)
        killed = _by_title(store, "Killed bash")
    out = _run(capsys, ["show", child.trace_id[:14], "--db", cli_db])
    assert f"Time         {ts.split_text(expected)}\n" in out
    data = json.loads(_run(capsys, ["show", child.trace_id, "--db", cli_db, "--json"]))
    assert ts.TimeSplit(**data["time"]) == expected
    running = _run(capsys, ["show", killed.trace_id, "--db", cli_db])
    assert "(interrupted: no write since " in next(line for line in running.splitlines() if line.startswith("Time "))


def test_the_split_cache_reads_once_per_data_version_and_running_traces_again(steps: TraceStore) -> None:
    cache = ts.SplitCache()
    ids = list(ts.time_splits(steps, now_ms=NOW))
    first = cache.splits_of(steps, ids, version=1, now_ms=NOW)
    assert first == [ts.time_splits(steps, now_ms=NOW)[tid] for tid in ids]
    later = {s.trace_id: s for s in cache.splits_of(steps, ids, version=1, now_ms=NOW + 1000)}
    for s in first:  # the same version: finished traces from the cache, running ones split again
        assert later[s.trace_id].total_ms == s.total_ms + (1000 if s.running and s.stopped_ms is None else 0)
    assert cache.splits_of(steps, ["no-such-trace", ids[0]], version=1, now_ms=NOW + 1000) == [later[ids[0]]]
    assert cache.splits_of(steps, ids[:2], version=2, now_ms=NOW) == first[:2] and cache.version == 2


def test_unions_of_traces_too_long_to_share_one_axis() -> None:
    """Hand-made: durations near 2**61 ms (no real store has them) put each trace on an axis of its own; the
    union lengths are the same as for short traces."""
    import numpy

    big = 1 << 61
    g = numpy.array([0, 0, 0, 1, 1, 2, 2, 2], dtype=numpy.int64)
    layer = numpy.array([3, 2, 1, 3, 3, 1, 1, 2], dtype=numpy.int64)
    s = numpy.array([0, 5, 8, 0, big - 10, 0, 5, 20], dtype=numpy.int64)
    e = numpy.array([10, 20, 9, 10, big, 10, 15, 25], dtype=numpy.int64)
    durations = numpy.array([30, big, 30], dtype=numpy.int64)
    d, dt, dtl = ts._unions(g, layer, s, e, durations)
    assert list(d) == [1, 0, 15]
    assert list(dt) == [15, 0, 20]  # [5, 20] holds [8, 9]
    assert list(dtl) == [20, 20, 20]
    short = ts._unions(g[durations[g] < big], layer[durations[g] < big], s[durations[g] < big],
                       e[durations[g] < big], numpy.array([30, 0, 30], dtype=numpy.int64))
    assert [list(x) for x in short] == [[1, 0, 15], [15, 0, 20], [20, 0, 20]]


def test_a_split_inside_a_transaction_of_the_caller(steps: TraceStore) -> None:
    expected = ts.time_splits(steps, now_ms=NOW)
    with steps.transaction():
        assert ts.time_splits(steps, now_ms=NOW) == expected
