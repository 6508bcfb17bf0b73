"""The DuckDB trace store: schema and version, bulk upsert, incremental-load state, retention.

One connection per store; threads take their own cursor (`cursor()`). Every multi-statement write runs in one
transaction. Values are always bound; the few identifiers that are interpolated come from fixed lists here, and
the store's own path, which DuckDB before 2.0 cannot bind in ATTACH, is quoted (`_literal`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy

from analytics.errors import StoreBusy, StoreError
from analytics.models import AgentSpan, AgentTrace, SessionInfo
from analytics.opencode.readers import StreamedSteps, WrittenSteps
from analytics.settings import check_retention_days

log = logging.getLogger(__name__)
T = TypeVar("T")

# A field added to AgentTrace, SessionInfo or AgentSpan (models.py) is a column of its table, and that is all it
# takes: the store remembers its columns (meta 'columns'), and one made before the field gets the column when a
# writer opens it, filled with the field's default (`_ensure_schema`); a reader asks for that upgrade first. Raise
# the version for what columns do not say (a table, an index, a rebuild).
SCHEMA_VERSION = 5  # 2: incremental-load state kept per source; 3: agent_spans; 4: pushed;
# 5: agent_spans without indexes
ADDITIVE_SINCE = 3  # from this version on, a newer schema only adds tables and columns: the data stays, no reload
READABLE_SINCE = 4  # and from this one on, it has every table a reader queries: no upgrade needed to read it,
# unless it lacks a column
INSERT_CHUNK = 1000
WRITE_MEMORY_LIMIT = "120MB"
ROOMY_MEMORY_LIMIT = "1GB"  # what a write that did not fit under it, or a read between batches, may use
CHECKPOINT_THRESHOLD = "64MB"  # of WAL
ROW_GROUP_SIZE = 4_096  # rows, for a writer (DuckDB's default is 122,880)
DAY_MS = 86_400_000

TIME_COLUMNS = frozenset({"started_at", "ended_at", "created_at", "updated_at"})  # epoch ms in Python
_SQL_TYPES = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "tuple[str, ...]": "VARCHAR[]"}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fields(record: type) -> list[tuple[str, str, object]]:
    """(name, annotation, default or MISSING) of every field of a record (a dataclass or a NamedTuple)."""
    if dataclasses.is_dataclass(record):
        return [(f.name, str(f.type), f.default) for f in dataclasses.fields(record)]
    defaults = record._field_defaults  # type: ignore[attr-defined]
    return [(name, str(getattr(annotation, "__forward_arg__", annotation)), defaults.get(name, dataclasses.MISSING))
            for name, annotation in record.__annotations__.items()]


def _sql_type(name: str, annotation: str) -> str:
    return "TIMESTAMP" if name in TIME_COLUMNS else _SQL_TYPES[annotation.removesuffix(" | None")]


def _columns_of(record: type) -> tuple[tuple[str, str], ...]:
    """(name, SQL type) of every field of a record: the one list its table, insert and reads share."""
    return tuple((name, _sql_type(name, annotation)) for name, annotation, _default in _fields(record))


def _sql_value(value: object) -> str:
    """A field's default as SQL (the defaults of models.py: numbers, text, None, an empty tuple)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return _literal(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_sql_value(v) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"no SQL for the default {value!r}")
    return repr(value)


def _default(default: object) -> str:
    """A field's default as a column's DEFAULT clause ("" when it has none): what the rows of a store made
    before the field get."""
    return "" if default is dataclasses.MISSING else f" DEFAULT {_sql_value(default)}"


def _create_table(table: str, record: type, store_owned: str = "") -> str:
    """The CREATE TABLE of a record's table: a column per field (the first one the key, NOT NULL unless the
    annotation allows None), then the columns the store keeps itself."""
    columns = []
    for i, (name, annotation, default) in enumerate(_fields(record)):
        column = f"{name} {_sql_type(name, annotation)}"
        if i == 0:
            column += " PRIMARY KEY"
        elif not annotation.endswith(" | None"):
            column += " NOT NULL"
        columns.append(column + _default(default))
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)}{store_owned});"


TRACE_COLUMNS = _columns_of(AgentTrace)
_trace_row = attrgetter(*(c for c, _ in TRACE_COLUMNS))  # a trace's values in column order
SESSION_COLUMNS = _columns_of(SessionInfo)
_session_row = attrgetter(*(c for c, _ in SESSION_COLUMNS))
SPAN_COLUMNS = _columns_of(AgentSpan)
RECORD_TABLES = {"agent_traces": AgentTrace, "sessions": SessionInfo, "agent_spans": AgentSpan}



