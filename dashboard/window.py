"""The main window: a tab per section, menus, and the status bar."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PyQt6.QtCore import QSettings
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMainWindow, QProgressBar, QTabWidget

from analytics.loader import LoadProgress
from analytics.settings import Settings
from dashboard.data import DataService
from dashboard.sections import CompareSection, FlowSection, MetricsSection, TracingSection
from dashboard.sections.tracing import details_text
from dashboard.watcher import SourceWatcher
from dashboard.widgets import plain
from dashboard.widgets.roles import Role
from dashboard.widgets.settings_dialog import SettingsDialog

if TYPE_CHECKING:  # imported when a Send is first opened (OpenTelemetry's modules and an HTTP client)
    from dashboard.widgets.send_dialog import SendDialog


class MainWindow(QMainWindow):
    def __init__(self, service: DataService, watcher: SourceWatcher | None, settings: Settings,
                 source_label: str) -> None:
        super().__init__()
        self.setWindowTitle(f"agent-traces — {source_label}")
        self.service, self.watcher, self.settings = service, watcher, settings
        self.tabs = QTabWidget()
        self.tracing = TracingSection(service, watcher, settings)
        self.flow = FlowSection()
        self.metrics = MetricsSection()
        self.tabs.addTab(self.tracing, "Traces")
        self.tabs.addTab(self.flow, "Flow")
        self.tabs.addTab(self.metrics, "Metrics")
        self.compare = CompareSection(service)
        self.tabs.addTab(self.compare, "Compare")
        self.setCentralWidget(self.tabs)
        self.tracing.analyzed.connect(self.flow.set_analysis)
        self.tracing.analyzed.connect(self._analyzed)
        self._unshown_analysis: tuple[object] | None = None  # for the Metrics tab, until it is shown
        self.tabs.currentChanged.connect(self._tab_changed)
        self.tracing.tree.traceSelected.connect(self.flow.follow)
        self.flow.traceChosen.connect(self.show_trace)
        self.metrics.traceChosen.connect(self.show_trace)
        self.flow.agentChosen.connect(self.filter_agent)
        self.tracing.tree.compareRequested.connect(self.compare_runs)
        self.tracing.tree.compareMarked.connect(
            lambda _tid: self.statusBar().showMessage("Now choose Compare with… on the other run (right-click it)."))
        self.compare.traceChosen.connect(self.show_trace)
        self.compare.status.connect(lambda text: self.statusBar().showMessage(text))
        self.source_label = plain.label(source_label)  # a path: any characters
        self.load_progress = QProgressBar()
        self.load_progress.setMaximumWidth(360)
        self.load_progress.setTextVisible(True)
        self.load_progress.hide()
        self.statusBar().addPermanentWidget(self.load_progress)
        self.statusBar().addPermanentWidget(self.source_label)
        self.tracing.status.connect(lambda text: self.statusBar().showMessage(text))
        self.tracing.reports.connect(lambda reports: self.source_label.setToolTip(
            plain.tooltip(details_text(reports))))
        self.tracing.progress.connect(self.show_progress)
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
            ("Export session as &JSON…", None, lambda: self.export_dialog("json")),
            ("Export session as Open&Telemetry (OTLP/JSON)…", None, lambda: self.export_dialog("otlp")),
            ("Se&nd to OpenTelemetry backend…", None, self.send_dialog),
            ("Export &comparison as JSON…", None, self.export_comparison_dialog),
            ("&Settings…", QKeySequence.StandardKey.Preferences, self.open_settings),
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
        view.addAction(self.tracing.all_steps)
        compare = QAction("Com&pare the two selected runs", self)
        compare.setShortcut(QKeySequence("Ctrl+D"))
        compare.triggered.connect(self.compare_selected)
        view.addAction(compare)
        find = QAction("&Search prompts", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.tracing.filters.search.setFocus)
        view.addAction(find)

    def show_progress(self, step: LoadProgress | None) -> None:
        """The status bar's bar while a long load runs: sessions read of those to read, traces written."""
        if step is None:
            self.load_progress.hide()
            return
        self.load_progress.setRange(0, max(step.sessions_total, 1))
        self.load_progress.setValue(step.sessions_done)
        self.load_progress.setFormat(f"Loading: {step.sessions_done:,} of {step.sessions_total:,} sessions · "
                                     f"{step.traces_written:,} traces")
        self.load_progress.show()

    def _analyzed(self, analysis: object) -> None:
        """The Metrics tab is filled when it is shown: at the end of a reload of a long history, filling a tab
        nobody is looking at would hold the GUI thread for nothing."""
        if self.tabs.currentWidget() is self.metrics:
            self.metrics.set_analysis(analysis)
        else:
            self._unshown_analysis = (analysis,)

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.metrics and self._unshown_analysis is not None:
            (analysis,), self._unshown_analysis = self._unshown_analysis, None
            self.metrics.set_analysis(analysis)

    def show_trace(self, trace_id: str) -> None:
        """Bring a trace up in the Traces tab (from the flow or the metrics)."""
        self.tabs.setCurrentWidget(self.tracing)
        if not self.tracing.tree.select_trace(trace_id):
            self.statusBar().showMessage("That trace is not in the tree: change the filters to see it.")

    def compare_runs(self, left: str, right: str) -> int:
        """Open the Compare tab on two runs (trace ids); returns the request's generation."""
        self.tabs.setCurrentWidget(self.compare)
        return self.compare.compare(left, right)

    def compare_selected(self) -> None:
        selected = self.tracing.tree.selected_trace_ids()
        if len(selected) != 2:
            self.statusBar().showMessage("Select two runs to compare (Ctrl-click the second).")
            return
        self.compare_runs(*selected)

    def export_comparison(self, path: Path) -> int | None:
        """Write the comparison on screen as JSON (in the background); returns the request's generation."""
        if self.compare.sides is None:
            self.statusBar().showMessage("Compare two runs first (select two rows, right-click, Compare).")
            return None
        return self.service.export_comparison(*self.compare.sides, path)

    def export_comparison_dialog(self) -> None:
        if self.compare.sides is None:
            self.statusBar().showMessage("Compare two runs first (select two rows, right-click, Compare).")
            return
        left, right = self.compare.sides
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", f"compare-{left}-{right}.json",
                                              "JSON (*.json)")
        if path:
            self.export_comparison(Path(path))

    def filter_agent(self, agent: str) -> None:
        bar = self.tracing.filters
        if bar.agent.findData(agent) >= 0:
            bar.agent.setCurrentIndex(bar.agent.findData(agent))
            bar.apply()
            self.statusBar().showMessage(f"Showing the sessions where {agent} took part.")

    def current_session(self) -> str | None:
        tid = self.tracing.tree.current_trace_id()
        item = self.tracing.tree.items.get(tid) if tid else None
        return item.data(0, Role.TRACE).root_session_id if item is not None else None

    def export_session(self, path: Path, fmt: str) -> int | None:
        """Export the selected trace's session (in the background); returns the request's generation."""
        session = self.current_session()
        if session is None:
            self.statusBar().showMessage("Select a session (or a trace in it) to export.")
            return None
        from analytics.otlp import Content  # OpenTelemetry's modules: imported when first needed, not at start

        content = Content(self.settings.otlp_content, self.settings.otlp_cut_kb)
        return self.service.export(session, path, fmt, content)

    def export_dialog(self, fmt: str) -> None:
        session = self.current_session()
        if session is None:
            self.statusBar().showMessage("Select a session (or a trace in it) to export.")
            return
        suffix = ".otlp.json" if fmt == "otlp" else ".json"
        path, _ = QFileDialog.getSaveFileName(self, "Export session", f"{session}{suffix}",
                                              "OTLP/JSON (*.json)" if fmt == "otlp" else "JSON (*.json)")
        if path:
            self.export_session(Path(path), fmt)

    def selected_sessions(self) -> list[str]:
        """The root sessions of every selected row (Ctrl-click selects more than one), else of the current one."""
        tree = self.tracing.tree
        roots = [tree.items[tid].data(0, Role.TRACE).root_session_id for tid in tree.selected_trace_ids()]
        current = self.current_session()
        return list(dict.fromkeys(roots)) or ([current] if current else [])

    def send_dialog(self, endpoint: str | None = None) -> SendDialog | None:
        """File › Send: the dialog that says what of the selected sessions would go to the endpoint (the
        settings' unless given), then sends it on a thread of its own, with progress and Cancel."""
        sessions = self.selected_sessions()
        if not sessions:
            self.statusBar().showMessage("Select a session (or a trace in it) to send.")
            return None
        from dashboard.widgets.send_dialog import SendDialog  # the push and its HTTP client: when first sent

        dialog = SendDialog(self.service.db_path, sessions, self.settings, endpoint, self)
        dialog.sent.connect(lambda text: self.statusBar().showMessage(text))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def send_sessions(self, endpoint: str | None = None) -> SendDialog | None:
        """Send the selected sessions to the endpoint (the settings' unless given) once the dialog has counted
        what goes, as its Send button does; returns the dialog."""
        if not (endpoint or self.settings.otlp_endpoint):
            self.statusBar().showMessage("Set the OpenTelemetry endpoint in File › Settings first.")
            return None
        dialog = self.send_dialog(endpoint)
        if dialog is not None:
            dialog.planned.connect(lambda _plan: dialog.send())
        return dialog

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.settings, self)
        dialog.cleanupRequested.connect(self.service.cleanup)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.settings()))
        dialog.open()
        return dialog

    def apply_settings(self, settings: Settings) -> None:
        settings.save()
        self.settings.retention_days = settings.retention_days
        self.settings.refresh_seconds = settings.refresh_seconds
        self.settings.terminal_template = settings.terminal_template
        self.settings.otlp_endpoint, self.settings.otlp_project = settings.otlp_endpoint, settings.otlp_project
        self.settings.otlp_headers = settings.otlp_headers
        self.settings.otlp_content, self.settings.otlp_cut_kb = settings.otlp_content, settings.otlp_cut_kb
        reading = settings.sources_off != self.settings.sources_off
        self.settings.sources_off = list(settings.sources_off)
        self.service.retention_days = settings.retention_days
        if self.watcher is not None:
            self.watcher.set_interval(settings.refresh_seconds)
        self.statusBar().showMessage("Settings saved." + (" Which histories are read changes at the next start."
                                                          if reading else ""))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        QSettings().setValue("window/geometry", self.saveGeometry())
        sending = sys.modules.get("dashboard.widgets.send_dialog")  # not loaded: no Send was ever opened
        for dialog in self.findChildren(sending.SendDialog) if sending is not None else ():
            dialog.stop()
        self.tracing.stop()
        super().closeEvent(event)
