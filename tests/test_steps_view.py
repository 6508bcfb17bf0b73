"""Step rows in the tree (issue 8): the LLM and tool calls of a trace, read when its row is expanded, on the real
stores with many tool calls (tests/fixtures/steps-*), on real widgets (offscreen)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings, Qt

from analytics import format as fmt
from dashboard.widgets.roles import Role
from dashboard.widgets.trace_rows import DESCRIPTION, DURATION, STATUS
from dashboard.widgets.trace_tree import TraceTree
from tests.conftest import STEPS_118, STEPS_1165, apply_filter, delegation, expand, open_window, wait_idle

pytestmark = pytest.mark.gui
STORES = {"sqlite-1.18.33": STEPS_118, "json-1.1.65": STEPS_1165}


@pytest.fixture(params=list(STORES), ids=list(STORES))
def section(request, qtbot, tmp_path: Path):
    w, section = open_window(qtbot, STORES[request.param], tmp_path / "t.duckdb")
    # Live off, as a user pauses it: the window's own read of a SQLite store whose WAL is there changes that
    # file, and the refresh the watcher then asks for would race each test's own requests
    section.live.setChecked(False)
    wait_idle(qtbot, section.service)
    yield section
    w.close()


def spans(rows) -> list:
    return [r.data(0, Role.STEP) for r in rows]


def test_many_tools_steps_are_read_when_the_row_is_expanded(qtbot, section) -> None:
    row = delegation(section, "Many tools")
    assert not row.isExpanded() and row.childCount() == 0  # nothing read before
    assert row.childIndicatorPolicy() == row.ChildIndicatorPolicy.ShowIndicator
    rows = expand(qtbot, section, row)
    llm = [row.child(i) for i in range(row.childCount())]
    assert [r.data(0, Role.STEP).kind for r in llm] == ["llm"] * 7
    assert [r.childCount() for r in llm] == [1, 1, 1, 1, 1, 1, 0]
    assert all(r.isExpanded() for r in llm[:6])  # the user opened the row: each call shows its tools
    tools = [s for s in spans(rows) if s.kind == "tool"]
    assert [s.name for s in tools] == ["bash", "read", "read", "glob", "grep", "bash"]
    starts = [s.started_at for s in spans(rows)]
    assert starts == sorted(starts)
    assert llm[0].child(0).text(1).endswith("ls -la")  # the title: the command (1.18) or its description (1.1)
    assert llm[0].data(0, Role.STEP).tokens_in == 1500
    assert section.tree.items[row.data(0, Role.TRACE).trace_id] is row  # step rows are not traces


def test_parallel_bash_first_llm_call_has_three_bash_children(qtbot, section) -> None:
    row = delegation(section, "Parallel bash")
    expand(qtbot, section, row)
    first = row.child(0)
    assert [first.child(i).data(0, Role.STEP).name for i in range(first.childCount())] == ["bash"] * 3
    assert first.text(DESCRIPTION) == "bash ×3"  # what the LLM call did, not its provider


def test_rows_the_tree_opens_show_their_delegations_only_unless_every_row_shows_its_steps(qtbot, section) -> None:
    """The first fill opens the rows with delegations under them, which then show their delegations only, so
    the delegation tree stays the outline; the View menu's toggle (remembered) gives every open row its steps,
    each call's tools folded, and taken back, leaves only the rows the user opened with theirs."""
    planner = delegation(section, "Nested tools")
    assert planner.isExpanded()  # it has a delegation under it: opened by the first fill
    with qtbot.assert_not_emitted(section.tree.stepsWanted, wait=300):
        section.tree.steps.look()  # the rows in view: none asks for its steps
    assert planner.childCount() == 1 and not section.tree.step_rows(planner.data(0, Role.TRACE).trace_id)
    with qtbot.wait_signal(section.service.spans, timeout=10_000):
        section.all_steps.setChecked(True)
    qtbot.wait_until(lambda: planner.childCount() == 4, timeout=10_000)  # in view: its steps come by themselves
    children = [planner.child(i) for i in range(planner.childCount())]
    kinds = [c.data(0, Role.STEP).kind if c.data(0, Role.STEP) else c.data(0, Role.TRACE).kind for c in children]
    assert kinds == ["llm", "llm", "delegation", "llm"]
    starts = [(c.data(0, Role.STEP) or c.data(0, Role.TRACE)).started_at for c in children]
    assert starts == sorted(starts)
    assert children[0].child(0).data(0, Role.STEP).name == "read"
    assert children[0].text(DESCRIPTION) == "read"
    assert children[1].text(DESCRIPTION) == "→ coder"  # the call that delegated, to whom
    assert not children[0].isExpanded()  # opened by the tree, not the user: each call's tools stay folded
    assert children[2].data(0, Role.TRACE).description == "Nested child tools"
    many = delegation(section, "Many tools")
    expand(qtbot, section, many)  # opened by the user
    section.all_steps.setChecked(False)
    assert planner.childCount() == 1 and section.tree.step_rows(many.data(0, Role.TRACE).trace_id)
    section.all_steps.setChecked(True)
    section.save_state()
    assert QSettings().value("tracing/all_steps") in (True, "true")


