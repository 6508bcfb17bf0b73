"""The "Metrics" tab: per-agent figures and chart, the slowest delegations, the anomalies."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QScrollArea, QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from analytics import format as fmt
from analytics.queries.analysis_queries import MIN_SAMPLES, Analysis
from dashboard.widgets import plain
from dashboard.widgets.agent_chart import AgentChart
from dashboard.widgets.figures import FigureKinds

AGENT_COLUMNS = ("Agent", "Runs", "Errors", "Median", "p95", "Tokens (own)", "Tokens (with delegations)",
                 "Cost (own)", "Cost (with delegations)")


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
        bottom = QSplitter(Qt.Orientation.Horizontal)
        for title, w in (("Slowest delegations (bottlenecks)", self.slow), ("Anomalies", self.odd)):
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            heading = plain.label(title)
            heading.setStyleSheet("font-weight: bold;")
            lay.addWidget(heading)
            lay.addWidget(w)
            bottom.addWidget(box)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
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
            return
        total_cost = sum(r.total_cost_usd for r in a.roots)
        calls = sum(r.descendants for r in a.roots)
        self.summary.setText(f"{len(a.roots)} sessions shown · {calls} delegations · {fmt.cost(total_cost)} in all · "
                             f"{len(a.anomalies)} anomalies (judged against your whole history)")
        display = Qt.ItemDataRole.DisplayRole
        rows = []
        for m in a.metrics:
            item = QTreeWidgetItem()
            for col, value in enumerate((m.agent, m.invocations, f"{m.error_rate * 100:.0f}%", m.median_ms, m.p95_ms,
                                         m.tokens_in + m.tokens_out, m.total_tokens_in + m.total_tokens_out,
                                         m.cost_usd, m.total_cost_usd)):
                item.setData(col, display, value)
            rows.append(item)
        self.agents.addTopLevelItems(rows)
        self.chart.set_metrics(a.metrics)
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
