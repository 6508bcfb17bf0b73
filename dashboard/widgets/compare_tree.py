"""The Compare tab's aligned rows: a call of each run per row, its figures on both sides and the difference.

One row per `Pair` of a `Comparison` (analytics/queries/compare.py), nested as the runs nest, the two roots at
the top under a first row with the totals (every descendant included). A figure cell reads
"left → right  difference (percent)" and is coloured by whether the right side did better (less time, fewer
tokens, less cost, fewer calls, a better status) or worse. A call on one side only is marked added or removed.
The last column paints the two runs' bars on one time scale, the left above the right (`CompareBarDelegate`).
"""

from __future__ import annotations

from PyQt6.QtCore import QModelIndex, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QFont, QPainter
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
)

from analytics import format as fmt
from analytics import timeline
from analytics.models import ERROR, RUNNING
from analytics.queries.compare import STATUS_RANK, Comparison, Figures, Pair
from analytics.timeline import now_ms
from dashboard.widgets import plain
from dashboard.widgets.palette import (
    ADDED_BACKGROUND,
    BETTER,
    HATCH,
    LEFT_COLOUR,
    REMOVED_BACKGROUND,
    RIGHT_COLOUR,
    STATUS_COLOURS,
    WORSE,
)
from dashboard.widgets.roles import Role

COLUMNS = ("Call", "Duration", "Tokens in", "Tokens out", "Cost", "Status", "LLM calls", "Tool calls",
           "Timeline (left above, right below)")
CALL, DURATION, TOKENS_IN, TOKENS_OUT, COST, STATUS, LLM, TOOLS, TIMELINE = range(len(COLUMNS))
FIGURE_COLUMNS = ((DURATION, "duration_ms", "duration"), (TOKENS_IN, "tokens_in", "tokens"),
                  (TOKENS_OUT, "tokens_out", "tokens"), (COST, "cost_usd", "cost"), (LLM, "llm_calls", "count"),
                  (TOOLS, "tool_calls", "count"))
MARK = {"matched": "", "added": "+ ", "removed": "− "}
MAX_COLUMN_WIDTH = 240


def cell_text(left: Figures | None, right: Figures | None, name: str, kind: str) -> tuple[str, int]:
    """"14.4 s → 12.8 s  −1.6 s (−11%)", and +1 when the right is worse, −1 when better, 0 otherwise."""
    return fmt.compare_cell(left.value(name) if left is not None else None,
                            right.value(name) if right is not None else None, kind,
                            left.status if left is not None else None, right.status if right is not None else None,
                            (left.unpriced(name) if left is not None else 0,
                             right.unpriced(name) if right is not None else 0))


def description_text(pair: Pair) -> str:
    """The reworded description of a pair: 'Description changed: "Code" → "Write the code".' ("" if none)."""
    if not pair.description_change:
        return ""
    was, now = pair.description_change
    return f"Description changed: “{was}” → “{now}”."


def status_text(left: Figures | None, right: Figures | None) -> tuple[str, int]:
    a, b = (f.status if f is not None else "·" for f in (left, right))
    if left is None or right is None:
        return f"{a} → {b}", 0
    worse = STATUS_RANK.get(b, 1) - STATUS_RANK.get(a, 1)
    return (a if a == b else f"{a} → {b}"), (worse > 0) - (worse < 0)


class CompareBarDelegate(QStyledItemDelegate):
    """Both runs' bars in one cell, on one time scale: each bar starts at its call's offset from its own run's
    start; the scale is the longer run. The left run's bar is drawn in the top half, the right's below."""

    def __init__(self, tree: CompareTree) -> None:
        super().__init__(tree)
        self.tree = tree
        self._brushes = (QBrush(LEFT_COLOUR), QBrush(RIGHT_COLOUR))
        self._error = QBrush(STATUS_COLOURS[ERROR])
        self._hatch = QBrush(HATCH, Qt.BrushStyle.BDiagPattern)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        pair = index.siblingAtColumn(0).data(Role.PAIR)
        c = self.tree.comparison
        if pair is None or c is None:
            return
        now = now_ms()
        scale = max(c.left_span, c.right_span, 1)
        r = QRectF(option.rect).adjusted(4, 3, -4, -3)
        half = r.height() / 2
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        for row, (t, start) in enumerate(((pair.left, c.left_start), (pair.right, c.right_start))):
            if t is None:
                continue
            left, width = timeline.bar(t.started_at, timeline.end_of(t, now), start, scale)
            bar = QRectF(r.left() + left * r.width(), r.top() + row * half + 0.5, max(width * r.width(), 2.0),
                         half - 1.0)
            painter.setBrush(self._error if t.status == ERROR else self._brushes[row])
            painter.drawRect(bar)
            if t.status == RUNNING:
                painter.setBrush(self._hatch)
                painter.drawRect(bar)
        painter.restore()


