"""Every agent history agent-traces reads, in one place: OpenCode's store, Claude Code's `projects/` folder and
Codex's `sessions/` folder, found with no configuration (`discover`) or given (`open_paths`, from --source).

A history that is not on this machine is simply absent; one that is there but cannot be opened is one sentence
(`Sources.problems`), and the others are read all the same. Each history loads into the one trace store under a
key of its own (its location), so their incremental state never mixes (`analytics.loader.load`). Keep a
`Sources` between loads: its readers hold what they read, so a reload parses only what was added since.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from analytics.claude_code import default_projects_dir, open_claude_source
from analytics.codex import default_sessions_dir, open_codex_source
from analytics.errors import SourceError
from analytics.loader import LoadProgress, load
from analytics.models import CLAUDE_CODE, CODEX, OPENCODE, SOURCES, LoadReport
from analytics.opencode import default_data_dir, open_source

_LOOK_ENTRIES = 2000  # entries a folder given with --source is looked through to tell which history it is


class LoadSource(Protocol):
    """What `analytics.loader.load` reads: OpenCode's `Source`, the Claude Code source, the Codex one."""

    location: Path
    readers: list

    @property
    def generation(self) -> str: ...

    def tool_spans(self, spans: list) -> list: ...


@dataclass
class Found:
    """One history, opened: which agent wrote it, and the source `load` reads it through."""

    kind: str
    source: LoadSource

    @property
    def label(self) -> str:
        return SOURCES[self.kind]

    @property
    def location(self) -> Path:
        return self.source.location


def kind_of_source(source: LoadSource) -> str:
    """Which agent an opened source reads, by its readers' generation (Claude Code's and Codex's are their kind)."""
    generations = {getattr(r, "generation", "") for r in source.readers}
    for kind in (CLAUDE_CODE, CODEX):
        if kind in generations:
            return kind
    return OPENCODE


def default_location(kind: str) -> Path:
    """Where each agent keeps its history when nothing says otherwise (see each reader)."""
    if kind == CLAUDE_CODE:
        return default_projects_dir()
    if kind == CODEX:
        return default_sessions_dir()
    env = os.environ.get("OPENCODE_DB")
    if env and env != ":memory:" and Path(env).is_absolute():
        return Path(env)
    return default_data_dir()


def open_kind(kind: str, path: Path | None) -> LoadSource:
    """The history of this agent at `path` (None: its default place); SourceError when it cannot be read."""
    if kind == CLAUDE_CODE:
        return open_claude_source(path)
    if kind == CODEX:
        return open_codex_source(path)
    return open_source(path)


def kind_of(path: Path) -> str:
    """Which agent's history a file or folder given with --source is: OpenCode's data folder, database or
    storage/ folder; a `.claude` folder or its `projects/`; a CODEX_HOME or its `sessions/` (or any folder of
    rollout files under it, `archived_sessions/` too). One sentence when it is none of them."""
    if path.is_file():
        if path.suffix == ".jsonl":
            raise SourceError(
                f"{path} is one session file; give the folder that holds the history instead (Claude Code: its "
                "projects/ folder, Codex: its sessions/ folder).")
        return OPENCODE  # a database file: opening it says whether it is OpenCode's
    if not path.is_dir():
        raise SourceError(f"There is no file or folder at {path}; --source takes OpenCode's data folder or "
                          "database, Claude Code's projects/ folder (or ~/.claude) or Codex's sessions/ folder (or "
                          "~/.codex).")
    try:
        names = set(os.listdir(path))
    except OSError as exc:
        raise SourceError(f"Could not read the folder {path}: {exc.strerror or exc}.") from exc
    if ("opencode.db" in names or any(n.startswith("opencode-") and n.endswith(".db") for n in names)
            or (path / "storage" / "session").is_dir() or {"session", "message"} <= names):
        return OPENCODE
    if (path / "projects").is_dir():
        return CLAUDE_CODE
    if (path / "sessions").is_dir():
        return CODEX
    found = _first_history_file(path)
    if found is not None:
        name, depth = found
        if name.startswith("rollout-"):
            return CODEX
        if depth >= 2:
            return CLAUDE_CODE
        raise SourceError(f"{path} looks like one Claude Code project folder; give the projects/ folder that holds "
                          "it (usually ~/.claude/projects).")
    if path.name == "projects":
        return CLAUDE_CODE
    if path.name in ("sessions", "archived_sessions"):
        return CODEX
    raise SourceError(f"{path} holds no history agent-traces can read: no OpenCode store (opencode.db, storage/), "
                      "no Claude Code projects/ folder and no Codex sessions/ folder.")


