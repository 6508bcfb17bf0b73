"""The "Compare" tab: two runs (sessions or delegations) aligned row by row, and the texts of a row diffed.

The runs are picked in the Traces tab (two rows selected and *Compare*, or *Compare with…* in a row's context
menu). The alignment and the word diff are computed on the worker thread (`DataService.compare`,
`DataService.diff_texts`); every request carries a generation number and older answers are dropped.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from analytics import format as fmt
from analytics.queries.compare import Comparison, Pair
from dashboard.data import DataService, TextDiffs
from dashboard.widgets import plain
from dashboard.widgets.compare_tree import CompareTree
from dashboard.widgets.diff_pane import DiffPane

EMPTY = ("Pick two runs in the Traces tab: select two rows (Ctrl-click) and choose Compare in the context menu, "
         "or Compare with… on one row and then on the other.")


class CompareSection(QWidget):
    """Signals:
        traceChosen(str): a row was double-clicked: bring its trace up in the Traces tab.
        shown(): a comparison is on screen (and the texts of its first row).
        status(str): a line for the window's status bar.
    """

    traceChosen = pyqtSignal(str)
    shown = pyqtSignal()
    status = pyqtSignal(str)

    def __init__(self, service: DataService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.heading = plain.label(EMPTY)
        self.heading.setWordWrap(True)
        self.tree = CompareTree()
        self.diff = DiffPane()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.diff)
        self.splitter.setSizes([420, 380])
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.splitter, 1)
        self.comparison: Comparison | None = None
        self.sides: tuple[str, str] | None = None  # the two runs asked for last
        self._compare_gen = 0
        self._diff_gen = 0
        self.tree.pairSelected.connect(self._select)
        self.tree.traceActivated.connect(self.traceChosen)
        service.compared.connect(self._on_compared)
        service.diffed.connect(self._on_diffed)
        service.failed.connect(self._on_failed)

    def compare(self, left: str, right: str) -> int:
        """Compare two runs (trace ids; a session's trace id is its session id); returns the request's number."""
        self.sides = (left, right)
        self.heading.setText("Comparing…")
        self._compare_gen = self.service.compare(left, right)
        return self._compare_gen

    def _on_compared(self, generation: int, c: Comparison) -> None:
        if generation != self._compare_gen:
            return
        self.comparison = c
        root = c.pairs[0]
        n = c.counts
        self.heading.setText(
            f"Left: {root.left.subagent_type} ({fmt.source_label(root.left.source)}) {c.left_id} "
            f"({fmt.when(c.left_start)})   ⇄   "
            f"Right: {root.right.subagent_type} ({fmt.source_label(root.right.source)}) {c.right_id} "
            f"({fmt.when(c.right_start)})   ·   "
            f"{n['matched']} calls matched, {n['added']} added on the right, {n['removed']} removed from the left. "
            "Differences are right − left: green is better, red worse.")
        self.tree.show_comparison(c)  # selects the roots' row, which asks for their texts

    def _select(self, pair: Pair) -> None:
        self.diff.show_pair(pair)
        self._diff_gen = self.service.diff_texts(pair.left.trace_id if pair.left else None,
                                                 pair.right.trace_id if pair.right else None)

    def _on_diffed(self, generation: int, diffs: TextDiffs) -> None:
        if generation != self._diff_gen:
            return
        self.diff.show_texts(diffs)
        self.shown.emit()

    def _on_failed(self, generation: int, message: str) -> None:
        if generation == self._compare_gen:
            self.heading.setText(f"Could not compare: {message}")
            self.status.emit(message)
