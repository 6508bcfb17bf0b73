"""Send session trees to an OpenTelemetry backend over OTLP/HTTP (protobuf), only what is new or changed.

The spans come from `analytics/otlp.py`, encoded by the OpenTelemetry SDK's own encoder; each request goes out
through `analytics/otlp_http.py`, which judges the answer (a redirect or a partial success that rejects spans
is no success), bounds the whole exchange by the timeout, and honours `OTEL_EXPORTER_OTLP_HEADERS` and the
other `OTEL_EXPORTER_OTLP_*` settings as the OpenTelemetry exporter does. A refusal (401, 413, 415, …) comes
back as one sentence.

What was sent is remembered per endpoint in the trace store (`pushed`: a digest of each span as it was sent),
so a second push sends nothing, and a later one only the spans that appeared or changed (a running call that
finished, a new step). A span is sent once it has ended, as an OpenTelemetry SDK would: some backends keep
the first version of a span they get (Phoenix ignores a span id it already has), so a call still running is not
sent until it ends, or until its tree is judged interrupted (no write for INTERRUPTED_MS, the window's rule): a
killed run's calls then go with the status `interrupted`, ending at the tree's last write. Spans not sent yet
(the backend was down) are simply still "new" at the next pass: the trace store is the queue. A pass goes
through the trees `TREES_PER_STEP` at a time: built, sent, recorded, so its memory stays bounded on a long
history.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from analytics.db import TraceStore
from analytics.errors import AgentTracesError, StoreBusy
from analytics.models import LoadReport
from analytics.otlp import (
    DEFAULT_CONTENT,
    DEFAULT_PROJECT,
    INTERRUPTED,
    Content,
    request_of,
    root_of,
    trees_spans,
)
from analytics.otlp_http import TRACES_PATH, Cancelled, PushError, Sender, Target, check_header, refusal, traces_target
from analytics.queries import trace_queries as q
from analytics.queries.time_split import last_writes
from analytics.sources import LoadSource, Sources
from analytics.timeline import interrupted_at

__all__ = ["Content", "Endpoint", "PushError", "PushReport", "Pusher", "parse_headers", "refusal",
           "resolve_endpoint", "traces_url", "TRACES_PATH"]

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 4 * 1024 * 1024  # one request; far below the 64 MiB most receivers accept
MAX_BATCH_SPANS = 500
TREES_PER_STEP = 200  # a pass builds, sends and records this many session trees at a time (bounded memory)
STORE_WAIT_SECONDS = 5.0
MAX_FOLLOW_BACKOFF = 60.0
STOPPED_MARK = "\0interrupted"  # on a tree's mark once its running calls were sent as interrupted


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint: a base URL (as in OTEL_EXPORTER_OTLP_ENDPOINT) gets /v1/traces
    (before any query); what is wrong with it is said (AgentTracesError)."""
    return traces_target(endpoint).url


