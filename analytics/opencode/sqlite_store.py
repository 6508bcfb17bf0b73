"""Read-only access to OpenCode's SQLite database, shared by the 1.x and 2.x table readers.

The database is read through the ADBC SQLite driver, which hands its rows over as Arrow streams, and a DuckDB
in-memory database beside it reads those streams: it parses the JSON of the bulk rows itself (steps never pass
through Python one by one) and turns the small results into Python rows. Python's own `sqlite3` never opens
OpenCode's file: two SQLite libraries in one process do not see each other's POSIX locks, and the one that
closes its handle last would drop the other's.

The file is opened with `mode=ro` and a busy timeout, inside one read transaction per load (`begin`), so a load
sees one consistent snapshot while OpenCode keeps writing through its WAL, and never writes a byte.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import adbc_driver_manager
import adbc_driver_sqlite
import duckdb

from analytics import jsontext
from analytics.errors import SourceError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
ONE_BATCH = 10**9  # rows: a result read as one batch (the driver allocates as it goes)
STAGING_MEMORY_LIMIT = "256MB"  # the parsed heads of one or two batches; nothing spills to disk
T = TypeVar("T")
Errors = (adbc_driver_manager.Error, duckdb.Error)  # a driver error read through DuckDB is a DuckDB error


class BadText(str):
    """A text cell that was not valid UTF-8; readers skip the row it is in."""


def tolerant_text(raw: bytes) -> str:
    """Text read as bytes: a `str`, or a `BadText` with U+FFFD where the bytes are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BadText(raw.decode("utf-8", "replace"))


def text(column: str) -> str:
    """A column read as text and handed over as its bytes, so that text which is not UTF-8 reaches Python (or
    DuckDB's `try(decode())`) instead of failing the whole result: an Arrow string must be UTF-8."""
    return f"CAST(CAST({column} AS TEXT) AS BLOB)"


def _is_wal_mode(path: Path) -> bool:
    """The header's read/write format versions are 2 in WAL mode (sqlite.org/fileformat.html, offset 18)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\x00") and header[18:20] == b"\x02\x02"


def readonly_uri(path: Path) -> str:
    """The URI that opens an SQLite file without writing or creating anything beside it.

    Even `mode=ro` creates `-wal` and `-shm` files beside a WAL database that has none. A WAL database with
    no `-wal` file has no writer (a writer creates it first), so it is opened `immutable`, which creates
    nothing. Any other database is opened normally, so a writer's lock is respected.
    """
    idle_wal = _is_wal_mode(path) and not path.with_name(path.name + "-wal").exists()
    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if idle_wal else "")


def translate(exc: Exception, path: Path) -> SourceError:
    """One plain sentence for what went wrong with OpenCode's database, and what to do."""
    text_ = str(exc).lower()
    if "locked" in text_ or "busy" in text_:
        return SourceError(
            f"OpenCode's database {path} is locked by another program; wait for OpenCode to finish "
            "writing and load again."
        )
    if "not a database" in text_ or "malformed" in text_ and "json" not in text_ or "corrupt" in text_:
        return SourceError(
            f"{path} is not a readable SQLite database (it may be damaged); run `opencode db path` to check "
            "which file OpenCode uses, or pass another one with --source."
        )
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SourceError(f"Could not read OpenCode's database {path}: {first}. Check that the file exists and is "
                       "readable.")


def is_damage(exc: Exception) -> bool:
    """The error of a damaged page (SQLITE_CORRUPT), not of a lock, a query or a JSON function."""
    text_ = str(exc).lower()
    return "disk image is malformed" in text_ or "corrupt" in text_


_staging: duckdb.DuckDBPyConnection | None = None
_staging_lock = threading.Lock()
_setups: list[str] = []


