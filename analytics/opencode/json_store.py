"""OpenCode 0.6 to 1.1.x: one pretty-printed JSON file per session, message and part under `storage/`.

    storage/session/<projectID>/<sessionID>.json
    storage/message/<sessionID>/<messageID>.json
    storage/part/<messageID>/<partID>.json

OpenCode writes these files in place and not atomically, so a live store can hold half-written files: each
unreadable file is skipped and counted, and the rest of its session still loads.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from analytics.models import LoadReport, Usage
from analytics.opencode.readers import Reader
from analytics.opencode.records import (
    DELEGATION_TOOLS,
    RawMessage,
    RawSession,
    SessionStamp,
    as_int,
    as_str,
    call_from_state,
    error_text,
    id_time_ms,
    loads_js,
    tool_from_state,
    usage_from,
)


def _entries(directory: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as it:
            return [e for e in it if e.name.endswith(".json") and e.is_file()]
    except OSError:
        return []


def _load(path: Path | str, report: LoadReport, what: str) -> dict | None:
    """One JSON object from a file, or None (counted) when it is missing, half-written or not UTF-8."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        report.skip(what, str(path), exc.strerror or "unreadable")
        return None
    try:
        data = loads_js(raw.decode("utf-8"))
    except UnicodeDecodeError:
        report.skip(what, str(path), "not valid UTF-8")
        return None
    except ValueError:
        report.skip(what, str(path), "not valid JSON (half-written?)")
        return None
    if not isinstance(data, dict):
        report.skip(what, str(path), "not a JSON object")
        return None
    return data


class JsonReader(Reader):
    generation = "json"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._session_files: dict[str, Path] = {}
        self._heads: dict[tuple[str, int, int], tuple[str | None, int]] = {}  # file stamp -> parent, created

    def stamp(self) -> str:
        # Files are rewritten in place, which leaves directory times alone: no cheap whole-store stamp.
        return ""

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        out: dict[str, SessionStamp] = {}
        self._session_files = {}
        for project in _entries_dirs(self.path / "session"):
            for entry in _entries(Path(project.path)):
                sid = entry.name[:-5]
                try:
                    st = entry.stat()
                except OSError:  # deleted since the directory was listed
                    continue
                key = (entry.path, st.st_size, st.st_mtime_ns)
                if key not in self._heads:
                    data = _load(entry.path, report, "session")
                    if data is None:  # there, but half-written: the load keeps what it had of its tree
                        out[sid] = SessionStamp(None, "unreadable", readable=False)
                        continue
                    time = data.get("time") if isinstance(data.get("time"), dict) else {}
                    self._heads[key] = (as_str(data.get("parentID")), as_int(time.get("created")) or 0)
                self._session_files[sid] = Path(entry.path)
                parent, created = self._heads[key]
                out[sid] = SessionStamp(parent, self._fingerprint(sid, st), created)
        return out

    def _fingerprint(self, sid: str, st: os.stat_result) -> str:
        count, newest, size = 0, st.st_mtime_ns, st.st_size
        for m in _entries(self.path / "message" / sid):
            mst = _stat(m)
            count, newest, size = count + 1, max(newest, mst.st_mtime_ns), size + mst.st_size
            for p in _entries(self.path / "part" / m.name[:-5]):
                pst = _stat(p)
                count, newest, size = count + 1, max(newest, pst.st_mtime_ns), size + pst.st_size
        return f"{count}:{newest}:{size}"

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        if not self._session_files:
            self.index(LoadReport())
        wanted = self._session_files if ids is None else {i: self._session_files[i] for i in ids
                                                          if i in self._session_files}
        out = []
        for sid, path in wanted.items():
            data = _load(path, report, "session")
            if data is None:
                continue
            time = data.get("time") if isinstance(data.get("time"), dict) else {}
            created = as_int(time.get("created")) or 0
            session = RawSession(
                id=sid,
                parent_id=as_str(data.get("parentID")),
                title=as_str(data.get("title")) or "",
                directory=as_str(data.get("directory")) or "",
                project_id=as_str(data.get("projectID")),
                agent=None,
                version=as_str(data.get("version")),
                created_ms=created,
                updated_ms=as_int(time.get("updated")) or created,
                store=self.generation,
            )
            for entry in _entries(self.path / "message" / sid):
                msg = self._message(entry, report)
                if msg is not None:
                    session.messages.append(msg)
            session.messages.sort(key=lambda m: (m.created_ms, m.id))
            out.append(session)
        return out

    def _message(self, entry: os.DirEntry, report: LoadReport) -> RawMessage | None:
        d = _load(entry.path, report, "message")
        if d is None:
            return None
        mid = entry.name[:-5]
        time = d.get("time") if isinstance(d.get("time"), dict) else {}
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        msg = RawMessage(
            id=mid,
            role=as_str(d.get("role")) or "",
            parent_id=as_str(d.get("parentID")),
            agent=as_str(d.get("agent")) or as_str(d.get("mode")),
            created_ms=as_int(time.get("created")) or 0,
            completed_ms=as_int(time.get("completed")),
            model=as_str(d.get("modelID")) or as_str(model.get("modelID")),
            provider=as_str(d.get("providerID")) or as_str(model.get("providerID")),
            error=error_text(d.get("error")) if d.get("error") else None,
            usage=usage_from(d.get("tokens"), d.get("cost")),
            texts=[],
        )
        steps: Usage | None = None
        for entry in sorted(_entries(self.path / "part" / mid), key=lambda e: e.name):
            p = _load(entry.path, report, "part")
            if p is None:
                continue
            pid = entry.name[:-5]
            ptype = p.get("type")
            if ptype == "step-finish":
                steps = (steps or Usage()) + usage_from(p.get("tokens"), p.get("cost"))
            elif ptype == "text":
                if isinstance(p.get("text"), str) and not p.get("synthetic") and not p.get("ignored"):
                    msg.texts.append(p["text"])  # type: ignore[union-attr]
            elif ptype == "tool" and isinstance(p.get("tool"), str):
                msg.tools.append(p["tool"])
                state = p.get("state") if isinstance(p.get("state"), dict) else {}
                if p["tool"] in DELEGATION_TOOLS:
                    created = id_time_ms(pid, msg.created_ms) or msg.created_ms
                    msg.calls.append(call_from_state(pid, mid, created, state, as_str(state.get("output"))))
                else:
                    time = state.get("time") if isinstance(state.get("time"), dict) else {}
                    msg.tool_calls.append(tool_from_state(pid, p["tool"], state, as_str(state.get("output")),
                                                          as_int(time.get("start")), as_int(time.get("end"))))
        if steps is not None:
            msg.usage = steps
        return msg

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        for m in messages:
            if m.texts is None:
                m.texts = []


_GONE = os.stat_result((0,) * 10)


def _stat(entry: os.DirEntry) -> os.stat_result:
    """The entry's stat, or zeros when the file went away since the directory was listed."""
    try:
        return entry.stat()
    except OSError:
        return _GONE


def _entries_dirs(directory: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as it:
            return [e for e in it if e.is_dir()]
    except OSError:
        return []
