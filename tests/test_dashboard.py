"""The tracing tab on real widgets (offscreen) and real stores."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest

from analytics.opencode import open_source
from analytics.settings import Settings
from dashboard.app import Choice, build, choose
from dashboard.widgets.roles import Role
from dashboard.widgets.trace_rows import STATUS
from tests.conftest import (
    CASES_118,
    CASES_1165,
    apply_filter,
    copy_store,
    open_window,
    row,
    select,
    tree_digest,
    wait_idle,
)

pytestmark = pytest.mark.gui
HOSTILE = "a'b\"c $(touch x) `touch y`;z"


@pytest.fixture
def live(tmp_path: Path) -> Path:
    return copy_store(CASES_118, tmp_path / "opencode")


@pytest.fixture
def window(qtbot, live: Path, tmp_path: Path):
    w, section = open_window(qtbot, live, tmp_path / "t.duckdb")
    yield w, section
    w.close()


def test_tree_shows_sessions_and_nested_delegations(window) -> None:
    _w, section = window
    tree = section.tree
    assert len(tree.items) == 14 and tree.topLevelItemCount() == 5
    starts = [tree.topLevelItem(i).data(0, Role.TRACE).started_at for i in range(5)]
    assert starts == sorted(starts, reverse=True)  # newest session first
    beta = row(section, "Beta job")
    assert [c.text(1) for c in tree.trace_children(beta)] == ["Check beta"]
    assert row(section, "Slow job").text(STATUS) == "⟳ running"
    assert row(section, "Alpha job").text(STATUS) == "✓ completed"


def test_sorting_uses_raw_values(window) -> None:
    _w, section = window
    tree = section.tree
    tree.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # duration, numerically
    parallel = row(section, "Alpha job").parent()
    durations = [c.data(2, Qt.ItemDataRole.DisplayRole) for c in tree.trace_children(parallel)]
    assert durations == sorted(durations, reverse=True)
    assert all(isinstance(d, int) for d in durations)


def test_filters_narrow_the_tree(qtbot, window) -> None:
    _w, section = window
    tree = section.tree
    f = section.filters
    select(qtbot, section, "Slow job")
    apply_filter(qtbot, section, lambda f: f.agent.setCurrentIndex(f.agent.findData("reviewer")))
    assert len(tree.visible_roots()) == 2  # the trees that hold a reviewer call, whole
    assert not tree.currentItem().isHidden()  # the selected row was filtered out: another one took over
    dimmed = [i for tid, i in tree.items.items() if tid in tree.marks.dimmed]
    assert all(i.data(0, Role.TRACE).subagent_type != "reviewer" for i in dimmed) and dimmed
    apply_filter(qtbot, section,
           lambda f: (f.agent.setCurrentIndex(0), f.status.setCurrentIndex(f.status.findData("running"))))
    assert len(tree.visible_roots()) == 1 and not row(section, "Slow job").isHidden()
    apply_filter(qtbot, section, lambda f: (f.status.setCurrentIndex(0), f.search.setText("עברית")))
    assert [tree.trace_children(root)[0].text(1) for root in tree.visible_roots()] == ["Huge context"]
    # "today" is the day of the newest fixture session, so the presets do not depend on when the tests run
    newest = max(tree.topLevelItem(i).data(0, Role.TRACE).started_at for i in range(tree.topLevelItemCount()))
    f.clock = lambda: datetime.fromtimestamp(newest / 1000) + timedelta(hours=1)
    apply_filter(qtbot, section, lambda f: (f.search.clear(), f.preset.setCurrentText("Last 7 days")))
    assert len(tree.visible_roots()) == 4  # the three-week-old session is out
    sid = f.session.itemData(2)
    apply_filter(qtbot, section, lambda f: (f.preset.setCurrentText("All time"), f.session.setCurrentIndex(2)))
    assert [root.data(0, Role.TRACE).trace_id for root in tree.visible_roots()] == [sid]
    apply_filter(qtbot, section, lambda f: f.session.setCurrentIndex(0))
    assert len(tree.visible_roots()) == 5 and tree.shown_count() == 14


def test_a_filter_changed_while_a_refresh_starts_is_shown(qtbot, window) -> None:
    """A refresh (the watcher, the timer, F5) asked for right after a filter change answers for the new
    filter: its load finds nothing new, and the view still shows the filter's result (it kept the unfiltered
    tree: the filter's answer was dropped as older than the refresh, and the refresh said "unchanged")."""
    _w, section = window
    section.filters.search.setText("Check beta")
    section.filters.apply()
    section.refresh()
    wait_idle(qtbot, section.service)
    tree = section.tree
    assert len(tree.visible_roots()) == 1
    shown = {tree.items[t].text(1) for t in tree.items if t not in tree.marks.dimmed and not tree.items[t].isHidden()}
    assert "Check beta" in shown and "Alpha job" not in shown


