"""Text from OpenCode is data, never terminal control: the CLI's human output shows control characters
escaped (`fmt.printable`), and --json keeps the exact text."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analytics.format import printable
from dashboard.cli import main
from tests.conftest import CASES_118, copy_store

ROOT = "ses_dfe6a7b83ffeTovU9kqrsCi1Tf"  # "Scripted session 1" in cases-1.18.33
CHILD = "ses_dfe6a6a70ffecpRBYWKidoB6t4"
TRACE = "prt_20195957f001VcM5bcG3E4bWu1"  # its nested reviewer call, whose child session is CHILD
TITLE = "Fix \x1b]0;pwned\x07 it\x1b[2J \u202eevil\u2066 \x9b31m"
DESCRIPTION = "Check \x1b[31mbeta\x1b[0m\rhidden\nsecond line"
AGENT = "rev\x1b[8miewer"
PROMPT = "line one\n\tindented \x1b]0;x\x07\r\nafter crlf\rovertyped \u2028 \x7f end"
OUTPUT = "<task_result>\nDone \x1b[2J\x1bc\n</task_result>"
DIRECTORY = "/tmp/proj\x1b[2J\x85dir"
# every character that must not reach a terminal raw
RAW = ["\x1b", "\x07", "\r", "\x9b", "\x85", "\x7f", "\u202e", "\u2066", "\u2028"]


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("a\x1b]0;t\x07b") == r"a\x1b]0;t\x07b"
    assert printable("x\ny\tz\r") == r"x\ny\tz\r"  # one-line fields: a row stays one row
    assert printable("x\ny\tz\r\nw\rv", block=True) == "x\ny\tz\nw\\rv"  # a block keeps its lines and tabs
    assert printable("\x00\x1f\x7f\x80\x85\x9f") == r"\x00\x1f\x7f\x80\x85\x9f"
    assert printable("\u2028\u2029\u202a\u202e\u2066\u2069") == r"\u2028\u2029\u202a\u202e\u2066\u2069"
    plain = "עברית, 中文, emoji 🙂, box ├─ │ █, a literal \\x1b"
    assert printable(plain) == plain and printable(plain, block=True) == plain
    assert printable(None) == "None" and printable(3) == "3"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """cases-1.18.33 with hostile text put into a title, a call's description, agent, prompt and output, and a
    session directory (hand-made damage, on a copy)."""
    source = copy_store(CASES_118, tmp_path / "oc")
    conn = sqlite3.connect(source / "opencode.db")
    with conn:
        conn.execute("UPDATE session SET title = ? WHERE id = ?", [TITLE, ROOT])
        conn.execute("UPDATE session SET directory = ? WHERE id = ?", [DIRECTORY, CHILD])
        conn.execute("UPDATE part SET data = json_set(data, '$.state.input.description', ?,"
                     " '$.state.input.subagent_type', ?, '$.state.input.prompt', ?, '$.state.output', ?)"
                     " WHERE id = ?", [DESCRIPTION, AGENT, PROMPT, OUTPUT, TRACE])
    conn.close()
    path = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(source), "--db", path]) == 0
    return path


def _human(capsys: pytest.CaptureFixture, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    out = capsys.readouterr()
    for char in RAW:
        assert char not in out.out and char not in out.err, (argv, repr(char))
    return out.out


def test_human_output_never_passes_control_characters(db: str, capsys: pytest.CaptureFixture) -> None:
    sessions = _human(capsys, "sessions", "--db", db)
    assert r"Fix \x1b]0;pwned\x07 it\x1b[2J \u202eevil\u2066 \x9b31m" in sessions
    tree = _human(capsys, "tree", ROOT, "--db", db)
    assert r"rev\x1b[8miewer — Check \x1b[31mbeta\x1b[0m\rhidden\nsecond line" in tree
    assert r"\x1b[8m" in _human(capsys, "timeline", ROOT, "--db", db)
    show = _human(capsys, "show", TRACE, "--db", db)
    assert "Description  " + r"Check \x1b[31mbeta\x1b[0m\rhidden\nsecond line" in show
    assert "Directory    " + r"/tmp/proj\x1b[2J\x85dir" in show
    # the prompt is a block: its newlines and tab stay, CRLF is a line end, a lone CR and the rest are shown
    assert "line one\n\tindented \\x1b]0;x\\x07\nafter crlf\\rovertyped \\u2028 \\x7f end" in show
    assert r"Done \x1b[2J\x1bc" in show
    assert TRACE in _human(capsys, "search", "overtyped", "--db", db)
    assert r"rev\x1b[8miewer" in _human(capsys, "find", "* -> *", "--db", db)
    assert r"rev\x1b[8miewer" in _human(capsys, "metrics", ROOT, "--db", db)
    _human(capsys, "anomalies", "--db", db)
    opened = _human(capsys, "open", TRACE, "--dry-run", "--terminal", "xterm", "--db", db)
    assert r"cd -- '/tmp/proj\x1b[2J\x85dir'" in opened


def test_json_keeps_the_exact_text(db: str, capsys: pytest.CaptureFixture) -> None:
    """--json is exact, and a terminal shows it as it is: the C1 and bidi controls (which json.dumps leaves
    raw) are written as JSON escapes (\u009b), as JSON writes the C0 ones."""
    def run(*argv: str) -> object:
        capsys.readouterr()
        assert main([*argv, "--db", db, "--json"]) == 0
        out = capsys.readouterr().out
        for char in RAW:
            assert char not in out, (argv, repr(char))
        return json.loads(out)

    assert TITLE in {s["title"] for s in run("sessions")}
    shown = run("show", TRACE)
    trace = shown["trace"]
    assert (trace["description"], trace["subagent_type"], trace["prompt_input"]) == (DESCRIPTION, AGENT, PROMPT)
    assert "Done \x1b[2J\x1bc" in trace["prompt_output"] and shown["directory"] == DIRECTORY
    opened = run("open", TRACE, "--dry-run", "--terminal", "xterm")
    assert opened["directory"] == DIRECTORY and DIRECTORY in opened["argv"][-1]
    assert [t["description"] for t in run("search", "overtyped")["traces"]] == [DESCRIPTION]
    assert run("tree", ROOT) and run("timeline", ROOT) and run("find", "* -> *")
    capsys.readouterr()
    assert main(["export", ROOT, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "\\u009b31m" in out and not any(char in out for char in RAW)
    assert json.loads(out)["session"]["title"] == TITLE
