"""The `agent-traces` command line on real stores: human output, --json, and plain errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.cli import main
from tests.conftest import CASES_118, SAMPLE_118, SAMPLE_1165, copy_store, tree_digest


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
    assert out.err == ""  # stderr is no terminal here (a log, a pipe): no progress line in it
    main(["load", "--source", str(SAMPLE_1165 / "storage"), "--db", path])
    assert "0 new or changed" in capsys.readouterr().out


def test_load_shows_its_progress_on_a_terminal_in_one_line(tmp_path: Path) -> None:
    """On a terminal the progress is one line, written over in place and cleared at the end."""
    import pty

    main_fd, terminal = pty.openpty()
    try:
        run = subprocess.run([sys.executable, "-m", "analytics.cli", "load", "--source", str(SAMPLE_1165 / "storage"),
                              "--db", str(tmp_path / "t.duckdb")], stderr=terminal, stdout=subprocess.PIPE,
                             text=True, timeout=120)
        os.close(terminal)
        terminal = -1
        said = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal's other end is closed: all is read
                break
            if not chunk:
                break
            said += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(main_fd)
    assert run.returncode == 0 and "10 traces written" in run.stdout
    text = said.decode()
    assert "\r… 10 of 10 sessions read, 10 traces written" in text
    assert "\n" not in text.replace("\r\n", "") and text.endswith("\r\x1b[K")  # one line, cleared at the end


@pytest.mark.parametrize("argv", [
    ["--db", "{db}", "--source", "{src}", "load"],
    ["--source", "{src}", "load", "--db", "{db}"],
    ["--db", "{db}", "load", "--source", "{src}"],
    ["load", "--source", "{src}", "--db", "{db}"],
], ids=["both-before", "source-before", "db-before", "both-after"])
def test_common_options_count_before_and_after_the_command_name(tmp_path: Path, argv: list[str],
                                                                 capsys: pytest.CaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`agent-traces --db F load` once loaded into the default store: the command's own defaults overwrote
    the options given before its name."""
    monkeypatch.setenv("AGENT_TRACES_DB", str(tmp_path / "default.duckdb"))
    path = tmp_path / "chosen.duckdb"
    values = {"{db}": str(path), "{src}": str(SAMPLE_1165 / "storage")}
    assert main([values.get(a, a) for a in argv]) == 0
    assert path.exists() and not (tmp_path / "default.duckdb").exists()
    roots = _json(capsys, ["--json", "--db", str(path), "sessions"])
    assert len(roots) == 4 and _json(capsys, ["sessions", "--db", str(path), "--json"]) == roots


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
    assert [t["description"] for t in found["traces"]] == ["Huge context"] and found["total"] == 1
    assert main(["sessions", "--db", db, "--with-delegations"]) == 0


