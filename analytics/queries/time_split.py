"""Where the time went: a trace's wall time split into LLM time, tool time, waiting on delegations and idle,
per trace and summed per agent; and per-tool figures (calls, errors, median and p95 duration, share of time).

How OpenCode's times nest (checked on the real 1.18.33 and 1.1.65 fixture stores, `tests/fixtures/steps-*`):
an LLM call is an assistant message, and its interval (created → completed) holds everything that happened in
that step: every tool call it made starts after it (by 47 ms or more) and ends before it (by 23 ms or more),
and every `task` call, the delegation it made, lies inside it too (the message completes 30 to 430 ms after the
child trace ends). So the raw intervals overlap by design, and a second of a message that ran a tool is both "LLM" and
"tool". The split counts each millisecond once, by precedence:

1. **waiting on delegations**: the union of the trace's child delegations' intervals (parallel calls once);
2. **tools**: the union of its own tool calls' intervals, outside the delegations;
3. **LLM**: the union of its own LLM calls' intervals, outside both: the model generating and OpenCode
   between the steps of one message;
4. **idle**: the rest of [started_at, ended_at]: before the first step, between turns (a session waiting for
   its user), after the last.

So "LLM 40 s" means the model was working, not that a message was open. Everything is clipped to the trace's
own interval (1.1.65 writes a child session's first message up to 125 ms before its task call starts). A trace
still running ends *now*, and so do its unfinished steps and delegations, unless it is interrupted (its session
tree has had no write for INTERRUPTED_MS: OpenCode died, see `analytics.timeline`): then it ends at that last write,
where its bar in the tree ends too, and stops growing. An unfinished step of a finished trace ends with the trace.
The four parts add up exactly to the trace's duration.

The precedence turns the split into three union lengths: waiting = |D|, tools = |D ∪ T| − |D|,
LLM = |D ∪ T ∪ L| − |D ∪ T|, idle = duration − |D ∪ T ∪ L|. DuckDB clips the intervals; each union length is
then one pass over them sorted by start (each adds what reaches past the latest end before it), done in numpy,
which is faster than the same pass as a DuckDB window function.

Per agent, the traces' parts are summed; running traces are left out of the sums and counted apart (a run
killed days ago would otherwise be days of "waiting"). Per tool, per agent and for all agents: calls, errors,
median and nearest-rank p95 of the finished calls' durations, and the share of the agent's summed tool-call
durations (parallel calls each count in full there, so the shares add up to 100%).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import duckdb
import numpy

from analytics import format as fmt
from analytics import timeline
from analytics.db import TraceStore

PARTS = ("llm_ms", "tool_ms", "waiting_ms", "idle_ms")
PART_LABELS = {"llm_ms": "LLM", "tool_ms": "tools", "waiting_ms": "waiting on delegations", "idle_ms": "idle"}


@dataclass(frozen=True)
class TimeSplit:
    """One trace's wall time in four parts that add up to `total_ms`."""

    trace_id: str
    agent: str
    running: bool  # no end yet: the split runs to `now`, or to `stopped_ms`
    total_ms: int
    llm_ms: int
    tool_ms: int
    waiting_ms: int
    idle_ms: int
    stopped_ms: int | None = None  # interrupted: its session tree's last write, where the split ends


@dataclass(frozen=True)
class AgentTime:
    """The splits of an agent's finished traces, summed; `running` traces are not in the sums."""

    agent: str
    traces: int
    running: int
    total_ms: int
    llm_ms: int
    tool_ms: int
    waiting_ms: int
    idle_ms: int


@dataclass(frozen=True)
class ToolStats:
    """One tool as one agent used it (`agent` None: every agent's calls together)."""

    agent: str | None
    tool: str
    calls: int
    errors: int
    median_ms: float | None  # of the finished calls
    p95_ms: float | None
    total_ms: int
    share: float  # of the agent's summed tool-call durations


