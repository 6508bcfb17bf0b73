"""The parse state of one Claude Code history file, fed with the bytes appended since the last read.

A file is a sequence of JSON lines, only ever appended to. `FileLog.feed` takes the new bytes (up to the last
newline: a half-written last line waits for the next read) and folds each record into the conversations the
file holds: its main line, and in 2.0.27 and before the subagents' `isSidechain` chains written inline. The state
kept is what the records say once folded (prompts, LLM calls with their tool calls and results, background
notifications), so the next read goes on from where this one stopped and never reads the old bytes again.

What a record means (seen in 2.0.27, 2.1.1, 2.1.50, 2.1.332; tests/fixtures/README.md):
- `assistant`: one content block of an API response. Parallel tool calls, and text before a tool call, are
  written as several records sharing one `message.id` and the same usage: they are one LLM call, counted once
  (each usage figure is the largest the records give: 2.1.50 wrote output_tokens from the stream's start).
- `user`: a prompt (a string, or text blocks), or tool results (`tool_result` blocks, with `toolUseResult`
  holding a subagent call's outcome), or a background subagent's `<task-notification>` (`origin.kind`,
  2.1.x), or a harness note (`isMeta`), which is not a prompt.
- `api-request` (2.1.x): written when an API request is sent; an LLM call starts at the first one after the
  previous conversation record (retries follow it), else at that previous record's time.
- `summary` / `custom-title` / `ai-title`: the session's title; `cost-state`: Claude Code's own running cost
  of the whole session (cumulative across resumes: the last one is the total).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from analytics.claude_code.schema import AGENT_RESULT, RECORDS, AgentResult, Block, Record
from analytics.models import COMPLETED, ERROR, RUNNING, LoadReport
from analytics.opencode.records import as_int, json_text, loads_js

DELEGATION_TOOLS = frozenset({"Agent", "Task"})  # Task until 2.1.62, Agent from 2.1.63
# Record types Claude Code writes that hold nothing a trace needs (seen in the files, or in 2.1.332's binary).
IGNORED_TYPES = frozenset({
    "attachment", "queue-operation", "api-request-shape", "api-request-blob", "api-request-resumed",
    "tools-used", "last-prompt", "atis-latch", "mode", "file-history-snapshot", "progress", "system", "tag",
    "agent-name", "agent-color", "relocated", "pr-link", "worktree-state", "content-replacement",
})
TITLE_TYPES = frozenset({"summary", "custom-title", "ai-title"})
HEAD_BYTES = 64  # compared on each read that finds a file grown: other first bytes mean it was rewritten
TAIL_BYTES = 64  # and the last bytes read: other bytes there mean it was rewritten (same start, say, but longer)

_TAG = re.compile(r"<(task-id|tool-use-id|status|result|summary)>(.*?)</\1>", re.S)
_AGENT_ID_TEXT = re.compile(r"agentId: ([A-Za-z0-9_-]+)")


def ms_of(stamp: object) -> int | None:
    """Milliseconds since the epoch of an ISO timestamp (`2026-12-05T01:16:39.317Z`), None if it is none."""
    if not isinstance(stamp, str):
        return None
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None


def block_text(content: object) -> str | None:
    """The text of a tool result's content: a string, or text blocks joined (an image is `[image]`)."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict):
                kind = b.get("type")
                if kind == "text" and isinstance(b.get("text"), str):
                    parts.append(b["text"])
                elif isinstance(kind, str):
                    parts.append(f"[{kind}]")
        return "\n".join(parts)
    return json_text(content)


@dataclass(slots=True)
class Tool:
    """One tool_use block and, once it came, its tool_result."""

    id: str
    name: str
    input: object
    start_ms: int
    message_id: str
    end_ms: int | None = None
    status: str = RUNNING
    output: str | None = None
    agent: AgentResult | None = None  # a subagent call's toolUseResult
    agent_text_id: str | None = None  # the agentId a result text names (2.1.1 .. 2.1.50, nested in 2.1.332)