def test_an_llm_call_says_what_it_did(qtbot, section) -> None:
    """Its tools, in order, or, for the last call of a finished trace, the first line of its answer."""
    row = delegation(section, "Many tools")
    llm = [r for r in expand(qtbot, section, row) if r.data(0, Role.STEP).kind == "llm"]
    assert [r.text(0) for r in llm] == ["LLM · mock-1"] * 7
    assert [r.text(DESCRIPTION) for r in llm[:6]] == ["bash", "read", "read", "glob", "grep", "bash"]
    answer = row.data(0, Role.TRACE).output_preview
    assert answer and llm[6].text(DESCRIPTION) == fmt.first_line(answer)


def test_selecting_a_failed_read_shows_its_error_and_double_click_opens_its_trace(qtbot, section) -> None:
    row = delegation(section, "Many tools")
    rows = expand(qtbot, section, row)
    failed = next(r for r in rows if r.data(0, Role.STEP).name == "read" and r.data(0, Role.STEP).status == "error")
    with qtbot.wait_signal(section.tree.stepSelected):
        section.tree.setCurrentItem(failed)
    pane = section.detail
    assert "File not found" in pane.output.text() and pane.output.toggle.text() == "Tool output"
    assert '"filePath"' in pane.input.text() and "missing.txt" in pane.input.text()
    assert pane.values["Status"].text() == "✗ error"
    llm = next(r for r in rows if r.data(0, Role.STEP).kind == "llm")
    section.tree.setCurrentItem(llm)
    assert pane.values["Model"].text() == "mock-1" and pane.values["Tokens"].text().startswith("1,500 in")
    with qtbot.wait_signal(section.tree.traceActivated) as activated:
        section.tree.itemDoubleClicked.emit(failed, 0)
    assert activated.args == [row.data(0, Role.TRACE).trace_id]


def test_the_running_bash_of_a_killed_run_shows_running(qtbot, section) -> None:
    row = delegation(section, "Killed bash")
    rows = [r for r in expand(qtbot, section, row) if r.data(0, Role.STEP).kind == "tool"]
    assert [(r.data(0, Role.STEP).name, r.text(STATUS)) for r in rows] == [("bash", "⟳ running")]
    section.tree.setCurrentItem(rows[0])
    assert section.detail.values["Duration"].text() == "still running"


def test_the_summary_of_steps_is_in_the_detail_pane(qtbot, section) -> None:
    row = delegation(section, "Many tools")
    with qtbot.wait_signal(section.service.details, timeout=10_000):
        section.tree.setCurrentItem(row)
    qtbot.wait_until(lambda: section.detail.values["Steps"].text() == "7 LLM calls · 6 tool calls")


def test_a_refresh_keeps_the_steps_and_a_changed_trace_reads_them_again(qtbot, section) -> None:
    row = delegation(section, "Many tools")
    tid = row.data(0, Role.TRACE).trace_id
    before = spans(expand(qtbot, section, row))
    section.tree.setCurrentItem(section.tree.step_rows(tid)[3])
    section.refresh()
    wait_idle(qtbot, section.service)
    assert spans(section.tree.step_rows(tid)) == before
    # the trace changes (a live refresh brings new figures): its steps are read again, the selected one comes back
    t = row.data(0, Role.TRACE)
    traces = [dataclasses.replace(x, tokens_out=x.tokens_out + 1) if x.trace_id == tid else x
              for x in (i.data(0, Role.TRACE) for i in section.tree.items.values())]
    with qtbot.wait_signal(section.service.spans, timeout=10_000):
        section.tree.show_traces(traces, {x.trace_id for x in traces}, False, rebuild=False)
    qtbot.wait_until(lambda: spans(section.tree.step_rows(tid)) == before)
    assert section.tree.current_span() == before[3] and t.trace_id == tid


def test_filters_still_work_with_steps_shown(qtbot, section) -> None:
    row = delegation(section, "Many tools")
    expand(qtbot, section, row)
    apply_filter(qtbot, section, lambda f: f.search.setText("Parallel bash"))
    assert row.isHidden() or row.parent().isHidden() or row.data(0, Role.TRACE).trace_id in section.tree.marks.dimmed
    apply_filter(qtbot, section, lambda f: f.search.clear())
    assert not row.parent().isHidden() and section.tree.step_rows(row.data(0, Role.TRACE).trace_id)


