"""Notice when OpenCode writes: watch its database (and WAL) or its storage folders, with a timer as fallback."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QFileSystemWatcher, QObject, QTimer, pyqtSignal

DEBOUNCE_MS = 300


class SourceWatcher(QObject):
    """Emits `changed` shortly after OpenCode writes, and every `interval` seconds in any case.

    File events are coalesced (OpenCode writes in bursts); the timer catches what watching misses (JSON
    files rewritten in nested folders, file systems without notifications). Has a parent and a `stop()`.

    Signals:
        changed()
    """

    changed = pyqtSignal()

    def __init__(self, paths: list[Path], interval_seconds: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.fs = QFileSystemWatcher(self)
        self.fs.fileChanged.connect(self._poke)
        self.fs.directoryChanged.connect(self._poke)
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self._fire)
        self.timer = QTimer(self)
        self.set_interval(interval_seconds)
        self.timer.timeout.connect(self.changed)
        self.paused = False

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

    def _watch(self) -> None:
        wanted = []
        for p in self.paths:
            if p.is_file():
                wanted.append(str(p))
                wal = p.with_name(p.name + "-wal")
                if wal.exists():
                    wanted.append(str(wal))
                wanted.append(str(p.parent))  # the WAL file appears and goes
            elif p.is_dir():
                wanted.append(str(p))
                wanted.extend(str(p / sub) for sub in ("session", "message", "part") if (p / sub).is_dir())
        missing = [w for w in wanted if w not in self.fs.files() and w not in self.fs.directories()]
        if missing:
            self.fs.addPaths(missing)

    def _poke(self, _path: str) -> None:
        if not self.paused:
            self.debounce.start()

    def _fire(self) -> None:
        self._watch()  # a rewritten file may have been replaced: watch it again
        self.changed.emit()
