"""Findings in the steps of a trace (`agent_spans`): what went wrong inside a call rather than how long it took.

Each finding names the trace it is in and says why in one sentence, like an `Anomaly`, so the CLI, the tree's
⚠ and the Metrics tab's list show both kinds through `flag_traces`:

* **repeated**: the same tool with the same input at least REPEAT_MIN times in one trace's own steps (a loop
  OpenCode does not stop: its doom-loop guard only looks at the calls of one step).
* **error streak**: at least STREAK_MIN failing tool calls in a row.
* **context**: an LLM call that sent far more context than that agent's LLM calls usually do (the robust rule
  of `analysis_queries.far_above`, on input + cache read + cache write tokens: with prompt caching most of the
  context is in the cache columns, so input alone would miss a blow-up).
* **interrupted**: a call OpenCode still marks `running` in a session tree with no write for INTERRUPTED_MS
  (OpenCode died or was killed). The stored status stays `running`, as OpenCode wrote it; the finding, with its
  `last_write_ms`, is what lets a view end the call's bar at the last write instead of growing it for ever.
* **stalled**: a running call with no new step for STALLED_MS while its session tree is still being written.
  A call waiting on a running delegation is not judged itself: the delegation is.

Retries are not a finding: neither OpenCode 1.18.33 nor 1.1.65 stores any trace of a retried request (no part,
error, extra message or event; checked with the real binaries answering HTTP 429, see
tests/fixtures/steps-NOTES.md), so there is nothing to count.

The time-dependent rules take `now_ms`, so that they can be judged at any moment (and tested without a clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analytics import format as fmt
from analytics.db import TraceStore
from analytics.queries.analysis_queries import Anomaly, far_above, usual_of
from analytics.queries.time_split import last_writes
from analytics.queries.trace_queries import TraceSummary, get_traces
from analytics.timeline import INTERRUPTED_MS, interrupted_at

REPEAT_MIN = 5  # the same tool with the same input this many times in one trace
STREAK_MIN = 3  # failing tool calls in a row
STALLED_MS = 5 * 60_000  # a running call with no new step for this long, its session still written

REPEATED, ERROR_STREAK, CONTEXT, INTERRUPTED, STALLED = "repeated", "error streak", "context", "interrupted", \
    "stalled"


@dataclass(frozen=True)
class Finding:
    """One thing wrong in a trace's steps, with the sentence that says it.

    `ratio` is how far past its threshold it is (9 identical calls against 5: 1.8), so findings and anomalies
    sort together; `span_ids` are the steps concerned (for interrupted and stalled calls, those still marked
    running); `last_write_ms` is, for interrupted and stalled calls, when their session tree was last written:
    where a view ends their bars."""

    trace: TraceSummary
    rule: str
    reason: str
    ratio: float
    span_ids: tuple[str, ...] = ()
    last_write_ms: int | None = None


@dataclass(frozen=True)
class Flag:
    """Everything flagged on one trace (anomaly and findings), strongest first: what the tree's ⚠ and the
    Metrics tab's list show, through the same `trace`, `reason` and `ratio` as an `Anomaly`."""

    items: tuple[Anomaly | Finding, ...]

    @property
    def trace(self) -> TraceSummary:
        return self.items[0].trace

    @property
    def reason(self) -> str:
        return "; ".join(x.reason for x in self.items)

    @property
    def ratio(self) -> float:
        return self.items[0].ratio

    @property
    def last_write_ms(self) -> int | None:
        """When the trace's session tree was last written, if it is flagged interrupted or stalled."""
        return next((x.last_write_ms for x in self.items if isinstance(x, Finding) and x.last_write_ms), None)

    @property
    def interrupted_ms(self) -> int | None:
        """When the trace's session tree was last written, if it is flagged interrupted: where its bar ends."""
        return next((x.last_write_ms for x in self.items if isinstance(x, Finding) and x.rule == INTERRUPTED
                     and x.last_write_ms), None)


def flag_traces(items: Iterable[Anomaly | Finding]) -> dict[str, Flag]:
    """Anomalies and findings grouped by trace id, strongest first in each."""
    by_trace: dict[str, list[Anomaly | Finding]] = {}
    for x in items:
        by_trace.setdefault(x.trace.trace_id, []).append(x)
    return {k: Flag(tuple(sorted(v, key=lambda x: x.ratio, reverse=True))) for k, v in by_trace.items()}


