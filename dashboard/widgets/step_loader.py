"""The steps of the tree's rows (a trace's LLM calls, each with its tool calls under it): which rows show them,
asking for them, and putting them in.

Steps are read on demand, never for the whole history at once. A row with steps shows an expand indicator. When
the user opens a row, its steps are asked for (`wanted`) and put in by `show`, among its delegations in time
order, each LLM call with its tool calls open. The rows the tree opens itself (a first fill, Expand all, a
running call coming into view) show their delegations only, so the delegation tree stays the outline; with
`all_steps` on (the View menu's toggle) they show their steps too, once they are in view, each call's tools
folded. Step rows are not traces: they are not in the tree's `items`, and they are dropped and read again when
their trace changes. A read that failed is made again when the row is opened again or at the next `retry`.
"""

from __future__ import annotations

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QTreeWidget, QTreeWidgetItem

from analytics.models import LLM, RUNNING, AgentSpan
from analytics.queries.trace_queries import TraceSummary
from analytics.timeline import now_ms
from dashboard.widgets.roles import Role
from dashboard.widgets.row_marks import RowMarks
from dashboard.widgets.trace_rows import describe_llm, insert_in_time, step_item


def _key(t: TraceSummary) -> tuple:
    """What a trace's steps depend on: when it changes, its step rows are read again."""
    return t.status, t.ended_at, t.tokens_in, t.tokens_out, t.cost_usd


