"""The delegation tree: sessions at the top, delegations nested under the call that made them.

Rows carry raw values (milliseconds, token counts, dollars) in the display role, so Qt sorts them as numbers
in C++; `FigureDelegate` formats them for the eye. The trace id is the row's key: a refresh changes, adds and
removes rows in place, so selection, expansion and scroll position survive.
"""

from __future__ import annotations

import bisect

from PyQt6.QtCore import QEvent, QModelIndex, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QKeyEvent, QPalette
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QTreeWidget,
    QTreeWidgetItem,
)

from analytics import format as fmt
from analytics.queries.trace_queries import TraceSummary
from dashboard.widgets import plain
from dashboard.widgets.roles import Role, trace_of
from dashboard.widgets.timeline_delegate import STATUS_COLOURS, TimelineDelegate, now_ms

COLUMNS = ("Agent", "Description", "Duration", "Tokens in / out", "Cost", "Status", "Timeline")
AGENT, DESCRIPTION, DURATION, TOKENS, COST, STATUS, TIMELINE = range(len(COLUMNS))
STATUS_LABEL = {"completed": "✓ completed", "error": "✗ error", "running": "⟳ running"}
DIM = QBrush(QColor(128, 128, 128))
EXPAND_ALL_ROWS = 2000  # a larger tree opens one level deep: expanding thousands of rows costs more than it shows
STATUS_BRUSH = {k: QBrush(v.darker(115)) for k, v in STATUS_COLOURS.items()}


class FigureDelegate(QStyledItemDelegate):
    """Shows the raw values of the Duration, Tokens and Cost columns as readable figures, and gives the
    other columns their tooltips (computed on demand from the row, not stored on every item)."""

    def initStyleOption(self, option, index: QModelIndex) -> None:  # noqa: N802 (Qt's name)
        super().initStyleOption(option, index)
        t = trace_of(index)
        if t is None:
            return
        if t.trace_id in self.tree.dimmed:  # outside the filter: kept for context, greyed
            option.palette.setBrush(QPalette.ColorRole.Text, DIM)
        column = index.column()
        if column not in (DURATION, TOKENS, COST):
            return
        if column == DURATION:
            option.text = (f"{fmt.duration(now_ms() - t.started_at)}…" if t.status == "running"
                           else fmt.duration(t.duration_ms))
        elif column == TOKENS:
            option.text = f"{fmt.tokens(t.tokens_in)} / {fmt.tokens(t.tokens_out)}"
        else:
            option.text = fmt.cost(t.cost_usd)
        option.displayAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

    def __init__(self, tree: TraceTree) -> None:
        super().__init__(tree)
        self.tree = tree

    def helpEvent(self, event, view, option, index: QModelIndex) -> bool:  # noqa: N802
        t = trace_of(index) if index.isValid() else None
        if event is None or event.type() != QEvent.Type.ToolTip or t is None:
            return super().helpEvent(event, view, option, index)
        if index.column() == AGENT:
            lines = [" › ".join(filter(None, (t.parent_agent, t.subagent_type)))]
            if t.trace_id in self.tree.flags:
                lines.append("⚠ " + self.tree.flags[t.trace_id])
            if t.trace_id in self.tree.critical:
                lines.append("On the critical path: this call decided when its session ended.")
            text = "\n".join(lines)
        elif index.column() == DESCRIPTION:
            text = t.input_preview or t.description or ""
        else:
            text = TimelineDelegate.tooltip(t, self.tree.roots[t.root_session_id], now_ms())
        plain.show_tooltip(event.globalPos(), text, view)
        return True


