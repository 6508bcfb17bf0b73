"""The flow diagram: a session's delegation chain, or the agent graph across sessions, in a QGraphicsView.

Session flow: one node per agent invocation (agent, duration, tokens, status colour), an arrow per delegation,
laid out left to right by depth and top to bottom by start time; the critical path is drawn thicker.
Agent graph: one node per agent, an edge per "A delegates to B" with its count and median duration.
Wheel zooms around the cursor, dragging pans, `fit()` shows everything.
"""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen, QPolygonF
from PyQt6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView, QStyleOptionGraphicsItem

from analytics import format as fmt
from analytics.models import COMPLETED, ERROR
from analytics.queries.analysis_queries import AgentEdge, AgentMetrics
from analytics.queries.trace_queries import TraceNode
from dashboard.widgets import plain
from dashboard.widgets.palette import CRITICAL_COLOUR, INK, NOTE_INK, SELECTED_COLOUR, status_colour, status_fill

NODE_W, NODE_H, GAP_X, GAP_Y = 250, 54, 70, 14


class NodeItem(QGraphicsItem):
    """A box with two or three lines of text; `key` is the trace id (or the agent name)."""

    def __init__(self, key: str, title: str, lines: list[str], status: str, critical: bool,
                 flagged: bool = False) -> None:
        super().__init__()
        self.key, self.title, self.lines, self.status = key, title, lines, status
        self.critical, self.flagged = critical, flagged
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(plain.tooltip("\n".join([title, *lines])))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(-2, -2, NODE_W + 4, NODE_H + 4)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        rect = QRectF(0, 0, NODE_W, NODE_H)
        border = CRITICAL_COLOUR if self.critical else status_colour(self.status)
        width = 2.5 if self.critical else 1.2
        if self.isSelected():
            border, width = SELECTED_COLOUR, 3.0
        painter.setPen(QPen(border, width))
        painter.setBrush(QBrush(status_fill(self.status)))
        painter.drawRoundedRect(rect, 6, 6)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < 0.35:
            return  # zoomed far out: boxes only
        painter.setPen(INK)
        bold = QFont(painter.font())
        bold.setBold(True)
        painter.setFont(bold)
        title = self.title + ("  ⚠" if self.flagged else "")
        painter.drawText(rect.adjusted(8, 4, -8, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                         QFontMetrics(bold).elidedText(title, Qt.TextElideMode.ElideRight, NODE_W - 16))
        plain = QFont(bold)
        plain.setBold(False)
        painter.setFont(plain)
        metrics = QFontMetrics(plain)
        for i, line in enumerate(self.lines[:2]):
            painter.drawText(rect.adjusted(8, 21 + i * 15, -8, 0),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                             metrics.elidedText(line, Qt.TextElideMode.ElideRight, NODE_W - 16))


def _arrow(scene: QGraphicsScene, a: QPointF, b: QPointF, colour: QColor, width: float, label: str = "") -> None:
    path = QPainterPath(a)
    mid = (a.x() + b.x()) / 2
    path.cubicTo(QPointF(mid, a.y()), QPointF(mid, b.y()), b)
    pen = QPen(colour, width)
    scene.addPath(path, pen)
    head = QPolygonF([b, QPointF(b.x() - 9, b.y() - 4.5), QPointF(b.x() - 9, b.y() + 4.5)])
    scene.addPolygon(head, pen, QBrush(colour))
    if label:  # near the head, where arrows into different boxes are apart
        text = scene.addSimpleText(label)
        text.setBrush(QBrush(NOTE_INK))
        at = path.pointAtPercent(0.8)
        text.setPos(at.x() - text.boundingRect().width() - 6, at.y() - text.boundingRect().height() - 1)


class FlowView(QGraphicsView):
    """Signals:
        nodeClicked(str): a session-flow node (its trace id) or an agent node (its name) was clicked.
    """

    nodeClicked = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.nodes: dict[str, NodeItem] = {}

    def show_session(self, root: TraceNode, critical: set[str], flagged: set[str]) -> None:
        """The delegation chain of one session tree."""
        scene = self.scene()
        scene.clear()
        self.nodes = {}
        nodes = sorted(root.walk(), key=lambda n: (n.trace.started_at, n.trace.depth, n.trace.trace_id))
        for row, n in enumerate(nodes):
            t = n.trace
            lines = [f"{fmt.duration(t.duration_ms) if t.status != 'running' else 'running'} · "
                     f"{fmt.tokens(t.tokens_in)} in / {fmt.tokens(t.tokens_out)} out · "
                     f"{fmt.cost(t.cost_usd, t.unpriced_calls, short=True)}",
                     t.description or ""]
            item = NodeItem(t.trace_id, t.subagent_type, lines, t.status, t.trace_id in critical,
                            t.trace_id in flagged)
            item.setPos(t.depth * (NODE_W + GAP_X), row * (NODE_H + GAP_Y))
            scene.addItem(item)
            self.nodes[t.trace_id] = item
        for n in nodes:
            for c in n.children:
                a, b = self.nodes[n.trace.trace_id], self.nodes[c.trace.trace_id]
                on_path = n.trace.trace_id in critical and c.trace.trace_id in critical
                _arrow(scene, a.pos() + QPointF(NODE_W, NODE_H / 2), b.pos() + QPointF(0, NODE_H / 2),
                       CRITICAL_COLOUR if on_path else status_colour(c.trace.status), 2.2 if on_path else 1.2)
        self.fit()

    def show_agents(self, edges: list[AgentEdge], metrics: list[AgentMetrics]) -> None:
        """Agents as nodes, "A delegates to B" as edges with count and median duration."""
        scene = self.scene()
        scene.clear()
        self.nodes = {}
        by_agent = {m.agent: m for m in metrics}
        level: dict[str, int] = {a: 0 for a in by_agent}
        for _ in range(len(level)):  # longest chain from an agent nobody called (bounded: cycles stop)
            changed = False
            for e in edges:
                if (e.caller in level and e.callee in level and e.callee != e.caller
                        and level[e.callee] < level[e.caller] + 1 <= len(level)):
                    level[e.callee] = level[e.caller] + 1
                    changed = True
            if not changed:
                break
        columns: dict[int, list[str]] = {}
        for agent in sorted(by_agent, key=lambda a: -by_agent[a].invocations):
            columns.setdefault(level[agent], []).append(agent)
        for col, agents in columns.items():
            for row, agent in enumerate(agents):
                m = by_agent[agent]
                lines = [f"{m.invocations} runs · median {fmt.duration(m.median_ms)}",
                         f"{m.errors} errors · {fmt.cost(m.total_cost_usd, m.total_unpriced_calls, short=True)}"
                         " with delegations"]
                item = NodeItem(agent, agent, lines, ERROR if m.errors else COMPLETED, False)
                item.setPos(col * (NODE_W + GAP_X * 2), row * (NODE_H + GAP_Y * 3))
                scene.addItem(item)
                self.nodes[agent] = item
        for e in edges:
            if e.caller in self.nodes and e.callee in self.nodes and e.caller != e.callee:
                a, b = self.nodes[e.caller], self.nodes[e.callee]
                _arrow(scene, a.pos() + QPointF(NODE_W, NODE_H / 2), b.pos() + QPointF(0, NODE_H / 2),
                       status_colour(ERROR if e.errors else COMPLETED), 1.0 + min(e.count, 20) / 5,
                       f"{e.count}× · {fmt.duration(e.median_ms)}")
        self.fit()

    def fit(self) -> None:
        rect = self.scene().itemsBoundingRect().adjusted(-20, -20, 20, 20)
        if rect.isValid():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            if self.transform().m11() > 1.0:  # never blow a small diagram up
                self.resetTransform()
                self.centerOn(rect.center())

    def select(self, key: str) -> None:
        item = self.nodes.get(key)
        self.scene().clearSelection()
        if item is not None:
            item.setSelected(True)
            self.ensureVisible(item)

    def wheelEvent(self, event) -> None:  # noqa: N802
        factor = 1.2 if event.angleDelta().y() > 0 else 1 / 1.2
        self.scale(factor, factor)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        item = self.itemAt(event.position().toPoint())
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        if isinstance(item, NodeItem):
            self.select(item.key)
            self.nodeClicked.emit(item.key)
        super().mousePressEvent(event)
