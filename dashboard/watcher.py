"""Notice when an agent writes: OpenCode's database (and WAL) or storage folders, Claude Code's project, session
and subagents/ folders and Codex's day folders with the files written last, and a timer as fallback."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QFileSystemWatcher, QObject, QTimer, pyqtSignal

from analytics.models import OPENCODE
from analytics.sources import watch_targets

DEBOUNCE_MS = 300


class SourceWatcher(QObject):
    """Emits `changed` shortly after an agent writes, and every `interval` seconds in any case.

    File events are coalesced (agents write in bursts); the timer catches what watching misses (JSON files
    rewritten in nested folders, a Claude Code or Codex file written again after a long pause, file systems
    without notifications). Which files of a JSON-lines history are watched is looked at again when a watched
    folder changed (a new session, subagent or day) and at each tick of the timer. Has a parent and a `stop()`.

    Signals:
        changed()
    """

    changed = pyqtSignal()

    def __init__(self, paths: list[tuple[str, Path]] | list[Path], interval_seconds: float,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        # (kind, path) of each history a reader reads; a bare path is OpenCode's
        self.paths = [p if isinstance(p, tuple) else (OPENCODE, p) for p in paths]
        self.fs = QFileSystemWatcher(self)
        self.fs.fileChanged.connect(self._poke)
        self.fs.directoryChanged.connect(self._folder_changed)
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self._fire)
        self.timer = QTimer(self)
        self.set_interval(interval_seconds)
        self.timer.timeout.connect(self._tick)
        self.paused = False
        self._look_again = True  # a folder changed: look for the files to watch again
        self._wanted: list[str] | None = None  # what was found to watch, last time it was looked for

    def start(self) -> None:
        self._watch()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.debounce.stop()
        if self.fs.files():
            self.fs.removePaths(self.fs.files())
        if self.fs.directories():
            self.fs.removePaths(self.fs.directories())

    def set_interval(self, seconds: float) -> None:
        self.timer.setInterval(max(int(seconds * 1000), 500))

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if paused:
            self.timer.stop()
            self.debounce.stop()
        else:
            self.timer.start()
            self.changed.emit()

    def wanted(self) -> tuple[list[str], list[str]]:
        """The files and folders to watch now."""
        files: list[str] = []
        dirs: list[str] = []
        for kind, p in self.paths:
            if kind != OPENCODE:
                if p.is_dir():
                    more_files, more_dirs = watch_targets(kind, p)
                    files += more_files
                    dirs += more_dirs
            elif p.is_file():
                files.append(str(p))
                wal = p.with_name(p.name + "-wal")
                if wal.exists():
                    files.append(str(wal))
                dirs.append(str(p.parent))  # the WAL file appears and goes
            elif p.is_dir():
                dirs.append(str(p))
                dirs.extend(str(p / sub) for sub in ("session", "message", "part") if (p / sub).is_dir())
        return files, dirs

    def _watch(self) -> None:
        """Watch what is wanted: looked for again after a folder changed (and at each tick), else the same paths,
        any Qt dropped meanwhile (a file replaced) added again."""
        if self._look_again or self._wanted is None:
            files, dirs = self.wanted()
            self._wanted = [*files, *dirs]
            self._look_again = False
        watched = set(self.fs.files()) | set(self.fs.directories())
        missing = [w for w in self._wanted if w not in watched and Path(w).exists()]
        if missing:
            self.fs.addPaths(missing)

    def _folder_changed(self, _path: str) -> None:
        self._look_again = True
        self._poke(_path)

    def _poke(self, _path: str) -> None:
        if not self.paused:
            self.debounce.start()

    def _fire(self) -> None:
        self._watch()  # a rewritten file may have been replaced, a new file or folder may have come: watch them
        self.changed.emit()

    def _tick(self) -> None:
        self._look_again = True
        self._watch()
        self.changed.emit()
