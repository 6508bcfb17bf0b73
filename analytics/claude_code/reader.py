"""Claude Code's history (`~/.claude/projects/`) as the records every reader yields.

    projects/<cwd with / and . as ->/<sessionId>.jsonl                       a session (a root RawSession)
    projects/<project>/<sessionId>/subagents/agent-<agentId>.jsonl (+ .meta.json)   2.1.2 and later
    projects/<project>/agent-<agentId>.jsonl                                  2.0.28 .. 2.1.1
    isSidechain records inside <sessionId>.jsonl                              2.0.27 and before

Each subagent file (or inline sidechain chain) is a child RawSession whose calling `Agent`/`Task` tool_use is
a RawCall naming it; each API response is one assistant RawMessage, each real prompt a user RawMessage.
Claude Code's "Warmup" subagents (2.0.x .. 2.1.5: a cache warm-up no call refers to) are left out.

Files are opened read-only and never written. Reads are incremental: the parse state of each file is kept
(`FileLog`), and a file that grew is read from where the last read stopped; one whose first bytes changed or
that shrank was rewritten and is read again whole. The state of the sessions written last is kept, whole
trees, up to a memory budget (`retain_chars` characters of text); a tree beyond it is read whole again if it
ever grows. Finding what changed is cheap on a long history too (`_scan`): folders are listed again only when
their time changed, and sessions quiet for 12 hours are looked at by their session file, a thousand per load.

A subagent's session record names the session that called it when meta.json says so (2.1.70 and later);
before, a nested subagent's record names the root session (its delegation trace still hangs under the call
that made it, found in the calling subagent's file).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from analytics.claude_code.history import (
    DELEGATION_TOOLS,
    HEAD_BYTES,
    Conversation,
    FileLog,
    Notice,
    Prompt,
    Step,
    Tool,
)
from analytics.claude_code.schema import META, RECORDS, Meta
from analytics.models import CLAUDE_CODE, COMPLETED, ERROR, RUNNING, LoadReport, Usage
from analytics.opencode.readers import Reader
from analytics.opencode.records import RawCall, RawMessage, RawSession, RawTool, SessionStamp, json_text
from analytics.pricing import call_cost

STORE = CLAUDE_CODE
PROVIDER = "anthropic"
MAIN_AGENT = "main"  # the agent of a session's own line (Claude Code gives it no name)
RETAIN_CHARS = 64_000_000
CHUNK_BYTES = 16 * 2**20  # a file is read in pieces of this size
_HOT_NS = 12 * 3600 * 10**9  # a session written in the last 12 hours has its files looked at on every load
SWEEP_TREES = 1000  # and this many others per load, in turn, by their session file only
_TRUSTED_NS = 2 * 10**9  # a folder time older than this is trusted to say nothing was added since
NEWEST_SEEN = (2, 1, 332)  # the newest version whose files this reader was checked against
INLINE_BEFORE = (2, 0, 28)  # 2.0.27 and before write subagents inline (seen: 2.0.27 inline, 2.0.28 flat files)
WARMUP = "Warmup"
_VERSION = re.compile(rb'"version":"(\d+)\.(\d+)\.(\d+)')
_TITLE_CHARS = 100


@dataclass
class AgentFile:
    agent_id: str
    path: str
    meta_path: str | None
    stamp: str
    mtime_ns: int = 0


@dataclass
class _Listing:
    mtime_ns: int
    files: list[str]
    dirs: list[str]
    # a project folder's sessions, worked out once per listing
    sessions: set[str] | None = None
    roots: set[str] = field(default_factory=set)
    flat: dict[str, list[str]] = field(default_factory=dict)
    pending: bool = False


@dataclass
class Tree:
    """The files of one session: its own file and its subagents' files."""

    session_id: str
    project: str
    path: str | None  # the session file (None: only subagent files are left)
    stamp: str = ""
    mtime_ms: int = 0
    agents: list[AgentFile] = field(default_factory=list)
    mtime_ns: int = 0  # the newest of its files
    inline: bool = False  # written by 2.0.27 or before: subagents inside the session file
    entries: dict[str, SessionStamp] | None = None  # its index entries, made once per look


@dataclass
class ReadStats:
    """What the reader read from disk, for tests and benchmarks: bytes parsed and bytes only looked at."""

    bytes_parsed: int = 0
    bytes_peeked: int = 0  # first lines, head checks, meta.json files
    files_parsed: int = 0
    files_read_whole: int = 0