@dataclass(slots=True)
class Step:
    """One LLM call: every assistant record of one API response (one message.id)."""

    id: str
    start_ms: int
    end_ms: int
    model: str | None
    usage: list[int]  # input, output, cache_write (all), cache_read, cache_write_1h: the largest each record gave
    texts: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class Prompt:
    """A real user prompt (not a tool result, a harness note or a notification): it opens a turn."""

    id: str
    ms: int
    text: str


@dataclass(slots=True)
class Notice:
    """A background subagent's outcome, from a `<task-notification>` user record (2.1.x)."""

    tool_use_id: str | None
    task_id: str | None
    status: str | None
    result: str | None
    ms: int


class Conversation:
    """One line of conversation: a session's main line, a subagent file, or an inline sidechain (<= 2.0.27)."""

    __slots__ = ("steps", "tools", "notices", "by_message", "first_ms", "last_ms", "cwd", "version",
                 "git_branch", "agent_id", "session_id", "pending_start", "prev_ms", "size", "uuids")

    def __init__(self) -> None:
        self.steps: list[Prompt | Step] = []
        self.tools: dict[str, Tool] = {}
        self.notices: list[Notice] = []
        self.by_message: dict[str, Step] = {}
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.cwd: str | None = None
        self.version: str | None = None
        self.git_branch: str | None = None
        self.agent_id: str | None = None
        self.session_id: str | None = None
        self.pending_start: int | None = None  # the first api-request since the last conversation record
        self.prev_ms: int | None = None  # the last conversation record's time
        self.size = 0  # characters of text kept (prompts, outputs, inputs): what this state costs in memory
        self.uuids: set[str] = set()  # records folded in: one written twice is folded once

    @property
    def prompts(self) -> list[Prompt]:
        return [s for s in self.steps if isinstance(s, Prompt)]

    def api_request(self, ms: int | None) -> None:
        if self.pending_start is None and ms is not None:
            self.pending_start = ms

    def add(self, r: Record, ms: int | None, report: LoadReport, where: str) -> None:
        """Fold one user or assistant record in."""
        if r.uuid is not None:
            if r.uuid in self.uuids:
                report.skip("record", where, "a record written twice (the same uuid); read once")
                return
            self.uuids.add(r.uuid)
        if ms is None:
            ms = self.prev_ms if self.prev_ms is not None else 0
        if self.first_ms is None or ms < self.first_ms:
            self.first_ms = ms
        if self.last_ms is None or ms > self.last_ms:
            self.last_ms = ms
        if self.cwd is None and r.cwd:
            self.cwd = r.cwd
        if r.version:
            self.version = r.version
        if r.gitBranch and self.git_branch is None:
            self.git_branch = r.gitBranch
        if self.agent_id is None and r.agentId:
            self.agent_id = r.agentId
        if self.session_id is None and r.sessionId:
            self.session_id = r.sessionId
        if r.type == "assistant":
            self._assistant(r, ms, report, where)
        else:
            self._user(r, ms, report, where)
        self.prev_ms = ms
        self.pending_start = None

    def _assistant(self, r: Record, ms: int, report: LoadReport, where: str) -> None:
        m = r.message
        if m is None:
            report.skip("record", where, "an assistant record without a message")
            return
        mid = m.id if isinstance(m.id, str) and m.id else (r.uuid or f"line@{ms}")
        u = m.usage
        if u is not None:
            split = u.cache_creation if isinstance(u.cache_creation, dict) else {}
            figures = [_count(u.input_tokens), _count(u.output_tokens), _count(u.cache_creation_input_tokens),
                       _count(u.cache_read_input_tokens), _count(split.get("ephemeral_1h_input_tokens"))]
        else:
            figures = [0, 0, 0, 0, 0]
        step = self.by_message.get(mid)
        if step is None:
            start = self.pending_start if self.pending_start is not None else (
                self.prev_ms if self.prev_ms is not None else ms)
            step = Step(mid, min(start, ms), ms, m.model if isinstance(m.model, str) else None, figures)
            self.by_message[mid] = step
            self.steps.append(step)
        else:  # another block of the same API response: one LLM call
            step.end_ms = max(step.end_ms, ms)
            step.usage = [max(a, b) for a, b in zip(step.usage, figures, strict=True)]
        content = m.content
        if isinstance(content, str):
            step.texts.append(content)
            self.size += len(content)
        elif content:
            for b in content:
                kind = b.type
                if kind == "text":
                    if isinstance(b.text, str):
                        step.texts.append(b.text)
                        self.size += len(b.text)
                elif kind == "tool_use":
                    self._tool_use(b, mid, ms, step, report, where)
                elif kind not in ("thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"):
                    report.skip("block", where, f"unknown assistant content block {str(kind)[:40]!r}")
        if r.isApiErrorMessage:
            step.error = "\n".join(step.texts) or "API error"

    def _tool_use(self, b: Block, mid: str, ms: int, step: Step, report: LoadReport, where: str) -> None:
        if not isinstance(b.id, str) or not isinstance(b.name, str):
            report.skip("block", where, "a tool_use block without an id or a name")
            return
        if b.id in self.tools:
            return  # the same block written again
        tool = Tool(b.id, b.name, b.input, ms, mid)
        self.tools[b.id] = tool
        step.tools.append(tool)

    def _user(self, r: Record, ms: int, report: LoadReport, where: str) -> None:
        m = r.message
        if m is None:
            report.skip("record", where, "a user record without a message")
            return
        content = m.content
        origin = r.origin.get("kind") if isinstance(r.origin, dict) else None
        if isinstance(content, str):
            text = content
        else:
            texts: list[str] = []
            results = False
            for b in content or ():
                if b.type == "tool_result":
                    results = True
                    self._tool_result(b, r, ms, report, where)
                elif b.type == "text" and isinstance(b.text, str):
                    texts.append(b.text)
            if results:
                return
            text = "\n".join(texts)
        if origin == "task-notification" or text.startswith("<task-notification>"):
            self._notice(text, ms)
            return
        if r.isMeta or r.isCompactSummary or not text or text.startswith("[Request interrupted by user"):
            return
        self.steps.append(Prompt(r.uuid or f"prompt@{ms}", ms, text))
        self.size += len(text)

    def _tool_result(self, b: Block, r: Record, ms: int, report: LoadReport, where: str) -> None:
        tool = self.tools.get(b.tool_use_id) if isinstance(b.tool_use_id, str) else None
        if tool is None:
            report.skip("block", where, "a tool_result for a tool_use this file does not hold")
            return
        tool.end_ms = ms
        tool.status = ERROR if b.is_error is True else COMPLETED
        tool.output = block_text(b.content)
        if tool.output:
            self.size += len(tool.output)
        if tool.name in DELEGATION_TOOLS:
            if len(r.toolUseResult):
                try:
                    tool.agent = AGENT_RESULT.decode(r.toolUseResult)
                except msgspec.DecodeError:  # a string (an error), or a shape not seen: the text says it
                    tool.agent = None
            if tool.output:
                found = _AGENT_ID_TEXT.search(tool.output)
                tool.agent_text_id = found.group(1) if found else None

    def _notice(self, text: str, ms: int) -> None:
        tags = {k: v.strip() for k, v in _TAG.findall(text)}
        self.notices.append(Notice(tags.get("tool-use-id"), tags.get("task-id"), tags.get("status"),
                                   tags.get("result"), ms))


