"""The Compare tab on real widgets (offscreen) and the real compare store: picking two runs in the tree, the
aligned rows, the diffed texts, and the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PyQt6.QtCore import QItemSelectionModel, Qt
from PyQt6.QtTest import QTest

from analytics.queries import trace_queries as q
from analytics.word_diff import ADDED, REMOVED, word_diff
from dashboard.data import open_store
from dashboard.widgets.compare_tree import CALL, DURATION, STATUS, TOKENS_IN, TOOLS
from dashboard.widgets.palette import BETTER, WORSE
from dashboard.widgets.roles import Role
from tests.conftest import COMPARE_118, copy_store, open_window, wait_idle

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path: Path):
    w, section = open_window(qtbot, copy_store(COMPARE_118, tmp_path / "opencode"), tmp_path / "t.duckdb")
    wait_idle(qtbot, section.service)
    yield w
    w.close()


def _sessions(window) -> list:
    """The three runs' session rows, oldest first: the first run, the changed one, the killed one."""
    tree = window.tracing.tree
    rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    return sorted(rows, key=lambda r: r.data(0, Role.TRACE).started_at)


def _compare(qtbot, window, left: str, right: str):
    with qtbot.wait_signal(window.compare.shown, timeout=20_000):
        window.compare_runs(left, right)
    return window.compare


def _runs_of(side) -> list[tuple[str, str]]:
    """The text of a diff side with the kind its format says (removed red, added green, else same)."""
    doc, out = side.document(), []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            colour = frag.charFormat().background().color().name() if frag.charFormat().hasProperty(
                frag.charFormat().Property.BackgroundBrush) else None
            out.append(({"#f6c6c6": REMOVED, "#c4ecc9": ADDED}.get(colour, "same"), frag.text()))
            it += 1
        block = block.next()
    return out


def test_ctrl_click_two_sessions_and_compare(qtbot, window) -> None:
    tree = window.tracing.tree
    first, changed, _killed = _sessions(window)
    tree.setCurrentItem(first)
    qtbot.wait_until(lambda: window.tracing.detail.details is not None
                     and window.tracing.detail.details.trace.trace_id == first.data(0, Role.TRACE).trace_id)
    # Ctrl-click the second: both are selected, and the detail pane follows the row clicked last, as before
    rect = tree.visualItemRect(changed)
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, rect.center())
    assert set(tree.selected_trace_ids()) == {first.data(0, Role.TRACE).trace_id, changed.data(0, Role.TRACE).trace_id}
    assert tree.currentItem() is changed
    actions = dict(tree.compare_actions(changed))
    assert "Compare the two selected" in actions
    with qtbot.wait_signal(window.compare.shown, timeout=20_000):
        actions["Compare the two selected"]()
    assert window.tabs.currentWidget() is window.compare
    ct = window.compare.tree
    # the earlier run is the left side
    assert ct.comparison.left_id == first.data(0, Role.TRACE).trace_id
    assert [r.text(CALL) for r in ct.rows] == ["build", "planner — Plan", "coder — Code", "+ coder — Test",
                                               "− reviewer — Review"]
    # nested as the runs nest, under the totals row
    assert ct.topLevelItem(0).text(CALL) == "Total, with delegations"
    assert ct.rows[2].parent() is ct.rows[1] and ct.rows[3].parent() is ct.rows[1]
    code = ct.rows[2]
    assert code.text(TOOLS).startswith("2 → 4  +2")
    assert code.foreground(TOKENS_IN) == WORSE  # more tokens on the right
    assert ct.topLevelItem(0).foreground(DURATION) == BETTER  # the second run took less time in all
    assert ct.rows[3].text(DURATION) == "· → " + ct.rows[3].text(DURATION).split(" → ")[1]
    assert ct.rows[4].text(STATUS) == "completed → ·"


def test_selecting_a_row_diffs_its_texts_and_names_the_tools(qtbot, window) -> None:
    first, changed, _killed = (r.data(0, Role.TRACE).trace_id for r in _sessions(window))
    section = _compare(qtbot, window, first, changed)
    code = section.tree.rows[2]
    with qtbot.wait_signal(section.shown, timeout=20_000):
        section.tree.setCurrentItem(code)
    assert "grep: 1 → 3 calls" in section.diff.tools.text()
    left, right = _runs_of(section.diff.left_prompt), _runs_of(section.diff.right_prompt)
    pair = code.data(0, Role.PAIR)
    with open_store(window.service.db_path, read_only=True) as store:  # waits out a live refresh
        texts = [q.get_trace_details(store, t.trace_id).trace.prompt_input for t in (pair.left, pair.right)]
    assert "".join(t for _k, t in left) == texts[0] and "".join(t for _k, t in right) == texts[1]
    assert any(k == ADDED and "carefully" in t for k, t in right)
    assert not any(k == ADDED for k, _t in left) and not any(k == REMOVED for k, _t in right)
    # a call on one side only: its text on that side, a sentence on the other
    with qtbot.wait_signal(section.shown, timeout=20_000):
        section.tree.setCurrentItem(section.tree.rows[3])
    assert section.diff.left_prompt.toPlainText() == "(no such call in the left run)"
    assert "Test it." in section.diff.right_prompt.toPlainText()
    assert section.diff.tools.text() == "Only in the right run."


