"""What a push sends of the texts (prompts, outputs, tool inputs and outputs): any size of text goes cut with a
marker, never as a crash; the user chooses how much goes (--content, otlp_content) and is told what will
leave the machine before it does. On real stores, to the small real HTTP server of tests/conftest.py (Backend)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from analytics.cli import main
from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.otlp import FULL_TEXT_BYTES
from tests.conftest import STEPS_118, Backend, attrs, copy_store

HUGE_MB = 68  # a tool output of 65-70 MB made every push fail with DuckDB out of memory



@pytest.fixture(scope="module")
def huge_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trace store loaded from the steps store, one of whose bash calls printed 68 MB (incompressible, as
    the output of `cat` on a binary would be): OpenCode keeps it whole."""
    work = tmp_path_factory.mktemp("huge")
    oc = copy_store(STEPS_118, work / "oc")
    conn = sqlite3.connect(oc / "opencode.db")
    pid, data = conn.execute("SELECT id, data FROM part WHERE data LIKE '%\"tool\":\"bash\"%'"
                             " AND data LIKE '%\"status\":\"completed\"%' ORDER BY id LIMIT 1").fetchone()
    part = json.loads(data)
    part["state"]["output"] = os.urandom(HUGE_MB * 1024 * 1024 // 2).hex()
    conn.execute("UPDATE part SET data = ? WHERE id = ?", [json.dumps(part), pid])
    conn.commit()
    conn.close()
    with TraceStore(work / "t.duckdb") as store:
        load(store, open_source(oc))
    return work / "t.duckdb"


def _copy(db: Path, tmp_path: Path) -> Path:
    target = tmp_path / "t.duckdb"
    target.write_bytes(db.read_bytes())
    return target


def test_a_huge_tool_output_is_sent_cut_with_a_marker(huge_db: Path, tmp_path: Path, backend: Backend,
                                                     capsys) -> None:
    db = _copy(huge_db, tmp_path)
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--content", "full"]) == 0
    assert capsys.readouterr().out.startswith("Sent ")
    outputs = [attrs(s).get("output.value", "") for s in backend.spans()]
    (cut,) = [o for o in outputs if "[cut by agent-traces" in o]
    assert len(cut.encode()) < FULL_TEXT_BYTES + 200
    assert max(len(r.SerializeToString()) for _, _, r in backend.requests) < 4 * 1024 * 1024
    roots = {s.trace_id for s in backend.spans()}
    with TraceStore(db, read_only=True) as store:
        sid = store.cursor().execute("SELECT root_session_id FROM agent_spans WHERE length(output) > 1000000"
                                     ).fetchone()[0]
    assert main(["export", sid, "--db", str(db), "--otlp-endpoint", backend.url, "--content", "full"]) == 0
    assert main(["export", sid, "--db", str(db), "--format", "otlp", "-o", str(tmp_path / "s.json")]) == 0
    assert "[cut by agent-traces" in (tmp_path / "s.json").read_text() and len(roots) > 1


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.duckdb"
    with TraceStore(path) as store:
        load(store, open_source(STEPS_118))
    return path


TEXTS = ("input.value", "output.value", "gen_ai.agent.description", "agent_traces.title")


def test_by_default_texts_are_cut_and_what_goes_is_said_first(huge_db: Path, tmp_path: Path, backend: Backend,
                                                               capsys) -> None:
    db = _copy(huge_db, tmp_path)
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url]) == 0
    out = capsys.readouterr()
    spans = len(backend.spans())
    assert out.err.startswith(f"Sending {spans} spans of ") and " KB) to " in out.err or " MB) to " in out.err
    assert out.err.rstrip().endswith("prompts, outputs and tool inputs cut to 8 KB each.")
    assert out.out.startswith(f"Sent {spans} spans")
    longest = max(len(str(attrs(s).get(k, "")).encode()) for s in backend.spans() for k in TEXTS)
    assert 8 * 1024 < longest < 8 * 1024 + 100  # the 68 MB output, cut to 8 KB and marked
    assert sum(len(r.SerializeToString()) for _, _, r in backend.requests) < 2 * 1024 * 1024


def test_a_dry_run_says_what_would_go_and_sends_nothing(db: Path, backend: Backend, capsys) -> None:
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Would send ") and "Nothing was sent (--dry-run)." in out
    assert backend.posts == 0
    with TraceStore(db, read_only=True) as store:
        assert store.cursor().execute("SELECT count(*) FROM pushed").fetchone()[0] == 0
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--json", "--dry-run"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["to_send"] > 0 and said["to_send_bytes"] > 0 and said["sent"] == 0 and said["content"] == "cut"
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url]) == 0
    assert f"Sent {said['to_send']} spans of {said['to_send_sessions']} sessions" in capsys.readouterr().out


def test_content_none_sends_figures_and_structure_only(db: Path, backend: Backend, capsys) -> None:
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--content", "none"]) == 0
    assert "no prompts, outputs or tool inputs" in capsys.readouterr().err
    spans = backend.spans()
    assert spans and not any(k in attrs(s) for s in spans for k in TEXTS)
    messages = {s.status.message for s in spans if s.status.code == 2}
    assert "error" in messages and all(m == "error" or m.startswith("interrupted: no write since ") for m in messages)
    assert all(attrs(s)["gen_ai.operation.name"] for s in spans)
    assert any("gen_ai.usage.input_tokens" in attrs(s) for s in spans)
    sent = len(spans)  # another choice of content is other spans: sent again
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--content", "full"]) == 0
    assert len(backend.spans()) == 2 * sent


def test_the_settings_choose_the_content_and_a_bad_one_is_said(db: Path, backend: Backend, tmp_path: Path,
                                                                monkeypatch, capsys) -> None:
    settings = tmp_path / "settings.json"
    monkeypatch.setenv("AGENT_TRACES_CONFIG", str(settings))
    settings.write_text(json.dumps({"otlp_content": "cut", "otlp_cut_kb": 1}))
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--dry-run"]) == 0
    assert "cut to 1 KB each" in capsys.readouterr().out
    settings.write_text(json.dumps({"otlp_content": "everything", "otlp_cut_kb": 0}))
    assert main(["push", "--db", str(db), "--no-load", "--otlp-endpoint", backend.url, "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "otlp_content must be one of full, cut, none" in out.err and "otlp_cut_kb must be" in out.err
    assert "cut to 8 KB each" in out.out
    with pytest.raises(SystemExit):
        main(["push", "--db", str(db), "--otlp-endpoint", backend.url, "--cut", "0"])


def test_push_help_says_what_leaves_the_machine(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["push", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--content {full,cut,none}", "--dry-run", "prompts, outputs and tool inputs",
                  "names, times, tokens, costs", "how many sessions, spans and bytes"):
        assert words in text, words
