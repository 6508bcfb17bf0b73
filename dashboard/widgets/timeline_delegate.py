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
from dashboard.widgets.roles import Row, row_of

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
        self._selected_pen = QPen(QColor("white"), 1.5)

    @staticmethod
    def bar_span(row: Row, now: int) -> tuple[float, float]:
        """(start, width) of the bar as fractions of its root session's time scale."""
        running = row.status == "running"
        end = row.end if row.end is not None else (now if running else row.start)
        root_end = max(row.root_end, now) if row.tree_running else row.root_end
        span = max(max(root_end, end) - row.root_start, 1)
        left = min(max((row.start - row.root_start) / span, 0.0), 1.0)
        width = min(max((end - row.start) / span, 0.0), 1.0 - left)
        return left, width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        row = row_of(index)
        if row is None:
            return
        left, width = self.bar_span(row, now_ms())
        r = QRectF(option.rect).adjusted(4, 5, -4, -5)
        bar = QRectF(r.left() + left * r.width(), r.top(), max(width * r.width(), 2.0), r.height())
        status = row.status
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if row.dim:
            painter.setOpacity(0.3)
        if row.kind == "session":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._session_brush)
            painter.setOpacity(painter.opacity() * 0.55)
        else:
            selected = bool(option.state & QStyle.StateFlag.State_Selected)
            painter.setPen(self._selected_pen if selected else self._pens.get(status, self._pens["completed"]))
            painter.setBrush(self._brushes.get(status, self._brushes["completed"]))
        painter.drawRoundedRect(bar, 2, 2)
        if status == "running":
            painter.setBrush(QBrush(QColor(255, 255, 255, 140), Qt.BrushStyle.BDiagPattern))
            painter.drawRoundedRect(bar, 2, 2)
        painter.restore()

    def helpEvent(self, event: QHelpEvent, view: QAbstractItemView, option: QStyleOptionViewItem,
                  index: QModelIndex) -> bool:
        row = row_of(index) if index.isValid() else None
        if event is None or event.type() != QEvent.Type.ToolTip or row is None:
            return super().helpEvent(event, view, option, index)
        QToolTip.showText(event.globalPos(), self.tooltip(row, now_ms()), view)
        return True

    @staticmethod
    def tooltip(row: Row, now: int) -> str:
        running = row.status == "running"
        duration = (now - row.start) if running else (row.end - row.start if row.end is not None else None)
        return "\n".join((
            f"{row.agent} — {row.status}",
            f"Started {fmt.when(row.start)} (+{fmt.duration(row.start - row.root_start)} into the session)",
            f"Duration {fmt.duration(duration)}{' so far' if running else ''}",
            f"Tokens {fmt.tokens(row.tokens_in)} in / {fmt.tokens(row.tokens_out)} out",
            f"Cost {fmt.cost(row.cost)}",
        ))
