"""Render the README screenshots: the bundled demo (OpenCode, Claude Code and Codex), a Claude Code subagent open
on its steps and one of them selected; or, for `compare`, the same task run by OpenCode and by Claude Code
(tests/fixtures/compare-agents) in the Compare tab, their coder calls selected.

    QT_QPA_PLATFORM=offscreen python tools/readme_screenshot.py resources/screenshot.png [traces|flow|metrics]
    QT_QPA_PLATFORM=offscreen python tools/readme_screenshot.py resources/compare.png compare
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PyQt6.QtWidgets import QApplication  # noqa: E402

from analytics.settings import Settings  # noqa: E402
from analytics.sources import demo_sources, open_paths  # noqa: E402
from dashboard.app import Choice, build, demo_store  # noqa: E402
from dashboard.widgets.roles import Role  # noqa: E402


def compare(out: str) -> None:
    """The Compare tab on the same task run by OpenCode (left) and by Claude Code (right), the coder row selected."""
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces-screenshot")
    tmp = Path(tempfile.mkdtemp())
    store = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "compare-agents"
    window, service = build(Choice(open_paths([store / "opencode", store / "claude" / "projects"]),
                                   tmp / "t.duckdb", "OpenCode and Claude Code"), Settings(refresh_seconds=3600))
    window.resize(1600, 860)
    window.show()
    tree = window.tracing.tree
    while not tree.items:
        app.processEvents()
    service.pool.waitForDone()
    app.processEvents()
    roots = [tree.topLevelItem(i).data(0, Role.TRACE) for i in range(tree.topLevelItemCount())]
    first = min((t for t in roots if t.source == "opencode"), key=lambda t: t.started_at)
    second = min((t for t in roots if t.source == "claude-code"), key=lambda t: t.started_at)
    shown: list[int] = []
    window.compare.shown.connect(lambda: shown.append(1))
    window.compare_runs(first.trace_id, second.trace_id)
    while not shown:
        app.processEvents()
    shown.clear()
    window.compare.tree.setCurrentItem(next(r for r in window.compare.tree.rows if r.text(0).startswith("coder")))
    while not shown:
        app.processEvents()
    window.compare.splitter.setSizes([230, 560])
    window.statusBar().clearMessage()  # it names the fixture's path on this machine
    for _ in range(10):
        app.processEvents()
    window.grab().save(out, "PNG")
    window.close()


def main(out: str, tab: str = "traces", description: str = "Profile checkout queries") -> None:
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces-screenshot")
    tmp = Path(tempfile.mkdtemp())
    window, service = build(Choice(demo_sources(demo_store()), tmp / "t.duckdb", "demo (bundled)"),
                            Settings(refresh_seconds=3600))
    window.resize(1600, 900)
    window.show()
    section = window.tracing
    while not section.tree.items:
        app.processEvents()
    service.pool.waitForDone()
    app.processEvents()
    item = next(i for i in section.tree.items.values() if i.text(1) == description)
    if tab == "traces":  # the subagent opened on its steps, its second LLM call's first tool call selected
        section.tree.collapseAll()
        up = item.parent()
        while up is not None:
            up.setExpanded(True)
            up = up.parent()
        item.setExpanded(True)
        while not any(item.child(i).data(0, Role.STEP) for i in range(item.childCount())):
            app.processEvents()
        llms = [item.child(i) for i in range(item.childCount()) if item.child(i).data(0, Role.STEP)]
        step = next(c for c in llms if c.childCount()) if any(c.childCount() for c in llms) else llms[0]
        step.setExpanded(True)
        section.tree.setCurrentItem(step.child(0) if step.childCount() else step)
        for _ in range(50):
            app.processEvents()
    else:
        section.tree.setCurrentItem(item)
        while section.detail.details is None or section.detail.details.trace.description != description:
            app.processEvents()
    app.processEvents()
    window.tabs.setCurrentWidget({"traces": window.tracing, "flow": window.flow, "metrics": window.metrics}[tab])
    window.statusBar().clearMessage()
    for _ in range(10):
        app.processEvents()
    window.grab().save(out, "PNG")
    window.close()


if __name__ == "__main__" and sys.argv[2:3] == ["compare"]:
    compare(sys.argv[1])
elif __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshot.png",
         sys.argv[2] if len(sys.argv) > 2 else "traces")
