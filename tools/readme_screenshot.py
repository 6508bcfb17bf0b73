"""Render the README screenshots: the demo store, with a nested delegation selected; or, for `compare`, the
first two runs of tests/fixtures/compare-1.18.33 in the Compare tab, their coder call selected.

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

from analytics.opencode import open_source  # noqa: E402
from analytics.settings import Settings  # noqa: E402
from dashboard.app import Choice, build, demo_store  # noqa: E402


def compare(out: str) -> None:
    """The Compare tab on the same task run twice (the second after a prompt change), the coder row selected."""
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces-screenshot")
    tmp = Path(tempfile.mkdtemp())
    store = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "compare-1.18.33"
    window, service = build(Choice(open_source(store), tmp / "t.duckdb", "tests/fixtures/compare-1.18.33"),
                            Settings(refresh_seconds=3600))
    window.resize(1600, 860)
    window.show()
    tree = window.tracing.tree
    while not tree.items:
        app.processEvents()
    service.pool.waitForDone()
    app.processEvents()
    first, second = sorted((tree.topLevelItem(i).data(0, 256) for i in range(tree.topLevelItemCount())),
                           key=lambda t: t.started_at)[:2]
    shown: list[int] = []
    window.compare.shown.connect(lambda: shown.append(1))
    window.compare_runs(first.trace_id, second.trace_id)
    while not shown:
        app.processEvents()
    shown.clear()
    window.compare.tree.setCurrentItem(next(r for r in window.compare.tree.rows if r.text(0) == "coder — Code"))
    while not shown:
        app.processEvents()
    window.compare.splitter.setSizes([230, 560])
    window.statusBar().clearMessage()  # it names the fixture's path on this machine
    for _ in range(10):
        app.processEvents()
    window.grab().save(out, "PNG")
    window.close()


def main(out: str, tab: str = "traces", description: str = "Test the limiter") -> None:
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("agent-traces-screenshot")
    tmp = Path(tempfile.mkdtemp())
    window, service = build(Choice(open_source(demo_store()), tmp / "t.duckdb", "demo store (bundled)"),
                            Settings(refresh_seconds=3600))
    window.resize(1500, 860)
    window.show()
    section = window.tracing
    while not section.tree.items:
        app.processEvents()
    service.pool.waitForDone()
    app.processEvents()
    item = next(i for i in section.tree.items.values() if i.text(1) == description)
    section.tree.setCurrentItem(item)
    while section.detail.details is None or section.detail.details.trace.description != description:
        app.processEvents()
    app.processEvents()
    window.tabs.setCurrentWidget({"traces": window.tracing, "flow": window.flow, "metrics": window.metrics}[tab])
    for _ in range(10):
        app.processEvents()
    window.grab().save(out, "PNG")
    window.close()


if __name__ == "__main__" and sys.argv[2:3] == ["compare"]:
    compare(sys.argv[1])
elif __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshot.png",
         sys.argv[2] if len(sys.argv) > 2 else "traces")
