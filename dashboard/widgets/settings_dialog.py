"""The settings dialog: which agents' histories are read, retention (with a cleanup now), refresh interval,
terminal command template, and the OpenTelemetry backend to send sessions to (endpoint, project, what of the
texts a push sends; headers stay in the settings file)."""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from analytics.models import SOURCES
from analytics.settings import (
    CONTENT_MODES,
    DEFAULT_CUT_KB,
    MAX_CUT_KB,
    MAX_REFRESH_SECONDS,
    MAX_RETENTION_DAYS,
    MIN_REFRESH_SECONDS,
    Settings,
    cut_problem,
    refresh_problem,
    retention_problem,
)
from analytics.terminal import TerminalError, template_argv
from dashboard.widgets import plain
from dashboard.widgets.palette import PROBLEM_STYLE

# how a push's texts are offered, here and in File › Send
CONTENT_LABELS = {"cut": "Texts cut to", "full": "Texts in full (up to 1 MB each)",
                  "none": "No texts: figures and structure only"}

TEMPLATE_HELP = (
    "For example: kitty --directory {dir} {resume}\n"
    "{resume} is the agent's own command: opencode --session ID, claude --resume ID or codex resume ID.\n"
    "{cmd} is the whole command (cd -- DIR && opencode --session ID), already quoted for a shell: safe anywhere,\n"
    "as in: xterm -e sh -c {cmd}\n"
    "{dir} and {id} are the raw values. As a whole argument (or --option={dir}) each stays one argument,\n"
    "whatever it holds. Inside a shell command (sh -c \"cd {dir} && opencode --session {id}\") raw values\n"
    "would not be safe, so agent-traces shell-quotes them there: write them bare, not in quotes of your own.")


class SettingsDialog(QDialog):
    """Edits a copy of the settings; `settings()` returns the result when accepted.

    The fields only hold valid values (the spin boxes have the settings' ranges, and Save is disabled while the
    terminal command does not parse); `accept()` checks the result again, so nothing invalid is ever saved.

    Signals:
        cleanupRequested(int): "Clean up now" with this many days.
    """

    cleanupRequested = pyqtSignal(int)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("agent-traces settings")
        # a value Settings.load did not check (settings made in code) falls back to its default here too
        days = settings.retention_days if retention_problem(settings.retention_days) is None else None
        refresh = settings.refresh_seconds if refresh_problem(settings.refresh_seconds) is None else 5.0
        template = settings.terminal_template if isinstance(settings.terminal_template, str) else ""
        self.keep_all = QCheckBox("Keep everything")
        self.days = QSpinBox(minimum=1, maximum=MAX_RETENTION_DAYS, suffix=" days")
        self.days.setValue(days or 90)
        self.keep_all.setChecked(days is None)
        self.keep_all.toggled.connect(lambda on: self.days.setEnabled(not on))
        self.days.setEnabled(days is not None)
        self.clean_now = QPushButton("Clean up now")
        self.clean_now.setToolTip("Remove the sessions older than the retention from the trace store now; they "
                                  "are not imported again until `agent-traces cleanup --forget` (OpenCode's own "
                                  "data is never touched)")
        self.clean_now.clicked.connect(lambda: self.cleanupRequested.emit(self.days.value()))
        self.keep_all.toggled.connect(lambda on: self.clean_now.setEnabled(not on))
        self.clean_now.setEnabled(days is not None)
        retention = QHBoxLayout()
        for w in (self.keep_all, self.days, self.clean_now):
            retention.addWidget(w)
        self.refresh = QDoubleSpinBox(minimum=MIN_REFRESH_SECONDS, maximum=MAX_REFRESH_SECONDS, decimals=0,
                                      suffix=" s")
        self.refresh.setValue(refresh)
        # which histories are read (found where each agent keeps its own), from the next start
        self.read = {kind: QCheckBox(name) for kind, name in SOURCES.items()}
        reading = QHBoxLayout()
        for kind, box in self.read.items():
            box.setChecked(kind not in settings.sources_off)
            box.setToolTip("Read this agent's history (found with no configuration); takes effect at the next "
                           "start. Its sessions already read stay in the trace store.")
            reading.addWidget(box)
        self.template = QLineEdit(template or "")
        self.template.setPlaceholderText("automatic: iTerm2 / Terminal.app on macOS, $TERMINAL elsewhere")
        self.template.setToolTip(plain.tooltip(TEMPLATE_HELP))  # it holds && and quotes
        self.problem = plain.label()  # the error quotes the template typed
        self.problem.setStyleSheet(PROBLEM_STYLE)
        self.template.textChanged.connect(self._check)
        self.base = settings
        self.otlp_endpoint = QLineEdit(settings.otlp_endpoint or "")
        self.otlp_endpoint.setPlaceholderText("e.g. http://localhost:6006 (Phoenix) or http://collector:4318")
        self.otlp_project = QLineEdit(settings.otlp_project)
        self.otlp_content = QComboBox()
        for mode in CONTENT_MODES:
            self.otlp_content.addItem(CONTENT_LABELS[mode], mode)
        self.otlp_content.setCurrentIndex(max(self.otlp_content.findData(settings.otlp_content), 0))
        self.otlp_cut_kb = QSpinBox(minimum=1, maximum=MAX_CUT_KB, suffix=" KB")
        self.otlp_cut_kb.setValue(settings.otlp_cut_kb if cut_problem(settings.otlp_cut_kb) is None
                                  else DEFAULT_CUT_KB)
        self.otlp_content.currentIndexChanged.connect(
            lambda _i: self.otlp_cut_kb.setEnabled(self.otlp_content.currentData() == "cut"))
        self.otlp_cut_kb.setEnabled(self.otlp_content.currentData() == "cut")
        content = QHBoxLayout()
        content.addWidget(self.otlp_content)
        content.addWidget(self.otlp_cut_kb)
        form = QFormLayout(self)
        form.addRow("Read", reading)
        form.addRow("Retention", retention)
        form.addRow("Refresh every", self.refresh)
        form.addRow("Terminal command", self.template)
        form.addRow("OpenTelemetry endpoint", self.otlp_endpoint)
        form.addRow("Project name", self.otlp_project)
        form.addRow("Texts a push sends", content)
        form.addRow("", self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._check(self.template.text())

    def _check(self, text: str) -> None:
        """Say what is wrong with the terminal command, and allow Save only when nothing is."""
        try:
            if text.strip():
                template_argv(text, "/dir", "ses_x", "cmd")
            self.problem.setText("")
            ok = True
        except TerminalError as exc:
            self.problem.setText(str(exc))
            ok = False
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(ok)

    def accept(self) -> None:
        """Close with Save only if every value is valid; otherwise say why and stay open."""
        self._check(self.template.text())
        bad = self.settings().invalid()
        if bad:
            self.problem.setText("; ".join(bad))
            return
        if self.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled():
            super().accept()

    def settings(self) -> Settings:
        """The values in the fields, as settings."""
        return Settings(retention_days=None if self.keep_all.isChecked() else self.days.value(),
                        refresh_seconds=float(self.refresh.value()),
                        terminal_template=self.template.text().strip() or None,
                        otlp_endpoint=self.otlp_endpoint.text().strip() or None,
                        otlp_headers=dict(self.base.otlp_headers),  # kept as the file has them
                        otlp_project=self.otlp_project.text().strip(),
                        otlp_content=self.otlp_content.currentData(), otlp_cut_kb=self.otlp_cut_kb.value(),
                        sources_off=[kind for kind, box in self.read.items() if not box.isChecked()])
