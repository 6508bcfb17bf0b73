"""Where the time went, as a stacked bar: LLM, tools, waiting on delegations, idle; painted natively.

The colours come from the tree's waterfall: an LLM call is a step bar in the status blue, a tool call the same
blue, paler; waiting on delegations is the delegation bar's darker blue; idle is the session's grey, as pale
as the session bar is drawn. `paint_split` draws one bar into a rectangle (the detail pane's bar, and each row
of the Metrics tab's chart), allocating nothing per paint.
"""

from __future__ import annotations

from PyQt6.QtCore import QRectF, QSize
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget

from analytics.queries.time_split import PARTS, AgentTime, TimeSplit, split_text
from dashboard.widgets import plain
from dashboard.widgets.palette import SESSION_COLOUR, STATUS_COLOURS


def _paler(colour: QColor, opacity: float) -> QColor:
    """The colour as it looks drawn at `opacity` over white (how the tree draws tool steps and sessions)."""
    return QColor(*(round(c * opacity + 255 * (1 - opacity)) for c in (colour.red(), colour.green(), colour.blue())))


BLUE = STATUS_COLOURS["completed"]
TIME_COLOURS = {
    "llm_ms": BLUE,
    "tool_ms": _paler(BLUE, 0.7),
    "waiting_ms": BLUE.darker(150),
    "idle_ms": _paler(SESSION_COLOUR, 0.55),
}


def paint_split(p: QPainter, rect: QRectF, split: TimeSplit | AgentTime, scale_ms: float | None = None) -> None:
    """The four parts side by side from rect's left, in proportion; the whole rect stands for `scale_ms`
    (default: the split's own total, so the bar fills the rect)."""
    scale = scale_ms or split.total_ms
    if scale <= 0:
        return
    x = rect.left()
    for part in PARTS:
        w = rect.width() * getattr(split, part) / scale
        if w > 0:
            p.fillRect(QRectF(x, rect.top(), w, rect.height()), TIME_COLOURS[part])
            x += w


class TimeSplitBar(QWidget):
    """One trace's split as a thin stacked bar (the detail pane's "Where the time went")."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.split: TimeSplit | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_split(self, split: TimeSplit | None) -> None:
        self.split = split
        self.setToolTip(plain.tooltip(split_text(split) if split is not None else None))
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, 12)

    def paintEvent(self, event) -> None:  # noqa: N802
        if self.split is None:
            return
        p = QPainter(self)
        paint_split(p, QRectF(self.rect()).adjusted(0, 1, 0, -1), self.split)
