"""Open a session in a terminal, with the command of the agent that wrote it: `cd -- <directory> && opencode
--session <id>`, `claude --resume <id>` or `codex resume <id>` (`RESUME`).

The directory and the id come from the user's data and may hold anything a file name can (quotes, `$( )`,
backticks, `;`, newlines, control characters). They are quoted for the shell by `shell_command` alone; the
result reaches AppleScript as an argument (`on run argv`), never inside the script's text, and every terminal
gets an argument list, never a string for a shell to split.

iTerm2 (`write text`) and Terminal.app (`do script`) *type* the line into an interactive shell, where a control
character is a key press, not part of a quoted word (^U erases the line typed so far, ^C cancels it, and what
follows runs on its own). So a line holding one is refused for them, with a sentence saying how to open the
session by hand; a Linux emulator gets `sh -c LINE` as arguments, nothing is typed, and quoting is enough.
Plain Python (no Qt): the CLI and the dashboard both use it.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Formatter

from analytics.format import printable

log = logging.getLogger(__name__)

ITERM_SCRIPT = (
    "on run argv",
    '  tell application "iTerm2"',
    "    activate",
    "    if (count of windows) = 0 then",
    "      create window with default profile",
    "    else",
    "      tell current window to create tab with default profile",
    "    end if",
    "    tell current session of current window to write text (item 1 of argv)",
    "  end tell",
    "end run",
)
TERMINAL_APP_SCRIPT = (
    "on run argv",
    '  tell application "Terminal"',
    "    activate",
    "    do script (item 1 of argv)",
    "  end tell",
    "end run",
)
# The usual emulators, each with the way it takes a command to run.
LINUX_TERMINALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x-terminal-emulator", ("-e",)),
    ("gnome-terminal", ("--",)),
    ("konsole", ("-e",)),
    ("kitty", ()),
    ("alacritty", ("-e",)),
    ("wezterm", ("start", "--")),
    ("foot", ()),
    ("xfce4-terminal", ("-x",)),
    ("xterm", ("-e",)),
)
ITERM_PATHS = ("/Applications/iTerm.app", "~/Applications/iTerm.app")
# The macOS terminals that type the line into a shell, with the name a sentence uses for each.
TYPING_TERMINALS = {"iterm2": "iTerm2", "terminal-app": "Terminal.app"}
# Every value `agent-traces open --terminal` takes: the two macOS ones, each Linux emulator, or the template.
TERMINAL_NAMES = (*TYPING_TERMINALS, *(name for name, _flags in LINUX_TERMINALS), "template")
# What a shell reading typed keys would act on: C0 controls (tab and newline too), DEL, C1 controls (NEL is
# U+0085) and the Unicode line and paragraph separators.
UNTYPEABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish"})
# Programs that join the words of their command with spaces and hand the line to a (remote) shell
REMOTE_SHELLS = frozenset({"ssh", "autossh", "mosh", "et"})
_SHELLISH = re.compile(r"""[\s;&|<>()$`\\"']""")  # text around a field that makes the word a shell command
_QUOTED_FIELD = re.compile(r"""(['"])\{(dir|id|resume)\}\1""")
# How each agent reopens a session by id, in its folder (checked with OpenCode 1.x/2.x, Claude Code 2.1.332's
# `--resume [value]` and Codex 0.171.0's `codex resume [SESSION_ID]`, which resumes a spawned agent's thread too)
RESUME = {"opencode": ("opencode", "--session"), "claude-code": ("claude", "--resume"), "codex": ("codex", "resume")}


class TerminalError(Exception):
    """No terminal could be found or started, or the command cannot be given safely; the message says why."""


@dataclass(frozen=True)
class Launch:
    """What opening a session runs: the argument list, and the line typed into a shell (None: nothing is typed,
    the terminal gets the command as arguments)."""

    argv: list[str]
    typed: str | None = None


def resume_words(session_id: str, source: str = "opencode") -> list[str]:
    """The command that reopens a session of this agent (models.SOURCES), as words: opencode --session ID."""
    return [*RESUME.get(source, RESUME["opencode"]), session_id]


def shell_command(directory: str, session_id: str, source: str = "opencode") -> str:
    """The POSIX shell line that resumes the session in its directory, every value quoted."""
    return f"cd -- {shlex.quote(directory)} && " + " ".join(shlex.quote(w) for w in resume_words(session_id, source))


def check_typeable(app: str, directory: str, session_id: str, source: str = "opencode") -> None:
    """Refuse, with the reason and the way round it, a directory or id that typing would turn into key presses."""
    for what, value in (("directory", directory), ("session id", session_id)):
        found = UNTYPEABLE.search(value)
        if found:
            raise TerminalError(
                f"Not typing this session into {app}: its {what} '{printable(value)}' holds a control character "
                f"({printable(found.group())}), which the shell would take as a key press (^U erases the line "
                "typed so far, ^C cancels it) and run the rest on its own. Open it by hand: start a terminal in "
                "that directory (in the Finder, Services › New Terminal at Folder) and run "
                f"{printable(' '.join(resume_words(session_id, source)))}")


def osascript_argv(command: str, iterm: bool) -> list[str]:
    """osascript with the script as fixed -e lines and the command as its one argument.

    The script types the command, so one holding a control character is refused here too (last line of defence;
    `check_typeable` says which value held it)."""
    if UNTYPEABLE.search(command):
        raise TerminalError(f"Not typing '{printable(command)}' into a terminal: it holds a control character.")
    argv = ["osascript"]
    for line in ITERM_SCRIPT if iterm else TERMINAL_APP_SCRIPT:
        argv += ["-e", line]
    return [*argv, "--", command]


def _in_shell_string(words: list[str], i: int) -> bool:
    """Whether template word i is a shell command: the word after a shell's `-c` (or `-lc`...), any word after
    ssh (which joins them with spaces for the remote shell: `ssh -t host cd {dir} && ...`), or one whose own
    text around its fields has blanks or shell punctuation (`cd {dir} && ...` for `xterm -e`)."""
    if i > 1 and re.fullmatch(r"-[a-zA-Z]*c", words[i - 1]) and any(Path(w).name in SHELLS for w in words[: i - 1]):
        return True
    if i > 0 and any(Path(w).name in REMOTE_SHELLS for w in words[:i]):
        return True
    return _SHELLISH.search("".join(literal for literal, *_rest in Formatter().parse(words[i]))) is not None


def _check_shell_string(template: str, word: str) -> None:
    """Refuse {dir}/{id} where a quoted value would not stay one word: inside quotes, after `\\` or `$`."""
    state, escaped = "", False  # state: "" outside quotes, "'" or '"' inside them
    for literal, field, _spec, _conversion in Formatter().parse(word):
        for ch in literal:
            if escaped:
                escaped = False
            elif ch == "\\" and state != "'":
                escaped = True
            elif state == "" and ch in "'\"":
                state = ch
            elif ch == state:
                state = ""
        if field in ("dir", "id", "resume") and (state or escaped or literal.endswith("$")):
            raise TerminalError(
                f"The terminal template {template!r} puts {{{field}}} inside quotes (or after \\ or $) in a shell "
                f"command; write it bare, as in sh -c \"cd {{dir}} && ...\": agent-traces quotes the value itself.")


def template_argv(template: str, directory: str, session_id: str, command: str,
                  source: str = "opencode") -> list[str]:
    """A user template such as `kitty --directory {dir} {resume}`, split first and then filled in.

    `{cmd}` is the whole shell line, already quoted: safe anywhere, `sh -c {cmd}` included. `{resume}` is the
    agent's own command (`opencode --session ID`, `claude --resume ID`, `codex resume ID`): as a word of its
    own it becomes those words, each one argument; in a shell command it is the quoted line. `{dir}` and `{id}`
    are the raw values in a plain argument (`{dir}`, `--cwd={dir}`, `{dir}/sub`), so each stays one argument
    whatever it holds; in a word that is a shell command (the word after a shell's `-c`, any word after ssh,
    whose command a remote shell reads, or one with blanks or shell punctuation around the field, as in
    `sh -c "cd {dir} && ..."`) they are shell-quoted, so the shell reads each as one word; there they must not
    sit inside quotes of their own (refused, with a sentence). A template that gives `{id}` to a command of its
    own (`opencode --session {id}`) is OpenCode's: a Claude Code or Codex session is refused with a sentence
    (it needs `{resume}` or `{cmd}`).
    """
    try:
        words = shlex.split(template)
    except ValueError as exc:  # shlex: "No closing quotation", "No escaped character"
        raise TerminalError(f"The terminal template {template!r} has a quote or a backslash that nothing "
                            "closes; close the quote, or drop it.") from exc
    resume = resume_words(session_id, source)
    raw = {"dir": directory, "id": session_id, "cmd": command}
    quoted = {"dir": shlex.quote(directory), "id": shlex.quote(session_id), "cmd": command,
              "resume": " ".join(shlex.quote(w) for w in resume)}
    fields = {f for w in words for _l, f, _s, _c in _parse(w) if f is not None}
    if source != "opencode" and "id" in fields and not fields & {"cmd", "resume"}:
        raise TerminalError(
            f"The terminal template {template!r} gives {{id}} to a command of its own, which is OpenCode's; this is "
            f"a {_AGENT_NAMES.get(source, source)} session ({' '.join(resume[:-1])} ID): use {{resume}} for the "
            "agent's own command in the template (kitty --directory {dir} {resume}), or {cmd}.")
    out = []
    for i, word in enumerate(words):
        try:
            if _in_shell_string(words, i):
                word = _QUOTED_FIELD.sub(r"{\2}", word)  # '{dir}' or "{dir}": the quoting is done for them
                _check_shell_string(template, word)
                out.append(word.format(**quoted))
            elif word == "{resume}":
                out.extend(resume)  # the agent's words, each one argument
            elif "resume" in {f for _l, f, _s, _c in _parse(word)}:
                raise TerminalError(f"The terminal template {template!r} puts {{resume}} inside a word; write it "
                                    "as a word of its own (kitty --directory {dir} {resume}), or use {cmd}.")
            else:
                out.append(word.format(**raw))
        except (KeyError, IndexError, AttributeError) as exc:
            raise TerminalError(f"The terminal template {template!r} has an unknown field ({exc}); "
                                "use {dir}, {id}, {resume} and {cmd}.") from exc
        except ValueError as exc:
            raise TerminalError(f"The terminal template {template!r} has a brace that is not a field ({exc}); "
                                "write {{ and }} for literal braces.") from exc
    return out


def _parse(word: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """A template word's (literal, field, spec, conversion) parts; a brace that is not a field is said."""
    try:
        return list(Formatter().parse(word))
    except ValueError:
        return []  # the fill-in that follows says what is wrong with it


_AGENT_NAMES = {"opencode": "OpenCode", "claude-code": "Claude Code", "codex": "Codex"}


def plan(
    directory: str,
    session_id: str,
    *,
    source: str = "opencode",
    terminal: str | None = None,
    platform: str = sys.platform,
    env: Mapping[str, str] | None = None,
    template: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    iterm_installed: Callable[[], bool] | None = None,
) -> Launch:
    """What opening the session runs, without running it.

    `terminal` (one of TERMINAL_NAMES) picks one, on any platform, so a dry run can show any of them; a Linux
    emulator that is not installed is named bare. Without it: the user's template; on macOS iTerm2, else
    Terminal.app; elsewhere $TERMINAL, then the usual emulators. `which` and `iterm_installed` are the lookups,
    passed in so the choice can be tested.
    """
    env = os.environ if env is None else env
    command = shell_command(directory, session_id, source)
    if terminal == "template" or (terminal is None and template):
        if not template:
            raise TerminalError("No terminal template is set; set terminal_template in the settings (for example: "
                                "kitty --directory {dir} {resume}).")
        return Launch(template_argv(template, directory, session_id, command, source))
    if terminal is None and platform == "darwin":
        if iterm_installed is None:
            iterm_installed = lambda: any(Path(p).expanduser().exists() for p in ITERM_PATHS)  # noqa: E731
        terminal = "iterm2" if iterm_installed() else "terminal-app"
    if terminal in TYPING_TERMINALS:
        check_typeable(TYPING_TERMINALS[terminal], directory, session_id, source)
        return Launch(osascript_argv(command, iterm=terminal == "iterm2"), typed=command)
    known = dict(LINUX_TERMINALS)
    if terminal is not None:
        if terminal not in known:
            raise TerminalError(f"Unknown terminal {terminal!r}; use one of: {', '.join(TERMINAL_NAMES)}.")
        return Launch([which(terminal) or terminal, *known[terminal], "sh", "-c", command])
    candidates: list[tuple[str, tuple[str, ...]]] = []
    if env.get("TERMINAL"):
        candidates.append((env["TERMINAL"], known.get(Path(env["TERMINAL"]).name, ("-e",))))
    candidates.extend(LINUX_TERMINALS)
    for program, run_flag in candidates:
        path = which(program)
        if path:
            return Launch([path, *run_flag, "sh", "-c", command])
    raise TerminalError("No terminal emulator found; set $TERMINAL, or set a terminal command template in "
                        "the settings (for example: kitty --directory {dir} {resume}).")


_children: list[subprocess.Popen] = []


def launch(argv: list[str], directory: str) -> None:
    """Start the terminal detached from us (its own session, no stdio of ours)."""
    _children[:] = [c for c in _children if c.poll() is None]  # reap the terminals that have exited
    log.info("opening a terminal: %s", argv[0])
    try:
        _children.append(subprocess.Popen(
            argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=directory if Path(directory).is_dir() else None))
    except OSError as exc:
        raise TerminalError(f"Could not start {argv[0]}: {exc.strerror or exc}.") from exc


def open_session(directory: str, session_id: str, template: str | None = None,
                 terminal: str | None = None, source: str = "opencode") -> list[str]:
    """Start the terminal (detached) and return the argument list it was given."""
    argv = plan(directory, session_id, source=source, template=template, terminal=terminal).argv
    launch(argv, directory)
    return argv
