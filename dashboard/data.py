"""Everything that touches the agents' histories or DuckDB, run off the GUI thread.

One worker thread runs the requests in order. Each request opens the trace store, does its work and closes
it again, so a CLI load or a second window can use the file in between; a store that another process holds
is retried for a moment and then reported, never fatal. Every request carries a generation number, and the
section drops results older than the last request it made.

A refresh also carries the store's data version the view last showed: whatever this load found, the store is
queried again whenever it holds other data than the view shows (a dropped result, a CLI load, a cleanup), so
a view never stays behind its store. A long load hands over what it has stored as it goes, newest first.
Interrupted and stalled calls depend on the clock, not only on the data (a session that goes quiet is written
no more): while calls run, a refresh that found nothing new judges them again, and queries the store again
only if one of them appeared or went.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from analytics.db import TraceStore
from analytics.errors import AgentTracesError
from analytics.loader import LoadProgress, no_cyclic_gc
from analytics.models import LoadReport
from analytics.queries import compare as cmp
from analytics.queries import trace_queries as q
from analytics.queries.overview import Analysis, Overview
from analytics.sources import LoadSource, Sources
from analytics.word_diff import TextDiff, word_diff

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 3.0
PARTIAL_EVERY_SECONDS = 2.0  # during a long load, what is stored is shown after the first step, then this often


@dataclass
class Snapshot:
    """What one request read: the traces to show, the hits of the filter, the pickers' choices."""

    generation: int
    query: q.TraceFilter
    traces: list[q.TraceSummary]
    hits: set[str]
    sessions: list[q.SessionRow] | None = None  # None: unchanged since the last snapshot
    agents: list[str] | None = None
    reports: list[LoadReport] | None = None  # one per history read (None: no load)
    changed: bool = True
    analysis: Analysis | None = None
    version: int = 0  # the store's data version these traces are of
    final: bool = True  # False: a long load is still storing more, or (`judging`) the history is being judged
    judging: bool = False  # everything is stored: the final snapshot, with its findings, follows at once
    steps: dict[str, tuple[int, int]] | None = None  # per trace: (LLM calls, tool calls); None: not read
    sources: list[str] | None = None  # the agents whose sessions the store holds (models.SOURCES)
    # with an analysis, read off it here rather than on the GUI thread (thousands of flags on a long history)
    flags: dict[str, str] | None = None  # per flagged trace: why
    interrupted: dict[str, int] | None = None  # per interrupted call: its session's last write


class _Signals(QObject):
    done = pyqtSignal(object)  # Snapshot
    details = pyqtSignal(int, object)  # generation, TraceDetails | None
    progress = pyqtSignal(int, object)  # generation, LoadProgress
    failed = pyqtSignal(int, str)  # generation, one plain sentence
    message = pyqtSignal(int, str)  # generation, a line for the status bar
    spans = pyqtSignal(int, object)  # generation, {trace id: [AgentSpan, ...]}
    compared = pyqtSignal(int, object)  # generation, Comparison
    diffed = pyqtSignal(int, object)  # generation, TextDiffs
    finished = pyqtSignal(int)  # generation: the task is over, whatever it emitted before


def open_store(path: Path, read_only: bool) -> TraceStore:
    """The trace store, waiting a moment while another process holds it (created on first use)."""
    if read_only and not path.exists():
        read_only = False
    return TraceStore(path, read_only=read_only, wait_seconds=BUSY_RETRY_SECONDS)


class _Task(QRunnable):
    def __init__(self, service: DataService, generation: int) -> None:
        super().__init__()
        self.service, self.generation, self.signals = service, generation, service.signals

    def run(self) -> None:
        try:
            self.work()
        except AgentTracesError as exc:
            self.emit("failed", self.generation, str(exc))
        except Exception as exc:  # a bug must not kill the worker thread silently
            log.error("background task failed:\n%s", traceback.format_exc())
            self.emit("failed", self.generation, f"Unexpected error: {exc}")
        finally:
            self.emit("finished", self.generation)

    def emit(self, signal: str, *args: object) -> None:
        """Hand a result to the GUI thread, unless the window has gone meanwhile."""
        try:
            getattr(self.signals, signal).emit(*args)
        except RuntimeError:  # the receiving objects were deleted: nobody is waiting for this any more
            log.debug("dropping a result for a closed window")

    def work(self) -> None:
        raise NotImplementedError