class StepLoader(QObject):
    """The step rows of a `TraceTree` (whose `items` are its trace rows by id).

    Signals:
        wanted(list): these traces' rows want their steps, which are not shown yet: read them and hand them
            to `show`.
    """

    wanted = pyqtSignal(list)

    def __init__(self, tree: QTreeWidget, marks: RowMarks) -> None:
        super().__init__(tree)
        self.tree, self.marks = tree, marks
        self.counts: dict[str, tuple[int, int]] = {}  # per trace with steps: (LLM calls, tool calls)
        self.all_steps = False  # the rows the tree opens itself show their steps too
        self._shown: dict[str, tuple] = {}  # traces whose step rows are shown: the trace data they are of
        self._pending: set[str] = set()  # asked for, not here yet
        self._queued: set[str] = set()  # to ask for at the next check
        self._opened: set[str] = set()  # rows the user opened
        self._reselect: dict[str, str] = {}  # a selected step whose rows were dropped: trace id -> span id
        self._want = QTimer(self)  # one request for the rows opened in one go
        self._want.setSingleShot(True)
        self._want.setInterval(0)
        self._want.timeout.connect(self._ask)
        self._in_view = QTimer(self)  # rows that want their steps are asked for once they are in view
        self._in_view.setSingleShot(True)
        self._in_view.setInterval(50)
        self._in_view.timeout.connect(self._want_in_view)
        tree.itemExpanded.connect(self._opened_by_user)  # (the tree opens rows with its signals blocked)
        tree.verticalScrollBar().valueChanged.connect(lambda _v: self.look())
        tree.expanded.connect(lambda _index: self.look())

    # -- which rows want their steps -------------------------------------------------------------------

    def set_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        self.counts = counts
        self.look()

    def shows(self, trace_id: str) -> bool:
        """Whether the trace's step rows are in the tree."""
        return trace_id in self._shown

    def set_all(self, on: bool) -> None:
        """Steps in every open row (`on`), or in the rows the user opened only: the others lose theirs."""
        self.all_steps = on
        if on:
            self.look()
            return
        for tid in [tid for tid in self._shown if tid not in self._opened]:
            item = self.tree.items.get(tid)
            if item is not None:
                self._drop(item, tid, again=False, reselect=False)

    def wants(self, trace_id: str) -> bool:
        """Whether an open row of this trace shows its steps: the user opened it, or every row does."""
        return trace_id in self.counts and (self.all_steps or trace_id in self._opened)

    def open(self, trace_id: str) -> None:
        """Show the steps of this row as if the user had opened it (the context menu's *Show steps*)."""
        item = self.tree.items.get(trace_id)
        if item is None or trace_id not in self.counts:
            return
        if item.isExpanded():
            self._opened_by_user(item)
        else:
            item.setExpanded(True)  # which tells `_opened_by_user`

    def look(self) -> None:
        """Check, in a moment, the open rows in view for steps they want and do not show."""
        self._in_view.start()

    def retry(self) -> None:
        """Ask again for the steps of the open rows in view that want theirs (after a refresh)."""
        self.look()

    def _opened_by_user(self, item: QTreeWidgetItem) -> None:
        t = item.data(0, Role.TRACE)
        if t is None or t.trace_id not in self.counts:
            return
        self._opened.add(t.trace_id)
        if t.trace_id in self._shown:  # shown already (every row shows its steps): now with their tools open
            for row in self._llm_rows(item):
                row.setExpanded(True)
            return
        self._queued.add(t.trace_id)
        self._want.start()

    def _want_in_view(self) -> None:
        """The open trace rows on screen that want their steps and do not show them: only those in view are
        read, so opening thousands of rows reads the steps of a screenful."""
        tree = self.tree
        viewport = tree.viewport().rect()
        index = tree.indexAt(viewport.topLeft())
        while index.isValid() and tree.visualRect(index).top() <= viewport.bottom():
            item = tree.itemFromIndex(index)
            t = item.data(0, Role.TRACE) if item is not None else None
            if t is not None and item.isExpanded() and self.wants(t.trace_id):
                self._queued.add(t.trace_id)
            index = tree.indexBelow(index)
        if self._queued:
            self._ask()

    def _ask(self) -> None:
        """Ask, in one request, for the steps of the rows queued that are not shown or asked for yet."""
        queued, self._queued = self._queued, set()
        wanted = [tid for tid in queued if tid in self.tree.items and tid not in self._shown
                  and tid not in self._pending]
        if wanted:
            self._pending.update(wanted)
            self.wanted.emit(wanted)

    # -- the step rows ---------------------------------------------------------------------------------

    def show(self, trace_id: str, spans: list[AgentSpan]) -> None:
        """Put a trace's steps under its row: its LLM calls in time order among its delegations, each LLM call
        with its tool calls under it (as `get_spans` orders them), open if the user opened the row."""
        self._pending.discard(trace_id)
        item = self.tree.items.get(trace_id)
        if item is None:
            return
        trace: TraceSummary = item.data(0, Role.TRACE)
        tree = self.tree
        tree.setUpdatesEnabled(False)
        sorting = tree.isSortingEnabled()
        tree.setSortingEnabled(False)
        try:
            self._drop(item, trace_id, again=False)
            now = now_ms()
            rows: list[QTreeWidgetItem] = []
            llm: dict[str, QTreeWidgetItem] = {}
            for s in spans:
                row = step_item(s, self.marks, now)
                parent = llm.get(s.parent_span_id) if s.parent_span_id is not None else None
                if parent is not None:
                    parent.addChild(row)
                else:  # an LLM call, or a tool call whose LLM call was lost to damage
                    rows.append(row)
                    if s.kind == LLM:
                        llm[s.span_id] = row
            last = max(llm.values(), key=lambda r: r.step_start, default=None)
            calls = [c.data(0, Role.TRACE) for c in (item.child(i) for i in range(item.childCount()))]
            calls = [c for c in calls if c is not None]  # the delegations: each made inside an LLM call
            for row in llm.values():
                s: AgentSpan = row.data(0, Role.STEP)
                end = s.ended_at if s.ended_at is not None else now
                delegated = [c.subagent_type for c in sorted(calls, key=lambda c: c.started_at)
                             if s.started_at <= c.started_at <= end]
                # the last LLM call of a finished trace answered with the trace's output
                answered = row is last and trace.status != RUNNING and not row.childCount() and not delegated
                describe_llm(row, delegated, trace.output_preview if answered else None)
            rows.sort(key=lambda r: r.data(0, Role.STEP).started_at)
            insert_in_time(item, rows)
            if trace_id in self._opened:  # the user opened this row: each call's tools open too
                for row in llm.values():
                    if row.childCount():
                        row.setExpanded(True)
            self._shown[trace_id] = _key(trace)
        finally:
            tree.setSortingEnabled(sorting)
            tree.setUpdatesEnabled(True)
        span_id = self._reselect.pop(trace_id, None)
        if span_id is not None:
            again = next((r for r in self.rows(trace_id) if r.data(0, Role.STEP).span_id == span_id), None)
            if again is not None:
                tree.setCurrentItem(again)

    def failed(self, trace_ids: list[str]) -> None:
        """The steps of these traces could not be read (the store was held, say): no longer waited for, so
        they are asked for again when the row is opened again or at the next `retry`."""
        self._pending.difference_update(trace_ids)

    def rows(self, trace_id: str) -> list[QTreeWidgetItem]:
        """The step rows under a trace (LLM calls, each followed by its tool calls), in tree order."""
        out: list[QTreeWidgetItem] = []
        for row in self._llm_rows(self.tree.items.get(trace_id)):
            out.append(row)
            out.extend(row.child(j) for j in range(row.childCount()))
        return out

    @staticmethod
    def _llm_rows(item: QTreeWidgetItem | None) -> list[QTreeWidgetItem]:
        """The step rows right under a trace row: its LLM calls (and a tool call whose call was lost)."""
        children = (item.child(i) for i in range(item.childCount() if item is not None else 0))
        return [c for c in children if c.data(0, Role.STEP) is not None]

    def trace_changed(self, item: QTreeWidgetItem, t: TraceSummary) -> None:
        """A trace row got new data: its step rows, if they are of older data, are dropped and read again."""
        if t.trace_id in self._shown and self._shown[t.trace_id] != _key(t):
            self._drop(item, t.trace_id)

    def _drop(self, item: QTreeWidgetItem, tid: str, again: bool = True, reselect: bool = True) -> None:
        """Remove a trace's step rows; with `again`, they are read again if the row still wants them; with
        `reselect`, a selected one is selected again when they are back."""
        if self._shown.pop(tid, None) is None:
            return
        current = self.tree.currentItem()
        step = current.data(0, Role.STEP) if current is not None else None
        if step is not None and step.trace_id == tid:
            if reselect:
                self._reselect[tid] = step.span_id
            blocked = self.tree.blockSignals(True)
            self.tree.setCurrentItem(item)
            self.tree.blockSignals(blocked)
        for i in reversed(range(item.childCount())):
            if item.child(i).data(0, Role.STEP) is not None:
                item.takeChild(i)
        if again and item.isExpanded() and self.wants(tid):
            self._queued.add(tid)
            self._want.start()

    def forget(self, tid: str) -> None:
        """The trace's row is gone."""
        self._shown.pop(tid, None)
        self._pending.discard(tid)
        self._queued.discard(tid)
        self._reselect.pop(tid, None)

    def clear(self) -> None:
        """Every row is gone."""
        self._shown, self._pending, self._queued, self._reselect = {}, set(), set(), {}

    def stop(self) -> None:
        self._want.stop()
        self._in_view.stop()
