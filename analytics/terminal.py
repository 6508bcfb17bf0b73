"""Open an OpenCode session in a terminal: `cd -- <directory> && opencode --session <id>`.

The directory and the id come from the user's data and may hold anything a file name can (quotes, `$( )`,
backticks, `;`, newlines). They are quoted for the shell by `shell_command` alone; the result reaches
AppleScript as an argument (`on run argv`), never inside the script's text, and every terminal gets an
argument list, never a string for a shell to split. Plain Python (no Qt): the CLI and the dashboard both use it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

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


class TerminalError(Exception):
    """No terminal could be found or started; the message says what to set."""


def shell_command(directory: str, session_id: str, opencode: str = "opencode") -> str:
    """The POSIX shell line that resumes the session in its directory, every value quoted."""
    return f"cd -- {shlex.quote(directory)} && {shlex.quote(opencode)} --session {shlex.quote(session_id)}"


def osascript_argv(command: str, iterm: bool) -> list[str]:
    """osascript with the script as fixed -e lines and the command as its one argument."""
    argv = ["osascript"]
    for line in ITERM_SCRIPT if iterm else TERMINAL_APP_SCRIPT:
        argv += ["-e", line]
    return [*argv, "--", command]


def template_argv(template: str, directory: str, session_id: str, command: str) -> list[str]:
    """A user template such as `kitty --directory {dir} opencode --session {id}`, split first and then
    filled in, so each value stays one whole argument whatever it contains."""
    values = {"dir": directory, "id": session_id, "cmd": command}
    out = []
    for word in shlex.split(template):
        try:
            out.append(word.format(**values))
        except (KeyError, IndexError, ValueError) as exc:
            raise TerminalError(f"The terminal template {template!r} has an unknown field ({exc}); "
                                "use {dir}, {id} and {cmd}.") from exc
    return out


def terminal_argv(
    directory: str,
    session_id: str,
    *,
    platform: str = sys.platform,
    env: Mapping[str, str] | None = None,
    template: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    iterm_installed: Callable[[], bool] | None = None,
) -> list[str]:
    """The argument list that opens a terminal running the session.

    Order: the user's template; on macOS iTerm2, else Terminal.app; elsewhere $TERMINAL, then the usual
    emulators. `which` and `iterm_installed` are the lookups, passed in so the choice can be tested.
    """
    env = os.environ if env is None else env
    command = shell_command(directory, session_id)
    if template:
        return template_argv(template, directory, session_id, command)
    if platform == "darwin":
        if iterm_installed is None:
            iterm_installed = lambda: any(Path(p).expanduser().exists() for p in ITERM_PATHS)  # noqa: E731
        return osascript_argv(command, iterm=iterm_installed())
    candidates: list[tuple[str, tuple[str, ...]]] = []
    if env.get("TERMINAL"):
        name = Path(env["TERMINAL"]).name
        known = dict(LINUX_TERMINALS)
        candidates.append((env["TERMINAL"], known.get(name, ("-e",))))
    candidates.extend(LINUX_TERMINALS)
    for program, run_flag in candidates:
        path = which(program)
        if path:
            return [path, *run_flag, "sh", "-c", command]
    raise TerminalError("No terminal emulator found; set $TERMINAL, or set a terminal command template in "
                        "the settings (for example: kitty --directory {dir} opencode --session {id}).")


_children: list[subprocess.Popen] = []


def open_session(directory: str, session_id: str, template: str | None = None) -> list[str]:
    """Start the terminal (detached) and return the argument list it was given."""
    argv = terminal_argv(directory, session_id, template=template)
    _children[:] = [c for c in _children if c.poll() is None]  # reap the terminals that have exited
    try:
        _children.append(subprocess.Popen(
            argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=directory if Path(directory).is_dir() else None))
    except OSError as exc:
        raise TerminalError(f"Could not start {argv[0]}: {exc.strerror or exc}.") from exc
    return argv
