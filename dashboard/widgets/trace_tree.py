"""The delegation tree: sessions at the top, delegations nested under the call that made them.

Rows carry raw values (milliseconds, token counts, dollars) in the display role, so Qt sorts them as numbers
in C++; `FigureDelegate` formats them for the eye. The trace id is the row's key: a refresh changes, adds and
removes rows in place, so selection, expansion and scroll position survive.

Step rows (the LLM calls of a trace, each with its tool calls under it) are read on demand: a trace row with
steps shows an expand indicator, and when it is expanded the tree asks for its steps
(`stepsWanted`) and shows them with `show_steps`, among its delegations in time order. Step rows are not traces:
they are not in `items`, carry their `AgentSpan` in `Role.STEP`, and are dropped and read again when their
trace changes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from PyQt6.QtCore import QEvent, QModelIndex, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QKeyEvent, QPalette
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QStyledItemDelegate,
    QTreeWidget,
    QTreeWidgetItem,
)

from analytics import format as fmt
from analytics.models import AgentSpan
from analytics.queries.trace_queries import TraceSummary
from dashboard.widgets import plain
from dashboard.widgets.roles import Role, step_of, trace_of
from dashboard.widgets.timeline_delegate import STATUS_COLOURS, TimelineDelegate, now_ms, running_duration

COLUMNS = ("Agent", "Description", "Duration", "Tokens in / out", "Cost", "Status", "Timeline")
AGENT, DESCRIPTION, DURATION, TOKENS, COST, STATUS, TIMELINE = range(len(COLUMNS))
STATUS_LABEL = {"completed": "✓ completed", "error": "✗ error", "running": "⟳ running"}
DIM = QBrush(QColor(128, 128, 128))
EXPAND_ALL_ROWS = 2000  # a larger tree opens one level deep: expanding thousands of rows costs more than it shows
STATUS_BRUSH = {k: QBrush(v.darker(115)) for k, v in STATUS_COLOURS.items()}
def steps_text(counts: tuple[int, int] | None) -> str:
    """ "14 LLM calls · 37 tool calls" (empty without steps)."""
    if not counts:
        return ""
    llm, tools = counts
    return f"{llm} LLM call{'s' * (llm != 1)} · {tools} tool call{'s' * (tools != 1)}"


def step_label(s: AgentSpan) -> tuple[str, str]:
    """A step row's first two columns: "LLM · model" and its provider, or the tool and its title or input."""
    if s.kind == "llm":
        return f"LLM · {s.name}", s.title or ""
    return s.name, s.title or fmt.tool_argument(s.input)


class ChildItem(QTreeWidgetItem):
    """A row under another row: a delegation or a step (an LLM call, or a tool call under its LLM call).

    Sorting by a column orders the delegations by it, as Qt orders the sessions; a trace's steps come after its
    delegations and stay in time order whichever column sorts them, either way: a trace's LLM calls are a
    sequence, each with its tool calls under it. (Session rows stay plain items, sorted in C++.)"""

    step_start: tuple[int, str] | None = None  # a step's (start, span id); None: a delegation

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        mine, theirs = self.step_start, getattr(other, "step_start", None)
        if mine is None and theirs is None:
            return QTreeWidgetItem.__lt__(self, other)  # two delegations: by the column's raw values, in C++
        tree = self.treeWidget()
        if tree is not None and tree.header().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder:
            mine, theirs = theirs, mine  # Qt sorts descending as `b < a`: steps keep time order all the same
        if mine is None or theirs is None:
            return mine is None  # delegations first
        return mine < theirs


