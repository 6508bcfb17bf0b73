"""Per-agent bars, painted natively: median duration with a p95 whisker, and cost own / with delegations;
and where each agent's time went (`AgentTimeChart`)."""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QRectF, QSize, Qt
from PyQt6.QtGui import QFontMetrics, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QToolTip, QWidget

from analytics import format as fmt
from analytics.models import COMPLETED
from analytics.queries.analysis_queries import AgentMetrics
from analytics.queries.time_split import PART_LABELS, PARTS, AgentTime, split_text
from dashboard.widgets import plain
from dashboard.widgets.palette import GREEN, PALE_BLUE, PALE_GREEN, STATUS_COLOURS
from dashboard.widgets.time_split_bar import TIME_COLOURS, paint_split

ROW_H = 22
BLUE = STATUS_COLOURS[COMPLETED]


class AgentChart(QWidget):
    """Two bar charts side by side, one row per agent (most expensive first)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics: list[AgentMetrics] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_metrics(self, metrics: list[AgentMetrics]) -> None:
        self.metrics = metrics[:25]
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, 40 + ROW_H * max(len(self.metrics), 3))

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = QFontMetrics(self.font())
        if not self.metrics:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No traces in view")
            return
        label_w = max(fm.horizontalAdvance(m.agent) for m in self.metrics) + 12
        width = self.width() - label_w - 20
        half = max(width // 2 - 50, 60)
        x1, x2 = label_w, label_w + half + 60
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(QRectF(x1, 2, half, 18), Qt.AlignmentFlag.AlignLeft, "Duration: median, to p95")
        p.drawText(QRectF(x2, 2, half, 18), Qt.AlignmentFlag.AlignLeft, "Cost: own, with delegations")
        longest = max((m.p95_ms or 0) for m in self.metrics) or 1
        dearest = max(m.total_cost_usd for m in self.metrics) or 1
        for i, m in enumerate(self.metrics):
            y = 26 + i * ROW_H
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(QRectF(0, y, label_w - 8, ROW_H), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       m.agent)
            bar_y, bar_h = y + 4, ROW_H - 8
            if m.median_ms is not None:
                w = half * m.median_ms / longest
                p.fillRect(QRectF(x1, bar_y, max(w, 1), bar_h), BLUE)
                if m.p95_ms is not None and m.p95_ms > m.median_ms:
                    p.setPen(QPen(PALE_BLUE.darker(120), 2))
                    end = x1 + half * m.p95_ms / longest
                    p.drawLine(int(x1 + w), int(bar_y + bar_h / 2), int(end), int(bar_y + bar_h / 2))
                    p.drawLine(int(end), int(bar_y + 2), int(end), int(bar_y + bar_h - 2))
                p.setPen(self.palette().color(self.foregroundRole()))
                p.drawText(QRectF(x1 + half + 4, y, 56, ROW_H), Qt.AlignmentFlag.AlignVCenter,
                           fmt.duration(m.median_ms))
            room = max(half - 110, 40)  # leave room for the figures after the bar
            total = room * m.total_cost_usd / dearest
            own = room * m.cost_usd / dearest
            p.fillRect(QRectF(x2, bar_y, max(total, 1), bar_h), PALE_GREEN)
            p.fillRect(QRectF(x2, bar_y, max(own, 1), bar_h), GREEN)
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(QRectF(x2 + total + 4, y, 120, ROW_H), Qt.AlignmentFlag.AlignVCenter,
                       f"{fmt.cost(m.cost_usd, m.unpriced_calls, short=True)} / "
                       f"{fmt.cost(m.total_cost_usd, m.total_unpriced_calls, short=True)}")


class AgentTimeChart(QWidget):
    """Where each agent's time went: one stacked bar per agent (LLM, tools, waiting on delegations, idle), on
    one scale, the agent with the most time first; a legend above, the figures in each row's tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.times: list[AgentTime] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    def set_times(self, times: list[AgentTime]) -> None:
        self.times = [a for a in times if a.total_ms > 0][:25]
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, 40 + ROW_H * max(len(self.times), 3))

    def row_at(self, y: float) -> AgentTime | None:
        """The agent whose bar is at this height, if any."""
        i = int((y - 26) // ROW_H) if y >= 26 else -1
        return self.times[i] if 0 <= i < len(self.times) else None

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip:
            a = self.row_at(e.pos().y())
            if a is None:
                QToolTip.hideText()
            else:
                running = f"\n{a.running} running not counted" if a.running else ""
                plain.show_tooltip(e.globalPos(), f"{a.agent}: {fmt.duration(a.total_ms)} over {a.traces} runs\n"
                                   + split_text(a).replace(" · ", "\n") + running, self)
            return True
        return super().event(e)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        fm = QFontMetrics(self.font())
        ink = self.palette().color(self.foregroundRole())
        if not self.times:
            p.setPen(ink)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No finished traces in view")
            return
        x = 0.0
        for part in PARTS:  # the legend
            label = PART_LABELS[part]
            p.fillRect(QRectF(x, 6, 10, 10), TIME_COLOURS[part])
            p.setPen(ink)
            p.drawText(QRectF(x + 14, 2, fm.horizontalAdvance(label) + 4, 18), Qt.AlignmentFlag.AlignLeft, label)
            x += fm.horizontalAdvance(label) + 28
        label_w = max(fm.horizontalAdvance(a.agent) for a in self.times) + 12
        room = max(self.width() - label_w - 80, 60)
        longest = max(a.total_ms for a in self.times)
        for i, a in enumerate(self.times):
            y = 26 + i * ROW_H
            p.setPen(ink)
            p.drawText(QRectF(0, y, label_w - 8, ROW_H), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       a.agent)
            bar = QRectF(label_w, y + 4, room * a.total_ms / longest, ROW_H - 8)
            paint_split(p, bar, a)
            p.setPen(ink)
            p.drawText(QRectF(bar.right() + 4, y, 76, ROW_H), Qt.AlignmentFlag.AlignVCenter, fmt.duration(a.total_ms))