def _first_history_file(path: Path) -> tuple[str, int] | None:
    """The name and depth (1: in `path` itself) of the first `.jsonl` file found under `path`, looking through
    at most _LOOK_ENTRIES entries, four folders deep."""
    queue: list[tuple[Path, int]] = [(path, 1)]
    seen = 0
    while queue:
        folder, depth = queue.pop(0)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > _LOOK_ENTRIES:
                return None
            try:
                if e.is_file() and e.name.endswith(".jsonl"):
                    return e.name, depth
                if e.is_dir(follow_symlinks=False) and depth < 4:
                    queue.append((Path(e.path), depth + 1))
            except OSError:
                continue
    return None


@dataclass
class Sources:
    """The histories one program reads, kept between loads; `problems` says, one sentence each, what was there
    and could not be opened."""

    found: list[Found] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, given: Sources | LoadSource | None) -> Sources:
        """A Sources from what a caller holds: itself, one opened source (its kind told by its readers), or none."""
        if isinstance(given, Sources):
            return given
        if given is None:
            return cls()
        return cls([Found(kind_of_source(given), given)])

    def __bool__(self) -> bool:
        return bool(self.found)

    def __iter__(self):
        return iter(self.found)

    @property
    def kinds(self) -> list[str]:
        return [f.kind for f in self.found]

    def label(self) -> str:
        """What is read, for a window title: "OpenCode, Claude Code and Codex" or the one location."""
        if len(self.found) == 1:
            f = self.found[0]
            return f"{f.label}: {f.location}"
        names = [f.label for f in self.found]
        return ", ".join(names[:-1]) + " and " + names[-1] if names else "no history"

    def load(self, store, full: bool = False, progress: Callable[[LoadProgress], None] | None = None,
             retention_days: int | None = None) -> list[LoadReport]:
        """Load every history into the store, each under its own key; one report each (`kind` set). Retention
        is applied once, after the last."""
        reports = []
        for i, f in enumerate(self.found):
            last = i == len(self.found) - 1
            report = load(store, f.source, full=full, progress=progress,
                          retention_days=retention_days if last else None)
            report.kind = f.kind
            reports.append(report)
        return reports

    def watched(self) -> list[tuple[str, Path]]:
        """(kind, path) of what each history's readers read: a database file, a storage/ folder, a projects/ or
        sessions/ folder (the window's watcher looks there)."""
        return [(f.kind, Path(r.path)) for f in self.found for r in f.source.readers]


def discover(off: Iterable[str] = ()) -> Sources:
    """Every history found in its default place (the environment's, else the home folder's), but the kinds
    `off` names (the `sources_off` setting). A history not there is absent; one there that cannot be read is a
    problem sentence."""
    out = Sources()
    off = set(off)
    for kind in SOURCES:
        if kind in off:
            continue
        location = default_location(kind)
        if not location.exists():
            continue
        try:
            out.found.append(Found(kind, open_kind(kind, None)))
        except SourceError as exc:
            out.problems.append(str(exc))
    return out


def nothing_found(off: Iterable[str] = ()) -> str:
    """The one sentence said when no history is found anywhere."""
    off = set(off)
    places = [f"{SOURCES[k]} at {default_location(k)}" for k in SOURCES if k not in off]
    turned = f" ({', '.join(SOURCES[k] for k in SOURCES if k in off)} turned off in the settings)" if off else ""
    return (f"No agent history found ({'; '.join(places) or 'every source is off'}){turned}: run OpenCode, "
            "Claude Code or Codex once, or give the folder with --source PATH.")