def test_every_step_row_has_a_bar_on_screen_whatever_the_row_height(qtbot, section) -> None:
    """Step bars are thinner than a call's, but never so thin that a short row paints nothing."""
    from dashboard.widgets.trace_rows import TIMELINE

    tree = section.tree
    rows = expand(qtbot, section, delegation(section, "Many tools"))
    llm = next(r for r in rows if r.data(0, Role.STEP).kind == "llm")
    tree.scrollToItem(llm)
    rect = tree.visualRect(tree.indexFromItem(llm, TIMELINE))
    image = tree.viewport().grab().toImage()
    background = image.pixelColor(rect.right() - 1, rect.top() + 1)
    painted = [x for x in range(rect.left(), rect.right()) if image.pixelColor(x, rect.center().y()) != background]
    assert len(painted) > 3, rect  # a row 14 px high painted none before


def _duration_text(tree, item) -> str:
    """The Duration cell as the tree's delegate shows it."""
    from PyQt6.QtWidgets import QStyleOptionViewItem

    option = QStyleOptionViewItem()
    tree.itemDelegate().initStyleOption(option, tree.indexFromItem(item, DURATION))
    return option.text


def test_an_interrupted_call_ends_at_its_sessions_last_write(qtbot, section) -> None:
    """The killed run's call is still `running` in OpenCode's store, hours after its session's last write: its
    bar and duration end at that write (they do not grow with the clock, and the bar is not hatched), while
    its status stays what OpenCode recorded."""
    from analytics.queries import findings as sf
    from analytics.timeline import now_ms
    from dashboard.data import open_store

    tree = section.tree
    row = delegation(section, "Killed bash")
    t = row.data(0, Role.TRACE)
    with open_store(section.service.db_path, read_only=True) as store:  # waits out a live refresh
        last = sf.last_write_ms(store, t)
    assert t.status == "running" and row.text(STATUS) == "⟳ running"
    assert tree.marks.interrupted[t.trace_id] == last
    assert _duration_text(tree, row) == f"interrupted after {fmt.duration(last - t.started_at)}"
    assert row.data(DURATION, Qt.ItemDataRole.DisplayRole) == last - t.started_at  # sorts by it too
    root = tree.marks.bounds[t.root_session_id]
    assert root.end >= last and not root.running  # the session's time scale no longer grows
    now = now_ms()
    assert tree.marks.bar(t, now) == tree.marks.bar(t, now + 3_600_000)
    assert not tree.ticker.isActive()  # nothing in this store runs any more
    bash = next(r for r in expand(qtbot, section, row) if r.data(0, Role.STEP).kind == "tool")
    assert bash.text(STATUS) == "⟳ running"
    assert _duration_text(tree, bash) == f"interrupted after {fmt.duration(last - bash.data(0, Role.STEP).started_at)}"


