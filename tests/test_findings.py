"""Findings in the steps (analytics/queries/findings.py): repeated identical calls, error streaks, interrupted
and stalled calls and context blow-ups, on the stores the real binaries wrote for each case
(tests/fixtures/steps-NOTES.md); the time-dependent rules are judged at a `now_ms` the test chooses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analytics import format as fmt
from analytics.cli import main
from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.queries import analysis_queries as aq
from analytics.queries import findings as sf
from analytics.queries import overview
from analytics.queries import trace_queries as q
from tests.conftest import STEPS_118, STEPS_1165, copy_store

STORES = {"sqlite-1.18.33": STEPS_118, "json-1.1.65": STEPS_1165}
MIN = 60_000


def _loaded(db: Path, source: Path) -> TraceStore:
    store = TraceStore(db)
    load(store, open_source(source))
    return store


def _roots(store: TraceStore) -> dict[str, str]:
    """Root session id -> its title (the case name)."""
    return {s.session_id: s.title for s in q.get_sessions_with_traces(store)}


def _of(store: TraceStore, found: list[sf.Finding], case: str) -> list[tuple[str, str, str]]:
    """(rule, trace kind, reason) of the findings in that case's session tree."""
    titles = _roots(store)
    return [(f.rule, f.trace.kind, f.reason) for f in found if titles.get(f.trace.root_session_id) == case]


def _killed(store: TraceStore) -> tuple[q.TraceSummary, q.TraceSummary]:
    """The Killed bash case: its session trace and its delegation (the one running `sleep 120`)."""
    root = next(k for k, v in _roots(store).items() if v == "Killed bash")
    traces = q.get_traces_by_session(store, root)
    return (next(t for t in traces if t.kind == "session"), next(t for t in traces if t.kind == "delegation"))


@pytest.fixture(params=list(STORES), ids=list(STORES))
def steps(request, tmp_path: Path):
    store = _loaded(tmp_path / "t.duckdb", STORES[request.param])
    yield store
    store.close()


def test_runaway_loops_and_error_streaks(steps: TraceStore) -> None:
    found = sf.step_findings(steps)
    assert _of(steps, found, "Runaway grep") == [
        ("repeated", "delegation", "grep 'FIXME' called 9 times with the same input"),
        ("error streak", "delegation", "9 failing tool calls in a row (grep ×9)")]
    assert _of(steps, found, "Runaway bash") == [
        ("repeated", "delegation", "bash 'git status --short' called 8 times with the same input")]
    assert _of(steps, found, "Error streak") == [
        ("error streak", "delegation", "4 failing tool calls in a row (read, glob, grep, read)")]
    # two failures (Failing tools) are not a streak, four identical calls in one step (Doom loop) not a loop
    assert _of(steps, found, "Failing tools") == [] and _of(steps, found, "Doom loop") == []
    streak = next(f for f in found if f.rule == sf.ERROR_STREAK and f.reason.startswith("4 "))
    assert [s.status for s in q.get_spans(steps, streak.trace.trace_id) if s.span_id in streak.span_ids] == \
        ["error"] * 4
    assert not any(f.rule == sf.CONTEXT for f in found)  # the mock's token counts stay ordinary


def test_killed_run_is_interrupted_long_after_its_last_write(steps: TraceStore) -> None:
    session, call = _killed(steps)
    last = sf.last_write_ms(steps, call)
    bash = next(s for s in q.get_spans(steps, call.trace_id) if s.name == "bash")
    updated = steps.cursor().execute("SELECT max(epoch_ms(updated_at)) FROM sessions WHERE root_session_id = ?",
                                     [session.root_session_id]).fetchone()[0]
    assert bash.status == "running" and last == max(updated, bash.started_at)
    assert sf.last_write_ms(steps, session) == last

    later = sf.time_findings(steps, last + 6 * 60 * MIN)
    mine = {f.trace.trace_id: f for f in later if f.trace.root_session_id == session.root_session_id}
    assert set(mine) == {session.trace_id, call.trace_id}
    assert {f.rule for f in mine.values()} == {sf.INTERRUPTED}
    assert mine[call.trace_id].reason == (f"interrupted: no write since {fmt.minute(last)}, 6 h ago "
                                          "(bash 'sleep 120' still marked running)")
    assert mine[call.trace_id].last_write_ms == last and bash.span_id in mine[call.trace_id].span_ids
    # the tables keep what OpenCode recorded
    assert q.get_traces(steps, [call.trace_id])[0].status == "running"

    assert not [f for f in sf.time_findings(steps, last + MIN) if f.trace.root_session_id == session.root_session_id]


