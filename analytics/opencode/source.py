"""Find the user's OpenCode store and pick, for each session, the one generation that holds it.

Precedence (docs: opencode-storage.md §0): a database with `session_v2` (or a 2.x beta's `session`, see
`v2_session_table`) and a non-empty `session_message` is read as 2.x only (2.x backfills the 1.x rows under
the same ids, so the frozen 1.x tables are ignored); any other OpenCode database is read as 1.x; the JSON
`storage/` directory left behind after the one-time import is read only for session ids no database holds.
The first store that holds an id wins.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from analytics.errors import SourceError
from analytics.models import AgentSpan, LoadReport
from analytics.opencode.json_store import JsonReader
from analytics.opencode.readers import Reader, StreamedSteps
from analytics.opencode.records import RawMessage, RawSession, SessionStamp
from analytics.opencode.sqlite_store import SqliteFile, columns, connect_readonly, tables
from analytics.opencode.sqlite_v1 import SqliteV1Reader
from analytics.opencode.sqlite_v2 import SqliteV2Reader

V1_TABLES = {"session", "message", "part"}
V2_ONLY_COLUMNS = {"fork_session_id", "fork_boundary"}


def default_data_dir() -> Path:
    """OpenCode's data directory: $XDG_DATA_HOME/opencode, else ~/.local/share/opencode (macOS too)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opencode"


def _db_candidates(data_dir: Path) -> list[Path]:
    found: list[Path] = []
    env = os.environ.get("OPENCODE_DB")
    if env and env != ":memory:":
        p = Path(env)
        found.append(p if p.is_absolute() else data_dir / p)
    found.append(data_dir / "opencode.db")
    found.extend(sorted(data_dir.glob("opencode-*.db")))
    out: list[Path] = []
    for p in found:
        if p.is_file() and p not in out:
            out.append(p)
    return out


def v2_session_table(db: SqliteFile, names: set[str]) -> str | None:
    """The table holding 2.x sessions: `session_v2` since 2.0.12, `session` in the betas before.

    The betas grew 1.x's `session` table into the 2.x shape and 2.0.12's migration
    (20260804233008_loose_psylocke) renamed it `session_v2`. Its fork columns are 2.x only, so they tell it
    from the 1.x table of the same name (1.x has a `session_message` table too, an unused projection).
    """
    if "session_v2" in names:
        return "session_v2"
    if "session" in names and columns(db, "session") >= V2_ONLY_COLUMNS:
        return "session"
    return None


def sqlite_reader(path: Path) -> Reader:
    """The reader for an OpenCode database, by the tables it has; a plain sentence when it is none we know."""
    db = connect_readonly(path)
    try:
        names = tables(db)
        v2 = v2_session_table(db, names)
        if v2 is not None and "session_message" in names and db.rows("SELECT 1 FROM session_message LIMIT 1"):
            return SqliteV2Reader(path, v2)
        if names >= V1_TABLES and v2 != "session":
            return SqliteV1Reader(path)
        if v2 is not None:
            return SqliteV2Reader(path, v2)  # 2.x, still empty
    finally:
        db.close()
    shown = ", ".join(sorted(n for n in names if not n.startswith("sqlite_"))[:8]) or "no tables"
    raise SourceError(
        f"{path} does not look like an OpenCode database this version of agent-traces can read ({shown}); "
        "update agent-traces, or pass the right file with --source (`opencode db path` prints it)."
    )


@dataclass(frozen=True)
class IndexEntry:
    reader: int
    stamp: SessionStamp


class Source:
    """All the stores of one OpenCode data directory (or the one file or storage directory given)."""

    def __init__(self, readers: list[Reader], location: Path) -> None:
        self.readers = readers
        self.location = location
        self._index: dict[str, IndexEntry] = {}
        self._sizes: list[int] = []

    @property
    def generation(self) -> str:
        return "+".join(r.generation for r in self.readers)

    def stamp(self) -> str:
        """The stores' file stamps together; empty when one of them has no cheap stamp (JSON)."""
        parts = [r.stamp() for r in self.readers]
        return "" if any(p == "" for p in parts) else "||".join(parts)

    @contextmanager
    def reading(self) -> Iterator[Source]:
        """Open every store for one consistent read (one SQLite read transaction per database)."""
        with ExitStack() as stack:
            for r in self.readers:
                stack.enter_context(r)
            yield self

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        merged: dict[str, IndexEntry] = {}
        self._sizes = []
        for i, reader in enumerate(self.readers):
            own = reader.index(report)
            self._sizes.append(len(own))
            for sid, stamp in own.items():
                merged.setdefault(sid, IndexEntry(i, stamp))
        self._index = merged
        return {sid: e.stamp for sid, e in merged.items()}

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        """The sessions, each from the store that wins it (call `index` first)."""
        if not self._index:
            self.index(report)
        wanted = set(self._index) if ids is None else set(ids) & set(self._index)
        out: list[RawSession] = []
        for i, reader in enumerate(self.readers):
            mine = {sid for sid in wanted if self._index[sid].reader == i}
            if not mine:
                continue
            everything = len(mine) == self._sizes[i]  # the unfiltered scan is the fast one
            for s in reader.read(None if everything else mine, report):
                if s.id in mine:
                    out.append(s)
        return out

    def tool_spans(self, spans: list[AgentSpan]) -> list[StreamedSteps]:
        """The tool calls of these LLM calls that the readers stream into the store (see `Reader.tool_spans`)."""
        return [s for r in self.readers if (s := r.tool_spans(spans)) is not None]

    def fill_texts(self, messages_by_session: dict[str, list[RawMessage]], report: LoadReport) -> None:
        for i, reader in enumerate(self.readers):
            mine = [m for sid, msgs in messages_by_session.items()
                    if (e := self._index.get(sid)) is not None and e.reader == i for m in msgs]
            if mine:
                reader.fill_texts(mine, report)


def open_source(path: str | Path | None = None) -> Source:
    """The OpenCode store at `path` (a data directory, a database file or a `storage/` directory).

    With no path: $OPENCODE_DB, else $XDG_DATA_HOME/opencode, else ~/.local/share/opencode.
    """
    if path is None:
        env = os.environ.get("OPENCODE_DB")
        if env and env != ":memory:" and Path(env).is_absolute() and Path(env).is_file():
            return Source([sqlite_reader(Path(env))], Path(env))
        location = default_data_dir()
    else:
        location = Path(path).expanduser()
    if not location.exists():
        raise SourceError(
            f"No OpenCode data at {location}; run OpenCode once, or point agent-traces at your store "
            "with --source PATH (the folder that holds opencode.db or storage/)."
        )
    if location.is_file():
        return Source([sqlite_reader(location)], location)
    if (location / "session").is_dir() and (location / "message").is_dir():
        return Source([JsonReader(location)], location)
    readers: list[Reader] = [sqlite_reader(p) for p in _db_candidates(location)]
    if (location / "storage" / "session").is_dir():
        readers.append(JsonReader(location / "storage"))
    if not readers:
        raise SourceError(
            f"{location} holds no OpenCode sessions (no opencode.db and no storage/ folder); "
            "pass the folder that does with --source PATH."
        )
    return Source(readers, location)
