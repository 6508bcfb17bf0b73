"""The `agent-traces` command line on real stores: human output, --json, and plain errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.cli import main
from tests.conftest import CASES_118, SAMPLE_1165, copy_store


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(CASES_118), "--db", path]) == 0
    return path


def _json(capsys: pytest.CaptureFixture, argv: list[str]):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_load_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(SAMPLE_1165 / "storage"), "--db", path]) == 0
    out = capsys.readouterr()
    assert "10 sessions, 10 new or changed, 0 deleted; 10 traces written" in out.out
    assert "reading 10 sessions" in out.err  # progress goes to stderr
    main(["load", "--source", str(SAMPLE_1165 / "storage"), "--db", path])
    assert "0 new or changed" in capsys.readouterr().out


def test_load_reports_skipped_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    storage = copy_store(SAMPLE_1165, tmp_path / "s") / "storage"
    sorted((storage / "part").rglob("*.json"))[0].write_text('{"type": "te')
    assert main(["load", "--source", str(storage), "--db", str(tmp_path / "t.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "Skipped 1 unreadable items (1 part); the rest loaded." in out


def test_load_json_and_env_db(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    monkeypatch.setenv("AGENT_TRACES_DB", str(tmp_path / "env.duckdb"))
    report = _json(capsys, ["load", "--source", str(CASES_118), "--json"])
    assert report["traces_written"] == 14 and report["skipped"] == {}
    assert (tmp_path / "env.duckdb").exists()


def test_sessions_tree_timeline_show_search(db: str, capsys: pytest.CaptureFixture) -> None:
    sessions = _json(capsys, ["sessions", "--db", db, "--json"])
    par = next(s for s in sessions if s["delegation_count"] == 4)
    assert main(["tree", par["session_id"][:16], "--db", db]) == 0
    tree = capsys.readouterr().out
    assert "├─ ✓ general — Alpha job" in tree and "│  └─ ✓ reviewer — Check beta" in tree
    assert main(["timeline", par["session_id"], "--db", db]) == 0
    assert "█" in capsys.readouterr().out
    nodes = _json(capsys, ["tree", par["session_id"], "--db", db, "--json"])
    nested = nodes[0]["children"][1]["children"][0]["trace"]
    assert main(["show", nested["trace_id"], "--db", db]) == 0
    show = capsys.readouterr().out
    assert "Chain        build › coder › reviewer" in show and "Check it." in show
    found = _json(capsys, ["search", "עברית", "--db", db, "--json"])
    assert [t["description"] for t in found] == ["Huge context"]
    assert main(["sessions", "--db", db, "--with-delegations"]) == 0


def test_cleanup(db: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["cleanup", "--retention-days", "0", "--db", db]) == 0
    assert "they will not be imported again" in capsys.readouterr().out
    assert _json(capsys, ["sessions", "--db", db, "--json"]) == []


def test_plain_errors_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture, db: str) -> None:
    capsys.readouterr()
    assert main(["load", "--source", str(tmp_path / "missing"), "--db", db]) == 2
    assert capsys.readouterr().err.startswith("agent-traces: No OpenCode data at")
    assert main(["show", "prt_nope", "--db", db]) == 2
    assert "No trace matches" in capsys.readouterr().err
    assert main(["sessions", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "run `agent-traces load` first" in capsys.readouterr().err


def test_locked_trace_store_from_a_second_process(db: str) -> None:
    """A CLI load while another process holds the store: one sentence, exit code 2, no traceback."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
                               "print('ready', flush=True); sys.stdin.read()", db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        run = subprocess.run([sys.executable, "-m", "analytics.cli", "load", "--source", str(CASES_118),
                              "--db", db], capture_output=True, text=True, env={**os.environ})
        assert run.returncode == 2
        assert "is in use by another agent-traces process" in run.stderr
        assert "Traceback" not in run.stderr
    finally:
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()


def test_cli_load_waits_while_the_dashboard_holds_the_store_briefly(db: str) -> None:
    """The window holds the store for a moment at a time: a CLI load started meanwhile waits, then succeeds."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
                               "print('ready', flush=True); time.sleep(1.0); c.close()", db],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        run = subprocess.run([sys.executable, "-m", "analytics.cli", "load", "--source", str(CASES_118),
                              "--db", db], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "Nothing changed" in run.stdout
    finally:
        holder.wait(30)
        holder.stdout.close()
