"""Everything the window shows of the traces a filter selects, composed in one place: the traces, the pattern
and "anomalies only" filters applied on top, the flags (anomalies judged against the whole history, and the
findings in the steps), the critical paths, the per-agent metrics and where their time went.

What depends only on the stored data (anomalies, step findings, step counts, the splits of finished traces) is
judged once per data version of the store and kept (`Overview`); what depends on the clock too (interrupted and
stalled calls) is judged at every call, by the `now` it is given, so the tree and the detail pane judge by one
clock. Plain Python, as the CLI's analyses: the dashboard's worker only calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analytics.db import TraceStore
from analytics.patterns import parse
from analytics.queries import analysis_queries as aq
from analytics.queries import findings as sf
from analytics.queries import time_split as ts
from analytics.queries import trace_queries as q
from analytics.queries.analysis_queries import (
    AgentEdge,
    AgentMetrics,
    Anomaly,
    Bottleneck,
    PatternMatch,
    agent_edges,
    agent_metrics,
    bottlenecks,
    critical_path,
    match_pattern,
)
from analytics.queries.findings import Finding, Flag
from analytics.queries.time_split import AgentTime, ToolStats
from analytics.queries.trace_queries import TraceFilter, TraceNode, TraceSummary, build_tree


@dataclass
class Analysis:
    """What the analysis views show for the traces on screen."""

    roots: list[TraceNode]
    metrics: list[AgentMetrics]
    bottlenecks: list[Bottleneck]
    anomalies: dict[str, Anomaly | Flag]  # by trace id: anomalies (judged against the whole history) and findings
    critical: set[str]  # trace ids on their session's critical path
    edges: list[AgentEdge]
    matches: list[PatternMatch]
    time: list[AgentTime] = field(default_factory=list)  # where the time went, per agent (time_split.py)
    tools: list[ToolStats] = field(default_factory=list)  # per agent and tool, then per tool for all agents

    def flag_texts(self) -> dict[str, str]:
        """Per flagged trace, why (what its ⚠ says)."""
        return {k: a.reason for k, a in self.anomalies.items()}

    def interrupted(self) -> dict[str, int]:
        """Per interrupted call, its session tree's last write (where its bar ends)."""
        return {k: ms for k, a in self.anomalies.items() if (ms := getattr(a, "interrupted_ms", None))}


def refine(traces: list[TraceSummary], hits: set[str], pattern: str | None, anomalies_only: bool,
           anomalies: dict[str, Anomaly | Flag]) -> tuple[list[TraceSummary], set[str], list[PatternMatch]]:
    """Apply the pattern and "anomalies only" filters on top of a filter_traces result: keep the trees with a
    match, and make the matched chains (or the anomalies) the hits. An invalid pattern raises PatternError."""
    matches: list[PatternMatch] = []
    if not pattern and not anomalies_only:
        return traces, hits, matches
    keep_hits = set(hits)
    if pattern:
        matches = match_pattern(build_tree(traces), parse(pattern))
        keep_hits &= {t.trace_id for m in matches for t in m.chain}
    if anomalies_only:
        keep_hits &= set(anomalies)
    roots = {t.root_session_id for t in traces if t.trace_id in keep_hits}
    return [t for t in traces if t.root_session_id in roots], keep_hits, matches


def analyze(traces: list[TraceSummary], anomalies: dict[str, Anomaly | Flag], matches: list[PatternMatch]) -> Analysis:
    roots = build_tree(traces)
    return Analysis(
        roots=roots, metrics=agent_metrics(roots), bottlenecks=bottlenecks(roots, 15), anomalies=anomalies,
        critical={t.trace_id for r in roots for t in critical_path(r)}, edges=agent_edges(roots), matches=matches)


def _judged(found: list[Finding]) -> frozenset[tuple[str, str]]:
    """Which calls a set of time-dependent findings flags, and how (not the wording, which ages by itself)."""
    return frozenset((f.trace.trace_id, f.rule) for f in found)


@dataclass
class Shown:
    """What a filter shows of a store, analysed: its traces, the ones matching it, and their analysis."""

    traces: list[TraceSummary]
    hits: set[str]
    analysis: Analysis


class Overview:
    """The analyses of one store, for a view that shows one filter's traces after another: what depends only on
    the data is judged again only when the store's data version changes. Not thread-safe: one worker uses it."""

    def __init__(self) -> None:
        self.version: int | None = None  # the data version the kept judgements are of
        self.findings: list[Anomaly | Finding] = []  # anomalies and step findings, over the whole history
        self.step_counts: dict[str, tuple[int, int]] = {}  # per trace with steps: (LLM calls, tool calls)
        self.splits = ts.SplitCache()
        # (trace id, rule) of the interrupted and stalled calls the last `show` flagged; None: nothing ran then
        self.time_judged: frozenset[tuple[str, str]] | None = None

    def forget(self) -> None:
        """Judge everything again at the next `show` (the store lost traces: a cleanup)."""
        self.version = None

    def show(self, store: TraceStore, query: TraceFilter, now_ms: int,
             selected: tuple[list[TraceSummary], set[str]] | None = None) -> Shown:
        """The traces `query` selects, with their analysis as of `now_ms` (`selected`: what `filter_traces` gave
        for that query on this store already)."""
        version = store.data_version()
        traces, hits = selected if selected is not None else q.filter_traces(store, query)
        if self.version != version:
            # what is usual is judged on the whole history, and the steps counted, again only when data changed
            self.findings = [*aq.find_anomalies(aq.forest(store)), *sf.step_findings(store)]
            self.step_counts = q.step_counts(store)
            self.version = version
        # interrupted and stalled calls depend on the time too: judged again at every query
        timed = sf.time_findings(store, now_ms)
        self.time_judged = _judged(timed) if sf.anything_running(store) else None
        flags = sf.flag_traces([*self.findings, *timed])
        traces, hits, matches = refine(traces, hits, query.pattern, query.anomalies_only, flags)
        shown = {t.trace_id for t in traces}
        analysis = analyze(traces, {k: v for k, v in flags.items() if k in shown}, matches)
        ids = [t.trace_id for t in traces]
        analysis.time = ts.agent_times(self.splits.splits_of(store, ids, version, now_ms))
        analysis.tools = ts.tool_stats(store, ids)
        return Shown(traces, hits, analysis)

    def time_moved(self, store: TraceStore, now_ms: int) -> bool:
        """Whether a call became interrupted or stalled (or stopped being so) since the last `show`, with no new
        data: judged only while calls run."""
        if self.time_judged is None:
            return False
        return _judged(sf.time_findings(store, now_ms)) != self.time_judged
