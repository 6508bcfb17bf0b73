"""Opening a session in a terminal: one quoting function, tested with hostile directory names.

Linux emulators get `sh -c LINE` as arguments, so quoting is the whole defence and newlines or control
characters in a directory are fine; iTerm2 and Terminal.app type the line into a shell, so a control character
there is refused with a sentence.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from analytics.terminal import (
    ITERM_SCRIPT,
    TERMINAL_NAMES,
    TerminalError,
    open_session,
    osascript_argv,
    plan,
    shell_command,
    template_argv,
)
from tests.conftest import CASES_118, copy_store

TYPEABLE = "a'b\"c $(touch x) `touch y`;z & echo pwned > p"  # nothing a shell would take as a key press
HOSTILE = TYPEABLE + "\nnext"
SID = "ses_dfe6a6a70ffecpRBYWKidoB6t4"
# Each one a key press for a shell reading typed input: ^U kills the line, ^C cancels it, DEL erases, and the
# Unicode separators, NEL and a C1 CSI, which some terminals treat as line ends or escapes.
CONTROL = {"^U": "\x15", "^C": "\x03", "DEL": "\x7f", "LS": "\u2028", "PS": "\u2029", "NEL": "\x85",
           "CSI": "\x9b", "LF": "\n", "TAB": "\t", "ESC": "\x1b"}


def test_shell_command_quotes_every_value() -> None:
    cmd = shell_command(HOSTILE, SID)
    assert shlex.split(cmd) == ["cd", "--", HOSTILE, "&&", "opencode", "--session", SID]


def test_applescript_gets_the_command_as_an_argument_never_in_its_text() -> None:
    cmd = shell_command(TYPEABLE, SID)
    for iterm in (True, False):
        argv = osascript_argv(cmd, iterm=iterm)
        assert argv[0] == "osascript" and argv[-2:] == ["--", cmd]
        script = [argv[i + 1] for i, a in enumerate(argv[:-2]) if a == "-e"]
        assert "\n".join(script).count(TYPEABLE) == 0
        assert ("iTerm2" in "\n".join(script)) is iterm
    assert osascript_argv(cmd, iterm=True)[2::2][: len(ITERM_SCRIPT)] == list(ITERM_SCRIPT)


def test_macos_prefers_iterm_then_terminal_app() -> None:
    with_iterm = plan(TYPEABLE, SID, platform="darwin", iterm_installed=lambda: True)
    without = plan(TYPEABLE, SID, platform="darwin", iterm_installed=lambda: False)
    assert '  tell application "iTerm2"' in with_iterm.argv and '  tell application "Terminal"' in without.argv
    assert with_iterm.argv[-1] == without.argv[-1] == shell_command(TYPEABLE, SID)
    assert with_iterm.typed == without.typed == shell_command(TYPEABLE, SID)  # what is typed into the shell


@pytest.mark.parametrize("name", list(CONTROL))
@pytest.mark.parametrize("terminal", ["iterm2", "terminal-app"])
def test_typing_terminals_refuse_control_characters(name: str, terminal: str) -> None:
    """iTerm2's write text and Terminal.app's do script type the line: a control character inside the quotes
    would be a key press there (^U discards what was typed, and the rest runs), so it is refused."""
    app = {"iterm2": "iTerm2", "terminal-app": "Terminal.app"}[terminal]
    char = CONTROL[name]
    for directory, session_id, what in ((f"/tmp/x{char}touch pwned", SID, "directory"),
                                        ("/tmp/ok", SID + char, "session id")):
        with pytest.raises(TerminalError) as err:
            plan(directory, session_id, terminal=terminal)
        message = str(err.value)
        assert message.startswith(f"Not typing this session into {app}: its {what} ")
        assert "holds a control character" in message and "^U erases the line typed so far" in message
        assert "Open it by hand: start a terminal in that directory" in message and "opencode --session" in message
        assert not any(c in message for c in CONTROL.values())  # the sentence shows it escaped, never raw
    # the same on macOS when the terminal is chosen automatically, and at the osascript step itself
    with pytest.raises(TerminalError, match=f"into {app}"):
        plan(f"/tmp/x{char}", SID, platform="darwin", iterm_installed=lambda: terminal == "iterm2")
    with pytest.raises(TerminalError, match="holds a control character"):
        osascript_argv(shell_command(f"/tmp/x{char}", SID), iterm=terminal == "iterm2")


def test_emulators_and_templates_take_control_characters_quoted() -> None:
    """A Linux emulator is given `sh -c LINE` as arguments: nothing is typed, so nothing is refused."""
    weird = HOSTILE + "".join(CONTROL.values())
    assert plan(weird, SID, terminal="xterm", which=lambda _: None).argv == [
        "xterm", "-e", "sh", "-c", shell_command(weird, SID)]
    assert plan(weird, SID, template="kitty --directory {dir} opencode --session {id}").argv[2] == weird


def test_any_terminal_can_be_named_on_any_platform() -> None:
    cmd = shell_command(TYPEABLE, SID)
    for platform in ("linux", "darwin"):
        iterm = plan(TYPEABLE, SID, terminal="iterm2", platform=platform)
        assert iterm.argv[:3] == ["osascript", "-e", "on run argv"] and iterm.typed == cmd
        assert '  tell application "iTerm2"' in iterm.argv
        app = plan(TYPEABLE, SID, terminal="terminal-app", platform=platform)
        assert '  tell application "Terminal"' in app.argv and app.typed == cmd
        kitty = plan(TYPEABLE, SID, terminal="kitty", platform=platform, which=lambda _: None)
        assert kitty.argv == ["kitty", "sh", "-c", cmd] and kitty.typed is None
        gnome = plan(TYPEABLE, SID, terminal="gnome-terminal", platform=platform, which="/usr/bin/{}".format)
        assert gnome.argv == ["/usr/bin/gnome-terminal", "--", "sh", "-c", cmd]
    with pytest.raises(TerminalError, match="No terminal template is set"):
        plan(TYPEABLE, SID, terminal="template")
    with pytest.raises(TerminalError, match="Unknown terminal 'konsol'"):
        plan(TYPEABLE, SID, terminal="konsol")


def test_linux_uses_terminal_env_then_known_emulators() -> None:
    found = {"konsole": "/usr/bin/konsole", "mykitty": "/opt/mykitty"}.get
    argv = plan(HOSTILE, SID, platform="linux", env={"TERMINAL": "mykitty"}, which=found).argv
    assert argv == ["/opt/mykitty", "-e", "sh", "-c", shell_command(HOSTILE, SID)]
    argv = plan(HOSTILE, SID, platform="linux", env={}, which=found).argv
    assert argv == ["/usr/bin/konsole", "-e", "sh", "-c", shell_command(HOSTILE, SID)]
    with pytest.raises(TerminalError, match=r"set \$TERMINAL"):
        plan(HOSTILE, SID, platform="linux", env={}, which=lambda _: None)


def test_template_values_stay_whole_arguments() -> None:
    argv = template_argv("kitty --directory {dir} opencode --session {id}", HOSTILE, SID, "ignored")
    assert argv == ["kitty", "--directory", HOSTILE, "opencode", "--session", SID]
    assert template_argv("wezterm start --cwd={dir} -- x", HOSTILE, SID, "c")[2] == "--cwd=" + HOSTILE
    assert template_argv("foot -D {dir}/sub", HOSTILE, SID, "c")[2] == HOSTILE + "/sub"
    with pytest.raises(TerminalError, match="unknown field"):
        template_argv("term {nope}", HOSTILE, SID, "c")
    with pytest.raises(TerminalError, match="a brace that is not a field"):
        template_argv("term }", HOSTILE, SID, "c")


def test_template_values_inside_a_shell_string_are_quoted() -> None:
    """Where {dir} or {id} lands in a shell command, it is shell-quoted; {cmd} is already the quoted line."""
    cmd = shell_command(HOSTILE, SID)
    shell = template_argv('kitty sh -c "cd {dir} && opencode --session {id}"', HOSTILE, SID, cmd)
    assert shell[:3] == ["kitty", "sh", "-c"]
    assert shlex.split(shell[3]) == ["cd", HOSTILE, "&&", "opencode", "--session", SID]
    assert template_argv("xterm -e sh -c {cmd}", HOSTILE, SID, cmd) == ["xterm", "-e", "sh", "-c", cmd]
    assert template_argv("xterm -e bash -lc {dir}", HOSTILE, SID, cmd)[-1] == shlex.quote(HOSTILE)
    # quotes written around a field are the quoting agent-traces does, so they are dropped, not doubled
    assert template_argv("""x sh -c "cd '{dir}'" """, HOSTILE, SID, cmd)[-1] == "cd " + shlex.quote(HOSTILE)
    # a field inside a longer quoted text, or after \\ or $, would not stay one word: refused
    for template in ("""x sh -c 'cd "$HOME/{dir}"'""", "x sh -c 'cd \\{dir}'", "x sh -c 'cd ${dir}'"):
        with pytest.raises(TerminalError, match="inside quotes"):
            template_argv(template, HOSTILE, SID, cmd)


@pytest.mark.parametrize("template", ["kitty sh -c 'cd {dir}", 'kitty --directory "{dir} x', "kitty x\\"])
def test_template_with_an_unbalanced_quote_is_a_sentence(template: str) -> None:
    with pytest.raises(TerminalError, match="has a quote or a backslash that nothing closes; close the quote"):
        template_argv(template, HOSTILE, SID, "c")
    with pytest.raises(TerminalError, match="nothing closes"):
        plan(HOSTILE, SID, template=template)


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize("name", [HOSTILE, HOSTILE + "\x15\x03\x7f\u2028\x1b]0;x\x07"], ids=["newline", "controls"])
@pytest.mark.parametrize("template", [None, 'stub-term -e sh -c "cd {dir} && opencode --session {id}"',
                                      "stub-term -e sh -c {cmd}"], ids=["emulator", "template-dir", "template-cmd"])
def test_hostile_directory_runs_opencode_there_and_nothing_else(tmp_path: Path, monkeypatch, name: str,
                                                                template: str | None) -> None:
    """The real path end to end, with $TERMINAL or a template: a stub terminal that runs its command, a stub
    opencode that records where it ran and its arguments; newlines and control characters stay in the name."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    _script(bin_dir / "opencode", f'{{ pwd; printf "%s\\0" "$@"; }} > "{record}.tmp"; mv "{record}.tmp" "{record}"\n')
    _script(bin_dir / "stub-term", 'shift; exec "$@"\n')  # drops "-e", runs `sh -c COMMAND`
    work = tmp_path / "work"
    work.mkdir()
    target = work / name
    target.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TERMINAL", "stub-term")
    monkeypatch.chdir(work)
    argv = open_session(str(target), SID, template=template)
    assert argv[0].endswith("stub-term")
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.read_text() == f"{target}\n--session\0{SID}\0"  # pwd, then the arguments, NUL-ended
    assert sorted(p.name for p in work.iterdir()) == [name]  # no x, y or p was created
    assert not (tmp_path / "x").exists() and not (target / "x").exists() and not (target / "p").exists()


