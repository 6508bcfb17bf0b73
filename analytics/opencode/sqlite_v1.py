"""OpenCode 1.2 to 1.x: SQLite `session` / `message` / `part` tables with JSON `data` columns.

SQLite does the selecting: only step-finish and tool parts leave the database (a LIKE prefilter skips text
and reasoning parts without parsing them), each is parsed by one multi-path `json_extract` (a tool part once
more for its input), and only task parts are handed to Python whole. Text parts are fetched later, for the
few messages that need them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection
from operator import itemgetter
from pathlib import Path
from sys import intern

from analytics.models import COMPLETED, ERROR, OUT_OF_RANGE, RUNNING, LoadReport, Usage
from analytics.opencode.readers import Reader, file_stamp
from analytics.opencode.records import (
    DELEGATION_TOOLS,
    RawCall,
    RawMessage,
    RawSession,
    RawTool,
    SessionStamp,
    as_int,
    as_str,
    call_from_state,
    call_status,
    error_text,
    loads_compact,
    loads_js,
    named_error,
    output_text,
)
from analytics.opencode.sqlite_store import (
    BadText,
    columns,
    connect_readonly,
    guarded,
    id_filter,
    is_damage,
    loads_array,
    snapshot,
    tables,
)

log = logging.getLogger(__name__)

# Columns are read as the types OpenCode writes (SQLite would hand back whatever a cell holds): ids and texts
# as TEXT, times as INTEGER (a REAL too big for one comes back as the largest INTEGER, which the loader counts
# as out of range). A row without an id is no record.
SESSION_ID = "CAST(s.id AS TEXT)"
PARENT_ID = "CAST(s.parent_id AS TEXT)"
SESSION_COLUMNS = ("CAST(id AS TEXT), CAST(parent_id AS TEXT), CAST(title AS TEXT), CAST(directory AS TEXT),"
                   " CAST(project_id AS TEXT), CAST(version AS TEXT), CAST(time_created AS INTEGER),"
                   " CAST(time_updated AS INTEGER)")
TEXT_IDS = "CAST(id AS TEXT), CAST(session_id AS TEXT)"

# Flat paths, so each row comes back as one small JSON array of scalars (one parse in SQLite, one in Python).
MESSAGE_PATHS = (
    "'$.role', '$.parentID', '$.agent', '$.mode', '$.modelID', '$.providerID', '$.time.completed',"
    " '$.error.name', '$.error.data.message', '$.error.message', '$.tokens.input', '$.tokens.output',"
    " '$.tokens.reasoning', '$.tokens.cache.read', '$.tokens.cache.write', '$.cost', '$.model.modelID',"
    " '$.model.providerID'"
)
# A quoted key or value such as "tool" cannot occur unescaped inside a JSON string, so these LIKE patterns keep
# every tool and step-finish part (whatever the spacing) and drop text and reasoning parts unparsed.
TOOL_FILTER = "data LIKE '%\"tool\"%'"
STEP_FILTER = "data LIKE '%\"step-finish\"%'"
STEP_PATHS = ("'$.type', '$.tokens.input', '$.tokens.output', '$.tokens.reasoning', '$.tokens.cache.read',"
              " '$.tokens.cache.write', '$.cost'")


_tool = tuple.__new__  # a RawTool from a tuple of its fields, in order
_span_id = itemgetter(0)


def _read_tools(rows, by_msg: dict[str, RawMessage], skipped: list[tuple[str, str]]) -> list[str]:
    """The tool calls of these rows (`SqliteV1Reader._tool_calls`) added to their messages, from scratch (a scan
    may start over); the parts that cannot be read go to `skipped` as (message id, part id). Returns the ids of
    the task parts."""
    tasks: list[str] = []
    skipped.clear()
    for m in by_msg.values():
        m.tools = []
        m.tool_calls = []
    for mid, pid, head, inp, raw_output in rows:
        if head is None:  # the tolerant pass: not JSON
            skipped.append((mid or "", pid))
            continue
        msg = by_msg.get(mid)
        if msg is None:
            continue
        try:
            fields = loads_js(head)  # text that was not UTF-8 (BadText) still tells what the part is
            ptype, tool, status, title, start, end, err = fields
        except ValueError:
            skipped.append((mid, pid))
            continue
        if ptype != "tool" or tool.__class__ is not str:
            continue  # not a tool call
        tool = intern(tool)
        msg.tools.append(tool)
        if tool in DELEGATION_TOOLS:
            tasks.append(pid)  # read whole, and its damage counted, with the task calls
            continue
        try:
            if head.__class__ is not str or inp.__class__ is BadText:
                raise ValueError
            # SQLite's json_extract ends a string at an escaped NUL: such an output comes as JSON text, parsed here
            output = None if raw_output is None else loads_js(raw_output) if raw_output.__class__ is str \
                else output_text(raw_output)
        except ValueError:
            msg.tools.pop()
            skipped.append((mid, pid))
            continue
        if (start.__class__ is int and (end is None or end.__class__ is int) and err is None
                and (title is None or title.__class__ is str)):  # as OpenCode writes them
            msg.tool_calls.append(_tool(RawTool, (
                pid, tool, title, COMPLETED if status == COMPLETED else ERROR if status == ERROR else RUNNING,
                start, end, None if inp == "null" else inp, output)))
        else:
            msg.tool_calls.append(_odd_tool(pid, tool, status, title, start, end, err, inp, output))
    return tasks


def _odd_tool(pid: str, tool: str, status: object, title: object, start: object, end: object, err: object,
              inp: str | None, output: str | None) -> RawTool:
    """A tool call whose fields are not what OpenCode writes, read with the checks the other readers use."""
    state = call_status(status)
    error = error_text(err) if state == ERROR and err is not None else None
    return RawTool(pid, tool, as_str(title), state, as_int(start), as_int(end),
                   inp if isinstance(inp, str) and inp != "null" else None, error if error is not None else output)


def num(v: object) -> int:
    """A token count from JSON: ints pass, anything else that is not a number counts as 0, and an infinity
    (SQLite reads `1e999` as one) is OUT_OF_RANGE, which the loader replaces and counts."""
    if v.__class__ is int:
        return v  # type: ignore[return-value]
    if isinstance(v, float) and v == v:
        try:
            return int(v)
        except OverflowError:
            return OUT_OF_RANGE
    return 0


def fnum(v: object) -> float:
    if v.__class__ is float or v.__class__ is int:
        return float(v)  # type: ignore[arg-type]
    return 0.0


class SqliteV1Reader(Reader):
    generation = "sqlite-v1"
    session_table = "session"  # 2.x: `session_v2` (or `session` in its betas)

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._conn: sqlite3.Connection | None = None
        self._snap = None
        self._session_cols: set[str] = set()
        self._unreadable: set[str] = set()  # sessions the index found unreadable (counted there)
        self._ids: list[str] = []  # every session id in the index

    def stamp(self) -> str:
        return file_stamp(self.path, self.path.with_name(self.path.name + "-wal"))

    def __enter__(self) -> SqliteV1Reader:
        self._conn = connect_readonly(self.path)
        self._snap = snapshot(self._conn, self.path)
        conn = self._snap.__enter__()
        self._tables = tables(conn)
        self._session_cols = columns(conn, self.session_table)
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
        """Per-session fingerprints. OpenCode 1.3+ logs every write of a session as an event and keeps its
        last sequence number in `event_sequence`: one small row per session. Sessions without one (older
        databases, sessions imported from JSON) fall back to counting their rows through the indexes."""
        messages = "(SELECT count(*) || '/' || max(time_updated) FROM message m WHERE m.session_id = s.id)"
        parts = "(SELECT count(*) || '/' || max(rowid) FROM part p WHERE p.session_id = s.id)"
        if "event_sequence" in self._tables:
            sql = (f"SELECT {SESSION_ID}, {PARENT_ID}, s.time_created, s.time_updated, e.seq,"
                   f" CASE WHEN e.seq IS NULL THEN {messages} END, CASE WHEN e.seq IS NULL THEN {parts} END"
                   " FROM session s LEFT JOIN event_sequence e ON e.aggregate_id = s.id")
        else:
            sql = (f"SELECT {SESSION_ID}, {PARENT_ID}, s.time_created, s.time_updated, NULL, {messages}, {parts}"
                   " FROM session s")
        return self._stamps(sql, report)

    def _stamps(self, sql: str, report: LoadReport) -> dict[str, SessionStamp]:
        """The index rows as stamps; a row whose id or parent id is not UTF-8 is there but unreadable."""
        def consume(rows) -> dict[str, SessionStamp]:
            out: dict[str, SessionStamp] = {}
            self._unreadable = set()
            self._ids = []
            for sid, parent, created, *rest in rows:
                if sid is None:
                    report.skip("session", "(no id)", "a session row has no id")
                    continue
                if sid.__class__ is BadText or parent.__class__ is BadText:
                    report.skip("session", sid, "id or parent id is not valid UTF-8")
                    self._unreadable.add(sid)
                    out[sid] = SessionStamp(None, "unreadable", readable=False)
                    continue
                out[sid] = SessionStamp(parent, ":".join("" if v is None else str(v) for v in rest),
                                        as_int(created) or 0)
            self._ids = list(out)
            return out

        return guarded(self.conn, sql, sql, (), consume)  # no JSON here: the retry only decodes tolerantly

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        """The sessions in one pass; if the pass meets a damaged page, again session by session, and those
        whose rows are on the page are skipped and counted (the normal path pays nothing for this)."""
        try:
            return self._read(ids, report)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            log.warning("%s: %s; reading session by session", self.path, exc)
        out = []
        for sid in sorted(self._ids if ids is None else ids):
            own = LoadReport()
            try:
                out.extend(self._read([sid], own))
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                report.skip("session", sid, "its rows are on a damaged page of the database")
                continue
            report.merge(own)
        return out

    def _read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        sessions = self._sessions(ids, report)
        by_msg: dict[str, RawMessage] = {}
        for msg_session, msg in self._messages(ids, report):
            s = sessions.get(msg_session)
            if s is not None:
                s.messages.append(msg)
                by_msg[msg.id] = msg
        self._parts(ids, by_msg, report)
        self._task_calls(self._tool_calls(ids, by_msg, report), by_msg, report)
        for s in sessions.values():
            s.messages.sort(key=lambda m: (m.created_ms, m.id))
        return list(sessions.values())

    def _sessions(self, ids: Collection[str] | None, report: LoadReport) -> dict[str, RawSession]:
        """The session rows (of either generation's table); a row with text that is not UTF-8 is skipped."""
        agent = "agent" if "agent" in self._session_cols else "NULL"
        where, params = id_filter(ids, "id")
        sql = f"SELECT {SESSION_COLUMNS}, CAST({agent} AS TEXT) FROM {self.session_table} WHERE 1 = 1{where}"

        def consume(rows) -> dict[str, RawSession]:
            out = {}
            for row in rows:
                sid, parent, title, directory, project, version, created, updated, ag = row
                if sid in self._unreadable:
                    continue
                if any(isinstance(v, BadText) for v in row):
                    report.skip("session", sid, "text is not valid UTF-8")
                    continue
                out[sid] = RawSession(sid, parent, title or "", directory or "", project, ag, version,
                                      created or 0, updated or created or 0, self.generation)
            return out

        return guarded(self.conn, sql, sql, params, consume)  # no JSON here: the retry only decodes tolerantly

    def _messages(self, ids: Collection[str] | None, report: LoadReport) -> list[tuple[str, RawMessage]]:
        where, params = id_filter(ids, "session_id")
        select = (f"SELECT {TEXT_IDS}, CAST(time_created AS INTEGER), json_extract({{d}}, {MESSAGE_PATHS})"
                  f" FROM message WHERE id IS NOT NULL{where}")

        def consume(rows) -> list[tuple[str, RawMessage]]:
            out = []
            for mid, sid, created, extracted in rows:
                try:
                    if extracted.__class__ is not str:  # NULL (invalid JSON) or BadText (not UTF-8)
                        raise ValueError
                    (role, parent, agent, mode, model, provider, completed, err_name, err_msg, err_msg2,
                     tin, tout, treason, tread, twrite, cost, umodel, uprov) = loads_compact(extracted)
                except (TypeError, ValueError):
                    report.skip("message", mid, "data is not valid JSON or UTF-8")
                    continue
                message = err_msg or err_msg2
                agent = agent if agent.__class__ is str else mode if mode.__class__ is str else None
                model = model if model.__class__ is str else umodel if umodel.__class__ is str else None
                provider = provider if provider.__class__ is str else uprov if uprov.__class__ is str else None
                out.append((sid, RawMessage(
                    mid, intern(role) if role.__class__ is str else "", parent if parent.__class__ is str else None,
                    intern(agent) if agent else None,
                    created or 0, completed if completed.__class__ is int else as_int(completed),
                    intern(model) if model else None, intern(provider) if provider else None,
                    named_error(as_str(err_name), as_str(message)) if (err_name or message) else None,
                    Usage(num(tin), num(tout), num(treason), num(tread), num(twrite), fnum(cost)),
                )))
            return out

        return guarded(self.conn, select.format(d="data"),
                       select.format(d="CASE WHEN json_valid(data) THEN data END"), params, consume)

    def _parts(self, ids: Collection[str] | None, by_msg: dict[str, RawMessage], report: LoadReport) -> None:
        """Step usage from one scan of the step-finish parts.

        The MATERIALIZED CTE parses each step-finish part once into a small array; the aggregation reads those
        arrays, so SQLite returns one row per message. A damaged part that also looks like a tool part is
        counted by the tool-call scan, not twice.
        """
        where, params = id_filter(ids, "session_id")
        select = (
            f"WITH p AS MATERIALIZED (SELECT CAST(message_id AS TEXT) AS message_id,"
            f"   json_extract({{d}}, {STEP_PATHS}) AS j, {TOOL_FILTER} AS looks_tool FROM part"
            f"   WHERE {STEP_FILTER} AND id IS NOT NULL{where})"
            " SELECT message_id, '[' || group_concat(j) || ']', count(*) FILTER (WHERE j IS NULL AND NOT looks_tool)"
            " FROM p GROUP BY message_id"
        )

        def consume(rows) -> int:
            bad = 0
            for mid, arrays, invalid in rows:
                bad += invalid
                msg = by_msg.get(mid)
                if msg is None or arrays is None:
                    continue
                if arrays.__class__ is not str:  # BadText: a part of this message is not UTF-8
                    report.skip("part", mid, "a step-finish part is not valid UTF-8")
                    continue
                tin = tout = treason = tread = twrite = steps = 0
                cost = 0.0
                for ptype, a, b, c, d, e, f in loads_compact(arrays):
                    if ptype == "step-finish":
                        steps += 1
                        if not (a.__class__ is int and b.__class__ is int and c.__class__ is int
                                and d.__class__ is int and e.__class__ is int and f.__class__ is float):
                            a, b, c, d, e, f = num(a), num(b), num(c), num(d), num(e), fnum(f)
                        tin, tout, treason, tread, twrite, cost = (tin + a, tout + b, treason + c, tread + d,
                                                                   twrite + e, cost + f)
                if steps:
                    # the sums replace the message's own `tokens`, which hold only the last step's usage
                    msg.usage = Usage(tin, tout, treason, tread, twrite, cost)
            return bad

        bad = guarded(self.conn, select.format(d="data"),
                      select.format(d="CASE WHEN json_valid(data) THEN data END"), params, consume)
        for _ in range(bad):
            report.skip("part", "step-finish", "data is not valid JSON or UTF-8")

    def _task_calls(self, tasks: list[str], by_msg: dict[str, RawMessage], report: LoadReport) -> None:
        """The task calls in full (the tool-call scan found their ids)."""
        if not tasks:
            return
        where, params = id_filter(tasks, "id")
        sql = (f"SELECT id, CAST(message_id AS TEXT), CAST(time_created AS INTEGER), data FROM part"
               f" WHERE 1 = 1{where} ORDER BY id")

        def calls(rows) -> list[tuple[RawMessage, RawCall]]:
            out = []
            for pid, mid, created, data in rows:
                msg = by_msg.get(mid)
                if msg is None:
                    continue
                try:
                    if data.__class__ is not str:
                        raise ValueError
                    part = loads_js(data)
                except ValueError:
                    report.skip("part", pid, "task part is not valid JSON or UTF-8")
                    continue
                if part.get("type") != "tool" or part.get("tool") not in DELEGATION_TOOLS:
                    continue
                state = part.get("state") if isinstance(part.get("state"), dict) else {}
                out.append((msg, call_from_state(pid, mid, created or msg.created_ms, state,
                                                 as_str(state.get("output")))))
            return out

        for msg, call in guarded(self.conn, sql, sql, params, calls):
            msg.calls.append(call)

    def _tool_calls(self, ids: Collection[str] | None, by_msg: dict[str, RawMessage], report: LoadReport) -> list[str]:
        """Every tool call's name, and every tool call but the delegations in full: status, title, times, input
        (as compact JSON text, whatever its type, like the other readers give it) and output (or the error
        text). Returns the ids of the task parts, which are read whole next.

        `->` gives the input as JSON even when it is a string or a number (json_extract gives a string's bare
        text, a number as a number); an output that is not a string is no output, as in the other readers.
        SQLite unescapes the output (the largest field) itself, as bytes, so Python never parses it again: see
        `output_text`; except in a part holding an escaped NUL (\\u0000), where SQLite's json_extract would end
        the text, and which comes as JSON text instead. Four parses of each part (SQLite 3.40 keeps no parsed
        JSON between calls), which still measures faster than one parse of a head array holding the output.

        The rows come in the order SQLite finds them, and each message's calls are put in part order after:
        sorting 258 MB of rows by message took SQLite 0.6 s of a long history's load. A message whose parts
        repeat an id (damage: a text id and a blob id alike once read as text) is read again in SQLite's order,
        which decides the one kept. What is skipped is counted once the scan has gone through, in part order:
        a scan that starts over on its careful path (`guarded`) would count what it had skipped again."""
        where, params = id_filter(ids, "session_id")
        select = (
            "SELECT CAST(message_id AS TEXT), CAST(id AS TEXT),"
            " json_extract({d}, '$.type', '$.tool', '$.state.status', '$.state.title', '$.state.time.start',"
            " '$.state.time.end', '$.state.error'), {d} -> '$.state.input',"
            " CASE json_type({d}, '$.state.output') WHEN 'text' THEN CASE WHEN instr({d}, '\\u0000')"
            " THEN {d} -> '$.state.output' ELSE CAST(json_extract({d}, '$.state.output') AS BLOB) END"
            " END FROM part WHERE " + TOOL_FILTER + " AND id IS NOT NULL{where}{order}"
        )
        careful = "CASE WHEN json_valid(data) THEN data END"
        skipped: list[tuple[str, str]] = []
        tasks = guarded(self.conn, select.format(d="data", where=where, order=""),
                        select.format(d=careful, where=where, order=""), params,
                        lambda rows: _read_tools(rows, by_msg, skipped))
        repeated: dict[str, RawMessage] = {}
        for mid, m in by_msg.items():
            calls = m.tool_calls
            if len(calls) > 1:
                calls.sort(key=_span_id)
                if any(a[0] == b[0] for a, b in zip(calls, calls[1:], strict=False)):  # sorted: repeats are neighbours
                    repeated[mid] = m
        if repeated:  # their damage is counted already
            where, params = id_filter(repeated, "message_id")
            order = " ORDER BY message_id, id"
            guarded(self.conn, select.format(d="data", where=where, order=order),
                    select.format(d=careful, where=where, order=order), params,
                    lambda rows: _read_tools(rows, repeated, []))
        for _mid, pid in sorted(skipped):
            report.skip("part", pid, "tool part is not valid JSON or UTF-8")
        return tasks

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        """Texts in one query; on a damaged page, message by message, and an unreadable one has none."""
        try:
            self._fill_texts(messages, report)
            return
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
        for m in messages:
            m.texts = None
            try:
                self._fill_texts([m], report)
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                report.skip("part", m.id, "its text parts are on a damaged page of the database")
                m.texts = []

    def _fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        wanted = {m.id: m for m in messages if m.texts is None}
        if not wanted:
            return
        for m in wanted.values():
            m.texts = []
        where, params = id_filter(wanted, "message_id")
        select = (
            "SELECT CAST(message_id AS TEXT), id, json_extract({d}, '$.type', '$.text', '$.synthetic', '$.ignored')"
            f" FROM part WHERE data LIKE '%\"text\"%'{where} ORDER BY message_id, id"
        )

        def consume(rows) -> list[tuple[str, str]]:
            out = []
            for mid, pid, extracted in rows:
                v = loads_array(extracted)
                if v is None:
                    report.skip("part", pid, "text part is not valid JSON or UTF-8")
                    continue
                ptype, text, synthetic, ignored = v
                if ptype == "text" and isinstance(text, str) and not synthetic and not ignored:
                    out.append((mid, text))
            return out

        for mid, text in guarded(self.conn, select.format(d="data"),
                                 select.format(d="CASE WHEN json_valid(data) THEN data END"), params, consume):
            wanted[mid].texts.append(text)  # type: ignore[union-attr]
