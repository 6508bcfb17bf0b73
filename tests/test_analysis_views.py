"""The analysis views on real widgets: flow view, metrics, pattern and anomaly filters, settings, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtTest import QTest

from analytics.opencode import open_source
from analytics.settings import Settings
from dashboard.app import Choice, build
from dashboard.widgets.flow_view import NodeItem
from dashboard.widgets.roles import Role
from tests.conftest import CASES_118, CASES_1165, SAMPLE_118, copy_store, row, wait_idle

pytestmark = pytest.mark.gui
DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"


@pytest.fixture
def window(qtbot, tmp_path: Path):
    w, service = build(Choice(open_source(DEMO), tmp_path / "t.duckdb", "demo"), Settings(refresh_seconds=3600))
    qtbot.addWidget(w)
    with qtbot.wait_signal(w.tracing.ready, timeout=20_000):
        w.show()
    yield w
    w.close()


def test_flow_view_draws_the_selected_session_and_clicks_back_to_the_tree(qtbot, window) -> None:
    w = window
    w.tracing.tree.setCurrentItem(row(w.tracing, "Test the limiter"))
    w.tabs.setCurrentWidget(w.flow)
    qtbot.wait_until(lambda: len(w.flow.view.nodes) == 6, timeout=5000)
    nodes = w.flow.view.nodes
    agents = sorted(n.title for n in nodes.values())
    assert agents == ["build", "coder", "coordinator", "refactoring", "reviewer", "tester"]
    by_agent = {n.title: n for n in nodes.values()}
    # left to right by depth, top to bottom by start time
    assert by_agent["build"].x() < by_agent["coordinator"].x() < by_agent["tester"].x() < by_agent["refactoring"].x()
    assert by_agent["coder"].y() < by_agent["reviewer"].y()
    critical = {n.title for n in nodes.values() if n.critical}
    assert critical == {"build", "coordinator", "reviewer"}
    assert by_agent["tester"].isSelected()
    # a click on a node selects that trace in the tree
    view = w.flow.view
    point = view.mapFromScene(by_agent["refactoring"].pos() + QPointF(30, 20))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    qtbot.wait_until(lambda: w.tabs.currentWidget() is w.tracing, timeout=5000)
    assert w.tracing.tree.currentItem().text(1) == "Inject the clock"


def test_agent_graph_and_click_to_filter(qtbot, window) -> None:
    w = window
    w.tabs.setCurrentWidget(w.flow)
    w.flow.mode.setCurrentIndex(1)
    qtbot.wait_until(lambda: "coordinator" in w.flow.view.nodes, timeout=5000)
    nodes = w.flow.view.nodes
    assert set(nodes) == {"build", "coordinator", "planner", "coder", "tester", "explore", "refactoring",
                          "reviewer", "general"}
    assert nodes["build"].x() < nodes["coordinator"].x() < nodes["tester"].x() < nodes["refactoring"].x()
    labels = [i.text() for i in w.flow.view.scene().items() if hasattr(i, "text") and callable(i.text)]
    assert "2× · 2.4 s" in labels  # build -> explore, twice (the median: 2.4 s each)
    w.flow.view.nodeClicked.emit("planner")  # as a click on the agent's box tells
    wait_idle(qtbot, w.service)
    assert len(w.tracing.tree.visible_roots()) == 1 and w.tracing.filters.agent.currentData() == "planner"


def test_flow_view_is_readable_with_200_nodes(qtbot, window, tmp_path: Path) -> None:
    """A session tree of 200 calls (a 1.18-format store built like the benchmark's, read by the real loader):
    every node placed, fit shows them all, zoom and fit work."""
    from analytics.db import TraceStore
    from analytics.loader import load
    from analytics.queries.analysis_queries import forest
    from benchmarks.make_store import build_sqlite

    build_sqlite(tmp_path / "big" / "opencode.db", roots=1, delegations=199, seed=5, delegate_p=0.9, max_depth=5)
    with TraceStore(tmp_path / "big.duckdb") as store:
        load(store, open_source(tmp_path / "big"))
        (root,) = forest(store)
    assert root.descendants + 1 >= 150
    view = window.flow.view
    window.tabs.setCurrentWidget(window.flow)
    view.show_session(root, set(), set())
    assert len(view.nodes) == root.descendants + 1
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert all(visible.contains(n.sceneBoundingRect().center()) for n in view.nodes.values())
    before = view.transform().m11()
    view.scale(4, 4)
    assert view.transform().m11() == pytest.approx(before * 4)
    view.fit()
    assert view.transform().m11() == pytest.approx(before)
    assert all(isinstance(n, NodeItem) for n in view.nodes.values())


def test_metrics_tab_lists_agents_bottlenecks_and_jumps_to_a_trace(qtbot, window) -> None:
    w = window
    w.tabs.setCurrentWidget(w.metrics)
    m = w.metrics
    agents = {m.agents.topLevelItem(i).text(0): m.agents.topLevelItem(i) for i in range(m.agents.topLevelItemCount())}
    assert agents["coder"].data(1, Qt.ItemDataRole.DisplayRole) == 3
    assert agents["general"].text(2) == "100%"
    assert m.chart.metrics and m.chart.metrics[0].total_cost_usd >= m.chart.metrics[-1].total_cost_usd
    first = m.slow.topLevelItem(0)
    assert first.text(3) == "Reproduce on acme-large"  # the slowest delegation
    m.traceChosen.emit(first.data(0, Qt.ItemDataRole.UserRole))
    assert w.tabs.currentWidget() is w.tracing
    assert w.tracing.tree.currentItem().text(1) == "Reproduce on acme-large"
    assert "None" in m.odd.topLevelItem(0).text(1)  # a fresh demo: nothing unusual yet


def test_metrics_tab_is_filled_when_it_is_shown_then_as_each_analysis_comes(qtbot, window) -> None:
    w = window
    m = w.metrics
    assert w.tabs.currentWidget() is w.tracing and m.agents.topLevelItemCount() == 0  # not drawn while hidden
    w.tabs.setCurrentWidget(m)
    assert m.agents.topLevelItemCount() > 0
    w.tracing.analyzed.emit(None)  # while the tab is on screen, what the tracing tab brings is drawn at once
    assert m.agents.topLevelItemCount() == 0


def test_pattern_filter_and_its_errors(qtbot, window) -> None:
    w = window
    bar = w.tracing.filters
    bar.pattern.setText("tester -> refactoring")
    QTest.keyClick(bar.pattern, Qt.Key.Key_Return)
    wait_idle(qtbot, w.service)
    tree = w.tracing.tree
    assert [r.text(1) for r in tree.visible_roots()] == ["Rate limiting for the API client"]
    hits = {tid for tid in tree.items if tid not in tree.marks.dimmed and not tree.items[tid].isHidden()}
    assert {tree.items[t].text(1) for t in hits} == {"Test the limiter", "Inject the clock"}
    bar.pattern.setText("tester -> [")
    assert bar.pattern_error and "column 11" in bar.pattern.toolTip()
    assert "background" in bar.pattern.styleSheet()
    with qtbot.assert_not_emitted(bar.changed):
        QTest.keyClick(bar.pattern, Qt.Key.Key_Return)  # an invalid pattern is never applied
    bar.pattern.clear()
    QTest.keyClick(bar.pattern, Qt.Key.Key_Return)
    wait_idle(qtbot, w.service)
    assert len(tree.visible_roots()) == 3


def test_anomalies_are_flagged_and_filtered(qtbot, tmp_path: Path) -> None:
    """With enough history (all the real fixture stores in one trace store) the 400 KB-prompt reviewer calls
    stand out; the tree flags them and "anomalies only" keeps their sessions."""
    from analytics.db import TraceStore
    from analytics.loader import load

    db = tmp_path / "t.duckdb"
    with TraceStore(db) as store:
        for source in (CASES_1165 / "storage", SAMPLE_118):
            load(store, open_source(source))
    w, _service = build(Choice(open_source(copy_store(CASES_118, tmp_path / "oc")), db, "x"),
                        Settings(refresh_seconds=3600))
    qtbot.addWidget(w)
    with qtbot.wait_signal(w.tracing.ready, timeout=20_000):
        w.show()
    tree = w.tracing.tree
    flagged = [tree.items[t].text(1) for t in tree.marks.flags]
    assert "Huge context" in flagged
    assert row(w.tracing, "Huge context").text(0).endswith("⚠")
    w.tracing.filters.anomalies_only.setChecked(True)
    wait_idle(qtbot, w.service)
    shown = {tree.trace_children(r)[0].text(1) for r in tree.visible_roots() if tree.trace_children(r)}
    assert "Huge context" in shown
    w.close()


def test_settings_dialog_saves_and_cleans_up(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AGENT_TRACES_CONFIG", str(tmp_path / "settings.json"))
    w = window
    dialog = w.open_settings()
    dialog.template.setText("kitty --directory {dir} opencode --session {nope}")
    assert "unknown field" in dialog.problem.text()
    dialog.template.setText("kitty sh -c 'cd {dir}")  # shlex's ValueError becomes the dialog's sentence
    assert "has a quote or a backslash that nothing closes" in dialog.problem.text()
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Save).isEnabled()
    assert "{cmd} is the whole command" in dialog.template.toolTip()
    assert "raw values" in dialog.template.toolTip() and "shell-quotes them" in dialog.template.toolTip()
    dialog.template.setText("kitty --directory {dir} opencode --session {id}")
    dialog.keep_all.setChecked(False)
    dialog.days.setValue(2)
    dialog.refresh.setValue(9)
    with qtbot.wait_signal(w.service.message, timeout=20_000,
                           check_params_cb=lambda _g, text: text.startswith("Removed")):
        QTest.mouseClick(dialog.clean_now, Qt.MouseButton.LeftButton)
    dialog.accept()
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved == {"retention_days": 2, "refresh_seconds": 9.0,
                     "terminal_template": "kitty --directory {dir} opencode --session {id}"}
    assert w.watcher.timer.interval() == 9000
    w.tracing.refresh(full=True)
    wait_idle(qtbot, w.service)
    assert "SQLAlchemy 2.0 upgrade" not in {r.text(1) for r in w.tracing.tree.visible_roots()}  # two days old


def test_export_from_the_window(qtbot, window, tmp_path: Path) -> None:
    w = window
    w.tracing.tree.setCurrentItem(row(w.tracing, "Find the export job"))
    for fmt, name in (("otlp", "s.otlp.json"), ("json", "s.json")):
        with qtbot.wait_signal(w.service.message, timeout=20_000):
            w.export_session(tmp_path / name, fmt)
    spans = json.loads((tmp_path / "s.otlp.json").read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert sum(s["name"].startswith("invoke_agent ") for s in spans) == 4
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["session"]["title"] == "Nightly export fails on large accounts"
    assert row(w.tracing, "Find the export job").data(0, Role.TRACE).root_session_id == data["session"]["session_id"]


def test_send_the_selected_session_to_an_opentelemetry_backend(qtbot, window, backend) -> None:
    w = window
    w.tracing.tree.setCurrentItem(row(w.tracing, "Find the export job"))
    assert w.send_sessions() is None  # no endpoint in the settings yet
    assert "Set the OpenTelemetry endpoint in File › Settings first" in w.statusBar().currentMessage()
    dialog = w.send_sessions(backend.url)
    with qtbot.wait_signal(dialog.sent, timeout=20_000) as said:
        pass
    assert said.args[0].startswith(f"Sent {len(backend.spans())} spans of 1 sessions to {backend.url}")
    assert w.statusBar().currentMessage() == said.args[0]
    names = [s.name for s in backend.spans()]
    assert sum(n.startswith("invoke_agent ") for n in names) == 4
    dialog.reject()
    backend.codes = [401]
    dialog = w.send_sessions(backend.url)
    with qtbot.wait_signal(dialog.sent, timeout=20_000) as refused:
        pass
    assert "401 Unauthorized" in refused.args[0]
    dialog.reject()
    # Ctrl-click a row of another session: both sessions go
    backend.codes, sent = [], len(backend.spans())
    other = next(i for i in w.tracing.tree.items.values() if i.data(0, Role.TRACE).kind == "session"
                 and i.data(0, Role.TRACE).root_session_id != w.current_session())
    other.setSelected(True)
    assert len(w.selected_sessions()) == 2
    dialog = w.send_sessions(backend.url)
    with qtbot.wait_signal(dialog.sent, timeout=20_000) as said:
        pass
    assert " of 2 sessions to " in said.args[0] and len(backend.spans()) > sent
    dialog.reject()


def test_the_otlp_endpoint_is_set_in_the_settings_and_used_by_send(qtbot, window, tmp_path: Path,
                                                                      monkeypatch, backend) -> None:
    monkeypatch.setenv("AGENT_TRACES_CONFIG", str(tmp_path / "settings.json"))
    w = window
    w.settings.otlp_headers = {"authorization": "Bearer t"}  # as the file had them: the dialog keeps them
    dialog = w.open_settings()
    dialog.otlp_endpoint.setText("localhost:6006")
    dialog.accept()
    assert "otlp_endpoint must be an http:// or https:// URL" in dialog.problem.text()
    dialog.otlp_endpoint.setText(backend.url)
    dialog.otlp_project.setText("team")
    dialog.otlp_content.setCurrentIndex(dialog.otlp_content.findData("full"))
    dialog.accept()
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert (saved["otlp_endpoint"], saved["otlp_project"], saved["otlp_headers"], saved["otlp_content"]) == \
        (backend.url, "team", {"authorization": "Bearer t"}, "full")
    assert w.settings.otlp_content == "full"
    w.tracing.tree.setCurrentItem(row(w.tracing, "Find the export job"))
    dialog = w.send_sessions()
    with qtbot.wait_signal(dialog.sent, timeout=20_000):
        pass
    dialog.reject()
    path, headers, request = backend.requests[0]
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer t"
    assert {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}[
        "openinference.project.name"] == "team"