def open_paths(paths: Iterable[str | Path]) -> Sources:
    """The histories given with --source (each file or folder recognised by `kind_of`); SourceError for one
    that cannot be read: the user asked for it."""
    out = Sources()
    for p in paths:
        path = Path(p).expanduser()
        kind = kind_of(path)
        out.found.append(Found(kind, open_kind(kind, path)))
    return out


def sources_for(paths: Iterable[str | Path] | None, off: Iterable[str] = ()) -> Sources:
    """What a command reads: the --source paths given, else every history found (SourceError when none is)."""
    if paths:
        return open_paths(paths)
    found = discover(off)
    if not found and not found.problems:
        raise SourceError(nothing_found(off))
    return found


def demo_sources(folder: Path) -> Sources:
    """The bundled demo: OpenCode's `opencode.db`, and Claude Code's and Codex's histories where they are
    (`claude/projects/`, `codex/sessions/`): the ones missing are left out."""
    out = Sources()
    for kind, path in ((OPENCODE, folder / "opencode.db"), (CLAUDE_CODE, folder / "claude" / "projects"),
                       (CODEX, folder / "codex" / "sessions")):
        if path.exists():
            out.found.append(Found(kind, open_kind(kind, path)))
    return out


def report_line(report: LoadReport) -> str:
    """What a load of one history did, in a few words for a status bar: "Claude Code: 3 sessions updated,
    skipped 2 (line)"."""
    name = SOURCES.get(report.kind, report.kind or report.generation)
    what = "no change" if report.unchanged or not report.sessions_changed else (
        f"{report.sessions_changed} session{'s' * (report.sessions_changed != 1)} updated")
    if report.skipped_total:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.skipped.items()))
        what += f", skipped {report.skipped_total} ({kinds})"
    return f"{name}: {what}"


WATCHED_FILES = 300  # of each history, the files written last are watched for appends (the timer sees the rest)
WATCHED_DIRS = 1000  # and the folders changed last, for files that appear in them


def watch_targets(kind: str, path: Path, files: int = WATCHED_FILES,
                  folders: int = WATCHED_DIRS) -> tuple[list[str], list[str]]:
    """What to watch of a Claude Code `projects/` or Codex `sessions/` folder (files, folders): the folders a
    new session, subagent or day appears in, and the files written last, where a running agent appends.

    A folder watch hears of files coming and going, not of a file growing, so the files are watched too. On a
    long history only the `files` written last and the `folders` changed last (below the top two levels,
    always watched: projects, or years and months), which is where an agent writes now; a session resumed
    after a long pause is seen by the window's timer, and watched from then on."""
    top: list[str] = [str(path)]
    deeper: list[tuple[int, str]] = []  # (mtime, path) of session, subagents/ and day folders
    found: list[tuple[int, str]] = []  # (mtime, path) of the history files

    def scan(folder: str, depth: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth < 4 and (kind == CODEX or _claude_folder(e.name, depth)):
                        if depth < (2 if kind == CLAUDE_CODE else 3):
                            top.append(e.path)
                        else:
                            deeper.append((e.stat(follow_symlinks=False).st_mtime_ns, e.path))
                        scan(e.path, depth + 1)
                elif e.name.endswith(".jsonl"):
                    found.append((e.stat().st_mtime_ns, e.path))
            except OSError:
                continue

    scan(str(path), 1)
    found.sort(reverse=True)
    deeper.sort(reverse=True)
    return [p for _m, p in found[:files]], top + [p for _m, p in deeper[:folders]]


def _claude_folder(name: str, depth: int) -> bool:
    """The folders of a projects/ folder that hold history files: projects (depth 1), a session's folder (2) and
    its subagents/ (3); not a session's tool-results or memory folders."""
    return depth == 1 or depth == 2 and name != "memory" or depth == 3 and name == "subagents"
