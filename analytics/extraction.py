"""Turn OpenCode sessions into agent traces: the delegation logic, over complete session trees.

Two kinds of trace share one table: a `session` trace per root session (the user's own conversation) and a
`delegation` trace per task/subagent tool call. A delegation owns the turn it opened in its child session:
the user message the call created there and the assistant messages answering it. That is what its tokens,
cost, tools and nested delegations are counted from, so a child session resumed by a later call (`task_id`)
is split between its calls rather than counted twice. Storing those traces, incrementally and in batches, is
`analytics.loader`'s.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from analytics.db import SPAN_COLUMNS
from analytics.models import (
    COMPLETED,
    DELEGATION,
    ERROR,
    LLM,
    MAX_COST_USD,
    MAX_TIME_MS,
    MAX_TOKENS,
    MIN_TIME_MS,
    OUT_OF_RANGE,
    RUNNING,
    SESSION,
    TOOL,
    AgentSpan,
    AgentTrace,
    LoadReport,
    SessionInfo,
    Usage,
)
from analytics.opencode.readers import WrittenSteps
from analytics.opencode.records import (
    RawCall,
    RawMessage,
    RawSession,
    RawTool,
    child_id_from_output,
    id_time_ms,
)
from analytics.opencode.source import Source, open_source
from analytics.opencode.sqlite_store import staging

_RESULT = re.compile(r"<task_result>\n?(.*)\n?</task_result>", re.S)
_SUBAGENT = re.compile(r"^<subagent\b[^>]*>\n?(.*?)\n?</subagent>\s*$", re.S)
_METADATA = re.compile(r"\n*<task_metadata>.*?</task_metadata>\s*$", re.S)


def unwrap_output(text: str) -> str:
    """The subagent's answer without OpenCode's `<task_result>` / `<subagent …>` / metadata wrappers."""
    m = _RESULT.search(text)
    if m:
        return m.group(1).removesuffix("\n")
    m = _SUBAGENT.match(text)
    if m:
        return m.group(1)
    return _METADATA.sub("", text)


@dataclass
class _Turn:
    user: RawMessage | None
    assistants: list[RawMessage] = field(default_factory=list)

    @property
    def messages(self) -> list[RawMessage]:
        return ([self.user] if self.user else []) + self.assistants


class _Extraction:
    """The delegation logic over one set of complete session trees."""

    def __init__(self, sessions: list[RawSession], parents: dict[str, str | None] | None,
                 roots: dict[str, str] | None = None) -> None:
        self.sessions = {s.id: s for s in sessions}
        known = parents if parents is not None else {s.id: s.parent_id for s in sessions}
        self._roots = roots if roots is not None and parents is not None else root_map(known)
        # A session is a root when its parent is unknown, or when its parent links run in a cycle (damage):
        # root_map then names the session where the walk closed the cycle.
        self.parent_of = {sid: p if p in known and self._roots.get(sid) != sid else None
                          for sid, p in known.items()}
        self.turn_of: dict[str, str | None] = {}  # message id -> the user message id of its turn
        self.turns: dict[str, _Turn] = {}  # user message id -> turn
        self.lead: dict[str, _Turn] = {}  # session id -> assistant messages before any user message
        for s in sessions:
            self._split_turns(s)

    def root_of(self, sid: str) -> str:
        return self._roots.get(sid, sid)

    def _split_turns(self, s: RawSession) -> None:
        # Every turn exists before any answer is placed: an answer stamped before its own question (a clock
        # stepped back) sorts before it, and still joins its turn by parentID.
        users = set()
        for m in s.messages:
            if m.role == "user":
                users.add(m.id)
                self.turns[m.id] = _Turn(m)
                self.turn_of[m.id] = m.id
        last: str | None = None
        for m in s.messages:
            if m.role == "user":
                last = m.id
            elif m.role == "assistant":
                u = m.parent_id if m.parent_id in users else last
                self.turn_of[m.id] = u
                turn = self.turns[u] if u is not None else self.lead.setdefault(s.id, _Turn(None))
                turn.assistants.append(m)

    def _children(self, sid: str) -> list[RawSession]:
        return [s for s in self.sessions.values() if s.parent_id == sid]

    def resolve_children(self, calls: list[tuple[RawSession, RawMessage, RawCall]]) -> dict[str, str | None]:
        """The child session of every call: metadata, resume id, result text, then the title heuristic."""
        child: dict[str, str | None] = {}
        claimed: set[str] = set()
        pending = []
        for s, _m, c in calls:
            cid = (c.child_session_id or _str(c.input.get("task_id")) or _str(c.input.get("session_id"))
                   or child_id_from_output(c.output))
            child[c.trace_id] = cid
            if cid:
                claimed.add(cid)
            else:
                pending.append((s, c))
        for s, c in pending:
            desc = _str(c.input.get("description")) or ""
            agent = _agent(c.input) or ""
            titles = {f"{desc} (@{agent} subagent)", desc}
            candidates = sorted(
                (x for x in self._children(s.id) if x.id not in claimed and x.title in titles),
                key=lambda x: (abs(x.created_ms - c.created_ms), x.id),
            )
            if candidates:
                child[c.trace_id] = candidates[0].id
                claimed.add(candidates[0].id)
        return child

    def owners(self, calls: list[RawCall], child: dict[str, str | None]) -> dict[str, list[_Turn]]:
        """The turns each call owns in its child session (a resumed session has one turn per call)."""
        by_child: dict[str, list[RawCall]] = {}
        for c in calls:
            cid = child.get(c.trace_id)
            if cid in self.sessions:
                by_child.setdefault(cid, []).append(c)
        owned: dict[str, list[_Turn]] = {c.trace_id: [] for c in calls}
        for cid, cs in by_child.items():
            # Calls into one child session run one after another (a resume needs the previous result), so a
            # turn belongs to the first call that had not ended when the turn began. Start times cannot
            # decide it: 1.1.x writes the task part after the child's turn has already started.
            cs.sort(key=lambda c: (c.start_ms if c.start_ms is not None else c.created_ms, c.trace_id))
            lead = self.lead.get(cid)
            if lead is not None:
                owned[cs[0].trace_id].append(lead)
            for m in self.sessions[cid].messages:
                if m.role != "user":
                    continue
                owner = next((c for c in cs if c.end_ms is None or c.status == "running"
                              or c.end_ms >= m.created_ms), None)
                if owner is not None:
                    owned[owner.trace_id].append(self.turns[m.id])
        return owned


def _str(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def _agent(inp: dict) -> str | None:
    return _str(inp.get("subagent_type")) or _str(inp.get("agent"))


def _usage(messages: list[RawMessage]) -> Usage:
    """The sum of the assistant messages' usage, in their order (as `Usage.__add__` would, without a Usage
    per message)."""
    tin = tout = treason = tread = twrite = 0
    cost = 0.0
    for m in messages:
        if m.role == "assistant":
            a, b, c, d, e, f = m.usage
            tin, tout, treason, tread, twrite, cost = tin + a, tout + b, treason + c, tread + d, twrite + e, cost + f
    return Usage(tin, tout, treason, tread, twrite, cost)


def _unpriced(messages: list[RawMessage]) -> int:
    """How many of the LLM calls (assistant messages) have no price: their cost is unknown, not 0."""
    return sum(1 for m in messages if not m.priced and m.role == "assistant")


def _tools(messages: list[RawMessage]) -> tuple[str, ...]:
    return tuple(sorted({t for m in messages for t in m.tools}))


def _model(messages: list[RawMessage]) -> tuple[str | None, str | None]:
    for m in messages:
        if m.role == "assistant" and m.model:
            return m.model, m.provider
    return None, None


def _last_text(messages: list[RawMessage]) -> str | None:
    for m in reversed(messages):
        if m.role == "assistant" and m.texts:
            return m.texts[-1]
    return None


def _session_status(messages: list[RawMessage]) -> tuple[str, int | None]:
    assistants = [m for m in messages if m.role == "assistant"]
    if not assistants:
        return RUNNING, None
    last = assistants[-1]
    ended = max((m.completed_ms for m in assistants if m.completed_ms), default=None)
    if last.error:
        return ERROR, ended or last.created_ms
    if last.completed_ms is None:
        return RUNNING, None
    return COMPLETED, ended


def build_traces(
    sessions: list[RawSession],
    fill_texts: Callable[[dict[str, list[RawMessage]]], None],
    parents: dict[str, str | None] | None = None,
    report: LoadReport | None = None,
    roots: dict[str, str] | None = None,
) -> tuple[list[AgentTrace], list[SessionInfo], list[AgentSpan]]:
    """Traces, session records and the traces' steps for complete session trees (a root with all its descendants).

    `parents` are every session's parent in the history (the loader's index), `roots` their `root_map` if the
    caller has it already. Figures the store cannot hold (times outside 1970..9999, token counts outside
    0..10**15, a cost that is not finite) are replaced and counted in `report`.
    """
    report = report if report is not None else LoadReport()
    for s in sessions:
        if not (MIN_TIME_MS <= s.created_ms <= MAX_TIME_MS and MIN_TIME_MS <= s.updated_ms <= MAX_TIME_MS):
            _repair_session_times(s, report)
        for m in s.messages:
            if not _usage_fits(m.usage):
                m.usage = _repaired_usage(m.id, m.usage, report)
    x = _Extraction(sessions, parents, roots)
    calls = _unique_calls(sessions, {s.id for s in sessions if x.parent_of.get(s.id) is None}, report)
    child = x.resolve_children(calls)
    owned = x.owners([c for _s, _m, c in calls], child)

    # Texts are fetched only where they become a prompt or an output.
    need: dict[str, list[RawMessage]] = {}
    roots = [s for s in sessions if x.parent_of.get(s.id) is None]
    for r in roots:
        first_user = next((m for m in r.messages if m.role == "user"), None)
        last_turn = next((x.turns[m.id] for m in reversed(r.messages) if m.role == "user"), None)
        need[r.id] = ([first_user] if first_user else []) + (last_turn.assistants if last_turn else [])
    for _s, _m, c in calls:
        if (c.truncated or c.background) and c.status == COMPLETED and owned[c.trace_id]:
            cid = child[c.trace_id]
            need.setdefault(cid, []).extend(owned[c.trace_id][-1].assistants)  # type: ignore[arg-type]
    fill_texts(need)

    traces: list[AgentTrace] = []
    spans: list[AgentSpan] = []
    for r in roots:
        first_user = next((m for m in r.messages if m.role == "user"), None)
        agent = r.agent or (first_user.agent if first_user else None) or next(
            (m.agent for m in r.messages if m.role == "assistant" and m.agent), None)
        usage = _usage(r.messages)
        status, ended = _session_status(r.messages)
        model, provider = _model(r.messages)
        traces.append(AgentTrace(
            trace_id=r.id, kind=SESSION, session_id=r.id, root_session_id=r.id, child_session_id=r.id,
            parent_trace_id=None, parent_agent="user", subagent_type=agent or "unknown", description=r.title,
            prompt_input="\n".join(first_user.texts or []) if first_user else "",
            prompt_output=_last_text(r.messages), status=status, started_at=r.created_ms, ended_at=ended,
            duration_ms=ended - r.created_ms if ended is not None else None,
            tokens_in=usage.input, tokens_out=usage.output, tokens_reasoning=usage.reasoning,
            tokens_cache_read=usage.cache_read, tokens_cache_write=usage.cache_write, cost_usd=usage.cost,
            tools_used=_tools(r.messages), model=model, provider=provider, depth=0, source=r.source,
            unpriced_calls=_unpriced(r.messages),
        ))
        spans.extend(_spans(r.id, r.id, r.messages))

    owner_of_turn = {id(t): trace_id for trace_id, ts in owned.items() for t in ts}
    parent_of_trace: dict[str, str | None] = {}
    for s, m, c in calls:
        root = x.root_of(s.id)
        if s.id == root:
            parent = root
        else:
            u = x.turn_of.get(m.id)
            turn = x.turns.get(u) if u else x.lead.get(s.id)
            parent = owner_of_turn.get(id(turn), root) if turn is not None else root
        parent_of_trace[c.trace_id] = parent
    depth = _depths(parent_of_trace, {r.id for r in roots}, x.root_of, {c.trace_id: s.id for s, _m, c in calls})

    for s, m, c in calls:
        turns = owned[c.trace_id]
        msgs = [msg for t in turns for msg in t.messages]
        usage = _usage(msgs)
        model, provider = _model(msgs)
        cid = child[c.trace_id]
        if c.status == COMPLETED:
            out = (_last_text(turns[-1].assistants) if (c.truncated or c.background) and turns else None) or (
                unwrap_output(c.output) if c.output is not None else None)
        elif c.status == ERROR:
            out = c.error or (unwrap_output(c.output) if c.output else None)
        else:
            out = None
        start = c.start_ms if c.start_ms is not None else c.created_ms
        end = c.end_ms if c.status != RUNNING else None
        status = c.status
        if c.background and msgs:  # the call returned at once: the child's own turn is the run
            status, end = _session_status(msgs)
            start = msgs[0].created_ms
            if status != COMPLETED:
                out = next((m.error for m in reversed(msgs) if m.role == "assistant" and m.error), None)
        child_session = x.sessions.get(cid) if cid else None
        traces.append(AgentTrace(
            trace_id=c.trace_id, kind=DELEGATION, session_id=s.id, root_session_id=x.root_of(s.id),
            child_session_id=cid, parent_trace_id=parent_of_trace[c.trace_id], parent_agent=m.agent,
            subagent_type=_agent(c.input) or (child_session.agent if child_session else None) or "unknown",
            description=_str(c.input.get("description")),
            prompt_input=c.input.get("prompt") if isinstance(c.input.get("prompt"), str) else "",
            prompt_output=out, status=status, started_at=start, ended_at=end,
            duration_ms=end - start if end is not None else None,
            tokens_in=usage.input, tokens_out=usage.output, tokens_reasoning=usage.reasoning,
            tokens_cache_read=usage.cache_read, tokens_cache_write=usage.cache_write, cost_usd=usage.cost,
            tools_used=_tools(msgs), model=model, provider=provider, depth=depth[c.trace_id], source=s.source,
            unpriced_calls=_unpriced(msgs),
        ))
        spans.extend(_spans(c.trace_id, x.root_of(s.id), msgs))

    infos = [
        SessionInfo(
            session_id=s.id, root_session_id=x.root_of(s.id), parent_session_id=x.parent_of.get(s.id),
            title=s.title, directory=s.directory, project_id=s.project_id,
            agent=s.agent or next((m.agent for m in s.messages if m.agent), None), version=s.version,
            created_at=s.created_ms, updated_at=s.updated_ms, store=s.store, source=s.source,
        )
        for s in sessions
    ]
    # A span's figures are its message's, which fit already (`_repaired_usage`): only its times are checked
    # here, and `_checked` does the rest for the few that do not fit.
    return [_checked(t, report) for t in traces], infos, [
        sp if MIN_TIME_MS <= sp[8] <= MAX_TIME_MS and (sp[9] is None or MIN_TIME_MS <= sp[9] <= MAX_TIME_MS)
        else _checked(sp, report) for sp in _unique_spans(spans, report)]


def _unique_spans(spans: list[AgentSpan], report: LoadReport) -> list[AgentSpan]:
    """One span per id (a damaged store may repeat one): the first wins, but an LLM call always wins over a tool
    call with its id (a part that took a message's id), so no tool call is left under a tool call."""
    if len({sp[0] for sp in spans}) == len(spans):  # as in any store that is not damaged
        return spans
    llm_ids = {sp.span_id for sp in spans if sp.kind == LLM}
    out: dict[str, AgentSpan] = {}
    for sp in spans:
        if sp.span_id in out:
            continue
        if sp.kind == TOOL and sp.span_id in llm_ids:
            report.skip("part", sp.span_id, "a tool call with the id of an LLM call; left out")
            continue
        out[sp.span_id] = sp
    return list(out.values())


def _unique_calls(sessions: list[RawSession], roots: set[str],
                  report: LoadReport) -> list[tuple[RawSession, RawMessage, RawCall]]:
    """Every task call with its session and message, but a call whose id is already a trace's (a root
    session's, or an earlier call's: a damaged store) is left out and counted; two traces with one id
    aborted the whole write."""
    taken = set(roots)
    out = []
    for s in sessions:
        for m in s.messages:
            for c in m.calls:
                if c.trace_id in taken:
                    report.skip("part", c.trace_id, "a task call with the id of another trace; left out")
                    continue
                taken.add(c.trace_id)
                out.append((s, m, c))
    return out


def _spans(trace_id: str, root: str, messages: list[RawMessage]) -> list[AgentSpan]:
    """The steps of a trace's own turns: each assistant message is an LLM call, with its tool calls under it.

    Built as plain tuples in `AgentSpan`'s field order (`_span`): keywords cost several times as much, over the
    hundreds of thousands of steps of a long history."""
    out: list[AgentSpan] = []
    add = out.append
    for m in messages:
        if m.role != "assistant":
            continue
        mid, created, end, u = m.id, m.created_ms, m.completed_ms, m.usage
        # span_id, trace_id, root_session_id, parent_span_id, kind, name, title, status,
        # started_at, ended_at, duration_ms, tokens_in, tokens_out, tokens_reasoning, tokens_cache_read,
        # tokens_cache_write, cost_usd, input, output
        add(_span(AgentSpan, (
            mid, trace_id, root, None, LLM, m.model or "unknown", m.provider,
            ERROR if m.error else COMPLETED if end else RUNNING,
            created, end, end - created if end is not None else None,
            u.input, u.output, u.reasoning, u.cache_read, u.cache_write, u.cost if m.priced else None, None,
            m.error,
        )))
        for call in m.tool_calls:
            add(_tool_span(call, trace_id, root, mid, created))
    return out


def _tool_span(call: RawTool, trace_id: str, root: str, parent: str, created: int) -> AgentSpan:
    """A tool call as a step under the LLM call that made it (created then: the start of a call without one)."""
    span_id, name, title, status, start, stop, inp, output = call
    if start is None:
        start = created
    if status == RUNNING:
        stop = None
    return _span(AgentSpan, (span_id, trace_id, root, parent, TOOL, name, title, status,
                             start, stop, stop - start if stop is not None else None, 0, 0, 0, 0, 0, 0.0, inp, output))


_span = tuple.__new__  # a NamedTuple from a tuple in its field order, without the keyword handling


def settle(traces: list[AgentTrace], spans: list[AgentSpan], written: list[WrittenSteps],
           report: LoadReport) -> tuple[list[AgentTrace], list[AgentSpan]]:
    """The traces and Python's steps of a batch, with what its streamed inserts told: each trace's tool names
    from the steps SQL wrote, and the tool calls read the careful way made into steps (their times checked, one
    step per id: `_unique_spans`). What the careful reading skipped goes to `report`."""
    extra, tools = [], {}
    for w in written:
        report.merge(w.report)
        for call, trace_id, root, parent, created in w.calls:
            sp = _tool_span(call, trace_id, root, parent, created)
            extra.append(sp if _in_time(sp[8]) and (sp[9] is None or _in_time(sp[9])) else _checked(sp, report))
        for trace_id, names in w.tools.items():
            tools.setdefault(trace_id, set()).update(names)
    if extra:  # an LLM call wins over a tool call with its id, wherever each comes (`_unique_spans`)
        llm_ids = {sp[0] for sp in spans if sp[4] == LLM}
        for sp in extra:
            if sp[0] in llm_ids:
                report.skip("part", sp[0], "a tool call with the id of an LLM call; left out")
        spans = _unique_spans(spans + [sp for sp in extra if sp[0] not in llm_ids], report)
    out = []
    for t in traces:
        names = tools.get(t.trace_id)
        if names and not names <= set(t.tools_used):
            t = replace(t, tools_used=tuple(sorted(names.union(t.tools_used))))
        out.append(t)
    return out, spans


def _depths(parent_of_trace: dict[str, str | None], roots: set[str], root_of: Callable[[str], str],
            session_of: dict[str, str]) -> dict[str, int]:
    """The depth of every delegation, walking parent links iteratively.

    Damaged data can link calls into a cycle (two calls each owning the other's turn): the call where the walk
    closes the cycle is hung under its root session instead, in `parent_of_trace`, so the traces form a tree.
    """
    depth: dict[str, int] = dict.fromkeys(roots, 0)
    for tid in parent_of_trace:
        chain: list[str] = []
        on_chain: set[str] = set()
        cur: str | None = tid
        while cur is not None and cur not in depth:
            if cur in on_chain:  # a cycle: cut it at the call that closes it
                root = root_of(session_of[cur])
                parent_of_trace[cur] = root
                depth.setdefault(root, 0)
                chain = chain[:chain.index(cur) + 1]
                cur = root
                break
            chain.append(cur)
            on_chain.add(cur)
            cur = parent_of_trace.get(cur)
        d = depth[cur] if cur is not None else 0
        for t in reversed(chain):
            d += 1
            depth[t] = d
    return depth


def _in_time(ms: int) -> bool:
    return MIN_TIME_MS <= ms <= MAX_TIME_MS


def _time_from_id(id_: str, ref_ms: int | None) -> int:
    """The creation time encoded in an OpenCode id, near `ref_ms` (now when unknown); 0 when it has none."""
    ref = ref_ms if ref_ms is not None and _in_time(ref_ms) else int(time.time() * 1000)
    t = id_time_ms(id_, ref)
    return t if t is not None and _in_time(t) else MIN_TIME_MS


def _repair_session_times(s: RawSession, report: LoadReport) -> None:
    """A session time outside 1970..9999 is replaced by the time in the session id, and counted."""
    if not _in_time(s.created_ms):
        report.skip("time", s.id, f"session time {s.created_ms} is out of range; the time in its id is used")
        s.created_ms = _time_from_id(s.id, s.updated_ms)
    if not _in_time(s.updated_ms):
        report.skip("time", s.id, f"session time {s.updated_ms} is out of range; its creation time is used")
        s.updated_ms = s.created_ms


_TOKEN_FIELDS = ("tokens_in", "tokens_out", "tokens_reasoning", "tokens_cache_read", "tokens_cache_write")


Checked = TypeVar("Checked", AgentTrace, AgentSpan)


def _usage_fits(u: Usage) -> bool:
    return (0 <= u.input <= MAX_TOKENS and 0 <= u.output <= MAX_TOKENS and 0 <= u.reasoning <= MAX_TOKENS
            and 0 <= u.cache_read <= MAX_TOKENS and 0 <= u.cache_write <= MAX_TOKENS and 0 <= u.cost <= MAX_COST_USD)


def _repaired_usage(mid: str, u: Usage, report: LoadReport) -> Usage:
    """One message's usage with each figure outside 0..10**15 (a cost outside 0..10**12, or not a number)
    counted as 0, and counted in the report: before it is summed into a trace, where a negative count would
    silently lower the total, and so that the message's LLM span and its trace agree."""
    figures = {}
    for name in ("input", "output", "reasoning", "cache_read", "cache_write"):
        v = getattr(u, name)
        if not 0 <= v <= MAX_TOKENS:
            report.skip("tokens", mid, f"{name} tokens {v if v != OUT_OF_RANGE else 'overflow'} are out of range;"
                        " counted as 0")
            v = 0
        figures[name] = v
    cost = u.cost
    if not 0 <= cost <= MAX_COST_USD:
        report.skip("cost", mid, f"cost {cost} is out of range; counted as 0")
        cost = 0.0
    return Usage(cost=cost, **figures)


def _checked(t: Checked, report: LoadReport) -> Checked:
    """The trace (or span) itself when every figure fits the store, else a copy with the damaged ones replaced.

    Each message's usage was checked already (`_repaired_usage`); a trace's sum can still be too large."""
    if (MIN_TIME_MS <= t.started_at <= MAX_TIME_MS
            and (t.ended_at is None or MIN_TIME_MS <= t.ended_at <= MAX_TIME_MS)
            and 0 <= t.tokens_in <= MAX_TOKENS and 0 <= t.tokens_out <= MAX_TOKENS
            and 0 <= t.tokens_reasoning <= MAX_TOKENS and 0 <= t.tokens_cache_read <= MAX_TOKENS
            and 0 <= t.tokens_cache_write <= MAX_TOKENS and (t.cost_usd is None or 0 <= t.cost_usd <= MAX_COST_USD)):
        return t
    rid = t.span_id if isinstance(t, AgentSpan) else t.trace_id
    changes: dict[str, object] = {}
    end = t.ended_at
    if end is not None and not _in_time(end):
        report.skip("time", rid, f"end time {end} is out of range; taken as unknown")
        end = changes["ended_at"] = changes["duration_ms"] = None
    if not _in_time(t.started_at):
        report.skip("time", rid, f"start time {t.started_at} is out of range; the time in its id is used")
        changes["started_at"] = _time_from_id(rid, end)
        changes["duration_ms"] = None
    for name in _TOKEN_FIELDS:
        v = getattr(t, name)
        if not 0 <= v <= MAX_TOKENS:
            report.skip("tokens", rid, f"{name} {v if v != OUT_OF_RANGE else 'overflow'} is out of range;"
                        " counted as 0")
            changes[name] = 0
    if t.cost_usd is not None and not 0 <= t.cost_usd <= MAX_COST_USD:
        report.skip("cost", rid, f"cost {t.cost_usd} is out of range; counted as 0")
        changes["cost_usd"] = 0.0
    if isinstance(t, AgentSpan):
        return t._replace(**changes)
    return replace(t, **changes)  # type: ignore[arg-type]


def extract_traces(source: str | Path | Source | None = None,
                   session_ids: Collection[str] | None = None,
                   report: LoadReport | None = None) -> list[AgentTrace]:
    """Every trace of the OpenCode store at `source` (see `open_source`), or of these sessions' trees."""
    return extract(source, session_ids, report)[0]


def extract(source: str | Path | Source | None = None, session_ids: Collection[str] | None = None,
            report: LoadReport | None = None) -> tuple[list[AgentTrace], list[SessionInfo], list[AgentSpan]]:
    """Every trace, session record and step of the OpenCode store at `source` (or of these sessions' trees), as
    one batch of a load stores them, without a store: the steps a reader streams go into a table of DuckDB's
    memory and are read back as records."""
    src = source if isinstance(source, Source) else open_source(source)
    report = report if report is not None else LoadReport()
    with no_cyclic_gc(), src.reading():
        index = src.index(report)
        parents = {sid: st.parent_id for sid, st in index.items()}
        ids = None if session_ids is None else tree_closure(parents, session_ids)
        sessions = src.read(ids, report)
        traces, infos, spans = build_traces(sessions, lambda need: src.fill_texts(need, report), parents, report)
        streamed = src.tool_spans(spans)
        if not streamed:
            return traces, infos, spans
        columns = ", ".join(f"{name} {typ}" for name, typ in SPAN_COLUMNS)
        select = ", ".join(f"epoch_ms({name})" if typ == "TIMESTAMP" else name for name, typ in SPAN_COLUMNS)
        with staging().cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE steps ({columns})")
            taken = {sp.span_id for sp in spans}
            traces, spans = settle(traces, spans, [s.insert(cur, "steps", taken) for s in streamed], report)
            spans += [_span(AgentSpan, row) for row in cur.execute(f"SELECT {select} FROM steps").fetchall()]
    return traces, infos, spans


def root_map(parents: dict[str, str | None]) -> dict[str, str]:
    """The root session of every session: its ancestor with no parent among `parents` (a session whose parent
    is missing is a root). Each chain is walked once; a cycle stops the walk where it closes."""
    roots: dict[str, str] = {}
    for sid in parents:
        chain, cur = [], sid
        while cur not in roots and (p := parents.get(cur)) is not None and p in parents and cur not in chain:
            chain.append(cur)
            cur = p
        root = roots.get(cur, cur)
        roots[cur] = root
        for c in chain:
            roots[c] = root
    return roots


def tree_closure(parents: dict[str, str | None], ids: Collection[str],
                 roots: dict[str, str] | None = None) -> set[str]:
    """Every session in the trees that hold these sessions (a delegation needs its whole tree)."""
    roots = root_map(parents) if roots is None else roots
    children: dict[str, list[str]] = {}
    for sid, p in parents.items():
        if p is not None and p in parents:
            children.setdefault(p, []).append(sid)
    out: set[str] = set()
    stack = [roots[i] for i in ids if i in parents]
    while stack:
        sid = stack.pop()
        if sid not in out:
            out.add(sid)
            stack.extend(children.get(sid, ()))
    return out


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a load allocates its records.

    A load (or an analysis) makes up to a million small objects and no reference cycles; the collector would
    walk them all again and again, holding the GIL for hundreds of milliseconds at a time (the dashboard's event loop
    stalls meanwhile) and slowing the load itself. Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
