"""Start the dashboard: find the agents' histories (or take the bundled demo), open the window, maybe screenshot it."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QApplication, QMainWindow

from analytics.db import default_db_path
from analytics.errors import AgentTracesError
from analytics.settings import Settings
from analytics.sources import LoadSource, Sources, demo_sources, discover, nothing_found, open_paths
from dashboard.data import DataService
from dashboard.watcher import SourceWatcher
from dashboard.widgets import plain
from dashboard.window import MainWindow

log = logging.getLogger(__name__)
SCREENSHOT_TIMEOUT_MS = 20_000


def demo_store() -> Path:
    """The demo bundled with the program: real histories of OpenCode (`opencode.db`), Claude Code
    (`claude/projects/`) and Codex (`codex/sessions/`), never written (they are opened read-only)."""
    return Path(str(resources.files("resources") / "demo"))


def demo_db_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agent-traces" / "demo.duckdb"


@dataclass
class Choice:
    """The histories to read (one opened source is taken as its Sources), the trace file to keep, a label for the
    title and a sentence for the status bar."""

    sources: Sources | LoadSource | None
    db: Path
    label: str
    notice: str | None = None
    detail: str | None = None  # the notice in full, for stderr: where each history was looked for

    def __post_init__(self) -> None:
        self.sources = Sources.of(self.sources)


def choose(source: str | list[str] | None, db: str | None, demo: bool, off: list[str] | tuple = ()) -> Choice:
    """The histories to read and the trace file to keep, with a sentence when the demo stands in: those given
    (--source, one or more), else every one found on this machine but those `off` (the settings' sources_off);
    the demo when there is none."""
    if demo:
        return Choice(demo_sources(demo_store()), demo_db_path(), "demo (bundled)",
                      "Showing the bundled demo store (--demo).")
    db_path = Path(db) if db else default_db_path()
    paths = [source] if isinstance(source, str) else list(source or ())
    if not paths:
        found = discover(off)
        if not found and not found.problems:
            # the status bar has room for one short sentence; the places looked in go to stderr
            return Choice(demo_sources(demo_store()), demo_db_path(), "demo (bundled)",
                          "No OpenCode, Claude Code or Codex history found here: showing the bundled demo store. "
                          "Run one of them once, or start with --source PATH.",
                          f"{nothing_found(off)} Showing the bundled demo store meanwhile.")
        # a history that cannot be read is said; the store keeps showing what it holds of it
        return Choice(found, db_path, found.label() if found else "no history", " ".join(found.problems) or None)
    try:
        given = open_paths(paths)
    except AgentTracesError as exc:
        # keep showing what the trace store already holds, and say why nothing new is read
        return Choice(None, db_path, "no history", str(exc))
    return Choice(given, db_path, given.label())


class ExceptionHook(QObject):
    """A `sys.excepthook` that keeps the app alive: PyQt6 aborts the process when an exception escapes a slot
    or a virtual method and no hook of the program's own is set.

    Each exception is logged with its traceback and said in one sentence through `caught`, which may be
    emitted on any thread (a worker's exception) and is delivered on the GUI thread.

    Signals:
        caught(str): a sentence for the status bar.
    """

    caught = pyqtSignal(str)

    def __call__(self, kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):  # Ctrl+C in the terminal that started the window: quit
            app = QApplication.instance()
            if app is not None:
                app.quit()
            return
        log.error("unexpected error, the window keeps running", exc_info=(kind, value, tb))
        text = str(value).splitlines()[0] if str(value) else ""
        self.caught.emit(f"Unexpected error ({kind.__name__}{': ' + text if text else ''}); the window keeps "
                         "running and the details are in the log.")


@contextmanager
def exception_hook(window: QMainWindow) -> Iterator[ExceptionHook]:
    """Install an ExceptionHook that reports in the window's status bar; the previous hook comes back after."""
    hook = ExceptionHook(window)
    hook.caught.connect(lambda text: window.statusBar().showMessage(text))
    previous = sys.excepthook
    sys.excepthook = hook
    try:
        yield hook
    finally:
        sys.excepthook = previous


def startup_notice(choice: Choice, settings: Settings) -> str | None:
    """What the status bar says once the first data is shown: the demo or missing store, bad settings."""
    parts = [text for text in (choice.notice, settings.notice()) if text]
    return " ".join(parts) or None


def show_when_ready(window: MainWindow, text: str) -> None:
    """Put `text` in the status bar after the first fill (whose own status line would hide it at once)."""

    def show() -> None:
        window.tracing.ready.disconnect(show)
        window.statusBar().showMessage(text)

    window.statusBar().showMessage(text)
    window.tracing.ready.connect(show)


def run(source: str | list[str] | None = None, db: str | None = None, demo: bool = False,
        screenshot: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces")
    app.setApplicationName("dashboard")
    settings = Settings.load()
    choice = choose(source, db, demo, settings.sources_off)
    if choice.detail:
        print(f"agent-traces: {choice.detail}", file=sys.stderr)
    window, service = build(choice, settings)
    with exception_hook(window):
        window.show()
        notice = startup_notice(choice, settings)
        if notice:
            show_when_ready(window, notice)
        if screenshot:
            return take_screenshot(app, window, Path(screenshot))
        if choice.notice and not choice.sources:
            plain.message_box(window, "agent-traces", choice.notice).exec()
        return app.exec()


def build(choice: Choice, settings: Settings) -> tuple[MainWindow, DataService]:
    sources = Sources.of(choice.sources)
    service = DataService(choice.db, sources, settings.retention_days)
    watcher = SourceWatcher(sources.watched(), settings.refresh_seconds) if sources else None
    window = MainWindow(service, watcher, settings, choice.label)
    service.setParent(window)
    if watcher is not None:
        watcher.setParent(window)
    window.tracing.start()
    return window, service


def take_screenshot(app: QApplication, window: MainWindow, path: Path) -> int:
    """Wait for the data and the first selected trace, render the window to a PNG, and quit."""
    done = {"ok": False}

    def shoot() -> None:
        if done["ok"]:
            return
        done["ok"] = True
        app.processEvents()
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = window.grab().save(str(path), "PNG")
        print(f"{'saved' if saved else 'could not save'} {path}", file=sys.stderr)
        window.close()
        app.exit(0 if saved else 1)

    window.tracing.ready.connect(lambda: QTimer.singleShot(300, shoot))
    QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, shoot)
    return app.exec()