def test_search_box_is_debounced(qtbot, window) -> None:
    _w, section = window
    with qtbot.wait_signal(section.filters.changed, timeout=2000) as blocker:
        for ch in "Check":
            section.filters.search.setText(section.filters.search.text() + ch)
    assert blocker.args[0].text == "Check"


def test_click_shows_the_full_prompts_as_plain_text(qtbot, window) -> None:
    _w, section = window
    select(qtbot, section, "Huge context")
    d = section.detail
    text = d.input.text()
    assert len(text.encode()) >= 400 * 1024 and text == d.details.trace.prompt_input  # Copy copies all of it
    shown = d.input.shown_text()  # its first 200 KB (tests/test_big_prompt.py)
    assert "<script>alert('x')</script>" in shown and "\x1b[31mrouge" in shown  # shown literally
    assert text.startswith(shown)
    assert d.values["Chain"].text() == "build › reviewer"
    select(qtbot, section, "Check beta")
    assert d.values["Chain"].text() == "build › coder › reviewer"
    assert d.input.text() == "Check it." and d.output.text() == "Done: Check it."
    select(qtbot, section, "Slow job")
    assert d.output.text() == "" and d.output.edit.placeholderText().startswith("Still running")


def test_find_in_prompt(qtbot, window) -> None:
    _w, section = window
    select(qtbot, section, "Huge context")
    box = section.detail.input
    box.find_box.setText("ligne 3 ")
    assert box.find_next()
    assert box.edit.textCursor().selectedText().lower() == "ligne 3 "


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_double_click_opens_the_child_session_in_its_directory(qtbot, tmp_path: Path, monkeypatch) -> None:
    data = copy_store(CASES_118, tmp_path / "opencode")
    target = tmp_path / "work" / HOSTILE
    target.mkdir(parents=True)
    conn = sqlite3.connect(data / "opencode.db")
    conn.execute("UPDATE session SET directory = ?", (str(target),))  # hostile on purpose
    conn.commit()
    conn.close()
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    _script(bin_dir / "opencode", f'{{ pwd; for a in "$@"; do echo "$a"; done; }} > "{record}.tmp";'
                                  f' mv "{record}.tmp" "{record}"\n')
    _script(bin_dir / "stub-term", 'shift; exec "$@"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TERMINAL", "stub-term")
    monkeypatch.chdir(tmp_path / "work")
    w, section = open_window(qtbot, data, tmp_path / "t.duckdb")
    # a person's double-click: press and release, then the double-click, on the nested call's row
    centre = section.tree.visualItemRect(row(section, "Check beta")).center()
    no_modifier = Qt.KeyboardModifier.NoModifier
    QTest.mouseClick(section.tree.viewport(), Qt.MouseButton.LeftButton, no_modifier, centre)
    QTest.mouseDClick(section.tree.viewport(), Qt.MouseButton.LeftButton, no_modifier, centre)
    qtbot.wait_until(record.exists, timeout=20_000)
    # the delegation opens its child session, in its directory, and nothing else ran
    assert record.read_text().splitlines() == [str(target), "--session", "ses_dfe6a6a70ffecpRBYWKidoB6t4"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [HOSTILE]
    w.close()


def test_refresh_after_the_store_grows_keeps_selection_and_expansion(qtbot, tmp_path: Path) -> None:
    data = copy_store(CASES_118, tmp_path / "opencode")
    conn = sqlite3.connect(data / "opencode.db")
    root = conn.execute("SELECT id FROM session WHERE title = 'Scripted session 1'").fetchone()[0]
    tree_ids = [root] + [r[0] for r in conn.execute(
        "WITH RECURSIVE t(id) AS (SELECT id FROM session WHERE parent_id = ? UNION"
        " SELECT s.id FROM session s JOIN t ON s.parent_id = t.id) SELECT id FROM t", (root,))]
    marks = ",".join("?" * len(tree_ids))
    for table, column in (("part", "session_id"), ("message", "session_id"), ("event_sequence", "aggregate_id"),
                          ("session", "id")):
        conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", tree_ids)
    conn.commit()
    w, section = open_window(qtbot, data, tmp_path / "t.duckdb")
    tree = section.tree
    assert tree.topLevelItemCount() == 4
    select(qtbot, section, "Write v2")
    kept = dict(tree.items)
    old = row(section, "Old job").parent()
    old.setExpanded(False)
    expanded = tree.expanded_ids()
    # OpenCode writes that session tree back (the real rows of the fixture)
    conn.execute("ATTACH ? AS orig", (str(CASES_118 / "opencode.db"),))
    for table, column in (("session", "id"), ("message", "session_id"), ("part", "session_id"),
                          ("event_sequence", "aggregate_id")):
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM orig.{table} WHERE {column} IN ({marks})", tree_ids)
    conn.commit()
    conn.close()
    section.refresh()
    qtbot.wait_until(lambda: len(tree.items) == 14, timeout=20_000)
    assert tree.topLevelItemCount() == 5
    assert tree.current_trace_id() == row(section, "Write v2").data(0, Role.TRACE).trace_id
    assert all(tree.items[tid] is it for tid, it in kept.items())  # the same rows, updated in place
    assert tree.expanded_ids() >= expanded and not old.isExpanded()
    new_root = row(section, "Alpha job").parent()
    assert tree.indexOfTopLevelItem(new_root) >= 0 and row(section, "Check beta").parent().text(1) == "Beta job"
    w.close()


def test_two_refreshes_in_a_row_still_show_what_the_first_read(qtbot, window, live: Path) -> None:
    """The first refresh loads the change and its snapshot is dropped (a newer request is pending); the second
    finds nothing new to load. The tree must still get the change (the file watcher and a refresh often race so)."""
    _w, section = window
    wait_idle(qtbot, section.service)
    conn = sqlite3.connect(live / "opencode.db")
    root = conn.execute("SELECT id FROM session WHERE title = 'Scripted session 1'").fetchone()[0]
    conn.execute("UPDATE session SET title = 'Renamed while open' WHERE id = ?", (root,))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (root,))
    conn.commit()
    conn.close()
    section.refresh()
    section.refresh()
    qtbot.wait_until(lambda: "Renamed while open" in {r.text(1) for r in section.tree.visible_roots()},
                     timeout=20_000)


def test_a_write_is_on_screen_before_the_history_is_judged_again(qtbot, window, live: Path) -> None:
    """A refresh that loaded something shows the rows as stored at once, then the snapshot with the findings
    judged on the whole history again (a second on a long one); no "Loading…" is said for it. With a pattern,
    which needs that judgement to pick its rows, only the judged snapshot comes."""
    _w, section = window
    section.live.setChecked(False)  # only the refreshes asked for here, not the watcher's for the same writes
    wait_idle(qtbot, section.service)
    marks = section.tree.marks
    flagged = (dict(marks.flags), set(marks.critical), dict(marks.interrupted))
    assert all(flagged)  # the fixture has flags, critical paths and interrupted calls to keep
    seen: list[tuple[bool, bool, bool, bool]] = []  # (final, judging, the change on screen, the marks kept)
    section.service.done.connect(lambda snap: seen.append(
        (snap.final, snap.judging, "Renamed while open" in {r.text(1) for r in section.tree.visible_roots()},
         (marks.flags, marks.critical, marks.interrupted) == flagged)))
    said: list[str] = []
    section.status.connect(said.append)

    def rename(title: str) -> None:
        conn = sqlite3.connect(live / "opencode.db")
        root = conn.execute("SELECT id FROM session WHERE title LIKE 'Scripted session 1%'"
                            " OR title LIKE 'Renamed%'").fetchone()[0]
        conn.execute("UPDATE session SET title = ? WHERE id = ?", (title, root))
        conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (root,))
        conn.commit()
        conn.close()

    rename("Renamed while open")
    section.refresh()
    wait_idle(qtbot, section.service)
    assert seen == [(False, True, True, True), (True, False, True, True)]
    assert not [text for text in said if text.startswith("Loading")]
    apply_filter(qtbot, section, lambda bar: bar.pattern.setText("*"))
    seen.clear()
    rename("Renamed again")
    section.refresh()
    wait_idle(qtbot, section.service)
    assert [(final, judging) for final, judging, _, _ in seen] == [(True, False)]


