"""The DuckDB store: schema version, idempotent upsert, incremental loads, retention, a locked file."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from analytics.db import SCHEMA_VERSION, SPAN_COLUMNS, TraceStore
from analytics.errors import StoreError
from analytics.extraction import extract_traces
from analytics.loader import load
from analytics.models import AgentSpan, AgentTrace, SessionInfo
from analytics.opencode import open_source, sqlite_v1
from analytics.queries import trace_queries as q
from tests.conftest import CASES_118, FIXTURES, copy_store

IMPORTED = FIXTURES / "imported-1.15.13"


def _rows(store: TraceStore) -> dict[str, tuple]:
    rows = store.conn.execute("SELECT * EXCLUDE (created_at) FROM agent_traces ORDER BY trace_id").fetchall()
    return {r[0]: r for r in rows}


def _created(store: TraceStore) -> dict[str, object]:
    return dict(store.conn.execute("SELECT trace_id, created_at FROM agent_traces").fetchall())


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """A writable copy of the real 1.18.33 case store, standing in for a store OpenCode keeps writing."""
    return copy_store(CASES_118, tmp_path / "opencode")


def test_schema_version_is_recorded(store: TraceStore) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    tables = {r[0] for r in store.conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"agent_traces", "sessions", "meta", "source_sessions", "cleaned_sessions"} <= tables
    indexes = {r[0] for r in store.conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    assert {"idx_traces_session", "idx_traces_parent", "idx_traces_subagent", "idx_traces_date"} <= indexes


def test_newer_store_is_refused_plainly(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "t.duckdb") as s:
        s.conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer agent-traces .*update agent-traces"):
        TraceStore(tmp_path / "t.duckdb")


def test_older_store_is_rebuilt_and_reloaded_whole(tmp_path: Path, live: Path) -> None:
    with TraceStore(tmp_path / "t.duckdb") as s:
        load(s, open_source(live))
        s.conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with TraceStore(tmp_path / "t.duckdb") as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 0
        report = load(s, open_source(live))
        assert report.traces_written == 14


def test_a_store_of_schema_4_keeps_its_steps_and_loses_their_indexes(tmp_path: Path, live: Path) -> None:
    with TraceStore(tmp_path / "t.duckdb") as s:
        load(s, open_source(live))
        before = s.conn.execute("SELECT * FROM agent_spans ORDER BY span_id").fetchall()
        # agent_spans as schemas 3 and 4 made it: a primary key, and indexes on its trace and root session
        s.conn.execute("ALTER TABLE agent_spans RENAME TO spans_now")
        s.conn.execute("CREATE TABLE agent_spans (" + ", ".join(
            f"{name} {typ}" + (" PRIMARY KEY" if name == "span_id" else "") for name, typ in SPAN_COLUMNS) + ")")
        s.conn.execute("INSERT INTO agent_spans SELECT * FROM spans_now")
        s.conn.execute("DROP TABLE spans_now")
        s.conn.execute("CREATE INDEX idx_spans_trace ON agent_spans(trace_id)")
        s.conn.execute("CREATE INDEX idx_spans_root ON agent_spans(root_session_id)")
        s.conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with TraceStore(tmp_path / "t.duckdb", read_only=True) as s:  # read as it is, before any load
        assert s.schema_version() == 4 and s.conn.execute("SELECT count(*) FROM agent_spans").fetchone()[0]
    with TraceStore(tmp_path / "t.duckdb") as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.conn.execute("SELECT * FROM agent_spans ORDER BY span_id").fetchall() == before
        assert not s.conn.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'agent_spans'"
                                  ).fetchall()
        assert load(s, open_source(live)).unchanged  # nothing to read again
        load(s, open_source(live), full=True)  # and its key takes a full reload
        assert s.conn.execute("SELECT * FROM agent_spans ORDER BY span_id").fetchall() == before


def test_a_store_made_before_a_field_gets_its_column_with_the_fields_default(tmp_path: Path, live: Path) -> None:
    """A field added to a record in models.py is a column its table lacks in an older store: a writer adds it,
    filled with the field's default, and keeps every row; a reader asks for that upgrade first."""

    def everything(s: TraceStore) -> dict[str, list[AgentTrace]]:
        roots = [r[0] for r in s.conn.execute("SELECT trace_id FROM agent_traces WHERE kind = 'session'").fetchall()]
        return {root: q.get_full_traces(s, root) for root in roots}

    with TraceStore(tmp_path / "t.duckdb") as s:
        load(s, open_source(live))
        expected = everything(s)
        assert any(t.depth for ts in expected.values() for t in ts)
        # as the store was before AgentTrace.depth (default 0) and SessionInfo.project_id (no default) were added
        for (index,) in s.conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall():
            s.conn.execute(f"DROP INDEX {index}")  # (DuckDB drops no column of an indexed table)
        s.conn.execute("ALTER TABLE agent_traces DROP COLUMN depth")
        s.conn.execute("ALTER TABLE sessions DROP COLUMN project_id")
        s.conn.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION - 1}' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="needs an upgrade; run `agent-traces load` once"):
        TraceStore(tmp_path / "t.duckdb", read_only=True)
    with TraceStore(tmp_path / "t.duckdb") as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.conn.execute("SELECT DISTINCT depth FROM agent_traces").fetchall() == [(0,)]
        assert s.conn.execute("SELECT count(*) FROM sessions WHERE project_id IS NOT NULL").fetchone()[0] == 0
        assert sum(map(len, everything(s).values())) == sum(map(len, expected.values()))
        load(s, open_source(live), full=True)  # and a load writes them again
        assert everything(s) == expected
    with TraceStore(tmp_path / "t.duckdb", read_only=True) as s:
        assert everything(s) == expected


