"""The "Traces" tab: filters, the delegation tree with its waterfall, and the detail pane."""

from __future__ import annotations

import json
import logging
import time

from PyQt6.QtCore import QSettings, Qt, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from analytics.models import LoadReport
from analytics.queries.trace_queries import Reopen, TraceFilter
from analytics.settings import Settings
from analytics.sources import report_line
from analytics.terminal import TerminalError, open_session, shell_command
from dashboard.data import DataService, Snapshot
from dashboard.watcher import SourceWatcher
from dashboard.widgets.detail_pane import DetailPane
from dashboard.widgets.filter_bar import FilterBar
from dashboard.widgets.roles import Role
from dashboard.widgets.trace_tree import TraceTree

log = logging.getLogger(__name__)


def describe(reports: list[LoadReport] | None, shown: int) -> str:
    """The status bar line: when data was read, and of each history what changed and what was skipped."""
    stamp = time.strftime("%H:%M:%S")
    if reports is None:
        return f"{shown} traces shown · read {stamp}"
    if not reports:
        return f"Nothing to read at {stamp} · {shown} traces shown"
    return f"Read at {stamp}: {' · '.join(report_line(r) for r in reports)} · {shown} traces shown"


def details_text(reports: list[LoadReport]) -> str:
    """Each history's location, and the first things skipped with their reasons (the status bar's tooltip)."""
    lines = []
    for r in reports:
        lines.append(f"{report_line(r)} — {r.source} ({r.sessions_seen} sessions)")
        lines.extend(f"    {e}" for e in r.skipped_examples[:5])
        if r.unpriced:
            models = ", ".join(f"{m} ({n})" for m, n in sorted(r.unpriced.items()))
            lines.append(f"    cost unknown: no price for {models}")
    return "\n".join(lines)