def _argument(tool_input: str | None, limit: int = 60) -> str:
    """A call's main argument, quoted: bash's command, grep's pattern, read's path."""
    text = fmt.tool_argument(tool_input, limit)
    return repr(text) if text else ""


# -- findings that depend only on what is stored ------------------------------------------------------------


def repeated_calls(store: TraceStore) -> list[tuple[str, str, str | None, list[str]]]:
    """(trace id, tool, input, span ids) of every tool called REPEAT_MIN or more times with the same input in
    one trace's own steps."""
    return store.cursor().execute(
        "SELECT trace_id, name, input, list(span_id ORDER BY started_at, span_id) FROM agent_spans"
        " WHERE kind = 'tool' GROUP BY trace_id, name, input HAVING count(*) >= ?"
        " ORDER BY trace_id, name", [REPEAT_MIN]).fetchall()


def error_streaks(store: TraceStore) -> list[tuple[str, list[str], list[str]]]:
    """(trace id, tools, span ids) of every run of STREAK_MIN or more failing tool calls in a row, in start
    order within one trace (gaps and islands: within a run, the row number among all calls and among the
    failing ones rise together)."""
    return store.cursor().execute(
        "WITH calls AS (SELECT trace_id, span_id, name, status, started_at,"
        "  row_number() OVER (PARTITION BY trace_id ORDER BY started_at, span_id)"
        "  - row_number() OVER (PARTITION BY trace_id, status = 'error' ORDER BY started_at, span_id) AS run"
        "  FROM agent_spans WHERE kind = 'tool')"
        " SELECT trace_id, list(name ORDER BY started_at, span_id), list(span_id ORDER BY started_at, span_id)"
        " FROM calls WHERE status = 'error' GROUP BY trace_id, run HAVING count(*) >= ?"
        " ORDER BY trace_id, min(started_at)", [STREAK_MIN]).fetchall()


def context_blowups(store: TraceStore) -> list[tuple[str, str, str, int, int, float, int]]:
    """(span id, trace id, agent, call number in its trace, context tokens, median, calls) of every finished
    LLM call far above what the LLM calls of its trace's agent usually send."""
    rows = store.cursor().execute(
        "SELECT s.span_id, s.trace_id, t.subagent_type,"
        " row_number() OVER (PARTITION BY s.trace_id ORDER BY s.started_at, s.span_id),"
        " coalesce(s.tokens_in, 0) + coalesce(s.tokens_cache_read, 0) + coalesce(s.tokens_cache_write, 0), t.source"
        " FROM agent_spans s JOIN agent_traces t ON t.trace_id = s.trace_id"
        " WHERE s.kind = 'llm' AND s.status <> 'running'").fetchall()
    by_agent: dict[tuple[str, str], list[float]] = {}  # an agent of each history (models.SOURCES)
    for _sid, _tid, agent, _n, value, source in rows:
        by_agent.setdefault((source, agent), []).append(value)
    usual = {key: stats for key, values in by_agent.items() if (stats := usual_of(values)) is not None}
    out = []
    for sid, tid, agent, n, value, source in rows:
        stats = usual.get((source, agent))
        if stats is not None and far_above(value, stats):
            out.append((sid, tid, agent, n, value, stats[0], stats[2]))
    return out


def step_findings(store: TraceStore) -> list[Finding]:
    """Repeated identical calls, error streaks and context blow-ups, over the whole store."""
    repeated, streaks, blowups = repeated_calls(store), error_streaks(store), context_blowups(store)
    ids = {r[0] for r in repeated} | {r[0] for r in streaks} | {r[1] for r in blowups}
    traces = {t.trace_id: t for t in get_traces(store, sorted(ids))}
    out: list[Finding] = []
    for tid, name, tool_input, spans in repeated:
        if tid in traces:
            what = " ".join(filter(None, (name, _argument(tool_input))))
            out.append(Finding(traces[tid], REPEATED, f"{what} called {len(spans)} times with the same input",
                               len(spans) / REPEAT_MIN, tuple(spans)))
    for tid, names, spans in streaks:
        if tid in traces:
            out.append(Finding(traces[tid], ERROR_STREAK,
                               f"{len(spans)} failing tool calls in a row ({fmt.tool_runs(names)})",
                               len(spans) / STREAK_MIN, tuple(spans)))
    for sid, tid, agent, n, value, med, count in blowups:
        if tid in traces:
            out.append(Finding(traces[tid], CONTEXT,
                               f"LLM call {n} sent {fmt.tokens(value)} tokens of context, {value / med:.1f}× the "
                               f"median of {agent}'s LLM calls ({fmt.tokens(med)} over {count} calls)",
                               value / med, (sid,)))
    return out


