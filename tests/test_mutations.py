"""Mutation test: damage copies of the real fixture stores in thousands of ways, from a fixed seed.

Each example changes one thing in one store: a column of a session, message or part row, a value somewhere
inside a row's JSON `data` or a JSON file (types swapped, fields removed, numbers huge, negative or not finite,
strings cut, ids pointing elsewhere, times out of order, values nested deeper than Python's recursion limit),
or a whole row or file (cut short, not UTF-8, deleted). Then it asserts that reading never raises, that every
trace, span and session record of the trees the change did not touch is the same, field by field, as from the
undamaged store, that the spans still hang together (unique ids, each under a trace, each tool call under an
LLM call of its trace, the LLM calls adding up to their trace's tokens and cost, a tool call's input JSON
text), and that DuckDB takes all of it; what is written is then read back as the window and the CLI read it
(findings, the spans a push sends, a tool call's argument), which must not raise either. The store with many
tool calls of many kinds (steps-1.18.33) is also damaged where the tool parts are: their input, output,
metadata, times, name, status and id, and their nesting depth.
A test does the same through `load()` on a store already holding the undamaged traces (the live case).
Claude Code's JSON lines (three storage generations) are damaged a line at a time with the same checks (Codex's
rollouts in tests/test_codex_mutations.py, with these checks too); and the last test loads OpenCode's store,
Claude Code's projects/ and Codex's sessions/ into one trace store, damages one of them and checks that the
next load leaves every other tree of all three exact, and that writing it whole again brings everything back.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import format as fmt
from analytics import jsontext
from analytics.db import TraceStore
from analytics.extraction import build_traces, extract
from analytics.loader import load
from analytics.models import LLM, TOOL, AgentSpan, AgentTrace, LoadReport, SessionInfo
from analytics.opencode import open_source
from analytics.otlp import trees_spans
from analytics.queries import findings as sf
from tests.conftest import SAMPLE_118, SAMPLE_1165, STEPS_118, build_v2_store, copy_store

CASES_RUN: dict[str, int] = {}  # examples run per test, printed at the end (`pytest -s`)


def _settings(n: int) -> settings:
    return settings(max_examples=n, derandomize=True, database=None, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@dataclass
class Read:
    """What a full load computes from a store, before it writes."""

    traces: list[AgentTrace]
    infos: list[SessionInfo]
    spans: list[AgentSpan]
    report: LoadReport


def read_all(path: Path) -> Read:
    """What a full load computes from a store, before it writes: traces, session records, spans (those its SQL
    makes too), the report."""
    report = LoadReport()
    traces, infos, spans = extract(path, report=report)
    return Read(traces, infos, spans, report)


def _by_root(records: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in records:
        out.setdefault(r.root_session_id, []).append(r)
    return out


@dataclass
class Baseline:
    """The undamaged store's traces and sessions grouped by root, and the ids that name each tree."""

    traces: dict[str, list[AgentTrace]]
    infos: dict[str, list[SessionInfo]]
    spans: dict[str, list[AgentSpan]]
    tree_of: dict[str, str]  # any session, message or part id -> its root session

    @classmethod
    def of(cls, path: Path, ids: dict[str, str]) -> Baseline:
        got = read_all(path)
        assert got.report.skipped_total == 0
        assert got.spans
        roots = {i.session_id: i.root_session_id for i in got.infos}
        base = cls(_by_root(got.traces), _by_root(got.infos), _by_root(got.spans),
                   {k: roots[s] for k, s in ids.items()})
        base.check(got, set())
        for sp in got.spans:  # (in a damaged load only the damaged trees' inputs are parsed again)
            if sp.input is not None:
                _json_input(sp.input)
        return base

    def touched(self, *texts: object) -> set[str]:
        """The trees any of these values names (a changed value may point into another tree)."""
        out = set()
        for text in texts:
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            if isinstance(text, str):
                out |= {self.tree_of[m] for m in _ID.findall(text) if m in self.tree_of}
        return out

    def check(self, read: Read, touched: set[str]) -> None:
        """Every tree not touched is exactly as it was; the traces still form a forest; the spans hang together."""
        traces, infos, spans = read.traces, read.infos, read.spans
        got, got_infos, got_spans = _by_root(traces), _by_root(infos), _by_root(spans)
        for root in self.traces.keys() - touched:
            assert sorted(got.get(root, []), key=_tid) == sorted(self.traces[root], key=_tid), root
            assert sorted(got_infos.get(root, []), key=_sid) == sorted(self.infos[root], key=_sid), root
            assert sorted(got_spans.get(root, []), key=_spid) == sorted(self.spans.get(root, []), key=_spid), root
        for t in traces:
            _well_typed(t)
        for i in infos:
            _well_typed(i)
        for sp in spans:
            _well_typed(sp)
        _spans_hang_together(traces, spans, touched | (got.keys() - self.traces.keys()))
        by_id = {t.trace_id: t for t in traces}
        assert len(by_id) == len(traces)  # one trace per id: DuckDB refuses a second one
        for t in traces:  # no parent cycles: every chain ends (parents may be missing in a damaged tree)
            seen, cur = set(), t
            while cur is not None and cur.parent_trace_id is not None:
                assert cur.trace_id not in seen
                seen.add(cur.trace_id)
                cur = by_id.get(cur.parent_trace_id)


