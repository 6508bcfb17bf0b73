"""Damaged or unexpected Codex input is skipped and counted, never fatal, and the rest loads exactly; the history
is never written: a load leaves every byte and the folder listing as they were (Codex's state_5.sqlite too).

The damaged lines here are written by hand on purpose, into copies of the real fixture rollouts."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from analytics.codex import open_codex_source
from analytics.db import TraceStore
from analytics.loader import load
from tests.codex_support import (
    CODEX_140,
    CODEX_171,
    built,
    case_root,
    copy_history,
    raw_threads,
    read_store,
    steps,
    tree,
)
from tests.conftest import tree_digest

TS = "2026-12-05T01:22:47.020Z"


def _child_file(history: Path, case: str) -> Path:
    """The rollout of the spawned agent of a case."""
    threads = raw_threads(history)
    root = next(t for t in threads.values() if t.parent is None and (t.prompt or "").startswith(case + "."))
    return next(t.path for t in threads.values() if t.parent == root.id)


def _insert_after_turn_start(path: Path, lines: list[bytes]) -> None:
    """Put lines into a rollout right after its task_started record (the time of the next model call's start
    is the turn start's either way)."""
    raw = path.read_bytes().split(b"\n")
    at = next(i for i, line in enumerate(raw) if b'"type":"task_started"' in line) + 1
    ts = json.loads(raw[at - 1])["timestamp"].encode()
    path.write_bytes(b"\n".join(raw[:at] + [line.replace(b"@TS", ts) for line in lines] + raw[at:]))


DAMAGE = {
    "truncated": (b'{"timestamp":"@TS","ordinal":3,"type":"event_msg","payload":{"type":"tok', "line"),
    "not json": (b"this is not JSON", "line"),
    "not utf-8": (b'{"timestamp":"@TS","type":"event_msg","payload":{"type":"\xff\xfe"}}', "line"),
    "not an object": (b"[1, 2, 3]", "line"),
    "timestamp of another type": (b'{"timestamp":5,"type":"event_msg","payload":{"type":"error"}}', "line"),
    "payload of another type": (b'{"timestamp":"@TS","type":"event_msg","payload":[]}', "line"),
    "no timestamp": (b'{"type":"event_msg","payload":{"type":"task_complete"}}', "line"),
    "nested too deeply": (b'{"timestamp":"@TS","type":"event_msg","payload":{"type":"error","x":' + b"[" * 200_000
                          + b"]" * 200_000 + b"}}", "line"),
    "truncated record of a kind read past": (b'{"timestamp":"@TS","ordinal":4,"type":"world_state","payload":{"f',
                                             "line"),
    "unknown record type": (b'{"timestamp":"@TS","type":"brand_new_record","payload":{}}', "record"),
    "unknown event": (b'{"timestamp":"@TS","type":"event_msg","payload":{"type":"brand_new_event"}}', "event"),
    "unknown item": (b'{"timestamp":"@TS","type":"event_msg","payload":{"type":"item_completed",'
                     b'"item":{"type":"BrandNewItem"}}}', "event"),
    "unknown response item": (b'{"timestamp":"@TS","type":"response_item","payload":{"type":"hologram"}}',
                              "record"),
    "unknown field": (b'{"timestamp":"@TS","type":"turn_context","payload":{},"surprise":1}', "field"),
    "output of no call": (b'{"timestamp":"@TS","type":"response_item","payload":{"type":"function_call_output",'
                          b'"call_id":"call_nowhere","output":"?"}}', "record"),
    "blank line": (b"   ", None),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_a_damaged_line_is_skipped_and_counted_and_the_rest_loads_exactly(name: str, tmp_path: Path) -> None:
    history = copy_history(CODEX_171, tmp_path / "h")
    line, what = DAMAGE[name]
    _insert_after_turn_start(_child_file(history, "Spawn shell"), [line])
    traces, spans, report = built(history)
    expected_traces, expected_spans, _ = built(CODEX_171)
    assert report.skipped == ({what: 1} if what else {})
    assert report.skipped_examples[:1] == [] if what is None else report.skipped_examples[0].startswith(what)
    assert sorted(traces, key=lambda t: t.trace_id) == sorted(expected_traces, key=lambda t: t.trace_id)
    assert sorted(spans) == sorted(expected_spans)
    with TraceStore(tmp_path / "t.duckdb") as store:
        stored_report = load(store, open_codex_source(history))
        assert stored_report.skipped == report.skipped
        assert len(read_store(store)[0]) == len(expected_traces)


def _usage_line(path: Path) -> tuple[int, dict]:
    lines = path.read_text().split("\n")
    i = next(i for i, line in enumerate(lines) if '"type":"token_usage_record"' in line)
    return i, json.loads(lines[i])


def _replace_line(path: Path, i: int, obj: dict | str) -> None:
    lines = path.read_text().split("\n")
    lines[i] = obj if isinstance(obj, str) else json.dumps(obj)
    path.write_text("\n".join(lines))


@pytest.mark.parametrize(("figure", "reason"), [
    ("1e999", "overflow"), ("1000000000000000000000000000000", "out of range"), ("-5", "out of range"),
    ('"many"', "not a number"), ("null", "not a number"), ("true", "not a number"), ("3000.0", None),
])
def test_a_usage_figure_that_is_no_count_is_counted_as_zero(figure: str, reason: str | None,
                                                             tmp_path: Path) -> None:
    history = copy_history(CODEX_171, tmp_path / "h")
    path = _child_file(history, "Spawn shell")
    i, rec = _usage_line(path)
    text = json.dumps(rec).replace('"input_tokens": 3000,', f'"input_tokens": {figure},', 1)
    assert text != json.dumps(rec)
    _replace_line(path, i, text)
    traces, spans, report = built(history)
    child = tree(traces, case_root(traces, "Spawn shell"))[0]
    first = steps(spans, child.trace_id)[0]
    if reason is None:  # a float is a count (Codex never writes one)
        assert report.skipped == {} and sorted(spans) == sorted(built(CODEX_171)[1])
        return
    assert report.skipped == {"tokens": 1}, report.skipped_examples
    assert reason in report.skipped_examples[0] or reason == "not a number"
    assert first.tokens_in == 0 and first.tokens_cache_read == 1000  # the other figures stay exact
    assert child.tokens_in == 2000  # the other call's only
    with TraceStore(tmp_path / "t.duckdb") as store:
        assert load(store, open_codex_source(history)).skipped == {"tokens": 1}


def test_a_lone_surrogate_in_an_output_is_stored_as_a_replacement_character(tmp_path: Path) -> None:
    history = copy_history(CODEX_171, tmp_path / "h")
    path = _child_file(history, "Spawn shell")
    text = path.read_text()
    assert "Output:\\nhi\\n" in text
    path.write_text(text.replace("Output:\\nhi\\n", "Output:\\nhi \\ud83d\\n", 1))
    with TraceStore(tmp_path / "t.duckdb") as store:
        report = load(store, open_codex_source(history))
        traces, spans = read_store(store)
    assert report.skipped == {}
    tool = next(s for s in spans if s.title == "echo hi")
    assert tool.output.endswith("Output:\nhi \ufffd\n")


def test_an_unseen_version_is_read_and_counted(tmp_path: Path) -> None:
    history = copy_history(CODEX_140, tmp_path / "h")
    path = _child_file(history, "Spawn shell")
    path.write_text(path.read_text().replace('"cli_version":"0.140.0"', '"cli_version":"0.999.0"', 1))
    traces, spans, report = built(history)
    assert report.skipped == {"version": 1}
    assert "0.999.0" in report.skipped_examples[0]
    expected, expected_spans, _ = built(CODEX_140)
    assert sorted(spans) == sorted(expected_spans) and len(traces) == len(expected)


def test_a_rollout_whose_first_line_is_damaged_is_skipped_and_its_parent_loads(tmp_path: Path) -> None:
    history = copy_history(CODEX_171, tmp_path / "h")
    path = _child_file(history, "Spawn shell")
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\n" + data[data.index(b"\n") + 1:])
    traces, spans, report = built(history)
    assert report.skipped == {"file": 1} and "not JSON" in report.skipped_examples[0]
    root = case_root(traces, "Spawn shell")
    (call,) = tree(traces, root)
    # the call is still there, with what the parent knows: its prompt and the wait result
    assert call.status == "completed" and call.prompt_input.startswith("Run it.")
    assert call.prompt_output.startswith("Finished. Task was: Run it.")
    assert steps(spans, call.trace_id) == [] and call.tokens_in == 0


def test_files_that_are_no_rollout_are_left_alone(tmp_path: Path) -> None:
    history = copy_history(CODEX_140, tmp_path / "h")
    day = next(history.rglob("rollout-*.jsonl")).parent
    (day / "rollout-2025-04-17T10-00-00-old.json").write_text('{"session": {}, "items": []}')  # Codex 0.1
    (day / "notes.txt").write_text("hello")
    (day / "rollout-2026-12-05T00-00-00-01a243cc-0000-7000-8000-000000000000.jsonl").write_text(
        '{"timestamp":"2026-12-05T00:00:00.000Z","type":"turn_context","payload":{}}\n')
    (day / "rollout-2026-12-05T00-00-01-01a243cc-0000-7000-8000-000000000001.jsonl").write_text("")
    traces, _spans, report = built(history)
    assert report.skipped == {"file": 3}
    assert len(traces) == len(built(CODEX_140)[0])


def test_a_half_written_last_line_waits_and_is_counted(tmp_path: Path) -> None:
    history = copy_history(CODEX_171, tmp_path / "h")
    path = _child_file(history, "Spawn shell")
    with path.open("ab") as f:
        f.write(b'{"timestamp":"2026-12-05T01:22:48.000Z","ordinal":99,"type":"event_msg","pay')
    traces, spans, report = built(history)
    assert report.skipped == {"line": 1} and "still being written" in report.skipped_examples[0]
    expected, expected_spans, _ = built(CODEX_171)
    assert sorted(spans) == sorted(expected_spans)


# -- never written ---------------------------------------------------------------------------------------------

def _listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mode) for p in root.rglob("*"))


