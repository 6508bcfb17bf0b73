"""Analysis over the stored traces: pattern search, per-agent metrics, critical paths and bottlenecks, anomalies.

Everything works on whole session trees read through `trace_queries`, so the dashboard and the CLI see the
same numbers. Durations are milliseconds; "with descendants" totals include every delegation below a trace.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from analytics import format as fmt
from analytics.db import TraceStore
from analytics.patterns import Node, Pattern, match_tree, parse
from analytics.queries.trace_queries import TraceFilter, TraceNode, TraceSummary, build_tree, filter_traces

MIN_SAMPLES = 5  # fewer invocations of an agent than this: no idea what is usual for it
ROBUST_Z = 3.5  # how far above usual, in robust standard deviations (1.4826 MAD)
MIN_RATIO = 2.0  # and at least this many times the median


def forest(store: TraceStore, f: TraceFilter | None = None) -> list[TraceNode]:
    """The session trees the filter selects, with inclusive totals."""
    traces, _hits = filter_traces(store, f or TraceFilter())
    return build_tree(traces)


# -- pattern search ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternMatch:
    session_id: str
    chain: tuple[TraceSummary, ...]

    @property
    def agents(self) -> str:
        return " -> ".join(t.subagent_type for t in self.chain)


def match_pattern(roots: list[TraceNode], pattern: Pattern | str) -> list[PatternMatch]:
    """Every chain in these trees that the pattern matches, sessions newest first."""
    pattern = parse(pattern) if isinstance(pattern, str) else pattern
    out: list[PatternMatch] = []
    for root in sorted(roots, key=lambda r: r.trace.started_at, reverse=True):
        by_id = {n.trace.trace_id: n.trace for n in root.walk()}
        nodes = {n.trace.trace_id: Node(n.trace.trace_id, n.trace.subagent_type, n.trace.status,
                                        n.trace.duration_ms, tuple(c.trace.trace_id for c in n.children))
                 for n in root.walk()}
        for chain in match_tree(pattern, nodes, [root.trace.trace_id]):
            out.append(PatternMatch(root.trace.root_session_id, tuple(by_id[t] for t in chain)))
    return out


def find_pattern(store: TraceStore, pattern: Pattern | str, f: TraceFilter | None = None) -> list[PatternMatch]:
    return match_pattern(forest(store, f), pattern)


# -- metrics -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentMetrics:
    agent: str
    invocations: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    total_tokens_in: int  # with descendants
    total_tokens_out: int
    total_cost_usd: float
    median_ms: float | None
    p95_ms: float | None
    unpriced_calls: int = 0  # its own LLM calls with no price: `cost_usd` is the known part
    total_unpriced_calls: int = 0  # with descendants

    @property
    def error_rate(self) -> float:
        return self.errors / self.invocations if self.invocations else 0.0


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of the values, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def agent_metrics(roots: list[TraceNode]) -> list[AgentMetrics]:
    """Per agent: invocations, errors, own and inclusive tokens and cost, median and p95 duration."""
    groups: dict[str, list[TraceNode]] = defaultdict(list)
    for r in roots:
        for n in r.walk():
            groups[n.trace.subagent_type].append(n)
    out = []
    for agent, nodes in groups.items():
        durations = [n.trace.duration_ms for n in nodes if n.trace.duration_ms is not None]
        out.append(AgentMetrics(
            agent=agent, invocations=len(nodes), errors=sum(n.trace.status == "error" for n in nodes),
            tokens_in=sum(n.trace.tokens_in for n in nodes), tokens_out=sum(n.trace.tokens_out for n in nodes),
            cost_usd=sum(n.trace.cost_usd for n in nodes),
            total_tokens_in=sum(n.total_tokens_in for n in nodes),
            total_tokens_out=sum(n.total_tokens_out for n in nodes),
            total_cost_usd=sum(n.total_cost_usd for n in nodes),
            median_ms=statistics.median(durations) if durations else None, p95_ms=percentile(durations, 95),
            unpriced_calls=sum(n.trace.unpriced_calls for n in nodes),
            total_unpriced_calls=sum(n.total_unpriced_calls for n in nodes),
        ))
    return sorted(out, key=lambda m: (-m.total_cost_usd, m.agent))


def critical_path(root: TraceNode) -> list[TraceSummary]:
    """The chain of calls that decided when the session ended: from the root, each time the child that
    finished last (a running child counts as finishing now), down to a call that delegated nothing."""
    path = [root.trace]
    node = root
    while node.children:
        node = max(node.children, key=lambda c: (c.trace.ended_at if c.trace.ended_at is not None
                                                 else math.inf, c.trace.started_at))
        path.append(node.trace)
    return path


@dataclass(frozen=True)
class Bottleneck:
    trace: TraceSummary
    share: float  # of its session's duration


def bottlenecks(roots: list[TraceNode], limit: int = 10) -> list[Bottleneck]:
    """The slowest delegations, with the share of their session's time they took."""
    out = []
    for r in roots:
        span = r.trace.duration_ms or 0
        for n in r.walk():
            if n.trace.kind == "delegation" and n.trace.duration_ms:
                out.append(Bottleneck(n.trace, n.trace.duration_ms / span if span else 0.0))
    out.sort(key=lambda b: b.trace.duration_ms or 0, reverse=True)
    return out[:limit]


