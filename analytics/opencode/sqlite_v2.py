"""OpenCode 2.x: SQLite `session_v2` / `session_message`, one row per message with its content inline.

The delegation tool is `subagent` (input `agent`, `description`, `prompt`); its result is wrapped in
`<subagent sessionID="…" state="…">`, and the child id is in `state.metadata.sessionID`. Assistant rows carry
their own `tokens` (there are no step-finish parts) and no `parentID`: a turn is the assistant rows that
follow a user row in `seq` order.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from analytics.models import LoadReport
from analytics.opencode.records import (
    DELEGATION_TOOLS,
    RawMessage,
    RawSession,
    SessionStamp,
    as_int,
    as_str,
    call_from_state,
    error_text,
    loads_js,
    tool_from_state,
    usage_from,
)
from analytics.opencode.sqlite_store import BadText, guarded, id_filter, text
from analytics.opencode.sqlite_v1 import PARENT_ID, SESSION_ID, TEXT_IDS, SqliteV1Reader, fingerprint


def _content_text(content: object) -> str:
    if not isinstance(content, list):
        return ""
    return "".join(c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"
                   and isinstance(c.get("text"), str))


SESSION_TABLES = ("session_v2", "session")  # `session` in the 2.x betas before 2.0.12


class SqliteV2Reader(SqliteV1Reader):
    generation = "sqlite-v2"

    def __init__(self, path: Path, session_table: str = "session_v2") -> None:
        super().__init__(path)
        if session_table not in SESSION_TABLES:
            raise ValueError(f"not a 2.x session table: {session_table!r}")
        self.session_table = session_table

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        query = (
            f"SELECT {SESSION_ID}, {PARENT_ID}, CAST(s.time_created AS INTEGER),"
            f" {fingerprint('s.time_updated', 'm.n', 'm.seq', 'm.mx')} FROM {self.session_table} s"
            " LEFT JOIN (SELECT session_id, count(*) AS n, max(seq) AS seq, max(time_updated) AS mx"
            "            FROM session_message GROUP BY session_id) m ON m.session_id = s.id"
        )
        return self._stamps(query, report)

    def _read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        sessions = self._sessions(ids, report)
        where, params = id_filter(ids, "session_id")
        query = (
            f"SELECT {TEXT_IDS}, {text('type')}, CAST(time_created AS INTEGER), {text('data')} FROM session_message"
            f" WHERE type IN ('user', 'assistant') AND id IS NOT NULL{where} ORDER BY session_id, seq"
        )

        def consume_messages(rows) -> list[tuple[str, RawMessage]]:
            out = []
            for mid, sid, role, created, data in rows:
                if sid not in sessions:
                    continue
                if isinstance(data, BadText):
                    report.skip("message", mid, "data is not valid UTF-8")
                    continue
                try:
                    d = loads_js(data)
                except ValueError:
                    report.skip("message", mid, "data is not valid JSON")
                    continue
                if not isinstance(d, dict):
                    report.skip("message", mid, "data is not a JSON object")
                    continue
                out.append((sid, self._message(mid, role, created or 0, d)))
            return out

        for sid, message in guarded(self.db, query, query, params, consume_messages):
            sessions[sid].messages.append(message)
        return list(sessions.values())

    def _message(self, mid: str, role: str, created: int, d: dict) -> RawMessage:
        time = d.get("time") if isinstance(d.get("time"), dict) else {}
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        msg = RawMessage(
            id=mid,
            role=role,
            parent_id=None,
            agent=as_str(d.get("agent")),
            created_ms=as_int(time.get("created")) or created,
            completed_ms=as_int(time.get("completed")),
            model=as_str(model.get("id")),
            provider=as_str(model.get("providerID")),
            error=error_text(d.get("error")) if d.get("error") else None,
            usage=usage_from(d.get("tokens"), d.get("cost")),
            texts=[],
        )
        if role == "user":
            if isinstance(d.get("text"), str):
                msg.texts.append(d["text"])  # type: ignore[union-attr]
            return msg
        content = d.get("content")
        for item in content if isinstance(content, list) else ():
            if not isinstance(item, dict):
                continue
            if item.get("type") == "text" and isinstance(item.get("text"), str) and not item.get("synthetic"):
                msg.texts.append(item["text"])  # type: ignore[union-attr]
            elif item.get("type") == "tool" and isinstance(item.get("name"), str):
                name = item["name"]
                msg.tools.append(name)
                if name in DELEGATION_TOOLS:
                    msg.calls.append(self._call(mid, item, msg.created_ms))
                else:
                    state = item.get("state") if isinstance(item.get("state"), dict) else {}
                    t = item.get("time") if isinstance(item.get("time"), dict) else {}
                    start = as_int(t.get("ran")) or as_int(t.get("created"))
                    msg.tool_calls.append(tool_from_state(f"{mid}:{item.get('id')}", name, state,
                                                          _content_text(state.get("content")) or None, start,
                                                          as_int(t.get("completed"))))
        return msg

    @staticmethod
    def _call(mid: str, item: dict, fallback_ms: int):
        state = item.get("state") if isinstance(item.get("state"), dict) else {}
        time = item.get("time") if isinstance(item.get("time"), dict) else {}
        created = as_int(time.get("created")) or fallback_ms
        call = call_from_state(f"{mid}:{item.get('id')}", mid, created, state, _content_text(state.get("content")))
        call.start_ms = as_int(time.get("ran")) or created
        call.end_ms = as_int(time.get("completed")) if call.status != "running" else None
        if not state.get("content") and call.status != "completed":
            call.output = None
        return call

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        for m in messages:
            if m.texts is None:
                m.texts = []
