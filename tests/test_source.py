"""Finding the store, choosing the generation, never writing the user's data, surviving bad input."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.errors import SourceError
from analytics.extraction import extract_traces
from analytics.loader import load
from analytics.models import LoadReport
from analytics.opencode import open_source, sqlite_store
from tests.conftest import CASES_118, CASES_1165, SAMPLE_118, SAMPLE_1165, build_v2_store, copy_store, tree_digest

# -- discovery -----------------------------------------------------------------------------------------


def test_default_location_is_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    copy_store(SAMPLE_118, tmp_path / "opencode")
    src = open_source()
    assert src.location == tmp_path / "opencode"
    assert len(extract_traces(src)) == 10


def test_default_location_without_xdg_is_local_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    copy_store(SAMPLE_118, tmp_path / ".local" / "share" / "opencode")
    assert open_source().location == tmp_path / ".local" / "share" / "opencode"


def test_opencode_db_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = copy_store(SAMPLE_118, tmp_path / "elsewhere") / "opencode.db"
    monkeypatch.setenv("OPENCODE_DB", str(db))
    assert open_source().location == db


def test_channel_database_is_found(tmp_path: Path) -> None:
    data = tmp_path / "opencode"
    data.mkdir()
    (data / "opencode-beta.db").write_bytes((SAMPLE_118 / "opencode.db").read_bytes())
    assert len(extract_traces(data)) == 10


@pytest.mark.parametrize("given", ["dir", "file", "storage"])
def test_source_accepts_dir_file_or_storage(given: str, tmp_path: Path) -> None:
    if given == "storage":
        path, n = copy_store(SAMPLE_1165, tmp_path / "s") / "storage", 10
    else:
        d = copy_store(SAMPLE_118, tmp_path / "d")
        path, n = (d if given == "dir" else d / "opencode.db"), 10
    assert len(extract_traces(path)) == n


def test_missing_store_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="No OpenCode data at .*--source"):
        open_source(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no OpenCode sessions"):
        open_source(tmp_path / "empty")


def test_unknown_database_layout_is_refused_plainly(tmp_path: Path) -> None:
    db = tmp_path / "opencode.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE conversation_v3 (id TEXT)")
    conn.close()
    with pytest.raises(SourceError, match="does not look like an OpenCode database.*update agent-traces"):
        open_source(db)


def test_not_a_database_is_refused_plainly(tmp_path: Path) -> None:
    db = tmp_path / "opencode.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SourceError, match="not a readable SQLite database"):
        open_source(db)


# -- precedence ----------------------------------------------------------------------------------------


def test_lingering_json_storage_is_not_counted_twice(tmp_path: Path) -> None:
    """After the one-time import, storage/ holds the same sessions as opencode.db: the database wins."""
    data = copy_store(SAMPLE_118, tmp_path / "opencode")
    # storage/ with the very sessions the database has (the import keeps ids), plus one only JSON has
    db_traces = extract_traces(data / "opencode.db")
    json_only = copy_store(SAMPLE_1165, tmp_path / "legacy") / "storage"
    (data / "storage").mkdir()
    for sub in ("session", "message", "part"):
        (data / "storage" / sub).mkdir()
    import shutil

    for project in (json_only / "session").iterdir():
        shutil.copytree(project, data / "storage" / "session" / project.name)
    shutil.copytree(json_only / "message", data / "storage" / "message", dirs_exist_ok=True)
    shutil.copytree(json_only / "part", data / "storage" / "part", dirs_exist_ok=True)
    # a stale JSON copy of a database session: same id, different (old) title
    sid = db_traces[0].session_id
    stale = {"id": sid, "title": "stale JSON copy", "directory": "/x", "projectID": "p",
             "time": {"created": 1, "updated": 1}}
    (data / "storage" / "session" / "p").mkdir()
    (data / "storage" / "session" / "p" / f"{sid}.json").write_text(json.dumps(stale))
    traces = extract_traces(data)
    ids = [t.trace_id for t in traces]
    assert len(ids) == len(set(ids)) == 20
    assert next(t for t in traces if t.trace_id == sid).started_at != 1


def test_v2_tables_win_over_frozen_v1_tables(tmp_path: Path) -> None:
    """2.x backfills 1.x sessions into session_v2: a database with both is read as 2.x only."""
    d = copy_store(SAMPLE_118, tmp_path / "both")
    v2 = build_v2_store(tmp_path / "v2")
    conn = sqlite3.connect(d / "opencode.db")
    conn.execute("ATTACH ? AS v2", (str(v2),))
    # 1.x already has an empty `session_message` projection: the 2.x rows fill it
    assert conn.execute("SELECT count(*) FROM main.session_message").fetchone()[0] == 0
    sql = conn.execute("SELECT sql FROM v2.sqlite_master WHERE name = 'session_v2'").fetchone()[0]
    conn.execute(sql)
    conn.execute("INSERT INTO main.session_v2 SELECT * FROM v2.session_v2")
    conn.execute("INSERT INTO main.session_message (id, session_id, type, seq, time_created, time_updated, data)"
                 " SELECT id, session_id, type, seq, time_created, time_updated, data FROM v2.session_message")
    conn.commit()
    conn.close()
    src = open_source(d)
    assert src.generation == "sqlite-v2"
    assert len(extract_traces(src)) == 4


def _beta_store(dest: Path) -> Path:
    """A 2.x beta database (before 2.0.12): the v2 session table is still called `session`.

    Hand-made, as no binary of that beta is available: the real 2.0.26 capture with `session_v2` renamed back
    to `session` (what OpenCode's migration 20260804233008_loose_psylocke renames forward), without the columns
    added after that rename (resume_attempts, time_idle, time_viewed, idle_outcome), and with the frozen 1.x
    `message`/`part` tables the shared migration history left (empty here).
    """
    db = build_v2_store(dest)
    v1 = sqlite3.connect(f"file:{SAMPLE_118 / 'opencode.db'}?mode=ro&immutable=1", uri=True)
    frozen = [v1.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
              for t in ("message", "part")]
    v1.close()
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE session_v2 RENAME TO session")
    for col in ("resume_attempts", "time_idle", "time_viewed", "idle_outcome"):
        conn.execute(f"ALTER TABLE session DROP COLUMN {col}")
    for sql in frozen:
        conn.execute(sql.replace("REFERENCES `session`", "REFERENCES `session_x`"))
    conn.commit()
    conn.close()
    return db


def test_a_2x_beta_session_table_is_read_as_2x(tmp_path: Path) -> None:
    """Betas before 2.0.12 named the v2 session table `session`; its v2-only columns (fork_session_id,
    fork_boundary) tell it from the 1.x table of the same name."""
    beta = open_source(_beta_store(tmp_path / "beta"))
    assert beta.generation == "sqlite-v2"
    expected = {(t.trace_id, t.status, t.started_at, t.ended_at, t.child_session_id)
                for t in extract_traces(build_v2_store(tmp_path / "v2"))}
    got = {(t.trace_id, t.status, t.started_at, t.ended_at, t.child_session_id) for t in extract_traces(beta)}
    assert got == expected and len(got) == 4


def test_a_1x_session_message_projection_does_not_make_a_2x_store(tmp_path: Path) -> None:
    """1.x has a `session_message` projection too (filled by some 1.17 builds); with the 1.x `session` table
    the database stays 1.x."""
    d = copy_store(SAMPLE_118, tmp_path / "v1")
    conn = sqlite3.connect(d / "opencode.db")
    conn.execute("INSERT INTO session_message (id, session_id, type, seq, time_created, time_updated, data)"
                 " VALUES ('msg_x', 'ses_x', 'user', 0, 1, 1, '{}')")
    conn.commit()
    conn.close()
    assert open_source(d).generation == "sqlite-v1"


# -- never written -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", [SAMPLE_118, SAMPLE_1165, CASES_118, CASES_1165])
def test_a_load_leaves_every_byte_as_it_was(fixture: Path, tmp_path: Path) -> None:
    data = copy_store(fixture, tmp_path / "data")
    before = tree_digest(data)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, open_source(data))
        load(store, open_source(data), full=True)
    assert tree_digest(data) == before  # same files (none created, e.g. -wal/-shm), same bytes


def test_live_wal_database_is_read_consistently_and_not_written(tmp_path: Path) -> None:
    """OpenCode holds the database open in WAL mode and writes: committed rows are read, bytes kept."""
    data = copy_store(CASES_118, tmp_path / "data")
    writer = sqlite3.connect(data / "opencode.db")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("UPDATE session SET title = 'renamed while open' WHERE parent_id IS NULL")
    writer.commit()
    writer.execute("BEGIN IMMEDIATE")  # a write in progress, not yet committed
    writer.execute("UPDATE session SET title = 'uncommitted'")
    db_bytes = (data / "opencode.db").read_bytes()
    wal_bytes = (data / "opencode.db-wal").read_bytes()
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, open_source(data))
        titles = {r[0] for r in store.conn.execute(
            "SELECT title FROM sessions WHERE parent_session_id IS NULL").fetchall()}
    assert titles == {"renamed while open"}
    assert (data / "opencode.db").read_bytes() == db_bytes
    assert (data / "opencode.db-wal").read_bytes() == wal_bytes
    writer.rollback()
    writer.close()


def _write_and_wait(path: str, ready, release) -> None:
    """OpenCode as it writes: WAL mode, a committed change, and a write transaction left open."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("UPDATE session SET title = 'committed by the writer' WHERE parent_id IS NULL")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE session SET title = 'not committed'")
    ready.set()
    release.wait(60)
    conn.execute("ROLLBACK")
    conn.close()