# -- anomalies ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    trace: TraceSummary
    metric: str  # duration | tokens | cost
    value: float
    median: float
    ratio: float
    samples: int

    @property
    def reason(self) -> str:
        shown = fmt.FIGURES[self.metric]
        if self.trace.kind == "session":
            what = f"{self.metric} of {self.trace.subagent_type} sessions"
        elif self.metric == "duration":
            what = f"own time of {self.trace.subagent_type} (outside its delegations)"
        else:
            what = f"{self.metric} of {self.trace.subagent_type}"
        return (f"{self.ratio:.1f}× the median {what}: {shown(self.value)} against {shown(self.median)} "
                f"over {self.samples} runs")


def own_ms(n: TraceNode) -> int | None:
    """A call's duration minus the time it spent waiting on its delegations (the union of their intervals)."""
    t = n.trace
    if t.duration_ms is None or t.ended_at is None:
        return None
    spans = sorted((max(c.trace.started_at, t.started_at), min(c.trace.ended_at or t.ended_at, t.ended_at))
                   for c in n.children)
    waited, reach = 0, t.started_at
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            waited += b - a
            reach = b
    return max(t.duration_ms - waited, 0)


def _value(n: TraceNode, metric: str) -> float | None:
    """What a call itself took: its own time and its own tokens and cost, so that a call is not flagged for
    what its delegations took (they are judged themselves). A session is judged on its whole tree. A cost that is
    not known whole (an LLM call with no price) is not judged."""
    if metric == "cost" and (n.total_unpriced_calls if n.trace.kind == "session" else n.trace.unpriced_calls):
        return None
    if n.trace.kind == "session":
        if metric == "duration":
            return n.trace.duration_ms
        return n.total_tokens_in + n.total_tokens_out if metric == "tokens" else n.total_cost_usd
    if metric == "duration":
        return own_ms(n)
    return n.trace.tokens_in + n.trace.tokens_out if metric == "tokens" else n.trace.cost_usd


Usual = tuple[float, float, int]  # median, robust spread (1.4826 MAD), number of values


def usual_of(values: list[float]) -> Usual | None:
    """What is usual among these values (median, 1.4826 × MAD, count); None below MIN_SAMPLES values."""
    if len(values) < MIN_SAMPLES:
        return None
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    return med, 1.4826 * mad, len(values)


def far_above(value: float, usual: Usual) -> bool:
    """The robust rule: at least MIN_RATIO times the median and ROBUST_Z robust standard deviations above it;
    with no spread at all, three times the median is enough."""
    med, spread, _count = usual
    if med <= 0 or value < MIN_RATIO * med:
        return False
    return (value - med) / spread >= ROBUST_Z if spread > 0 else value >= 3 * med


def find_anomalies(history: list[TraceNode], among: list[TraceNode] | None = None) -> list[Anomaly]:
    """Traces far above what the same agent usually takes, judged against the user's whole history.

    Robust statistics per agent of each history (sessions form their own group): a value is anomalous when it is
    at least MIN_RATIO times the median and ROBUST_Z robust standard deviations above it (1.4826 × MAD); with no
    spread at all, three times the median is enough. Agents with fewer than MIN_SAMPLES runs are not judged.
    Returns the strongest reason per trace.
    """
    groups: dict[tuple[str, str, str], list[TraceNode]] = defaultdict(list)
    for r in history:
        for n in r.walk():
            if n.trace.status != "running":
                groups[(n.trace.source, n.trace.kind, n.trace.subagent_type)].append(n)
    usual: dict[tuple[tuple[str, str, str], str], Usual] = {}
    for key, nodes in groups.items():
        for metric in ("duration", "tokens", "cost"):
            stats = usual_of([v for n in nodes if (v := _value(n, metric)) is not None])
            if stats is not None:
                usual[(key, metric)] = stats
    best: dict[str, Anomaly] = {}
    for r in among if among is not None else history:
        for n in r.walk():
            if n.trace.status == "running":
                continue
            key = (n.trace.source, n.trace.kind, n.trace.subagent_type)
            for metric in ("duration", "tokens", "cost"):
                stats = usual.get((key, metric))
                value = _value(n, metric)
                if stats is None or value is None:
                    continue
                if far_above(value, stats):
                    med, _spread, count = stats
                    a = Anomaly(n.trace, metric, float(value), float(med), value / med, count)
                    if n.trace.trace_id not in best or a.ratio > best[n.trace.trace_id].ratio:
                        best[n.trace.trace_id] = a
    return sorted(best.values(), key=lambda a: a.ratio, reverse=True)


# -- the agent graph ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentEdge:
    """'caller delegates to callee': how often, and the calls' median duration."""

    caller: str
    callee: str
    count: int
    median_ms: float | None
    errors: int


def agent_edges(roots: list[TraceNode]) -> list[AgentEdge]:
    groups: dict[tuple[str, str], list[TraceSummary]] = defaultdict(list)
    for r in roots:
        for n in r.walk():
            for c in n.children:
                groups[(n.trace.subagent_type, c.trace.subagent_type)].append(c.trace)
    out = []
    for (caller, callee), calls in groups.items():
        durations = [t.duration_ms for t in calls if t.duration_ms is not None]
        out.append(AgentEdge(caller, callee, len(calls), statistics.median(durations) if durations else None,
                             sum(t.status == "error" for t in calls)))
    return sorted(out, key=lambda e: (-e.count, e.caller, e.callee))