def test_a_running_call_without_a_new_step_is_stalled_before_it_is_interrupted(steps: TraceStore) -> None:
    session, call = _killed(steps)
    last = sf.last_write_ms(steps, call)
    found = [f for f in sf.time_findings(steps, last + 7 * MIN) if f.trace.root_session_id == session.root_session_id]
    # the session trace waits on its delegation: only the delegation, whose bash made no progress, is stalled
    assert [(f.rule, f.trace.trace_id) for f in found] == [(sf.STALLED, call.trace_id)]
    assert found[0].reason == ("stalled: bash 'sleep 120' with no new step for 7 min, while its session is still "
                               "being written (last write 7 min ago)")


def test_stalled_while_the_session_is_still_written(tmp_path: Path) -> None:
    """A copy of the 1.18.33 store whose Killed bash sessions were written 20 minutes later (as a session that
    keeps being updated while its bash call hangs): 25 minutes after the bash started, it is stalled, not
    interrupted."""
    oc = copy_store(STEPS_118, tmp_path / "oc")
    with sqlite3.connect(oc / "opencode.db") as conn:
        roots = [r[0] for r in conn.execute("SELECT id FROM session WHERE title = 'Killed bash'")]
        conn.execute("UPDATE session SET time_updated = time_updated + ? WHERE id = ? OR parent_id = ?",
                     [20 * MIN, roots[0], roots[0]])
    with _loaded(tmp_path / "t.duckdb", oc) as store:
        session, call = _killed(store)
        bash = next(s for s in q.get_spans(store, call.trace_id) if s.name == "bash")
        last = sf.last_write_ms(store, call)
        assert last > bash.started_at + 19 * MIN
        now = bash.started_at + 25 * MIN
        found = [f for f in sf.time_findings(store, now) if f.trace.root_session_id == session.root_session_id]
        assert [f.rule for f in found] == [sf.STALLED]
        assert "no new step for 25 min" in found[0].reason and found[0].last_write_ms == last


def test_an_llm_call_far_above_its_agents_usual_context(tmp_path: Path) -> None:
    """A copy of the 1.18.33 store where one step of the Many tools coder reported 400,000 input tokens instead
    of 2,600 (the real binary cannot be made to send that much here)."""
    oc = copy_store(STEPS_118, tmp_path / "oc")
    with sqlite3.connect(oc / "opencode.db") as conn:
        changed = conn.execute(
            "UPDATE part SET data = json_set(data, '$.tokens.input', 400000)"
            " WHERE json_extract(data, '$.type') = 'step-finish' AND json_extract(data, '$.tokens.input') = 2600")
        assert changed.rowcount == 1
    with _loaded(tmp_path / "t.duckdb", oc) as store:
        found = [f for f in sf.step_findings(store) if f.rule == sf.CONTEXT]
        assert len(found) == 1
        f = found[0]
        assert f.trace.description == "Many tools" and f.trace.subagent_type == "coder"
        assert f.reason.startswith("LLM call 3 sent 400.0K tokens of context, ")
        assert "the median of coder's LLM calls" in f.reason and f.ratio > 50
        assert [s.tokens_in for s in q.get_spans(store, f.trace.trace_id) if s.span_id in f.span_ids] == [400000]


def test_findings_flow_through_the_analysis_the_tree_reads(steps: TraceStore) -> None:
    """One flag per trace, every sentence in its reason, strongest first; "anomalies only" keeps those trees."""
    session, call = _killed(steps)
    now = sf.last_write_ms(steps, call) + 6 * 60 * MIN
    flags = sf.flag_traces([*aq.find_anomalies(aq.forest(steps)), *sf.find_findings(steps, now)])
    grep = next(f for f in flags.values() if f.trace.description == "Runaway grep")
    assert grep.reason == ("9 failing tool calls in a row (grep ×9); "
                           "grep 'FIXME' called 9 times with the same input")
    assert flags[call.trace_id].last_write_ms == sf.last_write_ms(steps, call)
    traces, hits = q.filter_traces(steps, q.TraceFilter())
    kept, kept_hits, _ = overview.refine(traces, hits, None, True, flags)
    assert {t.description for t in kept if t.trace_id in kept_hits} >= {"Runaway grep", "Runaway bash",
                                                                         "Error streak", "Killed bash"}
    analysis = overview.analyze(kept, {k: v for k, v in flags.items() if k in {t.trace_id for t in kept}}, [])
    assert analysis.anomalies[grep.trace.trace_id].reason == grep.reason