def test_a_new_field_with_a_default_is_all_a_new_column_takes(tmp_path: Path, live: Path, monkeypatch) -> None:
    """Adding a column is one line in models.py: here an `origin` field on SessionInfo, and nothing else (the
    schema version stays). A store made before it gets the column when a writer opens it, its rows the field's
    default; a reader asks for that first."""
    import analytics.db as db

    with TraceStore(tmp_path / "t.duckdb") as s:
        load(s, open_source(live))
        sessions = s.session_count()

    @dataclasses.dataclass(frozen=True)
    class NewSessionInfo(SessionInfo):
        origin: str = "here"

    monkeypatch.setitem(db.RECORD_TABLES, "sessions", NewSessionInfo)
    with pytest.raises(StoreError, match="needs an upgrade; run `agent-traces load` once"):
        TraceStore(tmp_path / "t.duckdb", read_only=True)
    with TraceStore(tmp_path / "t.duckdb") as s:
        assert s.conn.execute("SELECT origin, count(*) FROM sessions GROUP BY origin").fetchall() == [
            ("here", sessions)]
        assert s.schema_version() == SCHEMA_VERSION
    with TraceStore(tmp_path / "t.duckdb", read_only=True) as s:
        assert s.session_count() == sessions
    monkeypatch.undo()  # and a program without the field still loads into the store that has its column
    with TraceStore(tmp_path / "t.duckdb") as s:
        load(s, open_source(live), full=True)
        assert s.conn.execute("SELECT origin, count(*) FROM sessions GROUP BY origin").fetchall() == [
            ("here", sessions)]


def test_a_store_made_before_the_source_column_reads_opencode(tmp_path: Path, live: Path) -> None:
    """A store written before Claude Code and Codex were read (no `source`, no `unpriced_calls`) gets both when a
    writer opens it: every row was OpenCode's, with every call priced as OpenCode wrote it."""
    import analytics.db as db

    with TraceStore(tmp_path / "t.duckdb") as s:
        load(s, open_source(live))
        traces, sessions = s.trace_count(), s.session_count()
        indexes = [r[0] for r in s.conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()]
        for name in indexes:  # (DuckDB alters no table an index depends on; the upgrade makes them again)
            s.conn.execute(f"DROP INDEX {name}")
        for table, column in (("agent_traces", "source"), ("agent_traces", "unpriced_calls"),
                              ("sessions", "source")):
            s.conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        before = db.record_columns().replace(", source", "", 2).replace(", unpriced_calls", "")
        s.conn.execute("UPDATE meta SET value = ? WHERE key = 'columns'", [before])
    with pytest.raises(StoreError, match="needs an upgrade; run `agent-traces load` once"):
        TraceStore(tmp_path / "t.duckdb", read_only=True)
    with TraceStore(tmp_path / "t.duckdb") as s:
        assert s.conn.execute("SELECT source, unpriced_calls, count(*) FROM agent_traces GROUP BY ALL").fetchall() \
            == [("opencode", 0, traces)]
        assert s.conn.execute("SELECT source, count(*) FROM sessions GROUP BY ALL").fetchall() == [
            ("opencode", sessions)]
        assert s.schema_version() == SCHEMA_VERSION
        assert sorted(r[0] for r in s.conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()) == \
            sorted(indexes)