def _stat_stamp(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(".")[:3])
    except ValueError:
        return None


def _title(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:_TITLE_CHARS]


class ClaudeReader(Reader):
    """One Claude Code `projects/` folder."""

    generation = "claude-code"

    def __init__(self, path: Path, retain_chars: int = RETAIN_CHARS) -> None:
        super().__init__(path)
        self.retain_chars = retain_chars
        self.stats = ReadStats()
        self._logs: dict[str, FileLog] = {}  # parse state, by file path
        self._first: dict[tuple[str, int], tuple[str | None, str | None, bool]] = {}  # path, ino -> sid, agent, warmup
        self._inline: dict[tuple[str, int], bool] = {}
        self._meta: dict[tuple[str, str], Meta | None] = {}
        self._trees: dict[str, Tree] = {}
        self._root_of: dict[str, str] = {}  # session id (root or child) -> root session id
        self._listings: dict[str, _Listing] = {}
        self._tree_cache: dict[str, Tree] = {}  # each tree as last looked at
        self._flat: dict[str, str | None] = {}  # flat agent file -> its session
        self._sweep_pos = 0
        self._sweep_order: list[str] = []
        self._noted: tuple[LoadReport | None, set[str]] = (None, set())

    def stamp(self) -> str:
        return ""  # files grow in place, which leaves the folders' times alone: every load looks at each file

    # -- finding the files ---------------------------------------------------------------------------------
    def _list(self, path: str) -> _Listing | None:
        """A folder's files and folders, listed again only when its time changed (a file was added or removed)
        or is too recent to trust (a file made within the same clock tick leaves it alone)."""
        try:
            st = os.stat(path)
        except OSError:
            self._listings.pop(path, None)
            return None
        old = self._listings.get(path)
        if old is not None and old.mtime_ns == st.st_mtime_ns and time.time_ns() - st.st_mtime_ns > _TRUSTED_NS:
            return old
        files, dirs = [], []
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        dirs.append(e.name)
                    elif e.is_file(follow_symlinks=False):
                        files.append(e.name)
        except OSError:
            return None
        listing = _Listing(st.st_mtime_ns, files, dirs)
        self._listings[path] = listing
        return listing

    def _scan(self, report: LoadReport) -> dict[str, Tree]:
        """Every session tree, its files looked at (stat) if it was written in the last 12 hours or is new; of
        the others, SWEEP_TREES in turn have their session file looked at, and the rest are as last seen. A
        long history has thousands of sessions of which a few are written to, so a reload looks at about a
        thousand files, not all of them, and a session written again after a long pause is seen within a
        few loads (5,000 sessions: 5)."""
        now = time.time_ns()
        trees: dict[str, Tree] = {}
        projects = self._list(str(self.path))
        if projects is None:
            return trees
        sweep = self._next_sweep()
        for project in projects.dirs:
            ppath = os.path.join(self.path, project)
            listing = self._list(ppath)
            if listing is None:
                continue
            if listing.sessions is None or listing.pending:  # worked out once per listing
                self._sessions_of(ppath, listing)
            flat, sids = listing.flat, listing.sessions
            for sid in sids:
                old = self._tree_cache.get(sid)
                if (old is not None and now - old.mtime_ns > _HOT_NS and old.project == project
                        and (sid not in sweep or self._root_unchanged(old))):
                    trees[sid] = old
                    continue
                tree = self._look(sid, project, ppath, sid in listing.roots, sid in listing.dirs,
                                  flat.get(sid, []))
                if tree is not None:
                    trees[sid] = tree
                    self._tree_cache[sid] = tree
        for sid in list(self._tree_cache):
            if sid not in trees:
                del self._tree_cache[sid]
        return trees

    def _sessions_of(self, ppath: str, listing: _Listing) -> None:
        """The sessions a project folder holds: its session files, session folders and flat agent files' ones."""
        flat: dict[str, list[str]] = {}
        pending = False
        for name in listing.files:
            if name.startswith("agent-") and name.endswith(".jsonl"):
                sid = self._flat_session(os.path.join(ppath, name))
                if sid is not None:
                    flat.setdefault(sid, []).append(name)
                elif os.path.join(ppath, name) not in self._flat:
                    pending = True  # its first line is not written yet
        roots = {name[:-6] for name in listing.files if name.endswith(".jsonl") and not name.startswith("agent-")}
        listing.roots = roots
        listing.flat = flat
        listing.pending = pending
        listing.sessions = roots | {d for d in listing.dirs if d != "memory"} | set(flat)

    def _next_sweep(self) -> set[str]:
        if len(self._sweep_order) != len(self._tree_cache):
            self._sweep_order = sorted(self._tree_cache)
        order = self._sweep_order
        if not order:
            return set()
        start = self._sweep_pos % len(order)
        self._sweep_pos = start + SWEEP_TREES
        return set(order[start:start + SWEEP_TREES]) | set(order[:max(0, start + SWEEP_TREES - len(order))])

    @staticmethod
    def _root_unchanged(tree: Tree) -> bool:
        """Whether a quiet tree's session file is as last seen: a session written again after a pause is
        written there first (its subagents start after the call in it), so its one stat says enough."""
        if tree.path is None:
            return True
        st = _safe_stat(tree.path)
        return st is not None and _stat_stamp(st) == tree.stamp

    def _look(self, sid: str, project: str, ppath: str, has_file: bool, has_dir: bool,
              flat: list[str]) -> Tree | None:
        """One session tree with each of its files looked at now."""
        tree = Tree(sid, project, None)
        newest = 0
        if has_file:
            path = os.path.join(ppath, f"{sid}.jsonl")
            st = _safe_stat(path)
            if st is not None:
                tree.path, tree.stamp, tree.mtime_ms = path, _stat_stamp(st), st.st_mtime_ns // 1_000_000
                tree.inline = self._is_inline(path, st.st_ino)
                newest = st.st_mtime_ns
        agents: list[tuple[str, str | None]] = [(os.path.join(ppath, name), None) for name in flat]
        if has_dir:
            sub = os.path.join(ppath, sid, "subagents")
            listing = self._list(sub)
            if listing is not None:
                names = set(listing.files)
                for name in listing.files:
                    if name.startswith("agent-") and name.endswith(".jsonl"):
                        meta = f"{name[:-6]}.meta.json"
                        agents.append((os.path.join(sub, name), os.path.join(sub, meta) if meta in names else None))
        for path, meta in agents:
            af = self._agent_file(path, os.path.basename(path)[6:-6], meta)
            if af is not None:
                tree.agents.append(af)
                newest = max(newest, af.mtime_ns)
        if tree.path is None and not tree.agents:
            return None
        tree.mtime_ns = newest
        return tree

    def _flat_session(self, path: str) -> str | None:
        """The session a flat agent file (2.0.28 .. 2.1.1) belongs to, from its first record."""
        if path not in self._flat:
            first = self._first_line(path)
            if first is None:
                return None  # its first line is not written yet: asked again next time
            self._flat[path] = first[0]
        return self._flat[path]

    def _agent_file(self, path: str, agent_id: str, meta_path: str | None) -> AgentFile | None:
        """The subagent file, or None for a Warmup one (its first prompt is "Warmup": no call refers to it)."""
        st = _safe_stat(path)
        if st is None:
            return None
        key = (path, st.st_ino)
        first = self._first.get(key)
        if first is None:
            first = self._first_line(path)
            if first is not None:
                self._first[key] = first
        if first is not None and first[2]:
            return None
        stamp = _stat_stamp(st)
        if meta_path is not None:
            mst = _safe_stat(meta_path)
            if mst is None:
                meta_path = None
            else:
                stamp += f"|{mst.st_size}:{mst.st_mtime_ns}"
        return AgentFile(agent_id, path, meta_path, stamp, st.st_mtime_ns)

    def _first_line(self, path: str) -> tuple[str | None, str | None, bool] | None:
        """The session id and agent id a subagent file's first record names, and whether it is a Warmup; None
        while the first line is not complete (asked again at the next index)."""
        try:
            with open(path, "rb") as f:
                head = f.read(65536)
        except OSError:
            return None
        self.stats.bytes_peeked += len(head)
        if b"\n" not in head and len(head) < 65536:
            return None
        line = head.split(b"\n", 1)[0]
        try:
            r = RECORDS.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return None, None, False
        text = r.message.content if r.message is not None else None
        if isinstance(text, list):
            text = "".join(b.text for b in text if b.type == "text" and isinstance(b.text, str))
        return r.sessionId, r.agentId, text == WARMUP and r.type == "user"

    def _is_inline(self, path: str, ino: int) -> bool:
        """Whether a session file was written by a version that puts subagents inline (2.0.27 and before)."""
        key = (path, ino)
        if key not in self._inline:
            try:
                with open(path, "rb") as f:
                    head = f.read(16384)
            except OSError:
                head = b""
            self.stats.bytes_peeked += len(head)
            m = _VERSION.search(head)
            if m is None:  # no version written yet: decided (and kept) once one is
                return b'"isSidechain":true' in head
            self._inline[key] = tuple(int(x) for x in m.groups()) < INLINE_BEFORE
        return self._inline[key]

    def _meta_of(self, af: AgentFile) -> Meta | None:
        if af.meta_path is None:
            return None
        key = (af.meta_path, af.stamp)
        if key not in self._meta:
            try:
                raw = Path(af.meta_path).read_bytes()
                self.stats.bytes_peeked += len(raw)
                self._meta[key] = META.decode(raw)
            except (OSError, msgspec.DecodeError, RecursionError):
                self._meta[key] = None
        return self._meta[key]

    # -- the Reader interface ------------------------------------------------------------------------------
    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        trees = self._scan(report)
        self._trees = trees
        out: dict[str, SessionStamp] = {}
        root_of: dict[str, str] = {}
        for sid, tree in list(trees.items()):
            if tree.path is not None and tree.stamp.startswith("0:") and not tree.agents:
                del trees[sid]  # an empty file (2.0.27's --resume leaves one behind): no session yet
                continue
            if tree.entries is None:  # looked at again this time (a tree as last seen keeps its entries)
                tree.entries = self._entries(tree, report)
            out.update(tree.entries)
            for cid in tree.entries:
                root_of[cid] = sid
        self._root_of = root_of
        return out

    def _entries(self, tree: Tree, report: LoadReport) -> dict[str, SessionStamp]:
        """The index entries of one tree: the session, its inline sidechains (2.0.27 and before: the file is
        read now to find them) and its subagent files, each child under the agent that called it when
        meta.json says so (2.1.70+), else under the session."""
        sid, created = tree.session_id, tree.mtime_ms
        out = {sid: SessionStamp(None, tree.stamp or "-", created)}
        if tree.path is not None and tree.inline:
            log = self._file(tree.path, True, report)
            if log is not None:
                for chain, conv in log.convs.items():
                    if chain and not _is_warmup(conv):
                        out[f"{sid}/{chain}"] = SessionStamp(sid, tree.stamp, created)
        parents = {}
        for af in tree.agents:
            meta = self._meta_of(af)
            parent = meta.parentAgentId if meta is not None and isinstance(meta.parentAgentId, str) else None
            parents[f"{sid}/{af.agent_id}"] = (f"{sid}/{parent}" if parent else sid, af.stamp)
        for cid, (parent, stamp) in parents.items():
            out[cid] = SessionStamp(parent if parent in parents else sid, stamp, created)
        return out

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        if not self._trees:
            self.index(report)
        roots = set(self._trees) if ids is None else {self._root_of[i] for i in ids if i in self._root_of}
        out: list[RawSession] = []
        for sid in sorted(roots):
            out.extend(self._read_tree(self._trees[sid], report))
        self._trim()
        self._note_versions(out, report)
        if ids is not None:
            wanted = set(ids)
            out = [s for s in out if s.id in wanted]
        return out

    def _note_versions(self, sessions: list[RawSession], report: LoadReport) -> None:
        """Say once per load which sessions came from a Claude Code newer than any this reader was checked with:
        they are read the same way, and what that version added and this reader does not know is counted
        where it is met (unknown record types, content blocks)."""
        if self._noted[0] is not report:
            self._noted = (report, set())
        for s in sessions:
            v = _version(s.version)
            if v is not None and v > NEWEST_SEEN and s.version not in self._noted[1]:
                self._noted[1].add(s.version)
                report.skip("version", s.version or "", f"Claude Code {s.version} is newer than the versions this "
                            f"reader was checked with (up to {'.'.join(map(str, NEWEST_SEEN))}); read the same way")

    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        """Texts are set when the messages are made (they are kept with the parse state)."""

    # -- reading files -------------------------------------------------------------------------------------
    def _file(self, path: str, inline: bool, report: LoadReport) -> FileLog | None:
        """The parse state of one file, brought up to date by reading only what was appended."""
        st = _safe_stat(path)
        if st is None:
            self._logs.pop(path, None)
            return None
        log = self._logs.get(path)
        if log is not None and (st.st_ino != log.ino or st.st_size < log.offset or log.inline != inline or (
                (st.st_size, st.st_mtime_ns) != log.seen and not self._appended(path, log))):
            log = None  # rewritten, not appended (or first seen before its version was written): read again whole
        if log is None:
            log = FileLog(path, inline)
            log.ino = st.st_ino
            self.stats.files_read_whole += 1
        if st.st_size > log.offset:
            try:
                self._feed(path, log, st.st_size, report)
            except OSError as exc:
                report.skip("file", path, exc.strerror or "unreadable")
                return None
            self.stats.files_parsed += 1
        log.seen = (st.st_size, st.st_mtime_ns)
        self._logs[path] = log
        return log

    def _feed(self, path: str, log: FileLog, size: int, report: LoadReport) -> None:
        """Read a file from where its log stopped up to `size`, in pieces of CHUNK_BYTES (a long session file
        is not held in memory whole), each piece's complete lines folded in."""
        with open(path, "rb") as f:
            f.seek(log.offset)
            left = size - log.offset
            carry = b""
            while left > 0:
                piece = f.read(min(CHUNK_BYTES, left))
                if not piece:
                    break
                left -= len(piece)
                data = carry + piece if carry else piece
                if log.offset == 0 and not log.head:
                    log.head = data[:HEAD_BYTES]
                used = log.feed(data, report)
                self.stats.bytes_parsed += used
                carry = data[used:]

    def _appended(self, path: str, log: FileLog) -> bool:
        """Whether a file that changed was only appended to: its first bytes and the bytes before where the last
        read stopped are as they were (a file written again whole, with the same start and more lines, is not)."""
        if not log.head:
            return True
        try:
            with open(path, "rb") as f:
                head = f.read(len(log.head))
                f.seek(log.offset - len(log.tail))
                tail = f.read(len(log.tail))
        except OSError:
            return False
        self.stats.bytes_peeked += len(head) + len(tail)
        return head == log.head and tail == log.tail

    def _trim(self) -> None:
        """Keep the parse state of the sessions written last, whole trees within the budget; forget the rest
        (a tree is read together: one file of it kept without the others would not spare a read)."""
        total = sum(log.size for log in self._logs.values())
        if total <= self.retain_chars:
            return
        kept = 0
        keep: set[str] = set()
        for tree in sorted(self._trees.values(), key=lambda t: t.mtime_ms, reverse=True):
            paths = [p for p in ([tree.path] if tree.path else []) + [a.path for a in tree.agents] if p in self._logs]
            size = sum(self._logs[p].size for p in paths)
            if kept + size > self.retain_chars:
                continue
            kept += size
            keep.update(paths)
        for path in list(self._logs):
            if path not in keep:
                del self._logs[path]

    def forget(self) -> None:
        """Drop every file's parse state (the next read reads each file whole)."""
        self._logs.clear()

    def cost_state(self, session_id: str) -> tuple[float, dict] | None:
        """Claude Code's own total for a session (its last `cost-state` record), if the file has one."""
        tree = self._trees.get(session_id)
        log = self._logs.get(tree.path) if tree is not None and tree.path else None
        return (log.cost.total_usd, log.cost.model_usage) if log is not None and log.cost is not None else None

    # -- one session's tree as records ---------------------------------------------------------------------
    def _read_tree(self, tree: Tree, report: LoadReport) -> list[RawSession]:
        sid = tree.session_id
        root_log = self._file(tree.path, tree.inline, report) if tree.path is not None else None
        children: list[_Child] = []
        if root_log is not None:
            for chain, conv in root_log.convs.items():
                if chain and not _is_warmup(conv):
                    children.append(_Child(f"{sid}/{chain}", conv, None, None))
        for af in tree.agents:
            log = self._file(af.path, False, report)
            if log is not None:
                children.append(_Child(f"{sid}/{af.agent_id}", log.main, af.agent_id, self._meta_of(af)))
        main = root_log.main if root_log is not None else Conversation()
        if not main.steps and not children:
            return []  # no conversation record yet (only a title, a queue operation): no session yet
        return _Assembly(sid, tree, main, root_log, children, report).sessions()