class _Refresh(_Task):
    """Load what the agents wrote (if anything), then read what the filter selects, unless the view already
    shows exactly what the store holds (`shown`, its data version)."""

    def __init__(self, service: DataService, generation: int, query: q.TraceFilter, load_first: bool,
                 full: bool, shown: int | None) -> None:
        super().__init__(service, generation)
        self.query, self.load_first, self.full, self.shown = query, load_first, full, shown
        self._last_partial = 0.0

    def work(self) -> None:
        reports, version = None, None
        svc = self.service
        if self.load_first and svc.sources:
            with open_store(svc.db_path, read_only=False) as store:
                reports = svc.sources.load(store, full=self.full, retention_days=svc.retention_days,
                                           progress=lambda step: self._stored(store, step))
                version = store.data_version()
                unchanged = version == self.shown and not svc.overview.time_moved(store, svc.now_ms())
            if unchanged:
                self.emit("done", Snapshot(self.generation, self.query, [], set(), reports=reports, changed=False,
                                           version=version))
                return
        with no_cyclic_gc(), open_store(svc.db_path, read_only=True) as store:
            selected = None
            if self.shown is not None and version not in (None, self.shown) and not (self.query.pattern
                                                                                    or self.query.anomalies_only):
                # what the agent just wrote, on screen before the whole history is judged again (a second on
                # a long one): the rows as stored, keeping their flags meanwhile (a pattern or the anomalies
                # filter needs the judgement to pick the rows, so those wait for it)
                selected = q.filter_traces(store, self.query)
                self.emit("done", Snapshot(self.generation, self.query, *selected, version=store.data_version(),
                                           final=False, judging=True))
            self.emit("done", self._snapshot(store, reports, selected))

    def _stored(self, store: TraceStore, step: LoadProgress) -> None:
        """A step of the load is committed: say how far it is, answer the details asked for meanwhile, and let
        the view show what is stored so far."""
        self.emit("progress", self.generation, step)
        wanted = self.service.claim_details()
        if wanted is not None:
            with store.more_memory():
                self.emit("details", wanted[0], details_of(store, wanted[1], self.service.now_ms()))
        now = time.monotonic()
        if step.sessions_done < step.sessions_total and now - self._last_partial >= PARTIAL_EVERY_SECONDS:
            self._last_partial = now
            with store.more_memory():
                traces, hits = q.filter_traces(store, self.query)
            self.emit("done", Snapshot(self.generation, self.query, traces, hits, version=store.data_version(),
                                       final=False))

    def _snapshot(self, store: TraceStore, reports: list[LoadReport] | None,
                  selected: tuple[list[q.TraceSummary], set[str]] | None = None) -> Snapshot:
        svc = self.service
        version = store.data_version()
        shown = svc.overview.show(store, self.query, svc.now_ms(), selected)
        # the pickers' choices change only when data does, not when a filter does
        sessions = q.get_sessions_with_traces(store) if self.load_first else None
        agents = q.agents(store) if self.load_first else None
        analysis = shown.analysis
        return Snapshot(self.generation, self.query, shown.traces, shown.hits, sessions, agents, reports,
                        analysis=analysis, version=version, steps=svc.overview.step_counts,
                        flags=analysis.flag_texts(), interrupted=analysis.interrupted(),
                        sources=q.sources(store) if self.load_first else None)


class _Details(_Task):
    def __init__(self, service: DataService, generation: int, trace_id: str) -> None:
        super().__init__(service, generation)
        self.trace_id = trace_id

    def work(self) -> None:
        if not self.service.claim_details(self.generation):
            return  # answered already, by the load that ran before this request, or asked again since
        with open_store(self.service.db_path, read_only=True) as store:
            self.emit("details", self.generation, details_of(store, self.trace_id, self.service.now_ms()))


