"""Text from OpenCode (titles, agent names, descriptions, reasons) shown as plain text in every Qt widget.

Tooltips, labels and message boxes guess whether their text is HTML (`Qt::mightBeRichText`), so a description
holding `<h1>BIG</h1><img src=x>` would be rendered. Labels and message boxes take `Qt.TextFormat.PlainText`;
QToolTip has no format setting, so a tooltip is escaped and wrapped in a paragraph that keeps the newlines:
Qt takes it as rich text that holds nothing but the characters. Every tooltip, label with changing text and
message box in dashboard/ goes through this module (a test parses the sources and checks it).
"""

from __future__ import annotations

import html

from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtWidgets import QLabel, QMessageBox, QToolTip, QWidget

TOOLTIP_MAX_CHARS = 2000  # a tooltip is a glance, and laying out megabytes of it would freeze the window


def tooltip(text: str | None) -> str:
    """`text` as a tooltip string that Qt shows literally: escaped, newlines and spaces kept, long text cut.

    Empty text stays empty, so no empty tooltip box appears."""
    if not text:
        return ""
    if len(text) > TOOLTIP_MAX_CHARS:
        text = text[:TOOLTIP_MAX_CHARS] + "…"
    return f"<p style='white-space:pre-wrap'>{html.escape(text, quote=False)}</p>"


def show_tooltip(pos: QPoint, text: str | None, widget: QWidget | None) -> None:
    """`QToolTip.showText` for text that must not be read as HTML (from a delegate's helpEvent)."""
    QToolTip.showText(pos, tooltip(text), widget)


def label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows its text as it is, whatever it looks like."""
    widget = QLabel(parent)
    widget.setTextFormat(Qt.TextFormat.PlainText)
    widget.setText(text)
    return widget


def message_box(parent: QWidget | None, title: str, text: str,
                icon: QMessageBox.Icon = QMessageBox.Icon.Information) -> QMessageBox:
    """A message box (call `exec()` or `open()` on it) whose text is shown as it is.

    The static `QMessageBox.information()` and friends guess the format, so they are not used."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    return box