class FigureDelegate(QStyledItemDelegate):
    """Shows the raw values of the Duration, Tokens and Cost columns as readable figures, and gives the
    other columns their tooltips (computed on demand from the row, not stored on every item)."""

    def initStyleOption(self, option, index: QModelIndex) -> None:  # noqa: N802 (Qt's name)
        super().initStyleOption(option, index)
        t = trace_of(index) or step_of(index)
        if t is None:
            return
        if t.trace_id in self.tree.dimmed:  # outside the filter (a step row: its trace): greyed
            option.palette.setBrush(QPalette.ColorRole.Text, DIM)
        column = index.column()
        if column not in (DURATION, TOKENS, COST):
            return
        if column == DURATION:
            stopped = self.tree.interrupted.get(t.trace_id)
            if t.status != "running":
                option.text = fmt.duration(t.duration_ms)
            elif stopped is not None:  # OpenCode still says running, but nothing was written since
                option.text = f"interrupted after {fmt.duration(running_duration(t, 0, stopped))}"
            else:
                option.text = f"{fmt.duration(now_ms() - t.started_at)}…"
        elif getattr(t, "kind", None) == "tool":
            option.text = ""  # a tool call spends no tokens of its own: its LLM call does
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
        step = step_of(index) if index.isValid() and t is None else None
        if event is None or event.type() != QEvent.Type.ToolTip or (t is None and step is None):
            return super().helpEvent(event, view, option, index)
        if step is not None:
            if index.column() in (AGENT, DESCRIPTION) and step.kind == "tool":
                text = f"{step.name}: {step.title or ''}\n{step.input or ''}"
            else:
                text = TimelineDelegate.tooltip(step, self.tree.roots[step.root_session_id], now_ms(),
                                                self.tree.interrupted.get(step.trace_id))
            plain.show_tooltip(event.globalPos(), text, view)
            return True
        if index.column() == AGENT:
            lines = [" › ".join(filter(None, (t.parent_agent, t.subagent_type)))]
            if t.trace_id in self.tree.flags:
                lines.append("⚠ " + self.tree.flags[t.trace_id])
            if t.trace_id in self.tree.critical:
                lines.append("On the critical path: this call decided when its session ended.")
            text = "\n".join(lines)
        elif index.column() == DESCRIPTION:
            text = t.input_preview or t.description or ""
            counts = steps_text(self.tree.step_counts.get(t.trace_id))
            text = f"{text}\n\n{counts}" if counts else text
        else:
            text = TimelineDelegate.tooltip(t, self.tree.roots[t.root_session_id], now_ms(),
                                            self.tree.interrupted.get(t.trace_id))
        plain.show_tooltip(event.globalPos(), text, view)
        return True