class TraceTree(QTreeWidget):
    """QTreeWidget of traces keyed by trace id.

    Signals:
        traceSelected(str): the current row changed to this trace.
        traceActivated(str): the row was double-clicked or Enter was pressed on it.
    """

    traceSelected = pyqtSignal(str)
    traceActivated = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(False)
        # Unsorted until the user clicks a header: newest sessions first, each one's calls in time order.
        self.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self.dimmed: set[str] = set()  # rows shown for context that do not match the filter (greyed)
        self.flags: dict[str, str] = {}  # anomalous rows: the reason
        self.critical: set[str] = set()  # rows on their session's critical path
        self.roots: dict[str, tuple[int, int, bool]] = {}  # per session: start, latest end, anything running
        self._figures = FigureDelegate(self)
        self.setItemDelegate(self._figures)
        self._timeline = TimelineDelegate(self, lambda t: self.roots[t.root_session_id], self.dimmed,
                                          self.critical)
        self.setItemDelegateForColumn(TIMELINE, self._timeline)
        header = self.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((AGENT, 165), (DESCRIPTION, 190), (DURATION, 78), (TOKENS, 104), (COST, 58),
                              (STATUS, 100)):
            self.setColumnWidth(column, width)
        self.items: dict[str, QTreeWidgetItem] = {}
        self._signatures: dict[str, tuple] = {}  # per row, what it shows: a merge skips the unchanged
        self._hidden: set[str] = set()  # rows the current filter leaves out
        self._running = 0
        self._bold = QFont(self.font())
        self._bold.setBold(True)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
        self.currentItemChanged.connect(self._on_current)
        self.itemDoubleClicked.connect(lambda item, _c: self.traceActivated.emit(item.data(0, Role.TRACE).trace_id))

    # -- filling -------------------------------------------------------------------------------------

    def show_traces(self, traces: list[TraceSummary], hits: set[str], narrowed: bool, rebuild: bool,
                    prune: bool = True, flags: dict[str, str] | None = None,
                    critical: set[str] | None = None) -> set[str]:
        """Show these traces, merged in place (or rebuilt from scratch with `rebuild`).

        Rows missing from `traces` are removed when `prune` (the data is gone), hidden otherwise (a filter
        left them out: they come back without being rebuilt). Returns the ids of rows added or changed.
        """
        roots = self.roots = self._root_bounds(traces)
        self.flags = flags or {}
        self.critical.clear()
        self.critical.update(critical or ())
        self.dimmed.clear()
        if narrowed:
            self.dimmed.update(t.trace_id for t in traces if t.trace_id not in hits)
        self.setUpdatesEnabled(False)
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)
        blocked = self.blockSignals(True)
        touched: set[str] = set()
        try:
            current = self.current_trace_id()
            expanded = self.expanded_ids() if rebuild else None
            if rebuild:
                self.clear_rows()
            wanted = {t.trace_id for t in traces}
            missing = [tid for tid in self.items if tid not in wanted]
            if prune:
                for tid in missing:
                    self._remove(tid)
            else:
                for tid in missing:
                    if tid not in self._hidden:
                        self.items[tid].setHidden(True)
                        self._hidden.add(tid)
            for tid in [tid for tid in self._hidden if tid in wanted]:
                self.items[tid].setHidden(False)
                self._hidden.discard(tid)
            new_top: list[QTreeWidgetItem] = []
            new_children: dict[str, list[QTreeWidgetItem]] = {}
            signatures = self._signatures
            for t in traces:  # parents come first: the query orders by depth
                root = roots[t.root_session_id]
                dim = narrowed and t.trace_id not in hits
                signature = (t.status, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd, t.description,
                             t.parent_trace_id, root, dim, t.trace_id in self.flags, t.trace_id in self.critical)
                if signatures.get(t.trace_id) == signature:
                    continue  # unchanged: nothing to build or set
                signatures[t.trace_id] = signature
                item = self.items.get(t.trace_id)
                if item is None:
                    item = self._new_item(t)
                    self.items[t.trace_id] = item
                    if t.parent_trace_id in self.items:
                        new_children.setdefault(t.parent_trace_id, []).append(item)
                    else:
                        new_top.append(item)
                    touched.add(t.trace_id)
                else:
                    self._update_item(item, t)
                    touched.add(t.trace_id)
            for parent_id, children in new_children.items():
                self.items[parent_id].addChildren(children)
            if new_top:
                self._insert_roots(new_top)
            if rebuild:
                self._expand(expanded)
            else:
                self._expand_new(new_top, new_children)
            self._running = sum(1 for t in traces if t.status == "running")
        finally:
            self.blockSignals(blocked)
            self.setSortingEnabled(sorting)
            self.setUpdatesEnabled(True)
        if self._running:
            self.ticker.start()
        else:
            self.ticker.stop()
        if rebuild and current and current in self.items:
            self.setCurrentItem(self.items[current])
        return touched

    def clear_rows(self) -> None:
        """Empty the tree and forget every row."""
        self.clear()
        self.items, self._signatures, self._hidden = {}, {}, set()

    def _insert_roots(self, new: list[QTreeWidgetItem]) -> None:
        """Add session rows where they belong in the unsorted view: newest first (a sorted view re-sorts)."""
        new.sort(key=lambda i: i.data(0, Role.TRACE).started_at, reverse=True)
        count = self.topLevelItemCount()
        if count == 0:
            self.addTopLevelItems(new)
            return
        keys = [-self.topLevelItem(i).data(0, Role.TRACE).started_at for i in range(count)]
        for item in new:
            key = -item.data(0, Role.TRACE).started_at
            at = bisect.bisect_right(keys, key)
            keys.insert(at, key)
            self.insertTopLevelItem(at, item)

    @staticmethod
    def _root_bounds(traces: list[TraceSummary]) -> dict[str, tuple[int, int, bool]]:
        """Per root session: its start, the latest end in its tree, and whether anything still runs."""
        bounds: dict[str, list] = {}
        for t in traces:
            b = bounds.setdefault(t.root_session_id, [t.started_at, t.started_at, False])
            b[0] = min(b[0], t.started_at)
            b[1] = max(b[1], t.ended_at or t.started_at)
            b[2] = b[2] or t.status == "running"
        return {k: (v[0], v[1], v[2]) for k, v in bounds.items()}

    def _new_item(self, t: TraceSummary) -> QTreeWidgetItem:
        item = QTreeWidgetItem([self._label(t), t.description or "", "", "", "",
                                STATUS_LABEL.get(t.status, t.status)])
        self._set_values(item, t)
        if t.status in STATUS_BRUSH:
            item.setForeground(STATUS, STATUS_BRUSH[t.status])
        if t.status != "completed":
            item.setFont(STATUS, self._bold)
        if t.kind == "session":
            item.setFont(AGENT, self._bold)
        return item

    def _update_item(self, item: QTreeWidgetItem, t: TraceSummary) -> None:
        """Set only what changed: a filter change mostly toggles dimming, which the delegates paint."""
        old = item.data(0, Role.TRACE)
        label = self._label(t)
        if item.text(AGENT) != label:
            item.setText(AGENT, label)
        if old.description != t.description:
            item.setText(DESCRIPTION, t.description or "")
        if old.status != t.status:
            item.setText(STATUS, STATUS_LABEL.get(t.status, t.status))
            item.setForeground(STATUS, STATUS_BRUSH.get(t.status, QBrush()))
            item.setFont(STATUS, self._bold if t.status != "completed" else self.font())
        if (old.duration_ms, old.ended_at, old.tokens_in, old.tokens_out, old.cost_usd) != (
                t.duration_ms, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd):
            self._set_values(item, t)
        else:
            item.setData(0, Role.TRACE, t)

    def _label(self, t: TraceSummary) -> str:
        label = t.subagent_type if t.kind == "delegation" else f"{t.subagent_type}  (session)"
        return f"{label}  ⚠" if t.trace_id in self.flags else label

    @staticmethod
    def _set_values(item: QTreeWidgetItem, t: TraceSummary) -> None:
        """The raw values Qt sorts by (display role), and the trace the delegates paint from."""
        display = Qt.ItemDataRole.DisplayRole
        duration = t.duration_ms if t.duration_ms is not None else max(now_ms() - t.started_at, 0)
        item.setData(DURATION, display, duration)
        item.setData(TOKENS, display, t.tokens_in + t.tokens_out)
        item.setData(COST, display, t.cost_usd)
        item.setData(TIMELINE, display, t.started_at)
        item.setData(0, Role.TRACE, t)

    def _remove(self, tid: str) -> None:
        item = self.items.pop(tid, None)
        self._signatures.pop(tid, None)
        self._hidden.discard(tid)
        if item is None:
            return
        stack = [item.child(i) for i in range(item.childCount())]
        while stack:  # the subtree goes with its root
            child = stack.pop()
            child_id = child.data(0, Role.TRACE).trace_id
            self.items.pop(child_id, None)
            self._signatures.pop(child_id, None)
            self._hidden.discard(child_id)
            stack.extend(child.child(i) for i in range(child.childCount()))
        parent = item.parent()
        if parent is not None:
            parent.removeChild(item)
        else:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))

    def _expand(self, remembered: set[str] | None) -> None:
        if remembered:
            for tid in remembered:
                if tid in self.items:
                    self.items[tid].setExpanded(True)
            return
        if len(self.items) <= EXPAND_ALL_ROWS:
            self.expandAll()
        else:  # a large view opens one level deep; expanding thousands of rows costs more than it shows
            for i in range(self.topLevelItemCount()):
                self.topLevelItem(i).setExpanded(True)

    def _expand_new(self, top: list[QTreeWidgetItem], children: dict[str, list[QTreeWidgetItem]]) -> None:
        """Rows that arrive in a merge open as a first fill would have opened them: a new session one level
        deep (or whole, in a small tree), and a running call always, so that what runs now is in sight."""
        small = len(self.items) <= EXPAND_ALL_ROWS
        for item in [*top, *(c for cs in children.values() for c in cs)]:
            if small or item.parent() is None:
                item.setExpanded(True)
            elif item.data(0, Role.TRACE).status == "running":
                up: QTreeWidgetItem | None = item
                while up is not None and not up.isExpanded():  # the chain down to it opens too
                    up.setExpanded(True)
                    up = up.parent()

    # -- reading ---------------------------------------------------------------------------------------

    def visible_roots(self) -> list[QTreeWidgetItem]:
        """The session rows the current filter shows."""
        return [self.topLevelItem(i) for i in range(self.topLevelItemCount()) if not self.topLevelItem(i).isHidden()]

    def shown_count(self) -> int:
        return len(self.items) - len(self._hidden)

    def current_trace_id(self) -> str | None:
        item = self.currentItem()
        return item.data(0, Role.TRACE).trace_id if item is not None else None

    def select_trace(self, trace_id: str) -> bool:
        item = self.items.get(trace_id)
        if item is None:
            return False
        self.setCurrentItem(item)
        self.scrollToItem(item)
        return True

    def expanded_ids(self) -> set[str]:
        return {tid for tid, item in self.items.items() if item.isExpanded()}

    def _on_current(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if current is not None:
            self.traceSelected.emit(current.data(0, Role.TRACE).trace_id)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self.traceActivated.emit(self.current_trace_id())
            return
        super().keyPressEvent(event)

    def _tick(self) -> None:
        """Running durations and bars grow: repaint the figures and the timeline once a second."""
        self.viewport().update()

    def stop(self) -> None:
        self.ticker.stop()
