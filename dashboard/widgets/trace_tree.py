"""The delegation tree: sessions at the top, delegations nested under the call that made them.

The tree fills and merges the trace rows (`trace_rows.py`): the trace id is the row's key, so a refresh
changes, adds and removes rows in place, and selection, expansion and scroll position survive. What it knows
of its rows beyond their data (dimmed, flagged, on the critical path, interrupted, each session's time scale)
is one `RowMarks` its delegates paint from; the steps of its rows (LLM and tool calls) come and go through its
`StepLoader`, on demand: the rows the tree opens itself show their delegations only, so the delegation tree
stays the outline, and a row the user opens shows its steps too (or every open row, with `set_all_steps`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from PyQt6.QtCore import QEvent, QModelIndex, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont, QKeyEvent, QPalette
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QStyledItemDelegate, QTreeWidget, QTreeWidgetItem

from analytics import format as fmt
from analytics.models import CLAUDE_CODE, RUNNING, AgentSpan
from analytics.queries.trace_queries import SUBAGENT_ALONE, TraceSummary
from analytics.timeline import now_ms
from dashboard.widgets import plain
from dashboard.widgets.palette import DIM
from dashboard.widgets.roles import Role, step_of, trace_of
from dashboard.widgets.row_marks import RowMarks
from dashboard.widgets.step_loader import StepLoader
from dashboard.widgets.timeline_delegate import TimelineDelegate, bar_tooltip
from dashboard.widgets.trace_rows import (
    AGENT,
    COLUMNS,
    COST,
    DESCRIPTION,
    DURATION,
    STATUS,
    TIMELINE,
    TOKENS,
    ChildItem,
    insert_in_time,
    set_status,
)

EXPAND_ALL_ROWS = 2000  # a larger tree opens one level deep: expanding thousands of rows costs more than it shows
DESCRIPTION_WIDTH = 360  # at most, when the columns are sized to their content
TIMELINE_WIDTH = 160  # at least, for the waterfall: the description gives way first (down to DESCRIPTION_MIN)
DESCRIPTION_MIN = 120


class FigureDelegate(QStyledItemDelegate):
    """Shows the raw values of the Duration, Tokens and Cost columns as readable figures, and gives the
    other columns their tooltips (computed on demand from the row, not stored on every item)."""

    def __init__(self, tree: TraceTree) -> None:
        super().__init__(tree)
        self.tree = tree

    def initStyleOption(self, option, index: QModelIndex) -> None:  # noqa: N802 (Qt's name)
        super().initStyleOption(option, index)
        t = trace_of(index) or step_of(index)
        if t is None:
            return
        marks = self.tree.marks
        if t.trace_id in marks.dimmed:  # outside the filter (a step row: its trace): greyed
            option.palette.setBrush(QPalette.ColorRole.Text, DIM)
        column = index.column()
        if column not in (DURATION, TOKENS, COST):
            return
        if column == DURATION:
            option.text = duration_text(t, marks, now_ms())
        elif getattr(t, "kind", None) == "tool":
            option.text = ""  # a tool call spends no tokens of its own: its LLM call does
        elif column == TOKENS:
            option.text = f"{fmt.tokens(t.tokens_in)} / {fmt.tokens(t.tokens_out)}"
        elif isinstance(t, AgentSpan):
            option.text = fmt.step_cost(t.cost_usd)
        else:
            option.text = fmt.cost(t.cost_usd, t.unpriced_calls, short=True)
        option.displayAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

    def helpEvent(self, event, view, option, index: QModelIndex) -> bool:  # noqa: N802
        t = trace_of(index) if index.isValid() else None
        step = step_of(index) if index.isValid() and t is None else None
        if event is None or event.type() != QEvent.Type.ToolTip or (t is None and step is None):
            return super().helpEvent(event, view, option, index)
        marks = self.tree.marks
        if step is not None:
            if index.column() in (AGENT, DESCRIPTION) and step.kind == "tool":
                text = f"{step.name}: {step.title or ''}\n{step.input or ''}"
            else:
                text = bar_tooltip(step, marks, now_ms())
            plain.show_tooltip(event.globalPos(), text, view)
            return True
        if index.column() == AGENT:
            lines = [" › ".join(filter(None, (t.parent_agent, t.subagent_type)))]
            if t.source == CLAUDE_CODE and t.kind == "delegation":
                lines.append(SUBAGENT_ALONE)
            if t.trace_id in marks.flags:
                lines.append("⚠ " + marks.flags[t.trace_id])
            if t.trace_id in marks.critical:
                lines.append("On the critical path: this call decided when its session ended.")
            text = "\n".join(lines)
        elif index.column() == COST and t.unpriced_calls:
            text = f"{fmt.cost(t.cost_usd, t.unpriced_calls)}\n{fmt.unpriced_note(t.unpriced_calls)}"
        elif index.column() == DESCRIPTION:
            text = t.input_preview or t.description or ""
            counts = self.tree.steps.counts.get(t.trace_id)
            text = f"{text}\n\n{fmt.steps_text(*counts)}" if counts else text
        else:
            text = bar_tooltip(t, marks, now_ms())
        plain.show_tooltip(event.globalPos(), text, view)
        return True


def duration_text(t: TraceSummary | AgentSpan, marks: RowMarks, now: int) -> str:
    """What the Duration column shows: the call's duration, how long it has run ("12.4 s…"), or, when OpenCode
    still says running but nothing was written since, "interrupted after 1m 01s"."""
    if t.status != RUNNING:
        return fmt.duration(t.duration_ms)
    ran = fmt.duration(marks.running_for(t, now))
    return f"interrupted after {ran}" if marks.stopped(t) is not None else f"{ran}…"


_DIGITS = str.maketrans("123456789", "000000000")  # figures are as wide as each other: one measure per shape


class TraceTree(QTreeWidget):
    """QTreeWidget of traces keyed by trace id.

    Signals:
        traceSelected(str): the current row changed to this trace.
        traceActivated(str): the row was double-clicked or Enter was pressed on it (on a step row: its trace).
        stepSelected(object): the current row changed to this step (an AgentSpan).
        stepsWanted(list): these traces' rows want their steps, which are not shown yet: read them and hand
            them to `show_steps`.
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
        self.marks = RowMarks()
        self.items: dict[str, QTreeWidgetItem] = {}
        self.steps = StepLoader(self, self.marks)
        self.steps.wanted.connect(self.stepsWanted)
        self._figures = FigureDelegate(self)
        self.setItemDelegate(self._figures)
        self._timeline = TimelineDelegate(self, self.marks)
        self.setItemDelegateForColumn(TIMELINE, self._timeline)
        header = self.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((AGENT, 165), (DESCRIPTION, 190), (DURATION, 78), (TOKENS, 104), (COST, 58),
                              (STATUS, 100)):
            self.setColumnWidth(column, width)
        self._sized = False  # the columns were sized to their content (at the first fill)
        self._sizing = False
        self._user_sized: set[int] = set()  # columns the user resized since: rows coming in no longer widen them
        header.sectionResized.connect(self._resized)
        self._signatures: dict[str, tuple] = {}  # per row, what it shows: a merge skips the unchanged
        self._hidden: set[str] = set()  # rows the current filter leaves out
        self._bold = QFont(self.font())
        self._bold.setBold(True)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._tick)
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
        end there. A trace whose data changed loses its step rows; they are read again if it shows them.
        Returns the ids of rows added or changed.
        """
        if steps is not None:
            self.steps.set_counts(steps)
        marks = self.marks
        marks.set(traces, hits, narrowed, flags or {}, critical or set(), interrupted or {})
        counts = self.steps.counts
        self.setUpdatesEnabled(False)
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)
        blocked = self.blockSignals(True)
        touched: set[str] = set()
        relabelled: list[QTreeWidgetItem] = []  # rows new or relabelled, whose agent may be wider (a ⚠)
        running: list[QTreeWidgetItem] = []  # changed rows still running ("interrupted after 12m 05s" is wide)
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
                signature = (t.status, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd, t.unpriced_calls,
                             t.description,
                             t.parent_trace_id, marks.bounds[t.root_session_id], *marks.of(t.trace_id),
                             counts.get(t.trace_id))
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
                    relabelled.append(item)
                else:
                    if self._update_item(item, t):
                        relabelled.append(item)
                    self.steps.trace_changed(item, t)
                if t.status == RUNNING:
                    running.append(item)
                touched.add(t.trace_id)
                self._set_indicator(item, t.trace_id)
            for parent_id, children in new_children.items():
                if self.steps.shows(parent_id):  # among step rows: in time order
                    insert_in_time(self.items[parent_id], children)
                else:
                    self.items[parent_id].addChildren(children)
            if new_top:
                self._insert_roots(new_top)
            if rebuild:
                self._expand(expanded)
            else:
                self._expand_new(new_top, new_children)
        finally:
            self.blockSignals(blocked)
            self.setSortingEnabled(sorting)
            self.setUpdatesEnabled(True)
        if marks.running:
            self.ticker.start()
        else:
            self.ticker.stop()
        if rebuild and current and current in self.items:
            self.setCurrentItem(self.items[current])
        if rebuild and self.items and not self._sized:
            self.size_columns()
        elif self._sized:  # a text grown since the first fill is not cut
            self.fit_columns([item for item in relabelled if not item.isHidden()], AGENT)
            self.fit_columns([item for item in running if not item.isHidden()], DURATION)
        return touched

    def clear_rows(self) -> None:
        """Empty the tree and forget every row."""
        self.clear()
        self.items, self._signatures, self._hidden = {}, {}, set()
        self.steps.clear()

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

    def _new_item(self, t: TraceSummary) -> QTreeWidgetItem:
        kind = QTreeWidgetItem if t.kind == "session" else ChildItem
        item = kind([self._label(t), t.description or ""])
        self._set_values(item, t)
        set_status(item, t.status)
        if t.status != "completed":
            item.setFont(STATUS, self._bold)
        if t.kind == "session":
            item.setFont(AGENT, self._bold)
        return item

    def _update_item(self, item: QTreeWidgetItem, t: TraceSummary) -> bool:
        """Set only what changed: a filter change mostly toggles dimming, which the delegates paint. Whether the
        agent's label changed."""
        old = item.data(0, Role.TRACE)
        label = self._label(t)
        relabelled = item.text(AGENT) != label
        if relabelled:
            item.setText(AGENT, label)
        if old.description != t.description:
            item.setText(DESCRIPTION, t.description or "")
        if old.status != t.status:
            set_status(item, t.status)
            item.setFont(STATUS, self._bold if t.status != "completed" else self.font())
        if (old.duration_ms, old.ended_at, old.tokens_in, old.tokens_out, old.cost_usd, old.unpriced_calls) != (
                t.duration_ms, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd, t.unpriced_calls) \
                or t.status == "running":
            self._set_values(item, t)
        else:
            item.setData(0, Role.TRACE, t)
        return relabelled

    def _label(self, t: TraceSummary) -> str:
        """A delegation's agent; a session's agent and which agent's history it is: "main  (Claude Code session)"."""
        label = t.subagent_type if t.kind == "delegation" else \
            f"{t.subagent_type}  ({fmt.source_label(t.source)} session)"
        return f"{label}  ⚠" if t.trace_id in self.marks.flags else label

    def _set_values(self, item: QTreeWidgetItem, t: TraceSummary) -> None:
        """The raw values Qt sorts by (display role), and the trace the delegates paint from."""
        display = Qt.ItemDataRole.DisplayRole
        duration = t.duration_ms if t.duration_ms is not None else self.marks.running_for(t, now_ms())
        item.setData(DURATION, display, duration)
        item.setData(TOKENS, display, t.tokens_in + t.tokens_out)
        item.setData(COST, display, t.cost_usd)
        item.setData(TIMELINE, display, t.started_at)
        item.setData(0, Role.TRACE, t)

    def _set_indicator(self, item: QTreeWidgetItem, tid: str) -> None:
        """A row with steps can be opened even when it made no delegation."""
        policy = (QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator if tid in self.steps.counts
                  else QTreeWidgetItem.ChildIndicatorPolicy.DontShowIndicatorWhenChildless)
        if item.childIndicatorPolicy() != policy:
            item.setChildIndicatorPolicy(policy)

    def _remove(self, tid: str) -> None:
        item = self.items.pop(tid, None)
        self._signatures.pop(tid, None)
        self._hidden.discard(tid)
        self.steps.forget(tid)
        if item is None:
            return
        stack = [item.child(i) for i in range(item.childCount())]
        while stack:  # the subtree goes with its root
            child = stack.pop()
            if child.data(0, Role.TRACE) is None:
                continue  # a step row: goes with its trace
            child_id = child.data(0, Role.TRACE).trace_id
            self.steps.forget(child_id)
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
                if item.childCount() or tid not in self.steps.counts:
                    item.setExpanded(True)
        else:  # a large view opens one level deep; expanding thousands of rows costs more than it shows
            for i in range(self.topLevelItemCount()):
                self.topLevelItem(i).setExpanded(True)

    def _expand_new(self, top: list[QTreeWidgetItem], children: dict[str, list[QTreeWidgetItem]]) -> None:
        """Rows that arrive in a merge open as a first fill would have opened them: a new session one level
        deep (or whole, in a small tree), and a running call always, so that what runs now is in sight."""
        small = len(self.items) <= EXPAND_ALL_ROWS
        for item in [*top, *(c for cs in children.values() for c in cs)]:
            only_steps = not item.childCount() and item.data(0, Role.TRACE).trace_id in self.steps.counts
            if small and not only_steps or item.parent() is None:
                item.setExpanded(True)
            elif item.data(0, Role.TRACE).status == "running":
                up: QTreeWidgetItem | None = item
                while up is not None and not up.isExpanded():  # the chain down to it opens too
                    up.setExpanded(True)
                    up = up.parent()

    # -- columns ---------------------------------------------------------------------------------------

    def size_columns(self) -> None:
        """Each column as wide as what it shows, or wider if it was (the description at most
        DESCRIPTION_WIDTH): at the first fill, so no label is cut."""
        self._sized = True
        restored = self.columnWidth(DESCRIPTION)  # the default, or the user's width of an earlier run
        for column in (AGENT, DESCRIPTION, DURATION, TOKENS, COST, STATUS):
            wide = self.sizeHintForColumn(column)
            self._set_width(column, max(self.columnWidth(column),
                                        min(wide, DESCRIPTION_WIDTH) if column == DESCRIPTION else wide))
        # the waterfall stays in view: what the other columns take beyond the viewport comes off what the
        # description was just widened by (never below the width it had, the user's own included)
        over = sum(self.columnWidth(c) for c in range(TIMELINE)) + TIMELINE_WIDTH - self.viewport().width()
        if over > 0:
            self._set_width(DESCRIPTION, max(restored, DESCRIPTION_MIN, self.columnWidth(DESCRIPTION) - over))
        self._user_sized.clear()

    def fit_columns(self, rows: list[QTreeWidgetItem], column: int = AGENT) -> None:
        """Widen the Agent or Duration column to these rows (step rows that came in, rows whose text grew), unless
        the user has sized it since the first fill. Only these rows are measured (`sizeHintForColumn` measures
        one: the delegate's width, and the row's indentation in the first column), and each shape of text once:
        an agent's label per depth, a duration with its figures as zeros (a load's batch brings a thousand rows
        of a few shapes)."""
        if column in self._user_sized or not rows:
            return
        indentation, decorated = self.indentation(), int(self.rootIsDecorated())
        now = now_ms()
        wide, seen = 0, set()
        for row in rows:
            if column == AGENT:
                level, up = 0, row.parent()
                while up is not None:
                    level, up = level + 1, up.parent()
                shape: tuple = (row.text(AGENT), level, row.font(AGENT).bold())
                indent = (level + decorated) * indentation
            else:  # Duration
                call = row.data(0, Role.TRACE) or row.data(0, Role.STEP)
                shape, indent = (duration_text(call, self.marks, now).translate(_DIGITS),), 0
            if shape not in seen:
                seen.add(shape)
                wide = max(wide, self.sizeHintForIndex(self.indexFromItem(row, column)).width() + indent)
        if wide > self.columnWidth(column):
            self._set_width(column, wide)

    def _set_width(self, column: int, width: int) -> None:
        self._sizing = True
        try:
            self.setColumnWidth(column, width)
        finally:
            self._sizing = False

    def _resized(self, column: int, _old: int, _new: int) -> None:
        if not self._sizing:
            self._user_sized.add(column)

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
        return self.steps.rows(trace_id)

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

    # -- the context menu ------------------------------------------------------------------------------

    def row_actions(self, item: QTreeWidgetItem | None) -> list[tuple[str, Callable[[], None]]]:
        """The context menu of a row: its steps, if it has some it does not show, then the compare entries."""
        t = item.data(0, Role.TRACE) if item is not None else None
        out: list[tuple[str, Callable[[], None]]] = []
        if t is not None and t.trace_id in self.steps.counts and not self.steps.shows(t.trace_id):
            tid = t.trace_id
            out.append(("Show its steps", lambda: self.steps.open(tid)))
        return out + self.compare_actions(item)

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
        actions = self.row_actions(self.itemAt(pos))
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

    def show_steps(self, trace_id: str, spans: list[AgentSpan]) -> None:
        """Show a trace's steps under its row (what a `stepsWanted` asked for)."""
        self.steps.show(trace_id, spans)
        self.fit_columns(self.steps.rows(trace_id))

    def steps_failed(self, trace_ids: list[str]) -> None:
        """The steps of these traces could not be read: asked for again at the next opening or refresh."""
        self.steps.failed(trace_ids)

    def retry_steps(self) -> None:
        """Ask again for the steps of the open rows in view that want theirs and have none (after a refresh)."""
        self.steps.retry()

    def set_all_steps(self, on: bool) -> None:
        """Every open row shows its steps (`on`), or only the rows the user opened."""
        self.steps.set_all(on)

    def expandAll(self) -> None:  # noqa: N802 (Qt's name)
        super().expandAll()  # which tells no itemExpanded
        self.steps.look()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self.steps.look()

    def _tick(self) -> None:
        """Running durations and bars grow: repaint the figures and the timeline once a second (the Duration
        column widened if "59 s…" became "1 min 0 s…")."""
        if self._sized:
            items = self.items
            self.fit_columns([items[tid] for tid in self.marks.live if tid in items and not items[tid].isHidden()],
                             DURATION)
        self.viewport().update()

    def stop(self) -> None:
        self.ticker.stop()
        self.steps.stop()
