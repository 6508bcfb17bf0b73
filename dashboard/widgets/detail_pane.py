"""The read-only detail pane: where a trace sits, what it cost, and its full prompt and answer.

Every text is shown as plain text (labels in PlainText format, `setPlainText` for the prompts), so HTML,
ANSI escapes and scripts in a prompt are displayed literally and never interpreted.

A prompt of megabytes would freeze the window while Qt lays it out, so a text section shows its first
`HEAD_CHARS` characters and says how much more there is, with a button that shows all of it; Copy always copies
the whole text. A refresh that brings the same text again leaves the widget alone.
"""

from __future__ import annotations

import json

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFontDatabase, QGuiApplication, QTextCursor, QTextDocument, QTextOption
from PyQt6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from analytics import format as fmt
from analytics.models import AgentSpan
from analytics.queries.time_split import split_note, split_text
from analytics.queries.trace_queries import TraceDetails
from dashboard.widgets import plain
from dashboard.widgets.time_split_bar import TimeSplitBar

HEAD_CHARS = 200_000  # shown at first: a few milliseconds to lay out
# A run of this many characters without a space is wrapped anywhere: QPlainTextEdit's default (at word boundaries,
# else anywhere) lays such a run out in quadratic time.
LONG_RUN = 1000
FIND_ALL, FIND_SHOWN = "Find…", "Find in what is shown…"
TIME_FIELD = "Where the time went"
FIELDS = ("Agent", "Chain", "Status", "Steps", "Description", "Started", "Duration", TIME_FIELD, "Tokens",
          "Reasoning / cache", "Cost", "Model", "Tools", "Session", "Directory")
STEP_FIELDS = ("Status", "Description", "Started", "Duration", "Tokens", "Reasoning / cache", "Cost", "Model")


def status_text(status: str) -> str:
    """A status as the pane says it: "✓ completed", "⟳ running (no answer yet)"."""
    return fmt.status_label(status) + (" (no answer yet)" if status == "running" else "")


def pretty_json(text: str | None) -> str | None:
    """A tool call's input, indented for reading (as it is, if it is not JSON, or nested deeper than indenting
    it in Python's own JSON code may go: it counts its levels against the recursion limit)."""
    if not text:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text


def _plain_label() -> QLabel:
    """A value of the form: plain, selectable, wrapped."""
    label = plain.label()
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def size_text(n_bytes: int) -> str:
    """A byte count as people read it: 512 bytes, 195 KB, 9.8 MB."""
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.0f} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def utf8_size(text: str) -> int:
    """The text's size in UTF-8 bytes (no copy for ASCII text, which Python knows without looking)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def rest_size(text: str, end: int, head_bytes: int) -> str:
    """The size of `text[end:]` in UTF-8: exact for ASCII text; otherwise estimated from the head's bytes per
    character ("about"), since encoding megabytes would take half of a selection's time."""
    rest = len(text) - end
    if text.isascii():
        return size_text(rest)
    return f"about {size_text(round(rest * head_bytes / max(end, 1)))}"