def test_the_fixture_histories_are_left_byte_for_byte(tmp_path: Path) -> None:
    for history in (CODEX_171, CODEX_140):
        before, listed = tree_digest(history), _listing(history)
        with TraceStore(tmp_path / f"{history.name}.duckdb") as store:
            load(store, open_codex_source(history))
            load(store, open_codex_source(history), full=True)
        assert tree_digest(history) == before and _listing(history) == listed


def test_a_codex_home_with_a_live_state_database_is_left_as_it_was(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A CODEX_HOME as Codex leaves it while it runs: state_5.sqlite in WAL mode with its -wal and -shm beside
    it. The reader never opens it, and a load (by CODEX_HOME, with no path) creates nothing anywhere."""
    home = tmp_path / ".codex"
    copy_history(CODEX_171 / "sessions", home / "sessions")
    (home / "config.toml").write_text('model = "mock-model"\n')
    writer = sqlite3.connect(home / "state_5.sqlite")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE thread_spawn_edges (parent_thread_id TEXT, child_thread_id TEXT PRIMARY KEY,"
                   " status TEXT)")
    writer.execute("INSERT INTO thread_spawn_edges VALUES ('a', 'b', 'open')")
    writer.commit()  # held open: the -wal stays
    try:
        assert (home / "state_5.sqlite-wal").exists()
        before, listed = tree_digest(home), _listing(home)
        monkeypatch.setenv("CODEX_HOME", str(home))
        with TraceStore(tmp_path / "t.duckdb") as store:
            report = load(store, open_codex_source())
        assert report.traces_written == 25
        assert tree_digest(home) == before and _listing(home) == listed
    finally:
        writer.close()


def test_a_rollout_that_cannot_be_read_is_counted(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    history = copy_history(CODEX_140, tmp_path / "h")
    path = next(history.rglob("rollout-*.jsonl"))
    path.chmod(0)
    _traces, _spans, report = built(history)
    assert report.skipped.get("file") == 1