def test_a_store_of_schema_3_is_upgraded_before_it_is_read(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "t.duckdb") as s:
        s.conn.execute("DROP TABLE pushed")
        s.conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="needs an upgrade; run `agent-traces load` once"):
        TraceStore(tmp_path / "t.duckdb", read_only=True)


def _upsert(store: TraceStore, traces: list[AgentTrace]) -> None:
    """Write traces over what is stored, as a load's step does, and nothing else."""
    store.replace(roots=set(), traces=traces, sessions=[], fingerprints={}, deleted=(), full=False,
                  source_key="src", stamp=None)


def test_traces_are_upserted_by_id(store: TraceStore) -> None:
    traces = extract_traces(CASES_118)
    _upsert(store, traces)
    first = _created(store)
    _upsert(store, traces)
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == len(traces)
    changed = dataclasses.replace(traces[0], status="error", prompt_output="boom")
    _upsert(store, [changed])
    row = store.conn.execute("SELECT status, prompt_output FROM agent_traces WHERE trace_id = ?",
                             [changed.trace_id]).fetchone()
    assert row == ("error", "boom")
    assert _created(store) == first  # first-seen time kept


def test_store_round_trips_every_field(store: TraceStore) -> None:
    from analytics.queries.trace_queries import get_trace_details

    traces = extract_traces(CASES_118)
    _upsert(store, traces)
    for t in traces:
        assert get_trace_details(store, t.trace_id).trace == t


def test_unchanged_reload_does_no_work(store: TraceStore, live: Path) -> None:
    first = load(store, open_source(live))
    assert first.traces_written == 14
    again = load(store, open_source(live))
    assert again.unchanged and again.traces_written == 0
    os.utime(live / "opencode.db")  # file touched, no session changed: fingerprints say so
    touched = load(store, open_source(live))
    assert not touched.unchanged and touched.sessions_changed == 0 and touched.traces_written == 0


def _complete_the_running_call(live: Path) -> str:
    """OpenCode completes the call that was left running, as 1.18 writes it: the part, its message, and the
    session's event sequence (every write is an event). The JSON is re-serialised with spaces on purpose.
    Returns the part's id."""
    conn = sqlite3.connect(live / "opencode.db")
    pid, sid, data = conn.execute("SELECT id, session_id, data FROM part WHERE data LIKE '%\"status\":\"running\"%'"
                                  " AND data LIKE '%\"tool\":\"task\"%'").fetchone()
    part = json.loads(data)
    part["state"].update(status="completed", output="<task_result>\nslow work done\n</task_result>",
                         title="Slow job", time={**part["state"]["time"], "end": part["state"]["time"]["start"] + 5000})
    conn.execute("UPDATE part SET data = ?, time_updated = time_updated + 5000 WHERE id = ?", (json.dumps(part), pid))
    conn.execute("UPDATE message SET time_updated = time_updated + 5000 WHERE id = (SELECT message_id FROM part"
                 " WHERE id = ?)", (pid,))
    conn.execute("UPDATE event_sequence SET seq = seq + 2 WHERE aggregate_id = ?", (sid,))
    conn.commit()
    conn.close()
    return pid


def test_one_session_changed_redoes_only_its_tree(store: TraceStore, live: Path) -> None:
    load(store, open_source(live))
    before, created = _rows(store), _created(store)
    pid = _complete_the_running_call(live)
    report = load(store, open_source(live))
    assert report.sessions_changed == 1
    assert report.traces_written == 2  # that tree: its session trace and its one delegation
    after = _rows(store)
    assert after.keys() == before.keys()
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {pid}
    call = store.conn.execute("SELECT status, prompt_output, duration_ms FROM agent_traces WHERE trace_id = ?",
                              [pid]).fetchone()
    assert call == ("completed", "slow work done", 5000)
    assert _created(store) == created


def _stored(store: TraceStore) -> dict[str, list[tuple]]:
    """Every stored row of the traces (but their first-seen time), steps and sessions (their totals too)."""
    return {table: store.conn.execute(f"SELECT * {exclude} FROM {table} ORDER BY 1").fetchall()
            for table, exclude in (("agent_traces", "EXCLUDE (created_at)"), ("agent_spans", ""), ("sessions", ""))}


