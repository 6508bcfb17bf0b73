"""OpenCode 1.2 to 1.x: SQLite `session` / `message` / `part` tables with JSON `data` columns.

The bulk rows never pass through Python one by one. When a batch is read, its messages and its step-finish and
delegation parts go from SQLite to DuckDB as Arrow (the ADBC driver, see `sqlite_store`) and are parsed there
(`sqlite_v1_sql`): Python gets the message records with their usage and the delegation calls in full, what the
delegation logic needs. When the batch is written, its tool calls go from SQLite through DuckDB's JSON functions
straight into the trace store (`tool_spans`), under the LLM calls Python placed.

A row that is not as OpenCode writes it (not JSON DuckDB reads, not UTF-8, a figure of another type or out of
range, an id used twice) is read again the careful way, in Python, with the rules of the other readers
(`_careful_*`, the Python reader this one was before); it is skipped or repaired and counted as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from contextlib import suppress
from itertools import count
from operator import itemgetter
from pathlib import Path
from sys import intern

import analytics.opencode.sqlite_v1_sql as sql
from analytics.models import COMPLETED, ERROR, LLM, OUT_OF_RANGE, RUNNING, AgentSpan, LoadReport, Usage
from analytics.opencode.readers import Reader, StreamedSteps, WrittenSteps, file_stamp
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
    Errors,
    SqliteFile,
    columns,
    connect_readonly,
    guarded,
    id_filter,
    is_damage,
    loads_array,
    snapshot,
    tables,
    text,
)
from analytics.opencode.sqlite_v1_sql import STEP_FILTER, TOOL_FILTER

log = logging.getLogger(__name__)

# Columns are read as the types OpenCode writes (SQLite would hand back whatever a cell holds): ids and texts
# as TEXT (handed over as bytes: `text`), times as INTEGER (a REAL too big for one comes back as the largest
# INTEGER, which the loader counts as out of range). A row without an id is no record.
SESSION_ID = text("s.id")
PARENT_ID = text("s.parent_id")
SESSION_COLUMNS = ", ".join([text("id"), text("parent_id"), text("title"), text("directory"), text("project_id"),
                             text("version"), "CAST(time_created AS INTEGER)", "CAST(time_updated AS INTEGER)"])
TEXT_IDS = f"{text('id')}, {text('session_id')}"

# The careful path's flat paths: each row comes back as one small JSON array of scalars.
MESSAGE_PATHS = (
    "'$.role', '$.parentID', '$.agent', '$.mode', '$.modelID', '$.providerID', '$.time.completed',"
    " '$.error.name', '$.error.data.message', '$.error.message', '$.tokens.input', '$.tokens.output',"
    " '$.tokens.reasoning', '$.tokens.cache.read', '$.tokens.cache.write', '$.cost', '$.model.modelID',"
    " '$.model.providerID'"
)
STEP_PATHS = ("'$.type', '$.tokens.input', '$.tokens.output', '$.tokens.reasoning', '$.tokens.cache.read',"
              " '$.tokens.cache.write', '$.cost'")
CAREFUL_DATA = "CASE WHEN json_valid(data) THEN data END"
ARRAYS = "'[' || group_concat(j) || ']'"  # a message's step-finish arrays, as one JSON array

_tool = tuple.__new__  # a RawTool from a tuple of its fields, in order
_span_id = itemgetter(0)
_batches = count()  # names the staging tables of each read, which may overlap with a write
SMALL_READ = 50  # sessions: a read of this many or fewer goes the careful way whole (`_read_carefully_whole`)


def fingerprint(*values: str) -> str:
    """A session's fingerprint, made by SQLite: these values as text ('' for NULL), joined by ':'."""
    return text(" || ':' || ".join(f"coalesce(CAST({v} AS TEXT), '')" for v in values))


def rowid_filter(rowids: Collection[int]) -> tuple[str, tuple]:
    """A `rowid IN (...)` clause bound as one JSON array parameter."""
    return " AND rowid IN (SELECT value FROM json_each(?))", (json.dumps(sorted(rowids)),)


