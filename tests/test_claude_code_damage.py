"""Damaged Claude Code files: each bad line or record is skipped and counted with its reason, the rest is exact.

The damaged lines are hand-written on purpose (the only hand-written JSON here), put into a copy of a real
history written by Claude Code 2.1.332.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analytics.claude_code import open_claude_source
from analytics.db import TraceStore
from analytics.loader import load
from analytics.models import LLM, LoadReport
from tests.conftest import FIXTURES, tree_digest
from tests.test_claude_code import build

CASE = FIXTURES / "claude-code-2.1.332" / "nested"

DAMAGED = [
    (b'{"type":"user","message":{"role":"user","content":"cut', "line"),  # truncated (a newline follows)
    (b"this is not JSON", "line"),
    (b'{"type":"user","uuid":"u-bad","message":{"role":"user","content":"caf\xe9 \xff"}}', "line"),  # not UTF-8
    (b'{"type":"assistant","uuid":5,"message":{"id":"msg_x"}}', "line"),  # wrong type
    (b'{"type":"assistant","message":{"id":"msg_y","content":7}}', "line"),  # wrong type, nested
    (b'{"type":"user","deep":' + b"[" * 50_000 + b"]" * 50_000 + b"}", "line"),  # nested too deeply
    (b'{"type":"hologram","sessionId":"s"}', "record"),  # a record type never seen
    (b'{"sessionId":"s","note":"no type"}', "record"),
    (b"[1, 2, 3]", "line"),  # JSON, but no record
]


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    live = tmp_path / "projects"
    shutil.copytree(CASE / "projects", live)
    session = next(p for p in live.rglob("*.jsonl") if not p.name.startswith("agent-"))
    return live, session


def _insert(path: Path, after: int, lines: list[bytes]) -> None:
    old = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(old[:after] + [x + b"\n" for x in lines] + old[after:]))


def test_damaged_lines_are_skipped_counted_and_change_nothing_else(tmp_path: Path) -> None:
    want_traces, want_infos, want_spans, _src = build(CASE)
    live, session = _copy(tmp_path)
    _insert(session, 3, [line for line, _what in DAMAGED])
    before = tree_digest(live)
    report = LoadReport()
    traces, infos, spans, _src = build(live, report)
    expected: dict[str, int] = {}
    for _line, what in DAMAGED:
        expected[what] = expected.get(what, 0) + 1
    assert report.skipped == expected
    reasons = " | ".join(report.skipped_examples)
    for why in ("not valid JSON", "not valid UTF-8", "wrong type", "nested too deeply", "unknown record type",
                "without a type"):
        assert why in reasons
    assert traces == want_traces
    assert spans == want_spans
    assert [i.session_id for i in infos] == [i.session_id for i in want_infos]
    assert tree_digest(live) == before


def test_a_damaged_store_load_is_counted_in_the_report(tmp_path: Path) -> None:
    live, session = _copy(tmp_path)
    _insert(session, 3, [b"{not json", b'{"type":"hologram"}'])
    with TraceStore(tmp_path / "t.duckdb") as store:
        report = load(store, open_claude_source(live))
        assert report.skipped == {"line": 1, "record": 1}
        assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 3


def test_lone_surrogates_written_by_javascript_are_read(tmp_path: Path) -> None:
    """A string JavaScript cut inside a surrogate pair is written as a lone escape: msgspec refuses it, Python's
    parser reads it, and the text keeps a replacement character instead."""
    live, session = _copy(tmp_path)
    lines = session.read_bytes().splitlines(keepends=True)
    i = next(k for k, x in enumerate(lines) if b'"type":"user"' in x and b'"content":"Go. ' in x)
    r = json.loads(lines[i])
    r["message"]["content"] = "Go. \ud83d"
    lines[i] = json.dumps(r, separators=(",", ":")).encode() + b"\n"
    session.write_bytes(b"".join(lines))
    report = LoadReport()
    traces, _infos, _spans, _src = build(live, report)
    assert report.skipped == {}
    assert next(t for t in traces if t.kind == "session").prompt_input == "Go. \ufffd"


def test_huge_numbers_are_counted_and_replaced(tmp_path: Path) -> None:
    live, session = _copy(tmp_path)
    lines = session.read_bytes().splitlines(keepends=True)
    i = next(k for k, x in enumerate(lines) if b'"type":"assistant"' in x)
    text = lines[i].decode()
    r = json.loads(text)
    r["message"]["usage"]["input_tokens"] = 10**30
    r["message"]["usage"]["output_tokens"] = -5
    lines[i] = json.dumps(r, separators=(",", ":")).encode() + b"\n"
    # and a float too large for a double, which only a hand can write
    lines.insert(i + 1, text.replace('"output_tokens":', '"output_tokens":1e999,"x":').encode())
    session.write_bytes(b"".join(lines))
    report = LoadReport()
    traces, _infos, spans, _src = build(live, report)
    assert report.skipped.get("tokens", 0) >= 2
    first = next(sp for sp in spans if sp.kind == LLM and sp.span_id == r["message"]["id"])
    assert (first.tokens_in, first.tokens_out) == (0, 0)  # counted as 0, and said so
    assert len(traces) == 3


def test_unknown_content_blocks_are_counted(tmp_path: Path) -> None:
    live, session = _copy(tmp_path)
    lines = session.read_bytes().splitlines(keepends=True)
    i = next(k for k, x in enumerate(lines) if b'"type":"assistant"' in x)
    r = json.loads(lines[i])
    r["message"]["content"].append({"type": "hologram", "data": 1})
    lines[i] = json.dumps(r, separators=(",", ":")).encode() + b"\n"
    session.write_bytes(b"".join(lines))
    report = LoadReport()
    traces, _infos, _spans, _src = build(live, report)
    assert report.skipped == {"block": 1}
    assert "unknown assistant content block 'hologram'" in report.skipped_examples[0]
    assert len(traces) == 3


@pytest.mark.parametrize("junk", [b"", b"\n\n", b"garbage without a newline"])
def test_empty_and_unfinished_files(tmp_path: Path, junk: bytes) -> None:
    live = tmp_path / "projects" / "-p"
    live.mkdir(parents=True)
    (live / "0b5e7c1e-0000-4000-8000-000000000000.jsonl").write_bytes(junk)
    report = LoadReport()
    traces, _infos, _spans, _src = build(tmp_path / "projects", report)
    assert report.skipped == {}  # an unfinished last line is not damage: it waits for the rest
    assert traces == []  # and a file with no conversation record in it is no session yet


def test_a_newer_version_is_read_and_said(tmp_path: Path) -> None:
    live, session = _copy(tmp_path)
    session.write_bytes(session.read_bytes().replace(b'"version":"2.1.332"', b'"version":"2.9.0"'))
    report = LoadReport()
    traces, _infos, _spans, _src = build(live, report)
    assert report.skipped == {"version": 1}
    assert "Claude Code 2.9.0 is newer" in report.skipped_examples[0]
    assert traces == build(CASE)[0]


def test_a_model_with_no_price_is_unknown_not_free(tmp_path: Path) -> None:
    """A model the price table does not know: each of its calls has an unknown cost (None, never 0), its trace
    counts them (`unpriced_calls`, its cost the known part), and the report names the model; nothing is
    skipped, the calls are read whole."""
    live, session = _copy(tmp_path)
    session.write_bytes(session.read_bytes().replace(b'"model":"claude-opus-5-5"', b'"model":"claude-future-9"'))
    report = LoadReport()
    traces, _infos, spans, _src = build(live, report)
    unknown = [sp for sp in spans if sp.kind == LLM and sp.name == "claude-future-9"]
    assert unknown and all(sp.cost_usd is None for sp in unknown)
    assert report.skipped == {} and report.unpriced == {"claude-future-9": len(unknown)}
    by_trace = {t.trace_id: t for t in traces}
    for trace_id in {sp.trace_id for sp in unknown}:
        own = [sp for sp in spans if sp.trace_id == trace_id and sp.kind == LLM]
        t = by_trace[trace_id]
        assert t.unpriced_calls == sum(sp.cost_usd is None for sp in own) > 0
        assert t.cost_usd == pytest.approx(sum(sp.cost_usd or 0 for sp in own))


def test_a_damaged_history_loads_into_duckdb(tmp_path: Path) -> None:
    """A few damaged lines at once, through `load()` into a store that held the undamaged history (moved here
    from the Claude Code mutation test, which tests/test_mutations.py now runs with the shared checks)."""
    history = tmp_path / "projects"
    for version, case in (("2.1.332", "nested"), ("2.1.332", "background"), ("2.1.332", "model-error"),
                          ("2.0.27", "parallel"), ("2.1.1", "parallel")):
        for p in (FIXTURES / f"claude-code-{version}" / case / "projects").iterdir():
            shutil.copytree(p, history / f"{version}-{p.name}")
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, open_claude_source(history))
        files = sorted(p for p in history.rglob("*.jsonl") if p.stat().st_size)
        saved = {p: p.read_bytes() for p in files}
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