def details_of(store: TraceStore, trace_id: str, now_ms: int) -> tuple[q.TraceDetails | None, q.Reopen | None]:
    """A trace in full, with the session to open it in; its time judged as of `now_ms`, the clock the snapshots'
    findings are judged by, so the detail pane and the tree agree on an interrupted call."""
    return q.get_trace_details(store, trace_id, now_ms), q.session_to_open(store, trace_id)


class _Spans(_Task):
    """The steps of a few traces (rows the user opened), with their full inputs and outputs."""

    def __init__(self, service: DataService, generation: int, trace_ids: tuple[str, ...]) -> None:
        super().__init__(service, generation)
        self.trace_ids = trace_ids

    def work(self) -> None:
        with open_store(self.service.db_path, read_only=True) as store:
            self.emit("spans", self.generation, {tid: q.get_spans(store, tid) for tid in self.trace_ids})


class _Cleanup(_Task):
    def __init__(self, service: DataService, generation: int, days: int) -> None:
        super().__init__(service, generation)
        self.days = days

    def work(self) -> None:
        with open_store(self.service.db_path, read_only=False) as store:
            removed = store.cleanup_old_traces(self.days)
        self.service.overview.forget()
        self.emit("message", self.generation, f"Removed {removed} traces older than {self.days} days.")


class _Export(_Task):
    def __init__(self, service: DataService, generation: int, session_id: str, path: Path, fmt: str,
                 content: object = None) -> None:
        super().__init__(service, generation)
        self.session_id, self.path, self.fmt, self.content = session_id, path, fmt, content

    def work(self) -> None:
        from analytics.export import to_json, to_otlp
        from analytics.otlp import DEFAULT_CONTENT

        with open_store(self.service.db_path, read_only=True) as store:
            data = to_otlp(store, self.session_id, content=self.content or DEFAULT_CONTENT) if self.fmt == "otlp" \
                else to_json(store, self.session_id)
        self.path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
        self.emit("message", self.generation, f"Exported {self.session_id} to {self.path} ({self.fmt}).")


class _Compare(_Task):
    """Two runs aligned (analytics.queries.compare), maybe written to a file as JSON too."""

    def __init__(self, service: DataService, generation: int, left: str, right: str,
                 path: Path | None = None) -> None:
        super().__init__(service, generation)
        self.left, self.right, self.path = left, right, path

    def work(self) -> None:
        with open_store(self.service.db_path, read_only=True) as store:
            comparison = cmp.compare(store, self.left, self.right)
        if self.path is None:
            self.emit("compared", self.generation, comparison)
            return
        self.path.write_text(json.dumps(comparison.to_json(), ensure_ascii=False, indent=1) + "\n",
                             encoding="utf-8")
        self.emit("message", self.generation, f"Exported the comparison to {self.path}.")


@dataclass(frozen=True)
class TextDiffs:
    """The prompts and the outputs of two aligned calls, diffed word by word (a side may be missing)."""

    left_id: str | None
    right_id: str | None
    prompt: TextDiff
    output: TextDiff


class _Diff(_Task):
    """The full texts of two traces, diffed here on the worker: a long text must not hold the window."""

    def __init__(self, service: DataService, generation: int, left: str | None, right: str | None) -> None:
        super().__init__(service, generation)
        self.left, self.right = left, right

    def work(self) -> None:
        with open_store(self.service.db_path, read_only=True) as store:
            sides = [q.get_trace_details(store, tid) if tid else None for tid in (self.left, self.right)]
        a, b = (d.trace if d is not None else None for d in sides)
        self.emit("diffed", self.generation, TextDiffs(
            self.left, self.right,
            word_diff(a.prompt_input if a else None, b.prompt_input if b else None),
            word_diff(a.prompt_output if a else None, b.prompt_output if b else None)))


