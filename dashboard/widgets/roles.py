"""Item data roles shared by the tree and its delegates."""

from enum import IntEnum

from PyQt6.QtCore import Qt

_BASE = Qt.ItemDataRole.UserRole.value


class Role(IntEnum):
    TRACE = _BASE  # the row's TraceSummary, whole: its key (trace_id) and everything the delegates paint


def trace_of(index):
    """The TraceSummary of the index's line (kept on its first column)."""
    return index.siblingAtColumn(0).data(Role.TRACE)
