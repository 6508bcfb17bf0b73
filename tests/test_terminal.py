"""Opening a session in a terminal: one quoting function, tested with a hostile directory name."""

from __future__ import annotations

import os
import shlex
import stat
import time
from pathlib import Path

import pytest

from analytics.terminal import (
    ITERM_SCRIPT,
    TerminalError,
    open_session,
    osascript_argv,
    shell_command,
    template_argv,
    terminal_argv,
)

HOSTILE = "a'b\"c $(touch x) `touch y`;z & echo pwned > p\nnext"
SID = "ses_dfe6a6a70ffecpRBYWKidoB6t4"


def test_shell_command_quotes_every_value() -> None:
    cmd = shell_command(HOSTILE, SID)
    assert shlex.split(cmd) == ["cd", "--", HOSTILE, "&&", "opencode", "--session", SID]


def test_applescript_gets_the_command_as_an_argument_never_in_its_text() -> None:
    cmd = shell_command(HOSTILE, SID)
    for iterm in (True, False):
        argv = osascript_argv(cmd, iterm=iterm)
        assert argv[0] == "osascript" and argv[-2:] == ["--", cmd]
        script = [argv[i + 1] for i, a in enumerate(argv[:-2]) if a == "-e"]
        assert "\n".join(script).count(HOSTILE) == 0
        assert ("iTerm2" in "\n".join(script)) is iterm
    assert osascript_argv(cmd, iterm=True)[2::2][: len(ITERM_SCRIPT)] == list(ITERM_SCRIPT)


def test_macos_prefers_iterm_then_terminal_app() -> None:
    with_iterm = terminal_argv(HOSTILE, SID, platform="darwin", iterm_installed=lambda: True)
    without = terminal_argv(HOSTILE, SID, platform="darwin", iterm_installed=lambda: False)
    assert '  tell application "iTerm2"' in with_iterm and '  tell application "Terminal"' in without
    assert with_iterm[-1] == without[-1] == shell_command(HOSTILE, SID)


def test_linux_uses_terminal_env_then_known_emulators() -> None:
    found = {"konsole": "/usr/bin/konsole", "mykitty": "/opt/mykitty"}.get
    argv = terminal_argv(HOSTILE, SID, platform="linux", env={"TERMINAL": "mykitty"}, which=found)
    assert argv == ["/opt/mykitty", "-e", "sh", "-c", shell_command(HOSTILE, SID)]
    argv = terminal_argv(HOSTILE, SID, platform="linux", env={}, which=found)
    assert argv == ["/usr/bin/konsole", "-e", "sh", "-c", shell_command(HOSTILE, SID)]
    with pytest.raises(TerminalError, match=r"set \$TERMINAL"):
        terminal_argv(HOSTILE, SID, platform="linux", env={}, which=lambda _: None)


def test_template_values_stay_whole_arguments() -> None:
    argv = template_argv("kitty --directory {dir} opencode --session {id}", HOSTILE, SID, "ignored")
    assert argv == ["kitty", "--directory", HOSTILE, "opencode", "--session", SID]
    with pytest.raises(TerminalError, match="unknown field"):
        template_argv("term {nope}", HOSTILE, SID, "c")


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_hostile_directory_opens_that_directory_and_runs_nothing_else(tmp_path: Path, monkeypatch) -> None:
    """The real path end to end: a stub terminal that runs its command, a stub opencode that records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    _script(bin_dir / "opencode", f'pwd > "{record}.tmp"; for a in "$@"; do echo "$a"; done >> "{record}.tmp";'
                                  f' mv "{record}.tmp" "{record}"\n')
    _script(bin_dir / "stub-term", 'shift; exec "$@"\n')  # drops "-e", runs `sh -c COMMAND`
    work = tmp_path / "work"
    work.mkdir()
    target = work / HOSTILE
    target.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TERMINAL", "stub-term")
    monkeypatch.chdir(work)
    argv = open_session(str(target), SID)
    assert argv[0].endswith("stub-term")
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = record.read_text().splitlines()
    # pwd prints the directory with its newline, so it spans two lines; then the two arguments
    assert "\n".join(lines[:2]) == str(target)
    assert lines[2:] == ["--session", SID]
    assert sorted(p.name for p in work.iterdir()) == [HOSTILE]  # no x, y or p was created
    assert not (tmp_path / "x").exists() and not (target / "x").exists()


def test_cli_open_dry_run_prints_the_command(tmp_path: Path, capsys, monkeypatch) -> None:
    from analytics.cli import main
    from tests.conftest import CASES_118

    db = str(tmp_path / "t.duckdb")
    main(["load", "--source", str(CASES_118), "--db", db])
    monkeypatch.setenv("TERMINAL", "xterm")
    monkeypatch.setenv("PATH", str(tmp_path))  # no terminal installed
    capsys.readouterr()
    assert main(["open", "prt_20195957f001VcM5bcG3E4bWu1", "--dry-run", "--db", db]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("cd -- '/") and first.endswith("/proj dir' && opencode --session " + SID)
    assert second.startswith("(not run: No terminal emulator found")
