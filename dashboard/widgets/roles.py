"""Item data roles shared by the tree and its delegates, and the row record the delegates paint from."""

from dataclasses import dataclass
from enum import IntEnum

from PyQt6.QtCore import Qt

_BASE = Qt.ItemDataRole.UserRole.value


class Role(IntEnum):
    TRACE_ID = _BASE  # str: the row's key
    ROW = _BASE + 1  # Row: everything the delegates need, one Python object per row


@dataclass(frozen=True, slots=True)
class Row:
    """What a tree row shows, kept whole on the row (one setData instead of a dozen)."""

    trace_id: str
    kind: str
    agent: str
    parent_agent: str | None
    status: str
    start: int
    end: int | None
    root_start: int
    root_end: int
    tree_running: bool
    tokens_in: int
    tokens_out: int
    cost: float
    preview: str
    dim: bool
    description: str | None
    duration: int | None
    parent_trace_id: str | None


def row_of(index) -> "Row | None":
    """The Row of the index's line (kept on its first column)."""
    return index.siblingAtColumn(0).data(Role.ROW)