def _read_tools(rows, by_msg: dict[str, RawMessage], skipped: list[tuple[str, str]]) -> list[int]:
    """The careful path's tool calls (`SqliteV1Reader._tool_calls`) added to their messages, from scratch; the parts
    that cannot be read go to `skipped` as (message id, part id). Returns the rowids of the task parts."""
    tasks: list[int] = []
    skipped.clear()
    for m in by_msg.values():
        m.tools = []
        m.tool_calls = []
    for rid, mid, pid, head, inp, raw_output, as_json in rows:
        if head is None:  # the guarded query: not JSON
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
            tasks.append(rid)  # read whole, and its damage counted, with the task calls
            continue
        try:
            if head.__class__ is not str or inp.__class__ is BadText:
                raise ValueError
            # SQLite's json_extract ends a string at an escaped NUL: such an output comes as JSON text, parsed here
            output = None if raw_output is None else loads_js(output_text(raw_output)) if as_json \
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
        self._db: SqliteFile | None = None
        self._snap = None
        self._session_cols: set[str] = set()
        self._unreadable: set[str] = set()  # sessions the index found unreadable (counted there)
        self._ids: list[str] = []  # every session id in the index
        # what a batch's read leaves for its write: each assistant message's time (a tool call without a start
        # takes it), and the parts the read took the careful way already (their tool calls are made in Python)
        self._pending: dict[str, int] = {}
        self._read_carefully: set[int] = set()

    def stamp(self) -> str:
        return file_stamp(self.path, self.path.with_name(self.path.name + "-wal"))

    def __enter__(self) -> SqliteV1Reader:
        self._db = connect_readonly(self.path)
        try:
            self._snap = snapshot(self._db)
            db = self._snap.__enter__()
            self._tables = tables(db)
            self._session_cols = columns(db, self.session_table)
        except BaseException:
            self._db.close()
            self._db = self._snap = None
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._snap is not None:
                self._snap.__exit__(*exc)
        finally:
            if self._db is not None:
                self._db.close()
            self._db = self._snap = None
            self._pending, self._read_carefully = {}, set()

    @property
    def db(self) -> SqliteFile:
        assert self._db is not None, "use the reader inside `with`"
        return self._db

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        """Per-session fingerprints. OpenCode 1.3+ logs every write of a session as an event and keeps its
        last sequence number in `event_sequence`: one small row per session. Sessions without one (older
        databases, sessions imported from JSON) fall back to counting their rows through the indexes."""
        messages = "(SELECT count(*) || '/' || max(time_updated) FROM message m WHERE m.session_id = s.id)"
        parts = "(SELECT count(*) || '/' || max(rowid) FROM part p WHERE p.session_id = s.id)"
        if "event_sequence" in self._tables:
            seq, messages, parts = ("e.seq", f"CASE WHEN e.seq IS NULL THEN {messages} END",
                                    f"CASE WHEN e.seq IS NULL THEN {parts} END")
            tables = "session s LEFT JOIN event_sequence e ON e.aggregate_id = s.id"
        else:
            seq, tables = "NULL", "session s"
        query = (f"SELECT {SESSION_ID}, {PARENT_ID}, CAST(s.time_created AS INTEGER),"
                 f" {fingerprint('s.time_updated', seq, messages, parts)} FROM {tables}")
        return self._stamps(query, report)

    def _stamps(self, query: str, report: LoadReport) -> dict[str, SessionStamp]:
        """The index rows as stamps; a row whose id or parent id is not UTF-8 is there but unreadable."""
        out: dict[str, SessionStamp] = {}
        self._unreadable = set()
        for sid, parent, created, fingerprint in self.db.rows(query):
            if sid is None:
                report.skip("session", "(no id)", "a session row has no id")
                continue
            if sid.__class__ is BadText or parent.__class__ is BadText:
                report.skip("session", sid, "id or parent id is not valid UTF-8")
                self._unreadable.add(sid)
                out[sid] = SessionStamp(None, "unreadable", readable=False)
                continue
            out[sid] = SessionStamp(parent, fingerprint, created or 0)
        self._ids = list(out)
        return out

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        """The sessions in one pass; if the pass meets a damaged page, again session by session, and those
        whose rows are on the page are skipped and counted (the normal path pays nothing for this)."""
        try:
            return self._read(ids, report)
        except Errors as exc:
            if not is_damage(exc):
                raise
            log.warning("%s: %s; reading session by session", self.path, exc)
        out = []
        for sid in sorted(self._ids if ids is None else ids):
            own = LoadReport()
            try:
                out.extend(self._read([sid], own))
            except Errors as exc:
                if not is_damage(exc):
                    raise
                report.skip("session", sid, "its rows are on a damaged page of the database")
                continue
            report.merge(own)
        return out

    def _read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        if ids is not None and len(ids) <= SMALL_READ:
            return self._read_carefully_whole(ids, report)
        sessions = self._sessions(ids, report)
        where, params = id_filter(ids, "session_id")
        n = next(_batches)
        messages, parts, kinds = f"messages_{n}", f"parts_{n}", f"part_kinds_{n}"  # this read's staging tables
        cur = self.db.cursor()
        try:
            self._stage(sql.STAGE_MESSAGES, messages, sql.message_rows(where), params)
            self._stage(sql.STAGE_PARTS, parts, sql.part_rows(where), params)
            cur.execute(sql.named(sql.CLASSIFY_PARTS, kinds=kinds, parts=parts, messages=messages))
            by_msg: dict[str, RawMessage] = {}
            for msg_session, msg in self._messages(messages, kinds, report):
                s = sessions.get(msg_session)
                if s is not None:
                    s.messages.append(msg)
                    by_msg[msg.id] = msg
            tasks = self._parts(kinds, by_msg, report)
            self._pending.update((mid, m.created_ms) for mid, m in by_msg.items() if m.role == "assistant")
        finally:
            for table in (messages, parts, kinds):
                cur.execute(f"DROP TABLE IF EXISTS {table}")  # names made here
        self._task_calls(tasks, by_msg, report)
        for s in sessions.values():
            s.messages.sort(key=lambda m: (m.created_ms, m.id))
        return list(sessions.values())

    def _read_carefully_whole(self, ids: Collection[str], report: LoadReport) -> list[RawSession]:
        """A few sessions (a reload of what OpenCode just wrote) read the careful way only, tool calls included,
        which `tool_spans` then leaves to Python: for so few rows, DuckDB planning the staging SQL takes longer
        than Python reading them."""
        sessions = self._sessions(ids, report)
        where, params = id_filter(ids, "session_id")
        by_msg: dict[str, RawMessage] = {}
        rowids = [rid for rid, in self.db.rows(f"SELECT rowid FROM message WHERE id IS NOT NULL{where}", params)]
        for msg_session, msg in self._careful_messages(rowids, report):
            s = sessions.get(msg_session)
            if s is not None:
                s.messages.append(msg)
                by_msg[msg.id] = msg
        rowids = [rid for rid, in self.db.rows(
            f"SELECT rowid FROM part WHERE ({STEP_FILTER} OR {TOOL_FILTER}) AND id IS NOT NULL{where}", params)]
        self._careful_steps(rowids, by_msg, report)
        self._task_calls(self._careful_tool_calls(rowids, by_msg, report), by_msg, report)
        for s in sessions.values():
            s.messages.sort(key=lambda m: (m.created_ms, m.id))
        return list(sessions.values())

    def _stage(self, create: str, table: str, query: str, params: tuple) -> None:
        """A staging table made by DuckDB from the rows of an SQLite query (`stream` in `create`)."""
        cur = self.db.cursor()
        with self.db.stream(query, params) as rows:
            cur.register("stream", rows)
            try:
                cur.execute(sql.named(create, table=table))
            finally:
                cur.unregister("stream")

    def _sessions(self, ids: Collection[str] | None, report: LoadReport) -> dict[str, RawSession]:
        """The session rows (of either generation's table); a row with text that is not UTF-8 is skipped."""
        agent = text("agent") if "agent" in self._session_cols else "NULL"
        where, params = id_filter(ids, "id")
        query = f"SELECT {SESSION_COLUMNS}, {agent} FROM {self.session_table} WHERE 1 = 1{where}"
        out = {}
        for row in self.db.rows(query, params):
            sid, parent, title, directory, project, version, created, updated, ag = row
            if sid in self._unreadable:
                continue
            if any(isinstance(v, BadText) for v in row):
                report.skip("session", sid, "text is not valid UTF-8")
                continue
            out[sid] = RawSession(sid, parent, title or "", directory or "", project, ag, version,
                                  created or 0, updated or created or 0, self.generation)
        return out

    def _messages(self, messages: str, kinds: str, report: LoadReport) -> list[tuple[str, RawMessage]]:
        """The batch's message records (`messages` is its staging table, `kinds` its staged parts), with their
        step-finish sums and delegation tool names: SQL's, then the odd rows read the careful way."""
        cur = self.db.cursor()
        steps = sql.named(sql.PER_MESSAGE, kinds=kinds)
        out = []
        for row in cur.execute(sql.named(sql.MESSAGES, messages=messages, steps=steps)).fetchall():
            m = RawMessage(row[1], intern(row[2]), row[3], intern(row[4]) if row[4] else None, *row[5:7],
                           intern(row[7]) if row[7] else None, intern(row[8]) if row[8] else None, row[9],
                           Usage(*row[10:16]))
            if row[16]:
                m.tools = [intern(t) for t in row[16]]
            out.append((row[0], m))
        odd = cur.execute(sql.named(sql.ODD_MESSAGES, messages=messages)).fetchall()
        if odd:
            log.info("%s: %d message rows read the careful way (%s)", self.path, len(odd),
                     ", ".join(sorted({reason for _rid, reason in odd})))
            careful = self._careful_messages([rid for rid, _reason in odd], report)
            mine = {m.id: m for _s, m in careful}
            for mid, tools, n, tin, tout, treason, tread, twrite, cost in cur.execute(
                    f"SELECT * FROM ({steps}) WHERE message_id IN (SELECT unnest(?::VARCHAR[]))", [list(mine)]
            ).fetchall():
                m = mine[mid]
                m.tools = [intern(t) for t in tools] if tools else []
                if n:
                    m.usage = Usage(tin, tout, treason, tread, twrite, cost)
            out.extend(careful)
        return out

    def _careful_messages(self, rowids: list[int], report: LoadReport) -> list[tuple[str, RawMessage]]:
        """Message rows that are not as OpenCode writes them, read with Python's checks."""
        where, params = rowid_filter(rowids)
        extracted = text(f"json_extract({{d}}, {MESSAGE_PATHS})")
        select = (f"SELECT {TEXT_IDS}, CAST(time_created AS INTEGER), {extracted}"
                  f" FROM message WHERE id IS NOT NULL{where} ORDER BY rowid")

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

        return guarded(self.db, select.format(d="data"), select.format(d=CAREFUL_DATA), params, consume)

    def _parts(self, kinds: str, by_msg: dict[str, RawMessage], report: LoadReport) -> list[int]:
        """The odd parts of the batch's staged, classified parts (`kinds`), and every part of their messages,
        read the careful way. Returns the rowids of the delegation calls, which are read whole next. (The other
        tool calls are read when the batch is written: `tool_spans`.)"""
        cur = self.db.cursor()
        tasks = [rid for rid, in cur.execute(sql.named(sql.TASK_PARTS, kinds=kinds)).fetchall()]
        careful = cur.execute(sql.named(sql.CAREFUL_PARTS, kinds=kinds)).fetchall()
        if careful:
            log.info("%s: %d parts read the careful way (%s)", self.path, len(careful),
                     ", ".join(sorted({reason for _rid, reason in careful if reason})) or "their message's")
            rowids = [rid for rid, _reason in careful]
            mids = {mid for mid, in cur.execute(
                f"SELECT DISTINCT message_id FROM {kinds} WHERE careful AND message_id IS NOT NULL").fetchall()}
            mine = {mid: m for mid, m in by_msg.items() if mid in mids or mid.__class__ is BadText}
            self._careful_steps(rowids, mine, report)
            tasks += self._careful_tool_calls(rowids, mine, report)
            self._read_carefully.update(rowids)
        return tasks

    def _careful_steps(self, rowids: list[int], by_msg: dict[str, RawMessage], report: LoadReport) -> None:
        """Step usage of these parts, read with Python's checks (the odd parts and their messages' others).

        The MATERIALIZED CTE parses each step-finish part once into a small array; the aggregation reads those
        arrays, so SQLite returns one row per message. A damaged part that also looks like a tool part is
        counted by the tool-call scan, not twice.
        """
        where, params = rowid_filter(rowids)
        select = (
            f"WITH p AS MATERIALIZED (SELECT CAST(message_id AS TEXT) AS message_id,"
            f"   json_extract({{d}}, {STEP_PATHS}) AS j, {TOOL_FILTER} AS looks_tool FROM part"
            f"   WHERE {STEP_FILTER} AND id IS NOT NULL{where})"
            f" SELECT {text('message_id')}, {text(ARRAYS)}, count(*) FILTER (WHERE j IS NULL AND NOT looks_tool)"
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
                    msg.usage = Usage(tin, tout, treason, tread, twrite, cost)
            return bad

        bad = guarded(self.db, select.format(d="data"), select.format(d=CAREFUL_DATA), params, consume)
        for _ in range(bad):
            report.skip("part", "step-finish", "data is not valid JSON or UTF-8")

    def _careful_tool_calls(self, rowids: list[int], by_msg: dict[str, RawMessage],
                            report: LoadReport) -> list[int]:
        """Tool calls of these parts, read with Python's checks: status, title, times, input (as compact JSON
        text, whatever its type, like the other readers give it) and output (or the error text). Returns the
        rowids of the task parts among them.

        `->` gives the input as JSON even when it is a string or a number (json_extract gives a string's bare
        text, a number as a number); an output that is not a string is no output, as in the other readers.
        SQLite unescapes the output itself, as bytes: see `output_text`; except in a part holding an escaped NUL
        (\\u0000), where SQLite's json_extract would end the text, and which comes as JSON text instead (`->`,
        flagged in the last column). Each message's calls are put in part
        order; a message whose parts repeat an id (damage: a text id and a blob id alike once read as text) is
        read again in SQLite's order, which decides the one kept. What is skipped is counted in part order."""
        where, params = rowid_filter(rowids)
        head = ("json_extract({d}, '$.type', '$.tool', '$.state.status', '$.state.title', '$.state.time.start',"
                " '$.state.time.end', '$.state.error')")
        output = ("CASE json_type({d}, '$.state.output') WHEN 'text' THEN CASE WHEN instr({d}, '\\u0000')"
                  " THEN CAST({d} -> '$.state.output' AS BLOB) ELSE CAST(json_extract({d}, '$.state.output') AS BLOB)"
                  " END END, instr({d}, '\\u0000') > 0")
        select = ("SELECT rowid, " + ", ".join([text("message_id"), text("id"), text(head),
                                                text("{d} -> '$.state.input'"), output])
                  + " FROM part WHERE " + TOOL_FILTER + " AND id IS NOT NULL{where}{order}")
        raw = (5,)  # the output, as bytes: see `output_text`
        skipped: list[tuple[str, str]] = []
        tasks = guarded(self.db, select.format(d="data", where=where, order=" ORDER BY rowid"),
                        select.format(d=CAREFUL_DATA, where=where, order=" ORDER BY rowid"), params,
                        lambda rows: _read_tools(rows, by_msg, skipped), raw)
        repeated: dict[str, RawMessage] = {}
        for mid, m in by_msg.items():
            calls = m.tool_calls
            if len(calls) > 1:
                calls.sort(key=_span_id)
                if any(a[0] == b[0] for a, b in zip(calls, calls[1:], strict=False)):  # sorted: repeats are neighbours
                    repeated[mid] = m
        if repeated:  # their damage is counted already
            again, again_params = id_filter(repeated, "message_id")
            order = " ORDER BY message_id, id"
            guarded(self.db, select.format(d="data", where=where + again, order=order),
                    select.format(d=CAREFUL_DATA, where=where + again, order=order), params + again_params,
                    lambda rows: _read_tools(rows, repeated, []), raw)
        for _mid, pid in sorted(skipped):
            report.skip("part", pid, "tool part is not valid JSON or UTF-8")
        return tasks

    def _task_calls(self, tasks: list[int], by_msg: dict[str, RawMessage], report: LoadReport) -> None:
        """The task calls in full (the part scans found their rowids)."""
        if not tasks:
            return
        where, params = rowid_filter(tasks)
        query = (f"SELECT {text('id')}, {text('message_id')}, CAST(time_created AS INTEGER), {text('data')} FROM part"
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

        for msg, call in guarded(self.db, query, query, params, calls):
            msg.calls.append(call)

    def tool_spans(self, spans: list[AgentSpan]) -> StreamedSteps | None:
        """The tool calls of these LLM calls (of a batch `read` gave), which SQL reads and writes under them."""
        placed = []
        for sp in spans:
            if sp[4] == LLM and (created := self._pending.pop(sp[0], None)) is not None:
                placed.append((sp[0], sp[1], sp[2], created))
        return _ToolCalls(self, placed, sorted(self._read_carefully)) if placed else None

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        """Texts in one query; on a damaged page, message by message, and an unreadable one has none."""
        try:
            self._fill_texts(messages, report)
            return
        except Errors as exc:
            if not is_damage(exc):
                raise
        for m in messages:
            m.texts = None
            try:
                self._fill_texts([m], report)
            except Errors as exc:
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
            f"SELECT {text('message_id')}, {text('id')},"
            " " + text("json_extract({d}, '$.type', '$.text', '$.synthetic', '$.ignored')")
            + f" FROM part WHERE data LIKE '%\"text\"%'{where} ORDER BY message_id, id"
        )

        def consume(rows) -> list[tuple[str, str]]:
            out = []
            for mid, pid, extracted in rows:
                v = loads_array(extracted)
                if v is None:
                    report.skip("part", pid, "text part is not valid JSON or UTF-8")
                    continue
                ptype, text_, synthetic, ignored = v
                if ptype == "text" and isinstance(text_, str) and not synthetic and not ignored:
                    out.append((mid, text_))
            return out

        for mid, text_ in guarded(self.db, select.format(d="data"), select.format(d=CAREFUL_DATA), params, consume):
            wanted[mid].texts.append(text_)  # type: ignore[union-attr]


class _ToolCalls(StreamedSteps):
    """The tool calls of a batch's LLM calls, streamed from SQLite into the store (see `sqlite_v1_sql.TOOL_SPANS`).

    An odd part is written as a marker; a part whose id is repeated, or is the id of a step made in Python, is
    written as a step and taken out again: both are read the careful way, as the read's careful path reads them
    (the calls of one message in SQLite's order), and handed to Python."""

    def __init__(self, reader: SqliteV1Reader, placed: list[tuple[str, str, str, int]], skip: list[int]) -> None:
        self.reader = reader
        self.messages, self.traces, self.roots, self.times = (list(c) for c in zip(*placed, strict=True))
        self.skip = skip  # parts whose tool calls the read made already
        self.place = {mid: (trace, root, time) for mid, trace, root, time in placed}

    def insert(self, cur, table: str, taken: set[str]) -> WrittenSteps:
        db = self.reader.db
        names = ", ".join(AgentSpan._fields)
        cur.execute(sql.TEMP_MACROS)
        params = (json.dumps(self.messages), json.dumps(self.skip))
        with db.stream(sql.tool_rows(), params) as rows:
            cur.register("tool_rows", rows)
            try:
                cur.execute(f"INSERT INTO {table} ({names}) {sql.named(sql.TOOL_SPANS, rows='tool_rows')}",
                            [self.traces, self.roots, self.times])
            finally:
                with suppress(*Errors):  # an aborted transaction refuses this too; the insert's error is the news
                    cur.unregister("tool_rows")
        # what was written, read back by the trees' roots (nothing else of them is stored yet): cheaper than the
        # insert's RETURNING, which holds every row it writes
        written = cur.execute(f"SELECT span_id, trace_id, kind, name, parent_span_id FROM {table}"
                              " WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))",
                              [sorted(set(self.roots))]).fetchall()
        careful = [int(span_id) for span_id, _t, kind, _n, _m in written if kind is None]
        if careful:
            log.info("%s: %d tool calls read the careful way (%s)", self.reader.path, len(careful),
                     ", ".join(sorted({name for _s, _t, kind, name, _m in written if kind is None})))
            cur.execute(f"DELETE FROM {table} WHERE kind IS NULL")  # the markers
        steps = {}  # span id -> (trace id, tool name, message id), and None for an id seen twice
        for span_id, trace_id, kind, name, mid in written:
            if kind is not None:
                steps[span_id] = None if span_id in steps else (trace_id, name, mid)
        report = LoadReport()
        calls: dict[str, RawMessage] = {}
        rowids, parsed = set(careful), False
        while True:  # once, unless a part read the careful way carries the id of a step SQL wrote
            again = {i for i, step in steps.items() if step is None or i in taken}
            again |= {c[0] for m in calls.values() for c in m.tool_calls if c[0] in steps}
            if again:  # taken out, and read the careful way with the others that carry these ids
                cur.execute(f"DELETE FROM {table} WHERE kind = 'tool' AND span_id IN (SELECT unnest(?::VARCHAR[]))"
                            " AND root_session_id IN (SELECT unnest(?::VARCHAR[]))", [sorted(again), self.roots])
                rowids.update(self._rowids(again))
                for i in again:
                    steps.pop(i, None)
            elif parsed or not rowids:
                break
            report = LoadReport()  # each reading counts from scratch
            calls, parsed = self._careful(sorted(rowids), report), True
        tools: dict[str, set[str]] = {}
        for trace_id, name, _mid in steps.values():
            tools.setdefault(trace_id, set()).add(name)
        out = []
        for mid, m in calls.items():
            trace_id, root, time = self.place[mid]
            tools.setdefault(trace_id, set()).update(m.tools)
            out.extend((c, trace_id, root, mid, time) for c in m.tool_calls)
        return WrittenSteps(list(steps), tools, out, report)

    def _rowids(self, span_ids: set[str]) -> list[int]:
        """The rowids of the tool parts of these LLM calls that carry these ids (as text, whatever they are)."""
        return [rid for rid, in self.reader.db.rows(
            "SELECT rowid FROM part WHERE message_id IN (SELECT value FROM json_each(?))"
            " AND CAST(id AS TEXT) IN (SELECT value FROM json_each(?))",
            (json.dumps(self.messages), json.dumps(sorted(span_ids))))]

    def _careful(self, rowids: list[int], report: LoadReport) -> dict[str, RawMessage]:
        """These parts read the careful way, each under a stand-in for its LLM call."""
        stand_ins = {mid: RawMessage(mid, "assistant", None, None, time, None, None, None, None)
                     for mid, (_trace, _root, time) in self.place.items()}
        self.reader._careful_tool_calls(rowids, stand_ins, report)
        return {mid: m for mid, m in stand_ins.items() if m.tools}
