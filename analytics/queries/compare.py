"""Two runs side by side: their delegation trees aligned row by row, the differences per row, the texts diffed.

"Did my prompt change, my new model or my new subagent make this better or worse?" Either side is a session
(its root trace) or one delegation with everything it delegated. The two roots form the first pair; below a
pair, calls are matched by agent and description (so a pair has the same chain of agents from the roots), then
by order among equals: the second `coder — Code` of one side goes with the second of the other. Of the calls
left over, the same agent's at the same place (between the same two calls paired) pair too: the same call with
a reworded description, which the pair says (`description_change`). A call found on one side only is a pair
with nothing on the other side (added on the right, removed from the left), and so is everything under it.

Differences are right − left. Each row's figures are the call's own (its LLM and tool calls from `agent_spans`);
the totals include every descendant. The texts of two calls are diffed by `analytics/word_diff.py`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from analytics import format as fmt
from analytics.db import TraceStore
from analytics.errors import AgentTracesError
from analytics.models import COMPLETED, ERROR, RUNNING
from analytics.queries import trace_queries as q

FIGURES = ("duration_ms", "tokens_in", "tokens_out", "cost_usd", "llm_calls", "tool_calls")
DELTA_FIGURES = ("duration_ms", "tokens_in", "tokens_out", "cost_usd")  # the CLI's JSON delta of each pair
STATUS_RANK = {COMPLETED: 0, RUNNING: 1, ERROR: 2}  # a worse status ranks higher


@dataclass(frozen=True)
class ToolUse:
    """How one trace used one tool: calls, of them failed, and their summed time."""

    calls: int = 0
    errors: int = 0
    ms: int = 0


@dataclass(frozen=True)
class Figures:
    """What one side of a row (or of the totals) measures. `duration_ms` is None while it runs."""

    duration_ms: int | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    status: str
    llm_calls: int
    tool_calls: int
    unpriced_calls: int = 0  # LLM calls with no price: `cost_usd` is the known part, and no cost delta is made

    def value(self, name: str) -> float | None:
        return getattr(self, name)

    def unpriced(self, name: str) -> int:
        """How many calls the figure lacks (the cost's unpriced calls; 0 for every other figure)."""
        return self.unpriced_calls if name == "cost_usd" else 0


@dataclass(frozen=True)
class Pair:
    """One aligned row: a call on the left, on the right, or on both (matched)."""

    left: q.TraceSummary | None
    right: q.TraceSummary | None
    depth: int  # 0: the two roots
    left_figures: Figures | None
    right_figures: Figures | None
    left_tools: dict[str, ToolUse] = field(default_factory=dict)
    right_tools: dict[str, ToolUse] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """matched, added (right only) or removed (left only)."""
        if self.left is not None and self.right is not None:
            return "matched"
        return "added" if self.right is not None else "removed"

    @property
    def label(self) -> str:
        """agent — description; for the two roots, both when they differ (two delegations compared)."""
        labels = [_label(t, self.depth) for t in (self.left, self.right) if t is not None]
        return labels[0] if len(set(labels)) == 1 else " ⇄ ".join(labels)

    def delta(self, name: str) -> float | None:
        return delta(self.left_figures, self.right_figures, name)

    @property
    def description_change(self) -> tuple[str, str] | None:
        """(left, right) descriptions of a matched pair of delegations whose description differs, else None."""
        if self.left is None or self.right is None or self.depth == 0:
            return None
        a, b = self.left.description or "", self.right.description or ""
        return (a, b) if a != b else None

    def tool_changes(self) -> list[ToolChange]:
        """The tools whose use differs between the two sides, by name."""
        return tool_changes(self.left_tools, self.right_tools)


@dataclass(frozen=True)
class ToolChange:
    """One tool used differently by the two sides of a row: "grep: 2 → 8 calls"."""

    tool: str
    left: ToolUse
    right: ToolUse

    def text(self) -> str:
        parts = [f"{self.left.calls} → {self.right.calls} call{'s' * (self.right.calls != 1)}"]
        if self.left.errors or self.right.errors:
            parts.append(f"{self.left.errors} → {self.right.errors} failed")
        parts.append(f"{fmt.duration(self.left.ms)} → {fmt.duration(self.right.ms)}")
        return f"{self.tool}: " + ", ".join(parts)


@dataclass(frozen=True)
class Comparison:
    """Two runs aligned: the pairs in tree order (the roots first) and the totals with descendants."""

    left_id: str
    right_id: str
    pairs: list[Pair]
    left_total: Figures
    right_total: Figures
    left_start: int
    right_start: int
    left_span: int  # ms from the side's start to its latest end (or now, while it runs)
    right_span: int

    def total_delta(self, name: str) -> float | None:
        return delta(self.left_total, self.right_total, name)

    @property
    def counts(self) -> dict[str, int]:
        out = {"matched": 0, "added": 0, "removed": 0}
        for p in self.pairs:
            out[p.kind] += 1
        return out

    def to_json(self) -> dict:
        """The comparison as the CLI's --json prints it and the File menu exports it."""
        return {
            "left": self.left_id,
            "right": self.right_id,
            "pairs": [{
                "left": p.left.trace_id if p.left else None,
                "right": p.right.trace_id if p.right else None,
                "kind": p.kind,
                "depth": p.depth,
                "label": p.label,
                "description": dict(zip(("left", "right"), p.description_change, strict=True))
                if p.description_change else None,
                "left_figures": _figures_json(p.left_figures),
                "right_figures": _figures_json(p.right_figures),
                "delta": {name: p.delta(name) for name in DELTA_FIGURES},
                "tools": [{"tool": c.tool, "left_calls": c.left.calls, "right_calls": c.right.calls,
                           "left_errors": c.left.errors, "right_errors": c.right.errors,
                           "left_ms": c.left.ms, "right_ms": c.right.ms} for c in p.tool_changes()],
            } for p in self.pairs],
            "totals": {
                "left": _figures_json(self.left_total),
                "right": _figures_json(self.right_total),
                "delta": {name: self.total_delta(name) for name in FIGURES},
                **self.counts,
            },
        }


def _figures_json(f: Figures | None) -> dict | None:
    return None if f is None else {name: getattr(f, name) for name in (*FIGURES, "status", "unpriced_calls")}


def _label(t: q.TraceSummary, depth: int) -> str:
    if t.kind == "session" and depth == 0 or not t.description:
        return t.subagent_type
    return f"{t.subagent_type} — {t.description}"


def delta(left: Figures | None, right: Figures | None, name: str) -> float | None:
    """right − left of one figure; None when a side is missing or has no value (a duration while it runs, a cost
    with unpriced calls)."""
    if left is None or right is None or left.unpriced(name) or right.unpriced(name):
        return None
    a, b = left.value(name), right.value(name)
    if a is None or b is None:
        return None
    d = b - a
    return round(d, 10) if isinstance(d, float) else d


def tool_changes(left: dict[str, ToolUse], right: dict[str, ToolUse]) -> list[ToolChange]:
    empty = ToolUse()
    return [ToolChange(name, left.get(name, empty), right.get(name, empty))
            for name in sorted(set(left) | set(right))
            if left.get(name, empty) != right.get(name, empty)]


# -- reading -----------------------------------------------------------------------------------------------


def resolve_side(store: TraceStore, ident: str) -> str:
    """The trace id a comparison side names: a trace id, or a session id (a root session: its session trace;
    a child session: the delegation that opened it). Unique prefixes are enough."""
    tid = q.resolve_trace_id(store, ident)
    if tid is not None:
        return tid
    sid = q.resolve_session_id(store, ident)
    if sid is not None:
        row = store.cursor().execute(
            "SELECT trace_id FROM agent_traces WHERE trace_id = ? OR child_session_id = ?"
            " ORDER BY kind = 'session' DESC, started_at, trace_id LIMIT 1", [sid, sid]).fetchone()
        if row:
            return row[0]
    q.check_unambiguous(store, "trace", ident)
    q.check_unambiguous(store, "session", ident)
    raise AgentTracesError(f"No trace or session matches {ident!r}; `agent-traces sessions` and "
                           "`agent-traces tree SESSION` show the ids.")


def subtree(store: TraceStore, trace_id: str) -> q.TraceNode:
    """The trace with everything it delegated, totals included."""
    row = store.cursor().execute("SELECT root_session_id FROM agent_traces WHERE trace_id = ?",
                                 [trace_id]).fetchone()
    if row is None:
        raise AgentTracesError(f"No trace {trace_id!r} in the store.")
    for root in q.build_tree(q.get_traces_by_session(store, row[0])):
        for node in root.walk():
            if node.trace.trace_id == trace_id:
                return node
    raise AgentTracesError(f"No trace {trace_id!r} in the store.")


def tool_use(store: TraceStore, trace_ids: list[str]) -> tuple[dict[str, int], dict[str, dict[str, ToolUse]]]:
    """Per trace: its LLM calls, and per tool its calls, failures and time (from `agent_spans`)."""
    rows = store.cursor().execute(
        "SELECT trace_id, kind, name, count(*), count(*) FILTER (WHERE status = 'error'),"
        " coalesce(sum(duration_ms), 0) FROM agent_spans WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"
        " GROUP BY ALL", [trace_ids]).fetchall()
    llm: dict[str, int] = {}
    tools: dict[str, dict[str, ToolUse]] = {}
    for trace_id, kind, name, calls, errors, ms in rows:
        if kind == "llm":
            llm[trace_id] = llm.get(trace_id, 0) + calls
        else:
            tools.setdefault(trace_id, {})[name] = ToolUse(calls, errors, int(ms))
    return llm, tools


def compare(store: TraceStore, left: str, right: str, now_ms: int | None = None) -> Comparison:
    """Compare two runs named by trace or session id (see `resolve_side`)."""
    left_node, right_node = subtree(store, resolve_side(store, left)), subtree(store, resolve_side(store, right))
    ids = [n.trace.trace_id for side in (left_node, right_node) for n in side.walk()]
    llm, tools = tool_use(store, ids)
    return align(left_node, right_node, llm, tools, now_ms)


def align(left: q.TraceNode, right: q.TraceNode, llm: dict[str, int], tools: dict[str, dict[str, ToolUse]],
          now_ms: int | None = None) -> Comparison:
    """The two trees row by row (see the module's docstring), with their step counts."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)

    def figures(t: q.TraceSummary) -> Figures:
        used = tools.get(t.trace_id, {})
        return Figures(t.duration_ms if t.status != RUNNING else None, t.tokens_in, t.tokens_out, t.cost_usd,
                       t.status, llm.get(t.trace_id, 0), sum(u.calls for u in used.values()), t.unpriced_calls)

    pairs: list[Pair] = []
    # rows in tree order, from a stack rather than recursion (a chain may be deeper than recursion goes)
    stack: list[tuple[q.TraceNode | None, q.TraceNode | None, int]] = [(left, right, 0)]
    while stack:
        a, b, depth = stack.pop()
        if a is not None and b is not None:
            pairs.append(Pair(a.trace, b.trace, depth, figures(a.trace), figures(b.trace),
                              tools.get(a.trace.trace_id, {}), tools.get(b.trace.trace_id, {})))
            below = match_children(a.children, b.children)
        else:
            node = a if a is not None else b
            t = node.trace  # type: ignore[union-attr]
            f, used = figures(t), tools.get(t.trace_id, {})
            pairs.append(Pair(t, None, depth, f, None, used, {}) if a is not None
                         else Pair(None, t, depth, None, f, {}, used))
            below = [(c, None) if a is not None else (None, c) for c in node.children]  # type: ignore[union-attr]
        stack.extend((x, y, depth + 1) for x, y in reversed(below))
    return Comparison(left.trace.trace_id, right.trace.trace_id, pairs, total(left, llm, tools),
                      total(right, llm, tools), left.trace.started_at, right.trace.started_at,
                      extent(left, now), extent(right, now))


def _key(n: q.TraceNode) -> tuple[str, str]:
    return n.trace.subagent_type, n.trace.description or ""


def match_children(left: list[q.TraceNode], right: list[q.TraceNode]
                   ) -> list[tuple[q.TraceNode | None, q.TraceNode | None]]:
    """Children of a matched pair, paired by (agent, description) and then order among equals; then, of the
    calls left over on both sides, the same agent's at the same place (between the same two calls paired so
    far, in order): a call whose description was reworded. Rows in the left's order, each right-only child
    after the row of the right child before it (or first). Linear in the number of children."""
    left_partner: dict[int, int] = {}  # left index -> right index
    right_partner: dict[int, int] = {}
    waiting: dict[tuple[str, str], deque[int]] = {}
    for j, n in enumerate(right):
        waiting.setdefault(_key(n), deque()).append(j)
    for i, n in enumerate(left):
        same = waiting.get(_key(n))
        if same:
            j = same.popleft()
            left_partner[i], right_partner[j] = j, i
    free: dict[tuple[int, str], deque[int]] = {}
    for j, place in _places(len(right), right_partner).items():
        free.setdefault((place, right[j].trace.subagent_type), deque()).append(j)
    for i, place in _places(len(left), left_partner).items():
        same = free.get((place, left[i].trace.subagent_type))
        if same:
            j = same.popleft()
            left_partner[i], right_partner[j] = j, i
    first: list[q.TraceNode] = []
    after: dict[int, list[q.TraceNode]] = {}  # left index -> the right-only children after its row
    row: int | None = None
    for j, n in enumerate(right):
        if j in right_partner:
            row = right_partner[j]
        else:
            (after.setdefault(row, []) if row is not None else first).append(n)
    out: list[tuple[q.TraceNode | None, q.TraceNode | None]] = [(None, n) for n in first]
    for i, n in enumerate(left):
        out.append((n, right[left_partner[i]] if i in left_partner else None))
        out.extend((None, m) for m in after.get(i, ()))
    return out


def _places(count: int, paired: dict[int, int]) -> dict[int, int]:
    """For each child not paired yet, its place: how many children before it are."""
    out, place = {}, 0
    for k in range(count):
        if k in paired:
            place += 1
        else:
            out[k] = place
    return out


def total(node: q.TraceNode, llm: dict[str, int], tools: dict[str, dict[str, ToolUse]]) -> Figures:
    """A side's totals, every descendant included: tokens, cost and steps summed; the duration from its
    first start to its last end (None while anything in it runs); its worst status."""
    nodes = list(node.walk())
    running = any(n.trace.status == RUNNING for n in nodes)
    ends = [n.trace.ended_at for n in nodes if n.trace.ended_at is not None]
    duration = None if running or not ends else max(max(ends) - node.trace.started_at, node.trace.duration_ms or 0)
    status = max((n.trace.status for n in nodes), key=lambda s: STATUS_RANK.get(s, 1))
    return Figures(duration, node.total_tokens_in, node.total_tokens_out, node.total_cost_usd, status,
                   sum(llm.get(n.trace.trace_id, 0) for n in nodes),
                   sum(u.calls for n in nodes for u in tools.get(n.trace.trace_id, {}).values()),
                   node.total_unpriced_calls)


def extent(node: q.TraceNode, now: int) -> int:
    """ms from the side's start to its latest end (now, for what still runs): its time scale."""
    ends = [n.trace.ended_at if n.trace.ended_at is not None else (now if n.trace.status == RUNNING
                                                                   else n.trace.started_at)
            for n in node.walk()]
    return max(max(ends) - node.trace.started_at, 1)
