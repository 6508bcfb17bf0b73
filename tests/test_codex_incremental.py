"""Incremental loads of Codex histories: a reload reads only the bytes appended since the last one (asserted on
what the reader read, not on time), a half-written last line waits, and a file rewritten in place is read again
whole. The histories grow here as Codex wrote them: the real fixture lines, appended in the order of their times."""

from __future__ import annotations

import heapq
import json
import os
from pathlib import Path

import pytest

import analytics.codex.reader as codex_reader
from analytics.codex import open_codex_source
from analytics.db import TraceStore
from analytics.loader import load
from tests.codex_support import CODEX_140, CODEX_171, read_store


class Growing:
    """A copy of a fixture history written line by line, in the order Codex wrote the lines (by their times; each
    file's lines stay in their order)."""

    def __init__(self, source: Path, dest: Path) -> None:
        self.dest = dest
        self.files = sorted(source.rglob("rollout-*.jsonl"))
        self.source = source
        streams = []
        for k, path in enumerate(self.files):
            lines = path.read_bytes().splitlines(keepends=True)
            streams.append([(json.loads(line)["timestamp"], k, i, line) for i, line in enumerate(lines)])
        self.order = list(heapq.merge(*streams))
        self.done = 0

    def target(self, k: int) -> Path:
        return self.dest / self.files[k].relative_to(self.source)

    def write(self, n: int) -> int:
        """Append the next n lines; the bytes appended."""
        written = 0
        for _ts, k, _i, line in self.order[self.done:self.done + n]:
            path = self.target(k)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as f:
                f.write(line)
            written += len(line)
        self.done = min(self.done + n, len(self.order))
        return written

    @property
    def left(self) -> int:
        return len(self.order) - self.done


def _reader(source) -> codex_reader.CodexReader:
    (reader,) = source.readers
    return reader


def _fresh(history: Path, db: Path) -> tuple[list, list]:
    with TraceStore(db) as store:
        load(store, open_codex_source(history))
        traces, spans = read_store(store)
    return sorted(traces, key=lambda t: t.trace_id), sorted(spans)


def _state(store: TraceStore) -> tuple[list, list]:
    traces, spans = read_store(store)
    return sorted(traces, key=lambda t: t.trace_id), sorted(spans)


def _same_as_fresh(store: TraceStore, history: Path, db: Path) -> None:
    assert _state(store) == _fresh(history, db)


@pytest.mark.parametrize("history", [CODEX_171, CODEX_140], ids=["0.171.0", "0.140.0"])
def test_a_history_loaded_while_it_grows_ends_as_a_full_load(history: Path, tmp_path: Path) -> None:
    """Reloads after each few lines (every state a live Codex passes through), each reading only what was
    appended (plus the few bytes checked at each changed file's end), end with what one load of the whole gives."""
    grow = Growing(history / "sessions", tmp_path / "h" / "sessions")
    grow.write(1)
    source = open_codex_source(tmp_path / "h")
    reader = _reader(source)
    step = max(1, grow.left // 12)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, source)
        while grow.left:
            before_sizes = {p: p.stat().st_size for p in (tmp_path / "h").rglob("*.jsonl")}
            appended = grow.write(step)
            changed = [p for p in (tmp_path / "h").rglob("*.jsonl") if p.stat().st_size != before_sizes.get(p)]
            read_before = reader.bytes_read
            report = load(store, source)
            assert report.skipped.keys() <= {"line", "file"}  # only lines still being written, if any
            read = reader.bytes_read - read_before
            assert appended <= read <= appended + 256 * len(changed)
        _same_as_fresh(store, tmp_path / "h", tmp_path / "fresh.duckdb")


def test_one_appended_line_is_all_a_reload_reads(tmp_path: Path) -> None:
    grow = Growing(CODEX_171 / "sessions", tmp_path / "h" / "sessions")
    grow.write(grow.left - 1)
    source = open_codex_source(tmp_path / "h")
    reader = _reader(source)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, source)
        read_before = reader.bytes_read
        assert load(store, source).unchanged  # nothing appended: nothing read
        assert reader.bytes_read == read_before
        line = grow.write(1)
        report = load(store, source)
        assert report.sessions_changed == 1 and report.skipped == {}
        assert line <= reader.bytes_read - read_before <= line + 256
        _same_as_fresh(store, tmp_path / "h", tmp_path / "fresh.duckdb")


