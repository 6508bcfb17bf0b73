"""The waterfall column: each trace's bar painted on its root session's time scale.

Step rows (an LLM or tool call inside a trace, an `AgentSpan`) are painted the same way from their own times,
on the same scale: a span carries the fields a bar needs (started_at, ended_at, status, root_session_id).

A bar starts at the trace's offset from its root session's start and is as long as its duration; a running
bar grows with the clock and is hatched, unless the call is interrupted (still `running` as OpenCode wrote it,
in a session with no write for long, see analytics/queries/findings.py): its bar ends at that last write.
Painted from the row's own data (no widget per row): the item background first, so selection shows, then the
bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PyQt6.QtCore import QEvent, QModelIndex, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QHelpEvent, QPainter, QPen
from PyQt6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from analytics import format as fmt
from analytics.models import AgentSpan
from analytics.queries.trace_queries import TraceSummary
from dashboard.widgets import plain
from dashboard.widgets.roles import step_of, trace_of

STATUS_COLOURS = {
    "completed": QColor("#3b82c4"),
    "error": QColor("#d64545"),
    "running": QColor("#e0a020"),
}
SESSION_COLOUR = QColor("#8a96a8")


def now_ms() -> int:
    return int(time.time() * 1000)


def running_duration(t: TraceSummary | AgentSpan, now: int, stopped: int | None) -> int:
    """How long a running call has run: until now, or until its session's last write if it was interrupted."""
    return max((now if stopped is None else stopped) - t.started_at, 0)


class TimelineDelegate(QStyledItemDelegate):
    """Paints the bar from the row's trace and its root session's bounds (start, latest end, running)."""

    def __init__(self, parent, root_of: Callable[[TraceSummary], tuple[int, int, bool]],
                 dimmed: set[str], critical: set[str], interrupted: dict[str, int]) -> None:
        super().__init__(parent)
        self.root_of, self.dimmed, self.critical = root_of, dimmed, critical
        self.interrupted = interrupted  # trace id -> its session tree's last write, for interrupted calls
        self._critical_pen = QPen(QColor("#1d2b3a"), 2.0)
        self._pens = {k: QPen(v.darker(130), 1) for k, v in STATUS_COLOURS.items()}
        self._brushes = {k: QBrush(v) for k, v in STATUS_COLOURS.items()}
        self._session_brush = QBrush(SESSION_COLOUR)
        self._selected_pen = QPen(QColor("white"), 1.5)

    @staticmethod
    def bar_span(t: TraceSummary | AgentSpan, root: tuple[int, int, bool], now: int,
                 stopped: int | None = None) -> tuple[float, float]:
        """(start, width) of the bar as fractions of its root session's time scale; a running call that was
        interrupted ends at `stopped` (its session's last write) instead of now."""
        root_start, root_end, tree_running = root
        end = t.ended_at if t.ended_at is not None else (
            (now if stopped is None else max(stopped, t.started_at)) if t.status == "running" else t.started_at)
        root_end = max(root_end, now) if tree_running else root_end
        span = max(max(root_end, end) - root_start, 1)
        left = min(max((t.started_at - root_start) / span, 0.0), 1.0)
        width = min(max((end - t.started_at) / span, 0.0), 1.0 - left)
        return left, width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        t = trace_of(index)
        step = t is None
        if step:
            t = step_of(index)
            if t is None:
                return
        stopped = self.interrupted.get(t.trace_id) if t.status == "running" else None
        left, width = self.bar_span(t, self.root_of(t), now_ms(), stopped)
        r = QRectF(option.rect).adjusted(4, 5, -4, -5)
        bar = QRectF(r.left() + left * r.width(), r.top(), max(width * r.width(), 2.0), r.height())
        status = t.status
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if t.trace_id in self.dimmed:
            painter.setOpacity(0.3)
        if step:  # a thinner bar, in its status colour: the calls a trace's own bar is made of
            inset = max(min(2.0, (bar.height() - 3.0) / 2), 0.0)  # thinner, but never thinner than 3 px
            bar.adjust(0, inset, 0, -inset)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._brushes.get(status, self._brushes["completed"]))
            if t.kind == "tool":
                painter.setOpacity(painter.opacity() * 0.7)
        elif t.kind == "session":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._session_brush)
            painter.setOpacity(painter.opacity() * 0.55)
        else:
            selected = bool(option.state & QStyle.StateFlag.State_Selected)
            pen = self._critical_pen if t.trace_id in self.critical else self._pens.get(status, self._pens["completed"])
            painter.setPen(self._selected_pen if selected else pen)
            painter.setBrush(self._brushes.get(status, self._brushes["completed"]))
        painter.drawRoundedRect(bar, 2, 2)
        if status == "running" and stopped is None:
            painter.setBrush(QBrush(QColor(255, 255, 255, 140), Qt.BrushStyle.BDiagPattern))
            painter.drawRoundedRect(bar, 2, 2)
        painter.restore()

    def helpEvent(self, event: QHelpEvent, view: QAbstractItemView, option: QStyleOptionViewItem,
                  index: QModelIndex) -> bool:
        t = (trace_of(index) or step_of(index)) if index.isValid() else None
        if event is None or event.type() != QEvent.Type.ToolTip or t is None:
            return super().helpEvent(event, view, option, index)
        plain.show_tooltip(event.globalPos(),
                           self.tooltip(t, self.root_of(t), now_ms(), self.interrupted.get(t.trace_id)), view)
        return True

    @staticmethod
    def tooltip(t: TraceSummary | AgentSpan, root: tuple[int, int, bool], now: int,
                stopped: int | None = None) -> str:
        """The bar's tooltip as plain text (escaped by `plain.show_tooltip` when shown); `stopped`: the last
        write of an interrupted call's session."""
        running = t.status == "running"
        duration = running_duration(t, now, stopped) if running else t.duration_ms
        so_far = (", then interrupted" if stopped is not None else " so far") if running else ""
        what = (f"{t.name} — {'LLM call' if t.kind == 'llm' else 'tool call'}" if isinstance(t, AgentSpan)
                else t.subagent_type)
        return "\n".join((
            f"{what} — {t.status}",
            f"Started {fmt.when(t.started_at)} (+{fmt.duration(t.started_at - root[0])} into the session)",
            f"Duration {fmt.duration(duration)}{so_far}",
            f"Tokens {fmt.tokens(t.tokens_in)} in / {fmt.tokens(t.tokens_out)} out",
            f"Cost {fmt.cost(t.cost_usd)}",
        ))
