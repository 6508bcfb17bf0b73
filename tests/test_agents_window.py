"""The window on OpenCode, Claude Code and Codex together (real widgets offscreen, real DuckDB store, the real
histories): the first launch from an empty HOME with the three present, the Source filter, which agent ran a
session, unknown costs, reopening, comparing across agents, and live refresh from the watcher's real
QFileSystemWatcher as the agents append (the timer is off: only the watcher can bring what is written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QStyleOptionViewItem

from analytics.db import TraceStore, default_db_path
from analytics.models import CLAUDE_CODE, CODEX, OPENCODE
from analytics.settings import Settings
from analytics.sources import open_paths
from dashboard.app import Choice, build, choose
from dashboard.widgets.roles import Role
from dashboard.widgets.trace_rows import COST, DESCRIPTION, TIMELINE
from dashboard.widgets.trace_tree import DESCRIPTION_MIN, TIMELINE_WIDTH
from tests.agents_support import CLAUDE_332, CODEX_171, claude_projects, three_histories
from tests.conftest import apply_filter, copy_store, expand, wait_idle

pytestmark = pytest.mark.gui


def _open(qtbot, choice: Choice, settings: Settings | None = None):
    window, service = build(choice, settings or Settings(refresh_seconds=3600))
    qtbot.addWidget(window)
    with qtbot.wait_signal(window.tracing.ready, timeout=30_000):
        window.show()
    wait_idle(qtbot, service)
    return window


def _roots(window) -> list:
    tree = window.tracing.tree
    return [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
            if not tree.topLevelItem(i).isHidden()]


def _trace(item):
    return item.data(0, Role.TRACE)


def _cost_text(tree, item) -> str:
    """The Cost cell as the tree paints it (its delegate formats the raw value the row holds)."""
    option = QStyleOptionViewItem()
    index = tree.indexFromItem(item, COST)
    tree.itemDelegateForIndex(index).initStyleOption(option, index)
    return option.text


@pytest.fixture
def three(qtbot):
    """The window of a first launch: an empty HOME but for the three agents' histories, no trace store yet."""
    home = Path(os.environ["HOME"])
    histories = three_histories(home)
    assert not default_db_path().exists()
    window = _open(qtbot, choose(None, None, demo=False))
    yield window, histories
    window.close()


def test_first_launch_shows_the_three_agents_sessions_together(three) -> None:
    window, _histories = three
    roots = _roots(window)
    by_source: dict[str, int] = {}
    for r in roots:
        by_source[_trace(r).source] = by_source.get(_trace(r).source, 0) + 1
    assert by_source == {OPENCODE: 5, CLAUDE_CODE: 8, CODEX: 11}
    labels = {r.text(0) for r in roots}
    assert {"main  (Claude Code session)", "codex  (Codex session)"} <= labels
    assert any(label.endswith("(OpenCode session)") for label in labels)
    assert "OpenCode, Claude Code and Codex" in window.windowTitle()
    status = window.statusBar().currentMessage()
    assert "OpenCode: " in status and "Claude Code: " in status and "Codex: " in status
    assert "cost unknown: no price for mock-model (68)" in window.source_label.toolTip()
    picker = window.tracing.filters.source
    assert [picker.itemData(i) for i in range(picker.count())] == [None, CLAUDE_CODE, CODEX, OPENCODE]


def test_the_waterfall_stays_in_view_beside_long_descriptions(three) -> None:
    """Codex's and Claude Code's sessions are described by their whole first prompt: the columns sized to their
    content at the first fill still leave the Timeline column its room inside the tree."""
    window, _histories = three
    tree = window.tracing.tree
    window.resize(1600, 1000)
    before = sum(tree.columnWidth(c) for c in range(TIMELINE))
    assert before + TIMELINE_WIDTH <= tree.viewport().width()
    assert tree.columnWidth(DESCRIPTION) >= DESCRIPTION_MIN


