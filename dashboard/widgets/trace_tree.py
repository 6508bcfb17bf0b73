"""The delegation tree: sessions at the top, delegations nested under the call that made them.

Rows carry raw values (milliseconds, token counts, dollars) in the display role, so Qt sorts them as numbers
in C++; `FigureDelegate` formats them for the eye. The trace id is the row's key: a refresh changes, adds and
removes rows in place, so selection, expansion and scroll position survive.
"""

from __future__ import annotations

from PyQt6.QtCore import QModelIndex, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QKeyEvent
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QStyledItemDelegate, QTreeWidget, QTreeWidgetItem

from analytics import format as fmt
from analytics.queries.trace_queries import TraceSummary
from dashboard.widgets.roles import Role
from dashboard.widgets.timeline_delegate import STATUS_COLOURS, TimelineDelegate, now_ms

COLUMNS = ("Agent", "Description", "Duration", "Tokens in / out", "Cost", "Status", "Timeline")
AGENT, DESCRIPTION, DURATION, TOKENS, COST, STATUS, TIMELINE = range(len(COLUMNS))
STATUS_LABEL = {"completed": "✓ completed", "error": "✗ error", "running": "⟳ running"}
DIM = QBrush(QColor(128, 128, 128))
STATUS_BRUSH = {k: QBrush(v.darker(115)) for k, v in STATUS_COLOURS.items()}