@dataclass
class _Child:
    id: str
    conv: Conversation
    agent_id: str | None
    meta: Meta | None
    call: Tool | None = None
    parent: str | None = None
    parent_conv: Conversation | None = None


class _Assembly:
    """The RawSessions of one tree: each subagent linked to the call that started it."""

    def __init__(self, sid: str, tree: Tree, main: Conversation, log: FileLog | None, children: list[_Child],
                 report: LoadReport) -> None:
        self.sid, self.tree, self.main, self.log, self.children, self.report = sid, tree, main, log, children, report
        self.convs: list[tuple[str, Conversation]] = [(sid, main)] + [(c.id, c.conv) for c in children]
        self._link()

    def _link(self) -> None:
        """Which call started each subagent: meta.json's toolUseId, the agentId in the call's result (its
        toolUseResult, its text, a task notification), else the same prompt (inline sidechains, which name no
        agent), the nearest in time."""
        calls: list[tuple[str, Conversation, Tool]] = [
            (owner, conv, t) for owner, conv in self.convs for t in conv.tools.values() if t.name in DELEGATION_TOOLS]
        by_tool = {t.id: (owner, conv, t) for owner, conv, t in calls}
        by_agent = {c.agent_id: c for c in self.children if c.agent_id}
        claimed: set[str] = set()
        self.child_of_tool: dict[str, _Child] = {}

        def claim(child: _Child, owner: str, conv: Conversation, tool: Tool) -> None:
            if child.call is None or tool.start_ms < child.call.start_ms:  # the first call names and places it
                child.call, child.parent, child.parent_conv = tool, owner, conv
            claimed.add(tool.id)
            self.child_of_tool[tool.id] = child

        for child in self.children:
            if child.meta is not None and isinstance(child.meta.toolUseId, str) and child.meta.toolUseId in by_tool:
                claim(child, *by_tool[child.meta.toolUseId])
        for owner, conv, tool in calls:
            if tool.id in claimed:
                continue
            agent_id = tool.agent.agentId if tool.agent is not None and isinstance(tool.agent.agentId, str) else None
            agent_id = agent_id or tool.agent_text_id or next(
                (n.task_id for n in conv.notices if n.tool_use_id == tool.id and n.task_id), None)
            child = by_agent.get(agent_id) if agent_id else None
            if child is not None:  # a second call naming the same agent resumed it (Task's `resume`)
                claim(child, owner, conv, tool)
        for owner, conv, tool in sorted(calls, key=lambda c: c[2].start_ms):
            if tool.id in claimed:
                continue
            prompt = tool.input.get("prompt") if isinstance(tool.input, dict) else None
            candidates = [c for c in self.children if c.call is None and c.id != owner
                          and (p := c.conv.prompts) and p[0].text == prompt]
            if candidates:
                best = min(candidates, key=lambda c: (abs((c.conv.first_ms or 0) - tool.start_ms), c.id))
                claim(best, owner, conv, tool)
        for child in self.children:
            if child.call is None:
                self.report.skip("subagent", child.id, "no Agent/Task call refers to it; its steps are not counted")

    def sessions(self) -> list[RawSession]:
        child_of_tool = self.child_of_tool
        root = self._session(self.sid, None, self.main, MAIN_AGENT, child_of_tool)
        if self.log is not None and self.log.title:
            root.title = self.log.title
        out = [root]
        for c in self.children:
            inp = c.call.input if c.call is not None and isinstance(c.call.input, dict) else {}
            agent = _str(inp.get("subagent_type")) or (_str(c.meta.agentType) if c.meta else None) or "unknown"
            s = self._session(c.id, c.parent or self.sid, c.conv, agent, child_of_tool)
            desc = _str(inp.get("description")) or (_str(c.meta.description) if c.meta else None)
            if desc:
                s.title = desc
            out.append(s)
        return out

    def _session(self, sid: str, parent: str | None, conv: Conversation, agent: str,
                 child_of_tool: dict[str, _Child]) -> RawSession:
        messages = self._messages(conv, agent, child_of_tool)
        prompts = conv.prompts
        first = conv.first_ms if conv.first_ms is not None else self.tree.mtime_ms
        last = conv.last_ms if conv.last_ms is not None else first
        return RawSession(
            id=sid, parent_id=parent, title=_title(prompts[0].text) if prompts else "",
            directory=conv.cwd or self.main.cwd or "", project_id=self.tree.project, agent=agent,
            version=conv.version, created_ms=first, updated_ms=max(last, first), store=STORE, messages=messages,
            source=CLAUDE_CODE)

    def _messages(self, conv: Conversation, agent: str, child_of_tool: dict[str, _Child]) -> list[RawMessage]:
        out: list[RawMessage] = []
        last_step = next((s for s in reversed(conv.steps) if isinstance(s, Step)), None)
        for s in conv.steps:
            if isinstance(s, Prompt):
                out.append(RawMessage(id=s.id, role="user", parent_id=None, agent=agent, created_ms=s.ms,
                                      completed_ms=s.ms, model=None, provider=None, error=None, texts=[s.text]))
                continue
            inp, outp, write, read, write_1h = s.usage
            cost = call_cost(PROVIDER, s.model, s.start_ms, inp, outp, read, write - write_1h, write_1h)
            if cost is None:  # a model with no price: unknown, not free (the report names the model)
                self.report.unpriced_call(s.model)
            calls: list[RawCall] = []
            tools: list[RawTool] = []
            for t in s.tools:
                if t.name in DELEGATION_TOOLS:
                    calls.append(self._call(t, s, conv, child_of_tool.get(t.id)))
                else:
                    tools.append(RawTool(t.id, t.name, _tool_title(t.input), t.status, t.start_ms, t.end_ms,
                                         None if t.input is None else json_text(t.input), t.output))
            # A step whose tool calls have not all answered is still open (as OpenCode's messages stay open
            # while their tools run): the session runs on, or was killed there and is left running.
            open_ = s is last_step and any(t.status == RUNNING for t in s.tools)
            out.append(RawMessage(
                id=s.id, role="assistant", parent_id=None, agent=agent, created_ms=s.start_ms,
                completed_ms=None if open_ else s.end_ms, model=s.model, provider=PROVIDER, error=s.error,
                usage=Usage(inp, outp, 0, read, write, cost or 0.0), tools=[t.name for t in s.tools], calls=calls,
                texts=list(s.texts), tool_calls=tools, priced=cost is not None))
        return out

    def _call(self, t: Tool, s: Step, conv: Conversation, child: _Child | None) -> RawCall:
        inp = t.input if isinstance(t.input, dict) else {}
        agent = t.agent
        background = agent is not None and (agent.status == "async_launched" or agent.isAsync is True)
        status, end, error = t.status, t.end_ms, t.output if t.status == ERROR else None
        output = None
        child_text = _last_text(child.conv) if child is not None else None
        if background:
            notices = [n for n in conv.notices if n.tool_use_id == t.id
                       or (child is not None and child.agent_id and n.task_id == child.agent_id)]
            status, end, output, error = _from_notices(notices)
            if status == COMPLETED:
                output = child_text or output
        elif status == COMPLETED:
            output = child_text or _agent_text(agent) or t.output
        return RawCall(trace_id=t.id, message_id=s.id, created_ms=t.start_ms, status=status, input=inp,
                       output=output, error=error, child_session_id=child.id if child is not None else None,
                       truncated=False, start_ms=t.start_ms, end_ms=end, background=background)


def _from_notices(notices: list[Notice]) -> tuple[str, int | None, str | None, str | None]:
    """A background subagent's status, end, output and error from its last task notification."""
    if not notices:
        return RUNNING, None, None, None
    n = notices[-1]
    if n.status == "completed":
        return COMPLETED, n.ms, n.result, None
    return ERROR, n.ms, None, n.result or f"subagent {n.status or 'failed'}"


def _last_text(conv: Conversation) -> str | None:
    for s in reversed(conv.steps):
        if isinstance(s, Step) and s.texts and not s.error:
            return s.texts[-1]
    return None


def _agent_text(agent: object) -> str | None:
    content = getattr(agent, "content", None)
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return "\n".join(texts) if texts else None
    return content if isinstance(content, str) else None


def _tool_title(inp: object) -> str | None:
    """A short label for a tool call: its description, else the file, pattern, command or URL it was given."""
    if not isinstance(inp, dict):
        return None
    for key in ("description", "file_path", "pattern", "command", "url", "query", "path"):
        v = inp.get(key)
        if isinstance(v, str) and v:
            return v[:200]
    return None


def _is_warmup(conv: Conversation) -> bool:
    p = conv.prompts
    return bool(p) and p[0].text == WARMUP


def _str(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def _safe_stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None