def test_the_source_filter_shows_one_agent_and_is_remembered(qtbot, three) -> None:
    window, _histories = three
    section = window.tracing
    bar = section.filters
    apply_filter(qtbot, section, lambda b: b.source.setCurrentIndex(b.source.findData(CODEX)))
    assert {_trace(r).source for r in _roots(window)} == {CODEX} and len(_roots(window)) == 11
    # with the agent picker too: Claude Code's subagents only
    apply_filter(qtbot, section, lambda b: b.source.setCurrentIndex(b.source.findData(CLAUDE_CODE)))
    apply_filter(qtbot, section, lambda b: b.agent.setCurrentIndex(b.agent.findData("general-purpose")))
    assert len(_roots(window)) == 8 and {_trace(r).source for r in _roots(window)} == {CLAUDE_CODE}
    apply_filter(qtbot, section, lambda b: b.agent.setCurrentIndex(0))
    apply_filter(qtbot, section, lambda b: b.search.setText("echo deep"))  # a Claude Code subagent's prompt
    assert len(_roots(window)) == 1
    apply_filter(qtbot, section, lambda b: b.search.setText(""))
    apply_filter(qtbot, section, lambda b: b.pattern.setText("main -> * -> *"))
    assert len(_roots(window)) == 1
    apply_filter(qtbot, section, lambda b: b.pattern.setText(""))
    section.save_state()
    window.close()
    again = _open(qtbot, Choice(window.service.sources, window.service.db_path, "again"))
    assert again.tracing.filters.source.currentData() == CLAUDE_CODE
    assert {_trace(r).source for r in _roots(again)} == {CLAUDE_CODE}
    assert bar is not again.tracing.filters
    again.close()


def test_which_agent_its_cost_and_how_it_reopens(qtbot, three) -> None:
    window, _histories = three
    section, tree = window.tracing, window.tracing.tree
    detail = section.detail

    def select(item) -> None:
        tid = _trace(item).trace_id
        tree.setCurrentItem(item)
        qtbot.wait_until(lambda: detail.details is not None and detail.details.trace.trace_id == tid, timeout=20_000)

    codex = next(r for r in _roots(window) if _trace(r).description.startswith("Spawn shell."))
    select(codex)
    assert detail.values["Agent"].text() == "Codex 0.171.0"
    assert detail.values["Cost"].text() == "unknown  ·  with delegations unknown"
    assert "5 LLM calls of a model with no price" in detail.values["Cost"].toolTip()
    assert _cost_text(tree, codex) == "unknown"
    assert "codex resume 01a243ef-2fd4" in detail.open_button.toolTip()
    codex.setExpanded(False)  # the tree opened it itself (its delegation shown): now the user opens it
    steps = expand(qtbot, section, codex)
    llm = next(s for s in steps if s.data(0, Role.STEP).kind == "llm")
    assert _cost_text(tree, llm) == "unknown"
    tree.setCurrentItem(llm)
    assert detail.values["Cost"].text() == "unknown"

    nested = next(r for r in _roots(window) if _trace(r).description.startswith("Go. {{agent general-purpose|Ou"))
    select(nested)
    assert detail.values["Agent"].text() == "Claude Code 2.1.332"
    assert detail.values["Cost"].text().startswith("$0.") and "unpriced" not in detail.values["Cost"].text()
    nested.setExpanded(True)
    outer = nested.child(0)
    outer.setExpanded(True)
    inner = next(outer.child(i) for i in range(outer.childCount()) if _trace(outer.child(i)) is not None)
    select(inner)
    tip = detail.open_button.toolTip()
    assert f"claude --resume {_trace(nested).session_id}" in tip and "cannot be resumed on its own" in tip


def test_compare_across_agents_in_the_compare_tab(qtbot, three) -> None:
    window, _histories = three
    roots = {(_trace(r).source, _trace(r).description.split(" ")[0]): _trace(r) for r in _roots(window)}
    claude = next(t for (s, _d), t in roots.items() if s == CLAUDE_CODE)
    codex = next(t for (s, d), t in roots.items() if s == CODEX and d == "Spawn")
    opencode = next(t for (s, _d), t in roots.items() if s == OPENCODE)
    for left, right in ((opencode, claude), (claude, codex)):
        with qtbot.wait_signal(window.compare.shown, timeout=20_000):
            window.compare_runs(left.trace_id, right.trace_id)
        section = window.compare
        heading = section.heading.text()
        assert f"({'OpenCode' if left is opencode else 'Claude Code'})" in heading
        assert f"({'Claude Code' if right is claude else 'Codex'})" in heading
        total = section.tree.topLevelItem(0)
        from dashboard.widgets.compare_tree import COST as COMPARE_COST
        cost = total.text(COMPARE_COST)
        if right is codex:
            assert cost.endswith("→ unknown")  # no difference made with an unknown side
        else:
            assert cost.count("$") >= 2