def test_a_load_beside_a_live_writer_in_another_process_creates_no_file_and_changes_no_byte(tmp_path: Path) -> None:
    """OpenCode writing in its own process (as it does): a load and a full reload see one committed snapshot,
    create no file in OpenCode's folder and change no byte of its database or WAL (the -shm file is the WAL's
    shared index, which every reader updates: not OpenCode's data)."""
    data = copy_store(CASES_118, tmp_path / "data")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=_write_and_wait, args=(str(data / "opencode.db"), ready, release))
    writer.start()
    try:
        assert ready.wait(60)
        files = sorted(p.name for p in data.iterdir())
        before = {name: (data / name).read_bytes() for name in ("opencode.db", "opencode.db-wal")}
        with TraceStore(tmp_path / "t.duckdb") as store:
            load(store, open_source(data))
            load(store, open_source(data), full=True)
            titles = {r[0] for r in store.conn.execute(
                "SELECT title FROM sessions WHERE parent_session_id IS NULL").fetchall()}
        assert titles == {"committed by the writer"}
        assert sorted(p.name for p in data.iterdir()) == files
        assert {name: (data / name).read_bytes() for name in before} == before
    finally:
        release.set()
        writer.join(60)


def test_a_load_reads_opencode_through_one_sqlite_library() -> None:
    """Python's sqlite3 (one SQLite library) never opens OpenCode's database, which the ADBC driver (another,
    bundled SQLite) reads: two libraries in one process do not share their POSIX locks, and the one that closed
    its handle would drop the other's. Nothing under analytics/ imports it."""
    from tests.test_layering import ROOT, imported_modules

    modules = sorted((ROOT / "analytics").rglob("*.py"))
    found = [f"{m.relative_to(ROOT)}:{line}" for m in modules
             for line, name in imported_modules(m.read_text(encoding="utf-8"), [])
             if name.split(".")[0] == "sqlite3"]
    assert found == []