def _spans_hang_together(traces: list[AgentTrace], spans: list[AgentSpan], damaged: set[str]) -> None:
    """Span ids are unique; every span belongs to a trace of its own tree, every tool call to an LLM call of its
    own trace (damage included: a tool call whose message is lost is lost with it); and in the trees nothing
    damaged, the LLM calls of each trace add up to the trace's own tokens and cost (in a damaged tree a message
    can count in two traces, a child session cut loose from its parent say, but it is one span)."""
    by_id = {sp.span_id: sp for sp in spans}
    assert len(by_id) == len(spans)
    trace_of = {t.trace_id: t for t in traces}
    for sp in spans:
        assert sp.kind in (LLM, TOOL), sp
        assert sp.trace_id in trace_of and trace_of[sp.trace_id].root_session_id == sp.root_session_id, sp
        if sp.kind == LLM:
            assert sp.parent_span_id is None, sp
        else:
            parent = by_id.get(sp.parent_span_id)  # type: ignore[arg-type]
            assert parent is not None and parent.kind == LLM and parent.trace_id == sp.trace_id, sp
        assert sp.duration_ms is None or sp.duration_ms == sp.ended_at - sp.started_at, sp  # type: ignore[operator]
        if sp.input is not None and sp.root_session_id in damaged:  # a tool call's input is JSON text, always
            _json_input(sp.input)
    sums: dict[str, list] = {}
    for sp in spans:
        if sp.kind == LLM:
            s = sums.setdefault(sp.trace_id, [0, 0, 0, 0, 0, 0.0, 0])
            for k, name in enumerate(_USAGE):
                s[k] += getattr(sp, name) or 0  # an unknown cost (None) adds nothing to the known part...
            s[6] += sp.cost_usd is None  # ...and is counted
        else:
            assert sp.cost_usd == 0.0, sp  # a tool call costs nothing of its own: its LLM call does
    for t in traces:
        if t.root_session_id not in damaged:
            s = sums.get(t.trace_id, [0, 0, 0, 0, 0, 0.0, 0])
            assert s[:5] == [getattr(t, name) for name in _USAGE[:5]], t.trace_id
            assert math.isclose(s[5], t.cost_usd, rel_tol=1e-9, abs_tol=1e-12), t.trace_id
            assert s[6] == t.unpriced_calls, t.trace_id


def _json_input(text: str) -> None:
    """A span's input is JSON text (at any depth), without NaN or Infinity, which are no JSON."""
    try:
        jsontext.dumps(jsontext.loads(text))
    except ValueError as exc:
        raise AssertionError(f"a span's input is not JSON: {exc}") from exc


_USAGE = ("tokens_in", "tokens_out", "tokens_reasoning", "tokens_cache_read", "tokens_cache_write", "cost_usd")


def _well_typed(record: AgentTrace | SessionInfo | AgentSpan) -> None:
    """Each field holds what its annotation says (what the store's columns take)."""
    annotations = ({f.name: f.type for f in fields(record)} if not isinstance(record, AgentSpan)
                   else {k: getattr(a, "__forward_arg__", a) for k, a in AgentSpan.__annotations__.items()})
    for name, annotation in annotations.items():
        v = getattr(record, name)
        kinds = {"str": (str,), "str | None": (str, type(None)), "int": (int,), "int | None": (int, type(None)),
                 "float": (float,), "float | None": (float, type(None)), "tuple[str, ...]": (tuple,)}[annotation]
        assert isinstance(v, kinds) and not isinstance(v, bool), (name, v)
        if isinstance(v, tuple):
            assert all(isinstance(x, str) for x in v), (name, v)


_ID = re.compile(r"(?:ses|msg|prt)_[0-9a-zA-Z]+")


def _tid(t: AgentTrace) -> str:
    return t.trace_id


def _sid(i: SessionInfo) -> str:
    return i.session_id


def _spid(sp: AgentSpan) -> str:
    return sp.span_id