def test_the_first_launch_in_a_new_process_shows_the_three(tmp_path: Path) -> None:
    """`agent-traces` itself, started from an empty HOME with the three histories: its screenshot is taken once
    the first load is on screen, and the trace store it wrote holds every agent's sessions."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    three_histories(home, home / ".local" / "share" / "opencode")
    png = tmp_path / "first.png"
    run = subprocess.run([sys.executable, "-m", "dashboard.cli", "--screenshot", str(png)], env=env,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with TraceStore(home / ".local" / "share" / "agent-traces" / "traces.duckdb", read_only=True) as store:
        got = dict(store.conn.execute("SELECT source, count(*) FROM sessions WHERE parent_session_id IS NULL"
                                      " GROUP BY ALL").fetchall())
    assert got == {OPENCODE: 5, CLAUDE_CODE: 8, CODEX: 11}


# -- live: what an agent appends is read by the watcher, and only that ------------------------------------------


def _rows(window, source: str) -> list:
    return [i for i in window.tracing.tree.items.values() if _trace(i).source == source]


def test_a_claude_code_subagent_appearing_and_finishing_is_shown_live(qtbot, tmp_path: Path) -> None:
    """Claude Code writes the call, then a new `<session>/subagents/` folder with the subagent's file, then the
    rest of the session: each is on screen without the timer (every refresh is the watcher's)."""
    original = CLAUDE_332 / "agent-tool" / "projects"
    projects = copy_store(original, tmp_path / "projects")
    session = next(projects.glob("*/*.jsonl"))
    lines = session.read_bytes().splitlines(keepends=True)
    call = next(i for i, line in enumerate(lines) if b'"name":"Agent"' in line and b'"tool_use"' in line)
    session.write_bytes(b"".join(lines[:call + 1]))  # the Agent call written, nothing else yet
    subagents = session.with_suffix("") / "subagents"
    agent_files = {p.name: p.read_bytes() for p in (original / session.parent.name / session.stem / "subagents")
                   .iterdir()}
    shutil.rmtree(subagents.parent)
    window = _open(qtbot, Choice(open_paths([projects]), tmp_path / "t.duckdb", "live"))
    tree = window.tracing.tree
    try:
        call_row = next(i for i in _rows(window, CLAUDE_CODE) if _trace(i).kind == "delegation")
        tid = _trace(call_row).trace_id
        assert _trace(call_row).status == "running" and tid not in tree.steps.counts
        reader = window.service.sources.found[0].source.readers[0]
        subagents.mkdir(parents=True)  # a new folder in a new session folder
        agent = next(n for n in agent_files if n.endswith(".jsonl"))
        (subagents / agent.replace(".jsonl", ".meta.json")).write_bytes(agent_files[agent.replace(".jsonl",
                                                                                                 ".meta.json")])
        agent_lines = agent_files[agent].splitlines(keepends=True)
        first = next(i for i, line in enumerate(agent_lines) if b'"type":"assistant"' in line) + 1
        (subagents / agent).write_bytes(b"".join(agent_lines[:first]))  # its first LLM call, asking for Bash
        qtbot.wait_until(lambda: tree.steps.counts.get(tid) == (1, 1), timeout=10_000)
        parsed, whole = reader.stats.bytes_parsed, reader.stats.files_read_whole
        with open(subagents / agent, "ab") as f:  # the subagent goes on: the tool's result, its answer
            f.write(b"".join(agent_lines[first:]))
        qtbot.wait_until(lambda: tree.steps.counts.get(tid) == (2, 1), timeout=10_000)
        assert reader.stats.bytes_parsed - parsed == len(b"".join(agent_lines[first:]))  # the added bytes only
        assert reader.stats.files_read_whole == whole
        with open(session, "ab") as f:  # the session gets the answer and goes on
            f.write(b"".join(lines[call + 1:]))
        qtbot.wait_until(lambda: _trace(tree.items[tid]).status == "completed", timeout=10_000)
        assert window.tracing.shown_version is not None
    finally:
        window.close()


def test_a_codex_session_in_a_new_day_folder_is_shown_live(qtbot, tmp_path: Path) -> None:
    """Codex starts a session on a new day: a new `YYYY/MM/DD` folder with a rollout that grows, and a spawned
    agent's rollout beside it."""
    sessions = copy_store(CODEX_171 / "sessions", tmp_path / "sessions")
    meta = {p: json.loads(p.read_bytes().split(b"\n", 1)[0])["payload"] for p in sessions.rglob("*.jsonl")}
    root = next(p for p in meta if b"Spawn shell." in p.read_bytes() and meta[p].get("source") == "exec")
    child = next(p for p, m in meta.items() if json.dumps(m).count(meta[root]["id"]) and p != root)
    texts = {p: p.read_bytes() for p in (root, child)}
    for p in (root, child):
        p.unlink()
    window = _open(qtbot, Choice(open_paths([sessions]), tmp_path / "t.duckdb", "live"))
    try:
        assert len([i for i in _rows(window, CODEX) if _trace(i).kind == "session"]) == 10
        reader = window.service.sources.found[0].source.readers[0]
        day = sessions / "2026" / "12" / "06"
        day.mkdir()
        lines = texts[root].splitlines(keepends=True)
        call = next(i for i, line in enumerate(lines) if b'"type":"function_call"' in line)
        (day / root.name).write_bytes(b"".join(lines[:call]))  # the new session, its prompt, no call yet

        def spawn_row():
            return next((i for i in _rows(window, CODEX) if _trace(i).description.startswith("Spawn shell.")), None)

        qtbot.wait_until(lambda: spawn_row() is not None, timeout=10_000)
        read = reader.bytes_read
        rest = b"".join(lines[call:])
        with open(day / root.name, "ab") as f:
            f.write(rest)
        (day / child.name).write_bytes(texts[child])
        qtbot.wait_until(lambda: any(_trace(i).parent_trace_id == _trace(spawn_row()).trace_id
                                     and _trace(i).status == "completed" for i in _rows(window, CODEX)),
                         timeout=10_000)
        # what was added (and the child's new file), not the other 23 rollouts again
        assert reader.bytes_read - read < len(rest) + len(texts[child]) + 1024
    finally:
        window.close()


def test_demo_reads_whichever_histories_it_holds(tmp_path: Path) -> None:
    """--demo: OpenCode's demo store, and the Claude Code and Codex demo histories once they are there."""
    from dashboard.app import demo_store

    demo = choose(None, None, demo=True)
    kinds = demo.sources.kinds
    assert kinds[0] == OPENCODE
    assert (CLAUDE_CODE in kinds) == (demo_store() / "claude" / "projects").is_dir()
    assert (CODEX in kinds) == (demo_store() / "codex" / "sessions").is_dir()
    from analytics.sources import demo_sources

    folder = tmp_path / "demo"
    shutil.copytree(demo_store(), folder, ignore=shutil.ignore_patterns("claude", "codex"))  # OpenCode's only
    claude_projects(folder / "claude" / "projects", ("nested",))
    assert demo_sources(folder).kinds == [OPENCODE, CLAUDE_CODE]
    assert json.dumps(kinds)  # (the demo's own layout is the demo helper's)


def test_flow_metrics_and_time_split_on_claude_code_and_codex_rows(qtbot, three) -> None:
    """The Flow tab draws a Claude Code session's chain, the Metrics tab counts Codex's agents with their cost
    unknown, and the detail pane says where a Codex session's time went."""
    from dashboard.widgets.figures import FigureKinds

    window, _histories = three
    section, tree = window.tracing, window.tracing.tree
    nested = next(r for r in _roots(window) if _trace(r).description.startswith("Go. {{agent general-purpose|Ou"))
    tree.setCurrentItem(nested)
    window.tabs.setCurrentWidget(window.flow)
    qtbot.wait_until(lambda: len(window.flow.view.nodes) == 3, timeout=5000)
    assert sorted(n.title for n in window.flow.view.nodes.values()) == ["general-purpose", "general-purpose", "main"]
    window.tabs.setCurrentWidget(window.tracing)
    apply_filter(qtbot, section, lambda b: b.source.setCurrentIndex(b.source.findData(CODEX)))
    window.tabs.setCurrentWidget(window.metrics)
    agents = window.metrics.agents
    qtbot.wait_until(lambda: agents.topLevelItemCount() == 2, timeout=5000)
    rows = {agents.topLevelItem(i).text(0): agents.topLevelItem(i) for i in range(2)}
    assert set(rows) == {"codex", "default"}
    delegate = agents.itemDelegate()
    assert isinstance(delegate, FigureKinds)
    for column in (7, 8):  # cost own, cost with delegations
        option = QStyleOptionViewItem()
        index = agents.indexFromItem(rows["codex"], column)
        delegate.initStyleOption(option, index)
        assert option.text == "unknown"
    assert "unknown in all" in window.metrics.summary.text()
    window.tabs.setCurrentWidget(window.tracing)
    spawn = next(r for r in _roots(window) if _trace(r).description.startswith("Spawn shell."))
    tree.setCurrentItem(spawn)
    qtbot.wait_until(lambda: section.detail.details is not None
                     and section.detail.details.trace.trace_id == _trace(spawn).trace_id, timeout=20_000)
    split = section.detail.values["Where the time went"].text()
    assert split.startswith("LLM ") and "waiting on delegations" in split