class DataService(QObject):
    """Queues store work on one background thread and hands results back as signals.

    Signals:
        done(Snapshot): a refresh or query finished.
        details(int, object): the full details of a trace, with (session id, directory) to open.
        failed(int, str): a request failed; the text is meant for the status bar.
        message(int, str): a request finished with something to say (cleanup, export).
        progress(int, object): a step of a long load is stored (LoadProgress).
        spans(int, object): the steps of the traces a `fetch_spans` asked for, {trace id: [AgentSpan]}.
        compared(int, object): two runs aligned, the Comparison a `compare` asked for.
        diffed(int, object): the prompts and outputs of two aligned calls diffed (TextDiffs).
        idle(): every request asked of it has been answered (after the signals its answers sent).
    """

    idle = pyqtSignal()

    def __init__(self, db_path: Path, sources: Sources | LoadSource | None, retention_days: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        # kept for the window's life: the readers hold what they read, so a reload parses only what was added
        self.db_path, self.sources = db_path, Sources.of(sources)
        self.signals = _Signals(self)
        self.done, self.details, self.failed = self.signals.done, self.signals.details, self.signals.failed
        self.message, self.progress = self.signals.message, self.signals.progress
        self.spans = self.signals.spans
        self.compared, self.diffed = self.signals.compared, self.signals.diffed
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.busy = 0  # requests queued or running
        self.signals.finished.connect(self._task_over)
        self._generation = 0
        self.stopped = False
        self.retention_days = retention_days  # applied by every load, as the CLI's
        self._lock = threading.Lock()
        self._wanted: tuple[int, str] | None = None  # the details asked for last, until answered
        self.overview = Overview()  # the analyses, kept per data version: touched by the worker thread only
        self.clock: Callable[[], float] = time.time  # what running calls are judged by (seconds)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def _submit(self, task: Callable[[int], _Task]) -> int:
        """Queue a task made for the next generation number (unless stopped); returns that number."""
        gen = self.next_generation()
        if not self.stopped:
            self.busy += 1
            self.pool.start(task(gen))
        return gen

    def _task_over(self, _generation: int) -> None:
        self.busy = max(self.busy - 1, 0)
        if not self.busy:
            self.idle.emit()

    def refresh(self, query: q.TraceFilter, load_first: bool = True, full: bool = False,
                shown: int | None = None) -> int:
        """Load (with `load_first`) and query; `shown` is the data version the view shows (None: nothing yet)."""
        return self._submit(lambda gen: _Refresh(self, gen, query, load_first, full, shown))

    def cleanup(self, retention_days: int) -> int:
        return self._submit(lambda gen: _Cleanup(self, gen, retention_days))

    def export(self, session_id: str, path: Path, fmt: str, content: object = None) -> int:
        """A session's traces to a file: JSON, or OTLP/JSON with as much of the texts as `content` (an
        analytics.otlp.Content) lets go, as a push would send them."""
        return self._submit(lambda gen: _Export(self, gen, session_id, path, fmt, content))

    def fetch_details(self, trace_id: str) -> int:
        """The trace in full. While a long load runs, it answers between two of its steps."""
        with self._lock:
            gen = self._submit(lambda gen: _Details(self, gen, trace_id))
            self._wanted = (gen, trace_id)
        return gen

    def fetch_spans(self, *trace_ids: str) -> int:
        """The steps (LLM and tool calls) of these traces, in one request."""
        return self._submit(lambda gen: _Spans(self, gen, tuple(trace_ids)))

    def compare(self, left: str, right: str) -> int:
        """Two runs (trace or session ids) aligned row by row."""
        return self._submit(lambda gen: _Compare(self, gen, left, right))

    def export_comparison(self, left: str, right: str, path: Path) -> int:
        """The comparison of two runs written to `path` as JSON (what `agent-traces compare --json` prints)."""
        return self._submit(lambda gen: _Compare(self, gen, left, right, path))

    def diff_texts(self, left: str | None, right: str | None) -> int:
        """The prompts and outputs of two traces (either may be None: a call on one side only), diffed."""
        return self._submit(lambda gen: _Diff(self, gen, left, right))

    def claim_details(self, generation: int | None = None) -> tuple[int, str] | None:
        """Take the details request still to answer (only if it is `generation`'s, when given)."""
        with self._lock:
            wanted = self._wanted
            if wanted is None or generation is not None and wanted[0] != generation:
                return None
            self._wanted = None
            return wanted

    def stop(self) -> None:
        """Wait for the running request; queued ones are dropped, and no new one is taken."""
        self.stopped = True
        self.pool.clear()
        self.pool.waitForDone(10_000)
        self.busy = 0