class Written:
    """A real DuckDB file the damaged traces are written to, in batches (one write per example would be the
    load's own cost, ~50 ms; the batches keep the whole file under a minute). Ids are made unique per example."""

    def __init__(self, path: Path) -> None:
        self.store = TraceStore(path)
        self.traces: list[AgentTrace] = []
        self.infos: list[SessionInfo] = []
        self.spans: list[AgentSpan] = []
        self.n = 0

    def add(self, read: Read, touched: set[str], known: set[str]) -> None:
        """The records of the damaged trees (the others are the baseline's, which DuckDB took already)."""
        self.n += 1
        tag = f"#{self.n}"
        self.traces += [replace(t, trace_id=t.trace_id + tag) for t in read.traces
                        if t.root_session_id in touched or t.root_session_id not in known]
        self.infos += [replace(i, session_id=i.session_id + tag) for i in read.infos
                       if i.root_session_id in touched or i.root_session_id not in known]
        self.spans += [sp._replace(span_id=sp.span_id + tag, trace_id=sp.trace_id + tag) for sp in read.spans
                       if sp.root_session_id in touched or sp.root_session_id not in known]
        if len(self.traces) + len(self.spans) > 4000:
            self.flush()

    def flush(self) -> None:
        if self.traces or self.infos or self.spans:
            self.store.replace(roots=set(), traces=self.traces, sessions=self.infos, fingerprints={}, deleted=(),
                               full=False, source_key="mutations", stamp="", spans=self.spans)
            self.read_back()
        self.traces, self.infos, self.spans = [], [], []

    def read_back(self) -> None:
        """Read what was just written as the window and the CLI read it: the findings (a repeated call is
        grouped by its input), the spans a push sends, each tool call's argument. None of it may raise."""
        sf.find_findings(self.store, max((t.started_at for t in self.traces), default=0) + 10**9)
        trees_spans(self.store, sorted({t.root_session_id for t in self.traces}))
        for sp in self.spans:
            fmt.tool_argument(sp.input)


# -- values a mutation puts in --------------------------------------------------------------------------------

def _nested(depth: int, leaf: object, as_dict: bool = False) -> object:
    """`leaf` inside lists (or objects) nested `depth` deep, built without recursion."""
    for _ in range(depth):
        leaf = {"d": leaf} if as_dict else [leaf]
    return leaf


# deeper than Python's recursion limit: a model may nest a tool input so, and SQLite keeps it
DEEP = st.sampled_from([_nested(1500, 1), _nested(1500, "x", as_dict=True), _nested(20_000, None)])

FLOATS = st.sampled_from([1e999, -1e999, float("nan"), 1e308, -1e308, 1.5, -0.0, 1e17, -1e17, 2.0**63])
INTS = st.one_of(st.integers(-(2**70), 2**70),
                 st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63), 10**15 + 1, -100_000_000_000_000_000]))
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", "ses_", "\udcff", "<task_result>", "task", "user",
                                                        "assistant", "completed", "error", "running",
                                                        "step-finish", "tool", "text"]))


def json_values(ids: list[str], times: list[int]) -> st.SearchStrategy:
    """Any JSON value, leaning towards the ones that break readers: other types, ids of other rows, times."""
    near_time = st.tuples(st.sampled_from(times), st.integers(-10**7, 10**7)).map(sum)
    scalar = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT, st.sampled_from(ids), near_time)
    return st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(TEXT, scalar, max_size=3), DEEP)


def mutate_json(data: st.DataObject, doc: object, values: st.SearchStrategy) -> object:
    """The document with one value somewhere in it set, removed or cut (drawn step by step)."""
    if not isinstance(doc, (dict, list)) or not doc:
        return data.draw(values)
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = data.draw(st.sampled_from(keys))
    child = doc[key]
    op = data.draw(st.sampled_from(["deeper", "deeper", "set", "delete", "cut"]))
    out = dict(doc) if isinstance(doc, dict) else list(doc)
    if op == "deeper" and isinstance(child, (dict, list)) and child:
        out[key] = mutate_json(data, child, values)
    elif op == "delete":
        del out[key]
    elif op == "cut" and isinstance(child, str) and child:
        out[key] = child[:data.draw(st.integers(0, len(child) - 1))]
    else:
        out[key] = data.draw(values)
    return out