class FigureDelegate(QStyledItemDelegate):
    """Shows the raw values of the Duration, Tokens and Cost columns as readable figures."""

    def initStyleOption(self, option, index: QModelIndex) -> None:  # noqa: N802 (Qt's name)
        super().initStyleOption(option, index)
        column, row = index.column(), index.siblingAtColumn(0)
        if column == DURATION:
            if row.data(Role.STATUS) == "running":
                option.text = f"{fmt.duration(now_ms() - row.data(Role.START))}…"
            else:
                option.text = fmt.duration(index.data(Qt.ItemDataRole.DisplayRole))
        elif column == TOKENS:
            option.text = f"{fmt.tokens(row.data(Role.TOKENS_IN))} / {fmt.tokens(row.data(Role.TOKENS_OUT))}"
        elif column == COST:
            option.text = fmt.cost(index.data(Qt.ItemDataRole.DisplayRole))
        option.displayAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


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
        self._figures = FigureDelegate(self)
        for c in (DURATION, TOKENS, COST):
            self.setItemDelegateForColumn(c, self._figures)
        self._timeline = TimelineDelegate(self)
        self.setItemDelegateForColumn(TIMELINE, self._timeline)
        header = self.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((AGENT, 190), (DESCRIPTION, 220), (DURATION, 95), (TOKENS, 110), (COST, 70),
                              (STATUS, 105)):
            self.setColumnWidth(column, width)
        self.items: dict[str, QTreeWidgetItem] = {}
        self._running = 0
        self._bold = QFont(self.font())
        self._bold.setBold(True)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
        self.currentItemChanged.connect(self._on_current)
        self.itemDoubleClicked.connect(lambda item, _c: self.traceActivated.emit(item.data(0, Role.TRACE_ID)))

    # -- filling -------------------------------------------------------------------------------------

    def show_traces(self, traces: list[TraceSummary], hits: set[str], narrowed: bool, rebuild: bool) -> None:
        """Show these traces: rebuilt from scratch when the query changed, merged in place otherwise."""
        roots = self._root_bounds(traces)
        self.setUpdatesEnabled(False)
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)
        blocked = self.blockSignals(True)
        try:
            current = self.current_trace_id()
            if rebuild:
                expanded = {tid for tid, item in self.items.items() if item.isExpanded()}
                self.clear()
                self.items = {}
            else:
                expanded = None
            wanted = {t.trace_id for t in traces}
            for tid in [tid for tid in self.items if tid not in wanted]:
                self._remove(tid)
            new_top: list[QTreeWidgetItem] = []
            for t in traces:  # parents come first: the query orders by depth
                item = self.items.get(t.trace_id)
                dim = narrowed and t.trace_id not in hits
                if item is None:
                    item = QTreeWidgetItem()
                    self._fill(item, t, roots[t.root_session_id], dim)
                    self.items[t.trace_id] = item
                    parent = self.items.get(t.parent_trace_id) if t.parent_trace_id else None
                    if parent is not None:
                        parent.addChild(item)
                    else:
                        new_top.append(item)
                elif item.data(0, Role.SIGNATURE) != _signature(t, roots[t.root_session_id], dim):
                    self._fill(item, t, roots[t.root_session_id], dim)
            if new_top:  # newest first, above the sessions already shown
                new_top.sort(key=lambda i: i.data(0, Role.START), reverse=True)
                self.insertTopLevelItems(0, new_top)
            if rebuild:
                self._expand(expanded)
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

    def _fill(self, item: QTreeWidgetItem, t: TraceSummary, root: tuple[int, int, bool], dim: bool) -> None:
        display = Qt.ItemDataRole.DisplayRole
        label = t.subagent_type if t.kind == "delegation" else f"{t.subagent_type}  (session)"
        item.setData(AGENT, display, label)
        item.setData(DESCRIPTION, display, t.description or "")
        duration = t.duration_ms if t.duration_ms is not None else max(now_ms() - t.started_at, 0)
        item.setData(DURATION, display, duration)
        item.setData(TOKENS, display, t.tokens_in + t.tokens_out)
        item.setData(COST, display, t.cost_usd)
        item.setData(STATUS, display, STATUS_LABEL.get(t.status, t.status))
        item.setData(TIMELINE, display, t.started_at)
        for role, value in ((Role.TRACE_ID, t.trace_id), (Role.KIND, t.kind), (Role.STATUS, t.status),
                            (Role.START, t.started_at), (Role.END, t.ended_at), (Role.ROOT_START, root[0]),
                            (Role.ROOT_END, root[1]), (Role.TREE_RUNNING, root[2]), (Role.TOKENS_IN, t.tokens_in),
                            (Role.TOKENS_OUT, t.tokens_out), (Role.COST, t.cost_usd), (Role.AGENT, t.subagent_type),
                            (Role.SIGNATURE, _signature(t, root, dim))):
            item.setData(0, role, value)
        item.setToolTip(AGENT, " › ".join(filter(None, (t.parent_agent, t.subagent_type))))
        item.setToolTip(DESCRIPTION, t.input_preview)
        brush = DIM if dim else None
        for column in range(len(COLUMNS)):
            item.setForeground(column, brush if brush is not None else QBrush())
        if not dim and t.status in STATUS_BRUSH:
            item.setForeground(STATUS, STATUS_BRUSH[t.status])
        item.setFont(STATUS, self._bold if t.status != "completed" else self.font())
        item.setFont(AGENT, self._bold if t.kind == "session" else self.font())

    def _remove(self, tid: str) -> None:
        item = self.items.pop(tid, None)
        if item is None:
            return
        stack = [item.child(i) for i in range(item.childCount())]
        while stack:  # the subtree goes with its root
            child = stack.pop()
            self.items.pop(child.data(0, Role.TRACE_ID), None)
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
        if len(self.items) <= 2000:
            self.expandAll()
        else:
            for i in range(self.topLevelItemCount()):
                self.topLevelItem(i).setExpanded(True)

    # -- reading ---------------------------------------------------------------------------------------

    def current_trace_id(self) -> str | None:
        item = self.currentItem()
        return item.data(0, Role.TRACE_ID) if item is not None else None

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
            self.traceSelected.emit(current.data(0, Role.TRACE_ID))

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


def _signature(t: TraceSummary, root: tuple[int, int, bool], dim: bool) -> tuple:
    return (t.status, t.ended_at, t.duration_ms, t.tokens_in, t.tokens_out, t.cost_usd, t.description,
            t.parent_trace_id, root, dim)
