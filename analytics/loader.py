"""Load OpenCode's sessions into the trace store incrementally: only the session trees that changed are read
again, and a long load goes in committed batches, newest trees first. The traces themselves are made by
`analytics.extraction`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from analytics.extraction import build_traces, extract_traces, no_cyclic_gc, root_map, settle, tree_closure
from analytics.models import AgentSpan, AgentTrace, LoadReport, SessionInfo
from analytics.opencode.readers import StreamedSteps, WrittenSteps
from analytics.opencode.records import RawSession, SessionStamp
from analytics.opencode.source import Source

__all__ = ["BATCH_SESSIONS", "FIRST_BATCH_ROOTS", "LoadProgress", "batches", "build_traces", "extract_traces",
           "load", "no_cyclic_gc", "read_ahead"]  # build_traces and extract_traces stay importable from here

log = logging.getLogger(__name__)

FIRST_BATCH_ROOTS = 20  # the newest session trees (more than a screenful of rows), stored first for a window
BATCH_SESSIONS = 1000  # a larger load goes on in batches of about this many sessions, each one committed


@dataclass(frozen=True)
class LoadProgress:
    """How far a load is: sessions read and stored out of those it has to read, and the traces written.

    Each batch is committed before the next one is read, so a reader of the store (the window) can show what is
    already there: the newest sessions first."""

    sessions_done: int
    sessions_total: int
    traces_written: int

    def __str__(self) -> str:
        return (f"{self.sessions_done} of {self.sessions_total} sessions read, "
                f"{self.traces_written} traces written")


def batches(trees: Collection[str], roots: dict[str, str], created: dict[str, int]) -> list[set[str]]:
    """The sessions to read, by whole trees, newest root first: a small first batch, then batches of about
    BATCH_SESSIONS sessions. A load that fits in one batch is one batch."""
    if len(trees) <= BATCH_SESSIONS:
        return [set(trees)]
    members: dict[str, list[str]] = {}
    for sid in trees:
        members.setdefault(roots[sid], []).append(sid)
    order = sorted(members, key=lambda r: (-created.get(r, 0), r))
    out: list[set[str]] = [set()]
    for i, root in enumerate(order):
        if i >= FIRST_BATCH_ROOTS and len(out) == 1 or len(out[-1]) >= BATCH_SESSIONS:
            out.append(set())
        out[-1].update(members[root])
    return [b for b in out if b]


class _KeptTrees:
    """The stored trees a load leaves exactly as they are, because a session of theirs cannot be read right now.

    A JSON session file OpenCode is rewriting, a row that is not UTF-8, a damaged page: its tree is neither
    deleted nor rebuilt without it (which would make it flicker out of the window and back), and none of its
    fingerprints are saved, so the next load tries again. A tree never stored before loads without the
    unreadable session. The reader's index flags what it already knows is unreadable (`readable=False`);
    a read that does not return a session it was asked for flags the rest.
    """

    def __init__(self, store, roots: dict[str, str], index: dict[str, SessionStamp]) -> None:
        self.store = store
        self.roots = roots
        self.sessions: set[str] = set()  # unreadable right now
        self.kept: set[str] = set()  # root ids, current and as stored, of the trees kept
        self._add({sid for sid, st in index.items() if not st.readable})

    def _add(self, unreadable: set[str]) -> None:
        if not unreadable:
            return
        self.sessions |= unreadable
        current = {self.roots.get(sid, sid) for sid in unreadable}
        stored = self.store.roots_of(unreadable | current)
        if stored:
            self.kept |= current | stored

    def unread(self, ids: set[str]) -> set[str]:
        """These session ids without those of the kept trees."""
        return {sid for sid in ids if self.roots.get(sid, sid) not in self.kept} if self.kept else ids

    def read(self, asked: set[str], sessions: list[RawSession]) -> list[RawSession]:
        """The sessions read, without the kept trees; a session asked for and not read is unreadable."""
        got = {s.id for s in sessions}
        self._add({sid for sid in self.unread(asked) if sid not in got})
        if not self.kept:
            return sessions
        return [s for s in sessions if self.roots.get(s.id, s.id) not in self.kept]

    def deletable(self, deleted: set[str]) -> set[str]:
        """The sessions gone from the source that are not in a kept tree."""
        if not self.kept or not deleted:
            return deleted
        return {sid for sid in deleted if not self.store.roots_of({sid}) & self.kept}

    def writable(self, roots: set[str]) -> set[str]:
        return roots - self.kept

    def fingerprints(self, fingerprints: dict[str, str]) -> dict[str, str]:
        """Without the unreadable sessions and the kept trees, so the next load reads them again."""
        if not self.sessions:
            return fingerprints
        return {sid: f for sid, f in fingerprints.items()
                if sid not in self.sessions and self.roots.get(sid, sid) not in self.kept}


T = TypeVar("T")
R = TypeVar("R")


def read_ahead(items: list[T], work: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """Each item with `work(item)`, in order, the work on the next item going on in a thread meanwhile.

    A load reads and builds batch N+1 while batch N is written: SQLite and DuckDB work with the GIL released
    (DuckDB takes it back for each vector it reads from an Arrow stream Python hands it), so the two halves of a
    long load use both cores for much of their time. At most two batches are in memory. An error in the work is
    raised here, and the thread is done before this returns or raises.
    """
    if len(items) < 2:
        for item in items:
            yield item, work(item)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-traces-read") as pool:
        pending = pool.submit(work, items[0])
        try:
            for i, item in enumerate(items):
                result = pending.result()
                if i + 1 < len(items):
                    pending = pool.submit(work, items[i + 1])
                yield item, result
                del result
        finally:
            pending.cancel()


def _not_written(written: set[str], traces: list[AgentTrace], spans: list[AgentSpan],
                 report: LoadReport) -> tuple[list[AgentTrace], list[AgentSpan]]:
    """Without the traces (and their steps) whose id an earlier batch of the load already stored under another
    tree: a damaged store can repeat a task call's id across trees, and the first one read wins, as within one
    batch (`_unique_calls`). Two rows with one id would abort the batch's write."""
    again = {t.trace_id for t in traces if t.trace_id in written}
    if not again:
        return traces, spans
    for trace_id in sorted(again):
        report.skip("part", trace_id, "a task call with the id of a trace of another tree; left out")
    return ([t for t in traces if t.trace_id not in again],
            [sp for sp in spans if sp.trace_id not in again])