def mutate_text(data: st.DataObject, text: str, values: st.SearchStrategy) -> str | bytes:
    """A row's or file's JSON text with one change inside, or the text itself damaged."""
    how = data.draw(st.sampled_from(["inside"] * 6 + ["cut", "bad utf-8", "not an object"]))
    if how == "cut":
        return text[:data.draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "bad utf-8":
        at = data.draw(st.integers(0, len(text)))
        raw = text.encode()
        return raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + raw[at:]
    doc = json.loads(text)
    if how == "not an object":
        return _dumps(data.draw(values))
    return _dumps(mutate_json(data, doc, values))  # NaN/Infinity come out as the non-JSON tokens


def _dumps(value: object) -> str:
    """json.dumps (ASCII, NaN and Infinity as their tokens), at any depth."""
    return jsontext.dumps(value, (", ", ": "), allow_nan=True, ensure_ascii=True)


# -- SQLite stores ------------------------------------------------------------------------------------------------


@dataclass
class SqliteCase:
    path: Path
    template: bytes
    baseline: Baseline
    rows: list[tuple[str, str, dict]]  # (table, rowid, {column: value})
    ids: list[str]
    times: list[int]
    written: Written
    tool_rows: list[tuple[str, str, dict]] = field(default_factory=list)  # the tool parts, for aimed damage


TABLES = {
    "sqlite-v1": {"session": ("id", "parent_id", "title", "directory", "time_created", "time_updated", "agent"),
                  "message": ("id", "session_id", "time_created", "data"),
                  "part": ("id", "message_id", "session_id", "time_created", "data")},
    "sqlite-v2": {"session_v2": ("id", "parent_id", "title", "directory", "time_created", "time_updated",
                                 "agent"),
                  "session_message": ("id", "session_id", "type", "seq", "time_created", "data")},
}


def _sqlite_case(kind: str, db: Path, work: Path) -> SqliteCase:
    work.mkdir(parents=True, exist_ok=True)
    path = work / "opencode.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)  # the fixture stays as it is (no -shm)
    conn.execute("VACUUM INTO ?", (str(path),))
    conn.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    ids: dict[str, str] = {}
    rows = []
    for table, cols in TABLES[kind].items():
        for rowid, *values in conn.execute(f"SELECT rowid, {', '.join(cols)} FROM {table}"):
            row = dict(zip(cols, values, strict=True))
            rows.append((table, rowid, row))
            sid = row["id"] if table.startswith("session") and table != "session_message" else row["session_id"]
            ids[row["id"]] = sid
    messages = "message" if kind == "sqlite-v1" else "session_message"
    times = [r for r, in conn.execute(f"SELECT time_created FROM {messages}")]
    conn.close()
    baseline = Baseline.of(path, ids)
    return SqliteCase(path, path.read_bytes(), baseline, rows, sorted(ids), times, Written(work / "written.duckdb"))


def _column_values(case: SqliteCase) -> st.SearchStrategy:
    return st.one_of(st.none(), INTS, FLOATS, TEXT, st.sampled_from(case.ids),
                     st.binary(max_size=6), st.sampled_from([b"ses_\xff", b"\xff\xfe", b"msg_\xc3"]).map(_as_text),
                     st.tuples(st.sampled_from(case.times), st.integers(-10**7, 10**7)).map(sum))


class _as_text(bytes):  # noqa: N801 - a marker type: bind these bytes as TEXT (not valid UTF-8), not as a BLOB
    pass


def damage_sqlite(case: SqliteCase, data: st.DataObject) -> set[str] | None:
    """Write the undamaged store, change one thing in it, and return the trees the change touches (None when
    SQLite refused the change)."""
    case.path.write_bytes(case.template)
    table, rowid, row = data.draw(st.sampled_from(case.rows))
    cols = TABLES["sqlite-v1" if table in TABLES["sqlite-v1"] else "sqlite-v2"][table]
    col = data.draw(st.sampled_from(cols + ("data",) * 4 if "data" in cols else cols))
    values = json_values(case.ids, case.times)
    if col == "data" and data.draw(st.integers(0, 3)):
        new = mutate_text(data, row["data"], values)
    else:
        new = data.draw(_column_values(case))
    conn = sqlite3.connect(case.path)
    conn.execute("PRAGMA synchronous = OFF")  # a scratch copy: no fsync per example
    conn.execute("PRAGMA journal_mode = MEMORY")
    try:
        if isinstance(new, _as_text) or (col == "data" and isinstance(new, bytes)):
            conn.execute(f"UPDATE {table} SET {col} = CAST(? AS TEXT) WHERE rowid = ?", (bytes(new), rowid))
        else:
            conn.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (new, rowid))
        conn.commit()
    except (sqlite3.IntegrityError, OverflowError, UnicodeEncodeError):  # SQLite refuses: NOT NULL, a duplicate
        # key, an integer beyond 64 bits, a lone surrogate
        return None
    finally:
        conn.close()
    own = row["session_id"] if "session_id" in row else row["id"]
    return {case.baseline.tree_of[row["id"]], case.baseline.tree_of[own]} | case.baseline.touched(
        new, *row.values())


def _checked_load(case: SqliteCase, touched: set[str] | None) -> bool:
    """Load the damaged store and check it against the baseline; False when SQLite refused the damage."""
    if touched is None:
        return False
    read = read_all(case.path)
    case.baseline.check(read, touched)
    case.written.add(read, touched, set(case.baseline.traces))
    return True


def run_sqlite_mutation(case: SqliteCase, data: st.DataObject) -> bool:
    return _checked_load(case, damage_sqlite(case, data))