def test_an_agent_writing_during_every_load_still_gets_its_findings_shown(qtbot, window, live: Path) -> None:
    """Each refresh's judged snapshot is shown even when the watcher asked for the next refresh meanwhile: it was
    dropped as out of date once the next load had started, so while an agent kept writing the tree never got
    its flags, nor the Metrics tab its analysis."""
    _w, section = window
    section.live.setChecked(False)  # the refreshes are the ones asked for here
    wait_idle(qtbot, section.service)
    judged: list[object] = []
    section.analyzed.connect(judged.append)
    writes = iter(range(1, 5))

    def rename(n: int) -> None:
        conn = sqlite3.connect(live / "opencode.db")
        root = conn.execute("SELECT id FROM session WHERE title LIKE 'Scripted session 1%'"
                            " OR title LIKE 'Renamed%'").fetchone()[0]
        conn.execute("UPDATE session SET title = ? WHERE id = ?", (f"Renamed {n}", root))
        conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (root,))
        conn.commit()
        conn.close()

    def write_again(snap) -> None:  # the agent writes while this refresh judges the history
        if snap.judging and (n := next(writes, None)) is not None:
            rename(n)
            section.refresh()

    section.service.done.connect(write_again)
    rename(0)
    section.refresh()
    qtbot.wait_until(lambda: "Renamed 4" in {r.text(1) for r in section.tree.visible_roots()}, timeout=30_000)
    wait_idle(qtbot, section.service)
    assert len(judged) == 5  # one judged snapshot shown per load that changed something