@pytest.mark.parametrize("small_read", [0, 50], ids=["staged-by-sql", "read-carefully-whole"])
def test_a_reload_of_one_tree_stores_what_a_full_load_does(tmp_path: Path, live: Path, monkeypatch,
                                                          small_read: int) -> None:
    """A reload of a few sessions goes the careful way whole (SMALL_READ), a larger one through the staging SQL;
    either way the tree it writes again (its traces deleted and inserted, keeping their first-seen time, and its
    session rows with their totals) is what a full load of the same database stores."""
    monkeypatch.setattr(sqlite_v1, "SMALL_READ", small_read)
    with TraceStore(tmp_path / "a.duckdb") as a, TraceStore(tmp_path / "b.duckdb") as b:
        load(a, open_source(live))
        created = _created(a)
        _complete_the_running_call(live)
        assert load(a, open_source(live)).traces_written == 2
        load(b, open_source(live), full=True)
        assert _stored(a) == _stored(b)
        assert _created(a) == created


def test_deleted_sessions_disappear(store: TraceStore, live: Path) -> None:
    load(store, open_source(live))
    conn = sqlite3.connect(live / "opencode.db")
    root = conn.execute("SELECT id FROM session WHERE title = 'Scripted session 1'").fetchone()[0]
    tree = [root] + [r[0] for r in conn.execute("WITH RECURSIVE t(id) AS (SELECT id FROM session WHERE parent_id = ?"
                                                 " UNION SELECT s.id FROM session s JOIN t ON s.parent_id = t.id)"
                                                 " SELECT id FROM t", (root,))]
    for sid in tree:  # what OpenCode's delete does, cascading to messages and parts
        conn.execute("DELETE FROM part WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM message WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM session WHERE id = ?", (sid,))
    conn.commit()
    conn.close()
    report = load(store, open_source(live))
    assert report.sessions_deleted == len(tree) == 5
    left = store.conn.execute("SELECT count(*) FROM agent_traces WHERE root_session_id = ?", [root]).fetchone()[0]
    assert left == 0
    assert store.conn.execute("SELECT count(*) FROM sessions WHERE root_session_id = ?", [root]).fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 14 - 5


def test_full_rebuild_equals_incremental(tmp_path: Path, live: Path) -> None:
    with TraceStore(tmp_path / "a.duckdb") as a, TraceStore(tmp_path / "b.duckdb") as b:
        load(a, open_source(live))
        load(a, open_source(live))
        load(b, open_source(live), full=True)
        assert _rows(a) == _rows(b)


def test_imported_store_json_and_database_agree(store: TraceStore) -> None:
    """OpenCode 1.15.13 imported a 1.1.65 JSON store into opencode.db: both readings give the same traces."""
    from_json = {t.trace_id: t for t in extract_traces(IMPORTED / "storage")}
    from_db = {t.trace_id: t for t in extract_traces(IMPORTED / "opencode.db")}
    assert from_json == from_db
    report = load(store, open_source(IMPORTED))
    assert report.generation == "sqlite-v1+json"
    assert report.traces_written == len(from_db) == 14


def test_retention_removes_old_trees_and_they_stay_removed(store: TraceStore, live: Path) -> None:
    load(store, open_source(live))
    newest = store.conn.execute("SELECT max(epoch_ms(started_at)) FROM agent_traces").fetchone()[0]
    removed = store.cleanup_old_traces(7, now_ms=newest + 86_400_000)
    assert removed == 2  # the three-week-old session and its delegation
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 12
    conn = sqlite3.connect(live / "opencode.db")  # OpenCode writes again: the store is reloaded
    conn.execute("UPDATE session SET time_updated = time_updated + 1")
    conn.commit()
    conn.close()
    load(store, open_source(live))
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 12
    load(store, open_source(live), full=True)
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 12


@pytest.mark.parametrize("days", [0, -1, True, 2.5, "30", None])
def test_retention_refuses_less_than_a_day_and_non_integers(store: TraceStore, live: Path, days) -> None:
    """0 emptied the store and held every session back; True counted as one day. Both are refused now."""
    load(store, open_source(live))
    with pytest.raises(ValueError, match="retention_days must be"):
        store.cleanup_old_traces(days)
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 14
    assert store.cleaned_count() == 0 and store.cleaned_span() is None


