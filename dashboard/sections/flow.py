"""The "Flow" tab: the selected session's delegation chain, or the agent graph of the filtered sessions."""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from analytics.queries.overview import Analysis
from dashboard.widgets import plain
from dashboard.widgets.flow_view import FlowView

SESSION, AGENTS = "The selected session", "Agents across the sessions shown"


class FlowSection(QWidget):
    """Signals:
        traceChosen(str): a session-flow node was clicked.
        agentChosen(str): an agent node of the agent graph was clicked.
    """

    traceChosen = pyqtSignal(str)
    agentChosen = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = QComboBox()
        self.mode.addItems([SESSION, AGENTS])
        self.mode.currentIndexChanged.connect(lambda _i: self.redraw())
        fit = QPushButton("Fit")
        fit.clicked.connect(lambda: self.view.fit())
        self.hint = plain.label()  # it quotes the session's title
        self.hint.setStyleSheet("color: palette(mid);")
        bar = QHBoxLayout()
        bar.addWidget(plain.label("Show"))
        bar.addWidget(self.mode)
        bar.addWidget(fit)
        bar.addWidget(self.hint, 1)
        self.view = FlowView()
        self.view.nodeClicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        self.analysis: Analysis | None = None
        self.root_id: str | None = None
        self.trace_id: str | None = None
        self._drawn: tuple | None = None

    def set_analysis(self, analysis: Analysis | None) -> None:
        self.analysis = analysis
        self._drawn = None
        if self.isVisible():
            self.redraw()

    def follow(self, trace_id: str | None) -> None:
        """The trace selected in the tree: draw its session (if it changed) and select its node."""
        self.trace_id = trace_id
        if self.analysis is not None and trace_id:
            self.root_id = next((r.trace.trace_id for r in self.analysis.roots
                                 for n in r.walk() if n.trace.trace_id == trace_id), self.root_id)
        if self.isVisible():
            self.redraw()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.redraw()

    def redraw(self) -> None:
        a = self.analysis
        if a is None:
            return
        if self.mode.currentText() == SESSION:
            root = next((r for r in a.roots if r.trace.trace_id == self.root_id), a.roots[0] if a.roots else None)
            key = ("session", id(a), root.trace.trace_id if root else None)
            if root is not None and key != self._drawn:
                self.view.show_session(root, a.critical, set(a.anomalies))
                self._drawn = key
            if root is not None:
                self.hint.setText(f"{root.trace.description} — {root.descendants} delegations; the critical path "
                                  "is drawn thicker. Wheel zooms, drag pans, click a node to see it in the tree.")
            if self.trace_id:
                self.view.select(self.trace_id)
        else:
            key = ("agents", id(a))
            if key != self._drawn:
                self.view.show_agents(a.edges, a.metrics)
                self._drawn = key
            self.hint.setText(f"{len(a.metrics)} agents, {len(a.edges)} kinds of delegation in the "
                              f"{len(a.roots)} sessions shown. Click an agent to filter on it.")

    def _clicked(self, key: str) -> None:
        if self.mode.currentText() == SESSION:
            self.trace_id = key
            self.traceChosen.emit(key)
        else:
            self.agentChosen.emit(key)