# -- findings that depend on the time ------------------------------------------------------------------------


def last_write_ms(store: TraceStore, trace: TraceSummary) -> int | None:
    """When the trace's session tree was last written: where a view can end the bar of an interrupted call."""
    return last_writes(store.cursor(), [trace.root_session_id]).get(trace.root_session_id)


def _running(store: TraceStore) -> list[tuple[str, str, int, list[str], list[str | None], bool, list[str]]]:
    """(trace id, root, last move, running tools, their inputs, waits on a running delegation, running steps)
    of every trace OpenCode marks running, itself or in one of its steps."""
    return store.cursor().execute(
        "WITH running AS (SELECT trace_id FROM agent_traces WHERE status = 'running'"
        "  UNION SELECT trace_id FROM agent_spans WHERE status = 'running')"
        " SELECT t.trace_id, t.root_session_id,"
        "  greatest(epoch_ms(t.started_at), coalesce((SELECT max(greatest(epoch_ms(s.started_at),"
        "   coalesce(epoch_ms(s.ended_at), 0))) FROM agent_spans s WHERE s.trace_id = t.trace_id), 0)),"
        "  coalesce((SELECT list(s.name ORDER BY s.started_at, s.span_id) FROM agent_spans s"
        "   WHERE s.trace_id = t.trace_id AND s.kind = 'tool' AND s.status = 'running'), []),"
        "  coalesce((SELECT list(s.input ORDER BY s.started_at, s.span_id) FROM agent_spans s"
        "   WHERE s.trace_id = t.trace_id AND s.kind = 'tool' AND s.status = 'running'), []),"
        "  EXISTS (SELECT 1 FROM agent_traces c WHERE c.parent_trace_id = t.trace_id AND c.status = 'running'),"
        "  coalesce((SELECT list(s.span_id ORDER BY s.started_at, s.span_id) FROM agent_spans s"
        "   WHERE s.trace_id = t.trace_id AND s.status = 'running'), [])"
        " FROM agent_traces t WHERE t.trace_id IN (SELECT trace_id FROM running) ORDER BY t.trace_id").fetchall()


def anything_running(store: TraceStore) -> bool:
    """Whether OpenCode marks any call or step running: only then can time make a finding."""
    return bool(store.cursor().execute(
        "SELECT EXISTS (SELECT 1 FROM agent_traces WHERE status = 'running')"
        " OR EXISTS (SELECT 1 FROM agent_spans WHERE status = 'running')").fetchone()[0])


def time_findings(store: TraceStore, now_ms: int) -> list[Finding]:
    """Interrupted and stalled calls, as of `now_ms`."""
    running = _running(store)
    if not running:
        return []
    written = last_writes(store.cursor(), sorted({r[1] for r in running}))
    traces = {t.trace_id: t for t in get_traces(store, [r[0] for r in running])}
    out: list[Finding] = []
    for tid, root, moved, tools, inputs, waiting, steps in running:
        last = written.get(root)
        if tid not in traces or last is None:
            continue
        what = fmt.tool_runs([" ".join(filter(None, (n, _argument(i, 40))))
                              for n, i in zip(tools, inputs, strict=True)])
        idle = now_ms - last
        if interrupted_at(last, now_ms) is not None:
            still = f" ({what} still marked running)" if what else ""
            out.append(Finding(traces[tid], INTERRUPTED,
                               f"interrupted: no write since {fmt.minute(last)}, {fmt.ago(idle)} ago{still}",
                               idle / INTERRUPTED_MS, tuple(steps), last))
        elif now_ms - moved >= STALLED_MS and not waiting:
            out.append(Finding(traces[tid], STALLED,
                               f"stalled: {what or 'the call'} with no new step for {fmt.ago(now_ms - moved)}, "
                               f"while its session is still being written (last write {fmt.ago(idle)} ago)",
                               (now_ms - moved) / STALLED_MS, tuple(steps), last))
    return out


def find_findings(store: TraceStore, now_ms: int) -> list[Finding]:
    """Every finding in the store, the time-dependent ones as of `now_ms`, strongest first."""
    return sorted([*step_findings(store), *time_findings(store, now_ms)], key=lambda f: f.ratio, reverse=True)
