"""What the tree knows of its rows beyond their own data, which its delegates paint: one object, set from each
snapshot, in place of parallel containers read through the view.

Per trace id: whether the row is dimmed (shown for context, outside the filter), why it is flagged, whether
it is on its session's critical path, and where it ends if it is an interrupted call (its session's last
write); per session tree, its time scale (`analytics.timeline.Bounds`). A step row (an `AgentSpan`) is marked
as its trace is.
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics import timeline
from analytics.models import RUNNING
from analytics.queries.trace_queries import TraceSummary
from analytics.timeline import Bounds, Call


class RowMarks:
    """The marks of the rows on show (plain Python: read by the delegates at every paint, tested without Qt)."""

    def __init__(self) -> None:
        self.dimmed: set[str] = set()  # rows shown for context that do not match the filter (greyed)
        self.flags: dict[str, str] = {}  # flagged rows: why
        self.critical: set[str] = set()  # rows on their session's critical path
        self.interrupted: dict[str, int] = {}  # interrupted calls (`running` in OpenCode): their tree's last write
        self.bounds: dict[str, Bounds] = {}  # per root session id: its time scale
        self.live: set[str] = set()  # calls still running and not interrupted: their duration grows

    def set(self, traces: Iterable[TraceSummary], hits: set[str], narrowed: bool, flags: dict[str, str],
            critical: set[str], interrupted: dict[str, int]) -> None:
        """The marks of these traces, as a snapshot judged them: with `narrowed`, the traces not in `hits` are
        dimmed."""
        traces = list(traces)
        self.flags = dict(flags)
        self.critical = set(critical)
        self.interrupted = dict(interrupted)
        self.dimmed = {t.trace_id for t in traces if t.trace_id not in hits} if narrowed else set()
        self.bounds = timeline.session_bounds(traces, self.interrupted)
        self.live = {t.trace_id for t in traces if t.status == RUNNING and t.trace_id not in self.interrupted}

    def stopped(self, t: Call) -> int | None:
        """Where a running call (or step) ends if it was interrupted: its tree's last write; else None."""
        return self.interrupted.get(t.trace_id) if t.status == RUNNING else None

    def running_for(self, t: Call, now: int) -> int:
        """How long a running call has run, as of `now` (until its tree's last write if interrupted)."""
        return timeline.running_for(t, now, self.stopped(t))

    def bar(self, t: Call, now: int) -> tuple[float, float]:
        """(left, width) of a call's bar on its session's time scale, as fractions of the column."""
        return timeline.call_bar(t, self.bounds[t.root_session_id], now, self.stopped(t))

    def of(self, trace_id: str) -> tuple:
        """What the marks show of one row: when it changes, the row is drawn again."""
        return (trace_id in self.dimmed, trace_id in self.flags, trace_id in self.critical,
                self.interrupted.get(trace_id))

    @property
    def running(self) -> bool:
        """Whether a session tree on show still runs (its bars grow with the clock)."""
        return any(b.running for b in self.bounds.values())