def test_search_says_when_the_limit_cuts_the_results(db: str, capsys: pytest.CaptureFixture) -> None:
    everything = _json(capsys, ["search", "", "--db", db, "--json", "--limit", "1000"])
    assert everything["total"] == everything["shown"] == len(everything["traces"]) == 14
    cut = _json(capsys, ["search", "", "--db", db, "--json", "--limit", "3"])
    assert (cut["total"], cut["shown"], len(cut["traces"])) == (14, 3, 3)
    assert main(["search", "", "--db", db, "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1] == "14 traces match, showing 3 of 14 (the newest); --limit N shows more."
    assert main(["search", "עברית", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 traces match."


def test_cleanup(db: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["cleanup", "--retention-days", "1", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "they will not be imported again (`agent-traces cleanup --forget` undoes that)" in out
    assert _json(capsys, ["sessions", "--db", db, "--json"]) == []


@pytest.mark.parametrize("days", ["0", "-1", "2.5", "true", "ten"])
def test_cleanup_refuses_less_than_a_day_and_non_integers(db: str, capsys: pytest.CaptureFixture,
                                                         days: str) -> None:
    """0 used to empty the store and hold every session back; now it is refused and nothing is touched."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["cleanup", "--retention-days", days, "--db", db])
    assert exit_.value.code == 2
    assert f"{days!r} is not a number of days from 1 to 36500" in capsys.readouterr().err
    assert len(_json(capsys, ["sessions", "--db", db, "--json"])) == 5


def test_cleanup_forget_brings_the_sessions_back(db: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["cleanup", "--retention-days", "1", "--db", db]) == 0
    assert main(["load", "--source", str(CASES_118), "--db", db, "--full"]) == 0
    out = capsys.readouterr().out
    assert "5 old sessions are held back by retention (cleaned on 20" in out
    assert "; `agent-traces cleanup --forget` brings them back." in out
    assert _json(capsys, ["load", "--source", str(CASES_118), "--db", db, "--json"])["held_back_sessions"] == 5
    assert _json(capsys, ["sessions", "--db", db, "--json"]) == []  # even --full brought none back
    assert main(["cleanup", "--forget", "--db", db]) == 0
    assert capsys.readouterr().out == (
        "Forgot 5 cleaned sessions: the next `agent-traces load` imports them again.\n")
    # OpenCode wrote nothing meanwhile: the load still reads again rather than skip the unchanged store
    assert main(["load", "--source", str(CASES_118), "--db", db]) == 0
    assert "held back" not in capsys.readouterr().out
    assert len(_json(capsys, ["sessions", "--db", db, "--json"])) == 5
    assert main(["cleanup", "--forget", "--db", db]) == 0
    assert "nothing to forget" in capsys.readouterr().out


def test_load_reports_bad_settings_once_and_uses_the_defaults(db: str, tmp_path: Path, monkeypatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "settings.json"
    bad.write_text('{"retention_days": "30", "refresh_seconds": 1e308}')  # a broken file, on purpose
    monkeypatch.setenv("AGENT_TRACES_CONFIG", str(bad))
    capsys.readouterr()
    assert main(["load", "--source", str(CASES_118), "--db", db]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f'agent-traces: {bad}: retention_days must be a whole number of days (1 or more), not "30"; '
                   "keeping everything.",
                   f"agent-traces: {bad}: refresh_seconds must be from 1 to 3600 seconds, not 1e+308; using 5 s."]
    assert len(_json(capsys, ["sessions", "--db", db, "--json"])) == 5  # nothing was cleaned


def test_plain_errors_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture, db: str) -> None:
    capsys.readouterr()
    assert main(["load", "--source", str(tmp_path / "missing"), "--db", db]) == 2
    assert capsys.readouterr().err.startswith("agent-traces: There is no file or folder at")
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


@pytest.mark.parametrize("command", [["sessions"], ["load", "--source", str(SAMPLE_118)], ["tree", "ses_x"]])
def test_a_db_that_is_not_a_trace_store_is_refused_before_duckdb_opens_it(tmp_path: Path, capsys,
                                                                          command: list[str]) -> None:
    """--db pointing at OpenCode's opencode.db made DuckDB try to download its SQLite extension to read it."""
    oc = copy_store(SAMPLE_118, tmp_path / "oc")
    before, listing = tree_digest(oc), sorted(p.name for p in oc.iterdir())
    assert main([*command, "--db", str(oc / "opencode.db")]) == 2
    err = capsys.readouterr().err
    assert "is not an agent-traces trace store: it is a SQLite database" in err and "--source" in err
    assert "extension" not in err and "download" not in err
    assert tree_digest(oc) == before and sorted(p.name for p in oc.iterdir()) == listing
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, not a database at all\n" * 10)
    assert main(["sessions", "--db", str(junk)]) == 2
    assert "is not an agent-traces trace store" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "bad"), [
    (["sessions", "--days", "nan"], "nan"), (["sessions", "--days", "inf"], "inf"),
    (["sessions", "--days", "-1"], "-1"), (["find", "a -> b", "--days", "nan"], "nan"),
    (["anomalies", "--days", "inf"], "inf"), (["metrics", "--days", "1e400"], "1e400"),
    (["search", "x", "--limit", "-1"], "-1"), (["search", "x", "--limit", "0"], "0"),
    (["metrics", "--limit", "-5"], "-5"),
    (["push", "--since", "nan", "--otlp-endpoint", "http://localhost:1"], "nan"),
    (["push", "--follow", "--interval", "1e300", "--otlp-endpoint", "http://localhost:1"], "1e300"),
    (["push", "--follow", "--interval", "0", "--otlp-endpoint", "http://localhost:1"], "0"),
    (["push", "--follow", "--interval", "nan", "--otlp-endpoint", "http://localhost:1"], "nan"),
])
def test_options_refuse_numbers_that_mean_nothing(db: str, capsys, argv: list[str], bad: str) -> None:
    """nan, inf, negative or zero counts and intervals ended in tracebacks (or, --interval 0, a busy loop)."""
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--db", db])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err and f"'{bad}' is not" in err


def test_an_ambiguous_id_prefix_says_so_and_lists_the_matches(db: str, capsys) -> None:
    assert main(["tree", "ses_", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "'ses_' is ambiguous: it starts" in err and "No session matches" not in err
    listed = err[err.index("(") + 1:err.index(")")].split(", ")
    assert len(listed) == 6 and all(i.startswith("ses_") for i in listed[:5]) and listed[5].endswith(" more")
    for command in (["show", "prt_"], ["steps", "prt_"], ["compare", "ses_", "ses_"]):
        assert main([*command, "--db", db]) == 2
        assert "is ambiguous: it starts" in capsys.readouterr().err