@pytest.fixture(scope="module")
def v1_case(tmp_path_factory: pytest.TempPathFactory) -> SqliteCase:
    return _sqlite_case("sqlite-v1", SAMPLE_118 / "opencode.db", tmp_path_factory.mktemp("v1"))


@pytest.fixture(scope="module")
def v2_case(tmp_path_factory: pytest.TempPathFactory) -> SqliteCase:
    db = build_v2_store(tmp_path_factory.mktemp("v2src"))
    return _sqlite_case("sqlite-v2", db, tmp_path_factory.mktemp("v2"))


def _run(name: str, n: int, body: Callable[[st.DataObject], bool], written: Written) -> None:
    """Run `body` on n examples; count the ones whose change SQLite took (it refuses a NULL id, say)."""
    count = 0

    @_settings(n)
    @given(st.data())
    def one(data: st.DataObject) -> None:
        nonlocal count
        count += body(data)

    one()
    written.flush()
    CASES_RUN[name] = count
    print(f"\n{name}: {count} mutations")
    assert count >= 0.8 * n


def test_sqlite_v1_mutations(v1_case: SqliteCase) -> None:
    _run("sqlite-v1 (1.18.33 sample)", 1200, lambda d: run_sqlite_mutation(v1_case, d), v1_case.written)


def test_sqlite_v2_mutations(v2_case: SqliteCase) -> None:
    _run("sqlite-v2 (2.0.26 capture)", 600, lambda d: run_sqlite_mutation(v2_case, d), v2_case.written)


# -- tool parts: the store with many tool calls of many kinds ------------------------------------------------------

HUGE_TIMES = st.sampled_from([1e999, -1e999, float("nan"), 2**63, 2**64 + 1, 10**20, -(2**63), -1, -10**15,
                              1e300, 1.5e12, "1796155868989", "", None, True, [1], {"t": 1}])


