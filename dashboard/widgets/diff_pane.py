"""The texts of two aligned calls side by side: the two prompts and the two outputs, diffed word by word.

Plain text only: each side is a read-only QPlainTextEdit filled run by run with `QTextCursor.insertText` and
a character format (removed words tinted red on the left, added ones green on the right), never HTML built
from the texts. The diff itself (`analytics.word_diff`) runs on the worker thread; this pane
only lays out its runs. Above the texts, the tools the two calls used differently ("grep: 1 → 3 calls").
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QTextCharFormat, QTextCursor
from PyQt6.QtWidgets import QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

from analytics.queries.compare import Pair
from analytics.word_diff import ADDED, REMOVED, TextDiff
from dashboard.widgets import plain
from dashboard.widgets.compare_tree import description_text
from dashboard.widgets.palette import ADDED_WORDS, REMOVED_WORDS


def _format(colour: QColor | None) -> QTextCharFormat:
    f = QTextCharFormat()
    if colour is not None:
        f.setBackground(colour)
    return f


FORMATS = {REMOVED: _format(REMOVED_WORDS), ADDED: _format(ADDED_WORDS)}
PLAIN = _format(None)


class DiffSide(QPlainTextEdit):
    """One side of a diff: its runs as plain text, the changed ones tinted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)

    def show_runs(self, runs: list[tuple[str, str]], cut: int, missing: str | None = None,
                  coarse: bool = False) -> None:
        """Fill with the runs (kind, text); `cut` characters left undiffed are said at the end, and so is a
        `coarse` diff (parts too long to compare word by word, marked changed whole); `missing` is shown
        instead when this side has no such call."""
        self.clear()
        if missing is not None:
            self.setPlainText(missing)
            return
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        for kind, text in runs:
            cursor.insertText(text, FORMATS.get(kind, PLAIN))
        if cut:
            cursor.insertText(f"\n\n[… {cut:,} more characters, not compared]", PLAIN)
        if coarse:
            cursor.insertText("\n\n[parts too long to compare word by word in good time are marked changed "
                              "whole]", PLAIN)
        cursor.endEditBlock()
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def runs_text(self) -> str:
        return self.toPlainText()


class DiffPane(QWidget):
    """What changed between the two calls of a row: tools, prompts, outputs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = plain.label()
        self.tools.setWordWrap(True)
        self.prompt_heading = plain.label("Prompt input: left | right")
        self.output_heading = plain.label("Prompt output: left | right")
        self.left_prompt, self.right_prompt = DiffSide(), DiffSide()
        self.left_output, self.right_output = DiffSide(), DiffSide()
        texts = QSplitter(Qt.Orientation.Vertical)
        for heading, a, b in ((self.prompt_heading, self.left_prompt, self.right_prompt),
                              (self.output_heading, self.left_output, self.right_output)):
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(heading)
            sides = QSplitter(Qt.Orientation.Horizontal)
            sides.addWidget(a)
            sides.addWidget(b)
            lay.addWidget(sides, 1)
            texts.addWidget(box)
            a.verticalScrollBar().valueChanged.connect(b.verticalScrollBar().setValue)  # read side by side
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tools)
        layout.addWidget(texts, 1)
        self.diffs = None  # the TextDiffs shown

    def show_pair(self, pair: Pair) -> None:
        """The tools the row's two calls used differently; the texts follow with `show_texts`."""
        changes = pair.tool_changes()
        if pair.kind != "matched":
            text = "Only in the " + ("right" if pair.kind == "added" else "left") + " run."
        elif changes:
            text = "Tools used differently: " + "; ".join(c.text() for c in changes)
        else:
            text = "The same tools, the same number of calls." if pair.left_tools else "No tool calls."
        self.tools.setText(" ".join(filter(None, (description_text(pair), text))))
        for side in (self.left_prompt, self.right_prompt, self.left_output, self.right_output):
            side.setPlainText("Reading…")

    def show_texts(self, diffs) -> None:  # a TextDiffs (dashboard.data)
        self.diffs = diffs
        for a, b, d in ((self.left_prompt, self.right_prompt, diffs.prompt),
                        (self.left_output, self.right_output, diffs.output)):
            self._show(a, b, d, diffs.left_id is None, diffs.right_id is None)

    @staticmethod
    def _show(a: DiffSide, b: DiffSide, d: TextDiff, no_left: bool, no_right: bool) -> None:
        a.show_runs(d.left, d.left_cut, "(no such call in the left run)" if no_left else None, d.coarse)
        b.show_runs(d.right, d.right_cut, "(no such call in the right run)" if no_right else None, d.coarse)
