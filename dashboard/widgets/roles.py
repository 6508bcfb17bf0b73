"""Item data roles shared by the tree and its delegates."""

from enum import IntEnum

from PyQt6.QtCore import Qt

_BASE = Qt.ItemDataRole.UserRole.value


class Role(IntEnum):
    TRACE = _BASE  # the row's TraceSummary, whole: its key (trace_id) and everything the delegates paint
    STEP = _BASE + 1  # a step row's AgentSpan (an LLM or tool call inside a trace); such a row has no TRACE
    PAIR = _BASE + 2  # a Compare row's Pair (analytics.queries.compare): the call of each run it aligns
    UNPRICED = _BASE + 3  # on a cost cell: how many LLM calls its figure lacks (no price for their model)


def trace_of(index):
    """The TraceSummary of the index's line (kept on its first column); None on a step row."""
    return index.siblingAtColumn(0).data(Role.TRACE)


def step_of(index):
    """The AgentSpan of the index's line, if it is a step row."""
    return index.siblingAtColumn(0).data(Role.STEP)
