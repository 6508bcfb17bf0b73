"""The rows of the delegation tree: its columns, the item that sorts a row's delegations and steps, and the
row of a step.

Rows carry raw values (milliseconds, token counts, dollars) in the display role, so Qt sorts them as numbers
in C++; the tree's delegates format them for the eye. A trace row holds its `TraceSummary` in `Role.TRACE`, a
step row its `AgentSpan` in `Role.STEP`.
"""

from __future__ import annotations

import bisect

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QTreeWidgetItem

from analytics import format as fmt
from analytics.models import AgentSpan
from dashboard.widgets.palette import STATUS_TEXT
from dashboard.widgets.roles import Role
from dashboard.widgets.row_marks import RowMarks

COLUMNS = ("Agent", "Description", "Duration", "Tokens in / out", "Cost", "Status", "Timeline")
AGENT, DESCRIPTION, DURATION, TOKENS, COST, STATUS, TIMELINE = range(len(COLUMNS))


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


def set_status(item: QTreeWidgetItem, status: str) -> None:
    """The Status cell: the status's words, in its colour."""
    item.setText(STATUS, fmt.status_label(status))
    if status in STATUS_TEXT:
        item.setForeground(STATUS, STATUS_TEXT[status])


def step_item(s: AgentSpan, marks: RowMarks, now: int) -> ChildItem:
    """A step's row (its description set apart, once its tool calls are known: `describe_llm`)."""
    agent, description = fmt.step_label(s.kind, s.name, s.title, s.input)
    row = ChildItem([agent, description if s.kind != "llm" else ""])
    set_status(row, s.status)
    display = Qt.ItemDataRole.DisplayRole
    running = s.duration_ms is None and s.status == "running"
    row.setData(DURATION, display, marks.running_for(s, now) if running else (s.duration_ms or 0))
    row.setData(TOKENS, display, s.tokens_in + s.tokens_out)
    row.setData(COST, display, s.cost_usd)
    row.setData(TIMELINE, display, s.started_at)
    row.setData(0, Role.STEP, s)
    row.step_start = (s.started_at, s.span_id)
    return row


def describe_llm(row: QTreeWidgetItem, delegated: list[str], answer: str | None = None) -> None:
    """An LLM call's description: what it did (the tools it called, the rows under it, and the agents it
    delegated to; else its error or `answer`, the text it answered with when that is known)."""
    s: AgentSpan = row.data(0, Role.STEP)
    tools = [row.child(i).data(0, Role.STEP).name for i in range(row.childCount())]
    row.setText(DESCRIPTION, fmt.step_label(s.kind, s.name, s.title, tools=tools, output=s.output, answer=answer,
                                        delegated=delegated)[1])


def start_of(item: QTreeWidgetItem) -> int:
    row = item.data(0, Role.TRACE) or item.data(0, Role.STEP)
    return row.started_at


def insert_in_time(parent: QTreeWidgetItem, rows: list[QTreeWidgetItem]) -> None:
    """Insert rows (in time order) among the parent's children (in time order), each where it belongs."""
    starts = [start_of(parent.child(i)) for i in range(parent.childCount())]
    groups: dict[int, list[QTreeWidgetItem]] = {}
    for row in rows:
        groups.setdefault(bisect.bisect_right(starts, start_of(row)), []).append(row)
    for at in sorted(groups, reverse=True):  # from the end: the indices before stay valid
        parent.insertChildren(at, groups[at])
