"""The filter bar: source (which agent's history), session, date range, agent, status, text search, "only sessions
with delegations"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta

from PyQt6.QtCore import QDate, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from analytics import format as fmt
from analytics.models import SOURCES
from analytics.patterns import PatternError, parse
from analytics.queries.trace_queries import SessionRow, TraceFilter
from dashboard.widgets import plain
from dashboard.widgets.palette import BAD_INPUT_STYLE

PRESETS = ("All time", "Today", "Last 7 days", "Last 30 days", "Custom…")
STATUSES = ("Any status", "completed", "error", "running")
SEARCH_DELAY_MS = 250
PATTERN_HELP = ("Find delegation chains. A -> B: A delegated to B. * is any one agent, ** any number.\n"
                "Conditions in brackets: a status (completed, error, running) or a duration (>60s, <=2m, >500ms).\n"
                "Examples:  tester -> refactoring    coordinator -> * -> tester    tester[error]    *[>60s]")


class FilterBar(QWidget):
    """Emits `changed` with the new TraceFilter when the user changes a filter (text search is debounced).

    Signals:
        changed(TraceFilter)
    """

    changed = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = QComboBox(minimumContentsLength=28)
        self.session.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.session.addItem("All sessions", None)
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addDays(-7), calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.date_to = QDateEdit(today, calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.source = QComboBox()
        self.source.addItem("All sources", None)  # then the agents whose sessions the store holds
        self.source.setToolTip("Sessions of one agent's history: OpenCode, Claude Code or Codex")
        self.agent = QComboBox()
        self.agent.addItem("All agents", None)
        self.status = QComboBox()
        for s in STATUSES:
            self.status.addItem(s, None if s == STATUSES[0] else s)
        self.search = QLineEdit(placeholderText="Search prompts and outputs…", clearButtonEnabled=True)
        self.search.setMinimumWidth(200)
        self.only_delegations = QCheckBox("Only sessions with delegations")
        self.pattern = QLineEdit(placeholderText="Delegation pattern, e.g.  tester -> refactoring   "
                                                "coordinator -> * -> tester   *[error]   *[>60s]",
                                 clearButtonEnabled=True)
        self.pattern.setToolTip(plain.tooltip(PATTERN_HELP))
        self.anomalies_only = QCheckBox("Anomalies only")
        self.anomalies_only.setToolTip("Calls and sessions far above what the same agent usually takes (⚠)")
        self.pattern_error: str | None = None
        self.clock: Callable[[], datetime] = datetime.now  # what "today" is for the date presets
        self._debounce = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._debounce.timeout.connect(self.apply)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        layout, second = QHBoxLayout(), QHBoxLayout()
        rows.addLayout(layout)
        rows.addLayout(second)
        for label, widget in (("Source", self.source), ("Session", self.session), ("Date", self.preset),
                              (None, self.date_from),
                              (None, self.date_to), ("Agent", self.agent), ("Status", self.status)):
            if label:
                layout.addWidget(plain.label(label))
            layout.addWidget(widget)
        layout.addWidget(self.search, 1)
        second.addWidget(plain.label("Pattern"))
        second.addWidget(self.pattern, 1)
        second.addWidget(self.anomalies_only)
        second.addWidget(self.only_delegations)
        self._set_custom_visible(False)
        for combo in (self.source, self.session, self.agent, self.status):
            combo.activated.connect(self.apply)
        self.preset.activated.connect(self._on_preset)
        self.date_from.dateChanged.connect(self.apply)
        self.date_to.dateChanged.connect(self.apply)
        self.search.textChanged.connect(lambda _text: self._debounce.start())
        self.only_delegations.toggled.connect(self.apply)
        self.anomalies_only.toggled.connect(self.apply)
        self.pattern.textChanged.connect(self._check_pattern)
        self.pattern.returnPressed.connect(self.apply)

    def _set_custom_visible(self, visible: bool) -> None:
        self.date_from.setVisible(visible)
        self.date_to.setVisible(visible)

    def _on_preset(self) -> None:
        self._set_custom_visible(self.preset.currentText() == "Custom…")
        self.apply()

    def _check_pattern(self, text: str) -> bool:
        """Colour the pattern field while typing; a valid pattern (or none) is applied after a pause."""
        try:
            if text.strip():
                parse(text)
        except PatternError as exc:
            self.pattern.setStyleSheet(BAD_INPUT_STYLE)
            self.pattern.setToolTip(plain.tooltip(str(exc)))  # it quotes what was typed
            self.pattern_error = str(exc)
            return False
        self.pattern.setStyleSheet("")
        self.pattern.setToolTip(plain.tooltip(PATTERN_HELP))
        self.pattern_error = None
        self._debounce.start()
        return True

    def apply(self) -> None:
        """Emit the filter as it is now (what a picker, Enter in the pattern or the end of a pause in typing
        does): unless the pattern does not parse, which is never applied."""
        self._debounce.stop()
        if self.pattern_error:
            return
        self.changed.emit(self.query())

    def query(self, now: datetime | None = None) -> TraceFilter:
        """The filter the widgets show. Dates are local days; the bounds are epoch milliseconds."""
        now = now or self.clock()
        start = end = None
        preset = self.preset.currentText()
        midnight = datetime.combine(now.date(), time())
        if preset == "Today":
            start = midnight
        elif preset == "Last 7 days":
            start = midnight - timedelta(days=6)
        elif preset == "Last 30 days":
            start = midnight - timedelta(days=29)
        elif preset == "Custom…":
            start = datetime.combine(self.date_from.date().toPyDate(), time())
            end = datetime.combine(self.date_to.date().toPyDate(), time()) + timedelta(days=1)
        return TraceFilter(
            session_id=self.session.currentData(),
            start_ms=int(start.timestamp() * 1000) if start else None,
            end_ms=int(end.timestamp() * 1000) if end else None,
            agent=self.agent.currentData(),
            status=self.status.currentData(),
            text=self.search.text().strip() or None,
            with_delegations=self.only_delegations.isChecked(),
            pattern=None if self.pattern_error else (self.pattern.text().strip() or None),
            anomalies_only=self.anomalies_only.isChecked(),
            source=self.source.currentData(),
        )

    def set_choices(self, sessions: list[SessionRow], agents: list[str], sources: list[str] | None = None) -> None:
        """Refill the session and agent pickers, keeping what is selected; with several histories in the store,
        each session says which agent ran it."""
        several = len({s.source for s in sessions}) > 1
        self._refill(self.session, "All sessions", [
            (f"{s.title or s.session_id} — {fmt.when(s.created_at)[:16]} — {s.delegation_count} delegation"
             f"{'' if s.delegation_count == 1 else 's'}" + (f" — {fmt.source_label(s.source)}" if several else ""),
             s.session_id) for s in sessions])
        self._refill(self.agent, "All agents", [(a, a) for a in agents])
        if sources is not None:
            self._refill(self.source, "All sources", [(SOURCES.get(k, k), k) for k in sources])

    @staticmethod
    def _refill(combo: QComboBox, first: str, items: list[tuple[str, str]]) -> None:
        current = combo.currentData()
        if [combo.itemData(i) for i in range(1, combo.count())] == [v for _, v in items]:
            return
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(first, None)
        for text, value in items:
            combo.addItem(text, value)
        index = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)

    # -- remembered between runs ---------------------------------------------------------------------

    def state(self) -> dict:
        return {"session": self.session.currentData(), "preset": self.preset.currentText(),
                "from": self.date_from.date().toString("yyyy-MM-dd"),
                "to": self.date_to.date().toString("yyyy-MM-dd"), "agent": self.agent.currentData(),
                "status": self.status.currentData(), "text": self.search.text(),
                "only_delegations": self.only_delegations.isChecked(), "pattern": self.pattern.text(),
                "anomalies_only": self.anomalies_only.isChecked(), "source": self.source.currentData()}

    def restore(self, state: dict) -> None:
        """Put back a saved state without emitting (the caller queries once afterwards)."""
        widgets = (self.source, self.session, self.preset, self.date_from, self.date_to, self.agent, self.status,
                   self.search, self.only_delegations, self.pattern, self.anomalies_only)
        for w in widgets:
            w.blockSignals(True)
        try:
            if state.get("preset") in PRESETS:
                self.preset.setCurrentText(state["preset"])
            for key, edit in (("from", self.date_from), ("to", self.date_to)):
                if state.get(key):
                    edit.setDate(QDate.fromString(state[key], "yyyy-MM-dd"))
            for key, combo in (("source", self.source), ("session", self.session), ("agent", self.agent),
                               ("status", self.status)):
                value = state.get(key)
                if value is not None:
                    if combo.findData(value) < 0:
                        # the real label arrives with the first data
                        combo.addItem(SOURCES.get(value, str(value)) if key == "source" else str(value), value)
                    combo.setCurrentIndex(combo.findData(value))
            self.search.setText(state.get("text") or "")
            self.only_delegations.setChecked(bool(state.get("only_delegations")))
            self.anomalies_only.setChecked(bool(state.get("anomalies_only")))
            self.pattern.setText(state.get("pattern") or "")
            try:
                parse(self.pattern.text()) if self.pattern.text().strip() else None
            except PatternError:
                self.pattern.clear()
            self._set_custom_visible(self.preset.currentText() == "Custom…")
        finally:
            for w in widgets:
                w.blockSignals(False)