def _count(value: object) -> int:
    """A token count: an integer, a float taken whole, anything else 0 (huge ones are the loader's to flag)."""
    n = as_int(value)
    return n if n is not None else 0


@dataclass(slots=True)
class CostState:
    total_usd: float
    model_usage: dict


class FileLog:
    """One history file as read so far: where the next read starts, and the conversations folded from it.

    `inline` files (a session file written by 2.0.27 or before) keep each `isSidechain` chain apart, keyed by
    the uuid of its first record; every other file is one conversation (key "").
    """

    def __init__(self, path: str, inline: bool) -> None:
        self.path = path
        self.inline = inline
        self.offset = 0  # bytes consumed: the end of the last complete line
        self.head = b""  # the first bytes, to notice a file rewritten in place
        self.tail = b""  # the last bytes consumed (up to `offset`), likewise: an append leaves them as they were
        self.ino = 0
        self.seen: tuple[int, int] = (-1, -1)  # size and mtime when last read: the same, nothing to look at
        self.convs: dict[str, Conversation] = {"": Conversation()}
        self.chain_of: dict[str, str] = {}  # inline files: record uuid -> the uuid of its chain's first record
        self.chain_order: list[str] = []
        self.title: str | None = None
        self.cost: CostState | None = None
        self.lines = 0
        self.bytes_parsed = 0  # bytes this log has parsed in all (the incremental tests read it)

    @property
    def main(self) -> Conversation:
        return self.convs[""]

    @property
    def size(self) -> int:
        return sum(c.size for c in self.convs.values())

    def feed(self, data: bytes, report: LoadReport) -> int:
        """Fold the complete lines of `data` (the bytes from `offset` on) in; returns the bytes consumed."""
        end = data.rfind(b"\n") + 1
        if end == 0:
            return 0  # not one complete line yet
        chunk = data[:end] if end < len(data) else data
        where = self.path
        try:
            records = RECORDS.decode_lines(chunk)
        except (msgspec.DecodeError, RecursionError):
            records = self._one_by_one(chunk, report)
        for r in records:
            if r is not None:
                self._record(r, report, where)
        self.offset += end
        self.bytes_parsed += end
        self.tail = (self.tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
        return end

    def _one_by_one(self, chunk: bytes, report: LoadReport) -> list[Record | None]:
        """The lines of a chunk that holds a damaged one, each decoded apart: the damaged ones skipped and counted.

        A line msgspec refuses only because JavaScript wrote a lone surrogate escape (a string cut inside a
        surrogate pair) is read by Python's parser instead, the surrogate replaced by U+FFFD."""
        out: list[Record | None] = []
        for n, line in enumerate(chunk.split(b"\n")[:-1]):
            if not line.strip():
                continue
            where = f"{self.path}:{self.lines + n + 1}"
            try:
                out.append(RECORDS.decode(line))
                continue
            except RecursionError:
                report.skip("line", where, "nested too deeply")
                continue
            except msgspec.ValidationError as exc:
                if "out of range" not in str(exc):
                    report.skip("line", where, f"a field of the wrong type ({exc})"[:200])
                    continue
            except msgspec.DecodeError:
                pass
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                report.skip("line", where, "not valid UTF-8")
                continue
            try:
                value = loads_js(text)
                out.append(msgspec.convert(value, Record))
            except RecursionError:
                report.skip("line", where, "nested too deeply")
            except ValueError:
                report.skip("line", where, "not valid JSON (half-written?)")
            except msgspec.ValidationError as exc:
                report.skip("line", where, f"a field of the wrong type ({exc})"[:200])
        return out

    def _record(self, r: Record, report: LoadReport, where: str) -> None:
        self.lines += 1
        kind = r.type
        if kind == "user" or kind == "assistant":
            conv = self._conversation(r)
            conv.add(r, ms_of(r.timestamp), report, where)
        elif kind == "api-request":
            if not self.inline and (r.agentId is None or r.agentId == self.main.agent_id
                                    or self.main.agent_id is None):
                self.main.api_request(ms_of(r.timestamp))
        elif kind in IGNORED_TYPES:
            pass
        elif kind in TITLE_TYPES:
            title = r.customTitle if kind == "custom-title" else r.aiTitle if kind == "ai-title" else r.summary
            if isinstance(title, str) and title.strip() and (kind != "ai-title" or self.title is None):
                self.title = title.strip()
        elif kind == "cost-state":
            total = r.totalCostUSD
            if isinstance(total, (int, float)) and not isinstance(total, bool):
                self.cost = CostState(float(total), r.modelUsage if isinstance(r.modelUsage, dict) else {})
        elif kind is None:
            report.skip("record", where, "a line without a type")
        else:
            report.skip("record", where, f"unknown record type {kind[:40]!r}")

    def _conversation(self, r: Record) -> Conversation:
        if not self.inline or not r.isSidechain:
            return self.main
        parent = r.parentUuid
        chain = self.chain_of.get(parent) if parent else None
        if chain is None:  # the first record of a sidechain: a subagent's prompt (or Claude Code's Warmup)
            chain = r.uuid or f"chain{len(self.chain_order)}"
            self.chain_order.append(chain)
            self.convs[chain] = Conversation()
        if r.uuid:
            self.chain_of[r.uuid] = chain
        return self.convs[chain]
