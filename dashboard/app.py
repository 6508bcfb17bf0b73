"""Start the dashboard: pick the OpenCode store (or the bundled demo), open the window, maybe screenshot it."""

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
from analytics.opencode import Source, default_data_dir, open_source
from analytics.settings import Settings
from dashboard.data import DataService
from dashboard.watcher import SourceWatcher
from dashboard.widgets import plain
from dashboard.window import MainWindow

log = logging.getLogger(__name__)
SCREENSHOT_TIMEOUT_MS = 20_000


def demo_store() -> Path:
    """The real OpenCode store bundled with the program (never written: it is opened read-only)."""
    return Path(str(resources.files("resources") / "demo"))


def demo_db_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agent-traces" / "demo.duckdb"


@dataclass
class Choice:
    source: Source | None
    db: Path
    label: str
    notice: str | None = None


def choose(source: str | None, db: str | None, demo: bool) -> Choice:
    """The store to read and the trace file to keep, with a sentence when the demo stands in."""
    if demo:
        return Choice(open_source(demo_store()), demo_db_path(), "demo store (bundled)",
                      "Showing the bundled demo store (--demo).")
    db_path = Path(db) if db else default_db_path()
    if source is None and not os.environ.get("OPENCODE_DB") and not default_data_dir().exists():
        return Choice(open_source(demo_store()), demo_db_path(), "demo store (bundled)",
                      f"No OpenCode history at {default_data_dir()}: showing the bundled demo store. "
                      "Run OpenCode once, or start with --source PATH.")
    try:
        src = open_source(source)
    except AgentTracesError as exc:
        # keep showing what the trace store already holds, and say why nothing new is read
        return Choice(None, db_path, "no OpenCode store", str(exc))
    return Choice(src, db_path, f"{src.location} ({src.generation})")


def watch_paths(source: Source | None) -> list[Path]:
    return [r.path for r in source.readers] if source is not None else []


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


def run(source: str | None = None, db: str | None = None, demo: bool = False,
        screenshot: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces")
    app.setApplicationName("dashboard")
    settings = Settings.load()
    choice = choose(source, db, demo)
    window, service = build(choice, settings)
    with exception_hook(window):
        window.show()
        notice = startup_notice(choice, settings)
        if notice:
            show_when_ready(window, notice)
        if screenshot:
            return take_screenshot(app, window, Path(screenshot))
        if choice.notice and choice.source is None:
            plain.message_box(window, "agent-traces", choice.notice).exec()
        return app.exec()


def build(choice: Choice, settings: Settings) -> tuple[MainWindow, DataService]:
    service = DataService(choice.db, choice.source, settings.retention_days)
    watcher = SourceWatcher(watch_paths(choice.source), settings.refresh_seconds) if choice.source else None
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
