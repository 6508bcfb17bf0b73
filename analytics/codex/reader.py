"""Codex CLI histories as the records every reader yields: a root thread is a root session, a spawned agent's
thread a child session, each `spawn_agent` call a delegation owning the child's own turns.

Found with no configuration in `$CODEX_HOME/sessions` (else `~/.codex/sessions`). Only the rollout files are read,
each opened read-only; Codex's `state_5.sqlite` is not opened, since the rollouts name each thread's parent
(`session_meta`) and the thread a spawn started. Loads are incremental: the reader keeps, per file, how far it read
and its parse state (`rollout.Rollout`), so a reload parses only the lines added since, for the newest files (up to
`PARSED_BYTES` of them; an older file that changes is parsed again whole). A last line still being written waits
for the next load.

How a thread maps onto the records (tests/test_codex*.py check each case against real histories):
- each turn is a `user` RawMessage (its prompt: the user's, or for a child the task it was given), each model
  response an `assistant` RawMessage (usage, model, texts) whose `tool_calls` are its tool calls with input and
  output, and whose `calls` are its `spawn_agent` calls;
- a spawn is a background call (`RawCall.background`): it returns at once and its child's own turns are the run, so
  the call lasts until the child's last own turn ended (None while one runs); its result is the child's last
  answer, or the `wait_agent` result when the child's file is missing;
- usage: `input` is Codex's input_tokens less the cached ones (`cache_read`) and the cache writes, `output` its
  output_tokens less the reasoning ones (`reasoning`), as OpenCode counts them; Codex stores no cost, so each
  call is priced from the price table (analytics/pricing.py), or left unknown for a model the table lacks;
- a turn that ended in a failed model call gets an assistant message with the error and no usage; a turn that never
  ended (the run was killed, or is still going) leaves its last model call, or the one in flight, running.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import zlib
from collections.abc import Collection
from pathlib import Path

from analytics import format as fmt
from analytics.codex.rollout import SPAWN_TOOLS, Call, Meta, Rollout, Tool, Turn, exit_failed, read_meta
from analytics.errors import SourceError
from analytics.models import CODEX, MAX_TOKENS, LoadReport, Usage
from analytics.opencode.readers import Reader
from analytics.opencode.records import RawCall, RawMessage, RawSession, RawTool, SessionStamp, as_str
from analytics.opencode.source import Source
from analytics.pricing import call_cost

log = logging.getLogger(__name__)

GENERATION = CODEX
DEFAULT_PROVIDER = "openai"  # Codex's own default `model_provider`
ROOT_AGENT = "codex"  # a root thread's agent: Codex has no name for it
DEFAULT_ROLE = "default"  # a spawned agent's role when none was asked for (Codex's own name for it)
PARSED_BYTES = 64 << 20  # the newest rollouts whose parse state is kept between loads, by file size
READ_CHUNK = 1 << 20
SEEN_VERSIONS = ((0, 120, 0), (0, 171, 0))  # the versions these rules were checked against, oldest and newest
_CHECK = 64  # bytes before the read offset compared on each reload: a file rewritten in place is read again
_HOT_NS = 2_000_000_000  # a folder changed this recently is listed again on each load
_HEAD = 128  # first bytes compared when a file changed (its session_meta's time and thread id)
DESCRIBED = 120  # characters of a v1 child's prompt in its description
_ROLLOUT = re.compile(r"^rollout-.*-([0-9a-fA-F-]{36})\.jsonl$")


def default_sessions_dir() -> Path:
    """Codex's sessions folder: $CODEX_HOME/sessions, else ~/.codex/sessions."""
    home = os.environ.get("CODEX_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".codex") / "sessions"


class _File:
    """One rollout file: its thread (from the first line), where reading stopped, and its parse state if kept."""

    __slots__ = ("path", "meta", "meta_end", "ino", "head", "size", "mtime_ns", "offset", "check", "rollout",
                 "partial", "parsed_at")

    def __init__(self, path: str, meta: Meta, meta_end: int, ino: int, head: bytes) -> None:
        self.path = path
        self.head = head  # the first bytes: other ones mean the file was rewritten
        self.meta = meta
        self.meta_end = meta_end  # the byte after the first line
        self.ino = ino
        self.size = 0
        self.mtime_ns = 0
        self.offset = meta_end
        self.check = b""
        self.rollout: Rollout | None = None
        self.partial = False  # the file ends in a line still being written
        self.parsed_at: tuple[int, int] | None = None  # the file's size and time when it was last read

    def forget(self) -> None:
        """Drop the parse state; the next read parses the file from its second line again."""
        self.rollout = None
        self.offset = self.meta_end
        self.check = b""
        self.parsed_at = None


_Listed = tuple[int, int, int]  # a file's size, mtime_ns and inode


class CodexReader(Reader):
    """Every rollout under one sessions folder (`YYYY/MM/DD/rollout-*.jsonl`)."""

    generation = GENERATION

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._files: dict[str, _File] = {}  # path -> file
        self._by_id: dict[str, _File] = {}  # thread id -> file
        self._children: dict[str, list[_File]] = {}  # thread id -> its children's files, oldest first
        self._listing: dict[str, _Listed] | None = None
        self._folders: dict[str, tuple[int, list[str], list[str]]] = {}  # folder -> its time, files and folders
        self._stamps: dict[str, SessionStamp] = {}  # thread id -> its stamp, as the last index made it
        self._unopened: dict[str, tuple[_Listed, str]] = {}  # path -> (its stat, why) of files that could not be read
        self._skipped_files: dict[str, tuple[str, str]] = {}  # path -> (what, why), reported by each index
        self.bytes_read = 0  # what the reader has read from rollout files (tests check that a reload reads little)

    # -- the folder ----------------------------------------------------------------------------------------

    def _list(self) -> dict[str, _Listed]:
        """Every rollout file with its size, time and inode. A folder is listed again only when its time says an
        entry came or went (or it changed in the last seconds, as a coarse clock could hide a second change); the
        files of the others are stat'ed from what they held."""
        out: dict[str, _Listed] = {}
        hot = time.time_ns() - _HOT_NS
        stack = [str(self.path)]
        while stack:
            d = stack.pop()
            try:
                mtime = os.stat(d).st_mtime_ns
            except OSError:
                self._folders.pop(d, None)
                continue
            known = self._folders.get(d)
            if known is None or known[0] != mtime or mtime > hot:
                known = self._folders[d] = (mtime, *self._scan(d))
            stack.extend(known[2])
            for path in known[1]:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                out[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return out

    def _scan(self, d: str) -> tuple[list[str], list[str]]:
        """The rollout files and the folders in a folder."""
        files: list[str] = []
        folders: list[str] = []
        try:
            with os.scandir(d) as it:
                for e in it:
                    name = e.name
                    try:
                        if name.endswith(".jsonl") and name.startswith("rollout-"):
                            files.append(e.path)
                        elif e.is_dir(follow_symlinks=False):
                            folders.append(e.path)
                        elif name.endswith(".json") and name.startswith("rollout-"):
                            self._skipped_files[e.path] = (
                                "file", "a Codex 0.1 session (one JSON document, not JSON lines) is not read")
                    except OSError:
                        continue
        except OSError:
            pass
        return files, folders

    def stamp(self) -> str:
        """Every rollout's size, time and inode, summed: the same stamp, nothing was written."""
        self._listing = listing = self._list()
        size = mtime = ino = 0
        for a, b, c in listing.values():
            size += a
            mtime += b
            ino += c
        return f"{len(listing)}:{size}:{mtime:x}:{ino:x}"

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        """Every thread with its parent and fingerprint. Only files whose size, time or inode changed since the
        last index are looked at again (a new file: its first line)."""
        listing = self._listing if self._listing is not None else self._list()
        self._listing = None  # the next load lists again
        dirty: set[str] = set()  # threads whose stamp is to be made again
        for path in self._files.keys() - listing.keys():  # deleted
            f = self._files[path]
            dirty.update((f.meta.thread_id, f.meta.parent_id or ""))
            self._drop(f)
        new = []
        for path, st in listing.items():
            f = self._files.get(path)
            if f is not None:
                if (f.size, f.mtime_ns, f.ino) == st:
                    continue
                if self._rewritten(f, st):
                    dirty.update((f.meta.thread_id, f.meta.parent_id or ""))
                    self._drop(f)  # read again whole, from its first line (its thread may be another now)
                    new.append(path)
                    continue
                f.size, f.mtime_ns = st[0], st[1]
                dirty.add(f.meta.thread_id)
            else:
                new.append(path)
        for path in sorted(new):
            st = listing[path]
            failed = self._unopened.get(path)
            if failed is not None and failed[0] == st:
                report.skip("file", path, failed[1])  # as it was: not read again
                continue
            f = self._open(path, st, report)
            if f is None:
                continue
            f.size, f.mtime_ns = st[0], st[1]
            dirty.update((f.meta.thread_id, f.meta.parent_id or ""))
        for path in self._unopened.keys() - listing.keys():
            del self._unopened[path]
        for tid in dirty:
            f = self._by_id.get(tid)
            if f is None:
                self._stamps.pop(tid, None)
                continue
            m = f.meta
            # a thread is read again when its file changes, or when one of its children's files comes or goes
            # (its spawn calls are resolved against them)
            kids = self._children.get(tid)
            family = f":{len(kids)}:{zlib.crc32(' '.join(k.meta.thread_id for k in kids).encode()):08x}" if kids else ""
            self._stamps[tid] = SessionStamp(m.parent_id, f"{f.size}:{f.mtime_ns}:{f.ino}{family}", m.created_ms)
        for path, (what, why) in sorted(self._skipped_files.items()):
            report.skip(what, path, why)
        return dict(self._stamps)

    def _rewritten(self, f: _File, st: _Listed) -> bool:
        """Whether a changed file was rewritten rather than appended to: another inode, fewer bytes than were
        read, or other first bytes."""
        if st[2] != f.ino or st[0] < f.offset:
            return True
        try:
            with open(f.path, "rb") as fh:
                head = fh.read(len(f.head))
        except OSError:
            return True
        self.bytes_read += len(head)
        return head != f.head

    def _open(self, path: str, st: _Listed, report: LoadReport) -> _File | None:
        """A file seen for the first time: its first line says which thread it is. A file that cannot be read
        is counted, and (unless it changes) not read again."""
        try:
            with open(path, "rb") as fh:
                first = fh.readline(64 << 20)
        except OSError as exc:
            report.skip("file", path, exc.strerror or "unreadable")
            return None
        self.bytes_read += len(first)
        if not first.endswith(b"\n"):  # still being written: next time
            report.skip("file", path, "the first line is still being written; read on the next load")
            return None
        try:
            obj = json.loads(first)
        except (ValueError, RecursionError):
            obj = None
        meta, why = read_meta(obj)
        if meta is None:
            why = "the first line is not JSON" if obj is None else why or "no session_meta"
        elif meta.thread_id in self._by_id:
            meta, why = None, f"thread {meta.thread_id} is also in {self._by_id[meta.thread_id].path}"
        if meta is None:
            report.skip("file", path, why)
            self._unopened[path] = (st, why)
            return None
        f = _File(path, meta, len(first), st[2], first[:_HEAD])
        self._files[path] = f
        self._by_id[meta.thread_id] = f
        if meta.parent_id:
            kids = self._children.setdefault(meta.parent_id, [])
            kids.append(f)
            kids.sort(key=lambda k: (k.meta.created_ms, k.meta.thread_id))
        return f

    def _drop(self, f: _File) -> None:
        self._files.pop(f.path, None)
        if self._by_id.get(f.meta.thread_id) is f:
            del self._by_id[f.meta.thread_id]
        kids = self._children.get(f.meta.parent_id or "")
        if kids and f in kids:
            kids.remove(f)

    # -- parsing -------------------------------------------------------------------------------------------

    def _parsed(self, f: _File) -> Rollout:
        """The file's parse state, brought up to its end (the lines added since the last read only)."""
        r = f.rollout
        if r is not None and f.parsed_at == (f.size, f.mtime_ns):
            return r  # not written since (as listed by the last index)
        try:
            with open(f.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                f.parsed_at = (st.st_size, st.st_mtime_ns)
                if r is not None and (st.st_ino != f.ino or st.st_size < f.offset or not self._same(fh, f)):
                    f.forget()  # rewritten, not appended: read again whole
                    r = None
                if r is None:
                    r = f.rollout = Rollout(f.meta)
                    f.offset = f.meta_end
                    fh.seek(f.offset)
                self._consume(fh, f, r)
        except OSError as exc:
            if r is None:
                r = f.rollout = Rollout(f.meta)
            r.skips.append(("file", f.path, exc.strerror or "unreadable"))
        return r

    def _same(self, fh, f: _File) -> bool:
        """Whether the bytes just before where reading stopped are still those read (and leaves fh there)."""
        n = len(f.check)
        fh.seek(f.offset - n)
        got = fh.read(n)
        self.bytes_read += n
        return got == f.check

    def _consume(self, fh, f: _File, r: Rollout) -> None:
        """Feed the complete lines from the file's position on; a last line without its newline waits."""
        pending: list[bytes] = []  # the start of a line longer than a chunk
        while True:
            chunk = fh.read(READ_CHUNK)
            if not chunk:
                break
            self.bytes_read += len(chunk)
            end = chunk.rfind(b"\n")
            if end < 0:
                pending.append(chunk)
                continue
            data = b"".join(pending) + chunk if pending else chunk
            end += len(data) - len(chunk)
            pending = [data[end + 1:]] if end + 1 < len(data) else []
            for line in data[:end].split(b"\n"):
                r.feed_line(line)
            f.offset += end + 1
            f.check = (f.check + data[max(0, end + 1 - _CHECK):end + 1])[-_CHECK:]
        f.partial = any(pending)

    # -- records -------------------------------------------------------------------------------------------

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        wanted = [f for f in self._by_id.values()] if ids is None else [
            self._by_id[i] for i in ids if i in self._by_id]
        wanted.sort(key=lambda f: (f.meta.created_ms, f.meta.thread_id))
        for f in wanted:
            self._parsed(f)
        out = []
        for f in wanted:
            try:
                out.append(self._session(f, report))
            except RecursionError:
                report.skip("file", f.path, "nested too deeply")
        self._evict({f.path for f in wanted})
        return out

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        """Nothing to fetch: a rollout's texts come with its records."""

    def _evict(self, just_read: set[str]) -> None:
        """Keep the parse state of the newest files only (the ones being appended to), up to PARSED_BYTES."""
        kept = sorted((f for f in self._files.values() if f.rollout is not None),
                      key=lambda f: (f.mtime_ns, f.path), reverse=True)
        budget = PARSED_BYTES
        for f in kept:
            budget -= f.size
            if budget < 0:
                f.forget()

    def _session(self, f: _File, report: LoadReport) -> RawSession:
        r = f.rollout or self._parsed(f)
        m = f.meta
        for what, where, why in r.skips:
            report.skip(what, where, why)
        if f.partial:
            report.skip("line", f.path, "the last line is still being written; read on the next load")
        version = _version(m.version)
        if version is None or not SEEN_VERSIONS[0] <= version <= SEEN_VERSIONS[1]:
            report.skip("version", m.thread_id, f"Codex {m.version or '(no version)'} was not seen by this reader"
                        f" (checked: {_dotted(SEEN_VERSIONS[0])} to {_dotted(SEEN_VERSIONS[1])}); read as those")
        parent = self._by_id.get(m.parent_id or "")
        turns = self._own_turns(f)
        if (m.forked_from or r.copied) and m.start_ordinal is None and parent is None:
            report.skip("fork", m.thread_id, "the parent's rollout is missing: the history copied from it"
                        " cannot be told apart and is counted as this thread's")
        waited = (parent.rollout or self._parsed(parent)).waited.get(m.thread_id) if parent is not None else None
        agent = (m.role or DEFAULT_ROLE) if m.parent_id else ROOT_AGENT
        messages: list[RawMessage] = []
        taken: set[str] = set()
        for i, turn in enumerate(turns):
            self._turn_messages(f, r, turn, i, agent, waited, messages, taken)
        for message in messages:
            if message.role == "assistant":
                _price(message, report)
        first_prompt = next((t.prompts[0] for t in turns if t.prompts), "")
        if m.parent_id:
            label = m.agent_path or m.nickname or m.thread_id[:8]
            title = f"{label} (@{agent} subagent)"
        else:
            title = first_prompt.strip().split("\n", 1)[0][:200] or "(no prompt)"
        return RawSession(
            id=m.thread_id, parent_id=m.parent_id, title=title, directory=m.cwd, project_id=None, agent=agent,
            version=m.version, created_ms=m.created_ms, updated_ms=max(r.last_ms, m.created_ms), store=GENERATION,
            messages=messages, source=CODEX,
        )

    def _own_turns(self, f: _File) -> list[Turn]:
        """The thread's turns without those copied from its parent. From 0.150 the copy is left out while parsing
        (`subagent_history_start_ordinal`); before, nothing marks where it ends, but its turns carry the parent's
        turn ids."""
        r = f.rollout or self._parsed(f)
        m = f.meta
        parent = self._by_id.get(m.parent_id or "")
        if not (m.forked_from or r.copied) or m.start_ordinal is not None or parent is None:
            return r.turns
        copied = (parent.rollout or self._parsed(parent)).turn_ids
        return [t for t in r.turns if t.turn_id is None or t.turn_id not in copied]

    def _turn_messages(self, f: _File, r: Rollout, turn: Turn, index: int, agent: str,
                       waited: tuple[str, str] | None, out: list[RawMessage], taken: set[str]) -> None:
        m = f.meta
        tid = m.thread_id
        uid = f"{tid}:{turn.turn_id or f'turn-{index}'}"
        if uid in taken:
            uid = f"{uid}:{index}"
        taken.add(uid)
        out.append(RawMessage(id=uid, role="user", parent_id=None, agent=agent, created_ms=turn.start_ms,
                              completed_ms=turn.start_ms, model=None, provider=None, error=None,
                              texts=list(turn.prompts)))
        model = turn.model or m.model
        ended = turn.state != "running"
        # (call, done, error): a call is done when its response is; the last one of a turn cut while its tools
        # worked is not (and the turn's error is its own when the turn ended so)
        calls: list[tuple[Call, bool, str | None]] = [(c, True, c.error) for c in turn.calls]
        last = turn.calls[-1] if turn.calls else None
        unanswered = last is not None and any(t.output is None for t in last.tools)
        if not ended and r.open_turn is turn and r.pending is not None:
            calls.append((r.pending, False, None))  # its output is coming in
        elif not ended:
            if unanswered:
                calls[-1] = (last, False, None)  # type: ignore[assignment]  # cut, or still working
            else:
                calls.append((_in_flight(turn, last, None), False, None))  # the model is being called
        elif turn.error and unanswered:
            calls[-1] = (last, True, last.error or turn.error)  # type: ignore[assignment,union-attr]
        elif turn.error or (not turn.calls and turn.last_message is None and turn.prompts):
            # a failed model call: 0.171 says why in task_complete, 0.140 only in the parent's wait result
            err = turn.error or (waited[1] if waited and waited[0] == "errored" else None) or \
                "the model call failed (Codex recorded no error text)"
            calls.append((_in_flight(turn, last, turn.end_ms), True, err))
        for k, (call, done, error) in enumerate(calls):
            mid = f"{tid}:{call.key}" if call.key else f"{uid}:{k}"
            if mid in taken:
                mid = f"{mid}:{k}"
            taken.add(mid)
            out.append(self._message(f, call, mid, uid, agent, model, done, error, ended))

    def _message(self, f: _File, call: Call, mid: str, uid: str, agent: str, model: str | None, done: bool,
                 error: str | None, ended: bool) -> RawMessage:
        """One model call as an assistant message: its usage, texts, tool calls and spawns."""
        tid = f.meta.thread_id
        tools: list[str] = []
        spawns: list[RawCall] = []
        tool_calls: list[RawTool] = []
        for t in call.tools:
            tools.append(t.name)
            if t.name in SPAWN_TOOLS:
                spawns.append(self._spawn(f, t, mid, ended))
            else:
                tool_calls.append(_tool(tid, t, ended))
        return RawMessage(
            id=mid, role="assistant", parent_id=uid, agent=agent, created_ms=call.start_ms,
            completed_ms=call.end_ms if done else None, model=model, provider=f.meta.provider, error=error,
            usage=_usage(call.usage), tools=tools, calls=spawns, texts=list(call.texts), tool_calls=tool_calls,
        )

    def _spawn(self, f: _File, t: Tool, mid: str, ended: bool) -> RawCall:
        """A spawn_agent call as a background delegation into the child thread it started."""
        r = f.rollout
        assert r is not None
        args = _json_object(t.arguments)
        out = _json_object(t.output) if t.output is not None else {}
        named, child = self._child_of(f, t, out)
        cm = child.meta if child is not None else None
        prompt = as_str(args.get("message"))
        if prompt is None and isinstance(args.get("items"), list):
            prompt = "\n".join(i["text"] for i in args["items"]
                               if isinstance(i, dict) and isinstance(i.get("text"), str))
        inp = dict(args)
        inp["prompt"] = prompt or ""
        inp["description"] = (as_str(args.get("task_name")) or (cm.agent_path if cm else None)
                              or as_str(out.get("task_name"))
                              or _named_task((cm.nickname if cm else None) or as_str(out.get("nickname")), prompt))
        inp["subagent_type"] = (as_str(args.get("agent_type")) or as_str(args.get("role"))
                                or (cm.role if cm else None) or DEFAULT_ROLE)
        waited = r.waited.get(named) if named else None
        if t.output is None:
            status, end, error = ("error" if ended else "running"), None, ("no result was recorded" if ended else None)
        elif named is None:  # the spawn failed: its output says why
            status, end, error = "error", t.end_ms, t.output
        else:  # the child's own turns say how it went; without its file, the wait result does
            end = self._child_end(child, t.end_ms) if child is not None else (
                t.end_ms if waited is None else None)
            errored = waited is not None and waited[0] == "errored"
            status, error = ("error", waited[1]) if errored else ("completed", None)  # type: ignore[index]
        output = waited[1] if waited is not None else t.output
        return RawCall(
            trace_id=f"{f.meta.thread_id}:{t.call_id}", message_id=mid, created_ms=t.created_ms, status=status,
            input=inp, output=output, error=error, child_session_id=named, truncated=False,
            start_ms=t.created_ms, end_ms=end, background=True,
        )

    def _child_of(self, f: _File, t: Tool, out: dict) -> tuple[str | None, _File | None]:
        """The thread a spawn call started (its id, and its file if there is one): from Codex's events, the call's
        result, or (v2 without its events) the task path, else the parent's unclaimed child created first after
        the call. (None, None) when the spawn started nothing."""
        r = f.rollout
        assert r is not None
        cid = r.spawned.get(t.call_id) or as_str(out.get("agent_id"))
        if cid:
            return cid, self._by_id.get(cid)
        kids = self._children.get(f.meta.thread_id, [])
        path = as_str(out.get("task_name"))
        if path:
            for k in kids:
                if k.meta.agent_path == path:
                    return k.meta.thread_id, k
        claimed = set(r.spawned.values())
        for tool in r.tools.values():
            if tool.name in SPAWN_TOOLS and tool.output and tool is not t:
                a = as_str(_json_object(tool.output).get("agent_id"))
                if a:
                    claimed.add(a)
        if path or "agent_id" in out or t.output is None:
            for k in kids:
                if k.meta.thread_id not in claimed and k.meta.created_ms >= t.created_ms and (
                        not path or not k.meta.agent_path):
                    return k.meta.thread_id, k
        return (path, None) if path else (None, None)

    def _child_end(self, child: _File, returned: int | None) -> int | None:
        """When a spawned agent's own turns ended: its last turn's end, None while it runs (`returned`, when the
        spawn call returned, if the agent has no turn yet)."""
        turns = self._own_turns(child)
        if not turns:
            return returned
        if turns[-1].state == "running":
            return None
        return max(t.end_ms for t in turns if t.end_ms is not None)


def _in_flight(turn: Turn, last: Call | None, end: int | None) -> Call:
    """The model call a turn was waiting for when its records stop (or that failed, ending at `end`): it began
    with the last input."""
    start = turn.start_ms
    if last is not None:
        start = max(start, last.end_ms or last.start_ms, *(t.end_ms or 0 for t in last.tools))
    call = Call(start)
    call.end_ms = end
    return call


def _usage(u: tuple[int, int, int, int, int] | None) -> Usage:
    """Codex's figures as the store counts them: input without its cached and cache-written part, output without
    its reasoning part (each kept apart). Figures out of range stay as they are, for the loader to count."""
    if u is None:
        return Usage()
    inp, cached, write, out, reasoning = u
    if _fits(inp):
        inp = max(inp - (cached if _fits(cached) else 0) - (write if _fits(write) else 0), 0)
    if _fits(out):
        out = max(out - (reasoning if _fits(reasoning) else 0), 0)
    return Usage(inp, out, reasoning, cached, write)


def _price(m: RawMessage, report: LoadReport) -> None:
    """The cost of one model call from the price table (Codex stores none): OpenAI bills the reasoning tokens as
    output. A model with no price (or a provider the table does not know, such as a local one) leaves it
    unknown, and the report names the model; figures out of range are the loader's to count, and are not priced."""
    u = m.usage
    if not all(_fits(n) for n in u[:5]):
        return
    cost = call_cost(m.provider or DEFAULT_PROVIDER, m.model, m.created_ms, u.input, u.output + u.reasoning,
                     u.cache_read, u.cache_write)
    if cost is None:
        m.priced = False
        report.unpriced_call(m.model)
    else:
        m.usage = u._replace(cost=cost)


def _fits(n: int) -> bool:
    return 0 <= n <= MAX_TOKENS


def _tool(tid: str, t: Tool, ended: bool) -> RawTool:
    """A tool call other than a spawn: its arguments and output as Codex wrote them."""
    if t.output is None:
        status, output = ("error", "no output was recorded") if ended else ("running", None)
    else:
        failed = t.failed if t.failed is not None else exit_failed(t.name, t.output)
        status, output = ("error" if failed else "completed"), t.output
    return RawTool(f"{tid}:{t.call_id}", t.name, _title(t), status, t.start_ms or t.created_ms,
                   t.end_ms, t.arguments, output)


def _title(t: Tool) -> str | None:
    """The command a shell call ran, for the step list."""
    if t.name not in ("exec_command", "shell", "shell_command", "local_shell"):
        return None
    args = _json_object(t.arguments)
    cmd = args.get("cmd") if "cmd" in args else args.get("command")
    if isinstance(cmd, list):
        cmd = " ".join(c for c in cmd if isinstance(c, str))
    return cmd[:200] if isinstance(cmd, str) else None


def _named_task(nickname: str | None, prompt: str | None) -> str | None:
    """A v1 child's description: the name Codex gave it and what it was asked ("Ampere: Count the files"), as
    Codex's own screen names it beside the message it sent."""
    asked = fmt.first_line((prompt or "")[:4 * DESCRIBED], DESCRIBED)  # a 100 MB prompt is not copied
    return ": ".join(part for part in (nickname, asked) if part) or None


def _json_object(text: str | None) -> dict:
    if not text:
        return {}
    try:
        v = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return v if isinstance(v, dict) else {}


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split("-")[0].split("."))
    except ValueError:
        return None


def _dotted(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def open_codex_source(path: str | Path | None = None) -> Source:
    """The Codex history at `path` (a CODEX_HOME holding `sessions/`, or a sessions folder); with no path,
    $CODEX_HOME/sessions, else ~/.codex/sessions."""
    if path is None:
        location = default_sessions_dir()
    else:
        location = Path(path).expanduser()
        if (location / "sessions").is_dir():
            location = location / "sessions"
    if not location.is_dir():
        raise SourceError(
            f"No Codex history at {location}; run Codex once, or point agent-traces at it with --source PATH "
            "(your CODEX_HOME, or its sessions folder)."
        )
    return Source([CodexReader(location)], location)
