"""Start the dashboard: pick the OpenCode store (or the bundled demo), open the window, maybe screenshot it."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from analytics.db import default_db_path
from analytics.errors import AgentTracesError
from analytics.opencode import Source, default_data_dir, open_source
from analytics.settings import Settings
from dashboard.data import DataService
from dashboard.watcher import SourceWatcher
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


def run(source: str | None = None, db: str | None = None, demo: bool = False,
        screenshot: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces")
    app.setApplicationName("dashboard")
    settings = Settings.load()
    choice = choose(source, db, demo)
    window, service = build(choice, settings)
    window.show()
    if choice.notice:
        window.statusBar().showMessage(choice.notice)
    if screenshot:
        return take_screenshot(app, window, Path(screenshot))
    if choice.notice and choice.source is None:
        QMessageBox.information(window, "agent-traces", choice.notice)
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
