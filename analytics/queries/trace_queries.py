"""Named queries over the trace store; the dashboard and the CLI read only through these.

List queries return `TraceSummary` rows (prompts cut to a short preview, so ten thousand rows stay light);
`get_trace_details` returns the full texts. Times are milliseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, make_dataclass
from typing import Any

from analytics.db import TIME_COLUMNS, TraceStore
from analytics.errors import AgentTracesError
from analytics.models import AgentSpan, AgentTrace
from analytics.queries.time_split import TimeSplit, time_split

PREVIEW_CHARS = 160

# A trace holds the text if its prompt, output or description does, ignoring case in any script. Both sides are
# lowered by DuckDB: Python's "İ".lower() is "i" and a combining dot, DuckDB's is "i", so lowering the needle in
# Python would miss "İstanbul" itself. Bind the text three times (`_text_params`).
_TEXT_MATCH = (
    "(contains(lower(prompt_input), lower(?::VARCHAR)) OR contains(lower(coalesce(prompt_output, '')), lower(?))"
    " OR contains(lower(coalesce(description, '')), lower(?)))"
)


def _text_params(text: str | None) -> list[str | None]:
    return [text, text, text]

_LONG_TEXTS = ("prompt_input", "prompt_output")  # read in full by the detail queries only
_PREVIEWS = {"input_preview": "prompt_input", "output_preview": "prompt_output"}

# A list or a tree row: AgentTrace's fields but for its two long texts, whose first PREVIEW_CHARS characters come
# last instead (ten thousand rows stay light).
TraceSummary = make_dataclass(
    "TraceSummary",
    [(f.name, f.type) if f.default is MISSING else (f.name, f.type, field(default=f.default))
     for f in fields(AgentTrace) if f.name not in _LONG_TEXTS]
    + [("input_preview", "str", field(default="")), ("output_preview", "str | None", field(default=None))],
    frozen=True, namespace={"__module__": __name__, "__doc__": "A trace with previews of its prompts: a list row."})


def _select(record: type, alias: str = "") -> str:
    """The select list of a record's fields, by name and in field order: times as epoch milliseconds, previews
    cut from their text (each column prefixed with the table alias, e.g. "t.")."""
    out = []
    for name in (f.name for f in fields(record)) if is_dataclass(record) else record._fields:
        if name in _PREVIEWS:
            out.append(f"left({alias}{_PREVIEWS[name]}, {PREVIEW_CHARS}) AS {name}")
        elif name in TIME_COLUMNS:
            out.append(f"epoch_ms({alias}{name}) AS {name}")
        else:
            out.append(f"{alias}{name}")
    return ", ".join(out)


def _maker(record: type) -> Callable[[tuple], Any]:
    """What makes a record of a row read with `_select(record)`: its values are in field order already; a list
    (a tuple field, such as tools_used) becomes a tuple."""
    tuples = [i for i, f in enumerate(fields(record)) if str(f.type).startswith("tuple[")]

    def make(row: tuple) -> Any:
        values = list(row)
        for i in tuples:
            values[i] = tuple(values[i] or ())
        return record(*values)

    return make


@dataclass
class TraceNode:
    """A trace in its delegation tree, with totals that include every descendant."""

    trace: TraceSummary
    children: list[TraceNode] = field(default_factory=list)
    total_tokens_in: int = 0
    total_tokens_out: int = 0
    total_cost_usd: float = 0.0
    descendants: int = 0
    total_unpriced_calls: int = 0  # LLM calls with no price, every descendant's included

    def walk(self) -> Iterator[TraceNode]:
        """This node and every descendant, parents first, children in order (without recursion: a
        delegation chain may be deeper than Python's recursion limit)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass(frozen=True)
class SessionRow:
    """A root session with its tree totals, for pickers and lists."""

    session_id: str
    title: str
    directory: str
    agent: str | None
    created_at: int
    updated_at: int
    delegation_count: int
    error_count: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    source: str = "opencode"  # the agent that ran it (models.SOURCES)
    version: str | None = None  # that agent's version, as its history says
    unpriced_calls: int = 0  # LLM calls of the tree with no price: `cost_usd` is the known part


@dataclass(frozen=True)
class TraceDetails:
    """One trace in full: its texts, where it sits (the agent chain) and its totals with descendants."""

    trace: AgentTrace
    chain: tuple[str, ...]
    session_title: str
    directory: str
    total_tokens_in: int
    total_tokens_out: int
    total_cost_usd: float
    descendants: int
    steps: tuple[int, int] = (0, 0)  # its own LLM calls and tool calls (agent_spans)
    time: TimeSplit | None = None  # where its time went (time_split.py), a running trace's up to now
    total_unpriced_calls: int = 0  # LLM calls with no price, its own and its descendants'
    version: str | None = None  # the version of the agent (its `source`) that wrote its session


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    title: str
    status: str
    total_ms: int | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    delegation_count: int
    error_count: int
    running_count: int
    max_depth: int
    deepest_chain: tuple[str, ...]
    unpriced_calls: int = 0
    source: str = "opencode"


_SUMMARY_COLUMNS = _select(TraceSummary)
_FULL_COLUMNS = _select(AgentTrace)
_summary = _maker(TraceSummary)
_full = _maker(AgentTrace)


def _summaries(store: TraceStore, where: str, params: list, order: str = "started_at, trace_id",
               limit: int | None = None) -> list[TraceSummary]:
    sql = f"SELECT {_SUMMARY_COLUMNS} FROM agent_traces WHERE {where} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_summary(r) for r in store.cursor().execute(sql, params).fetchall()]


def get_traces_by_session(store: TraceStore, session_id: str) -> list[TraceSummary]:
    """Every trace of that session's tree (a root id), or the delegations made in it (a child id)."""
    return _summaries(store, "root_session_id = ? OR session_id = ?", [session_id, session_id])


def get_traces(store: TraceStore, trace_ids: list[str]) -> list[TraceSummary]:
    """These traces (those that exist), in time order."""
    return _summaries(store, "trace_id IN (SELECT unnest(?::VARCHAR[]))", [list(trace_ids)])


_OF_SOURCE = "(?::VARCHAR IS NULL OR source = ?)"  # bind the source twice


def search_traces(store: TraceStore, text: str, limit: int = 500, source: str | None = None) -> list[TraceSummary]:
    """Traces whose prompt, output or description contains `text`, ignoring case, in any script; newest
    first, at most `limit` (`count_matching` says how many there are in all); of one agent's history with
    `source`."""
    return _summaries(store, f"{_TEXT_MATCH} AND {_OF_SOURCE}", [*_text_params(text), source, source],
                      order="started_at DESC, trace_id", limit=limit)


def count_matching(store: TraceStore, text: str, source: str | None = None) -> int:
    """How many traces `search_traces` finds without a limit."""
    return store.cursor().execute(f"SELECT count(*) FROM agent_traces WHERE {_TEXT_MATCH} AND {_OF_SOURCE}",
                                  [*_text_params(text), source, source]).fetchone()[0]


def sources(store: TraceStore) -> list[str]:
    """The agents (models.SOURCES) whose sessions the store holds."""
    return [r[0] for r in store.cursor().execute("SELECT DISTINCT source FROM sessions ORDER BY 1").fetchall()]


def agents(store: TraceStore) -> list[str]:
    return [r[0] for r in store.cursor().execute(
        "SELECT DISTINCT subagent_type FROM agent_traces ORDER BY 1").fetchall()]


def build_tree(traces: list[TraceSummary]) -> list[TraceNode]:
    """Nodes linked by parent trace id, children by start time, with inclusive totals."""
    nodes = {t.trace_id: TraceNode(t) for t in traces}
    roots: list[TraceNode] = []
    for t in traces:
        parent = nodes.get(t.parent_trace_id) if t.parent_trace_id else None
        (parent.children if parent is not None and parent is not nodes[t.trace_id] else roots).append(
            nodes[t.trace_id])

    roots.sort(key=lambda n: (n.trace.started_at, n.trace.trace_id))
    for r in roots:
        order = list(r.walk())  # parents first; the totals are summed children first, without recursion
        for n in order:
            n.children.sort(key=lambda c: (c.trace.started_at, c.trace.trace_id))
        for n in reversed(order):
            n.total_tokens_in, n.total_tokens_out = n.trace.tokens_in, n.trace.tokens_out
            n.total_cost_usd, n.descendants = n.trace.cost_usd, 0
            n.total_unpriced_calls = n.trace.unpriced_calls
            for c in n.children:
                n.total_tokens_in += c.total_tokens_in
                n.total_tokens_out += c.total_tokens_out
                n.total_cost_usd += c.total_cost_usd
                n.total_unpriced_calls += c.total_unpriced_calls
                n.descendants += 1 + c.descendants
    return roots


def root_of(store: TraceStore, session_id: str) -> str:
    """The root session of a session's tree (the session itself when the store does not know it)."""
    row = store.cursor().execute("SELECT root_session_id FROM sessions WHERE session_id = ?",
                                 [session_id]).fetchone()
    return row[0] if row else session_id


def get_trace_tree(store: TraceStore, session_id: str) -> list[TraceNode]:
    """The delegation tree of the session's root: the session trace, its delegations, theirs, and so on."""
    return build_tree(_summaries(store, "root_session_id = ?", [root_of(store, session_id)]))


def get_trace_details(store: TraceStore, trace_id: str, now_ms: int | None = None) -> TraceDetails | None:
    """One trace in full; a running one's time split as of `now_ms` (the clock of `analytics.timeline`)."""
    cur = store.cursor()
    row = cur.execute(f"SELECT {_FULL_COLUMNS} FROM agent_traces WHERE trace_id = ?", [trace_id]).fetchone()
    if row is None:
        return None
    trace = _full(row)
    tree = _summaries(store, "root_session_id = ?", [trace.root_session_id])
    by_id = {t.trace_id: t for t in tree}
    chain, seen, cur_id = [], set(), trace.trace_id
    while cur_id in by_id and cur_id not in seen:
        seen.add(cur_id)
        chain.append(by_id[cur_id].subagent_type)
        cur_id = by_id[cur_id].parent_trace_id
    node = next((n for r in build_tree(tree) for n in r.walk() if n.trace.trace_id == trace_id), None)
    session = cur.execute("SELECT title, directory, version FROM sessions WHERE session_id = ?",
                          [trace.child_session_id or trace.session_id]).fetchone() or \
        cur.execute("SELECT title, directory, version FROM sessions WHERE session_id = ?",
                    [trace.session_id]).fetchone()
    return TraceDetails(
        trace=trace,
        chain=tuple(reversed(chain)),
        session_title=session[0] if session else "",
        directory=session[1] if session else "",
        total_tokens_in=node.total_tokens_in if node else trace.tokens_in,
        total_tokens_out=node.total_tokens_out if node else trace.tokens_out,
        total_cost_usd=node.total_cost_usd if node else trace.cost_usd,
        descendants=node.descendants if node else 0,
        steps=step_counts(store, [trace_id]).get(trace_id, (0, 0)),
        time=time_split(store, trace_id, now_ms),
        total_unpriced_calls=node.total_unpriced_calls if node else trace.unpriced_calls,
        version=session[2] if session else None,
    )


def get_sessions_with_traces(store: TraceStore, since_ms: int | None = None,
                             with_delegations: bool = False, source: str | None = None) -> list[SessionRow]:
    """Root sessions, newest first, with their tree totals; of one agent's history with `source`."""
    columns = _select(SessionRow).replace("unpriced_calls", "coalesce(u.unpriced_calls, 0)")
    rows = store.cursor().execute(
        f"SELECT {columns} FROM sessions LEFT JOIN (SELECT root_session_id AS root, sum(unpriced_calls) AS"
        " unpriced_calls FROM agent_traces GROUP BY ALL) u ON u.root = sessions.session_id"
        " WHERE parent_session_id IS NULL AND session_id IN (SELECT trace_id FROM agent_traces WHERE kind = 'session')"
        " AND (?::BIGINT IS NULL OR created_at >= epoch_ms(?::BIGINT)) AND (NOT ? OR delegation_count > 0)"
        f" AND {_OF_SOURCE} ORDER BY created_at DESC, session_id",
        [since_ms, since_ms, with_delegations, source, source],
    ).fetchall()
    return [SessionRow(*r) for r in rows]  # in field order: `_select`


def deepest_chain(root: TraceNode) -> list[str]:
    """The agents of the longest chain of delegations from the root (the first such chain, in child order)."""
    below: dict[int, tuple[int, TraceNode | None]] = {}  # id(node) -> (calls under it on its deepest chain, next)
    for n in reversed(list(root.walk())):
        best: tuple[int, TraceNode | None] = (0, None)
        for c in n.children:
            if below[id(c)][0] + 1 > best[0]:
                best = (below[id(c)][0] + 1, c)
        below[id(n)] = best
    chain, node = [], root
    while node is not None:
        chain.append(node.trace.subagent_type)
        node = below[id(node)][1]
    return chain


def get_session_summary(store: TraceStore, session_id: str) -> SessionSummary | None:
    """Totals for a session's whole tree: time, tokens and cost with descendants, errors, deepest chain."""
    roots = get_trace_tree(store, session_id)
    if not roots:
        return None
    nodes = [n for r in roots for n in r.walk()]
    root = roots[0]
    starts = [n.trace.started_at for n in nodes]
    ends = [n.trace.ended_at for n in nodes if n.trace.ended_at is not None]
    running = sum(1 for n in nodes if n.trace.status == "running")
    total_ms = (max(ends) - min(starts)) if ends and not running else root.trace.duration_ms

    chain = deepest_chain(root)
    title_row = store.cursor().execute("SELECT title FROM sessions WHERE session_id = ?",
                                       [root.trace.session_id]).fetchone()
    return SessionSummary(
        session_id=root.trace.session_id,
        title=title_row[0] if title_row else "",
        status=root.trace.status,
        total_ms=total_ms,
        tokens_in=sum(r.total_tokens_in for r in roots),
        tokens_out=sum(r.total_tokens_out for r in roots),
        cost_usd=sum(r.total_cost_usd for r in roots),
        unpriced_calls=sum(r.total_unpriced_calls for r in roots),
        source=root.trace.source,
        delegation_count=sum(1 for n in nodes if n.trace.kind == "delegation"),
        error_count=sum(1 for n in nodes if n.trace.status == "error"),
        running_count=running,
        max_depth=len(chain) - 1,
        deepest_chain=tuple(chain),
    )


def resolve_trace_id(store: TraceStore, prefix: str) -> str | None:
    """A full trace id from an unambiguous prefix (ids are long to type)."""
    rows = store.cursor().execute(
        "SELECT trace_id FROM agent_traces WHERE starts_with(trace_id, ?) ORDER BY trace_id LIMIT 2",
        [prefix]).fetchall()
    exact = [r for r in rows if r[0] == prefix]
    if exact or len(rows) == 1:
        return rows[0][0] if not exact else exact[0][0]
    return None


_ID_COLUMNS = {"trace": ("agent_traces", "trace_id"), "session": ("sessions", "session_id")}  # allow-list
SHOWN_MATCHES = 5


def check_unambiguous(store: TraceStore, what: str, prefix: str) -> None:
    """AgentTracesError, listing the first matches, when `prefix` starts more than one id of this kind
    ("trace" or "session") and none is exactly it."""
    table, column = _ID_COLUMNS[what]
    rows = [r[0] for r in store.cursor().execute(
        f"SELECT {column} FROM {table} WHERE starts_with({column}, ?) ORDER BY {column} LIMIT ?",
        [prefix, SHOWN_MATCHES + 1]).fetchall()]
    if len(rows) > 1 and prefix not in rows:
        total = store.cursor().execute(f"SELECT count(*) FROM {table} WHERE starts_with({column}, ?)",
                                       [prefix]).fetchone()[0]
        more = f", and {total - SHOWN_MATCHES} more" if total > SHOWN_MATCHES else ""
        raise AgentTracesError(f"{prefix!r} is ambiguous: it starts {total} {what} ids ("
                               f"{', '.join(rows[:SHOWN_MATCHES])}{more}); give more of the id.")


def resolve_session_id(store: TraceStore, prefix: str, source: str | None = None) -> str | None:
    """A full session id from an unambiguous prefix (of one agent's history with `source`)."""
    rows = store.cursor().execute(
        f"SELECT session_id FROM sessions WHERE starts_with(session_id, ?) AND {_OF_SOURCE}"
        " ORDER BY session_id LIMIT 2", [prefix, source, source]).fetchall()
    if any(r[0] == prefix for r in rows):
        return prefix
    return rows[0][0] if len(rows) == 1 else None


@dataclass(frozen=True)
class Reopen:
    """The session a trace reopens in a terminal, with the agent that resumes it (`source`), and why it is
    another session than the row's own, when it is (`note`)."""

    session_id: str
    directory: str
    source: str = "opencode"
    note: str | None = None


SUBAGENT_ALONE = ("A Claude Code subagent cannot be resumed on its own (claude --resume takes a session): this "
                  "reopens the session that ran it.")


def session_to_open(store: TraceStore, trace_id: str) -> Reopen | None:
    """The session a trace opens: a delegation its child session (its caller's when the call never got one), a
    session trace its own session. A Claude Code subagent opens its root session (see SUBAGENT_ALONE); a Codex
    spawned agent its own thread, which `codex resume` takes."""
    row = store.cursor().execute(
        "SELECT coalesce(c.session_id, s.session_id), coalesce(c.directory, s.directory), t.source,"
        " coalesce(c.parent_session_id, s.parent_session_id), r.session_id, r.directory FROM agent_traces t"
        " LEFT JOIN sessions c ON c.session_id = t.child_session_id"
        " LEFT JOIN sessions s ON s.session_id = t.session_id"
        " LEFT JOIN sessions r ON r.session_id = t.root_session_id WHERE t.trace_id = ?", [trace_id]).fetchone()
    if not row or not row[0]:
        return None
    session_id, directory, source, parent, root, root_directory = row
    if source == "claude-code" and parent is not None and root is not None:
        return Reopen(root, root_directory, source, SUBAGENT_ALONE)
    return Reopen(session_id, directory, source)


@dataclass(frozen=True)
class TraceFilter:
    """What the dashboard shows: whole session trees, chosen by these conditions.

    Session-level conditions (session, dates, delegations) pick root sessions; trace-level ones (agent, status,
    text) pick the trees that hold at least one matching trace, and mark those traces as hits.
    """

    session_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    agent: str | None = None
    status: str | None = None
    text: str | None = None
    with_delegations: bool = False
    pattern: str | None = None  # applied by analysis_queries.refine, after the SQL
    anomalies_only: bool = False
    source: str | None = None  # one agent's sessions (models.SOURCES)

    @property
    def narrows_traces(self) -> bool:
        return bool(self.agent or self.status or self.text or self.pattern or self.anomalies_only)


def filter_traces(store: TraceStore, f: TraceFilter) -> tuple[list[TraceSummary], set[str]]:
    """The traces of every session tree the filter selects, and the ids of the traces that match it."""
    needle = f.text or None
    sql = (
        "WITH hits AS (SELECT trace_id, root_session_id FROM agent_traces"
        "  WHERE (?::VARCHAR IS NULL OR subagent_type = ?) AND (?::VARCHAR IS NULL OR status = ?)"
        f"  AND (?::VARCHAR IS NULL OR {_TEXT_MATCH}))"
        f" SELECT {_select(TraceSummary, 't.')}, t.trace_id IN (SELECT trace_id FROM hits) AS hit"
        " FROM agent_traces t JOIN sessions s ON s.session_id = t.root_session_id"
        " WHERE t.root_session_id IN (SELECT root_session_id FROM hits)"
        " AND (?::VARCHAR IS NULL OR t.root_session_id = ?)"
        " AND (?::BIGINT IS NULL OR s.created_at >= epoch_ms(?::BIGINT))"
        " AND (?::BIGINT IS NULL OR s.created_at < epoch_ms(?::BIGINT))"
        " AND (NOT ? OR s.delegation_count > 0)"
        " AND (?::VARCHAR IS NULL OR s.source = ?)"
        " ORDER BY t.depth, t.started_at, t.trace_id"
    )
    params = [f.agent, f.agent, f.status, f.status, needle, *_text_params(needle),
              f.session_id, f.session_id, f.start_ms, f.start_ms, f.end_ms, f.end_ms, f.with_delegations,
              f.source, f.source]
    traces, hits = [], set()
    for row in store.cursor().execute(sql, params).fetchall():
        t = _summary(row[:-1])
        traces.append(t)
        if row[-1]:
            hits.add(t.trace_id)
    return traces, hits


def get_full_traces(store: TraceStore, root_session_id: str) -> list[AgentTrace]:
    """Every trace of a session tree with its full texts, parents before children."""
    rows = store.cursor().execute(
        f"SELECT {_FULL_COLUMNS} FROM agent_traces WHERE root_session_id = ? ORDER BY depth, started_at, trace_id",
        [root_session_id]).fetchall()
    return [_full(r) for r in rows]


_SPAN_SELECT = _select(AgentSpan)


def get_spans(store: TraceStore, trace_id: str) -> list[AgentSpan]:
    """The steps of one trace, in time order: each LLM call, then the tool calls it made."""
    rows = store.cursor().execute(f"SELECT {_SPAN_SELECT} FROM agent_spans WHERE trace_id = ?", [trace_id])
    return _in_order([AgentSpan(*r) for r in rows.fetchall()])


def get_full_trees(store: TraceStore, roots: list[str], text_chars: int | None = None
                   ) -> tuple[list[AgentTrace], dict[str, list[AgentSpan]]]:
    """Every trace of these session trees in full (by tree, parents before children), and the steps of each
    trace in the order of `get_spans`: two queries for any number of trees. With `text_chars`, every text
    (prompts, outputs, descriptions, a step's input, output and title) comes cut to that many characters by
    DuckDB itself: a 70 MB tool output never reaches Python (nor the memory of a writer's connection) whole."""
    cur = store.cursor()
    trace_columns, span_columns, cut = _FULL_COLUMNS, _SPAN_SELECT, []
    if text_chars is not None:
        trace_columns = _cut_columns(_FULL_COLUMNS, ("description", "prompt_input", "prompt_output"))
        span_columns = _cut_columns(_SPAN_SELECT, ("title", "input", "output"))
        cut = [int(text_chars)] * 3
    traces = [_full(r) for r in cur.execute(
        f"SELECT {trace_columns} FROM agent_traces WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))"
        " ORDER BY root_session_id, depth, started_at, trace_id", [*cut, roots]).fetchall()]
    by_trace: dict[str, list[AgentSpan]] = {}
    for r in cur.execute(f"SELECT {span_columns} FROM agent_spans"
                         " WHERE root_session_id IN (SELECT unnest(?::VARCHAR[]))", [*cut, roots]).fetchall():
        span = AgentSpan(*r)
        by_trace.setdefault(span.trace_id, []).append(span)
    return traces, {tid: _in_order(spans) for tid, spans in by_trace.items()}


def _cut_columns(columns: str, texts: tuple[str, ...]) -> str:
    """A select list with these text columns (names of this module's lists) cut to a bound number of
    characters, in the order they come."""
    return ", ".join(f"left({c}, ?::BIGINT)" if c in texts else c for c in columns.split(", "))


def _in_order(spans: list[AgentSpan]) -> list[AgentSpan]:
    """Each LLM call in time order, followed by the tool calls it made."""

    def when(s: AgentSpan) -> tuple[int, str]:
        return s.started_at, s.span_id

    under: dict[str, list[AgentSpan]] = {}
    for s in spans:
        if s.parent_span_id is not None:
            under.setdefault(s.parent_span_id, []).append(s)
    out: list[AgentSpan] = []
    for llm in sorted((s for s in spans if s.parent_span_id is None), key=when):
        out.append(llm)
        out.extend(sorted(under.pop(llm.span_id, ()), key=when))
    out.extend(sorted((s for rest in under.values() for s in rest), key=when))  # a parent lost to damage
    return out


def step_counts(store: TraceStore, trace_ids: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Per trace that has steps: (LLM calls, tool calls). Every trace, or only `trace_ids`."""
    where, params = ("", []) if trace_ids is None else ("WHERE list_contains(?, trace_id)", [trace_ids])
    rows = store.cursor().execute(
        "SELECT trace_id, count(*) FILTER (WHERE kind = 'llm'), count(*) FILTER (WHERE kind = 'tool')"
        f" FROM agent_spans {where} GROUP BY trace_id", params).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def tree_marks(store: TraceStore) -> dict[str, str]:
    """Per session tree, a mark that changes whenever any of its traces or steps does: what `push --follow`
    compares to skip, without building their spans, the trees it has already sent as they are."""
    rows = store.cursor().execute(
        "SELECT root_session_id, CAST(count(*) AS VARCHAR) || ':' || CAST(sum(h) AS VARCHAR) FROM ("
        " SELECT root_session_id, hash(t) AS h FROM agent_traces t"
        " UNION ALL SELECT root_session_id, hash(s) FROM agent_spans s) GROUP BY root_session_id").fetchall()
    return dict(rows)
