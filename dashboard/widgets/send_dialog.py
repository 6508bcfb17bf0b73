"""File › Send to OpenTelemetry backend: what will leave the machine, said before it does, then the send itself,
with its progress and a Cancel.

The dialog has a thread of its own (a QThreadPool of one, owned by the dialog), never the window's read
worker: a backend that answers slowly or not at all keeps row details and refreshes waiting no longer than
they would otherwise. First it counts what would go to the endpoint with the chosen content (a dry run:
sessions, spans, bytes, what of the texts), again whenever the endpoint or the content changes; Send sends
exactly that, batch by batch, and Cancel stops it at once (what the backend accepted so far stays recorded).
Each request carries a generation number, and a result older than the latest is dropped.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import suppress
from pathlib import Path

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from analytics.errors import AgentTracesError
from analytics.otlp import Content
from analytics.push import Endpoint, Pusher, PushReport
from analytics.settings import CONTENT_MODES, MAX_CUT_KB, Settings
from dashboard.widgets import plain
from dashboard.widgets.settings_dialog import CONTENT_LABELS

log = logging.getLogger(__name__)



class _Signals(QObject):
    planned = pyqtSignal(int, object)  # generation, PushReport of a dry run
    progress = pyqtSignal(int, object)  # generation, PushReport so far
    finished = pyqtSignal(int, object)  # generation, PushReport
    failed = pyqtSignal(int, str)  # generation, one sentence


class _Job(QRunnable):
    """A dry run or a send, on the dialog's own thread."""

    def __init__(self, signals: _Signals, generation: int, pusher: Pusher, sessions: list[str],
                 dry_run: bool) -> None:
        super().__init__()
        self.signals, self.generation, self.pusher = signals, generation, pusher
        self.sessions, self.dry_run = sessions, dry_run

    def run(self) -> None:
        try:
            if not self.dry_run:
                self.pusher.on_batch = lambda report: self._emit("progress", self.generation, report)
            report = self.pusher.push(sessions=self.sessions, force=True, dry_run=self.dry_run)
            self._emit("planned" if self.dry_run else "finished", self.generation, report)
        except AgentTracesError as exc:
            self._emit("failed", self.generation, str(exc))
        except Exception as exc:  # a bug must not kill the thread silently
            log.error("send failed:\n%s", traceback.format_exc())
            self._emit("failed", self.generation, f"Unexpected error: {exc}")
        finally:
            self.pusher.close()

    def _emit(self, name: str, *args: object) -> None:
        with suppress(RuntimeError):  # the dialog is gone
            getattr(self.signals, name).emit(*args)


