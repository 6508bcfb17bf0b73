"""The "Metrics" tab: per-agent figures and chart, where each agent's time went and its tools' figures, the
slowest delegations, the anomalies."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from analytics import format as fmt
from analytics.queries.analysis_queries import MIN_SAMPLES
from analytics.queries.overview import Analysis
from analytics.queries.time_split import ToolStats
from dashboard.widgets import plain
from dashboard.widgets.agent_chart import AgentChart, AgentTimeChart
from dashboard.widgets.figures import FigureKinds
from dashboard.widgets.roles import Role

AGENT_COLUMNS = ("Agent", "Runs", "Errors", "Median", "p95", "Tokens (own)", "Tokens (with delegations)",
                 "Cost (own)", "Cost (with delegations)")
TOOL_COLUMNS = ("Tool", "Calls", "Errors", "Median", "p95", "Time", "Share of tool time")
ALL_AGENTS = "All agents"


def _titled(title: str, *widgets: QWidget) -> QWidget:
    """A bold heading over these widgets (side by side when more than one)."""
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    heading = plain.label(title)
    heading.setStyleSheet("font-weight: bold;")
    head = QHBoxLayout()
    head.addWidget(heading, 1)
    for w in widgets[:-1]:
        head.addWidget(w)
    lay.addLayout(head)
    lay.addWidget(widgets[-1], 1)
    return box


def _list(headers: tuple[str, ...]) -> QTreeWidget:
    w = QTreeWidget()
    w.setHeaderLabels(headers)
    w.setRootIsDecorated(False)
    w.setUniformRowHeights(True)
    w.setAlternatingRowColors(True)
    w.setSortingEnabled(True)
    return w


class MetricsSection(QWidget):
    """Signals:
        traceChosen(str): a bottleneck or an anomaly was clicked.
    """

    traceChosen = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = plain.label()
        self.agents = _list(AGENT_COLUMNS)
        self.agents.setItemDelegate(FigureKinds(self.agents, {3: "duration", 4: "duration", 5: "tokens",
                                                              6: "tokens", 7: "cost", 8: "cost"}))
        self.chart = AgentChart()
        chart_scroll = QScrollArea()
        chart_scroll.setWidget(self.chart)
        chart_scroll.setWidgetResizable(True)
        self.time_chart = AgentTimeChart()
        time_scroll = QScrollArea()
        time_scroll.setWidget(self.time_chart)
        time_scroll.setWidgetResizable(True)
        self.tool_agent = QComboBox()  # whose tools the table shows; follows the agent selected above
        self.tool_agent.setToolTip("The tools of one agent, or of all agents together")
        self.tool_agent.currentIndexChanged.connect(self._show_tools)
        self.tools = _list(TOOL_COLUMNS)
        self.tools.setItemDelegate(FigureKinds(self.tools, {3: "duration", 4: "duration", 5: "duration",
                                                            6: "percent"}))
        self.agents.currentItemChanged.connect(self._agent_selected)
        self._tool_stats: list[ToolStats] = []
        self.slow = _list(("Duration", "Share of its session", "Agent", "Description", "Session"))
        self.slow.setItemDelegate(FigureKinds(self.slow, {0: "duration", 1: "percent"}))
        self.odd = _list(("Agent", "Why", "Started"))
        for w in (self.slow, self.odd):
            w.itemActivated.connect(lambda item, _c: self.traceChosen.emit(item.data(0, Qt.ItemDataRole.UserRole)))
            w.itemClicked.connect(lambda item, _c: self.traceChosen.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.agents)
        top.addWidget(chart_scroll)
        top.setSizes([760, 640])
        middle = QSplitter(Qt.Orientation.Horizontal)
        middle.addWidget(_titled("Where the time went (finished runs)", time_scroll))
        middle.addWidget(_titled("Tools", self.tool_agent, self.tools))
        middle.setSizes([760, 640])
        bottom = QSplitter(Qt.Orientation.Horizontal)
        for title, w in (("Slowest delegations (bottlenecks)", self.slow), ("Anomalies", self.odd)):
            bottom.addWidget(_titled(title, w))
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(middle)
        split.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)

    def set_analysis(self, a: Analysis | None) -> None:
        for w in (self.agents, self.slow, self.odd):
            w.setSortingEnabled(False)
            w.clear()
        if a is None:
            self.chart.set_metrics([])
            self.time_chart.set_times([])
            self.set_tools([])
            return
        total_cost = sum(r.total_cost_usd for r in a.roots)
        unpriced = sum(r.total_unpriced_calls for r in a.roots)
        calls = sum(r.descendants for r in a.roots)
        self.summary.setText(f"{len(a.roots)} sessions shown · {calls} delegations · "
                             f"{fmt.cost(total_cost, unpriced)} in all · "
                             f"{len(a.anomalies)} anomalies (judged against your whole history)")
        display = Qt.ItemDataRole.DisplayRole
        rows = []
        for m in a.metrics:
            item = QTreeWidgetItem()
            for col, value in enumerate((m.agent, m.invocations, f"{m.error_rate * 100:.0f}%", m.median_ms, m.p95_ms,
                                         m.tokens_in + m.tokens_out, m.total_tokens_in + m.total_tokens_out,
                                         m.cost_usd, m.total_cost_usd)):
                item.setData(col, display, value)
            item.setData(7, Role.UNPRICED, m.unpriced_calls)
            item.setData(8, Role.UNPRICED, m.total_unpriced_calls)
            rows.append(item)
        self.agents.addTopLevelItems(rows)
        self.chart.set_metrics(a.metrics)
        self.time_chart.set_times(a.time)
        self.set_tools(a.tools)
        rows = []
        for b in a.bottlenecks:
            t = b.trace
            item = QTreeWidgetItem()
            for col, value in enumerate((t.duration_ms, b.share, t.subagent_type, t.description or "",
                                         t.root_session_id)):
                item.setData(col, display, value)
            item.setData(0, Qt.ItemDataRole.UserRole, t.trace_id)
            rows.append(item)
        self.slow.addTopLevelItems(rows)
        rows = []
        for x in sorted(a.anomalies.values(), key=lambda x: x.ratio, reverse=True):
            item = QTreeWidgetItem([x.trace.subagent_type, x.reason, fmt.when(x.trace.started_at)])
            item.setData(0, Qt.ItemDataRole.UserRole, x.trace.trace_id)
            item.setToolTip(1, plain.tooltip(x.reason))  # it names the agent
            rows.append(item)
        if not rows:
            rows = [QTreeWidgetItem(["—", "None: every call is within what its agent usually takes (agents with "
                                          f"fewer than {MIN_SAMPLES} runs are not judged yet).", ""])]
            rows[0].setFlags(Qt.ItemFlag.NoItemFlags)
        self.odd.addTopLevelItems(rows)
        for w in (self.agents, self.slow, self.odd):
            w.setSortingEnabled(True)
            for c in range(w.columnCount()):
                w.resizeColumnToContents(c)
        self.agents.sortByColumn(8, Qt.SortOrder.DescendingOrder)
        self.slow.sortByColumn(0, Qt.SortOrder.DescendingOrder)

    def set_tools(self, stats: list[ToolStats]) -> None:
        """The per-tool figures of the traces in view (`ToolStats`, per agent and for all agents); the agent
        chosen stays chosen while it still has tools."""
        self._tool_stats = stats
        chosen = self.tool_agent.currentData()
        agents = sorted({x.agent for x in stats if x.agent is not None})
        self.tool_agent.blockSignals(True)
        self.tool_agent.clear()
        self.tool_agent.addItem(ALL_AGENTS, None)
        for agent in agents:
            self.tool_agent.addItem(agent, agent)
        self.tool_agent.setCurrentIndex(max(self.tool_agent.findData(chosen), 0) if chosen is not None else 0)
        self.tool_agent.blockSignals(False)
        self._show_tools()

    def show_tools_of(self, agent: str | None) -> None:
        """Show the tools of this agent (None: of all agents), if it has any in view."""
        index = self.tool_agent.findData(agent) if agent is not None else 0
        if index >= 0:
            self.tool_agent.setCurrentIndex(index)

    def _agent_selected(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.show_tools_of(item.data(0, Qt.ItemDataRole.DisplayRole))

    def _show_tools(self) -> None:
        agent = self.tool_agent.currentData()
        self.tools.setSortingEnabled(False)
        self.tools.clear()
        display = Qt.ItemDataRole.DisplayRole
        rows = []
        for x in self._tool_stats:
            if x.agent != agent:
                continue
            item = QTreeWidgetItem()
            for col, value in enumerate((x.tool, x.calls, x.errors, x.median_ms, x.p95_ms, x.total_ms, x.share)):
                item.setData(col, display, value)
            rows.append(item)
        self.tools.addTopLevelItems(rows)
        self.tools.setSortingEnabled(True)
        for c in range(self.tools.columnCount()):
            self.tools.resizeColumnToContents(c)
        self.tools.sortByColumn(5, Qt.SortOrder.DescendingOrder)
