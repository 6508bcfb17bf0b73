"""A long load goes in committed steps, newest session trees first; the store's data version follows writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import analytics.loader
from analytics.db import TraceStore
from analytics.loader import LoadProgress, load
from analytics.opencode import open_source
from tests.conftest import CASES_118, SAMPLE_1165, STEPS_118, copy_store


def _rows(store: TraceStore) -> dict[str, tuple]:
    rows = store.conn.execute("SELECT * EXCLUDE (created_at) FROM agent_traces ORDER BY trace_id").fetchall()
    return {r[0]: r for r in rows}


def _roots_newest_first(store: TraceStore) -> list[str]:
    return [r[0] for r in store.conn.execute(
        "SELECT session_id FROM sessions WHERE session_id = root_session_id ORDER BY created_at DESC").fetchall()]


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps small enough that the fixture stores (a few dozen sessions) load in several of them."""
    monkeypatch.setattr(analytics.loader, "FIRST_BATCH_ROOTS", 1)
    monkeypatch.setattr(analytics.loader, "BATCH_SESSIONS", 3)


@pytest.mark.parametrize("sample", [CASES_118, SAMPLE_1165 / "storage"], ids=["sqlite-1.18", "json-1.1"])
def test_a_stepped_load_writes_exactly_what_one_step_writes(tmp_path: Path, sample: Path, small_steps,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[LoadProgress] = []
    with TraceStore(tmp_path / "stepped.duckdb") as stepped:
        report = load(stepped, open_source(sample), progress=steps.append)
        got, newest = _rows(stepped), _roots_newest_first(stepped)
    monkeypatch.setattr(analytics.loader, "BATCH_SESSIONS", 10_000)
    with TraceStore(tmp_path / "whole.duckdb") as whole:
        load(whole, open_source(sample))
        assert got == _rows(whole)
    assert len(steps) >= 3 and report.traces_written == len(got)
    assert [s.sessions_done for s in steps] == sorted({s.sessions_done for s in steps})  # always forward
    assert steps[-1].sessions_done == steps[-1].sessions_total and steps[-1].traces_written == len(got)
    assert newest  # the first step held the newest tree: checked below on a cut load


def test_a_load_cut_after_its_first_step_keeps_the_newest_tree_and_the_next_load_finishes(
        tmp_path: Path, small_steps) -> None:
    live = copy_store(CASES_118, tmp_path / "opencode")

    class Cut(Exception):
        pass

    def cut(_step: LoadProgress) -> None:
        raise Cut

    with TraceStore(tmp_path / "t.duckdb") as store:
        with pytest.raises(Cut):
            load(store, open_source(live), progress=cut)
        first = _roots_newest_first(store)
        version = store.data_version()
        assert len(first) == 1 and version > 0
        report = load(store, open_source(live))  # not taken for unchanged: the stamp comes with the last step
        assert not report.unchanged and report.traces_written > 0
        assert store.data_version() > version
        everything = _rows(store)
    with TraceStore(tmp_path / "whole.duckdb") as whole:
        load(whole, open_source(live))
        assert everything == _rows(whole)
        assert _roots_newest_first(whole)[0] == first[0]  # the step that was kept held the newest session


def test_data_version_moves_with_every_write_and_only_then(tmp_path: Path) -> None:
    live = copy_store(CASES_118, tmp_path / "opencode")
    with TraceStore(tmp_path / "t.duckdb") as store:
        assert store.data_version() == 0
        load(store, open_source(live))
        after_load = store.data_version()
        assert after_load > 0
        assert load(store, open_source(live)).unchanged and store.data_version() == after_load
        store.cleanup_old_traces(1, now_ms=10**15)  # everything is older than a day by then
        assert store.data_version() > after_load


def test_retention_is_applied_by_the_load_itself(tmp_path: Path) -> None:
    live = copy_store(CASES_118, tmp_path / "opencode")
    with TraceStore(tmp_path / "t.duckdb") as store:
        report = load(store, open_source(live), retention_days=7)
        # the fixture's sessions are weeks old by now, and one of them was made three weeks before the others
        assert report.retention_removed > 0
        assert store.trace_count() == report.traces_written - report.retention_removed


def test_a_task_call_id_repeated_in_a_tree_of_a_later_step_is_left_out_and_counted(tmp_path: Path,
                                                                                   small_steps) -> None:
    """A damaged store: one task part file copied, under its own name, into a message of another session tree.
    Each tree alone is fine, so the two copies meet only when they fall in different steps of one load: the
    first read (the newest tree) wins, as within one step, and the rest of the history loads."""
    storage = copy_store(SAMPLE_1165 / "storage", tmp_path / "storage")
    with TraceStore(tmp_path / "clean.duckdb") as clean:
        load(clean, open_source(storage))
        expected = _rows(clean)
        roots = _roots_newest_first(clean)
        task_id, root_of_task = clean.conn.execute(
            "SELECT trace_id, root_session_id FROM agent_traces WHERE kind = 'delegation'"
            " ORDER BY started_at LIMIT 1").fetchone()
        other = next(r for r in roots if r != root_of_task and roots.index(r) < roots.index(root_of_task))
    message = next(p for p in sorted((storage / "message" / other).iterdir()) if '"assistant"' in p.read_text())
    source_part = next((storage / "part").glob(f"*/{task_id}.json"))
    (storage / "part" / message.stem).mkdir(exist_ok=True)
    copy = storage / "part" / message.stem / source_part.name
    copy.write_bytes(source_part.read_bytes())

    with TraceStore(tmp_path / "damaged.duckdb") as store:
        report = load(store, open_source(storage))
        got = _rows(store)
        (stored_root,) = store.conn.execute("SELECT root_session_id FROM agent_traces WHERE trace_id = ?",
                                            [task_id]).fetchone()
    assert any(task_id in e and "another tree" in e for e in report.skipped_examples)
    assert stored_root == other  # the newer tree was read first
    assert set(got) == set(expected)  # nothing else lost, nothing doubled


def test_a_span_id_repeated_in_a_tree_of_a_later_step_loads_once(tmp_path: Path, small_steps) -> None:
    """A tool part takes the id of an LLM call of another tree, and the two fall in different steps of a first
    load: the load into the empty store looks up only the ids it has stored itself, and the one read last wins,
    as in a reload; nothing else is lost."""
    data = copy_store(STEPS_118, tmp_path / "s")
    with TraceStore(tmp_path / "clean.duckdb") as clean:
        load(clean, open_source(data))
        spans = dict(clean.conn.execute("SELECT span_id, root_session_id FROM agent_spans").fetchall())
        roots = _roots_newest_first(clean)
        newer, older = roots[0], roots[-1]
        llm, = clean.conn.execute("SELECT span_id FROM agent_spans WHERE kind = 'llm' AND root_session_id = ?"
                                  " AND span_id NOT IN (SELECT parent_span_id FROM agent_spans WHERE"
                                  " parent_span_id IS NOT NULL) LIMIT 1", [newer]).fetchone()
        tool, = clean.conn.execute("SELECT span_id FROM agent_spans WHERE kind = 'tool' AND root_session_id = ?"
                                   " LIMIT 1", [older]).fetchone()
    conn = sqlite3.connect(data / "opencode.db")
    conn.execute("UPDATE part SET id = ? WHERE id = ?", (llm, tool))
    conn.commit()
    conn.close()
    with TraceStore(tmp_path / "damaged.duckdb") as store:
        load(store, open_source(data))
        got = dict(store.conn.execute("SELECT span_id, root_session_id FROM agent_spans").fetchall())
        kind, = store.conn.execute("SELECT kind FROM agent_spans WHERE span_id = ?", [llm]).fetchone()
    assert got[llm] == older and kind == "tool"  # the older tree's step came later
    assert {k: v for k, v in got.items() if k != llm} == {k: v for k, v in spans.items() if k not in (llm, tool)}