def resolve_endpoint(given: str | None, configured: str | None = None) -> tuple[str, bool]:
    """The endpoint to send to, and whether it is a full traces URL: the command line's, else
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full URL), else OTEL_EXPORTER_OTLP_ENDPOINT (a base), else the
    settings' `otlp_endpoint`."""
    if given:
        return given, False
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], True
    for base in (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"), configured):
        if base:
            return base, False
    raise AgentTracesError("No OpenTelemetry endpoint: give --otlp-endpoint URL (e.g. http://localhost:6006 for "
                           "Phoenix, http://localhost:4318 for a Collector), set OTEL_EXPORTER_OTLP_ENDPOINT, or "
                           "set otlp_endpoint in the settings.")


def parse_headers(pairs: Iterable[str]) -> dict[str, str]:
    """--header KEY=VALUE options as a dict (the value may hold '='); a malformed one is said, never shown."""
    out = {}
    for i, pair in enumerate(pairs, 1):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise AgentTracesError(f"A header is KEY=VALUE (e.g. authorization=Bearer …); --header number {i} "
                                   "has no KEY= (it is not shown here: it may hold a token).")
        name, value = check_header(key, value, f" (--header number {i})")
        out[name] = value
    return out


@dataclass(frozen=True)
class Endpoint:
    """Where spans go: the URL as given (a base URL gets /v1/traces unless `exact`), the extra headers, and the
    project name (Phoenix's). `target` is the URL taken apart (credentials out of it); `shown` and `key` are
    the forms a message shows and the trace store records."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    project: str = DEFAULT_PROJECT
    exact: bool = False
    target: Target = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", traces_target(self.url, self.exact))
        for name, value in self.headers.items():
            check_header(name, value)

    @property
    def shown(self) -> str:
        return self.target.shown

    @property
    def key(self) -> str:
        return self.target.key


@dataclass
class Pending:
    """A span to send, with what is recorded once it is accepted."""

    span: ReadableSpan
    span_id: str  # hex
    root: str
    digest: str
    size: int


@dataclass
class PushReport:
    """What one pass did."""

    url: str = ""
    sessions: int = 0
    spans: int = 0
    sent: int = 0
    sent_sessions: int = 0
    waiting: int = 0  # new or changed spans not sent (yet)
    running: int = 0  # spans of calls still running: sent when they end
    not_read: int = 0  # session trees a failed pass did not get to
    refused: list[str] = field(default_factory=list)  # spans the backend would never take (413 on its own)
    problem: str | None = None
    retryable: bool = False
    loads: list[LoadReport] = field(default_factory=list)  # what the load before it read, of each history
    stopped: bool = False  # the pass was stopped (a signal, Cancel) before it sent everything
    content: str = ""  # what of the texts goes (Content.describe)
    to_send: int = 0  # spans this pass found to send (new or changed, ended), before it sent any
    to_send_sessions: int = 0
    to_send_bytes: int = 0

    @property
    def unchanged(self) -> int:
        return self.spans - self.sent - self.waiting - len(self.refused) - self.running

    def plan_line(self, verb: str = "Sending", after: str = "") -> str:
        """What leaves the machine, said before it does ("Would send", and `after` it, for a dry run)."""
        if not self.to_send:
            return f"Nothing new to send to {self.url} ({self.unchanged} spans already there)."
        text = (f"{verb} {self.to_send} spans of {self.to_send_sessions} sessions ({_size(self.to_send_bytes)}) "
                f"to {self.url}: {self.content}.")
        return text + (f" {after}" if after else "")

    def line(self) -> str:
        if self.stopped:
            text = (f"Stopped after sending {self.sent} spans of {self.sent_sessions} sessions to {self.url}"
                    f" (recorded); {self.waiting} spans wait for the next push.")
            return text + (f" {self.problem}" if self.problem else "")
        if self.sent:
            text = (f"Sent {self.sent} spans of {self.sent_sessions} sessions to {self.url}"
                    f" ({self.unchanged} already there).")
        elif not self.problem:
            text = f"Nothing new to send to {self.url} ({self.unchanged} spans already there)."
        else:
            text = ""
        if self.problem:
            text += (" " if text else "") + self.problem
            if self.waiting:
                more = f" (and {self.not_read} sessions not read yet)" if self.not_read else ""
                text += f" {self.waiting} spans{more} wait for the next push."
        if self.running:
            text += f" {self.running} spans of calls still running go when they end."
        for name in self.refused:
            text += f" Not sent: {name}."
        return text


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(n, 1) / 1024:.0f} KB" if n else "0 KB"


def _digest(project: str, span_bytes: bytes) -> str:
    return hashlib.sha256(project.encode() + b"\0" + span_bytes).hexdigest()


def interrupted_trees(store: TraceStore, roots: list[str], now_ms: int) -> dict[str, int]:
    """The trees among these that OpenCode stopped writing INTERRUPTED_MS ago or more, with their last write:
    a call still marked running there is interrupted (the window's and `anomalies`' rule)."""
    written = last_writes(store.cursor(), roots)
    return {r: ms for r, ms in written.items() if interrupted_at(ms, now_ms) is not None}


def pending(store: TraceStore, endpoint: Endpoint, roots: list[str], report: PushReport,
            force: bool = False, sizes: dict[str, tuple[int, int, int]] | None = None,
            content: Content = DEFAULT_CONTENT, now_ms: int | None = None) -> list[Pending]:
    """The spans of these session trees that the endpoint has not been sent as they are now (all with `force`),
    with as much of their texts as `content` lets go; calls still running go once their tree is judged
    interrupted as of `now_ms`, with that status. `sizes` hears how many spans each tree has, how many of them
    are still running, and how many were sent as interrupted."""
    known = {} if force else store.pushed_digests(endpoint.key, roots)
    out: list[Pending] = []
    stopped = interrupted_trees(store, roots, now_ms) if now_ms is not None else {}
    built = trees_spans(store, roots, endpoint.project, content, stopped)
    for root in roots:
        spans = built.get(root)
        if not spans:
            continue
        report.sessions += 1
        report.spans += len(spans)
        running, interrupted = report.running, 0
        encoded = {s.span_id: s for r in request_of(spans).resource_spans for ss in r.scope_spans for s in ss.spans}
        for span in spans:
            if span.status.status_code is StatusCode.UNSET:  # still running: sent once it ends (see module doc)
                report.running += 1
                continue
            interrupted += span.attributes.get("agent_traces.status") == INTERRUPTED
            proto = encoded[span.context.span_id.to_bytes(8, "big")]
            hex_id = proto.span_id.hex()
            digest = _digest(endpoint.project, proto.SerializeToString(deterministic=True))
            if known.get(hex_id) != digest:
                out.append(Pending(span, hex_id, root, digest, proto.ByteSize()))
        if sizes is not None:
            sizes[root] = (len(spans), report.running - running, interrupted)
    return out


def batches(items: list[Pending]) -> list[list[Pending]]:
    """Consecutive groups of at most MAX_BATCH_SPANS spans and about MAX_BATCH_BYTES (a bigger span goes alone)."""
    out: list[list[Pending]] = []
    size = 0
    for item in items:
        if not out or len(out[-1]) >= MAX_BATCH_SPANS or size + item.size > MAX_BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += item.size
    return out


def _add_counts(report: PushReport, counts: PushReport) -> None:
    report.sessions += counts.sessions
    report.spans += counts.spans
    report.running += counts.running


def _credentials_recorded(store: TraceStore) -> dict[str, str]:
    """Endpoints recorded with credentials or a query in their URL, each with the key it is recorded under now."""
    out = {}
    for recorded in store.pushed_endpoints():
        try:
            key = traces_target(recorded, exact=True).key
        except AgentTracesError:
            continue
        if key != recorded:
            out[recorded] = key
    return out


def forget_credentials(store: TraceStore) -> None:
    """Record what was sent to an endpoint whose URL held credentials or a query (as agent-traces recorded it
    until now) under the URL without them (`Target.key`), so that nothing secret stays in the trace store and
    nothing is sent twice."""
    for recorded, key in _credentials_recorded(store).items():
        store.rename_pushed_endpoint(recorded, key)


class Pusher:
    """Pushes a trace store's sessions to one endpoint. The store is opened for each read or write only, never
    while waiting for the network, so the window and a CLI load use it in between."""

    def __init__(self, db_path: Path, endpoint: Endpoint, source: Sources | LoadSource | None = None,
                 since_ms: int | None = None, timeout: float | None = None,
                 retention_days: int | None = None, content: Content = DEFAULT_CONTENT,
                 stop: threading.Event | None = None, source_kind: str | None = None) -> None:
        # the histories to load first, kept between passes (`follow`): their readers read only what was added
        self.db_path, self.endpoint, self.sources = db_path, endpoint, Sources.of(source)
        self.source_kind = source_kind  # only the sessions of one agent's history (models.SOURCES)
        self.since_ms, self.retention_days, self.content = since_ms, retention_days, content
        # set: the pass stops before its next batch (and a retry's wait ends); `cancel()` also ends the request
        # in flight
        self.stop = stop if stop is not None else threading.Event()
        self.sender = Sender(endpoint.target, endpoint.headers, timeout, stop=self.stop)
        self.on_batch: Callable[[PushReport], None] | None = None  # hears the report after each accepted batch
        self.clock: Callable[[], float] = time.time  # what calls still running are judged interrupted by
        self.too_large: set[str] = set()  # spans the backend refused on their own (413): not offered again

    def _store(self, read_only: bool = False) -> TraceStore:
        """The trace store, for one read or write. Spans are read through a read-only connection: a writer's
        holds to WRITE_MEMORY_LIMIT, under which DuckDB cannot even take a 70 MB text to cut it."""
        return TraceStore(self.db_path, read_only=read_only, wait_seconds=STORE_WAIT_SECONDS)

    def push(self, sessions: list[str] | None = None, force: bool = False, dry_run: bool = False,
             announce: Callable[[PushReport], None] | None = None) -> PushReport:
        """One pass: load what OpenCode wrote (with a source), then send what is new or changed; `sessions`
        limits it to these session trees (and `force` sends them whole). With `announce`, what is about to
        leave the machine (spans, sessions, bytes, what of the texts) is counted first and handed to it before
        anything is sent; with `dry_run` it is counted and nothing is sent."""
        report = PushReport(url=self.endpoint.shown, content=self.content.describe())
        now_ms = int(self.clock() * 1000)
        if self.sources:
            with self._store() as store:
                forget_credentials(store)
                report.loads = self.sources.load(store, retention_days=self.retention_days)
        else:  # the store is written only if it holds credentials to forget (a dry run from the window)
            with self._store(read_only=True) as store:
                stale = _credentials_recorded(store)
            if stale:
                with self._store() as store:
                    forget_credentials(store)
        with self._store(read_only=True) as store:
            marks: dict[str, str] = {}
            if sessions is None:
                # a tree sent whole whose mark in the store is the same is not built again: a pass on an
                # unchanged store (every --follow pass while OpenCode is idle, a push from cron) builds nothing
                roots = [r.session_id for r in q.get_sessions_with_traces(store, self.since_ms,
                                                                          source=self.source_kind)]
                marks = {r: f"{self.endpoint.project}\0{self.content.key}\0{m}"
                         for r, m in q.tree_marks(store).items()}
                sent_as = store.pushed_trees(self.endpoint.key)
                # a tree sent with calls running is built again once it is judged interrupted (they go then)
                waiting = [r for r in roots if sent_as.get(r, ("",))[0] == marks.get(r) and sent_as[r][2]]
                now_interrupted = interrupted_trees(store, waiting, now_ms) if waiting else {}
                unchanged = {r for r in roots if r in marks and r in sent_as and r not in now_interrupted and (
                    sent_as[r][0] in (marks[r], marks[r] + STOPPED_MARK))}
                for root in unchanged:
                    report.sessions += 1
                    report.spans += sent_as[root][1]
                    report.running += sent_as[root][2]
                roots = [r for r in roots if r not in unchanged]
            else:
                roots = sorted({root_of(store, s) for s in sessions})
        steps = [roots[i:i + TREES_PER_STEP] for i in range(0, len(roots), TREES_PER_STEP)]
        ready: dict[int, tuple[list[Pending], dict[str, tuple[int, int]], PushReport]] = {}
        if dry_run or announce is not None:
            for i, step in enumerate(steps):  # counted first; one step's spans are kept, not built again
                found = self._pending(step, force, now_ms)
                report.to_send += len(found[0])
                report.to_send_bytes += sum(p.size for p in found[0])
                report.to_send_sessions += len({p.root for p in found[0]})
                if dry_run:
                    _add_counts(report, found[2])
                elif len(steps) == 1:
                    ready[i] = found
            if dry_run:
                return report
            if announce is not None:
                announce(report)
        for i, step in enumerate(steps):
            if self.stop.is_set():
                report.stopped = True
                report.not_read = sum(len(later) for later in steps[i:])
                break
            todo, sizes, counts = ready.pop(i, None) or self._pending(step, force, now_ms)
            _add_counts(report, counts)
            report.waiting += len(todo)

            def whole(sent: set[str], step: list[str] = step, todo: list[Pending] = todo,
                      sizes: dict[str, tuple[int, int, int]] = sizes) -> list[tuple[str, str, int, int]]:
                unsent = {p.root for p in todo if p.span_id not in sent and p.span_id not in self.too_large}
                return [(r, marks[r] + (STOPPED_MARK if sizes[r][2] else ""), *sizes[r][:2]) for r in step
                        if r in marks and r in sizes and r not in unsent]

            self._send(todo, report, whole)
            if report.problem or report.stopped:
                report.not_read = sum(len(later) for later in steps[i + 1:])
                break
        return report

    def _pending(self, step: list[str], force: bool, now_ms: int
                 ) -> tuple[list[Pending], dict[str, tuple[int, int, int]], PushReport]:
        """The spans of these trees to send, the size of each tree, and what was counted on the way."""
        counts, sizes = PushReport(), {}
        with self._store(read_only=True) as store:
            todo = [p for p in pending(store, self.endpoint, step, counts, force, sizes, self.content, now_ms)
                    if p.span_id not in self.too_large]
        return todo, sizes, counts

    def _send(self, todo: list[Pending], report: PushReport,
              whole: Callable[[set[str]], list[tuple[str, str, int, int]]]) -> None:
        """Send in batches until done, the backend fails or `stop` is set. Each accepted batch is recorded
        before the next is sent, with the trees `whole` says are now sent whole (given the span ids accepted):
        a push cut short (a signal, the window's Cancel, a crash) never sends again what was accepted."""
        queue = batches(todo)
        sent_roots: set[str] = set()
        sent: set[str] = set()
        recorded: set[str] = set()  # trees recorded whole
        while queue:
            if self.stop.is_set():
                report.stopped = True
                break
            batch = queue.pop(0)
            try:
                self.sender.send(request_of([p.span for p in batch]).SerializeToString(), len(batch))
            except Cancelled:
                report.stopped = True
                break
            except PushError as exc:
                if exc.status == 413 and len(batch) > 1:  # split it and try the halves
                    half = len(batch) // 2
                    queue[:0] = [batch[:half], batch[half:]]
                    continue
                if exc.status == 413:
                    self.too_large.add(batch[0].span_id)
                    report.refused.append(f"span {batch[0].span.name!r} ({batch[0].size:,} bytes): {exc}")
                    report.waiting -= 1
                    continue
                report.problem, report.retryable = str(exc), exc.retryable
                break
            sent.update(p.span_id for p in batch)
            trees = [t for t in whole(sent) if t[0] not in recorded]
            self._record(batch, trees, last=not queue)
            recorded.update(t[0] for t in trees)
            report.sent += len(batch)
            report.waiting -= len(batch)
            sent_roots.update(p.root for p in batch)
            if self.on_batch is not None:
                self.on_batch(report)
        trees = [t for t in whole(sent) if t[0] not in recorded]
        if trees:  # trees with nothing to send, or whose last spans the backend refused on their own
            self._record([], trees, last=True)
        report.sent_sessions += len(sent_roots)

    def _record(self, batch: list[Pending], trees: list[tuple[str, str, int, int]], last: bool) -> None:
        """Record an accepted batch (and the trees now sent whole). Between two batches of a pass DuckDB is
        not asked to checkpoint at close (40 ms instead of 100 ms on a 40 MB store): its log keeps the record,
        and the last write of the step checkpoints it."""
        with self._store() as store:
            if not last:
                store.cursor().execute("PRAGMA disable_checkpoint_on_shutdown")
            store.record_pushed(self.endpoint.key, [(p.span_id, p.root, p.digest) for p in batch], trees)

    def follow(self, interval: float, stop: threading.Event,
               on_pass: Callable[[PushReport], None] = lambda r: None,
               announce: Callable[[PushReport], None] | None = None,
               on_busy: Callable[[str], None] = lambda text: None) -> PushReport:
        """Push, then again whenever OpenCode writes (the window's change detection: an incremental load, which
        recognises an unchanged store from its file stamps), every `interval` seconds, until `stop` is set or
        the backend refuses the spans for good. A backend that does not answer is tried again, waiting longer
        each time (up to a minute); so is a trace store another process holds, which `on_busy` hears of once
        (until a pass gets through)."""
        wait = interval
        report = PushReport(url=self.endpoint.shown)
        busy = False
        while True:
            try:
                report = self.push(announce=announce)
            except StoreBusy as exc:
                if not busy:
                    busy = True
                    on_busy(f"The trace store {exc.path} is in use by another process{exc.who}; waiting for it "
                            "(push --follow tries again until it is free).")
                wait = min(wait * 2, MAX_FOLLOW_BACKOFF)
                if stop.wait(wait):
                    return report
                continue
            busy = False
            on_pass(report)
            if report.stopped or report.problem and not report.retryable:
                return report
            wait = min(wait * 2, MAX_FOLLOW_BACKOFF) if report.problem else interval
            if stop.wait(wait):
                return report

    def cancel(self) -> None:
        """Stop now: the request in flight too (what it carried is not recorded, and goes again next time)."""
        self.stop.set()
        self.sender.cancel()

    def close(self) -> None:
        self.sender.close()