def damage_tool_part(case: SqliteCase, data: st.DataObject) -> set[str] | None:
    """Write the undamaged store and change a tool part where the span reader looks: its input, output, times,
    name, title, status or id (the rest of the part stays as the real binary wrote it)."""
    case.path.write_bytes(case.template)
    _table, rowid, row = data.draw(st.sampled_from(case.tool_rows))
    doc = json.loads(row["data"])
    state = doc.setdefault("state", {})
    what = data.draw(st.sampled_from(["input", "input", "output", "output", "start", "end", "swap", "tool",
                                      "status", "title", "error", "state", "id", "depth", "depth"]))
    values = json_values(case.ids, case.times)
    if what == "input":
        state["input"] = data.draw(st.one_of(
            TEXT, INTS, FLOATS, st.lists(TEXT, max_size=3), st.none(), st.booleans(),
            st.sampled_from(["x" * 300_000, {"k": "y" * 300_000}, {"nested": [[[[{"a": 1}]]]]}, []])))
        if data.draw(st.integers(0, 5)) == 0:
            del state["input"]
    elif what == "depth":  # the input (or the output, or metadata) nested deeper than recursion goes
        where = data.draw(st.sampled_from(["input", "input", "output", "metadata"]))
        deep = data.draw(DEEP)
        state[where] = {"pattern": "FIXME", "deep": deep} if where != "output" else deep
    elif what in ("output", "error", "title"):
        if data.draw(st.booleans()):
            state.pop(what, None)
        else:
            state[what] = data.draw(st.one_of(values, st.sampled_from(["z" * 300_000, ""])))
    elif what in ("start", "end"):
        if not isinstance(state.get("time"), dict):
            state["time"] = {}
        state["time"][what] = data.draw(st.one_of(HUGE_TIMES, st.tuples(st.sampled_from(case.times),
                                                               st.integers(-10**9, 10**9)).map(sum)))
    elif what == "swap":
        time = state.get("time") if isinstance(state.get("time"), dict) else {}
        time["start"], time["end"] = time.get("end"), time.get("start")
        state["time"] = time
    elif what == "tool":
        doc["tool"] = data.draw(st.one_of(INTS, FLOATS, st.none(), st.booleans(), st.lists(TEXT, max_size=2),
                                          st.sampled_from([{"name": "bash"}, "task", "subagent", "", "bash"])))
    elif what == "status":
        state["status"] = data.draw(st.one_of(TEXT, INTS, st.none(), st.sampled_from(["pending", "COMPLETED",
                                                                                      ["error"]])))
    elif what == "state":
        doc["state"] = data.draw(values)
    new = _dumps(doc)  # NaN/Infinity come out as the non-JSON tokens: that part is unreadable
    conn = sqlite3.connect(case.path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = MEMORY")
    try:
        if what == "id":  # the id of another part, message or session: a span or trace id twice
            new = data.draw(st.sampled_from(case.ids))
            conn.execute("UPDATE part SET id = ? WHERE rowid = ?", (new, rowid))
        else:
            conn.execute("UPDATE part SET data = ? WHERE rowid = ?", (new, rowid))
        conn.commit()
    except (sqlite3.IntegrityError, UnicodeEncodeError):  # a part's id taken; a lone surrogate in a text
        return None
    finally:
        conn.close()
    return {case.baseline.tree_of[row["id"]]} | case.baseline.touched(new[:2000], row["data"])


def run_tool_mutation(case: SqliteCase, data: st.DataObject) -> bool:
    return _checked_load(case, damage_tool_part(case, data) if data.draw(st.integers(0, 3))
                         else damage_sqlite(case, data))


@pytest.fixture(scope="module")
def steps_case(tmp_path_factory: pytest.TempPathFactory) -> SqliteCase:
    case = _sqlite_case("sqlite-v1", STEPS_118 / "opencode.db", tmp_path_factory.mktemp("steps"))
    case.tool_rows = [r for r in case.rows if r[0] == "part" and '"type":"tool"' in r[2]["data"]]
    assert len(case.tool_rows) > 50
    return case


def test_tool_part_mutations(steps_case: SqliteCase) -> None:
    _run("tool parts (1.18.33 steps)", 400, lambda d: run_tool_mutation(steps_case, d), steps_case.written)


# -- the legacy JSON store ----------------------------------------------------------------------------------------


@dataclass
class JsonCase:
    storage: Path
    files: list[Path]
    baseline: Baseline
    ids: list[str]
    times: list[int]
    written: Written


@pytest.fixture(scope="module")
def json_case(tmp_path_factory: pytest.TempPathFactory) -> JsonCase:
    work = tmp_path_factory.mktemp("json")
    storage = copy_store(SAMPLE_1165, work / "store") / "storage"
    files = sorted(p for sub in ("session", "message", "part") for p in (storage / sub).rglob("*.json"))
    ids: dict[str, str] = {}
    times = []
    for p in files:
        d = json.loads(p.read_text())
        sid = d["id"] if p.parent.parent.name == "session" else d["sessionID"]
        ids[d["id"]] = sid
        if isinstance(d.get("time"), dict) and "created" in d["time"]:
            times.append(d["time"]["created"])
    return JsonCase(storage, files, Baseline.of(storage, ids), sorted(ids), times, Written(work / "w.duckdb"))


def run_json_mutation(case: JsonCase, data: st.DataObject) -> bool:
    path = data.draw(st.sampled_from(case.files))
    original = path.read_bytes()
    text = original.decode()
    how = data.draw(st.sampled_from(["change"] * 8 + ["delete", "empty"]))
    new: str | bytes = ""
    try:
        if how == "delete":
            path.unlink()
        else:
            new = mutate_text(data, text, json_values(case.ids, case.times)) if how == "change" else ""
            path.write_bytes(new if isinstance(new, bytes) else new.encode("utf-8", "surrogatepass"))
        doc = json.loads(text)
        own = doc["id"] if path.parent.parent.name == "session" else doc["sessionID"]
        touched = {case.baseline.tree_of[own]} | case.baseline.touched(new, text)
        read = read_all(case.storage)
        case.baseline.check(read, touched)
        case.written.add(read, touched, set(case.baseline.traces))
    finally:
        path.write_bytes(original)
    return True


def test_json_store_mutations(json_case: JsonCase) -> None:
    _run("json (1.1.65 sample)", 600, lambda d: run_json_mutation(json_case, d), json_case.written)


# -- the live case: damage appears in a store already loaded -------------------------------------------------------


def test_load_into_a_loaded_store_keeps_untouched_trees(v1_case: SqliteCase, tmp_path_factory) -> None:
    """`load()` itself, incremental: the store holds the undamaged traces, OpenCode "writes" the damage (the
    touched sessions' event sequence moves on), the next load must leave every untouched tree as it was, and
    once the store is whole again the load after it brings back exactly the undamaged traces."""
    case = v1_case
    store = TraceStore(tmp_path_factory.mktemp("live") / "live.duckdb")
    case.path.write_bytes(case.template)
    load(store, open_source(case.path))
    before, before_spans = _stored(store), _stored(store, "agent_spans")
    assert before_spans
    sessions_of = {}
    for k, root in case.baseline.tree_of.items():
        if k.startswith("ses_"):
            sessions_of.setdefault(root, []).append(k)

    def body(data: st.DataObject) -> bool:
        touched = damage_sqlite(case, data)
        if touched is None:
            return False
        conn = sqlite3.connect(case.path)
        moved = [s for root in touched for s in sessions_of[root]]
        conn.execute("UPDATE event_sequence SET seq = seq + 1000 WHERE aggregate_id IN"
                     " (SELECT value FROM json_each(?))", (json.dumps(moved),))
        conn.commit()
        conn.close()
        load(store, open_source(case.path))
        after, after_spans = _stored(store), _stored(store, "agent_spans")
        for tid, row in before.items():
            if row["root_session_id"] not in touched:
                assert after.get(tid) == row, tid
        for sid, row in before_spans.items():
            if row["root_session_id"] not in touched:
                assert after_spans.get(sid) == row, sid
        case.path.write_bytes(case.template)  # OpenCode writes it whole again
        load(store, open_source(case.path))
        assert _stored(store) == before
        assert _stored(store, "agent_spans") == before_spans
        return True

    try:
        _run("load() into a loaded store (1.18.33 sample)", 50, body, case.written)
    finally:
        store.close()


def _stored(store: TraceStore, table: str = "agent_traces") -> dict[str, dict]:
    """Every row of the table (a fixed name) by its id; a trace's first-seen time left out."""
    cur = store.conn.execute({"agent_traces": "SELECT * EXCLUDE (created_at) FROM agent_traces",
                              "agent_spans": "SELECT * FROM agent_spans",
                              "sessions": "SELECT * FROM sessions"}[table])
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


# -- Claude Code's JSON lines ------------------------------------------------------------------------------------

CLAUDE_CASES = [("2.1.332", "nested"), ("2.1.332", "background"), ("2.1.332", "model-error"), ("2.0.27", "parallel"),
                ("2.1.1", "parallel")]  # subagents/ files with meta.json, a background call, a failed call; inline
# sidechains (2.0.27) and flat agent files with Warmups (2.1.1)


def read_claude(projects: Path) -> Read:
    """What a full load computes from a Claude Code projects/ folder, before it writes."""
    from analytics.claude_code import open_claude_source

    src = open_claude_source(projects)
    report = LoadReport()
    with src.reading():
        index = src.index(report)
        sessions = src.read(None, report)
        traces, infos, spans = build_traces(sessions, lambda need: src.fill_texts(need, report),
                                            {sid: s.parent_id for sid, s in index.items()}, report)
    return Read(traces, infos, spans, report)


def _claude_value(value: object, data: st.DataObject) -> object:
    """One change somewhere inside a parsed line: a key removed or nulled, or a value of another kind."""
    draw = data.draw
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["descend", "delete", "none"]))
        out = dict(value)
        if action == "delete":
            del out[key]
        elif action == "none":
            out[key] = None
        else:
            out[key] = _claude_value(value[key], data)
        return out
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        out = list(value)
        out[i] = _claude_value(value[i], data)
        return out
    return draw(st.sampled_from([
        10**30, -5, 1.5, float("inf"), float("nan"), "", "x" * 3, [], {}, True, 0,
        (value[: len(value) // 2] if isinstance(value, str) else "cut"),
        {"type": "hologram"}, [{"type": "tool_use"}], "2026-13-45T99:99:99Z",
    ]))


def damage_line(data: st.DataObject, text: bytes) -> bytes:
    """A JSON-lines file with one line changed: a value inside it, or the line cut short, not UTF-8, removed or
    written twice (what a crash, a disk or a newer agent can leave)."""
    lines = text.splitlines(keepends=True)
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    line = lines[i]
    kind = data.draw(st.sampled_from(["value", "value", "value", "cut", "utf8", "remove", "twice"]), label="how")
    if kind == "value":
        new = json.dumps(_claude_value(json.loads(line), data), separators=(",", ":")).encode() + b"\n"
    elif kind == "cut":
        new = line[: data.draw(st.integers(0, max(0, len(line) - 2)))] + b"\n"
    elif kind == "utf8":
        at = data.draw(st.integers(0, max(0, len(line) - 2)))
        new = line[:at] + b"\xff\xfe" + line[at + 1:]
    elif kind == "remove":
        new = b""
    else:
        new = line + line
    return b"".join(lines[:i] + [new] + lines[i + 1:])


@dataclass
class LinesCase:
    """A JSON-lines history (Claude Code's or Codex's), its files, its undamaged reading, the tree of each file."""

    root: Path
    files: dict[Path, bytes]  # file -> its undamaged bytes
    tree_of_file: dict[Path, str]
    baseline: Baseline
    read: Callable[[Path], Read]
    written: Written


def _lines_case(root: Path, read: Callable[[Path], Read], written: Path) -> LinesCase:
    got = read(root)
    assert got.report.skipped_total == 0 and got.spans
    roots = {i.session_id: i.root_session_id for i in got.infos}
    files = {p: p.read_bytes() for p in sorted(root.rglob("*.jsonl")) if p.stat().st_size}
    tree_of_file = {}
    for p, text in files.items():
        first = json.loads(text.split(b"\n", 1)[0])
        own = first.get("sessionId") or first.get("payload", {}).get("id")  # Claude Code's record, Codex's meta
        tree_of_file[p] = roots.get(own, own)  # a Warmup file: its session's, whose trees it is left out of
    base = Baseline(_by_root(got.traces), _by_root(got.infos), _by_root(got.spans), dict(roots))
    base.check(got, set())
    return LinesCase(root, files, tree_of_file, base, read, Written(written))


def run_lines_mutation(case: LinesCase, data: st.DataObject) -> bool:
    path = data.draw(st.sampled_from(sorted(case.files)), label="file")
    original = case.files[path]
    new = damage_line(data, original)
    try:
        path.write_bytes(new)
        read = case.read(case.root)
    finally:
        path.write_bytes(original)
    touched = {case.tree_of_file[path]}  # (the values put in name no other tree)
    case.baseline.check(read, touched)
    case.written.add(read, touched, set(case.baseline.traces))
    return True


@pytest.fixture(scope="module")
def claude_case(tmp_path_factory: pytest.TempPathFactory) -> LinesCase:
    from tests.conftest import FIXTURES

    work = tmp_path_factory.mktemp("claude")
    for version, name in CLAUDE_CASES:
        for project in (FIXTURES / f"claude-code-{version}" / name / "projects").iterdir():
            copy_store(project, work / "projects" / f"{version}-{project.name}")
    return _lines_case(work / "projects", read_claude, work / "written.duckdb")


def test_claude_code_mutations(claude_case: LinesCase) -> None:
    """Claude Code's files (2.1.332's subagents/ with meta.json, 2.1.1's flat agent files and Warmups, 2.0.27's
    inline sidechains), one line damaged at a time: the same checks as OpenCode's stores."""
    _run("claude code (2.1.332, 2.1.1, 2.0.27)", 600, lambda d: run_lines_mutation(claude_case, d),
         claude_case.written)


# -- the three histories in one store: damage in one leaves the others, and its own other trees, exact ---------


def test_damage_in_one_history_leaves_the_others_in_the_store_exact(v1_case: SqliteCase, claude_case: LinesCase,
                                                                   tmp_path_factory) -> None:
    """OpenCode's store, Claude Code's projects/ and Codex's sessions/ loaded by one `Sources` into one store, as
    the window and `push --follow` keep them: one of them damaged, the next (incremental) load of all three must
    leave every untouched tree of every history as it was, steps and sessions included; written whole again,
    the load after brings back exactly what was there."""
    from analytics.sources import open_paths
    from tests.agents_support import codex_sessions

    work = tmp_path_factory.mktemp("three")
    codex_root = codex_sessions(work / "sessions")
    codex_files = {p: p.read_bytes() for p in codex_root.rglob("*.jsonl")}
    v1_case.path.write_bytes(v1_case.template)
    sources = open_paths([v1_case.path, claude_case.root, codex_root])
    store = TraceStore(work / "three.duckdb")
    sources.load(store)
    before = {table: _stored(store, table) for table in ("agent_traces", "agent_spans", "sessions")}
    assert {r["source"] for r in before["sessions"].values()} == {"opencode", "claude-code", "codex"}
    codex_tree = {}
    for p, text in codex_files.items():
        tid = json.loads(text.split(b"\n", 1)[0])["payload"]["id"]
        codex_tree[p] = before["sessions"][tid]["root_session_id"]
    sessions_of: dict[str, list[str]] = {}
    for k, root in v1_case.baseline.tree_of.items():
        if k.startswith("ses_"):
            sessions_of.setdefault(root, []).append(k)

    def body(data: st.DataObject) -> bool:
        which = data.draw(st.sampled_from(["opencode", "claude-code", "codex"]), label="history")
        restore: tuple[Path, bytes]
        if which == "opencode":
            touched = damage_sqlite(v1_case, data)
            if touched is None:
                return False
            conn = sqlite3.connect(v1_case.path)  # OpenCode moves the sessions' event sequence on
            conn.execute("UPDATE event_sequence SET seq = seq + 1000 WHERE aggregate_id IN"
                         " (SELECT value FROM json_each(?))",
                         (json.dumps([s for root in touched for s in sessions_of[root]]),))
            conn.commit()
            conn.close()
            restore = (v1_case.path, v1_case.template)
        else:
            files, tree = ((claude_case.files, claude_case.tree_of_file) if which == "claude-code"
                           else (codex_files, codex_tree))
            path = data.draw(st.sampled_from(sorted(files)), label="file")
            path.write_bytes(damage_line(data, files[path]))
            touched = {tree[path]}
            restore = (path, files[path])
        try:
            sources.load(store)
            for table, rows in before.items():
                after = _stored(store, table)
                for key, row in rows.items():
                    if row["root_session_id"] not in touched:
                        assert after.get(key) == row, (which, table, key)
        finally:
            restore[0].write_bytes(restore[1])  # the agent writes it whole again
        sources.load(store)
        assert {table: _stored(store, table) for table in before} == before
        return True

    try:
        _run("three histories in one store", 90, body, v1_case.written)
    finally:
        store.close()
