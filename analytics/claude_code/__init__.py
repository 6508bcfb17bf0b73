"""Claude Code histories (`~/.claude/projects/`, or `$CLAUDE_CONFIG_DIR/projects`) as agent traces."""

from __future__ import annotations

import os
from pathlib import Path

from analytics.claude_code.reader import ClaudeReader
from analytics.claude_code.source import ClaudeSource
from analytics.errors import SourceError

__all__ = ["ClaudeReader", "ClaudeSource", "default_projects_dir", "open_claude_source"]


def default_projects_dir() -> Path:
    """Where Claude Code keeps its histories: $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects."""
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".claude") / "projects"


def open_claude_source(path: str | Path | None = None) -> ClaudeSource:
    """The Claude Code history at `path`: a `projects/` folder, or the `.claude` folder that holds one.

    With no path: $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects. `analytics.loader.load(store, source)`
    loads it as it loads OpenCode's `Source`. Keep the source between loads: it holds what was read.
    """
    location = default_projects_dir() if path is None else Path(path).expanduser()
    if (location / "projects").is_dir():
        location = location / "projects"
    if not location.is_dir():
        raise SourceError(
            f"No Claude Code history at {location}; run Claude Code once, or point agent-traces at the folder "
            "that holds its projects/ with --source PATH."
        )
    return ClaudeSource(ClaudeReader(location), location)