def test_forgetting_the_cleaned_sessions_lets_the_next_load_bring_them_back(store: TraceStore, live: Path) -> None:
    load(store, open_source(live))
    newest = store.conn.execute("SELECT max(epoch_ms(started_at)) FROM agent_traces").fetchone()[0]
    assert store.cleanup_old_traces(7, now_ms=newest + 86_400_000) == 2
    assert store.cleaned_count() == 1
    first, last = store.cleaned_span()
    assert first == last and abs(first - time.time() * 1000) < 86_400_000
    assert store.held_back_note().startswith("1 old session is held back by retention (cleaned on 20")
    assert load(store, open_source(live)).unchanged  # nothing written by OpenCode: skipped whole
    assert store.forget_cleaned() == 1
    assert store.cleaned_count() == 0 and store.forget_cleaned() == 0 and store.held_back_note() is None
    report = load(store, open_source(live))  # the same unchanged OpenCode store is read again
    assert not report.unchanged and report.sessions_changed == 2
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 14


def _hold_store(path: str, ready, release) -> None:
    conn = duckdb.connect(path)
    ready.set()
    release.wait(30)
    conn.close()


def test_store_in_use_by_another_process_gets_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    TraceStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_store, args=(str(path), ready, release))
    p.start()
    try:
        assert ready.wait(30)
        with pytest.raises(StoreError, match="in use by another agent-traces process .*--db"):
            TraceStore(path)
    finally:
        release.set()
        p.join(30)


def test_a_writer_at_a_path_with_quotes_reads_its_tables_from_every_cursor(tmp_path: Path, live: Path) -> None:
    """A writer attaches the file (with smaller row groups) to an in-memory database: the path is quoted, and
    its thread cursors and cursors of their own all use the store, not that in-memory database."""
    path = tmp_path / "it's a \"store\"; DROP TABLE x; --" / "t'.duckdb"
    with TraceStore(path) as s:
        load(s, open_source(live))
        n = s.trace_count()
        assert n > 0
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(s.trace_count).result() == n
        assert s.new_cursor().execute("SELECT count(*) FROM agent_traces").fetchone()[0] == n
        with pytest.raises(StoreError, match="in use"):  # a second writer of the same file in this process
            TraceStore(path)
    assert not (tmp_path / ".tmp").exists() and not Path(".tmp").exists()  # it spills beside the store
    with TraceStore(path, read_only=True) as s:
        assert s.trace_count() == n


def test_two_sources_in_one_store_leave_each_other_alone(store: TraceStore, tmp_path: Path) -> None:
    """Each source's sessions are tracked apart: loading, reloading or emptying one keeps the other's."""
    a = copy_store(CASES_118, tmp_path / "a")
    load(store, open_source(a))
    load(store, open_source(FIXTURES / "opencode-1.1.65" / "storage"))
    count = store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0]
    assert count == 14 + 10
    load(store, open_source(a), full=True)
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 24
    conn = sqlite3.connect(a / "opencode.db")
    conn.execute("DELETE FROM part")
    conn.execute("DELETE FROM message")
    conn.execute("DELETE FROM session")
    conn.commit()
    conn.close()
    report = load(store, open_source(a))
    assert report.sessions_deleted == 13
    assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 10


def test_steps_with_many_nulls_then_a_large_number_are_stored_exactly(store: TraceStore) -> None:
    """Hand-made on purpose: running steps (no end, no duration), a short one, more running ones, then one of
    four months. The numpy insert once let DuckDB guess INTEGER from a sample and abort on the last one."""
    start = 1_764_000_000_000

    def running(i: int) -> AgentSpan:
        return AgentSpan(f"prt_{i:05}", "ses_a", "ses_a", None, "tool", "bash", None, "running", start, None, None)

    spans = [running(i) for i in range(1500)]
    spans.append(AgentSpan("prt_short", "ses_a", "ses_a", None, "tool", "bash", None, "completed", start,
                           start + 3, 3))
    spans += [running(i) for i in range(1500, 2500)]
    spans.append(AgentSpan("prt_long", "ses_a", "ses_a", None, "tool", "bash", None, "completed", start,
                           start + 10**10, 10**10, cost_usd=0.25))
    store.replace(roots={"ses_a"}, traces=[], sessions=[], fingerprints={}, deleted=(), full=True,
                  source_key="test", stamp=None, spans=spans)
    rows = dict(store.conn.execute(
        "SELECT span_id, (duration_ms, epoch_ms(ended_at), cost_usd) FROM agent_spans").fetchall())
    assert rows["prt_long"] == (10**10, start + 10**10, 0.25)
    assert rows["prt_short"] == (3, start + 3, 0.0)
    assert rows["prt_00000"] == (None, None, 0.0) and len(rows) == 2502