class TracingSection(QWidget):
    """The tracing tab. Reads only through `DataService` (and so `analytics.queries`).

    Signals:
        status(str): a line for the window's status bar.
        progress(object): a long load stored a step (LoadProgress), or None when it is over.
        ready(): the whole first load and the first selected trace are on screen.
        analyzed(Analysis): the analysis of the traces now shown (for the flow and metrics views).
        reports(list): what the last load read of each history (LoadReport), for the status bar's details.
    """

    status = pyqtSignal(str)
    reports = pyqtSignal(list)
    progress = pyqtSignal(object)  # LoadProgress | None
    ready = pyqtSignal()
    analyzed = pyqtSignal(object)  # the Analysis of what the tree now shows

    def __init__(self, service: DataService, watcher: SourceWatcher | None, settings: Settings,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service, self.watcher, self.settings = service, watcher, settings
        self.filters = FilterBar()
        self.tree = TraceTree()
        self.detail = DetailPane()
        expand = QPushButton("Expand all")
        expand.clicked.connect(self.tree.expandAll)
        collapse = QPushButton("Collapse all")
        collapse.clicked.connect(self.tree.collapseAll)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read what the agents wrote since the last refresh (F5)")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.live = QCheckBox("Live")
        self.live.setChecked(True)
        self.live.setToolTip("Refresh automatically while the agents write; untick to pause")
        self.live.toggled.connect(self._set_live)
        # the View menu's toggle: the rows the tree opens itself show their steps too, not only the rows the user
        # opened (remembered)
        self.all_steps = QAction("Show the steps of every open row", self, checkable=True)
        self.all_steps.setToolTip("Open rows list their LLM and tool calls among their delegations")
        self.all_steps.toggled.connect(self.tree.set_all_steps)
        bar = QHBoxLayout()
        bar.addWidget(self.filters, 1)
        bar.addWidget(expand)
        bar.addWidget(collapse)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.live)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)

        self.query = TraceFilter()
        self._refresh_gen = 0
        self._filter_gen = 0
        self._details_gen = 0
        self._spans_asked: dict[str, int] = {}  # per trace: the last request for its steps
        self._load_gen: int | None = None  # the load on its way, if any
        self._again: bool | None = None  # asked for meanwhile: None, or another load (True: a full one)
        self.shown_version: int | None = None  # the store's data version the tree shows (None: nothing yet)
        self._open_after: str | None = None
        self._first = True
        self.filters.changed.connect(self.set_query)
        self.tree.traceSelected.connect(self._select)
        self.tree.traceActivated.connect(self.open_in_terminal)
        self.tree.stepSelected.connect(self.detail.show_step)
        self.tree.stepsWanted.connect(self._fetch_spans)
        self.detail.openRequested.connect(lambda: self.open_in_terminal(self.tree.current_trace_id()))
        service.done.connect(self._on_snapshot)
        service.progress.connect(self._on_progress)
        service.details.connect(self._on_details)
        service.spans.connect(self._on_spans)
        service.failed.connect(self._on_failed)
        service.message.connect(lambda _gen, text: self.status.emit(text))
        if watcher is not None:
            watcher.changed.connect(self.refresh)

    # -- requests ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Restore the saved layout and filters, then load and show."""
        self.restore_state()
        self.query = self.filters.query()
        self.refresh()
        if self.watcher is not None:
            self.watcher.start()

    def refresh(self, full: bool = False) -> None:
        """Load what OpenCode wrote and merge it into the tree in place.

        One load at a time: asked again while one runs (the watcher, the timer, F5), one more follows it."""
        if self._load_gen is not None:
            self._again = bool(self._again) or full
            return
        self._load_gen = self._refresh_gen = self.service.refresh(self.query, load_first=True, full=full,
                                                                  shown=self.shown_version)

    def set_query(self, query: TraceFilter) -> None:
        """The user changed a filter: read again. The tree is merged, not rebuilt, so the selection and the
        expanded rows that are still shown stay as they were."""
        self.query = query
        self.shown_version = None  # a refresh asked for before its answer must not take the tree as current
        self._refresh_gen = self._filter_gen = self.service.refresh(query, load_first=False)

    def _select(self, trace_id: str) -> None:
        self._details_gen = self.service.fetch_details(trace_id)

    def _fetch_spans(self, trace_ids: list[str]) -> None:
        gen = self.service.fetch_spans(*trace_ids)
        self._spans_asked.update(dict.fromkeys(trace_ids, gen))

    def open_in_terminal(self, trace_id: str | None) -> None:
        if not trace_id:
            return
        self._open_after = trace_id
        self._details_gen = self.service.fetch_details(trace_id)

    def _set_live(self, on: bool) -> None:
        if self.watcher is not None:
            self.watcher.set_paused(not on)
        self.status.emit("Live refresh on" if on else "Live refresh paused")

    # -- results -------------------------------------------------------------------------------------

    def _load_over(self, generation: int) -> None:
        """The load `generation` has finished: start the one asked for meanwhile, if any."""
        if generation != self._load_gen:
            return
        self._load_gen = None
        self.progress.emit(None)
        if self._again is not None:
            full, self._again = self._again, None
            self.refresh(full)

    def _on_progress(self, generation: int, step: object) -> None:
        if generation == self._load_gen and step.sessions_done < step.sessions_total:
            self.progress.emit(step)

    def _on_snapshot(self, snap: Snapshot) -> None:
        current = snap.generation == self._refresh_gen  # judged before the load asked for meanwhile starts
        if snap.final:
            if current and snap.changed:
                self.shown_version = snap.version  # what that load compares the store with
            self._load_over(snap.generation)
            self.tree.retry_steps()  # the steps of an opened row that could not be read before
        if not current:
            return  # a newer request is on its way
        if snap.reports is not None:
            self.reports.emit(snap.reports)
        if not snap.changed:
            self.status.emit(describe(snap.reports, self.tree.shown_count()))
            return
        rebuild = not self.tree.items  # the first fill: built, and opened, from scratch
        if snap.sessions is not None and snap.agents is not None:
            self.filters.set_choices(snap.sessions, snap.agents, snap.sources)
        # a filter change hides what it leaves out; a refresh removes what OpenCode deleted
        analysis = snap.analysis
        if analysis is not None:
            flags = snap.flags if snap.flags is not None else analysis.flag_texts()
            interrupted = snap.interrupted if snap.interrupted is not None else analysis.interrupted()
            critical = analysis.critical
        else:  # what a load has stored so far: the rows keep their flags until the load's end judges them again
            marks = self.tree.marks
            flags, critical, interrupted = dict(marks.flags), set(marks.critical), dict(marks.interrupted)
        touched = self.tree.show_traces(snap.traces, snap.hits, snap.query.narrows_traces, rebuild,
                                        prune=snap.generation != self._filter_gen, flags=flags, critical=critical,
                                        steps=snap.steps, interrupted=interrupted)
        if analysis is not None:
            self.analyzed.emit(analysis)
        current = self.tree.current_trace_id()
        shown = self.tree.visible_roots()
        if (current is None or self.tree.items[current].isHidden()) and shown:
            self.tree.setCurrentItem(shown[0])  # nothing selected, or the filter hid the selected row
        elif current is not None and not rebuild and (self._tree_changed(current, touched)
                                                       or self._first and snap.final):
            self._select(current)  # its figures, answer or totals with delegations may have changed
        if not snap.final:
            if not snap.judging:
                self.status.emit(f"Loading… {len(snap.traces)} traces shown so far")
            return
        self.status.emit(describe(snap.reports, len(snap.traces)))
        if self._first and not snap.traces:
            self._first = False
            self.ready.emit()

    def _tree_changed(self, trace_id: str, touched: set[str]) -> bool:
        """Whether a row of this trace's session tree changed (its totals include its descendants)."""
        root = self.tree.items[trace_id].data(0, Role.TRACE).root_session_id
        return any(self.tree.items[t].data(0, Role.TRACE).root_session_id == root for t in touched)

    def _on_details(self, generation: int, payload: object) -> None:
        if generation != self._details_gen:
            return
        details, target = payload
        if details is None:
            return
        if target is not None:
            self.detail.set_reopen(shell_command(target.directory, target.session_id, target.source), target.note)
        if self._open_after == details.trace.trace_id:
            self._open_after = None
            self._open(target)
            return
        if self.tree.current_trace_id() == details.trace.trace_id and self.tree.current_span() is None:
            self.detail.show_details(details)
            if self._first and self.shown_version is not None:  # the first load is whole on screen
                self._first = False
                self.ready.emit()

    def _on_spans(self, generation: int, spans: dict) -> None:
        """Steps arrived: shown for each trace whose latest request this was."""
        for trace_id, rows in spans.items():
            if self._spans_asked.get(trace_id) == generation:
                del self._spans_asked[trace_id]
                self.tree.show_steps(trace_id, rows)

    def _open(self, target: Reopen | None) -> None:
        if target is None:
            self.status.emit("No session is recorded for this trace.")
            return
        try:
            argv = open_session(target.directory, target.session_id, template=self.settings.terminal_template,
                                source=target.source)
        except TerminalError as exc:
            self.status.emit(str(exc))
            return
        self.status.emit(f"Opened {target.session_id} in {argv[0]}" + (f". {target.note}" if target.note else ""))

    def _on_failed(self, generation: int, message: str) -> None:
        self._load_over(generation)
        lost = [tid for tid, gen in self._spans_asked.items() if gen == generation]
        if lost:  # a step request: asked again at the next opening or refresh
            for tid in lost:
                del self._spans_asked[tid]
            self.tree.steps_failed(lost)
        self.status.emit(message)
        if self._first and generation == self._refresh_gen:
            self._first = False
            self.ready.emit()

    # -- state -----------------------------------------------------------------------------------------

    def save_state(self) -> None:
        s = QSettings()
        s.setValue("tracing/splitter", self.splitter.saveState())
        s.setValue("tracing/header", self.tree.header().saveState())
        s.setValue("tracing/filters", json.dumps(self.filters.state()))
        s.setValue("tracing/live", self.live.isChecked())
        s.setValue("tracing/all_steps", self.all_steps.isChecked())

    def restore_state(self) -> None:
        s = QSettings()
        if s.value("tracing/splitter") is not None:
            self.splitter.restoreState(s.value("tracing/splitter"))
        else:
            self.splitter.setSizes([1000, 520])
        if s.value("tracing/header") is not None:
            self.tree.header().restoreState(s.value("tracing/header"))
        raw = s.value("tracing/filters")
        if raw:
            try:
                self.filters.restore(json.loads(raw))
            except (TypeError, ValueError):
                log.warning("ignoring saved filters that do not parse")
        live = s.value("tracing/live")
        if live is not None and str(live).lower() in ("false", "0"):
            self.live.setChecked(False)
        if str(s.value("tracing/all_steps", "false")).lower() in ("true", "1"):
            self.all_steps.setChecked(True)

    def stop(self) -> None:
        """Stop timers and watchers and wait for the background request."""
        self.save_state()
        if self.watcher is not None:
            self.watcher.stop()
        self.tree.stop()
        self.service.stop()
