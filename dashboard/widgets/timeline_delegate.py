"""The waterfall column: each trace's bar painted on its root session's time scale.

Step rows (an LLM or tool call inside a trace, an `AgentSpan`) are painted the same way from their own times,
on the same scale: a span carries the fields a bar needs (started_at, ended_at, status, root_session_id).

Where a bar lies is `analytics.timeline`'s arithmetic, read through the tree's `RowMarks`: it starts at the
call's offset from its session's start and is as long as its duration; a running bar grows with the clock and
is hatched, unless the call is interrupted (still `running` as OpenCode wrote it, in a session with no write
for long): its bar ends at that last write. Painted from the row's own data (no widget per row): the item
background first, so selection shows, then the bar.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QModelIndex, QRectF, Qt
from PyQt6.QtGui import QBrush, QHelpEvent, QPainter, QPen
from PyQt6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from analytics import format as fmt
from analytics.models import COMPLETED, RUNNING, SESSION, TOOL, AgentSpan
from analytics.queries.trace_queries import TraceSummary
from analytics.timeline import now_ms
from dashboard.widgets import plain
from dashboard.widgets.palette import CRITICAL_COLOUR, HATCH, SELECTED_OUTLINE, SESSION_COLOUR, STATUS_COLOURS
from dashboard.widgets.roles import step_of, trace_of
from dashboard.widgets.row_marks import RowMarks


def bar_tooltip(t: TraceSummary | AgentSpan, marks: RowMarks, now: int) -> str:
    """A bar's tooltip as plain text (escaped by `plain.show_tooltip` when shown)."""
    running = t.status == RUNNING
    stopped = marks.stopped(t)
    duration = marks.running_for(t, now) if running else t.duration_ms
    so_far = (", then interrupted" if stopped is not None else " so far") if running else ""
    what = (f"{t.name} — {'LLM call' if t.kind == 'llm' else 'tool call'}" if isinstance(t, AgentSpan)
            else t.subagent_type)
    return "\n".join((
        f"{what} — {t.status}",
        f"Started {fmt.when(t.started_at)} (+{fmt.duration(t.started_at - marks.bounds[t.root_session_id].start)}"
        " into the session)",
        f"Duration {fmt.duration(duration)}{so_far}",
        f"Tokens {fmt.tokens(t.tokens_in)} in / {fmt.tokens(t.tokens_out)} out",
        f"Cost {fmt.step_cost(t.cost_usd) if isinstance(t, AgentSpan) else fmt.cost(t.cost_usd, t.unpriced_calls)}",
    ))


class TimelineDelegate(QStyledItemDelegate):
    """Paints the bar from the row's trace (or step) and the marks of the rows on show."""

    def __init__(self, parent, marks: RowMarks) -> None:
        super().__init__(parent)
        self.marks = marks
        self._critical_pen = QPen(CRITICAL_COLOUR, 2.0)
        self._pens = {k: QPen(v.darker(130), 1) for k, v in STATUS_COLOURS.items()}
        self._brushes = {k: QBrush(v) for k, v in STATUS_COLOURS.items()}
        self._session_brush = QBrush(SESSION_COLOUR)
        self._selected_pen = QPen(SELECTED_OUTLINE, 1.5)
        self._hatch = QBrush(HATCH, Qt.BrushStyle.BDiagPattern)

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
        marks = self.marks
        left, width = marks.bar(t, now_ms())
        r = QRectF(option.rect).adjusted(4, 5, -4, -5)
        bar = QRectF(r.left() + left * r.width(), r.top(), max(width * r.width(), 2.0), r.height())
        status = t.status
        brush = self._brushes.get(status, self._brushes[COMPLETED])
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if t.trace_id in marks.dimmed:
            painter.setOpacity(0.3)
        if step:  # a thinner bar, in its status colour: the calls a trace's own bar is made of
            inset = max(min(2.0, (bar.height() - 3.0) / 2), 0.0)  # thinner, but never thinner than 3 px
            bar.adjust(0, inset, 0, -inset)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(brush)
            if t.kind == TOOL:
                painter.setOpacity(painter.opacity() * 0.7)
        elif t.kind == SESSION:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._session_brush)
            painter.setOpacity(painter.opacity() * 0.55)
        else:
            selected = bool(option.state & QStyle.StateFlag.State_Selected)
            pen = self._critical_pen if t.trace_id in marks.critical else self._pens.get(status,
                                                                                         self._pens[COMPLETED])
            painter.setPen(self._selected_pen if selected else pen)
            painter.setBrush(brush)
        painter.drawRoundedRect(bar, 2, 2)
        if status == RUNNING and marks.stopped(t) is None:
            painter.setBrush(self._hatch)
            painter.drawRoundedRect(bar, 2, 2)
        painter.restore()

    def helpEvent(self, event: QHelpEvent, view: QAbstractItemView, option: QStyleOptionViewItem,
                  index: QModelIndex) -> bool:
        t = (trace_of(index) or step_of(index)) if index.isValid() else None
        if event is None or event.type() != QEvent.Type.ToolTip or t is None:
            return super().helpEvent(event, view, option, index)
        plain.show_tooltip(event.globalPos(), bar_tooltip(t, self.marks, now_ms()), view)
        return True
