"""Claude Code files only grow: a reload reads only the bytes appended since the last one.

The fixtures are replayed as a running Claude Code writes them: every file grows in steps cut anywhere (inside
a line too), a load after each step, with one source kept between loads as the window keeps it. At the end the
store holds exactly what one load of the finished files gives, and every byte was parsed once.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from analytics.claude_code import open_claude_source
from analytics.db import TraceStore
from analytics.loader import load
from tests.conftest import FIXTURES
from tests.test_claude_code import CASES

STEPS = 7


def _store_rows(store: TraceStore) -> tuple[list[tuple], list[tuple], list[tuple]]:
    traces = store.conn.execute("SELECT * EXCLUDE (created_at) FROM agent_traces ORDER BY trace_id").fetchall()
    spans = store.conn.execute("SELECT * FROM agent_spans ORDER BY span_id").fetchall()
    sessions = store.conn.execute("SELECT * FROM sessions ORDER BY session_id").fetchall()
    return traces, spans, sessions


def _cuts(size: int, data: bytes) -> list[int]:
    """STEPS growing lengths of a file, ending at its size: some on a line end, some inside a line."""
    out = []
    for k in range(1, STEPS):
        cut = size * k // STEPS
        if k % 2:  # every other step ends on a line end, as a finished write does
            nl = data.rfind(b"\n", 0, cut)
            cut = nl + 1 if nl >= 0 else cut
        out.append(cut)
    return out + [size]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_growing_files_load_as_the_finished_ones(case: Path, tmp_path: Path) -> None:
    whole = FIXTURES / case / "projects"
    files = {p.relative_to(whole): p.read_bytes() for p in sorted(whole.rglob("*")) if p.is_file()}
    live = tmp_path / "live" / "projects"
    live.mkdir(parents=True)
    src = open_claude_source(live)
    reader = src.readers[0]
    cuts = {rel: _cuts(len(data), data) for rel, data in files.items()}
    with TraceStore(tmp_path / "live.duckdb") as store:
        for step in range(STEPS):
            for rel, data in files.items():
                dest = live / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "ab") as f:
                    f.write(data[dest.stat().st_size if dest.exists() else 0:cuts[rel][step]])
            report = load(store, src)
            # a subagent file cut ahead of its parent's call record has no call yet: said, then linked
            assert set(report.skipped) <= ({"subagent"} if step < STEPS - 1 else set()), report.skipped_examples
        got = _store_rows(store)
    read = [d for rel, d in files.items() if rel.suffix == ".jsonl" and d  # not Warmup subagents, not empty
            and not (rel.name.startswith("agent-") and b'"content":"Warmup"' in d.split(b"\n", 1)[0])]
    assert reader.stats.bytes_parsed == sum(len(d) for d in read)  # every byte parsed once, none again
    assert reader.stats.files_read_whole == len(read)
    with TraceStore(tmp_path / "whole.duckdb") as store:
        load(store, open_claude_source(whole))
        want = _store_rows(store)
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert [s[:-2] for s in got[2]] == [s[:-2] for s in want[2]]  # but created/updated: the files' times


@pytest.fixture
def live(tmp_path: Path) -> Path:
    dest = tmp_path / "projects"
    shutil.copytree(FIXTURES / "claude-code-2.1.332" / "resumed" / "projects", dest)
    return dest


def _session_file(live: Path) -> Path:
    return next(p for p in live.rglob("*.jsonl") if not p.name.startswith("agent-"))


def test_one_appended_line_is_all_a_reload_parses(live: Path, tmp_path: Path) -> None:
    src = open_claude_source(live)
    reader = src.readers[0]
    session = _session_file(live)
    line = session.read_bytes().splitlines(keepends=True)[-1]  # a cost-state record, written again
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, src)
        parsed, peeked, whole = reader.stats.bytes_parsed, reader.stats.bytes_peeked, reader.stats.files_read_whole
        with open(session, "ab") as f:
            f.write(line)
        report = load(store, src)
        assert report.sessions_changed == 1
        assert reader.stats.bytes_parsed - parsed == len(line)
        # the first bytes and the last ones read before, to see it was appended to (not written again whole)
        assert reader.stats.bytes_peeked - peeked <= 64 + 64
        assert reader.stats.files_read_whole == whole
        assert load(store, src).sessions_changed == 0  # and nothing at all when nothing changed
        assert reader.stats.bytes_parsed - parsed == len(line)


def test_a_half_written_line_waits_for_the_rest(live: Path, tmp_path: Path) -> None:
    src = open_claude_source(live)
    reader = src.readers[0]
    session = _session_file(live)
    data = session.read_bytes()
    lines = data.splitlines(keepends=True)
    prompt = next(i for i, x in enumerate(lines) if b'"Again. ' in x and b'"type":"user"' in x)
    head, tail = b"".join(lines[:prompt]), b"".join(lines[prompt:])
    session.write_bytes(head + lines[prompt][:40])  # the resumed run's prompt, cut after 40 bytes
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, src)
        first = store.conn.execute("SELECT prompt_output FROM agent_traces WHERE kind = 'session'").fetchone()[0]
        assert first.startswith("Finished. Task was: First.")
        assert reader.stats.bytes_parsed == len(head) + sum(
            p.stat().st_size for p in live.rglob("agent-*.jsonl"))
        with open(session, "ab") as f:
            f.write(tail[40:])
        report = load(store, src)
        assert report.skipped == {}
        out = store.conn.execute("SELECT prompt_output FROM agent_traces WHERE kind = 'session'").fetchone()[0]
        assert out.startswith("Finished. Task was: Again.")
        assert store.conn.execute("SELECT count(*) FROM agent_traces WHERE kind = 'delegation'").fetchone()[0] == 1
    assert session.read_bytes() == data


def test_a_rewritten_file_is_read_again_whole(live: Path, tmp_path: Path) -> None:
    """A file whose first bytes changed (or that shrank) was not appended to: its old state is dropped."""
    src = open_claude_source(live)
    reader = src.readers[0]
    session = _session_file(live)
    data = session.read_bytes()
    lines = data.splitlines(keepends=True)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, src)
        whole = reader.stats.files_read_whole
        session.write_bytes(b"".join(reversed(lines[:3])) + b"".join(lines[3:]))  # same size, other first bytes
        load(store, src)
        assert reader.stats.files_read_whole == whole + 1
        prompt = next(i for i, x in enumerate(lines) if b'"Again. ' in x and b'"type":"user"' in x)
        session.write_bytes(b"".join(lines[:prompt]))  # shrank: the resumed run gone
        load(store, src)
        assert reader.stats.files_read_whole == whole + 2
        out = store.conn.execute("SELECT prompt_output FROM agent_traces WHERE kind = 'session'").fetchone()[0]
        assert out.startswith("Finished. Task was: First.")


def test_state_beyond_the_budget_is_dropped_and_read_whole_again(live: Path, tmp_path: Path) -> None:
    src = open_claude_source(live)
    reader = src.readers[0]
    reader.retain_chars = 0  # keep no file's parse state
    session = _session_file(live)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, src)
        whole = reader.stats.files_read_whole
        with open(session, "ab") as f:
            f.write(session.read_bytes().splitlines(keepends=True)[-1])
        load(store, src)
        assert reader.stats.files_read_whole == whole + 2  # the session's file and its subagent's
        assert store.conn.execute("SELECT count(*) FROM agent_traces").fetchone()[0] == 2


def test_a_quiet_session_written_again_is_seen_within_a_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions not written for 12 hours are looked at by their session file, a few per load in turn: one
    written again after a long pause is loaded within (sessions / SWEEP_TREES) loads."""
    from analytics.claude_code import reader as reader_module

    monkeypatch.setattr(reader_module, "SWEEP_TREES", 1)
    live = tmp_path / "projects"
    for case in ("agent-tool", "parallel", "nested"):
        for p in (FIXTURES / "claude-code-2.1.332" / case / "projects").iterdir():
            shutil.copytree(p, live / p.name)
    week_ago = time.time() - 7 * 86400
    for p in live.rglob("*"):
        os.utime(p, (week_ago, week_ago))
    src = open_claude_source(live)
    session = _session_file(live)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, src)
        before = src.reader.stats.bytes_parsed
        with open(session, "ab") as f:
            f.write(session.read_bytes().splitlines(keepends=True)[-1])
        os.utime(session, (week_ago, week_ago))  # even with its time put back
        changed = [load(store, src).sessions_changed for _ in range(3)]
        assert sum(changed) == 1
        assert src.reader.stats.bytes_parsed > before