def staging() -> duckdb.DuckDBPyConnection:
    """The process's DuckDB in-memory database that reads the driver's results: made once (a new DuckDB
    database takes tens of milliseconds, a cursor on it nothing), each reader on cursors of its own. It holds
    small staging tables only, a batch's parsed heads, under their own names (the bulk text goes from SQLite to
    the trace store as a stream), and writes no temporary file anywhere, not even in the working directory."""
    global _staging
    with _staging_lock:
        if _staging is None:
            conn = duckdb.connect(":memory:")
            conn.execute(f"SET memory_limit = '{STAGING_MEMORY_LIMIT}'")
            conn.execute("SET temp_directory = ''")
            conn.execute("SET threads = 1")  # small work, from one stream at a time: more threads only hold memory
            for sql in _setups:
                conn.execute(sql)
            _staging = conn
        return _staging


def on_staging(sql: str) -> None:
    """Run these statements (macros) on the staging database, now if it exists, and when it is made."""
    with _staging_lock:
        _setups.append(sql)
        if _staging is not None:
            _staging.execute(sql)


class SqliteFile:
    """One OpenCode database, open read-only through the ADBC SQLite driver, with a cursor per thread on the
    DuckDB database that reads its results (`cursor()`).

    Use `begin()` for one read transaction: every query after it sees the same state of the database.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._db = self._conn = None
        self.duck = staging().cursor()
        try:
            self._db = adbc_driver_sqlite.connect(readonly_uri(path))
            self._conn = adbc_driver_manager.AdbcConnection(self._db)
            self.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.execute("PRAGMA query_only = 1")
            self.rows("SELECT count(*) FROM sqlite_master")
        except Errors as exc:
            self.close()
            raise translate(exc, path) from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for handle in (self._conn, self._db):
            if handle is not None:
                with suppress(*Errors, RuntimeError):
                    handle.close()
        self._conn = self._db = None
        for cur in self._cursors:
            cur.close()
        self.duck.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """The calling thread's DuckDB cursor on the staging database."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.duck.cursor()
            self._cursors.append(cur)
        return cur

    def begin(self) -> None:
        """Start the read transaction that every later query of the load reads in."""
        self.execute("BEGIN")

    def rollback(self) -> None:
        with suppress(*Errors):
            self.execute("ROLLBACK")

    def execute(self, sql: str) -> None:
        """A statement whose result is not read (a PRAGMA, BEGIN, ROLLBACK)."""
        assert self._conn is not None, "the database is closed"
        stmt = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            stmt.set_sql_query(sql)
            stmt.execute_update()
        finally:
            stmt.close()

    @contextmanager
    def stream(self, sql: str, params: Sequence[object] = (), whole: bool = False,
               batch_rows: int | None = None) -> Iterator[Any]:
        """The rows of a query as an Arrow stream (for DuckDB to scan), open while the block runs.

        Parameters are bound positionally from a one-row DuckDB relation: text as VARCHAR, numbers as BIGINT.
        The driver gives each column the type of the values in its first batch (of 1,024 rows), and the type of a
        batch of NULLs (or of no row) is BIGINT: a later batch with text in that column fails. So every column
        is cast to one type in the query, and either the query starts with a row that has a value of that type
        in every column (see `sqlite_v1_sql.first_row`), or the stream is read `whole`, as one batch."""
        assert self._conn is not None, "the database is closed"
        stmt = adbc_driver_manager.AdbcStatement(self._conn)
        binder = None  # a cursor of its own: its result stays open while the statement runs
        try:
            if whole or batch_rows:
                stmt.set_options(**{"adbc.sqlite.query.batch_rows": str(ONE_BATCH if whole else batch_rows)})
            stmt.set_sql_query(sql)
            if params:
                binder = self.duck.cursor()
                types = ["BIGINT" if isinstance(p, int) else "VARCHAR" for p in params]
                select = ", ".join(f"?::{t} AS p{i}" for i, t in enumerate(types))
                stmt.bind_stream(binder.sql(f"SELECT {select}", params=list(params)))
            handle, _ = stmt.execute_query()
            yield handle
        finally:
            stmt.close()
            if binder is not None:
                binder.close()

    def rows(self, sql: str, params: Sequence[object] = (), raw: Iterable[int] = ()) -> list[tuple]:
        """The rows of a query as Python tuples, read as one batch (a column of NULLs comes back as None whatever
        its type); bytes (see `text`) come back decoded by `tolerant_text`, except in the `raw` columns."""
        keep = set(raw)
        with self.stream(sql, params, whole=True) as handle:
            cur = self.cursor()
            cur.register("sqlite_rows", handle)
            try:
                # DuckDB decodes the text (the schema comes from the driver's `__arrow_c_schema__`, without
                # reading the stream); a row holding text that is not UTF-8 comes back with its bytes as well
                relation = cur.sql("SELECT * FROM sqlite_rows")
                names = [f'"{c}"' for c in relation.columns]
                text = [i for i, t in enumerate(relation.types) if str(t) == "BLOB" and i not in keep]
                if not text:
                    return cur.execute("SELECT * FROM sqlite_rows").fetchall()
                decoded = ", ".join(f"try(decode({c}))" if i in text else c for i, c in enumerate(names))
                bad = " OR ".join(f"({names[i]} IS NOT NULL AND try(decode({names[i]})) IS NULL)" for i in text)
                rows = cur.execute(f"SELECT {decoded}, CASE WHEN {bad} THEN [{', '.join(names[i] for i in text)}]"
                                   " END FROM sqlite_rows").fetchall()
            finally:
                cur.unregister("sqlite_rows")
        out = []
        for row in rows:
            *values, raw_text = row
            if raw_text is not None:  # text that is not UTF-8: decoded here, tolerantly
                for i, b in zip(text, raw_text, strict=True):
                    values[i] = None if b is None else tolerant_text(b)
            out.append(tuple(values))
        return out


