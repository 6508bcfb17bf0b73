"""Read-only access to OpenCode's SQLite database, shared by the 1.x and 2.x table readers.

The database is opened with `mode=ro` and a busy timeout, inside one read transaction per load, so a load sees
one consistent snapshot while OpenCode keeps writing through its WAL, and never writes a byte.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from analytics import jsontext
from analytics.errors import SourceError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
T = TypeVar("T")


class BadText(str):
    """A text cell that was not valid UTF-8; readers skip the row it is in."""


def _tolerant_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BadText(raw.decode("utf-8", "replace"))


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open an SQLite file read-only; OpenCode's own writes go on beside us.

    Even `mode=ro` creates `-wal` and `-shm` files beside a WAL database that has none. A WAL database with
    no `-wal` file has no writer (a writer creates it first), so it is opened `immutable`, which creates
    nothing. Any other database is opened normally, so a writer's lock is respected.
    """
    idle_wal = _is_wal_mode(path) and not path.with_name(path.name + "-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if idle_wal else "")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise translate(exc, path) from exc
    return conn


def _is_wal_mode(path: Path) -> bool:
    """The header's read/write format versions are 2 in WAL mode (sqlite.org/fileformat.html, offset 18)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\x00") and header[18:20] == b"\x02\x02"


def translate(exc: sqlite3.Error, path: Path) -> SourceError:
    """One plain sentence for what went wrong with OpenCode's database, and what to do."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return SourceError(
            f"OpenCode's database {path} is locked by another program; wait for OpenCode to finish "
            "writing and load again."
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return SourceError(
            f"{path} is not a readable SQLite database (it may be damaged); run `opencode db path` to check "
            "which file OpenCode uses, or pass another one with --source."
        )
    return SourceError(f"Could not read OpenCode's database {path}: {exc}. Check that the file exists and is readable.")


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """The error of a damaged page (SQLITE_CORRUPT), not of a lock or a query."""
    text = str(exc).lower()
    return "malformed" in text or "corrupt" in text


@contextmanager
def snapshot(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """One read transaction: every query inside sees the same state of the database."""
    try:
        conn.execute("BEGIN")
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    try:
        yield conn
    except sqlite3.DatabaseError as exc:  # locked, busy, or a damaged page the readers could not read around
        raise translate(exc, path) from exc
    finally:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}  # table names come from a fixed list


def id_filter(ids: Iterable[str] | None, column: str) -> tuple[str, tuple]:
    """A `column IN (...)` clause bound as one JSON array parameter, or nothing for 'all'."""
    if ids is None:
        return "", ()
    return f" AND {column} IN (SELECT value FROM json_each(?))", (json.dumps(sorted(ids)),)


def guarded(conn: sqlite3.Connection, fast_sql: str, safe_sql: str, params: tuple,
            consume: Callable[[Iterable[tuple]], T]) -> T:
    """`consume` the rows of the fast query; if a row is malformed JSON or not UTF-8, start over with the
    guarded variant.

    Rows are streamed, not fetched all at once. The guarded query checks `json_valid` on every row (a second
    parse on SQLite < 3.45) and reads text with a tolerant decoder, so one bad row costs the slow path once
    instead of aborting the load. `consume` must build its result from scratch on each call.
    """
    try:
        return consume(conn.execute(fast_sql, params))
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "json" not in text and "decode" not in text:
            raise
        log.info("falling back to the guarded query: %s", exc)
    previous = conn.text_factory
    conn.text_factory = _tolerant_text
    try:
        return consume(conn.execute(safe_sql, params))
    finally:
        conn.text_factory = previous


def loads_array(value: object) -> list | None:
    """The JSON array a multi-path json_extract returns, or None for a row that was skipped."""
    if value is None or isinstance(value, BadText):
        return None
    try:
        out = jsontext.loads(value)
    except (TypeError, ValueError):
        return None
    return out if isinstance(out, list) else None