def head_end(text: str, limit: int = HEAD_CHARS) -> int:
    """Where the shown start of a long text ends: at `limit`, or at a line end in the last tenth before it."""
    cut = text.rfind("\n", limit - limit // 10, limit)
    return cut + 1 if cut >= 0 else limit


class TextSection(QWidget):
    """A collapsible titled block holding one long text, with copy and find.

    A text longer than `HEAD_CHARS` is shown up to `head_end()`, with a line saying how much more there is and a
    "Show all" button; find searches what is shown, Copy copies the whole text.
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.toggle = QToolButton(text=title, checkable=True, checked=True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.toggle.toggled.connect(self.set_expanded)
        self.size_label = plain.label()
        self.size_label.setStyleSheet("color: palette(mid);")
        self.find_box = QLineEdit(placeholderText=FIND_ALL, clearButtonEnabled=True)
        self.find_box.setMaximumWidth(200)
        self.find_box.returnPressed.connect(self.find_next)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip(plain.tooltip(f"Copy the whole {title.lower()} to the clipboard"))
        self.copy_button.clicked.connect(self.copy)
        self.copy_button.setEnabled(False)
        self.notice = plain.label()  # "Showing the first 195 KB of 10.0 MB…", while a long text is cut
        self.notice.setWordWrap(True)
        self.show_all_button = QPushButton()
        self.show_all_button.clicked.connect(self.show_all)
        self.more = QWidget()
        more = QHBoxLayout(self.more)
        more.setContentsMargins(0, 0, 0, 0)
        more.addWidget(self.notice, 1)
        more.addWidget(self.show_all_button)
        self.more.setVisible(False)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.toggle)
        head.addWidget(self.size_label)
        head.addStretch(1)
        head.addWidget(self.find_box)
        head.addWidget(self.copy_button)
        self.edit = QPlainTextEdit(readOnly=True)
        self.edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.edit.setUndoRedoEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.more)
        layout.addWidget(self.edit, 1)
        self._text: str | None = None  # the whole text (what Copy copies); the edit may hold only its start
        self._cut = False

    def set_text(self, text: str | None, placeholder: str = "") -> None:
        """Show this text, or only its start if it is long. The same text again changes nothing (a refresh
        brings the selected trace's prompt again: laying it out anew would cost time and the scroll position)."""
        if placeholder != self.edit.placeholderText():
            self.edit.setPlaceholderText(placeholder)
        if text == self._text:
            return
        self._text = text
        whole = text or ""
        self.size_label.setText("" if text is None else f"{len(whole):,} characters")
        self.copy_button.setEnabled(bool(whole))
        self._cut = len(whole) > HEAD_CHARS
        if not self._cut:
            self._show(whole)
            self._set_cut_notice(None)
            return
        end = head_end(whole)
        head = whole[:end]
        head_size = utf8_size(head)
        rest = rest_size(whole, end, head_size)
        self._show(head)
        self._set_cut_notice(f"Showing the first {size_text(head_size)}; {rest} more are not shown. "
                             "Find searches only what is shown; Copy copies all of it.", f"Show all ({rest} more)")

    def _show(self, text: str) -> None:
        long_run = max(map(len, text.split()), default=0) >= LONG_RUN  # faster than a regex, in C
        self.edit.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere if long_run
                                  else QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.edit.setPlainText(text)

    def _set_cut_notice(self, notice: str | None, button: str = "") -> None:
        if notice is not None:
            self.notice.setText(notice)
            self.show_all_button.setText(button)
        self.more.setVisible(notice is not None and self.toggle.isChecked())
        self.find_box.setPlaceholderText(FIND_SHOWN if notice is not None else FIND_ALL)

    def show_all(self) -> None:
        """Show the whole text (on request: a text of megabytes takes a while to lay out)."""
        if not self._cut or self._text is None:
            return
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self._show(self._text)
        finally:
            QGuiApplication.restoreOverrideCursor()
        self._cut = False
        self._set_cut_notice(None)

    def is_cut(self) -> bool:
        """Whether only the start of the text is shown."""
        return self._cut

    def text(self) -> str:
        """The whole text, including what is not shown (what Copy copies)."""
        return self._text or ""

    def shown_text(self) -> str:
        """What the text box holds: the whole text, or its start while it is cut."""
        return self.edit.toPlainText()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.edit.setVisible(expanded)
        self.find_box.setVisible(expanded)
        self.more.setVisible(expanded and self._cut)
        layout = self.parentWidget().layout() if self.parentWidget() else None
        if layout is not None:
            layout.setStretchFactor(self, 1 if expanded else 0)

    def copy(self) -> None:
        """The whole text to the clipboard, also the part not shown."""
        QGuiApplication.clipboard().setText(self.text())

    def find_next(self) -> bool:
        """Select the next match of the find box (wrapping to the top), ignoring case, in what is shown."""
        needle = self.find_box.text()
        if not needle:
            return False
        if self.edit.find(needle):
            return True
        cursor = self.edit.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.Start)
        self.edit.setTextCursor(cursor)
        return self.edit.find(needle, QTextDocument.FindFlag(0))


class DetailPane(QWidget):
    """Shows one trace in full, or one step of it (`show_step`): a tool call's input and output, an LLM call's
    usage.

    Signals:
        openRequested(): the user asked to reopen the trace's session in a terminal.
    """

    openRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = plain.label("Select a trace")
        font = self.heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.heading.setFont(font)
        self.open_button = QPushButton("Open in terminal")
        self.open_button.setToolTip("Reopen this session in a terminal with its agent's command (double-click)")
        self.open_button.clicked.connect(self.openRequested)
        self.open_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.open_button)
        self.values = {name: _plain_label() for name in FIELDS}
        self.time_bar = TimeSplitBar()  # under the "Where the time went" figures
        time_box = QWidget()
        time_layout = QVBoxLayout(time_box)
        time_layout.setContentsMargins(0, 0, 0, 0)
        time_layout.setSpacing(2)
        time_layout.addWidget(self.values[TIME_FIELD])
        time_layout.addWidget(self.time_bar)
        self.field_widgets: dict[str, QWidget] = {**self.values, TIME_FIELD: time_box}
        self.form = form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in FIELDS:
            caption = plain.label(name)
            caption.setStyleSheet("color: palette(mid);")
            form.addRow(caption, self.field_widgets[name])
        line = QFrame(frameShape=QFrame.Shape.HLine)
        self.input = TextSection("Prompt input")
        self.output = TextSection("Prompt output")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(line)
        layout.addWidget(self.input, 1)
        layout.addWidget(self.output, 1)
        self.details: TraceDetails | None = None
        self.step: AgentSpan | None = None

    def _show_field(self, name: str, visible: bool) -> None:
        self.form.setRowVisible(self.field_widgets[name], visible)

    def _titles(self, input_title: str, output_title: str) -> None:
        self.input.toggle.setText(input_title)
        self.output.toggle.setText(output_title)

    def show_details(self, d: TraceDetails | None) -> None:
        self.details, self.step = d, None
        self._titles("Prompt input", "Prompt output")
        for name in FIELDS:
            self._show_field(name, True)
        self.open_button.setEnabled(d is not None)
        if d is None:
            self.heading.setText("Select a trace")
            for label in self.values.values():
                label.clear()
            self.time_bar.set_split(None)
            self.input.set_text(None)
            self.output.set_text(None)
            return
        t = d.trace
        kind = "session" if t.kind == "session" else "delegation"
        self.heading.setText(f"{t.subagent_type} — {kind}")
        running = t.status == "running"
        v = self.values
        v["Agent"].setText(fmt.source_label(t.source, d.version))
        v["Chain"].setText(" › ".join(d.chain))
        v["Status"].setText(status_text(t.status))
        v["Steps"].setText(fmt.steps_text(*d.steps))
        self._show_field("Steps", any(d.steps))
        v["Description"].setText(t.description or "—")
        v["Started"].setText(fmt.when(t.started_at))
        split = d.time
        stopped = split.stopped_ms if split is not None else None
        v["Duration"].setText(f"interrupted after {fmt.duration(stopped - t.started_at)} "
                              f"({fmt.source_label(t.source)} stopped writing)"
                              if running and stopped is not None else
                              "still running" if running else fmt.duration(t.duration_ms))
        v[TIME_FIELD].setText("" if split is None else split_text(split) + split_note(split))
        self.time_bar.set_split(split)
        self._show_field(TIME_FIELD, split is not None)
        own = f"{t.tokens_in:,} in / {t.tokens_out:,} out"
        with_children = f"  ·  with delegations {d.total_tokens_in:,} / {d.total_tokens_out:,}" if d.descendants else ""
        v["Tokens"].setText(own + with_children)
        v["Reasoning / cache"].setText(f"{t.tokens_reasoning:,} reasoning · {t.tokens_cache_read:,} cache read · "
                                       f"{t.tokens_cache_write:,} cache write")
        self._show_field("Reasoning / cache", bool(t.tokens_reasoning or t.tokens_cache_read or t.tokens_cache_write))
        v["Cost"].setText(fmt.cost(t.cost_usd, t.unpriced_calls) + (
            f"  ·  with delegations {fmt.cost(d.total_cost_usd, d.total_unpriced_calls)}" if d.descendants else ""))
        v["Cost"].setToolTip(plain.tooltip(fmt.unpriced_note(d.total_unpriced_calls)))
        v["Model"].setText(f"{t.provider}/{t.model}" if t.model else "—")
        v["Tools"].setText(", ".join(t.tools_used) or "—")
        session = t.session_id if t.kind == "session" else f"{t.child_session_id or '(none)'} (called from " \
                                                            f"{t.session_id})"
        v["Session"].setText(session)
        v["Directory"].setText(d.directory or "—")
        self.input.set_text(t.prompt_input)
        placeholder = "Still running: no answer yet." if running else "No answer was recorded."
        self.output.set_text(t.prompt_output, placeholder)

    def set_reopen(self, command: str, note: str | None = None) -> None:
        """What "Open in terminal" runs for the trace shown (`command`, the shell line), and why it opens another
        session than the trace's own (`note`: a Claude Code subagent opens the session that ran it)."""
        text = f"Reopen in a terminal (double-click the row): {command}"
        self.open_button.setToolTip(plain.tooltip(f"{text}\n{note}" if note else text))

    def show_step(self, s: AgentSpan) -> None:
        """One step: a tool call's input (JSON, indented) and output or error, or an LLM call's usage."""
        self.details, self.step = None, s
        self.open_button.setEnabled(True)  # opens the session of the step's trace
        tool = s.kind == "tool"
        self.heading.setText(f"{s.name} — {'tool call' if tool else 'LLM call'}")
        for name in FIELDS:
            self._show_field(name, name in STEP_FIELDS)
        v = self.values
        running = s.status == "running"
        v["Status"].setText(status_text(s.status))
        v["Description"].setText(s.title or "—")
        v["Started"].setText(fmt.when(s.started_at))
        v["Duration"].setText("still running" if running or s.duration_ms is None else fmt.duration(s.duration_ms))
        v["Tokens"].setText(f"{s.tokens_in:,} in / {s.tokens_out:,} out")
        v["Reasoning / cache"].setText(f"{s.tokens_reasoning:,} reasoning · {s.tokens_cache_read:,} cache read · "
                                       f"{s.tokens_cache_write:,} cache write")
        v["Cost"].setText(fmt.step_cost(s.cost_usd))
        v["Cost"].setToolTip(plain.tooltip(fmt.unpriced_note(1 if s.cost_usd is None and not tool else 0)))
        v["Model"].setText(s.name if not tool else "—")
        for name in ("Tokens", "Reasoning / cache", "Cost", "Model"):
            self._show_field(name, not tool)
        if tool:
            self._titles("Tool input", "Tool output")
            self.input.set_text(pretty_json(s.input))
            self.output.set_text(s.output, "Still running: no output yet." if running else "No output was recorded.")
        else:
            self._titles("LLM input", "LLM output")
            self.input.set_text(s.input, "The request is not stored.")
            self.output.set_text(s.output, "Still running." if running else "No text was recorded.")