def test_compare_with_from_the_context_menu_and_a_running_side(qtbot, window) -> None:
    tree = window.tracing.tree
    first, _changed, killed = _sessions(window)
    tree.setCurrentItem(killed)
    dict(tree.compare_actions(killed))["Compare with…"]()
    assert "Compare with…" in window.statusBar().currentMessage()
    tree.setCurrentItem(first)
    actions = dict(tree.compare_actions(first))
    assert "Compare the two selected" not in actions  # one row selected
    # named after the marked row (flagged ⚠ interrupted once the killed run is 10 minutes old)
    offered = next(text for text in actions if text.startswith("Compare with build  (OpenCode session)"))
    with qtbot.wait_signal(window.compare.shown, timeout=20_000):
        actions[offered]()
    ct = window.compare.tree
    assert ct.comparison.left_id == killed.data(0, Role.TRACE).trace_id
    assert ct.rows[0].text(DURATION) == "running → " + ct.rows[0].text(DURATION).split(" → ")[1]
    assert ct.rows[3].text(CALL) == "+ reviewer — Review"


def test_export_comparison_writes_the_cli_json(qtbot, window, tmp_path: Path) -> None:
    assert window.export_comparison(tmp_path / "none.json") is None  # nothing compared yet: a sentence
    assert "Compare two runs first" in window.statusBar().currentMessage()
    first, changed, _killed = (r.data(0, Role.TRACE).trace_id for r in _sessions(window))
    _compare(qtbot, window, first, changed)
    out = tmp_path / "c.json"
    with qtbot.wait_signal(window.service.message, timeout=20_000):
        window.export_comparison(out)
    data = json.loads(out.read_text())
    assert data["left"] == first and data["right"] == changed
    assert [p["kind"] for p in data["pairs"]] == ["matched", "matched", "matched", "added", "removed"]
    assert data["totals"]["delta"]["tool_calls"] == 3


def test_single_selection_still_drives_the_detail_pane(qtbot, window) -> None:
    tree = window.tracing.tree
    first, changed, _killed = _sessions(window)
    for row in (first, changed):
        QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         tree.visualItemRect(row).center())
        tid = row.data(0, Role.TRACE).trace_id
        qtbot.wait_until(lambda tid=tid: window.tracing.detail.details is not None
                         and window.tracing.detail.details.trace.trace_id == tid)
        assert tree.selected_trace_ids() == [tid]  # a plain click selects one row, as before
    tree.selectionModel().select(tree.indexFromItem(first), QItemSelectionModel.SelectionFlag.Select)
    assert len(tree.selected_trace_ids()) == 2
    window.compare_selected()
    qtbot.wait_until(lambda: window.compare.comparison is not None, timeout=20_000)
    assert window.compare.comparison.left_id == first.data(0, Role.TRACE).trace_id


def test_a_long_hostile_prompt_is_diffed_as_plain_text(qtbot, tmp_path: Path) -> None:
    """The 400 KB prompt of the cases store (HTML, scripts, ANSI escapes, several scripts) against itself: shown
    as its characters, its first DIFF_CHARS compared and the rest said."""
    from analytics.word_diff import DIFF_CHARS
    from tests.conftest import CASES_118

    w, section = open_window(qtbot, copy_store(CASES_118, tmp_path / "opencode"), tmp_path / "t.duckdb")
    wait_idle(qtbot, section.service)
    huge = next(i for i in section.tree.items.values() if i.text(1) == "Huge context").data(0, Role.TRACE)
    compare = _compare(qtbot, w, huge.trace_id, huge.trace_id)  # shown with the roots' texts
    text = compare.diff.left_prompt.toPlainText()
    assert "<script>alert('x')</script>" in text and "\x1b[31m" in text
    assert compare.diff.left_prompt.document().toHtml().count("<script>") == 0  # escaped in the document
    assert compare.diff.diffs.prompt.identical is False  # cut: not all of it was compared
    assert compare.diff.diffs.prompt.left_cut > 0 and "more characters, not compared" in text
    assert all(kind == "same" for kind, _t in _runs_of(compare.diff.right_prompt)[:-1])
    assert len(text) < DIFF_CHARS + 200
    w.close()


def test_a_coarse_diff_says_so_in_the_pane(qtbot) -> None:
    from dashboard.data import TextDiffs
    from dashboard.widgets.diff_pane import DiffPane

    pane = DiffPane()
    qtbot.addWidget(pane)
    coarse = word_diff("the cat sat\non the mat", "the dog sat\non a mat", work=0)
    pane.show_texts(TextDiffs("a", "b", coarse, word_diff("same", "same")))
    assert "marked changed whole]" in pane.left_prompt.toPlainText()
    assert "marked changed whole" not in pane.left_output.toPlainText()


def test_a_reworded_call_says_its_description_change(qtbot, tmp_path: Path) -> None:
    from analytics.queries.compare import compare
    from dashboard.widgets.compare_tree import CALL, CompareTree
    from dashboard.widgets.diff_pane import DiffPane
    from tests.test_compare import _reworded

    store, first, changed = _reworded(tmp_path)
    c = compare(store, first, changed)
    store.close()
    tree, pane = CompareTree(), DiffPane()
    qtbot.addWidget(tree)
    qtbot.addWidget(pane)
    tree.show_comparison(c)
    row = tree.rows[2]
    assert row.text(CALL) == "coder — Code ⇄ coder — Write the code"
    assert "Description changed: “Code” → “Write the code”." in row.toolTip(CALL)
    pane.show_pair(c.pairs[2])
    assert pane.tools.text().startswith("Description changed: “Code” → “Write the code”. Tools used differently: ")