def _scope(trace_ids: Collection[str] | None, alias: str = "") -> tuple[str, list]:
    """A WHERE condition on the trace id (`alias` like "t."), and its parameters: these traces, or all."""
    if trace_ids is None:
        return "TRUE", []
    return f"{alias}trace_id IN (SELECT unnest(?::VARCHAR[]))", [list(trace_ids)]


# a running trace ends now, or at its tree's last write when interrupted (the `stops`: root id -> last write)
_TRACES = (
    "SELECT trace_id, subagent_type, ended_at IS NULL, epoch_ms(started_at),"
    " coalesce(epoch_ms(ended_at), greatest(coalesce(stop.ms, ?::BIGINT), epoch_ms(started_at))), stop.ms"
    " FROM agent_traces LEFT JOIN (SELECT unnest(?::VARCHAR[]) AS root, unnest(?::BIGINT[]) AS ms) stop"
    " ON stop.root = root_session_id AND ended_at IS NULL WHERE {scope}"
)


def _intervals_sql(scope: str) -> str:
    """Every delegation, tool and LLM interval of the traces in scope, clipped to its trace's interval and
    relative to its start: (trace's index in `_TRACES ORDER BY trace_id`, layer 1/2/3, start, end)."""
    return (
        f"WITH t AS (SELECT row_number() OVER (ORDER BY trace_id) - 1 AS g, * FROM ({_TRACES.format(scope=scope)})"
        "  AS x(trace_id, agent, running, t0, t1, stopped)),"
        " raw AS ("
        "  SELECT parent_trace_id AS trace_id, 1 AS layer, epoch_ms(started_at) AS s, epoch_ms(ended_at) AS e"
        "  FROM agent_traces WHERE kind = 'delegation'"
        "  UNION ALL"
        "  SELECT trace_id, CASE WHEN kind = 'tool' THEN 2 ELSE 3 END, epoch_ms(started_at), epoch_ms(ended_at)"
        "  FROM agent_spans),"
        " clipped AS ("
        "  SELECT t.g, r.layer, greatest(r.s, t.t0) - t.t0 AS s, least(coalesce(r.e, t.t1), t.t1) - t.t0 AS e"
        "  FROM raw r JOIN t USING (trace_id))"
        " SELECT g, layer, s, e FROM clipped WHERE e > s"
    )


