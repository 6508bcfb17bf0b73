"""Analysis views benchmark: the flow view and the metrics for a 1,000-call session and for 10,000+ traces.

    QT_QPA_PLATFORM=offscreen python -m benchmarks.bench_analysis [--workdir DIR]

For each case: the analysis (tree, metrics, critical paths, agent graph; on the worker thread in the app), then
the GUI-thread time to draw the session flow, the agent graph and the metrics tab, paint included.
Target: each view renders in <= 300 ms. Anomalies are judged on the whole history once per data change.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PyQt6.QtWidgets import QApplication  # noqa: E402

from analytics.db import TraceStore  # noqa: E402
from analytics.loader import load  # noqa: E402
from analytics.opencode import open_source  # noqa: E402
from analytics.queries import analysis_queries as aq  # noqa: E402
from analytics.queries import overview  # noqa: E402
from analytics.queries.trace_queries import TraceFilter, filter_traces  # noqa: E402
from benchmarks.make_store import build_sqlite  # noqa: E402
from dashboard.sections.metrics import MetricsSection  # noqa: E402
from dashboard.widgets.flow_view import FlowView  # noqa: E402


def best_ms(fn, repeat: int = 3) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out = min(out, (time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=str(ROOT / "benchmarks" / "out" / "analysis"))
    args = p.parse_args()
    work = Path(args.workdir)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    cases = []
    big_session = work / "one-session" / "opencode.db"
    if not big_session.exists():
        print("building a store with one 1,000-call session…", file=sys.stderr)
        build_sqlite(big_session, roots=1, delegations=999, seed=9, delegate_p=0.95, max_depth=8)
    cases.append(("one session, ", big_session.parent))
    many = work / "many" / "opencode.db"
    if not many.exists():
        print("building a store with 10,000+ traces…", file=sys.stderr)
        build_sqlite(many, roots=1100, delegations=9300, seed=3)
    cases.append(("across sessions, ", many.parent))
    flow, metrics = FlowView(), MetricsSection()
    flow.resize(1400, 800)
    metrics.resize(1400, 800)
    flow.show()
    metrics.show()
    for label, data in cases:
        measure(app, flow, metrics, label, data, work)


def measure(app: QApplication, flow: FlowView, metrics: MetricsSection, label: str, data: Path, work: Path) -> None:
    db = work / (data.name + ".duckdb")
    for suffix in ("", ".wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with TraceStore(db) as store:
        load(store, open_source(data), full=True)
        traces, _ = filter_traces(store, TraceFilter())
        t = time.perf_counter()
        anomalies = {x.trace.trace_id: x for x in aq.find_anomalies(aq.forest(store))}
        judge = (time.perf_counter() - t) * 1000
    analysis = overview.analyze(traces, anomalies, [])
    compute = best_ms(lambda: overview.analyze(traces, anomalies, []))
    biggest = max(analysis.roots, key=lambda r: r.descendants)

    def draw_session() -> None:
        flow.show_session(biggest, analysis.critical, set(analysis.anomalies))
        app.processEvents()
        flow.viewport().repaint()

    def draw_agents() -> None:
        flow.show_agents(analysis.edges, analysis.metrics)
        app.processEvents()
        flow.viewport().repaint()

    def draw_metrics() -> None:
        metrics.set_analysis(analysis)
        app.processEvents()
        metrics.repaint()

    print(f"{label}{len(traces)} traces ({biggest.descendants + 1} in the largest session): analysis "
          f"{compute:.0f} ms on the worker (+{judge:.0f} ms judging anomalies on the whole history)")
    print(f"  session flow ({biggest.descendants + 1} nodes)   {best_ms(draw_session):6.0f} ms GUI thread"
          "   (target <= 300 ms)")
    graph = f"agent graph ({len(analysis.metrics)} agents, {len(analysis.edges)} edges)"
    print(f"  {graph:30} {best_ms(draw_agents):6.0f} ms GUI thread   (target <= 300 ms)")
    print(f"  {'metrics tab':30} {best_ms(draw_metrics):6.0f} ms GUI thread   (target <= 300 ms)")

if __name__ == "__main__":
    main()
