"""Item data roles shared by the tree and its delegates."""

from enum import IntEnum

from PyQt6.QtCore import Qt

_BASE = Qt.ItemDataRole.UserRole.value


class Role(IntEnum):
    TRACE_ID = _BASE
    KIND = _BASE + 1
    STATUS = _BASE + 2
    START = _BASE + 3
    END = _BASE + 4
    ROOT_START = _BASE + 5
    ROOT_END = _BASE + 6
    TREE_RUNNING = _BASE + 7
    TOKENS_IN = _BASE + 8
    TOKENS_OUT = _BASE + 9
    COST = _BASE + 10
    AGENT = _BASE + 11
    SIGNATURE = _BASE + 12
    HIT = _BASE + 13
