"""Text from OpenCode is shown as plain text in tooltips, labels and message boxes, never rendered as HTML.

The hostile store is a copy of the real fixture stores with HTML put in an agent name, a description, a prompt and
a session title on purpose; the agent's runs are anomalous, so the anomaly reason quotes the HTML too.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

import pytest
from PyQt6.QtCore import QEvent, Qt
from PyQt6.QtGui import QHelpEvent, QTextDocument
from PyQt6.QtWidgets import QApplication, QLabel, QToolTip

from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.settings import Settings
from dashboard.app import Choice, build
from dashboard.widgets import plain
from dashboard.widgets.roles import Role
from dashboard.widgets.trace_rows import AGENT, DESCRIPTION, TIMELINE
from tests.conftest import CASES_118, CASES_1165, SAMPLE_118, copy_store

pytestmark = pytest.mark.gui
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
AGENT_HTML = "<h1>BIG</h1><img src=x>"
DESCRIPTION_HTML = "<h1>BIG job</h1><img src=y>"
PROMPT_HTML = "<h2>prompt</h2><img src=p> & <b>more</b>"
TITLE_HTML = "<b>title</b><img src=z>"


def shown_literally(tip: str, raw: str) -> bool:
    """Whether Qt, reading `tip` the way a tooltip does, displays `raw` character for character."""
    doc = QTextDocument()
    if Qt.mightBeRichText(tip):
        doc.setHtml(tip)
    else:
        doc.setPlainText(tip)
    return raw in doc.toPlainText()


def _make_hostile(part: dict) -> bool:
    """Rename the reviewer of a task part to AGENT_HTML (and give "Check beta" HTML); whether it changed."""
    inp = part.get("state", {}).get("input") if part.get("tool") == "task" else None
    if not isinstance(inp, dict) or inp.get("subagent_type") != "reviewer":
        return False
    inp["subagent_type"] = AGENT_HTML
    if inp.get("description") == "Check beta":
        inp["description"], inp["prompt"] = DESCRIPTION_HTML, PROMPT_HTML
    return True


def _hostile_copy(src: Path, dest: Path) -> Path:
    """A copy of a fixture store (1.18 SQLite or 1.1 JSON) whose reviewer is called AGENT_HTML, with HTML in a
    description and a prompt, and in the title of the session "Scripted session 1"."""
    copy_store(src, dest)
    if not (dest / "opencode.db").exists():
        for f in dest.rglob("part/*/*.json"):
            part = json.loads(f.read_text())
            if _make_hostile(part):
                f.write_text(json.dumps(part))
        for f in dest.rglob("session/*/*.json"):
            session = json.loads(f.read_text())
            if session.get("title") == "Scripted session 1":
                f.write_text(json.dumps({**session, "title": TITLE_HTML}))
        return dest
    conn = sqlite3.connect(dest / "opencode.db")
    for pid, data in conn.execute("SELECT id, data FROM part").fetchall():
        part = json.loads(data)
        if _make_hostile(part):
            conn.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(part), pid))
    conn.execute("UPDATE session SET title = ? WHERE title = 'Scripted session 1'", (TITLE_HTML,))
    conn.commit()
    conn.close()
    return dest


@pytest.fixture
def hostile(qtbot, tmp_path: Path):
    """The window on the hostile cases store, judged against a history where that agent has 5 runs."""
    db = tmp_path / "t.duckdb"
    with TraceStore(db) as store:
        for source in (_hostile_copy(CASES_1165, tmp_path / "json") / "storage",
                       _hostile_copy(SAMPLE_118, tmp_path / "sample")):
            load(store, open_source(source))
    w, _service = build(Choice(open_source(_hostile_copy(CASES_118, tmp_path / "oc")), db, "x"),
                        Settings(refresh_seconds=3600))
    qtbot.addWidget(w)
    with qtbot.wait_signal(w.tracing.ready, timeout=20_000):
        w.show()
    yield w
    w.close()


def _row(w, description: str):
    return next(i for i in w.tracing.tree.items.values() if i.data(0, Role.TRACE).description == description)


def _tooltip(tree, item, column: int) -> str:
    """What the tree hands QToolTip when the mouse rests on this cell (a real tooltip event)."""
    QToolTip.hideText()
    rect = tree.visualRect(tree.indexFromItem(item, column))
    assert rect.isValid() and tree.viewport().rect().contains(rect.center())
    event = QHelpEvent(QEvent.Type.ToolTip, rect.center(), tree.viewport().mapToGlobal(rect.center()))
    QApplication.sendEvent(tree.viewport(), event)
    return QToolTip.text()


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # the offscreen platform, showing a tooltip
def test_tree_tooltips_show_html_literally(hostile) -> None:
    tree = hostile.tracing.tree
    check = _row(hostile, DESCRIPTION_HTML)
    tree.scrollToItem(check)
    agent_tip = _tooltip(tree, check, AGENT)
    assert "<h1>" not in agent_tip and shown_literally(agent_tip, f"coder › {AGENT_HTML}")
    description_tip = _tooltip(tree, check, DESCRIPTION)  # the prompt's preview
    assert "<img" not in description_tip and shown_literally(description_tip, PROMPT_HTML)
    bar_tip = _tooltip(tree, check, TIMELINE)
    assert "<h1>" not in bar_tip and shown_literally(bar_tip, f"{AGENT_HTML} — completed\nStarted ")
    huge = _row(hostile, "Huge context")  # flagged: its tooltip gives the reason, which names the agent
    assert huge.data(0, Role.TRACE).trace_id in tree.marks.flags
    tree.scrollToItem(huge)
    reason = tree.marks.flags[huge.data(0, Role.TRACE).trace_id]
    assert f"median tokens of {AGENT_HTML}" in reason
    reason_tip = _tooltip(tree, huge, AGENT)
    assert "<h1>" not in reason_tip and shown_literally(reason_tip, f"⚠ {reason}")


def test_metrics_anomaly_reason_tooltip_is_escaped(hostile) -> None:
    hostile.tabs.setCurrentWidget(hostile.metrics)  # filled when shown
    odd = hostile.metrics.odd
    rows = [odd.topLevelItem(i) for i in range(odd.topLevelItemCount())]
    ours = [r for r in rows if r.text(0) == AGENT_HTML]
    assert ours  # the hostile agent's calls are anomalies, and the reason names it
    for r in ours:
        tip = r.data(1, Qt.ItemDataRole.ToolTipRole)
        assert AGENT_HTML in r.text(1) and "<h1>" not in tip and shown_literally(tip, r.text(1))
    assert hostile.metrics.summary.textFormat() == Qt.TextFormat.PlainText


def test_flow_tooltips_and_hint_are_plain(qtbot, hostile) -> None:
    w = hostile
    w.tracing.tree.setCurrentItem(_row(w, DESCRIPTION_HTML))
    w.tabs.setCurrentWidget(w.flow)
    check_id = _row(w, DESCRIPTION_HTML).data(0, Role.TRACE).trace_id
    qtbot.wait_until(lambda: check_id in w.flow.view.nodes, timeout=5000)
    tip = w.flow.view.nodes[check_id].toolTip()
    assert "<h1>" not in tip and shown_literally(tip, AGENT_HTML) and shown_literally(tip, DESCRIPTION_HTML)
    hint = w.flow.hint
    assert hint.textFormat() == Qt.TextFormat.PlainText and hint.text().startswith(TITLE_HTML)
    w.flow.mode.setCurrentIndex(1)  # the agent graph: a node per agent, named by the agent
    qtbot.wait_until(lambda: AGENT_HTML in w.flow.view.nodes, timeout=5000)
    tip = w.flow.view.nodes[AGENT_HTML].toolTip()
    assert "<h1>" not in tip and shown_literally(tip, AGENT_HTML)


def test_detail_pane_labels_are_plain(qtbot, hostile) -> None:
    w = hostile
    w.tracing.tree.setCurrentItem(_row(w, DESCRIPTION_HTML))
    d = w.tracing.detail
    qtbot.wait_until(lambda: d.details is not None and d.details.trace.description == DESCRIPTION_HTML,
                     timeout=20_000)
    labels = [d.heading, *d.values.values(), d.input.size_label]
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in labels)
    assert d.heading.text().startswith(AGENT_HTML) and d.values["Description"].text() == DESCRIPTION_HTML


def test_message_box_and_helpers_keep_text_plain(qtbot) -> None:
    box = plain.message_box(None, "agent-traces", f"No store at /tmp/{TITLE_HTML}")
    qtbot.addWidget(box)
    assert box.textFormat() == Qt.TextFormat.PlainText
    assert box.findChild(QLabel, "qt_msgbox_label").textFormat() == Qt.TextFormat.PlainText
    assert plain.label(AGENT_HTML).textFormat() == Qt.TextFormat.PlainText
    text = "two\nlines  with <script>x</script> & spaces"
    assert shown_literally(plain.tooltip(text), text)
    assert plain.tooltip("") == "" and plain.tooltip(None) == ""  # no empty tooltip box
    long = plain.tooltip("<p>" * 100_000)
    assert len(long) < 20 * plain.TOOLTIP_MAX_CHARS and shown_literally(long, "<p><p>")


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            yield node, (f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""), f


def test_every_tooltip_label_and_message_box_goes_through_plain() -> None:
    """The sources of dashboard/: tooltips are literals or `plain.tooltip(...)`, QToolTip, QLabel and QMessageBox
    are used only by the plain module, and nothing sets HTML."""
    problems = []
    for path in sorted(DASHBOARD.rglob("*.py")):
        if path.name == "plain.py":
            continue
        for node, name, f in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(DASHBOARD.parent)}:{node.lineno}"
            if name == "setToolTip":
                arg = node.args[-1]
                ok = (isinstance(arg, ast.Constant) or isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
                      and arg.func.attr == "tooltip" and isinstance(arg.func.value, ast.Name)
                      and arg.func.value.id == "plain")
                if not ok:
                    problems.append(f"{where}: setToolTip without plain.tooltip()")
            elif name in ("showText", "setHtml", "insertHtml", "appendHtml", "QLabel", "QMessageBox") or (
                    isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "QMessageBox"):
                problems.append(f"{where}: {name} outside dashboard/widgets/plain.py")
    assert problems == []