def _unions(g: numpy.ndarray, layer: numpy.ndarray, s: numpy.ndarray, e: numpy.ndarray,
            durations: numpy.ndarray) -> list[numpy.ndarray]:
    """Per trace, the union lengths |D|, |D ∪ T|, |D ∪ T ∪ L| of its intervals (g: its index; s, e relative
    to its start, so within [0, its duration]).

    The traces are laid end to end on one axis (each shifted past the durations before it), so a single
    running maximum over all intervals sorted by start is, for each one, the latest end before it in its own
    trace: each interval adds what reaches past that. So many traces are laid on one axis at a time that it
    fits in 64 bits (all of them, unless durations are centuries long)."""
    n = len(durations)
    lengths = [numpy.zeros(n) for _ in range(3)]
    per_axis = max(1, (1 << 62) // (int(durations.max()) + 1))
    for first in range(0, n, per_axis):
        mine = (g >= first) & (g < first + per_axis)
        if not mine.any():
            continue
        widths = durations[first:first + per_axis] + 1
        shift = numpy.cumsum(widths) - widths
        pg, pl = g[mine], layer[mine]
        ps, pe = s[mine] + shift[pg - first], e[mine] + shift[pg - first]
        order = numpy.lexsort((pe, ps))
        pg, pl, ps, pe = pg[order], pl[order], ps[order], pe[order]
        for level in (1, 2, 3):
            keep = pl <= level
            lg, ls, le = pg[keep], ps[keep], pe[keep]
            if len(lg):
                before = numpy.concatenate(([-1], numpy.maximum.accumulate(le)[:-1]))
                lengths[level - 1] += numpy.bincount(lg, weights=numpy.maximum(le - numpy.maximum(ls, before), 0),
                                                     minlength=n)
    return lengths


def last_writes(cur: duckdb.DuckDBPyConnection,
                root_session_ids: list[str] | None = None) -> dict[str, int]:
    """When each session tree was last written (by root session id): the latest of its sessions' `updated_at`
    and of its traces' and steps' start and end times. Only these trees, when given."""
    times = (
        "SELECT root_session_id AS root, epoch_ms(updated_at) AS ms FROM sessions"
        " UNION ALL SELECT root_session_id, epoch_ms(started_at) FROM agent_traces"
        " UNION ALL SELECT root_session_id, epoch_ms(ended_at) FROM agent_traces"
        " UNION ALL SELECT root_session_id, epoch_ms(started_at) FROM agent_spans"
        " UNION ALL SELECT root_session_id, epoch_ms(ended_at) FROM agent_spans"
    )
    rows = cur.execute(
        f"SELECT root, max(ms) FROM ({times}) WHERE ms IS NOT NULL"
        " AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], root)) GROUP BY root",
        [root_session_ids, root_session_ids]).fetchall()
    return dict(rows)


def time_splits(store: TraceStore, trace_ids: Collection[str] | None = None,
                now_ms: int | None = None) -> dict[str, TimeSplit]:
    """The split of every trace in scope (these ids, or every trace), by trace id."""
    scope, params = _scope(trace_ids)
    now = timeline.now_ms() if now_ms is None else now_ms
    # the reads in one transaction, so they see the same traces; on a cursor of its own, which has its own
    # transaction whatever the caller's cursor is in
    cur = store.new_cursor()
    try:
        cur.execute("BEGIN TRANSACTION")
        running_roots = [r[0] for r in cur.execute(
            f"SELECT DISTINCT root_session_id FROM agent_traces WHERE ended_at IS NULL AND {scope}", params
        ).fetchall()]
        written = last_writes(cur, running_roots) if running_roots else {}
        stops = {root: ms for root, ms in written.items() if timeline.interrupted_at(ms, now) is not None}
        head = [now, list(stops), list(stops.values())]
        traces = cur.execute(_TRACES.format(scope=scope) + " ORDER BY trace_id", [*head, *params]).fetchall()
        if not traces:
            return {}
        iv = cur.execute(_intervals_sql(scope), [*head, *params]).fetchnumpy()
        cur.execute("COMMIT")
    finally:
        cur.close()
    durations = numpy.array([max(t1 - t0, 0) for _tid, _agent, _running, t0, t1, _stop in traces],
                            dtype=numpy.int64)
    d, dt, dtl = _unions(*(numpy.asarray(iv[k], dtype=numpy.int64) for k in ("g", "layer", "s", "e")), durations)
    out = {}
    for i, (trace_id, agent, running, _t0, _t1, stopped) in enumerate(traces):
        waiting, with_tools, busy, total = int(d[i]), int(dt[i]), int(dtl[i]), int(durations[i])
        out[trace_id] = TimeSplit(trace_id=trace_id, agent=agent, running=bool(running), total_ms=total,
                                  llm_ms=busy - with_tools, tool_ms=with_tools - waiting, waiting_ms=waiting,
                                  idle_ms=total - busy, stopped_ms=stopped)
    return out


def time_split(store: TraceStore, trace_id: str, now_ms: int | None = None) -> TimeSplit | None:
    """One trace's split (None if there is no such trace)."""
    return time_splits(store, [trace_id], now_ms).get(trace_id)


def agent_times(splits: Collection[TimeSplit]) -> list[AgentTime]:
    """The splits summed per agent, the agent with the most time first; running traces only counted."""
    sums: dict[str, list[int]] = {}
    for s in splits:
        acc = sums.setdefault(s.agent, [0] * 7)
        if s.running:
            acc[1] += 1
            continue
        acc[0] += 1
        for i, v in enumerate((s.total_ms, s.llm_ms, s.tool_ms, s.waiting_ms, s.idle_ms), start=2):
            acc[i] += v
    out = [AgentTime(agent, *acc) for agent, acc in sums.items()]
    return sorted(out, key=lambda a: (-a.total_ms, a.agent))


def agent_time_splits(store: TraceStore, trace_ids: Collection[str] | None = None,
                      now_ms: int | None = None) -> list[AgentTime]:
    """Per agent, the summed split of its traces in scope (these ids, or every trace)."""
    return agent_times(time_splits(store, trace_ids, now_ms).values())


def tool_stats(store: TraceStore, trace_ids: Collection[str] | None = None) -> list[ToolStats]:
    """Per agent and tool, then per tool over all agents (`agent` None): calls, errors, median and p95 of the
    finished calls' durations, and the share of the agent's tool-call time. Busiest tools first."""
    scope, params = _scope(trace_ids, "t.")
    sql = (
        "WITH calls AS ("
        "  SELECT t.subagent_type AS agent, s.name AS tool, s.status, s.duration_ms AS d"
        "  FROM agent_spans s JOIN agent_traces t USING (trace_id)"
        f"  WHERE s.kind = 'tool' AND {scope}),"
        " per AS ("
        "  SELECT agent, tool, GROUPING(agent) AS everyone, count(*) AS calls,"
        "         count(*) FILTER (WHERE status = 'error') AS errors, median(d) AS med,"
        "         list_sort(list(d) FILTER (WHERE d IS NOT NULL)) AS ds, coalesce(sum(d), 0) AS total"
        "  FROM calls GROUP BY GROUPING SETS ((agent, tool), (tool)))"
        " SELECT agent, tool, calls, errors, med, ds[greatest(ceil(0.95 * len(ds))::BIGINT, 1)], total,"
        "        total / nullif(sum(total) OVER (PARTITION BY everyone, agent), 0)"  # agent is NULL for all
        " FROM per ORDER BY everyone, agent, total DESC, calls DESC, tool"
    )
    rows = store.cursor().execute(sql, params).fetchall()
    return [ToolStats(agent=r[0], tool=r[1], calls=r[2], errors=r[3], median_ms=r[4],
                      p95_ms=float(r[5]) if r[5] is not None else None, total_ms=int(r[6]),
                      share=float(r[7]) if r[7] is not None else 0.0) for r in rows]


class SplitCache:
    """The splits of every trace, read once per data version of the store, for a view that shows one subset
    after another (each filter change): a finished trace's split never changes, a running one's grows, so
    the running traces asked for are split again at every call."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.splits: dict[str, TimeSplit] = {}

    def splits_of(self, store: TraceStore, trace_ids: Collection[str], version: int,
                  now_ms: int | None = None) -> list[TimeSplit]:
        if version != self.version:
            self.splits, self.version = time_splits(store, None, now_ms), version
        running = [tid for tid in trace_ids if tid in self.splits and self.splits[tid].running]
        fresh = time_splits(store, running, now_ms) if running else {}
        return [fresh.get(tid) or self.splits[tid] for tid in trace_ids if tid in self.splits]


def split_text(s: TimeSplit | AgentTime) -> str:
    """"LLM 41.2 s · tools 3.0 s · waiting on delegations 2.5 s · idle 53.3 s"."""
    return " · ".join(f"{PART_LABELS[p]} {fmt.duration(getattr(s, p))}" for p in PARTS)


def split_note(s: TimeSplit) -> str:
    """What to say after a running trace's split: it grows, or it stopped at its tree's last write."""
    if s.stopped_ms is not None:
        return f" (interrupted: no write since {fmt.when(s.stopped_ms)})"
    return " (so far)" if s.running else ""