class SendDialog(QDialog):
    """Sends session trees (whole) to an OpenTelemetry backend, saying first what goes.

    Signals:
        planned(object): what would go with the current choices (a PushReport of a dry run).
        sent(str): the send is over: what happened, in one line (also when stopped or refused).
    """

    planned = pyqtSignal(object)
    sent = pyqtSignal(str)

    def __init__(self, db_path: Path, sessions: list[str], settings: Settings, endpoint: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send to OpenTelemetry backend")
        self.db_path, self.sessions, self.settings = db_path, sessions, settings
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.signals = _Signals(self)
        self.signals.planned.connect(self._planned)
        self.signals.progress.connect(self._progress)
        self.signals.finished.connect(self._finished)
        self.signals.failed.connect(self._failed)
        self.generation = 0
        self.pusher: Pusher | None = None  # the one sending, while it does
        self.plan: PushReport | None = None
        self.result: PushReport | None = None

        self.endpoint = QLineEdit(endpoint or settings.otlp_endpoint or "")
        self.endpoint.setPlaceholderText("e.g. http://localhost:6006 (Phoenix) or http://collector:4318")
        self.content = QComboBox()
        for mode in CONTENT_MODES:
            self.content.addItem(CONTENT_LABELS[mode], mode)
        self.content.setCurrentIndex(max(self.content.findData(settings.otlp_content), 0))
        self.cut_kb = QSpinBox(minimum=1, maximum=MAX_CUT_KB, suffix=" KB")
        self.cut_kb.setValue(settings.otlp_cut_kb if 1 <= settings.otlp_cut_kb <= MAX_CUT_KB else 8)
        what = QHBoxLayout()
        what.addWidget(self.content)
        what.addWidget(self.cut_kb)
        self.summary = plain.label()  # says the URL typed: any characters
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.buttons = QDialogButtonBox()
        self.send_button = QPushButton("Send")
        self.cancel_button = QPushButton("Cancel")
        self.buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.send_button.clicked.connect(self.send)
        self.cancel_button.clicked.connect(self.cancel)
        form = QFormLayout(self)
        form.addRow("OTLP/HTTP endpoint", self.endpoint)
        form.addRow("What of the texts", what)
        form.addRow("What goes", self.summary)
        form.addRow("", self.progress)
        form.addRow(self.buttons)
        self.endpoint.editingFinished.connect(self.recount)
        self.content.currentIndexChanged.connect(self.recount)
        self.cut_kb.valueChanged.connect(self.recount)
        self.resize(620, self.sizeHint().height())
        self.recount()

    # -- what goes ------------------------------------------------------------------------------------------

    def choice(self) -> Content:
        mode = self.content.currentData()
        self.cut_kb.setEnabled(mode == "cut")
        return Content(mode, self.cut_kb.value())

    def _pusher(self) -> Pusher:
        """A pusher for what the fields say (AgentTracesError, with the reason, if they say nothing sendable)."""
        url = self.endpoint.text().strip()
        if not url:
            raise AgentTracesError("Give the endpoint of an OpenTelemetry backend (OTLP/HTTP).")
        endpoint = Endpoint(url, dict(self.settings.otlp_headers), self.settings.otlp_project)
        return Pusher(self.db_path, endpoint, content=self.choice())

    def recount(self) -> int:
        """Count again what would go (on the dialog's thread); returns the request's generation."""
        self.generation += 1
        self.plan = None
        self.send_button.setEnabled(False)
        try:
            pusher = self._pusher()
        except AgentTracesError as exc:
            self.summary.setText(str(exc))
            return self.generation
        self.summary.setText(f"Counting what would go to {pusher.endpoint.shown}…")
        self.pool.start(_Job(self.signals, self.generation, pusher, self.sessions, dry_run=True))
        return self.generation

    def _planned(self, generation: int, report: PushReport) -> None:
        if generation != self.generation:
            return
        self.plan = report
        self.summary.setText(report.plan_line("Send will send", "Nothing has left this machine yet."))
        self.send_button.setEnabled(report.to_send > 0)
        self.planned.emit(report)

    # -- the send ---------------------------------------------------------------------------------------------

    def send(self) -> int | None:
        """Send what was counted (on the dialog's thread); returns the request's generation."""
        if self.plan is None or self.pusher is not None:
            return None
        self.generation += 1
        self.pusher = self._pusher()
        self.progress.setRange(0, max(self.plan.to_send, 1))
        self.progress.setValue(0)
        self.progress.setFormat(f"Sending: 0 of {self.plan.to_send:,} spans")
        self.progress.show()
        for w in (self.endpoint, self.content, self.cut_kb, self.send_button):
            w.setEnabled(False)
        self.pool.start(_Job(self.signals, self.generation, self.pusher, self.sessions, dry_run=False))
        return self.generation

    def _progress(self, generation: int, report: PushReport) -> None:
        if generation == self.generation:
            self.progress.setValue(min(report.sent, self.progress.maximum()))
            self.progress.setFormat(f"Sending: {report.sent:,} of {self.progress.maximum():,} spans")

    def _finished(self, generation: int, report: PushReport) -> None:
        if generation != self.generation:
            return
        self.pusher, self.result = None, report
        self.progress.setValue(min(report.sent, self.progress.maximum()))
        self.progress.setFormat(f"Sent {report.sent:,} of {self.progress.maximum():,} spans")
        self.summary.setText(report.line())
        self.cancel_button.setText("Close")
        self.sent.emit(report.line())

    def _failed(self, generation: int, text: str) -> None:
        if generation != self.generation:
            return
        sending, self.pusher = self.pusher is not None, None
        self.summary.setText(text)
        if sending:
            self.cancel_button.setText("Close")
            self.sent.emit(text)

    def cancel(self) -> None:
        """Cancel: stop a send in progress at once (what was accepted stays recorded), else close."""
        if self.pusher is not None:
            self.pusher.cancel()
            self.summary.setText("Stopping…")
            return
        self.reject()

    def reject(self) -> None:
        self.stop()
        super().reject()

    def stop(self) -> None:
        """Stop whatever runs on the dialog's thread, and wait for it (the window calls this as it closes)."""
        self.generation += 1
        if self.pusher is not None:
            self.pusher.cancel()
        self.pool.clear()
        self.pool.waitForDone(30_000)