TRACE = "prt_20195957f001VcM5bcG3E4bWu1"  # a delegation in cases-1.18.33 whose child session is SID


def _loaded(tmp_path: Path, directory: str | None = None) -> str:
    """A trace store loaded from a copy of cases-1.18.33, with SID's directory changed when asked."""
    from dashboard.cli import main

    source = copy_store(CASES_118, tmp_path / "oc")
    if directory is not None:
        conn = sqlite3.connect(source / "opencode.db")
        with conn:
            conn.execute("UPDATE session SET directory = ? WHERE id = ?", [directory, SID])
        conn.close()
    db = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(source), "--db", db]) == 0
    return db


def _open_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    from dashboard.cli import main

    capsys.readouterr()
    assert main(["open", TRACE, "--dry-run", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_open_dry_run_prints_the_command(tmp_path: Path, capsys, monkeypatch) -> None:
    from dashboard.cli import main

    db = _loaded(tmp_path)
    monkeypatch.setenv("TERMINAL", "xterm")
    monkeypatch.setenv("PATH", str(tmp_path))  # no terminal installed
    capsys.readouterr()
    assert main(["open", TRACE, "--dry-run", "--db", db]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("cd -- '/") and first.endswith("/proj dir' && opencode --session " + SID)
    assert second.startswith("(not run: No terminal emulator found")


def test_cli_open_dry_run_json_for_each_kind_of_terminal(tmp_path: Path, capsys, monkeypatch) -> None:
    """`--terminal NAME --dry-run --json`: the argv each would get, and the line typed into a shell (iTerm2 and
    Terminal.app type it; an emulator gets it as arguments, so `typed` is null)."""
    db = _loaded(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed: emulators are named bare
    directory = _open_json(capsys, "--db", db)["directory"]
    cmd = shell_command(directory, SID)
    for name, app in (("iterm2", "iTerm2"), ("terminal-app", "Terminal")):
        out = _open_json(capsys, "--terminal", name, "--db", db)
        assert out["typed"] == cmd and out["problem"] is None
        assert out["argv"][0] == "osascript" and out["argv"][-2:] == ["--", cmd]
        assert f'  tell application "{app}"' in out["argv"]
    for name, flags in (("kitty", []), ("xterm", ["-e"]), ("gnome-terminal", ["--"]), ("wezterm", ["start", "--"])):
        out = _open_json(capsys, "--terminal", name, "--db", db)
        assert out == {"session_id": SID, "directory": directory, "source": "opencode", "note": None,
                       "shell_command": cmd, "argv": [name, *flags, "sh", "-c", cmd], "typed": None, "problem": None}
    out = _open_json(capsys, "--terminal", "template", "--db", db)
    assert out["argv"] == [] and out["typed"] is None and "No terminal template is set" in out["problem"]
    settings = Path(os.environ["XDG_CONFIG_HOME"]) / "agent-traces" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"terminal_template": 'kitty sh -c "cd {dir} && opencode --session {id}"'}))
    for argv in (("--terminal", "template"), ()):  # a template set is also the automatic choice
        out = _open_json(capsys, *argv, "--db", db)
        assert out["argv"] == ["kitty", "sh", "-c", f"cd {shlex.quote(directory)} && opencode --session {SID}"]
        assert out["typed"] is None
    for name in TERMINAL_NAMES:  # every name the option takes gives an argv; only the macOS two type
        out = _open_json(capsys, "--terminal", name, "--db", db)
        assert out["argv"] and (out["typed"] is not None) is (name in ("iterm2", "terminal-app"))
    from dashboard.cli import main

    with pytest.raises(SystemExit):
        main(["open", TRACE, "--dry-run", "--terminal", "nope", "--db", db])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_cli_open_refuses_to_type_a_directory_with_control_characters(tmp_path: Path, capsys, monkeypatch) -> None:
    from dashboard.cli import main

    hostile = "/tmp/proj\x15touch pwned\x03"
    db = _loaded(tmp_path, hostile)
    out = _open_json(capsys, "--terminal", "iterm2", "--db", db)
    assert out["directory"] == hostile and out["argv"] == [] and out["typed"] is None
    assert out["problem"].startswith("Not typing this session into iTerm2: its directory '/tmp/proj\\x15touch")
    # an emulator gets the line as arguments, so the same directory is fine there
    assert _open_json(capsys, "--terminal", "xterm", "--db", db)["argv"][-1] == shell_command(hostile, SID)
    capsys.readouterr()
    assert main(["open", TRACE, "--terminal", "terminal-app", "--db", db]) == 2  # not a dry run: an error
    captured = capsys.readouterr()
    assert captured.err.startswith("agent-traces: Not typing this session into Terminal.app: its directory")
    assert "opencode --session " + SID in captured.err and "\x15" not in captured.err + captured.out
    assert main(["open", TRACE, "--terminal", "iterm2", "--dry-run", "--db", db]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first == r"cd -- '/tmp/proj\x15touch pwned\x03' && opencode --session " + SID  # shown escaped
    assert second.startswith("(not run: Not typing this session into iTerm2")


@pytest.mark.parametrize("template", ["ssh -t host cd {dir} && opencode --session {id}",
                                      "ssh -t host 'cd {dir} && opencode --session {id}'",
                                      "ssh host {cmd}"], ids=["words", "one-word", "cmd"])
def test_a_template_through_ssh_quotes_for_the_remote_shell(tmp_path: Path, monkeypatch, template: str) -> None:
    """ssh joins the words after its destination with spaces and hands them to the remote shell, which ran the
    $( ) of a directory given bare; the dry run showed it quoted. A stub ssh that does just that (here, with
    sh for the remote shell), and the stub opencode of the test above."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    _script(bin_dir / "opencode", f'{{ pwd; printf "%s\\0" "$@"; }} > "{record}.tmp"; mv "{record}.tmp" "{record}"\n')
    _script(bin_dir / "ssh", 'while [ "${1#-}" != "$1" ]; do shift; done; shift; exec sh -c "$*"\n')
    work = tmp_path / "work"
    work.mkdir()
    target = work / HOSTILE
    target.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(work)
    argv = open_session(str(target), SID, template=template)
    assert Path(argv[0]).name == "ssh"
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.read_text() == f"{target}\n--session\0{SID}\0"
    assert sorted(p.name for p in work.iterdir()) == [HOSTILE]  # no x, y or p was created
    assert not (tmp_path / "x").exists() and not (target / "x").exists() and not (target / "p").exists()


# -- Claude Code and Codex sessions: their own command, the same quoting --------------------------------------

AGENTS = {"opencode": ["opencode", "--session"], "claude-code": ["claude", "--resume"], "codex": ["codex", "resume"]}


@pytest.mark.parametrize("source", list(AGENTS))
def test_each_agent_resumes_with_its_own_command_every_value_quoted(source: str) -> None:
    words = ["cd", "--", HOSTILE, "&&", *AGENTS[source], SID]
    assert shlex.split(shell_command(HOSTILE, SID, source)) == words
    assert plan(HOSTILE, SID, source=source, terminal="xterm", which=lambda _: None).argv == [
        "xterm", "-e", "sh", "-c", shell_command(HOSTILE, SID, source)]
    # {resume} as a word of its own: the agent's words, each one argument; in a shell command: the quoted line
    assert plan(HOSTILE, SID, source=source, template="kitty --directory {dir} {resume}").argv == [
        "kitty", "--directory", HOSTILE, *AGENTS[source], SID]
    shell = plan(HOSTILE, SID, source=source, template='xterm -e sh -c "cd {dir} && {resume}"').argv
    assert shlex.split(shell[-1]) == ["cd", HOSTILE, "&&", *AGENTS[source], SID]
    assert plan(HOSTILE, SID, source=source, template="xterm -e sh -c {cmd}").argv[-1] == shell_command(
        HOSTILE, SID, source)
    for char in CONTROL.values():  # typed into a shell: refused, and the sentence gives the agent's command
        with pytest.raises(TerminalError, match=" ".join(AGENTS[source])):
            plan(f"/tmp/x{char}", SID, source=source, terminal="iterm2")


def test_a_template_written_for_opencode_is_refused_for_the_other_agents() -> None:
    template = "kitty --directory {dir} opencode --session {id}"
    assert plan(HOSTILE, SID, template=template).argv[-1] == SID
    for source in ("claude-code", "codex"):
        with pytest.raises(TerminalError, match=r"use \{resume\} for the agent's own command"):
            plan(HOSTILE, SID, source=source, template=template)
    # one that runs nothing of an agent's, or knows its agent, is any agent's
    assert plan(HOSTILE, SID, source="codex", template="tmux new-window -c {dir}").argv == [
        "tmux", "new-window", "-c", HOSTILE]
    with pytest.raises(TerminalError, match=r"puts \{resume\} inside a word"):
        plan(HOSTILE, SID, source="codex", template="kitty x{resume}")
    with pytest.raises(TerminalError, match="inside quotes"):
        plan(HOSTILE, SID, source="codex", template="""x sh -c 'cd $HOME && "run {resume} now"'""")


@pytest.mark.parametrize("source", ["claude-code", "codex"])
@pytest.mark.parametrize("template", [None, "stub-term -e sh -c {cmd}", 'stub-term -e sh -c "cd {dir} && {resume}"',
                                      "stub-term -e env -C {dir} {resume}"],
                         ids=["emulator", "template-cmd", "template-shell", "template-words"])
def test_hostile_directory_runs_claude_and_codex_there_and_nothing_else(tmp_path: Path, monkeypatch, source: str,
                                                                        template: str | None) -> None:
    """End to end with a stub terminal and a stub `claude` / `codex` recording where they ran and with what."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    program = AGENTS[source][0]
    _script(bin_dir / program, f'{{ pwd; printf "%s\\0" "$@"; }} > "{record}.tmp"; mv "{record}.tmp" "{record}"\n')
    _script(bin_dir / "stub-term", 'shift; exec "$@"\n')
    work = tmp_path / "work"
    work.mkdir()
    target = work / HOSTILE
    target.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TERMINAL", "stub-term")
    monkeypatch.chdir(work)
    open_session(str(target), SID, template=template, source=source)
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.read_text() == f"{target}\n" + "".join(f"{w}\0" for w in [*AGENTS[source][1:], SID])
    assert sorted(p.name for p in work.iterdir()) == [HOSTILE]
