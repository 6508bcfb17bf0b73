"""Mutation test for Claude Code histories: damage a copy of the real fixtures in many ways, from a fixed seed.

Each example changes one line of one file: a value somewhere inside it (types swapped, fields removed, numbers
huge, negative or not finite, strings cut), or the line itself (cut short, not UTF-8, removed, written twice).
Reading never raises; every trace, step and session record of the other session trees is the same, field by
field, as from the undamaged files; the steps still hang together (unique ids, each under a trace, each tool
call under an LLM call of its trace, the LLM calls adding up to their trace's tokens); DuckDB takes all of it.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.claude_code import open_claude_source
from analytics.db import TraceStore
from analytics.loader import load
from analytics.models import LLM, TOOL, LoadReport
from tests.conftest import FIXTURES
from tests.test_claude_code import build

CASES = [("2.1.332", "nested"), ("2.1.332", "background"), ("2.1.332", "model-error"), ("2.0.27", "parallel"),
         ("2.1.1", "parallel")]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("claude") / "projects"
    for version, case in CASES:
        for p in (FIXTURES / f"claude-code-{version}" / case / "projects").iterdir():
            shutil.copytree(p, dest / f"{version}-{p.name}")
    return dest


def _by_tree(traces, infos, spans) -> dict[str, tuple]:
    out: dict[str, tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
    for t in traces:
        out[t.root_session_id][0].append(t)
    for i in infos:
        out[i.root_session_id][1].append(i)
    for sp in spans:
        out[sp.root_session_id][2].append(sp)
    return {k: (sorted(a, key=lambda t: t.trace_id), sorted(b, key=lambda i: i.session_id),
                sorted(c, key=lambda s: s.span_id)) for k, (a, b, c) in out.items()}


def _mutate_value(value: object, draw) -> object:
    """One change somewhere inside a parsed line."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["descend", "delete", "none"]))
        out = dict(value)
        if action == "delete":
            del out[key]
        elif action == "none":
            out[key] = None
        else:
            out[key] = _mutate_value(value[key], draw)
        return out
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        out = list(value)
        out[i] = _mutate_value(value[i], draw)
        return out
    return draw(st.sampled_from([
        10**30, -5, 1.5, float("inf"), float("nan"), "", "x" * 3, [], {}, True, 0,
        (value[: len(value) // 2] if isinstance(value, str) else "cut"),
        {"type": "hologram"}, [{"type": "tool_use"}], "2026-13-45T99:99:99Z",
    ]))


@st.composite
def mutations(draw, files: list[Path]) -> tuple[Path, bytes]:
    path = draw(st.sampled_from(files))
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    kind = draw(st.sampled_from(["value", "value", "value", "cut", "utf8", "remove", "twice"]))
    if kind == "value":
        new = json.dumps(_mutate_value(json.loads(line), draw), separators=(",", ":")).encode() + b"\n"
    elif kind == "cut":
        new = line[: draw(st.integers(0, max(0, len(line) - 2)))] + b"\n"
    elif kind == "utf8":
        at = draw(st.integers(0, max(0, len(line) - 2)))
        new = line[:at] + b"\xff\xfe" + line[at + 1:]
    elif kind == "remove":
        new = b""
    else:
        new = line + line
    return path, b"".join(lines[:i] + [new] + lines[i + 1:])


def test_mutations_never_raise_and_leave_other_trees_exact(history: Path) -> None:
    base_traces, base_infos, base_spans, _src = build(history)
    baseline = _by_tree(base_traces, base_infos, base_spans)
    files = sorted(p for p in history.rglob("*.jsonl") if p.stat().st_size)
    root_of_dir = {}
    for t in base_traces:
        if t.kind == "session":
            root_of_dir[t.session_id] = t.root_session_id

    def tree_of(path: Path) -> str:
        for part in path.parts[::-1]:
            stem = part.removesuffix(".jsonl")
            if stem in root_of_dir:
                return stem
        first = json.loads(path.read_bytes().split(b"\n", 1)[0])
        return first["sessionId"]

    @settings(max_examples=600, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutations(files))
    def check(change: tuple[Path, bytes]) -> None:
        path, new = change
        touched = tree_of(path)
        old = path.read_bytes()
        path.write_bytes(new)
        try:
            report = LoadReport()
            traces, infos, spans, _src = build(history, report)
        finally:
            path.write_bytes(old)
        got = _by_tree(traces, infos, spans)
        for root, rows in baseline.items():
            if root != touched:
                assert got.get(root) == rows, root
        ids = [sp.span_id for sp in spans]
        assert len(ids) == len(set(ids))
        trace_ids = {t.trace_id for t in traces}
        llm = {sp.span_id: sp for sp in spans if sp.kind == LLM}
        for sp in spans:
            assert sp.trace_id in trace_ids
            if sp.kind == TOOL:
                assert llm[sp.parent_span_id].trace_id == sp.trace_id
                assert sp.input is None or isinstance(json.loads(sp.input), (dict, list, str, int, float, bool))
        for t in traces:
            own = [sp for sp in llm.values() if sp.trace_id == t.trace_id]
            assert t.tokens_in == sum(sp.tokens_in for sp in own)

    check()


def test_a_damaged_history_loads_into_duckdb(history: Path, tmp_path: Path) -> None:
    """A few damaged lines at once, through `load()` into a store that held the undamaged history."""
    with TraceStore(tmp_path / "t.duckdb") as store:
        src = open_claude_source(history)
        load(store, src)
        files = sorted(p for p in history.rglob("*.jsonl") if p.stat().st_size)
        saved = {p: p.read_bytes() for p in files}
        try:
            for n, p in enumerate(files):
                lines = saved[p].splitlines(keepends=True)
                k = (n * 7) % len(lines)
                value = json.loads(lines[k])
                value["timestamp"] = 10**30 if n % 2 else "not a time"
                value["message"] = {"id": 5} if n % 3 == 0 else value.get("message")
                lines[k] = json.dumps(value).encode() + b"\n"
                p.write_bytes(b"".join(lines) + b"\xff\xfe{\n")
            report = load(store, open_claude_source(history))
            assert report.skipped_total > 0
            assert store.conn.execute("SELECT count(*) FROM agent_traces WHERE kind = 'session'").fetchone()[0] == 5
        finally:
            for p, data in saved.items():
                p.write_bytes(data)