def record_columns() -> str:
    """The columns the records give their tables, as the store remembers them (meta 'columns'): a store that
    remembers others was made before a field was added (or by a program that has one more)."""
    return "; ".join(f"{table}: " + ", ".join(name for name, _a, _d in _fields(record))
                     for table, record in RECORD_TABLES.items())


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
{_create_table("agent_traces", AgentTrace, ", created_at TIMESTAMP DEFAULT current_timestamp")}
CREATE INDEX IF NOT EXISTS idx_traces_session ON agent_traces(session_id);
CREATE INDEX IF NOT EXISTS idx_traces_parent ON agent_traces(parent_trace_id);
CREATE INDEX IF NOT EXISTS idx_traces_subagent ON agent_traces(subagent_type);
CREATE INDEX IF NOT EXISTS idx_traces_date ON agent_traces(started_at);
CREATE INDEX IF NOT EXISTS idx_traces_root ON agent_traces(root_session_id);
{_create_table("sessions", SessionInfo, ", delegation_count INTEGER DEFAULT 0, error_count INTEGER DEFAULT 0,"
               " tokens_in BIGINT DEFAULT 0, tokens_out BIGINT DEFAULT 0, cost_usd DOUBLE DEFAULT 0")}
CREATE INDEX IF NOT EXISTS idx_sessions_root ON sessions(root_session_id);
CREATE TABLE IF NOT EXISTS source_sessions (session_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS source_state (source VARCHAR PRIMARY KEY, stamp VARCHAR, loaded_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS cleaned_sessions (session_id VARCHAR PRIMARY KEY, cleaned_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS pushed (endpoint VARCHAR NOT NULL, span_id VARCHAR NOT NULL,
    root_session_id VARCHAR NOT NULL, digest VARCHAR NOT NULL, pushed_at TIMESTAMP,
    PRIMARY KEY (endpoint, span_id));
CREATE TABLE IF NOT EXISTS pushed_trees (endpoint VARCHAR NOT NULL, root_session_id VARCHAR NOT NULL,
    mark VARCHAR NOT NULL, spans BIGINT NOT NULL, running BIGINT NOT NULL, PRIMARY KEY (endpoint, root_session_id));
"""


_NUMPY_TYPES = {"BIGINT": numpy.int64, "INTEGER": numpy.int64, "TIMESTAMP": numpy.int64, "DOUBLE": numpy.float64}


def _columns(rows: list[tuple], columns: tuple[tuple[str, str], ...]) -> dict[str, numpy.ndarray]:
    """The columns of an insert, for DuckDB to scan: the records go into one 2-D object array (half the time
    of transposing them with zip), whose text columns are handed over as they are. Numbers go as typed
    arrays, masked where NULL: from an object array DuckDB guesses the type on a sample of 1,000 values, and a
    column of NULLs and small numbers then failed on a large value further down ("Value out of range for type
    INT"), aborting the load."""
    width = len(columns)
    if any(len(row) != width for row in rows):
        raise ValueError(f"a record for {width} columns has another number of fields")
    # flattened, then shaped: a third faster than assigning the rows to a 2-D array, which looks into each one
    table = numpy.fromiter(chain.from_iterable(rows), dtype=object, count=len(rows) * width).reshape(-1, width)
    out = {}
    for j, (name, typ) in enumerate(columns):
        column = numpy.ascontiguousarray(table[:, j])
        kind = _NUMPY_TYPES.get(typ)
        if kind is numpy.int64:
            try:  # most integer columns hold no NULL: an object NULL stops the conversion, and is masked below
                out[name] = column.astype(kind)
                continue
            except TypeError:
                pass
        if kind is not None:  # (a float conversion would turn NULL into NaN)
            null = column == None  # noqa: E711 (numpy compares element by element)
            if null.any():
                column[null] = 0
                column = numpy.ma.masked_array(column.astype(kind), mask=null)
            else:
                column = column.astype(kind)
        out[name] = column
    return out


# No key and no index: the loader keeps span ids unique itself (`extraction._unique_spans`, `stored_span_ids`), and
# DuckDB's min/max of each row group finds a trace's steps, which are written together, about as fast as an ART
# index, which a load pays to keep (docs/load-history.md has the figures).
# A store made before schema 5 keeps its key (DuckDB drops none in place, and copying the table would double
# the file): it only loses the two indexes.
SCHEMA += (
    "CREATE TABLE IF NOT EXISTS agent_spans (" + ", ".join(f"{n} {t}" for n, t in SPAN_COLUMNS) + ");"
    "\nDROP INDEX IF EXISTS idx_spans_trace;\nDROP INDEX IF EXISTS idx_spans_root;"
)
DATA_TABLES = ("agent_traces", "agent_spans", "sessions", "source_sessions", "source_state", "cleaned_sessions")
# `pushed` and `pushed_trees` (what each OpenTelemetry endpoint was sent) are not derived from OpenCode's data:
# they outlive a rebuild, and as span ids and digests come out the same after one, nothing is sent twice (a
# tree's mark may change: then its spans are built again and compared).


def _out_of_memory(exc: duckdb.Error) -> bool:
    """Whether DuckDB ran out of memory under its limit (a failed COMMIT reports it as a transaction error, in
    one of three wordings)."""
    text = str(exc)
    return (isinstance(exc, duckdb.OutOfMemoryException) or "Out of Memory Error" in text
            or "could not allocate block" in text or "failed to pin block" in text)


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the store file; a writer attaches it with smaller row groups.

    DuckDB writes the row groups a transaction fills straight to the file, and keeps the rest in its log (and in
    memory, spilling) until a checkpoint rewrites them: with DuckDB's 122,880 rows a group, no batch of a long
    load ever filled one, and every batch's text was written twice. Small groups (each batch's steps are written
    in two inserts, one by SQL and one from Python) leave little for the log; queries read them the same. The
    size holds for this connection only (it is not stored in the file), so readers open the file plainly.
    """
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    conn = duckdb.connect(":memory:")
    try:
        conn.execute(f"SET temp_directory = {_literal(str(path) + '.tmp')}")  # where a file store spills
        # TYPE: a file of another kind (a SQLite database) is refused, not attached through an extension
        conn.execute(f"ATTACH {_literal(str(path))} AS store (TYPE duckdb, ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        conn.execute("USE store")
    except BaseException:
        conn.close()
        raise
    return conn


def default_db_path() -> Path:
    """$AGENT_TRACES_DB, else ~/.local/share/agent-traces/traces.duckdb (XDG_DATA_HOME honoured)."""
    env = os.environ.get("AGENT_TRACES_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agent-traces" / "traces.duckdb"


DUCKDB_MAGIC = b"DUCK"  # at byte 8 of every DuckDB database file, after the header's checksum
SQLITE_MAGIC = b"SQLite format 3\0"


def check_store_file(path: Path) -> None:
    """Refuse, before DuckDB opens it, a file that is not a DuckDB database: DuckDB would take a SQLite file
    (OpenCode's opencode.db given to --db) for one to read through its sqlite extension, which it downloads.
    A missing or empty file is fine: it becomes a new store."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"Could not read the trace store {path}: {exc.strerror or exc}.") from exc
    if not head or head[8:12] == DUCKDB_MAGIC:
        return
    what = ("a SQLite database (OpenCode's opencode.db? give OpenCode's data with --source)"
            if head.startswith(SQLITE_MAGIC) else "not a DuckDB file")
    raise StoreError(f"{path} is not an agent-traces trace store: it is {what}. Use --db for the trace store "
                     "(default ~/.local/share/agent-traces/traces.duckdb); it was not opened.")


def _translate(exc: duckdb.Error, path: Path) -> StoreError:
    text = str(exc)
    said = text.replace(str(path), "")  # what DuckDB says, without the path (a folder may be called "locked")
    if "already attached" in said:
        return StoreBusy(f"The trace store {path} is in use elsewhere in this agent-traces process; wait for it"
                         " to finish, or use --db to choose another file.", path, " (in this process)")
    if "lock" in said.lower():
        pid = re.search(r"PID (\d+)", text)
        who = f" (process {pid.group(1)})" if pid else ""
        return StoreBusy(
            f"The trace store {path} is in use by another agent-traces process{who}; close it, wait for its "
            "load to finish, or use --db to choose another file.", path, who
        )
    return StoreError(f"Could not open the trace store {path}: {text.splitlines()[0]}")


class TraceStore:
    """The DuckDB file holding `agent_traces`, `sessions` and the incremental-load state.

    Another agent-traces process may hold the file for a moment (the dashboard opens it only while it reads or
    writes): opening waits up to `wait_seconds` for it before saying so.
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False, wait_seconds: float = 0.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.read_only = read_only
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a name too long, a file where a folder should be
                raise StoreError(f"Could not create the folder of the trace store {self.path}:"
                                 f" {exc.strerror or exc}.") from exc
        elif not self.path.exists():
            raise StoreError(f"No trace store at {self.path} yet; run `agent-traces load` first.")
        check_store_file(self.path)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                self.conn = _connect(self.path, read_only)
                break
            except duckdb.Error as exc:
                error = _translate(exc, self.path)
                if not isinstance(error, StoreBusy) or time.monotonic() >= deadline:
                    raise error from exc
                time.sleep(0.1)
        if not read_only:
            # a load writes far more than it reads again: DuckDB flushes to the file instead of keeping every
            # written block in memory, which is most of a load's peak memory otherwise
            self.conn.execute(f"SET memory_limit = '{WRITE_MEMORY_LIMIT}'")
            # and checkpoints every few committed batches, while the next one is read, rather than once at the
            # end, where nothing overlaps it
            self.conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
            # a load's big insert reads one stream (steps a reader's SQL makes from SQLite's rows), which one
            # thread consumes: a second thread only holds buffers (docs/load-history.md)
            self.conn.execute("SET threads = 1")
        self._local = threading.local()
        try:
            self._ensure_schema()
        except BaseException as exc:
            self.conn.close()
            if isinstance(exc, duckdb.Error):  # its first write failed: a read-only folder, a log name too long
                raise _translate(exc, self.path) from exc
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads)."""
        if threading.current_thread() is threading.main_thread():
            return self.conn
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.new_cursor()
        return cur

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own, with its own transaction, on the store."""
        cur = self.conn.cursor()
        if not self.read_only:
            cur.execute("USE store")  # a writer's cursor starts in the in-memory database it attached the file to
        return cur

    @contextmanager
    def more_memory(self) -> Iterator[None]:
        """DuckDB's room raised from the write limit while the block runs: for a read between the batches of a
        load (the window shows what is stored so far), or a batch written again that did not fit.

        The write limit is for the load's own pages, but the indexes of a long history count in it too: near the
        end of a full reload of a long history, a read of all its traces, or the write of a huge prompt, can run
        out of memory under it."""
        if self.read_only:
            yield
            return
        cur = self.cursor()
        cur.execute(f"SET memory_limit = '{ROOMY_MEMORY_LIMIT}'")
        try:
            yield
        finally:
            try:
                cur.execute(f"SET memory_limit = '{WRITE_MEMORY_LIMIT}'")
            except duckdb.Error:  # what the store holds now (its indexes) no longer fits under it
                log.info("the trace store keeps up to %s for its writes from now on", ROOMY_MEMORY_LIMIT)

    def fitted(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)`, run again with room when it ran out of memory under the write limit (a write in
        `transaction()` is rolled back first)."""
        try:
            return work(*args)
        except duckdb.Error as exc:
            if not _out_of_memory(exc):
                raise
            log.info("a load batch did not fit in %s; done again with up to %s", WRITE_MEMORY_LIMIT,
                     ROOMY_MEMORY_LIMIT)
            with self.more_memory():
                return work(*args)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    # -- schema -----------------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        cur = self.conn
        has_meta = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'").fetchone()[0]
        meta = dict(cur.execute("SELECT key, value FROM meta WHERE key IN ('schema_version', 'columns')"
                                ).fetchall()) if has_meta else {}
        version = int(meta["schema_version"]) if "schema_version" in meta else None
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"The trace store {self.path} was written by a newer agent-traces (schema {version}, this "
                f"program knows {SCHEMA_VERSION}); update agent-traces, or use --db to choose another file."
            )
        if version == SCHEMA_VERSION and meta.get("columns") == record_columns() or (
                self.read_only and version is not None and version >= READABLE_SINCE
                and not self._missing_columns(cur)):
            return
        if self.read_only:
            raise StoreError(f"The trace store {self.path} needs an upgrade; run `agent-traces load` once.")
        with self.transaction() as cur:
            if version is not None and version < ADDITIVE_SINCE:
                # Everything in the store is derived from OpenCode's data: an older layout is rebuilt
                # and the next load reads the whole store again.
                log.warning("rebuilding trace store %s (schema %s -> %s)", self.path, version, SCHEMA_VERSION)
                for table in DATA_TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            for table, column in self._missing_columns(cur):  # fields added since the store was made
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
            cur.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('columns', ?)",
                        [str(SCHEMA_VERSION), record_columns()])

    @staticmethod
    def _missing_columns(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
        """(table, column with its type and default) of each field of a record that its table lacks."""
        have = set(cur.execute("SELECT table_name, column_name FROM duckdb_columns()"
                               " WHERE database_name = current_database()").fetchall())
        return [(table, f"{name} {_sql_type(name, annotation)}{_default(default)}")
                for table, record in RECORD_TABLES.items() for name, annotation, default in _fields(record)
                if (table, name) not in have]

    def data_version(self) -> int:
        """A number every write of traces raises (a load, a cleanup, from any process): a view that last showed
        another number has not shown what the store holds now."""
        row = self.cursor().execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _bump(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute("INSERT INTO meta VALUES ('data_version', '1') ON CONFLICT (key) DO UPDATE"
                    " SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS VARCHAR)")

    def schema_version(self) -> int:
        return int(self.cursor().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    # -- incremental state -----------------------------------------------------------------------------

    def source_stamp(self, source: str) -> str | None:
        row = self.cursor().execute("SELECT stamp FROM source_state WHERE source = ?", [source]).fetchone()
        return row[0] if row else None

    def fingerprints(self, source: str) -> dict[str, str]:
        """The fingerprint of every session last loaded from this source."""
        return dict(self.cursor().execute("SELECT session_id, fingerprint FROM source_sessions WHERE source = ?",
                                          [source]).fetchall())

    def source_session_count(self, source: str) -> int:
        """How many sessions the last load of this source gave (what an unchanged source still holds)."""
        return self.cursor().execute("SELECT count(*) FROM source_sessions WHERE source = ?", [source]).fetchone()[0]

    def cleaned_sessions(self) -> set[str]:
        """The root sessions retention removed: a load does not import them again."""
        return {r[0] for r in self.cursor().execute("SELECT session_id FROM cleaned_sessions").fetchall()}

    def trace_count(self) -> int:
        return self.cursor().execute("SELECT count(*) FROM agent_traces").fetchone()[0]

    def cleaned_count(self) -> int:
        """How many root sessions retention holds back (what `forget_cleaned` would bring back)."""
        return self.cursor().execute("SELECT count(*) FROM cleaned_sessions").fetchone()[0]

    def cleaned_span(self) -> tuple[int, int] | None:
        """When the held-back sessions were cleaned: (first, last) in epoch milliseconds, or None."""
        row = self.cursor().execute(
            "SELECT epoch_ms(min(cleaned_at)), epoch_ms(max(cleaned_at)) FROM cleaned_sessions").fetchone()
        return (row[0], row[1]) if row and row[0] is not None else None

    def held_back_note(self) -> str | None:
        """One sentence on the sessions retention keeps out of the store (for `load --full` and the window),
        or None when there are none."""
        count, span = self.cleaned_count(), self.cleaned_span()
        if not count or span is None:
            return None
        first, last = (datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d") for ms in span)
        when = f"cleaned on {first}" if first == last else f"cleaned from {first} to {last}"
        what = "old session is" if count == 1 else "old sessions are"
        return f"{count} {what} held back by retention ({when}); `agent-traces cleanup --forget` brings them back."

    def session_count(self) -> int:
        return self.cursor().execute("SELECT count(*) FROM sessions").fetchone()[0]

    def holds_no_trees(self) -> bool:
        """Whether no trace, session or step is stored: a load can then insert without looking for rows to
        replace. (A store can hold sessions and no trace: a tree whose root could not be read yet.)"""
        return self.cursor().execute(
            "SELECT NOT EXISTS (SELECT 1 FROM agent_traces) AND NOT EXISTS (SELECT 1 FROM sessions)"
            " AND NOT EXISTS (SELECT 1 FROM agent_spans)").fetchone()[0]

    def roots_of(self, session_ids: Collection[str]) -> set[str]:
        if not session_ids:
            return set()
        rows = self.cursor().execute(
            "SELECT DISTINCT root_session_id FROM sessions WHERE session_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(session_ids)],
        ).fetchall()
        return {r[0] for r in rows}

    # -- writing ---------------------------------------------------------------------------------------

    def replace(self, *, roots: set[str], traces: list[AgentTrace], sessions: list[SessionInfo],
                fingerprints: dict[str, str], deleted: Collection[str], full: bool, source_key: str,
                stamp: str | None, conflicts: bool = True, spans: list[AgentSpan] = (),
                streamed: Collection[StreamedSteps] = (),
                settle: Callable[[list[AgentTrace], list[AgentSpan], list[WrittenSteps]],
                                 tuple[list[AgentTrace], list[AgentSpan]]] | None = None,
                stored_span_ids: set[str] | None = None) -> None:
        """Swap in the traces of these root trees, in one transaction (what a load writes, in one or more batches).

        `stamp` is the whole source's stamp, recorded with the last batch of a load only (None before), so a
        load cut short is not taken for a finished one. `conflicts=False` inserts plainly, without first deleting
        the rows of these trees, which is faster: for a load into an empty store, whose batches hold disjoint
        trees. `stored_span_ids`, from such a load, holds every span id it has stored so far, which saves
        looking each new one up in the store. `streamed` are steps a reader's SQL writes itself, first; what
        they tell (`WrittenSteps`) is then `settle`d into the traces and the `spans` made in Python."""
        with self.transaction() as cur:
            if conflicts:
                self._clear(cur, roots, traces, full)
            if deleted:
                gone = [list(deleted)]
                cur.execute("DELETE FROM source_sessions WHERE session_id IN (SELECT unnest(?::VARCHAR[]))", gone)
                cur.execute("DELETE FROM sessions WHERE session_id IN (SELECT unnest(?::VARCHAR[]))", gone)
            written = [steps.insert(cur, "agent_spans", {sp.span_id for sp in spans}) for steps in streamed]
            if written and settle is not None:
                traces, spans = settle(traces, list(spans), written)
            # a span id still stored under another tree (a damaged store reuses one): the one read now wins
            ids = chain((sp.span_id for sp in spans), (i for w in written for i in w.span_ids))
            again = [i for i in ids if stored_span_ids is None or i in stored_span_ids]
            if again:
                cur.execute("DELETE FROM agent_spans WHERE span_id IN (SELECT unnest(?::VARCHAR[]))"
                            " AND root_session_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                            [again, sorted({t.root_session_id for t in traces} | roots)])
            self._upsert_traces(cur, traces, conflicts=conflicts)
            self._insert(cur, "agent_spans", SPAN_COLUMNS, spans)
            self._insert_sessions(cur, sessions)
            if fingerprints:
                cur.execute(
                    "INSERT OR REPLACE INTO source_sessions SELECT unnest(?::VARCHAR[]), ?, unnest(?::VARCHAR[])",
                    [list(fingerprints), source_key, list(fingerprints.values())])
            self._session_totals(cur, roots)
            if stamp is not None:
                cur.execute("INSERT OR REPLACE INTO source_state VALUES (?, ?, current_timestamp)",
                            [source_key, stamp])
            if roots or deleted or traces or sessions or spans or written:
                self._bump(cur)  # what the view shows changed (only a stamp recorded: it did not)

    @staticmethod
    def _clear(cur: duckdb.DuckDBPyConnection, roots: set[str], traces: list[AgentTrace], full: bool) -> None:
        """What `replace` writes anew leaves first: the rows of these trees.

        (Not for a load into an empty store: nothing is there to leave, and its batches hold disjoint trees.)"""
        root_list = [list(roots)]
        if full:  # everything of these trees goes, then comes back
            cur.execute("DELETE FROM agent_traces WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))", root_list)
        else:  # rows that are still there are upserted, which keeps their first-seen time
            keep = [[t.trace_id for t in traces]]
            cur.execute(
                "DELETE FROM agent_traces WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))"
                " AND trace_id NOT IN (SELECT unnest(?::VARCHAR[]))", root_list + keep)
        cur.execute("DELETE FROM sessions WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))", root_list)
        cur.execute("DELETE FROM agent_spans WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))",
                    root_list)  # the steps of these trees all come back with them

    def _upsert_traces(self, cur: duckdb.DuckDBPyConnection, traces: list[AgentTrace],
                       conflicts: bool = True) -> None:
        """Insert the traces as the steps are (`_insert`: numpy columns, not bound lists); with `conflicts`, a trace
        whose id is stored already is replaced, and keeps its first-seen time (`created_at`). It is deleted and
        inserted again with that time: DuckDB's ON CONFLICT DO UPDATE, on a table with indexes, took 9-19 ms for
        the ten traces of one tree, this 4-7 ms."""
        if not traces:
            return
        rows = [_trace_row(t) for t in traces]
        if not conflicts:
            self._insert(cur, "agent_traces", TRACE_COLUMNS, rows)
            return
        ids = [[t.trace_id for t in traces]]
        first_seen = cur.execute("SELECT list(trace_id), list(created_at) FROM agent_traces"
                                 " WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))", ids).fetchall()[0]
        if first_seen[0]:
            cur.execute("DELETE FROM agent_traces WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))", ids)
        self._insert(cur, "agent_traces", TRACE_COLUMNS, rows, first_seen=first_seen if first_seen[0] else None)

    @staticmethod
    def _insert(cur: duckdb.DuckDBPyConnection, table: str, columns: tuple[tuple[str, str], ...],
                rows: list[tuple], first_seen: tuple[list, list] | None = None) -> None:
        """An insert of many records (tuples in column order), each column handed over as one numpy array
        that DuckDB scans itself: binding Python lists costs about two microseconds a value, which adds up over
        a long history's steps. `first_seen` (trace ids, and their `created_at`) is for traces stored again."""
        if not rows:
            return
        names = ", ".join(c for c, _ in columns)
        view = f"new_{table}"  # fixed names: the table comes from this module
        values = ", ".join(f"epoch_ms(CAST(v.{c} AS BIGINT))" if typ == "TIMESTAMP" else f"CAST(v.{c} AS {typ})"
                           for c, typ in columns)
        sql = f"INSERT INTO {table} ({names}) SELECT {values} FROM {view} v"
        params: list = []
        if first_seen is not None:
            sql = (f"INSERT INTO {table} ({names}, created_at) SELECT {values}, coalesce(k.created_at,"
                   f" current_timestamp) FROM {view} v LEFT JOIN (SELECT unnest(?::VARCHAR[]) AS trace_id,"
                   " unnest(?::TIMESTAMP[]) AS created_at) k ON k.trace_id = v.trace_id")
            params = list(first_seen)
        for i in range(0, len(rows), INSERT_CHUNK * 50):
            chunk = rows[i:i + INSERT_CHUNK * 50]
            cur.register(view, _columns(chunk, columns))
            try:
                cur.execute(sql, params)
            except duckdb.Error:
                # the transaction is aborted now: unregistering fails too ("Current transaction is aborted"),
                # and would hide the error itself (an out-of-memory that `fitted` writes again with room)
                with suppress(duckdb.Error):
                    cur.unregister(view)
                raise
            cur.unregister(view)

    def _insert_sessions(self, cur: duckdb.DuckDBPyConnection, sessions: list[SessionInfo]) -> None:
        """Insert the session records as the steps are (`_insert`), replacing a stored one (deleted first: its
        store-owned totals are made again by `_session_totals`; faster than ON CONFLICT DO UPDATE)."""
        if not sessions:
            return
        cur.execute("DELETE FROM sessions WHERE session_id IN (SELECT unnest(?::VARCHAR[]))",
                    [[s.session_id for s in sessions]])
        self._insert(cur, "sessions", SESSION_COLUMNS, [_session_row(s) for s in sessions])

    def _session_totals(self, cur: duckdb.DuckDBPyConnection, roots: set[str] | None) -> None:
        """Tree totals on each root session row: tokens, cost, delegations, errors. The cost is summed in trace
        order, so that it does not depend on where the rows lie (a tree written again goes to the table's end, and
        a sum of floats in another order can differ in its last digit from a full load's)."""
        where = "" if roots is None else " WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))"
        params = [] if roots is None else [list(roots)]
        cur.execute(
            "UPDATE sessions SET delegation_count = t.n, error_count = t.errors, tokens_in = t.tin,"
            " tokens_out = t.tout, cost_usd = t.cost FROM ("
            "  SELECT root_session_id, count(*) FILTER (WHERE kind = 'delegation') AS n,"
            "         count(*) FILTER (WHERE status = 'error') AS errors,"
            "         sum(tokens_in) AS tin, sum(tokens_out) AS tout, sum(cost_usd ORDER BY trace_id) AS cost"
            f"  FROM agent_traces{where} GROUP BY root_session_id) t"
            " WHERE sessions.session_id = t.root_session_id",
            params,
        )

    # -- what was pushed to OpenTelemetry backends ---------------------------------------------------------

    def pushed_digests(self, endpoint: str, roots: list[str] | None = None) -> dict[str, str]:
        """Span id (hex) -> digest of the span as it was last sent to this endpoint (of these session trees)."""
        if roots is None:
            return dict(self.cursor().execute("SELECT span_id, digest FROM pushed WHERE endpoint = ?",
                                              [endpoint]).fetchall())
        return dict(self.cursor().execute(
            "SELECT span_id, digest FROM pushed WHERE endpoint = ? AND root_session_id IN"
            " (SELECT unnest(?::VARCHAR[]))", [endpoint, roots]).fetchall())

    def record_pushed(self, endpoint: str, rows: list[tuple[str, str, str]],
                      trees: list[tuple[str, str, int, int]] = ()) -> None:
        """Remember spans the endpoint accepted: (span id, root session id, digest) each; and the session trees
        now sent whole as they are: (root session id, mark, spans, spans running)."""
        with self.transaction() as cur:
            if rows:
                span_ids, roots, digests = (list(c) for c in zip(*rows, strict=True))
                cur.execute("INSERT OR REPLACE INTO pushed SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
                            " unnest(?::VARCHAR[]), current_timestamp", [endpoint, span_ids, roots, digests])
            if trees:
                roots, marks, spans, running = (list(c) for c in zip(*trees, strict=True))
                cur.execute("INSERT OR REPLACE INTO pushed_trees SELECT ?, unnest(?::VARCHAR[]),"
                            " unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[])",
                            [endpoint, roots, marks, spans, running])

    def pushed_endpoints(self) -> list[str]:
        """Every endpoint something was recorded as sent to."""
        return [r[0] for r in self.cursor().execute(
            "SELECT endpoint FROM pushed UNION SELECT endpoint FROM pushed_trees ORDER BY 1").fetchall()]

    def rename_pushed_endpoint(self, old: str, new: str) -> None:
        """Record what was sent to `old` under `new` (what `new` already has of the same spans is replaced)."""
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO pushed SELECT ?, span_id, root_session_id, digest, pushed_at"
                        " FROM pushed WHERE endpoint = ?", [new, old])
            cur.execute("INSERT OR REPLACE INTO pushed_trees SELECT ?, root_session_id, mark, spans, running"
                        " FROM pushed_trees WHERE endpoint = ?", [new, old])
            cur.execute("DELETE FROM pushed WHERE endpoint = ?", [old])
            cur.execute("DELETE FROM pushed_trees WHERE endpoint = ?", [old])

    def pushed_trees(self, endpoint: str) -> dict[str, tuple[str, int, int]]:
        """Root session id -> (mark, spans, spans running) of each tree last sent whole to this endpoint."""
        rows = self.cursor().execute("SELECT root_session_id, mark, spans, running FROM pushed_trees"
                                     " WHERE endpoint = ?", [endpoint]).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    # -- retention -------------------------------------------------------------------------------------

    def cleanup_old_traces(self, retention_days: int, now_ms: int | None = None) -> int:
        """Drop the session trees that started more than `retention_days` ago; returns the traces removed.

        Their session ids are remembered so a later load does not import them again (`forget_cleaned` undoes
        that). `retention_days` is a whole number from 1 up, never a bool: 0 would empty the store and hold
        every session back, so it is refused with ValueError, like `True`, 2.5 or "30".
        """
        check_retention_days(retention_days)
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        cutoff = now_ms - retention_days * DAY_MS
        with self.transaction() as cur:
            roots = [r[0] for r in cur.execute(
                "SELECT session_id FROM sessions WHERE parent_session_id IS NULL AND session_id = root_session_id"
                " AND created_at < epoch_ms(?::BIGINT)", [cutoff]).fetchall()]
            if not roots:
                return 0
            ids = [roots]
            removed = cur.execute(
                "SELECT count(*) FROM agent_traces WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))",
                ids).fetchone()[0]
            members = [[r[0] for r in cur.execute(
                "SELECT session_id FROM sessions WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))",
                ids).fetchall()]]
            cur.execute("INSERT OR REPLACE INTO cleaned_sessions SELECT unnest(?::VARCHAR[]), current_timestamp",
                        ids)
            cur.execute("DELETE FROM agent_traces WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))", ids)
            cur.execute("DELETE FROM agent_spans WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))", ids)
            cur.execute("DELETE FROM sessions WHERE session_id IN (SELECT unnest(?::VARCHAR[]))", members)
            cur.execute("DELETE FROM source_sessions WHERE session_id IN (SELECT unnest(?::VARCHAR[]))", members)
            self._bump(cur)
        return removed

    def forget_cleaned(self) -> int:
        """Forget which sessions retention removed, so the next load imports them again; returns how many.

        The sources' file stamps are dropped too: otherwise an unchanged OpenCode store would be skipped
        whole and nothing would come back until OpenCode wrote again.
        """
        with self.transaction() as cur:
            count = cur.execute("SELECT count(*) FROM cleaned_sessions").fetchone()[0]
            if count:
                cur.execute("DELETE FROM cleaned_sessions")
                cur.execute("UPDATE source_state SET stamp = NULL")
        log.info("forgot %s cleaned sessions", count)
        return count
