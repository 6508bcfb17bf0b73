"""OpenCode 1.2 to 1.x: SQLite `session` / `message` / `part` tables with JSON `data` columns.

SQLite does the selecting: only step-finish and tool parts leave the database (a LIKE prefilter skips text
and reasoning parts without parsing them), each row is parsed once by a multi-path `json_extract`, and only
task parts are handed to Python whole. Text parts are fetched later, for the few messages that need them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from pathlib import Path

from analytics.models import LoadReport, Usage
from analytics.opencode.readers import Reader, file_stamp
from analytics.opencode.records import (
    RawMessage,
    RawSession,
    SessionStamp,
    as_int,
    as_str,
    call_from_state,
    error_text,
    usage_from,
)
from analytics.opencode.sqlite_store import (
    BadText,
    columns,
    connect_readonly,
    id_filter,
    loads_array,
    robust_rows,
    snapshot,
    tables,
)

MESSAGE_PATHS = (
    "'$.role', '$.parentID', '$.agent', '$.mode', '$.modelID', '$.providerID', '$.time.completed', "
    "'$.error', '$.tokens', '$.cost', '$.model.modelID', '$.model.providerID'"
)
# A quoted key or value such as "tool" cannot occur unescaped inside a JSON string, so these LIKE patterns keep
# every tool and step-finish part (whatever the spacing) and drop text and reasoning parts unparsed.
PART_FILTER = "(data LIKE '%\"tool\"%' OR data LIKE '%\"step-finish\"%')"


class SqliteV1Reader(Reader):
    generation = "sqlite-v1"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._conn: sqlite3.Connection | None = None
        self._snap = None
        self._session_cols: set[str] = set()

    def stamp(self) -> str:
        return file_stamp(self.path, self.path.with_name(self.path.name + "-wal"))

    def __enter__(self) -> SqliteV1Reader:
        self._conn = connect_readonly(self.path)
        self._snap = snapshot(self._conn, self.path)
        conn = self._snap.__enter__()
        self._tables = tables(conn)
        self._session_cols = columns(conn, "session")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._snap is not None:
            self._snap.__exit__(*exc)
        if self._conn is not None:
            self._conn.close()
        self._conn = self._snap = None

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "use the reader inside `with`"
        return self._conn

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        events = "event_sequence" in self._tables
        sql = (
            "SELECT s.id, s.parent_id, s.time_updated, m.n, m.mx, p.n, p.mx"
            + (", e.seq" if events else ", NULL")
            + " FROM session s"
            " LEFT JOIN (SELECT session_id, count(*) AS n, max(time_updated) AS mx FROM message"
            "            GROUP BY session_id) m ON m.session_id = s.id"
            " LEFT JOIN (SELECT session_id, count(*) AS n, max(rowid) AS mx FROM part"
            "            GROUP BY session_id) p ON p.session_id = s.id"
            + (" LEFT JOIN event_sequence e ON e.aggregate_id = s.id" if events else "")
        )
        out = {}
        for sid, parent, *rest in self.conn.execute(sql):
            out[sid] = SessionStamp(parent, ":".join("" if v is None else str(v) for v in rest))
        return out

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        sessions = self._sessions(ids, report)
        by_msg: dict[str, RawMessage] = {}
        for msg_session, msg in self._messages(ids, report):
            s = sessions.get(msg_session)
            if s is not None:
                s.messages.append(msg)
                by_msg[msg.id] = msg
        self._parts(ids, by_msg, report)
        for s in sessions.values():
            s.messages.sort(key=lambda m: (m.created_ms, m.id))
            for m in s.messages:
                m.calls.sort(key=lambda c: c.trace_id)
        return list(sessions.values())

    def _sessions(self, ids: Collection[str] | None, report: LoadReport) -> dict[str, RawSession]:
        agent = "agent" if "agent" in self._session_cols else "NULL"
        where, params = id_filter(ids, "id")
        sql = (
            f"SELECT id, parent_id, title, directory, project_id, version, time_created, time_updated, {agent}"
            f" FROM session WHERE 1 = 1{where}"
        )
        out = {}
        for row in self.conn.execute(sql, params):
            sid, parent, title, directory, project, version, created, updated, ag = row
            if any(isinstance(v, BadText) for v in row):
                report.skip("session", sid, "text is not valid UTF-8")
                continue
            out[sid] = RawSession(sid, parent, title or "", directory or "", project, ag, version,
                                  created or 0, updated or created or 0, self.generation)
        return out

    def _messages(self, ids: Collection[str] | None, report: LoadReport) -> list[tuple[str, RawMessage]]:
        where, params = id_filter(ids, "session_id")
        fast = f"SELECT id, session_id, time_created, json_extract(data, {MESSAGE_PATHS}) FROM message WHERE 1 = 1{where}"
        safe = (
            "SELECT id, session_id, time_created, json_extract(CASE WHEN json_valid(data) THEN data END, "
            f"{MESSAGE_PATHS}) FROM message WHERE 1 = 1{where}"
        )
        out = []
        for mid, sid, created, extracted in robust_rows(self.conn, fast, safe, params):
            v = loads_array(extracted)
            if v is None:
                report.skip("message", mid, "data is not valid JSON")
                continue
            role, parent, agent, mode, model, provider, completed, err, tokens, cost, umodel, uprov = v
            msg = RawMessage(
                id=mid,
                role=role if isinstance(role, str) else "",
                parent_id=as_str(parent),
                agent=as_str(agent) or as_str(mode),
                created_ms=created or 0,
                completed_ms=as_int(completed),
                model=as_str(model) or as_str(umodel),
                provider=as_str(provider) or as_str(uprov),
                error=error_text(err) if err else None,
                usage=usage_from(tokens, cost),
            )
            out.append((sid, msg))
        return out

    def _parts(self, ids: Collection[str] | None, by_msg: dict[str, RawMessage], report: LoadReport) -> None:
        where, params = id_filter(ids, "session_id")
        select = (
            "SELECT message_id, id, time_created, json_extract({d}, '$.type', '$.tool', '$.tokens', '$.cost'),"
            " CASE WHEN data LIKE '%\"task\"%' THEN data END"
            f" FROM part WHERE {PART_FILTER}{where}"
        )
        fast = select.format(d="data")
        safe = select.format(d="CASE WHEN json_valid(data) THEN data END")
        steps: dict[str, Usage] = {}
        for mid, pid, created, extracted, full in robust_rows(self.conn, fast, safe, params):
            msg = by_msg.get(mid)
            if msg is None:
                continue
            v = loads_array(extracted)
            if v is None:
                report.skip("part", pid, "data is not valid JSON")
                continue
            ptype, tool, tokens, cost = v
            if ptype == "step-finish":
                steps[mid] = steps.get(mid, Usage()) + usage_from(tokens, cost)
            elif ptype == "tool" and isinstance(tool, str):
                msg.tools.append(tool)
                if tool == "task" and full is not None:
                    try:
                        data = json.loads(full)
                    except ValueError:
                        report.skip("part", pid, "task part is not valid JSON")
                        continue
                    state = data.get("state") if isinstance(data.get("state"), dict) else {}
                    msg.calls.append(call_from_state(pid, mid, created or msg.created_ms, state,
                                                     as_str(state.get("output"))))
        # The step-finish sums replace the message's own `tokens`, which hold only the last step's usage.
        for mid, usage in steps.items():
            by_msg[mid].usage = usage

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        wanted = {m.id: m for m in messages if m.texts is None}
        if not wanted:
            return
        for m in wanted.values():
            m.texts = []
        where, params = id_filter(wanted, "message_id")
        select = (
            "SELECT message_id, id, json_extract({d}, '$.type', '$.text', '$.synthetic', '$.ignored')"
            f" FROM part WHERE data LIKE '%\"text\"%'{where} ORDER BY message_id, id"
        )
        rows = robust_rows(self.conn, select.format(d="data"),
                           select.format(d="CASE WHEN json_valid(data) THEN data END"), params)
        for mid, pid, extracted in rows:
            v = loads_array(extracted)
            if v is None:
                report.skip("part", pid, "text part is not valid JSON or UTF-8")
                continue
            ptype, text, synthetic, ignored = v
            if ptype == "text" and isinstance(text, str) and not synthetic and not ignored:
                wanted[mid].texts.append(text)  # type: ignore[union-attr]