def test_a_column_of_nulls_in_its_first_batch_still_reads(tmp_path: Path) -> None:
    """The driver types a column by its first batch, and a batch of NULLs reads as integers: text after it
    failed the whole result. Rows for Python are read as one batch, rows for DuckDB start with a typed row."""
    db = tmp_path / "nulls.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (a TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(None,)] * 3000 + [("x",)] * 5 + [(None,)])
    conn.commit()
    conn.close()
    f = sqlite_store.SqliteFile(db)
    try:
        rows = f.rows(f"SELECT {sqlite_store.text('a')} FROM t")
        assert len(rows) == 3006 and [r[0] for r in rows].count("x") == 5
        assert f.rows(f"SELECT {sqlite_store.text('a')} FROM t WHERE 0") == []
        from analytics.opencode.sqlite_v1_sql import first_row

        with f.stream(first_row("x'' AS a", f"{sqlite_store.text('a')} FROM t")) as handle:
            cur = f.cursor()
            cur.register("s", handle)
            got = cur.execute("SELECT count(*), count(decode(a)) FROM s WHERE real").fetchall()
            cur.unregister("s")
        assert got == [(3006, 5)]
    finally:
        f.close()


def _hold_exclusive_lock(path: str, ready, release) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("BEGIN EXCLUSIVE")
    ready.set()
    release.wait(30)
    conn.execute("ROLLBACK")
    conn.close()