def test_a_long_file_is_read_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file is read CHUNK_BYTES at a time (lines longer than a piece included): the same records."""
    from analytics.claude_code import reader as reader_module
    from tests.test_claude_code import build

    case = FIXTURES / "claude-code-2.1.332" / "nested"
    want = build(case)[:3]
    monkeypatch.setattr(reader_module, "CHUNK_BYTES", 777)  # far shorter than most lines
    got = build(case)
    assert got[:3] == want
    assert got[3].reader.stats.bytes_parsed == sum(p.stat().st_size for p in case.rglob("*.jsonl"))


def test_a_file_written_again_longer_with_the_same_start_is_read_again_whole(live: Path, tmp_path: Path) -> None:
    """A line taken out of a session file, then the file written back whole: it grew and starts as before, but
    it was not appended to (the bytes before where the last read stopped differ); read as an append, a
    delegation was lost (found by the three-history mutation test)."""
    src = open_claude_source(live)
    reader = src.readers[0]
    session = _session_file(live)
    original = session.read_bytes()
    lines = original.splitlines(keepends=True)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, src)
        before = store.conn.execute("SELECT * EXCLUDE (created_at) FROM agent_traces ORDER BY 1").fetchall()
        session.write_bytes(b"".join(lines[:2] + lines[3:]))
        load(store, src)
        whole = reader.stats.files_read_whole
        session.write_bytes(original)
        load(store, src)
        assert reader.stats.files_read_whole == whole + 1
        assert store.conn.execute("SELECT * EXCLUDE (created_at) FROM agent_traces ORDER BY 1").fetchall() == before
