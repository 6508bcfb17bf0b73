"""The waterfall column: each trace's bar painted on its root session's time scale.

A bar starts at the trace's offset from its root session's start and is as long as its duration; a running
bar grows with the clock. Painted from the row's own data (no widget per row): the item background first,
so selection shows, then the bar.
"""

from __future__ import annotations

import time

from PyQt6.QtCore import QEvent, QModelIndex, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QHelpEvent, QPainter, QPen
from PyQt6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QToolTip

from analytics import format as fmt
from dashboard.widgets.roles import Role

STATUS_COLOURS = {
    "completed": QColor("#3b82c4"),
    "error": QColor("#d64545"),
    "running": QColor("#e0a020"),
}
SESSION_COLOUR = QColor("#8a96a8")


def now_ms() -> int:
    return int(time.time() * 1000)


class TimelineDelegate(QStyledItemDelegate):
    """Paints the bar from the roles the tree sets on the timeline column (see `Role`)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._pens = {k: QPen(v.darker(130), 1) for k, v in STATUS_COLOURS.items()}
        self._brushes = {k: QBrush(v) for k, v in STATUS_COLOURS.items()}
        self._running_brush = QBrush(STATUS_COLOURS["running"], Qt.BrushStyle.BDiagPattern)
        self._session_brush = QBrush(SESSION_COLOUR)

    @staticmethod
    def bar_span(index: QModelIndex, now: int) -> tuple[float, float] | None:
        """(start, width) of the bar as fractions of the root's time scale."""
        index = index.siblingAtColumn(0)  # the row's data lives on its first column
        start = index.data(Role.START)
        if start is None:
            return None
        root_start = index.data(Role.ROOT_START)
        root_end = index.data(Role.ROOT_END)
        running = index.data(Role.STATUS) == "running"
        end = index.data(Role.END)
        if end is None:
            end = now if running else start
        if index.data(Role.TREE_RUNNING):
            root_end = max(root_end or now, now)
        span = max((root_end or end) - root_start, 1)
        left = min(max((start - root_start) / span, 0.0), 1.0)
        width = min(max((end - start) / span, 0.0), 1.0 - left)
        return left, width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        span = self.bar_span(index, now_ms())
        if span is None:
            return
        left, width = span
        r = QRectF(option.rect).adjusted(4, 5, -4, -5)
        bar = QRectF(r.left() + left * r.width(), r.top(), max(width * r.width(), 2.0), r.height())
        index = index.siblingAtColumn(0)
        status = index.data(Role.STATUS) or "completed"
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if index.data(Role.KIND) == "session":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._session_brush)
            painter.setOpacity(0.55)
        else:
            painter.setPen(self._pens.get(status, self._pens["completed"]))
            painter.setBrush(self._brushes.get(status, self._brushes["completed"]))
        painter.drawRoundedRect(bar, 2, 2)
        if status == "running":
            painter.setOpacity(1.0)
            painter.setBrush(QBrush(QColor(255, 255, 255, 140), Qt.BrushStyle.BDiagPattern))
            painter.drawRoundedRect(bar, 2, 2)
        painter.restore()

    def helpEvent(self, event: QHelpEvent, view: QAbstractItemView, option: QStyleOptionViewItem,
                  index: QModelIndex) -> bool:
        if event is None or event.type() != QEvent.Type.ToolTip or not index.isValid():
            return super().helpEvent(event, view, option, index)
        QToolTip.showText(event.globalPos(), self.tooltip(index, now_ms()), view)
        return True

    @staticmethod
    def tooltip(index: QModelIndex, now: int) -> str:
        index = index.siblingAtColumn(0)
        start, end = index.data(Role.START), index.data(Role.END)
        root_start = index.data(Role.ROOT_START) or start
        running = index.data(Role.STATUS) == "running"
        duration = (now - start) if running else (end - start if end is not None else None)
        lines = [
            f"{index.data(Role.AGENT)} — {index.data(Role.STATUS)}",
            f"Started {fmt.when(start)} (+{fmt.duration(start - root_start)} into the session)",
            f"Duration {fmt.duration(duration)}{' so far' if running else ''}",
            f"Tokens {fmt.tokens(index.data(Role.TOKENS_IN))} in / {fmt.tokens(index.data(Role.TOKENS_OUT))} out",
            f"Cost {fmt.cost(index.data(Role.COST))}",
        ]
        return "\n".join(lines)