def test_a_step_that_does_not_fit_the_write_limit_is_written_again_with_room(tmp_path: Path, live: Path,
                                                                             monkeypatch, caplog) -> None:
    """The write limit keeps a long load's memory low, but a step can need more than it (the indexes of a long
    history count in it, and a 10 MB prompt is bound whole): such a step is rolled back and written again
    with room, and the limit comes back for the next one. Here the limit is set too low for any step."""
    import analytics.db as db

    with TraceStore(tmp_path / "ref.duckdb") as s:
        load(s, open_source(live))
        expected = _rows(s)
    monkeypatch.setattr(db, "WRITE_MEMORY_LIMIT", "32MB")
    with TraceStore(tmp_path / "t.duckdb") as s:
        with caplog.at_level("INFO", logger="analytics.db"):
            load(s, open_source(live))
            load(s, open_source(live), full=True)  # over the stored rows: the upsert path
        assert "done again with up to 1GB" in caplog.text
        assert _rows(s) == expected
        assert s.conn.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "30.5 MiB"  # back
        with s.more_memory():
            assert s.conn.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"  # 1GB


def _big_step(n: int, mb: int) -> tuple[list[AgentTrace], list[AgentSpan]]:
    """A step of n traces and n tool calls, each with a text of `mb` MB (hostile on purpose)."""
    traces = [AgentTrace(trace_id=f"t{i}", kind="delegation", session_id="s", root_session_id="r",
                         child_session_id=None, parent_trace_id=None, parent_agent=None, subagent_type="general",
                         description=None, prompt_input=chr(65 + i) * (mb << 20), prompt_output=None,
                         status="completed", started_at=1_700_000_000_000 + i, ended_at=None, duration_ms=None)
              for i in range(n)]
    spans = [AgentSpan(f"sp{i}", f"t{i}", "r", None, "tool", "read", None, "completed", 1_700_000_000_000, None,
                       None, output=chr(97 + i) * (mb << 20)) for i in range(n)]
    return traces, spans


def _write(store: TraceStore, traces: list[AgentTrace], spans: list[AgentSpan]) -> None:
    store.replace(roots={"r"}, traces=traces, sessions=[], fingerprints={}, deleted=(), full=False,
                  source_key="src", stamp=None, spans=spans)


def test_a_step_whose_insert_runs_out_of_memory_is_written_again(tmp_path: Path, monkeypatch, caplog) -> None:
    """Out of memory inside the insert itself: the error reaches `fitted` as what it is (the view's cleanup,
    in the aborted transaction, used to replace it with "transaction is aborted"), and the step is written."""
    import analytics.db as db

    monkeypatch.setattr(db, "WRITE_MEMORY_LIMIT", "32MB")
    traces, spans = _big_step(12, 4)
    with TraceStore(tmp_path / "t.duckdb") as s:
        with caplog.at_level("INFO", logger="analytics.db"):
            s.fitted(_write, s, traces, spans)
        assert "done again with up to 1GB" in caplog.text
        assert s.trace_count() == 12
        with s.more_memory():  # the texts, read back under the write limit, would not fit either
            assert s.conn.execute("SELECT sum(strlen(output)) FROM agent_spans").fetchone()[0] == 12 * (4 << 20)


def test_an_insert_error_is_reported_as_itself(store: TraceStore) -> None:
    traces, _ = _big_step(1, 0)
    with pytest.raises(duckdb.ConstraintException):  # one id twice, inserted plainly
        store.replace(roots={"r"}, traces=traces * 2, sessions=[], fingerprints={}, deleted=(), full=False,
                      source_key="src", stamp=None, conflicts=False)
    assert store.trace_count() == 0  # and the store goes on


def test_a_store_path_that_is_not_a_duckdb_store_gets_one_sentence(tmp_path: Path) -> None:
    """A SQLite database is refused, not attached through an extension; a folder named "locked" is not a
    lock; a folder that cannot be made says so."""
    sqlite_file = tmp_path / "opencode.db"
    sqlite3.connect(sqlite_file).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="is not an agent-traces trace store: it is a SQLite database"):
        TraceStore(sqlite_file)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "t.duckdb").write_text("not a store")
    t = time.monotonic()
    with pytest.raises(StoreError, match="is not an agent-traces trace store: it is not a DuckDB file"):
        TraceStore(locked / "t.duckdb", wait_seconds=5)
    assert time.monotonic() - t < 2  # not taken for a store in use, and waited for
    (tmp_path / "a file").write_text("")
    with pytest.raises(StoreError, match="Could not create the folder of the trace store"):
        TraceStore(tmp_path / "a file" / "t.duckdb")