def connect_readonly(path: Path) -> SqliteFile:
    """Open an SQLite file read-only; OpenCode's own writes go on beside us (see `readonly_uri`)."""
    return SqliteFile(path)


@contextmanager
def snapshot(db: SqliteFile) -> Iterator[SqliteFile]:
    """One read transaction: every query inside sees the same state of the database."""
    try:
        db.begin()
    except Errors as exc:
        raise translate(exc, db.path) from exc
    try:
        yield db
    except adbc_driver_manager.Error as exc:  # locked, busy, or a damaged page the readers could not read around
        raise translate(exc, db.path) from exc
    except duckdb.Error as exc:
        if not _from_sqlite(exc):  # the trace store's own error, or DuckDB's: not OpenCode's database
            raise
        raise translate(exc, db.path) from exc
    finally:
        db.rollback()


def _from_sqlite(exc: duckdb.Error) -> bool:
    """Whether DuckDB failed because reading the driver's stream failed (SQLite's error, passed on)."""
    return "reading the stream" in str(exc) or "[SQLite]" in str(exc)


def tables(db: SqliteFile) -> set[str]:
    return {r[0] for r in db.rows(f"SELECT {text('name')} FROM sqlite_master WHERE type = 'table'")}


def columns(db: SqliteFile, table: str) -> set[str]:
    # table names come from a fixed list
    return {r[0] for r in db.rows(f"SELECT {text('name')} FROM pragma_table_info('{table}')")}


def id_filter(ids: Iterable[str] | None, column: str) -> tuple[str, tuple]:
    """A `column IN (...)` clause bound as one JSON array parameter, or nothing for 'all'."""
    if ids is None:
        return "", ()
    return f" AND {column} IN (SELECT value FROM json_each(?))", (json.dumps(sorted(ids)),)


def guarded(db: SqliteFile, fast_sql: str, safe_sql: str, params: tuple,
            consume: Callable[[Iterable[tuple]], T], raw: Iterable[int] = ()) -> T:
    """`consume` the rows of the fast query; if a row is malformed JSON, start over with the guarded variant
    (which checks `json_valid` on every row). Text that is not UTF-8 arrives as `BadText` either way.
    `consume` must build its result from scratch on each call."""
    try:
        rows = db.rows(fast_sql, params, raw)
    except Errors as exc:
        if "json" not in str(exc).lower():
            raise
        log.info("falling back to the guarded query: %s", exc)
        rows = db.rows(safe_sql, params, raw)
    return consume(rows)


def loads_array(value: object) -> list | None:
    """The JSON array a multi-path json_extract returns, or None for a row that was skipped."""
    if value is None or isinstance(value, BadText):
        return None
    try:
        out = jsontext.loads(value)
    except (TypeError, ValueError):
        return None
    return out if isinstance(out, list) else None
