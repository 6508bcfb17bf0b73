"""The real sample stores load to exactly their expected traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.extraction import extract_traces, unwrap_output
from analytics.loader import load
from analytics.models import LoadReport
from analytics.opencode import open_source
from analytics.queries import trace_queries as q
from tests.conftest import SAMPLE_118, SAMPLE_1165, expected


def _by_id(traces):
    return {t.trace_id: t for t in traces}


@pytest.mark.parametrize("sample, source", [(SAMPLE_118, SAMPLE_118), (SAMPLE_1165, SAMPLE_1165 / "storage")],
                         ids=["sqlite-1.18.33", "json-1.1.65"])
def test_sample_loads_to_expected_traces(sample: Path, source: Path) -> None:
    report = LoadReport()
    traces = extract_traces(source, report=report)
    want = expected(sample)
    assert report.skipped == {}
    assert len(traces) == len(want)
    got = _by_id(traces)
    for e in want:
        tid = e["session_id"] if e["kind"] == "session" else e["part_id"]
        t = got[tid]
        assert t.kind == e["kind"]
        assert t.session_id == e["session_id"]
        assert t.child_session_id == e["child_session_id"]
        assert t.parent_trace_id == (e["parent"][1] if e["parent"] else None)
        assert t.parent_agent == e["parent_agent"]
        assert t.subagent_type == e["subagent_type"]
        assert t.prompt_input == e["prompt_input"]
        assert t.started_at == e["started_at"]
        assert (t.tokens_in, t.tokens_out) == (e["tokens_in"], e["tokens_out"])
        assert t.cost_usd == pytest.approx(e["cost"], abs=1e-12)
        if e["kind"] == "delegation":
            assert t.description == e["description"]
            assert t.status == e["status"]
            assert (t.ended_at, t.duration_ms) == (e["ended_at"], e["duration_ms"])
            assert list(t.tools_used) == e["tools_used"]
            if e["output_contains"] is None:
                assert t.prompt_output is None
            else:
                assert e["output_contains"] in t.prompt_output


def test_v2_capture_subagent_call(v2_dir: Path, tmp_path: Path) -> None:
    traces = _by_id(extract_traces(v2_dir))
    assert sum(t.kind == "session" for t in traces.values()) == 3
    d = traces["msg_11dc01ee9001zM23KqGAMXr1Kj:call_00492530"]
    assert d.kind == "delegation"
    assert d.session_id == "ses_ee23fe1e7ffeeiMs3y3TW987xd"
    assert d.child_session_id == "ses_ee23fe0f4ffeylWZL6V350JpvY"
    assert d.parent_trace_id == "ses_ee23fe1e7ffeeiMs3y3TW987xd"
    assert (d.parent_agent, d.subagent_type, d.description) == ("build", "general", "Look around")
    assert d.prompt_input == "List the files and summarise them."
    assert d.prompt_output == "Hello from the fake model. The answer is 42. "
    assert d.status == "completed"
    assert (d.started_at, d.ended_at, d.duration_ms) == (1791500492539, 1791500492589, 50)
    assert (d.tokens_in, d.tokens_out, d.tokens_cache_read) == (1000, 34, 200)
    assert d.cost_usd == pytest.approx(0.00357)
    with TraceStore(tmp_path / "t.duckdb") as store:  # its one LLM call carries each figure in its own field
        load(store, open_source(v2_dir))
        (llm,) = [sp for sp in q.get_spans(store, d.trace_id) if sp.kind == "llm"]
    assert (llm.tokens_in, llm.tokens_out, llm.tokens_reasoning, llm.tokens_cache_read, llm.tokens_cache_write,
            llm.cost_usd) == (d.tokens_in, d.tokens_out, d.tokens_reasoning, 200, d.tokens_cache_write,
                              pytest.approx(0.00357))
    assert (llm.parent_span_id, llm.input, llm.status) == (None, None, "completed")
    root = traces["ses_ee23fe1e7ffeeiMs3y3TW987xd"]
    assert root.subagent_type == "build"
    assert root.prompt_input == '"Please USE A SUBAGENT to look around"'
    assert root.prompt_output == "The command ran; it printed hi. Done. "
    assert root.tools_used == ("subagent",)
    assert (root.tokens_in, root.tokens_out) == (2000, 68)
    shell = traces["ses_ee23fe547ffeGrZPc2puP1wUU1"]
    assert shell.tools_used == ("read", "shell")


@pytest.mark.parametrize("text, answer", [
    ('<task id="ses_1" state="completed">\n<task_result>\nAll done.\n</task_result>\n</task>', "All done."),
    ("task_id: ses_1 (for resuming to continue this task if needed)\n\n<task_result>\nOK\n</task_result>", "OK"),
    ("Plain answer\n\n<task_metadata>\nsession_id: ses_1\n</task_metadata>", "Plain answer"),
    ('<subagent sessionID="ses_1" state="completed">\nHi <b>x</b>\n</subagent>', "Hi <b>x</b>"),
    ("just text", "just text"),
])
def test_unwrap_output_every_wrapper(text: str, answer: str) -> None:
    assert unwrap_output(text) == answer


@pytest.mark.parametrize("store", ["json", "sqlite"])
def test_every_reader_takes_task_and_subagent_calls_as_delegations(store: str, tmp_path: Path) -> None:
    """The 2.x tool name `subagent` is a delegation for every reader, as `task` is (its part renamed on purpose
    in a copy of the real 1.1.65 and 1.18.33 samples)."""
    import json
    import sqlite3

    from tests.conftest import copy_store

    if store == "json":
        data = copy_store(SAMPLE_1165 / "storage", tmp_path / "storage")
        part = next(p for p in sorted((data / "part").rglob("*.json")) if '"tool": "task"' in p.read_text())
        pid = part.stem
        doc = json.loads(part.read_text())
        doc["tool"] = "subagent"
        part.write_text(json.dumps(doc))
    else:
        data = copy_store(SAMPLE_118, tmp_path / "db")
        conn = sqlite3.connect(data / "opencode.db")
        pid = conn.execute("SELECT id FROM part WHERE json_extract(data, '$.tool') = 'task' ORDER BY id").fetchone()[0]
        conn.execute("UPDATE part SET data = json_set(data, '$.tool', 'subagent') WHERE id = ?", (pid,))
        conn.commit()
        conn.close()
    traces = _by_id(extract_traces(data))
    assert traces[pid].kind == "delegation"
    assert "subagent" in traces[traces[pid].parent_trace_id].tools_used