def test_cli_anomalies_lists_findings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(STEPS_118), "--db", db]) == 0
    with TraceStore(Path(db), read_only=True) as store:
        session, call = _killed(store)
        last = sf.last_write_ms(store, call)
    capsys.readouterr()
    assert main(["anomalies", "--db", db, "--now", str(last + 6 * 60 * MIN)]) == 0
    out = capsys.readouterr().out
    assert f"{call.trace_id:34} {fmt.when(call.started_at)}  interrupted: no write since" in out
    assert "grep 'FIXME' called 9 times with the same input" in out
    assert "4 failing tool calls in a row (read, glob, grep, read)" in out
    assert out.rstrip().endswith("0 anomalies, 7 findings in the steps.")

    assert main(["anomalies", "--db", db, "--json", "--now", str(last + 7 * MIN)]) == 0
    rows = json.loads(capsys.readouterr().out)
    stalled = [r for r in rows if r["finding"] == "stalled"]
    assert [(r["trace_id"], r["last_write_ms"]) for r in stalled] == [(call.trace_id, last)]
    assert not any(r["finding"] == "interrupted" for r in rows)
    repeated = {r["reason"] for r in rows if r["finding"] == "repeated"}
    assert repeated == {"grep 'FIXME' called 9 times with the same input",
                        "bash 'git status --short' called 8 times with the same input"}
    assert all(r["session_id"] and r["agent"] and r["span_ids"] for r in rows if r["finding"] != "stalled")

    with pytest.raises(SystemExit) as exc:
        main(["anomalies", "--db", db, "--now", "yesterday"])
    assert exc.value.code == 2
    assert "not a time: 'yesterday'" in capsys.readouterr().err


@pytest.mark.gui
def test_the_window_flags_findings_in_the_tree_and_the_metrics_list(qtbot, tmp_path: Path) -> None:
    """The window reads the findings through the same analysis as the anomalies: ⚠ and the reason in the tree,
    a row in the Metrics tab's list."""
    from analytics.settings import Settings
    from dashboard.app import Choice, build

    w, _service = build(Choice(open_source(copy_store(STEPS_118, tmp_path / "oc")), tmp_path / "t.duckdb", "x"),
                        Settings(refresh_seconds=3600))
    qtbot.addWidget(w)
    with qtbot.wait_signal(w.tracing.ready, timeout=20_000):
        w.show()
    tree = w.tracing.tree
    def call(description: str) -> str:  # the delegation's row (its session's row shows the same title)
        return next(t for t, i in tree.items.items() if i.text(1) == description and i.parent() is not None)

    grep = call("Runaway grep")
    assert tree.marks.flags[grep] == ("9 failing tool calls in a row (grep ×9); "
                                "grep 'FIXME' called 9 times with the same input")
    assert tree.items[grep].text(0).endswith("⚠")
    streak = call("Error streak")
    assert tree.marks.flags[streak] == "4 failing tool calls in a row (read, glob, grep, read)"
    w.tabs.setCurrentWidget(w.metrics)  # filled when shown
    odd = w.metrics.odd
    reasons = {odd.topLevelItem(i).text(1) for i in range(odd.topLevelItemCount())}
    assert {tree.marks.flags[grep], tree.marks.flags[streak]} <= reasons
    w.close()


@pytest.mark.gui
def test_a_session_that_goes_quiet_is_judged_interrupted_without_a_new_write(qtbot, tmp_path: Path) -> None:
    """Nothing is written once OpenCode dies, so the data never changes: the worker judges the time-dependent
    findings again on a refresh that found nothing new, while calls still run, and hands over a new snapshot
    when one crossed its threshold (here the clock the worker judges by is set, not waited for)."""
    from dashboard.data import DataService

    source = copy_store(STEPS_118, tmp_path / "oc")
    db = tmp_path / "t.duckdb"
    with _loaded(db, source) as store:
        _session, call = _killed(store)
        last = sf.last_write_ms(store, call)
    service = DataService(db, open_source(source))
    clock = [(last + MIN) / 1000]
    service.clock = lambda: clock[0]

    def refresh(shown: int | None):
        with qtbot.wait_signal(service.done, timeout=20_000) as blocker:
            service.refresh(q.TraceFilter(), load_first=True, shown=shown)
        return blocker.args[0]

    def details():  # what the detail pane shows: judged by the same clock as the tree
        with qtbot.wait_signal(service.details, timeout=20_000) as blocker:
            service.fetch_details(call.trace_id)
        return blocker.args[1][0]

    try:
        first = refresh(None)
        assert first.changed and call.trace_id not in first.analysis.anomalies
        assert details().time.stopped_ms is None  # (by the wall clock, years later, it would be interrupted)
        assert refresh(first.version).changed is False  # nothing new, nothing crossed: no new snapshot
        clock[0] = (last + 11 * MIN) / 1000
        again = refresh(first.version)
        assert again.changed and again.version == first.version
        assert again.analysis.anomalies[call.trace_id].interrupted_ms == last
        assert details().time.stopped_ms == last
        assert refresh(again.version).changed is False
    finally:
        service.stop()
