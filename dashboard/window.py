"""The main window: a tab per section, menus, and the status bar."""

from __future__ import annotations

from PyQt6.QtCore import QSettings
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import QLabel, QMainWindow, QTabWidget

from analytics.settings import Settings
from dashboard.data import DataService
from dashboard.sections import TracingSection
from dashboard.watcher import SourceWatcher


class MainWindow(QMainWindow):
    def __init__(self, service: DataService, watcher: SourceWatcher | None, settings: Settings,
                 source_label: str) -> None:
        super().__init__()
        self.setWindowTitle(f"agent-traces — {source_label}")
        self.tabs = QTabWidget()
        self.tracing = TracingSection(service, watcher, settings)
        self.tabs.addTab(self.tracing, "Traces")
        self.setCentralWidget(self.tabs)
        self.source_label = QLabel(source_label)
        self.statusBar().addPermanentWidget(self.source_label)
        self.tracing.status.connect(lambda text: self.statusBar().showMessage(text))
        self._menus()
        geometry = QSettings().value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 860)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("&Refresh", QKeySequence.StandardKey.Refresh, lambda: self.tracing.refresh()),
            ("Reload &everything", None, lambda: self.tracing.refresh(full=True)),
            ("&Open session in terminal", QKeySequence("Ctrl+O"),
             lambda: self.tracing.open_in_terminal(self.tracing.tree.current_trace_id())),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        view = self.menuBar().addMenu("&View")
        for text, slot in (("&Expand all", self.tracing.tree.expandAll),
                           ("&Collapse all", self.tracing.tree.collapseAll)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            view.addAction(action)
        find = QAction("&Search prompts", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.tracing.filters.search.setFocus)
        view.addAction(find)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        QSettings().setValue("window/geometry", self.saveGeometry())
        self.tracing.stop()
        super().closeEvent(event)
