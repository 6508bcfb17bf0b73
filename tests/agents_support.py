"""The three agents' histories side by side, for the tests of reading them together: the real fixtures of
OpenCode (1.18.33), Claude Code (2.1.332) and Codex (0.171.0) copied where each agent keeps its history."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import CASES_118, FIXTURES, copy_store

CLAUDE_332 = FIXTURES / "claude-code-2.1.332"
CODEX_171 = FIXTURES / "codex-0.171.0"
CLAUDE_CASES = ("agent-tool", "parallel", "nested", "tool-error", "model-error", "background", "killed", "resumed")


def claude_projects(dest: Path, cases: tuple[str, ...] = CLAUDE_CASES) -> Path:
    """One Claude Code `projects/` folder holding these 2.1.332 cases (each its own project folder: they load
    together, their ids are their own)."""
    dest.mkdir(parents=True, exist_ok=True)
    for case in cases:
        for project in (CLAUDE_332 / case / "projects").iterdir():
            copy_store(project, dest / project.name)
    return dest


def codex_sessions(dest: Path) -> Path:
    """A copy of the Codex 0.171.0 `sessions/` folder (every case)."""
    return copy_store(CODEX_171 / "sessions", dest)


def three_histories(home: Path, opencode: Path | None = None) -> dict[str, Path]:
    """The three histories where each agent keeps it under this HOME: OpenCode's opencode.db in its data folder
    (`opencode`, default: where this process's environment says, the tests' XDG_DATA_HOME, see conftest),
    ~/.claude/projects and ~/.codex/sessions."""
    from analytics.opencode import default_data_dir

    opencode = opencode or default_data_dir()
    opencode.mkdir(parents=True, exist_ok=True)
    shutil.copy(CASES_118 / "opencode.db", opencode / "opencode.db")
    (opencode / "opencode.db").chmod(0o644)
    return {"opencode": opencode, "claude-code": claude_projects(home / ".claude" / "projects"),
            "codex": codex_sessions(home / ".codex" / "sessions")}


def case_root(traces, prompt_start: str):
    """The session trace whose prompt starts so (Codex's cases start with their name: "Spawn shell.")."""
    return next(t for t in traces if t.kind == "session" and t.prompt_input.startswith(prompt_start))