class CompareTree(QTreeWidget):
    """The aligned rows of a comparison, keyed by their Pair (Role.PAIR; the totals row has none).

    Signals:
        pairSelected(object): the current row changed to this Pair (the totals row: the roots' Pair).
        traceActivated(str): a row was double-clicked: a trace of it (the left one, else the right).
    """

    pairSelected = pyqtSignal(object)
    traceActivated = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(False)
        self.comparison: Comparison | None = None
        self.setItemDelegateForColumn(TIMELINE, CompareBarDelegate(self))
        header = self.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((CALL, 230), (DURATION, 190), (TOKENS_IN, 170), (TOKENS_OUT, 150), (COST, 190),
                              (STATUS, 150), (LLM, 90), (TOOLS, 90)):
            self.setColumnWidth(column, width)
        self._bold = QFont(self.font())
        self._bold.setBold(True)
        self.rows: list[QTreeWidgetItem] = []  # one per pair, in the comparison's order
        self.currentItemChanged.connect(self._on_current)
        self.itemDoubleClicked.connect(self._on_double_click)

    def show_comparison(self, c: Comparison) -> None:
        """Show a comparison from scratch: the totals row, then the pairs nested as the runs nest."""
        self.comparison = c
        self.clear()
        self.rows = []
        totals = self._row("Total, with delegations", c.left_total, c.right_total, "matched")
        totals.setData(0, Role.PAIR, c.pairs[0])
        for column in range(len(COLUMNS)):
            totals.setFont(column, self._bold)
        totals.setData(TIMELINE, Qt.ItemDataRole.DisplayRole, "")
        self.addTopLevelItem(totals)
        parents: list[QTreeWidgetItem] = []
        for pair in c.pairs:
            item = self._row(MARK[pair.kind] + pair.label, pair.left_figures, pair.right_figures, pair.kind)
            item.setData(0, Role.PAIR, pair)
            if pair.description_change:
                item.setToolTip(CALL, plain.tooltip(description_text(pair)))
            del parents[pair.depth:]
            (parents[-1].addChild(item) if parents else self.addTopLevelItem(item))
            parents.append(item)
            self.rows.append(item)
        self.expandAll()
        for column in range(CALL, TOOLS + 1):  # the figures in full (a comparison holds a tree, not a history)
            self.resizeColumnToContents(column)
            self.setColumnWidth(column, min(self.columnWidth(column), MAX_COLUMN_WIDTH))  # the bars need room
        self.setCurrentItem(self.rows[0])

    def _row(self, label: str, left: Figures | None, right: Figures | None, kind: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([label])
        for column, name, figure in FIGURE_COLUMNS:
            text, worse = cell_text(left, right, name, figure)
            item.setText(column, text)
            if worse:
                item.setForeground(column, WORSE if worse > 0 else BETTER)
            item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        text, worse = status_text(left, right)
        item.setText(STATUS, text)
        if worse:
            item.setForeground(STATUS, WORSE if worse > 0 else BETTER)
        if kind != "matched":
            background = ADDED_BACKGROUND if kind == "added" else REMOVED_BACKGROUND
            for column in range(len(COLUMNS)):
                item.setBackground(column, background)
        return item

    def current_pair(self) -> Pair | None:
        item = self.currentItem()
        return item.data(0, Role.PAIR) if item is not None else None

    def _on_current(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        pair = current.data(0, Role.PAIR) if current is not None else None
        if pair is not None:
            self.pairSelected.emit(pair)

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        pair = item.data(0, Role.PAIR)
        t = pair.left or pair.right if pair is not None else None
        if t is not None:
            self.traceActivated.emit(t.trace_id)
