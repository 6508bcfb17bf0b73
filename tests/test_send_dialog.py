"""File › Send on real widgets: what will leave the machine is said before it does, the send runs on the
dialog's own thread (never the window's read worker), shows its progress and can be cancelled; to the small
real HTTP server of tests/conftest.py (Backend), a silent one among them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from analytics.opencode import open_source
from analytics.settings import Settings
from dashboard.app import Choice, build
from dashboard.widgets.roles import Role
from tests.conftest import Backend, attrs

pytestmark = pytest.mark.gui
DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"


@pytest.fixture
def window(qtbot, tmp_path: Path):
    w, _service = build(Choice(open_source(DEMO), tmp_path / "t.duckdb", "demo"), Settings(refresh_seconds=3600))
    qtbot.addWidget(w)
    with qtbot.wait_signal(w.tracing.ready, timeout=20_000):
        w.show()
    w.tracing.tree.setCurrentItem(next(i for i in w.tracing.tree.items.values()
                                       if i.text(1) == "Find the export job"))
    yield w
    w.close()



def silent(released: threading.Event) -> Callable:
    """A receiver that takes the request and answers nothing until it is released (then a 200)."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        released.wait(60)
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return write


def test_the_dialog_says_what_goes_before_anything_does(qtbot, window, backend: Backend) -> None:
    dialog = window.send_dialog(backend.url)
    with qtbot.wait_signal(dialog.planned, timeout=20_000) as planned:
        pass
    plan = planned.args[0]
    assert plan.to_send > 10 and backend.posts == 0
    assert dialog.summary.text() == (
        f"Send will send {plan.to_send} spans of 1 sessions ({plan.to_send_bytes / 1024:.0f} KB) to "
        f"{backend.url}/v1/traces: prompts, outputs and tool inputs cut to 8 KB each. Nothing has left this "
        "machine yet.")
    with qtbot.wait_signal(dialog.planned, timeout=20_000):
        dialog.content.setCurrentIndex(dialog.content.findData("none"))
    assert "no prompts, outputs or tool inputs" in dialog.summary.text() and backend.posts == 0
    with qtbot.wait_signal(dialog.sent, timeout=20_000) as sent:
        dialog.send_button.click()
    assert sent.args[0].startswith(f"Sent {plan.to_send} spans")
    assert dialog.progress.value() == dialog.progress.maximum() == plan.to_send
    assert not any("input.value" in attrs(s) or "output.value" in attrs(s) for s in backend.spans())
    dialog.reject()


def test_a_silent_backend_holds_neither_the_windows_reads_nor_its_cancel(qtbot, window, backend: Backend) -> None:
    """The send ran on the window's only worker: row details waited 10 s behind a silent receiver."""
    released = threading.Event()
    backend.answers = [silent(released)]
    try:
        dialog = window.send_sessions(backend.url)
        qtbot.wait_until(lambda: backend.posts == 1, timeout=20_000)
        tid = window.tracing.tree.current_trace_id()
        with qtbot.wait_signal(window.service.details, timeout=3_000) as details:
            window.service.fetch_details(tid)
        assert details.args[1][0].trace.trace_id == tid
        assert dialog.pusher is not None and dialog.progress.isVisible()
        with qtbot.wait_signal(dialog.sent, timeout=5_000) as stopped:
            dialog.cancel_button.click()
        assert stopped.args[0].startswith("Stopped after sending 0 spans")
        assert window.statusBar().currentMessage() == stopped.args[0]
    finally:
        released.set()
    dialog.reject()


def test_closing_the_window_stops_a_send_in_progress(qtbot, window, backend: Backend) -> None:
    released = threading.Event()
    backend.answers = [silent(released)]
    try:
        dialog = window.send_sessions(backend.url)
        qtbot.wait_until(lambda: backend.posts == 1, timeout=20_000)
        window.close()
        assert dialog.pool.activeThreadCount() == 0
    finally:
        released.set()


def test_the_export_of_an_otlp_file_takes_the_content_of_the_settings(qtbot, window, tmp_path: Path) -> None:
    window.settings.otlp_content = "none"
    with qtbot.wait_signal(window.service.message, timeout=20_000):
        window.export_session(tmp_path / "s.otlp.json", "otlp")
    text = (tmp_path / "s.otlp.json").read_text()
    assert '"invoke_agent' in text and "input.value" not in text
    root = window.tracing.tree.items[window.tracing.tree.current_trace_id()].data(0, Role.TRACE)
    assert root.root_session_id in window.selected_sessions()