@pytest.mark.parametrize("store", [CASES_118, CASES_1165], ids=["sqlite", "legacy-json"])
def test_a_refresh_that_loads_nothing_judges_nothing_again(qtbot, tmp_path: Path, store: Path) -> None:
    """A load that found nothing new does not make the view read and judge the whole history again: a legacy
    JSON store (no file stamp) or a SQLite file written without a session changing did so at every refresh, a
    second of the worker on a long history."""
    data = copy_store(store, tmp_path / "opencode")
    w, section = open_window(qtbot, data, tmp_path / "t.duckdb")
    section.live.setChecked(False)
    wait_idle(qtbot, section.service)
    seen: list[tuple[bool, bool]] = []
    section.service.done.connect(lambda snap: seen.append((snap.changed, snap.judging)))
    if store == CASES_118:  # OpenCode wrote, but to no session
        conn = sqlite3.connect(data / "opencode.db")
        conn.execute("CREATE TABLE written_meanwhile (a)")
        conn.commit()
        conn.close()
    for _ in range(2):
        section.refresh()
        wait_idle(qtbot, section.service)
    assert seen == [(False, False), (False, False)]
    w.close()


def test_running_call_completes_in_place(qtbot, window, live: Path) -> None:
    _w, section = window
    select(qtbot, section, "Slow job")
    slow = row(section, "Slow job")
    conn = sqlite3.connect(live / "opencode.db")
    pid, sid, data = conn.execute("SELECT id, session_id, data FROM part WHERE data LIKE '%\"status\":\"running\"%'"
                                  " AND data LIKE '%\"tool\":\"task\"%'").fetchone()
    part = json.loads(data)
    start = part["state"]["time"]["start"]
    part["state"].update(status="completed", output="<task_result>\nall slow work done\n</task_result>",
                         time={"start": start, "end": start + 90_000})
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(part, separators=(",", ":")), pid))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (sid,))
    conn.commit()
    conn.close()
    section.refresh()
    qtbot.wait_until(lambda: slow.text(STATUS) == "✓ completed", timeout=20_000)
    assert row(section, "Slow job") is slow
    qtbot.wait_until(lambda: section.detail.output.text() == "all slow work done", timeout=20_000)