def test_locked_database_gets_one_plain_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = copy_store(SAMPLE_118, tmp_path / "data")
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 200)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_exclusive_lock, args=(str(data / "opencode.db"), ready, release))
    p.start()
    try:
        assert ready.wait(30)
        with pytest.raises(SourceError, match="locked by another program; wait .* load again"):
            extract_traces(data)
    finally:
        release.set()
        p.join(30)


# -- bad input -----------------------------------------------------------------------------------------


def test_half_written_and_non_utf8_json_files_are_skipped_and_counted(tmp_path: Path) -> None:
    storage = copy_store(SAMPLE_1165, tmp_path / "s") / "storage"
    parts = sorted((storage / "part").rglob("*.json"))
    text_part = next(p for p in parts if '"type": "text"' in p.read_text())
    text_part.write_text(text_part.read_text()[:40])  # cut mid-write
    step = next(p for p in parts if '"step-finish"' in p.read_text())
    step.write_bytes(b'{"type": "step-finish", "x": "\xff\xfe"}')
    msg = sorted((storage / "message").rglob("*.json"))[0]
    msg.write_text("")
    report = LoadReport()
    traces = extract_traces(storage, report=report)
    assert report.skipped == {"part": 2, "message": 1}
    assert len(report.skipped_examples) == 3
    assert len(traces) == 10  # the rest of every session still loads


def test_invalid_rows_in_sqlite_are_skipped_and_counted(tmp_path: Path) -> None:
    data = copy_store(SAMPLE_118, tmp_path / "d")
    conn = sqlite3.connect(data / "opencode.db")
    step = conn.execute("SELECT id FROM part WHERE data LIKE '%step-finish%' LIMIT 1").fetchone()[0]
    conn.execute("UPDATE part SET data = '{\"type\":\"step-finish\", broken' WHERE id = ?", (step,))
    msg = conn.execute("SELECT id FROM message LIMIT 1 OFFSET 3").fetchone()[0]
    conn.execute("UPDATE message SET data = CAST(X'7B22726F6C65223A22FF227D' AS TEXT) WHERE id = ?", (msg,))
    conn.commit()
    conn.close()
    report = LoadReport()
    traces = extract_traces(data, report=report)
    assert report.skipped.get("part") == 1
    assert report.skipped.get("message") == 1
    assert len(traces) == 10


def test_a_session_row_that_is_not_utf8_is_skipped_not_fatal(tmp_path: Path) -> None:
    data = copy_store(SAMPLE_118, tmp_path / "d")
    conn = sqlite3.connect(data / "opencode.db")
    sid = conn.execute("SELECT id FROM session WHERE parent_id IS NULL LIMIT 1").fetchone()[0]
    conn.execute("UPDATE session SET title = CAST(X'4F6C64FF' AS TEXT) WHERE id = ?", (sid,))
    conn.commit()
    conn.close()
    report = LoadReport()
    traces = extract_traces(data, report=report)
    assert report.skipped == {"session": 1}
    assert sid not in {t.session_id for t in traces} and len(traces) >= 7


def test_a_v2_message_that_is_not_utf8_is_skipped_not_fatal(v2_dir: Path) -> None:
    conn = sqlite3.connect(v2_dir / "opencode.db")
    conn.execute("UPDATE session_message SET data = CAST(X'7B2274657874223A22FF227D' AS TEXT) WHERE type = 'user'"
                 " AND session_id = 'ses_ee23fdf58ffew3vRe12Fd7Ah2n'")
    conn.commit()
    conn.close()
    report = LoadReport()
    traces = extract_traces(v2_dir, report=report)
    assert report.skipped == {"message": 1}
    assert len(traces) == 4


def test_a_task_part_that_is_not_utf8_is_skipped_not_fatal(tmp_path: Path) -> None:
    data = copy_store(SAMPLE_118, tmp_path / "d")
    conn = sqlite3.connect(data / "opencode.db")
    pid, raw = conn.execute("SELECT id, data FROM part WHERE data LIKE '%Review old PR%'"
                            " AND data LIKE '%\"tool\":\"task\"%'").fetchone()
    conn.execute("UPDATE part SET data = CAST(? AS TEXT) WHERE id = ?",
                 (raw.replace("Review PR 12.", "Review PR \udcff").encode("utf-8", "surrogateescape"), pid))
    conn.commit()
    conn.close()
    report = LoadReport()
    traces = extract_traces(data, report=report)
    assert report.skipped == {"part": 1}
    assert pid not in {t.trace_id for t in traces} and len(traces) == 9  # that one call, nothing else
