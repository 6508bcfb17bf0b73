"""A prompt of 10 MB in the detail pane: its start is shown at once, the rest on request; Copy copies all of it,
and a live refresh that brings the same prompt again does not lay it out again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QTextOption
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication

from dashboard.widgets.detail_pane import HEAD_CHARS, TextSection
from tests.conftest import CASES_118, copy_store, open_window, row, select

pytestmark = pytest.mark.gui
END = "\nTHE END OF THE 10 MB PROMPT"


def _ten_mb_prompt(data: Path) -> tuple[str, str]:
    """Make the "Huge context" call's prompt 10 MB (its real 400 KB prompt, 26 times, and an end marker).
    Returns the prompt and the id of the call's root session."""
    conn = sqlite3.connect(data / "opencode.db")
    pid, sid, raw = conn.execute("SELECT id, session_id, data FROM part WHERE data LIKE '%\"tool\":\"task\"%'"
                                 " AND data LIKE '%Huge context%'").fetchone()
    part = json.loads(raw)
    prompt = "\n".join([part["state"]["input"]["prompt"]] * 26) + END
    part["state"]["input"]["prompt"] = prompt
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(part), pid))
    conn.commit()
    conn.close()
    assert len(prompt.encode()) > 10_000_000
    return prompt, sid


def test_ten_mb_prompt_shows_its_start_copies_all_and_shows_all_on_request(qtbot, tmp_path: Path) -> None:
    data = copy_store(CASES_118, tmp_path / "opencode")
    prompt, session_id = _ten_mb_prompt(data)
    w, section = open_window(qtbot, data, tmp_path / "t.duckdb")
    select(qtbot, section, "Huge context")
    box = section.detail.input
    assert box.text() == prompt
    shown = box.shown_text()
    assert box.is_cut() and 0.9 * HEAD_CHARS <= len(shown) <= HEAD_CHARS and prompt.startswith(shown)
    assert not box.more.isHidden() and "more are not shown" in box.notice.text() and "MB" in box.notice.text()
    assert box.show_all_button.text().startswith("Show all (") and "MB more)" in box.show_all_button.text()
    # find searches what is shown, and says so
    assert "shown" in box.find_box.placeholderText()
    box.find_box.setText("THE END OF THE 10 MB")
    assert not box.find_next()
    # Copy copies the whole prompt, not what is shown
    QTest.mouseClick(box.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == prompt
    # a refresh that changes the session tree (its title) but not this prompt leaves the text box alone
    conn = sqlite3.connect(data / "opencode.db")
    conn.execute("UPDATE session SET title = 'Renamed while selected' WHERE id = ?", (session_id,))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (session_id,))
    conn.commit()
    conn.close()
    before = section.detail.details
    with qtbot.assert_not_emitted(box.edit.textChanged):
        section.refresh()
        qtbot.wait_until(lambda: section.detail.details is not before, timeout=20_000)  # shown again
    assert row(section, "Renamed while selected") is not None and box.shown_text() == shown
    # "Show all" shows all of it; then find reaches the end
    QTest.mouseClick(box.show_all_button, Qt.MouseButton.LeftButton)
    assert not box.is_cut() and box.more.isHidden() and box.shown_text() == prompt
    assert box.find_next() and box.edit.textCursor().selectedText() == "THE END OF THE 10 MB"
    # another trace, then this one again: its start only, as at first
    select(qtbot, section, "Check beta")
    assert box.shown_text() == "Check it." and not box.is_cut() and box.more.isHidden()
    select(qtbot, section, "Huge context")
    assert box.is_cut() and box.shown_text() == shown
    w.close()


def test_a_long_run_without_spaces_is_wrapped_anywhere(qtbot) -> None:
    """200 KB of base64 on one line take seconds to lay out when wrapped at word boundaries; anywhere, ms."""
    box = TextSection("Prompt input")
    qtbot.addWidget(box)
    box.set_text("QUJD" * 300_000)
    assert box.is_cut() and box.edit.wordWrapMode() == QTextOption.WrapMode.WrapAnywhere
    box.set_text("ordinary words " * 100)
    assert not box.is_cut() and box.edit.wordWrapMode() == QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere
