"""The window's colours in one place: what a status looks like wherever a call is drawn.

A call's status has one colour (`STATUS_COLOURS`): its bar in the tree's waterfall, its word in the Status
column (a shade darker, to read as text), the border and arrow of its box in the flow view (over a pale
`STATUS_FILLS`), its part of a stacked time bar. The session bar is grey, the critical path a dark ink. The
words for a status ("✓ completed") are text, shared with the command line: `analytics.format.status_label`.
"""

from __future__ import annotations

from PyQt6.QtGui import QBrush, QColor

from analytics.models import COMPLETED, ERROR, RUNNING

STATUS_COLOURS = {COMPLETED: QColor("#3b82c4"), ERROR: QColor("#d64545"), RUNNING: QColor("#e0a020")}
STATUS_FILLS = {COMPLETED: QColor("#e4eef9"), ERROR: QColor("#fbe3e3"), RUNNING: QColor("#fdf1d6")}  # flow boxes
STATUS_TEXT = {k: QBrush(v.darker(115)) for k, v in STATUS_COLOURS.items()}  # the Status column's words
SESSION_COLOUR = QColor("#8a96a8")  # a session's own bar, under its calls
CRITICAL_COLOUR = QColor("#1d2b3a")  # the critical path: bar outlines, flow boxes and arrows
SELECTED_COLOUR = QColor("#0a58ca")  # a selected flow box
INK = QColor("#1b1f24")  # text drawn on a pale status fill
NOTE_INK = QColor("#444")  # an arrow's label
DIM = QBrush(QColor(128, 128, 128))  # a row shown for context, outside the filter
HATCH = QColor(255, 255, 255, 140)  # over a bar still growing

# the Metrics tab's per-agent bars: time in blue, money in green, the lesser figure paler
PALE_BLUE, GREEN, PALE_GREEN = QColor("#a9c8e8"), QColor("#3c9a5f"), QColor("#b9dfc5")

# comparing two runs: a figure better or worse on the right, a call only on one side, each run's bar
BETTER, WORSE = QBrush(QColor("#1f8a3b")), QBrush(QColor("#c0392b"))
ADDED_BACKGROUND, REMOVED_BACKGROUND = QBrush(QColor(60, 170, 90, 40)), QBrush(QColor(210, 70, 70, 40))
LEFT_COLOUR, RIGHT_COLOUR = QColor("#3b82c4"), QColor("#d9822b")
ADDED_WORDS, REMOVED_WORDS = QColor("#c4ecc9"), QColor("#f6c6c6")  # the diff of two texts, word by word

PROBLEM_STYLE = "color: #b42318;"  # a sentence saying what is wrong with a setting
BAD_INPUT_STYLE = "QLineEdit { background: #fde8e8; }"  # a field holding what cannot be used
SELECTED_OUTLINE = QColor("white")  # a selected row's bar


def status_colour(status: str) -> QColor:
    """The colour of a status (an unknown one is drawn as completed)."""
    return STATUS_COLOURS.get(status, STATUS_COLOURS[COMPLETED])


def status_fill(status: str) -> QColor:
    return STATUS_FILLS.get(status, STATUS_FILLS[COMPLETED])