@contextmanager
def _store_held(path: Path):
    """The trace store held by another process (as a CLI load holds it) while the block runs."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
                               "print('ready', flush=True); sys.stdin.read()", str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()


def test_steps_that_could_not_be_read_are_asked_again(qtbot, section, tmp_path: Path, monkeypatch) -> None:
    """A step request that failed (the store held by another process) is made again when the row is opened
    again, or at the next refresh, instead of leaving the row without steps."""
    import dashboard.data

    monkeypatch.setattr(dashboard.data, "BUSY_RETRY_SECONDS", 0.3)
    tree = section.tree
    for description, again in (("Many tools", "expand"), ("Failing tools", "refresh")):
        row = delegation(section, description)
        tid = row.data(0, Role.TRACE).trace_id
        assert not row.isExpanded() and not tree.step_rows(tid)
        with _store_held(tmp_path / "t.duckdb"):
            with qtbot.wait_signal(section.service.failed, timeout=20_000):
                row.setExpanded(True)
            wait_idle(qtbot, section.service)
        assert not tree.step_rows(tid)
        with qtbot.wait_signal(section.service.spans, timeout=20_000):
            if again == "expand":
                row.setExpanded(False)
                row.setExpanded(True)
            else:
                tree.scrollToItem(row)
                section.refresh()
        qtbot.wait_until(lambda tid=tid: bool(tree.step_rows(tid)), timeout=20_000)


@pytest.mark.parametrize("order", [Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder])
@pytest.mark.parametrize("column", [DURATION, 0, 3])  # duration, agent, tokens
def test_sorting_orders_the_delegations_and_keeps_the_steps_in_time(qtbot, section, column, order) -> None:
    """Clicking a header sorts the delegations under a row by that column; the row's own steps follow them in
    time order whatever the column, each LLM call with its tool calls under it, also in time order."""
    tree = section.tree
    planner = delegation(section, "Nested tools")
    section.all_steps.setChecked(True)  # the rows the tree opened show their steps too
    qtbot.wait_until(lambda: planner.childCount() == 4, timeout=10_000)
    parallel = delegation(section, "Parallel bash")
    expand(qtbot, section, parallel)
    tree.sortByColumn(column, order)
    for row in (planner, parallel, planner.parent()):
        children = [row.child(i) for i in range(row.childCount())]
        calls = [c for c in children if c.data(0, Role.TRACE) is not None]
        steps = [c.data(0, Role.STEP) for c in children if c.data(0, Role.STEP) is not None]
        assert children[:len(calls)] == calls  # the delegations first, sorted as Qt sorts them
        values = [c.data(column, Qt.ItemDataRole.DisplayRole) for c in calls]
        assert values == sorted(values, reverse=order == Qt.SortOrder.DescendingOrder)
        assert [s.started_at for s in steps] == sorted(s.started_at for s in steps) and steps
        for llm in children[len(calls):]:
            tools = [llm.child(i).data(0, Role.STEP) for i in range(llm.childCount())]
            assert all(t.parent_span_id == llm.data(0, Role.STEP).span_id for t in tools)
            assert [t.started_at for t in tools] == sorted(t.started_at for t in tools)
    first = parallel.child(0)
    assert [first.child(i).data(0, Role.STEP).name for i in range(first.childCount())] == ["bash"] * 3


def test_columns_fit_what_they_show(qtbot, section) -> None:
    """Sized to their content at the first fill, and the Agent column widened for the step rows that come in
    ("LLM · mock-1" under a nested delegation is not cut)."""
    tree = section.tree

    def cut(item, column: int) -> bool:
        index = tree.indexFromItem(item, column)
        return tree.sizeHintForIndex(index).width() > tree.visualRect(index).width() + 1

    assert not [i.text(0) for i in tree.items.values() if any(cut(i, c) for c in (0, DURATION, STATUS))]
    deep = max(tree.items.values(), key=lambda i: i.data(0, Role.TRACE).depth)
    rows = expand(qtbot, section, deep)
    tree.scrollToItem(rows[-1])
    assert rows[0].text(0) == "LLM · mock-1" and not [r.text(0) for r in rows if cut(r, 0)]



def test_a_label_grown_after_the_first_fill_is_not_cut_unless_the_user_sized_the_column(qtbot, section) -> None:
    """A row flagged after the first fill ("build  (OpenCode session)  ⚠") widens the Agent column; once the user
    has sized the column, the tree leaves it as they set it. (A tree of its own, first filled with no flag.)"""
    traces = sorted((i.data(0, Role.TRACE) for i in section.tree.items.values()), key=lambda t: t.depth)
    tree = TraceTree()
    qtbot.addWidget(tree)
    tree.resize(1200, 600)
    tree.show()
    tree.show_traces(traces, set(), False, rebuild=True, flags={})
    session, other = [t for t in traces if t.depth == 0][:2]
    width = tree.columnWidth(0)
    tree.show_traces(traces, set(), False, rebuild=False, flags={session.trace_id: "far above what it usually takes"})
    item = tree.items[session.trace_id]
    index = tree.indexFromItem(item, 0)
    assert item.text(0).endswith("⚠") and tree.columnWidth(0) > width
    assert tree.sizeHintForIndex(index).width() <= tree.visualRect(index).width() + 1
    tree.setColumnWidth(0, 60)  # the user's width
    tree.show_traces(traces, set(), False, rebuild=False, flags={other.trace_id: "far above what it usually takes"})
    assert tree.items[other.trace_id].text(0).endswith("⚠") and tree.columnWidth(0) == 60



def test_a_call_judged_interrupted_after_the_first_fill_widens_the_duration_column(qtbot, section) -> None:
    """"7.8 s…" at the first fill, "interrupted after 1m 01s" once judged: the Duration column is widened, not
    cut."""
    traces = sorted((i.data(0, Role.TRACE) for i in section.tree.items.values()), key=lambda t: t.depth)
    call = next(t for t in traces if t.depth == 1)
    running = dataclasses.replace(call, status="running", ended_at=None, duration_ms=None)
    traces = [running if t is call else t for t in traces]
    tree = TraceTree()
    qtbot.addWidget(tree)
    tree.resize(1200, 600)
    tree.show()
    tree.show_traces(traces, set(), False, rebuild=True)
    width = tree.columnWidth(DURATION)
    tree.show_traces(traces, set(), False, rebuild=False, interrupted={call.trace_id: call.started_at + 61_000})
    index = tree.indexFromItem(tree.items[call.trace_id], DURATION)
    assert tree.columnWidth(DURATION) > width
    assert tree.sizeHintForIndex(index).width() <= tree.visualRect(index).width() + 1
