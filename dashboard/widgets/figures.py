"""A delegate that shows raw numbers (kept for sorting) as durations, token counts, dollars or percentages."""

from __future__ import annotations

from PyQt6.QtCore import QModelIndex, Qt
from PyQt6.QtWidgets import QStyledItemDelegate, QWidget

from analytics import format as fmt
from dashboard.widgets.roles import Role


class FigureKinds(QStyledItemDelegate):
    """Formats the columns named in `kinds` ({column: a kind of `analytics.format.FIGURES`}); a cost cell that
    holds `Role.UNPRICED` calls reads as `format.cost` says ("unknown", "$0.42+")."""

    def __init__(self, parent: QWidget, kinds: dict[int, str]) -> None:
        super().__init__(parent)
        self.kinds = kinds

    def initStyleOption(self, option, index: QModelIndex) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        kind = self.kinds.get(index.column())
        if kind == "cost" and index.data(Role.UNPRICED):  # a cost that lacks unpriced calls is never a plain figure
            option.text = fmt.cost(index.data(Qt.ItemDataRole.DisplayRole), index.data(Role.UNPRICED), short=True)
            option.displayAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        elif kind is not None:
            option.text = fmt.figure(index.data(Qt.ItemDataRole.DisplayRole), kind)
            option.displayAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