def test_a_half_written_line_waits_for_the_next_load(tmp_path: Path) -> None:
    grow = Growing(CODEX_171 / "sessions", tmp_path / "h" / "sessions")
    last = grow.order[-1]
    grow.write(grow.left - 1)
    path = grow.target(last[1])
    source = open_codex_source(tmp_path / "h")
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, source)
        before = _state(store)
        line = last[3]
        with path.open("ab") as f:
            f.write(line[:len(line) // 2])
        report = load(store, source)
        assert report.skipped == {"line": 1}
        assert _state(store) == before  # the half line is not read as damage, nor as anything
        with path.open("ab") as f:
            f.write(line[len(line) // 2:])
        assert load(store, source).skipped == {}
        _same_as_fresh(store, tmp_path / "h", tmp_path / "fresh.duckdb")


@pytest.mark.parametrize("how", ["shrunk", "first bytes changed", "replaced by another file"])
def test_a_rewritten_rollout_is_read_again_whole(how: str, tmp_path: Path) -> None:
    grow = Growing(CODEX_171 / "sessions", tmp_path / "h" / "sessions")
    grow.write(grow.left)
    source = open_codex_source(tmp_path / "h")
    reader = _reader(source)
    # the resumed root: two turns, two children
    path = max((grow.target(k) for k in range(len(grow.files))), key=lambda p: p.stat().st_size)
    lines = path.read_bytes().splitlines(keepends=True)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, source)
        if how == "shrunk":  # the second turn gone
            cut = next(i for i in range(len(lines) - 1, 0, -1) if b'"task_started"' in lines[i])
            path.write_bytes(b"".join(lines[:cut]))
        elif how == "first bytes changed":  # in place, same size, same last bytes
            data = path.read_bytes()
            assert data[14:18] == b"2026"
            path.write_bytes(data[:14] + b"2025" + data[18:])  # the session_meta's own time
        else:  # another file under the same name, whose first line differs (a new inode, most likely)
            data = path.read_bytes().replace(b'"ordinal":0,', b'"ordinal": 0,', 1)
            path.unlink()
            path.write_bytes(data)
        st = path.stat()  # written later than the load (a file system's clock can be coarser than this test)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        read_before = reader.bytes_read
        load(store, source)
        assert reader.bytes_read - read_before >= path.stat().st_size
        _same_as_fresh(store, tmp_path / "h", tmp_path / "fresh.duckdb")


def test_a_deleted_rollout_leaves_the_store(tmp_path: Path) -> None:
    grow = Growing(CODEX_140 / "sessions", tmp_path / "h" / "sessions")
    grow.write(grow.left)
    source = open_codex_source(tmp_path / "h")
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, source)
        child = next(p for p in (tmp_path / "h").rglob("*.jsonl") if b'"parent_thread_id"' in p.read_bytes()[:4000])
        child.unlink()
        report = load(store, source)
        assert report.sessions_deleted == 1
        _same_as_fresh(store, tmp_path / "h", tmp_path / "fresh.duckdb")


def test_without_room_for_parse_state_a_reload_reads_the_changed_files_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parse state of only the newest rollouts is kept between loads (PARSED_BYTES): an older file that grows
    is parsed again whole, and the result is the same."""
    monkeypatch.setattr(codex_reader, "PARSED_BYTES", 0)
    grow = Growing(CODEX_171 / "sessions", tmp_path / "h" / "sessions")
    grow.write(grow.left - 3)
    source = open_codex_source(tmp_path / "h")
    reader = _reader(source)
    with TraceStore(tmp_path / "t.duckdb") as store:
        load(store, source)
        assert all(f.rollout is None for f in reader._files.values())
        grow.write(3)
        load(store, source)
        _same_as_fresh(store, tmp_path / "h", tmp_path / "fresh.duckdb")