class TraceTree(QTreeWidget):
    """QTreeWidget of traces keyed by trace id.

    Signals:
        traceSelected(str): the current row changed to this trace.
        traceActivated(str): the row was double-clicked or Enter was pressed on it (on a step row: its trace).
        stepSelected(object): the current row changed to this step (an AgentSpan).
        stepsWanted(list): these traces are expanded in view and their steps are not shown yet: read them
            and hand them to `show_steps`.
        compareRequested(str, str): compare these two traces (left, right): two rows selected and *Compare*,
            or *Compare with…* on one row and then on another (the context menu).
        compareMarked(str): *Compare with…* chose this trace as the left side; the next one picked is the right.
    """

    traceSelected = pyqtSignal(str)
    traceActivated = pyqtSignal(str)
    stepSelected = pyqtSignal(object)
    stepsWanted = pyqtSignal(list)
    compareRequested = pyqtSignal(str, str)
    compareMarked = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        # Ctrl-click selects a second row to compare with; the current row still drives the detail pane
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.compare_base: str | None = None  # the row *Compare with…* was chosen on
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(False)
        # Unsorted until the user clicks a header: newest sessions first, each one's calls in time order.
        self.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self.dimmed: set[str] = set()  # rows shown for context that do not match the filter (greyed)
        self.flags: dict[str, str] = {}  # anomalous rows: the reason
        self.critical: set[str] = set()  # rows on their session's critical path
        self.roots: dict[str, tuple[int, int, bool]] = {}  # per session: start, latest end, anything running
        # interrupted calls (still `running` in OpenCode, their session silent): trace id -> the last write
        self.interrupted: dict[str, int] = {}
        self._figures = FigureDelegate(self)
        self.setItemDelegate(self._figures)
        self._timeline = TimelineDelegate(self, lambda t: self.roots[t.root_session_id], self.dimmed,
                                          self.critical, self.interrupted)
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
        self.step_counts: dict[str, tuple[int, int]] = {}  # per trace with steps: (LLM calls, tool calls)
        self._steps_of: dict[str, tuple] = {}  # traces whose step rows are shown: the trace data they are of
        self._steps_pending: set[str] = set()  # asked for, not here yet
        self._steps_queued: set[str] = set()  # to ask for at the next check
        # rows the user opened; rows the tree opened itself show their LLM calls with the tools folded, so the
        # delegations stay the outline of what is on screen
        self._opened: set[str] = set()
        self._reselect: dict[str, str] = {}  # a selected step whose rows were dropped: trace id -> span id
        self._want = QTimer(self)  # one request for the rows expanded in one go
        self._want.setSingleShot(True)
        self._want.setInterval(0)
        self._want.timeout.connect(self._want_steps)
        self.itemExpanded.connect(self._on_expanded)
        self._in_view = QTimer(self)  # rows opened by the tree itself get their steps once they are in view
        self._in_view.setSingleShot(True)
        self._in_view.setInterval(50)
        self._in_view.timeout.connect(self._want_in_view)
        self.verticalScrollBar().valueChanged.connect(lambda _v: self._in_view.start())
        self.expanded.connect(lambda _index: self._in_view.start())
        self.currentItemChanged.connect(self._on_current)
        self.itemDoubleClicked.connect(lambda item, _c: self.traceActivated.emit(self._owner_id(item)))

    # -- filling -------------------------------------------------------------------------------------

    def show_traces(self, traces: list[TraceSummary], hits: set[str], narrowed: bool, rebuild: bool,
                    prune: bool = True, flags: dict[str, str] | None = None,
                    critical: set[str] | None = None,
                    steps: dict[str, tuple[int, int]] | None = None,
                    interrupted: dict[str, int] | None = None) -> set[str]:
        """Show these traces, merged in place (or rebuilt from scratch with `rebuild`).

        Rows missing from `traces` are removed when `prune` (the data is gone), hidden otherwise (a filter
        left them out: they come back without being rebuilt). `steps` gives the step counts per trace (None:
        as before). `interrupted` gives, per interrupted call, its session's last write: its bar and duration
        end there. A trace whose data changed loses its step rows; they are read again if it is expanded.
        Returns the ids of rows added or changed.
        """
        if steps is not None:
            self.step_counts = steps
            self._in_view.start()
        self.interrupted.clear()
        self.interrupted.update(interrupted or {})
        roots = self.roots = self._root_bounds(traces, self.interrupted)
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
                             t.parent_trace_id, root, dim, t.trace_id in self.flags, t.trace_id in self.critical,
                             self.step_counts.get(t.trace_id), self.interrupted.get(t.trace_id))
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
                    if t.trace_id in self._steps_of and self._steps_of[t.trace_id] != self._step_key(t):
                        self._drop_steps(item, t.trace_id)
                    touched.add(t.trace_id)
                self._set_indicator(item, t.trace_id)
            for parent_id, children in new_children.items():
                if parent_id in self._steps_of:  # among step rows: in time order
                    self._insert_in_time(self.items[parent_id], children)
                else:
                    self.items[parent_id].addChildren(children)
            if new_top:
                self._insert_roots(new_top)
            if rebuild:
                self._expand(expanded)
            else:
                self._expand_new(new_top, new_children)
            self._running = sum(1 for t in traces if t.status == "running" and t.trace_id not in self.interrupted)
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
        self._steps_of, self._steps_pending, self._steps_queued, self._reselect = {}, set(), set(), {}

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
    def _root_bounds(traces: list[TraceSummary], interrupted: dict[str, int]) -> dict[str, tuple[int, int, bool]]:
        """Per root session: its start, the latest end in its tree, and whether anything still runs (an
        interrupted call does not: it ends at its session's last write)."""
        bounds: dict[str, list] = {}
        for t in traces:
            b = bounds.setdefault(t.root_session_id, [t.started_at, t.started_at, False])
            stopped = interrupted.get(t.trace_id) if t.status == "running" else None
            b[0] = min(b[0], t.started_at)
            b[1] = max(b[1], t.ended_at or stopped or t.started_at)
            b[2] = b[2] or t.status == "running" and stopped is None
        return {k: (v[0], v[1], v[2]) for k, v in bounds.items()}

    def _new_item(self, t: TraceSummary) -> QTreeWidgetItem:
        kind = QTreeWidgetItem if t.kind == "session" else ChildItem
        item = kind([self._label(t), t.description or "", "", "", "", STATUS_LABEL.get(t.status, t.status)])
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
                t.duration_ms, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd) or t.status == "running":
            self._set_values(item, t)
        else:
            item.setData(0, Role.TRACE, t)

    def _label(self, t: TraceSummary) -> str:
        label = t.subagent_type if t.kind == "delegation" else f"{t.subagent_type}  (session)"
        return f"{label}  ⚠" if t.trace_id in self.flags else label

    def _set_values(self, item: QTreeWidgetItem, t: TraceSummary) -> None:
        """The raw values Qt sorts by (display role), and the trace the delegates paint from."""
        display = Qt.ItemDataRole.DisplayRole
        duration = t.duration_ms if t.duration_ms is not None else running_duration(
            t, now_ms(), self.interrupted.get(t.trace_id))
        item.setData(DURATION, display, duration)
        item.setData(TOKENS, display, t.tokens_in + t.tokens_out)
        item.setData(COST, display, t.cost_usd)
        item.setData(TIMELINE, display, t.started_at)
        item.setData(0, Role.TRACE, t)

    def _remove(self, tid: str) -> None:
        item = self.items.pop(tid, None)
        self._signatures.pop(tid, None)
        self._hidden.discard(tid)
        self._forget_steps(tid)
        if item is None:
            return
        stack = [item.child(i) for i in range(item.childCount())]
        while stack:  # the subtree goes with its root
            child = stack.pop()
            if child.data(0, Role.TRACE) is None:
                continue  # a step row: goes with its trace
            child_id = child.data(0, Role.TRACE).trace_id
            self._forget_steps(child_id)
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
        if len(self.items) <= EXPAND_ALL_ROWS:  # every row, but not one with only steps under it: read on demand
            for tid, item in self.items.items():
                if item.childCount() or tid not in self.step_counts:
                    item.setExpanded(True)
        else:  # a large view opens one level deep; expanding thousands of rows costs more than it shows
            for i in range(self.topLevelItemCount()):
                self.topLevelItem(i).setExpanded(True)

    def _expand_new(self, top: list[QTreeWidgetItem], children: dict[str, list[QTreeWidgetItem]]) -> None:
        """Rows that arrive in a merge open as a first fill would have opened them: a new session one level
        deep (or whole, in a small tree), and a running call always, so that what runs now is in sight."""
        small = len(self.items) <= EXPAND_ALL_ROWS
        for item in [*top, *(c for cs in children.values() for c in cs)]:
            only_steps = not item.childCount() and item.data(0, Role.TRACE).trace_id in self.step_counts
            if small and not only_steps or item.parent() is None:
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

    @staticmethod
    def trace_children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
        """The delegation rows under a row, in order (its step rows left out)."""
        return [c for c in (item.child(i) for i in range(item.childCount())) if c.data(0, Role.TRACE) is not None]

    def shown_count(self) -> int:
        return len(self.items) - len(self._hidden)

    def current_trace_id(self) -> str | None:
        """The current row's trace id; on a step row, the id of the trace it belongs to."""
        item = self.currentItem()
        return self._owner_id(item) if item is not None else None

    def current_span(self) -> AgentSpan | None:
        """The current row's step, if a step row is current."""
        item = self.currentItem()
        return item.data(0, Role.STEP) if item is not None else None

    def step_rows(self, trace_id: str) -> list[QTreeWidgetItem]:
        """The step rows under a trace (LLM calls, each followed by its tool calls), in tree order."""
        item = self.items.get(trace_id)
        out: list[QTreeWidgetItem] = []
        for i in range(item.childCount() if item is not None else 0):
            child = item.child(i)
            if child.data(0, Role.STEP) is not None:
                out.append(child)
                out.extend(child.child(j) for j in range(child.childCount()))
        return out

    @staticmethod
    def _owner_id(item: QTreeWidgetItem) -> str:
        t = item.data(0, Role.TRACE)
        return t.trace_id if t is not None else item.data(0, Role.STEP).trace_id

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
        if current is None:
            return
        t = current.data(0, Role.TRACE)
        if t is not None:
            self.traceSelected.emit(t.trace_id)
        else:
            self.stepSelected.emit(current.data(0, Role.STEP))

    def selected_trace_ids(self) -> list[str]:
        """The trace rows selected (step rows left out), the earliest first: compared, the earlier run is the
        left side (before) and the later the right (after)."""
        traces = [i.data(0, Role.TRACE) for i in self.selectedItems() if i.data(0, Role.TRACE) is not None]
        return [t.trace_id for t in sorted(traces, key=lambda t: (t.started_at, t.trace_id))]

    def compare_actions(self, item: QTreeWidgetItem | None) -> list[tuple[str, Callable[[], None]]]:
        """The context menu's compare entries for a row: the two selected, this row against the one
        *Compare with…* was chosen on, or this row as the one to compare."""
        out: list[tuple[str, Callable[[], None]]] = []
        selected = self.selected_trace_ids()
        if len(selected) == 2:
            out.append(("Compare the two selected", lambda: self.compareRequested.emit(*selected)))
        t = item.data(0, Role.TRACE) if item is not None else None
        if t is None:
            return out
        base = self.items.get(self.compare_base) if self.compare_base else None
        if base is not None and self.compare_base != t.trace_id:
            left = self.compare_base
            label = self._label(base.data(0, Role.TRACE)).replace("&", "&&")  # no & taken as a shortcut
            out.append((f"Compare with {label}",
                        lambda: self.compareRequested.emit(left, t.trace_id)))
        out.append(("Compare with…", lambda: self.mark_for_compare(t.trace_id)))
        return out

    def mark_for_compare(self, trace_id: str) -> None:
        """Remember the left side of a comparison; the context menu of another row then offers it."""
        self.compare_base = trace_id
        self.compareMarked.emit(trace_id)

    def _context_menu(self, pos) -> None:
        actions = self.compare_actions(self.itemAt(pos))
        if not actions:
            return
        menu = QMenu(self)
        for text, slot in actions:
            menu.addAction(text).triggered.connect(slot)  # text: an agent name, which QAction shows as is
        menu.popup(self.viewport().mapToGlobal(pos))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self.traceActivated.emit(self.current_trace_id())
            return
        super().keyPressEvent(event)

    # -- steps -----------------------------------------------------------------------------------------

    @staticmethod
    def _step_key(t: TraceSummary) -> tuple:
        """What a trace's steps depend on: when it changes, its step rows are read again."""
        return t.status, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd

    def _set_indicator(self, item: QTreeWidgetItem, tid: str) -> None:
        policy = (QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator if tid in self.step_counts
                  else QTreeWidgetItem.ChildIndicatorPolicy.DontShowIndicatorWhenChildless)
        if item.childIndicatorPolicy() != policy:
            item.setChildIndicatorPolicy(policy)

    def _on_expanded(self, item: QTreeWidgetItem) -> None:
        t = item.data(0, Role.TRACE)
        if t is not None and t.trace_id in self.step_counts and t.trace_id not in self._steps_of:
            self._opened.add(t.trace_id)
            self._steps_queued.add(t.trace_id)
            self._want.start()

    def _want_in_view(self) -> None:
        """The expanded trace rows on screen whose steps are not shown: a first fill, Expand all, a scroll.
        Only those in view are read, so opening thousands of rows reads the steps of a screenful."""
        viewport = self.viewport().rect()
        index = self.indexAt(viewport.topLeft())
        while index.isValid() and self.visualRect(index).top() <= viewport.bottom():
            item = self.itemFromIndex(index)
            t = item.data(0, Role.TRACE) if item is not None else None
            if t is not None and item.isExpanded() and t.trace_id in self.step_counts:
                self._steps_queued.add(t.trace_id)
            index = self.indexBelow(index)
        if self._steps_queued:
            self._want_steps()

    def expandAll(self) -> None:  # noqa: N802 (Qt's name)
        super().expandAll()  # which tells no itemExpanded
        self._in_view.start()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._in_view.start()

    def _want_steps(self) -> None:
        """Ask, in one request, for the steps of the trace rows just expanded (by the user, by the tree and now
        in view, or again after their trace changed) that are not shown yet."""
        wanted = self._steps_queued
        self._steps_queued = set()
        wanted = [tid for tid in wanted if tid in self.items and tid not in self._steps_of
                  and tid not in self._steps_pending]
        if wanted:
            self._steps_pending.update(wanted)
            self.stepsWanted.emit(wanted)

    def show_steps(self, trace_id: str, spans: list[AgentSpan]) -> None:
        """Show a trace's steps under its row: its LLM calls in time order among its delegations, each LLM
        call with its tool calls under it (as `get_spans` orders them)."""
        self._steps_pending.discard(trace_id)
        item = self.items.get(trace_id)
        if item is None:
            return
        self.setUpdatesEnabled(False)
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)
        try:
            self._drop_steps(item, trace_id)
            rows: list[QTreeWidgetItem] = []
            llm: dict[str, QTreeWidgetItem] = {}
            for s in spans:
                row = self._step_item(s)
                parent = llm.get(s.parent_span_id) if s.parent_span_id is not None else None
                if parent is not None:
                    parent.addChild(row)
                else:  # an LLM call, or a tool call whose LLM call was lost to damage
                    rows.append(row)
                    if s.kind == "llm":
                        llm[s.span_id] = row
            for row in llm.values():
                if row.childCount():
                    row.setText(DESCRIPTION, f"{row.childCount()} tool call{'s' * (row.childCount() != 1)}")
            rows.sort(key=lambda r: r.data(0, Role.STEP).started_at)
            self._insert_in_time(item, rows)
            if trace_id in self._opened:  # the user opened this row: show each call's tools too
                for row in llm.values():
                    if row.childCount():
                        row.setExpanded(True)
            self._steps_of[trace_id] = self._step_key(item.data(0, Role.TRACE))
        finally:
            self.setSortingEnabled(sorting)
            self.setUpdatesEnabled(True)
        span_id = self._reselect.pop(trace_id, None)
        if span_id is not None:
            again = next((r for r in self.step_rows(trace_id) if r.data(0, Role.STEP).span_id == span_id), None)
            if again is not None:
                self.setCurrentItem(again)

    def steps_failed(self, trace_ids: list[str]) -> None:
        """The steps of these traces could not be read (the store was held, say): no longer waited for, so
        they are asked for again when the row is opened again or at the next `retry_steps`."""
        self._steps_pending.difference_update(trace_ids)

    def retry_steps(self) -> None:
        """Ask again for the steps of the expanded rows in view that have none (after a refresh)."""
        self._in_view.start()

    def _step_item(self, s: AgentSpan) -> QTreeWidgetItem:
        agent, description = step_label(s)
        row = ChildItem([agent, description, "", "", "", STATUS_LABEL.get(s.status, s.status)])
        display = Qt.ItemDataRole.DisplayRole
        running = s.duration_ms is None and s.status == "running"
        row.setData(DURATION, display, running_duration(s, now_ms(), self.interrupted.get(s.trace_id)) if running
                    else (s.duration_ms or 0))
        row.setData(TOKENS, display, s.tokens_in + s.tokens_out)
        row.setData(COST, display, s.cost_usd)
        row.setData(TIMELINE, display, s.started_at)
        row.setData(0, Role.STEP, s)
        row.step_start = (s.started_at, s.span_id)
        if s.status in STATUS_BRUSH:
            row.setForeground(STATUS, STATUS_BRUSH[s.status])
        return row

    @staticmethod
    def _start_of(item: QTreeWidgetItem) -> int:
        row = item.data(0, Role.TRACE) or item.data(0, Role.STEP)
        return row.started_at

    def _insert_in_time(self, parent: QTreeWidgetItem, rows: list[QTreeWidgetItem]) -> None:
        """Insert rows (in time order) among the parent's children (in time order), each where it belongs."""
        starts = [self._start_of(parent.child(i)) for i in range(parent.childCount())]
        groups: dict[int, list[QTreeWidgetItem]] = {}
        for row in rows:
            groups.setdefault(bisect.bisect_right(starts, self._start_of(row)), []).append(row)
        for at in sorted(groups, reverse=True):  # from the end: the indices before stay valid
            parent.insertChildren(at, groups[at])

    def _drop_steps(self, item: QTreeWidgetItem, tid: str) -> None:
        """Remove a trace's step rows; they are read again if the row is expanded (a selected one comes back)."""
        if self._steps_of.pop(tid, None) is None:
            return
        current = self.currentItem()
        step = current.data(0, Role.STEP) if current is not None else None
        if step is not None and step.trace_id == tid:
            self._reselect[tid] = step.span_id
            blocked = self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(blocked)
        for i in reversed(range(item.childCount())):
            if item.child(i).data(0, Role.STEP) is not None:
                item.takeChild(i)
        if item.isExpanded():
            self._steps_queued.add(tid)
            self._want.start()

    def _forget_steps(self, tid: str) -> None:
        self._steps_of.pop(tid, None)
        self._steps_pending.discard(tid)
        self._steps_queued.discard(tid)
        self._reselect.pop(tid, None)

    def _tick(self) -> None:
        """Running durations and bars grow: repaint the figures and the timeline once a second."""
        self.viewport().update()

    def stop(self) -> None:
        self.ticker.stop()
        self._want.stop()
        self._in_view.stop()