def test_cli_load_while_the_window_is_open(qtbot, window, tmp_path: Path) -> None:
    """The window holds the trace store only while it works, so a CLI load in between succeeds."""
    _w, section = window
    wait_idle(qtbot, section.service)
    run = subprocess.run([sys.executable, "-m", "analytics.cli", "load", "--source", str(CASES_118), "--db",
                          str(tmp_path / "t.duckdb")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    section.refresh()
    wait_idle(qtbot, section.service)
    assert len(section.tree.items) == 14


def test_store_held_by_another_process_is_reported_not_fatal(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    import dashboard.data

    monkeypatch.setattr(dashboard.data, "BUSY_RETRY_SECONDS", 0.3)
    w, section = window
    wait_idle(qtbot, section.service)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
                               "print('ready', flush=True); sys.stdin.read()", str(tmp_path / "t.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with qtbot.wait_signal(section.status, timeout=20_000,
                               check_params_cb=lambda text: "in use by another agent-traces process" in text):
            section.refresh()
    finally:
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()
    section.refresh()
    wait_idle(qtbot, section.service)
    assert len(section.tree.items) == 14  # nothing lost
    assert w.isVisible()


def test_layout_and_filters_are_remembered(qtbot, live: Path, tmp_path: Path) -> None:
    w, section = open_window(qtbot, live, tmp_path / "t.duckdb")
    section.splitter.setSizes([700, 300])
    section.tree.setColumnWidth(1, 333)
    apply_filter(qtbot, section, lambda f: f.status.setCurrentIndex(f.status.findData("completed")))
    sizes = section.splitter.sizes()
    w.close()
    w2, section2 = open_window(qtbot, live, tmp_path / "t.duckdb")
    assert section2.filters.status.currentData() == "completed"
    assert section2.tree.columnWidth(1) == 333
    restored = section2.splitter.sizes()
    assert restored[0] / sum(restored) == pytest.approx(sizes[0] / sum(sizes), abs=0.01)
    dimmed = section2.tree.marks.dimmed
    assert all(i.data(0, Role.TRACE).status == "completed" or i.data(0, Role.TRACE).trace_id in dimmed
               for i in section2.tree.items.values())
    w2.close()


def test_no_history_falls_back_to_the_demo(tmp_path: Path) -> None:
    """No OpenCode, Claude Code or Codex history on the machine: one sentence naming where each was looked for,
    and the bundled demo, whatever of the three agents it holds."""
    choice = choose(None, str(tmp_path / "t.duckdb"), demo=False)
    assert choice.sources and "demo store" in choice.notice and len(choice.notice) < 160  # the status bar's room
    assert "No OpenCode, Claude Code or Codex history found" in choice.notice
    assert "No agent history found" in choice.detail and ".claude/projects" in choice.detail
    assert ".codex/sessions" in choice.detail
    assert {f.location.parent.name if f.kind == "opencode" else f.location.parents[1].name
            for f in choice.sources} == {"demo"}
    assert "opencode" in choice.sources.kinds


DEMO_FOLDER = Path(__file__).resolve().parent.parent / "resources" / "demo"


def test_screenshot_of_the_demo_offscreen(tmp_path: Path) -> None:
    before = tree_digest(DEMO_FOLDER)
    png = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    run = subprocess.run([sys.executable, "-m", "dashboard.cli", "--demo", "--screenshot", str(png)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert tree_digest(DEMO_FOLDER) == before  # the bundled histories were not written


def test_first_load_slower_than_the_refresh_interval_fills_the_window(qtbot, live: Path, tmp_path: Path,
                                                                      monkeypatch) -> None:
    """The timer asks for refreshes while the first load runs; they wait for it, and its result is shown."""
    import dashboard.data

    monkeypatch.setattr(dashboard.data, "BUSY_RETRY_SECONDS", 20)
    db = tmp_path / "t.duckdb"
    # another agent-traces process holds the new trace store for a while: the first load takes longer than
    # several refresh intervals
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
                               "print('ready', flush=True); time.sleep(2.5)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        window, _service = build(Choice(open_source(live), db, str(live)), Settings(refresh_seconds=0.5))
        qtbot.addWidget(window)
        section = window.tracing
        with qtbot.wait_signal(section.ready, timeout=30_000):
            window.show()
    finally:
        holder.wait(30)
        holder.stdout.close()
    assert len(section.tree.items) == 14
    for _ in range(2):  # two more timer refreshes: the tree stays whole
        with qtbot.wait_signal(section.service.done, timeout=10_000):
            pass
    assert len(section.tree.items) == 14 and section.tree.topLevelItemCount() == 5
    window.close()


def test_data_a_cli_load_stored_is_shown_though_the_source_looks_unchanged(qtbot, tmp_path: Path) -> None:
    data = copy_store(CASES_118, tmp_path / "opencode")
    conn = sqlite3.connect(data / "opencode.db")
    conn.execute("ATTACH ? AS orig", (str(CASES_118 / "opencode.db"),))
    root = conn.execute("SELECT id FROM session WHERE title = 'Scripted session 1'").fetchone()[0]
    tree_ids = [root] + [r[0] for r in conn.execute(
        "WITH RECURSIVE t(id) AS (SELECT id FROM session WHERE parent_id = ? UNION"
        " SELECT s.id FROM session s JOIN t ON s.parent_id = t.id) SELECT id FROM t", (root,))]
    marks = ",".join("?" * len(tree_ids))
    tables = (("part", "session_id"), ("message", "session_id"), ("event_sequence", "aggregate_id"),
              ("session", "id"))
    for table, column in tables:
        conn.execute(f"DELETE FROM main.{table} WHERE {column} IN ({marks})", tree_ids)
    conn.commit()
    w, section = open_window(qtbot, data, tmp_path / "t.duckdb")
    assert section.tree.topLevelItemCount() == 4
    for table, column in reversed(tables):  # OpenCode writes the tree back
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM orig.{table} WHERE {column} IN ({marks})", tree_ids)
    conn.commit()
    conn.close()
    run = subprocess.run([sys.executable, "-m", "analytics.cli", "load", "--source", str(data), "--db",
                          str(tmp_path / "t.duckdb")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    section.refresh()  # the window's own load finds nothing new in OpenCode's store: the CLI stored it
    qtbot.wait_until(lambda: len(section.tree.items) == 14, timeout=20_000)
    new_root = row(section, "Alpha job").parent()
    assert new_root.isExpanded()  # a session that arrives is opened like the others
    w.close()


def test_a_long_load_shows_the_newest_sessions_first_with_its_progress(qtbot, live: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    import analytics.loader
    import dashboard.data

    monkeypatch.setattr(analytics.loader, "FIRST_BATCH_ROOTS", 1)
    monkeypatch.setattr(analytics.loader, "BATCH_SESSIONS", 3)
    monkeypatch.setattr(dashboard.data, "PARTIAL_EVERY_SECONDS", 0)
    window, _service = build(Choice(open_source(live), tmp_path / "t.duckdb", str(live)),
                             Settings(refresh_seconds=3600))
    qtbot.addWidget(window)
    section = window.tracing
    seen: list[tuple[int, int]] = []  # rows shown, session rows shown, at each snapshot the tree applied
    steps, bar = [], []
    section.service.done.connect(lambda snap: seen.append((len(section.tree.items), snap.final)))
    section.progress.connect(lambda step: (steps.append(step), bar.append(window.load_progress.isVisible())))
    with qtbot.wait_signal(section.ready, timeout=20_000):
        window.show()
    partial = [n for n, final in seen if not final]
    assert partial and partial[0] < 14  # rows were on screen before the load had stored everything
    first_root = section.tree.topLevelItem(0).data(0, Role.TRACE)
    assert first_root.started_at == max(section.tree.topLevelItem(i).data(0, Role.TRACE).started_at
                                        for i in range(5))
    shown = [s for s in steps if s is not None]
    assert shown and all(a.sessions_done < b.sessions_done for a, b in zip(shown, shown[1:], strict=False))
    assert steps[-1] is None and not window.load_progress.isVisible()  # gone once the load is over
    assert any(bar) and "sessions" in window.load_progress.format()
    assert len(section.tree.items) == 14
    window.close()


def test_details_asked_for_during_a_long_load_come_between_its_steps(qtbot, live: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:
    import analytics.loader

    w, section = open_window(qtbot, live, tmp_path / "t.duckdb")
    wait_idle(qtbot, section.service)
    monkeypatch.setattr(analytics.loader, "FIRST_BATCH_ROOTS", 1)
    monkeypatch.setattr(analytics.loader, "BATCH_SESSIONS", 3)
    events: list[tuple[str, str]] = []
    section.service.details.connect(lambda _gen, payload: events.append(("details", payload[0].trace.trace_id)))
    section.service.done.connect(lambda snap: events.append(("final" if snap.final else "step", "")))
    section.refresh(full=True)  # a load of several steps, on the worker now
    target = row(section, "Old job")
    section.tree.setCurrentItem(target)  # asked while it runs
    tid = target.data(0, Role.TRACE).trace_id
    qtbot.wait_until(lambda: any(kind == "final" for kind, _ in events), timeout=20_000)
    wait_idle(qtbot, section.service)
    answers = [i for i, event in enumerate(events) if event == ("details", tid)]
    final = next(i for i, (kind, _) in enumerate(events) if kind == "final")
    assert answers and answers[0] < final  # answered before the load was over, not after it
    assert section.detail.details.trace.trace_id == tid
    w.close()