def load(store, source: Source, full: bool = False,
         progress: Callable[[LoadProgress], None] | None = None,
         retention_days: int | None = None) -> LoadReport:
    """Bring the store up to date with the OpenCode source; only changed session trees are read again.

    A large load (the first one on a long history, or `full`) is written in batches, newest trees first, and
    `progress` hears of each committed batch. With `retention_days`, older session trees are dropped afterwards
    (and remembered, so they are not imported again).
    """
    t0 = time.perf_counter()
    report = LoadReport(source=str(source.location), generation=source.generation, full=full)
    stamp = source.stamp()
    key = str(source.location)
    if not full and stamp and store.source_stamp(key) == stamp:
        report.unchanged = True
        report.sessions_seen = store.source_session_count(key)
        report.seconds = time.perf_counter() - t0
        return report
    with no_cyclic_gc(), source.reading():
        index = source.index(report)
        report.sessions_seen = len(index)
        parents = {sid: st.parent_id for sid, st in index.items()}
        roots = root_map(parents)
        loaded = store.fingerprints(key)  # what this source gave last time; other sources are left alone
        known = {} if full else loaded
        cleaned = store.cleaned_sessions()
        changed = {sid for sid, st in index.items() if known.get(sid) != st.fingerprint}
        deleted = set(loaded) - set(index)
        kept = _KeptTrees(store, roots, index)
        trees = kept.unread({sid for sid in (index if full else tree_closure(parents, changed, roots))
                             if roots[sid] not in cleaned})
        report.sessions_changed = len(changed - cleaned)
        fresh = store.holds_no_trees()  # nothing to collide with: plain inserts
        todo = batches(trees, roots, {sid: st.created_ms for sid, st in index.items()})

        def built(batch: set[str]) -> tuple[list[AgentTrace], list[SessionInfo], list[AgentSpan]]:
            everything = len(batch) == len(index)  # the unfiltered scan is the fast one
            sessions = kept.read(batch, source.read(None if everything else batch, report)) if batch else []
            return build_traces(sessions, lambda need: source.fill_texts(need, report), parents, report, roots)

        done = 0
        written: set[str] = set()  # trace ids stored by the earlier batches of this load
        span_ids: set[str] | None = set() if fresh else None  # and span ids, while the store had none before

        def write(batch: set[str], traces: list[AgentTrace], infos: list[SessionInfo], spans: list[AgentSpan],
                  streamed: list[StreamedSteps], deleted: set[str], last: bool) -> tuple[list[str], LoadReport]:
            """Store the batch; returns the ids of its steps SQL wrote and what was skipped while writing it (kept
            apart until the write went through: a write that did not fit is done again)."""
            before = store.roots_of(batch | deleted if last else batch)
            skipped = LoadReport()
            streamed_ids: list[str] = []

            def settled(traces: list[AgentTrace], spans: list[AgentSpan],
                        written: list[WrittenSteps]) -> tuple[list[AgentTrace], list[AgentSpan]]:
                streamed_ids.extend(i for w in written for i in w.span_ids)
                traces, settled_spans = settle(traces, spans, written, skipped)
                known = {sp.span_id for sp in spans}
                streamed_ids.extend(sp.span_id for sp in settled_spans if sp.span_id not in known)
                return traces, settled_spans

            store.replace(
                roots=kept.writable(before | {t.root_session_id for t in traces}
                                    | {inf.root_session_id for inf in infos}),
                traces=traces, sessions=infos,
                fingerprints=kept.fingerprints({sid: index[sid].fingerprint for sid in batch}),
                deleted=deleted if last else (), full=full, source_key=key,
                stamp=stamp if last else None, conflicts=not fresh, spans=spans, streamed=streamed,
                settle=settled, stored_span_ids=span_ids,
            )
            return streamed_ids, skipped

        for i, (batch, (traces, infos, spans)) in enumerate(read_ahead(todo, built)):
            last = i == len(todo) - 1
            if written:
                traces, spans = _not_written(written, traces, spans, report)
            written.update(t.trace_id for t in traces)
            streamed = source.tool_spans(spans)  # the tool calls SQL writes under these steps
            if last:  # sessions gone from the source go with the last batch, once every kept tree is known
                deleted = kept.deletable(deleted)
                report.sessions_deleted = len(deleted)
            # again with room if it did not fit
            streamed_ids, skipped = store.fitted(write, batch, traces, infos, spans, streamed, deleted, last)
            report.merge(skipped)
            if span_ids is not None and not last:
                span_ids.update(sp.span_id for sp in spans)
                span_ids.update(streamed_ids)
            report.traces_written += len(traces)
            del traces, infos, spans  # free this batch before the next one is read
            done += len(batch)
            if progress is not None and (batch or last):
                progress(LoadProgress(done, len(trees), report.traces_written))
    if retention_days is not None:
        report.retention_removed = store.cleanup_old_traces(retention_days)
    report.seconds = time.perf_counter() - t0
    log.info("loaded %s: %d sessions changed, %d traces written in %d batches, %.3fs", key,
             report.sessions_changed, report.traces_written, len(todo), report.seconds)
    return report
