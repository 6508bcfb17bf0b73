"""The arithmetic of a time line, apart from the widgets that draw one: where a running call ends, and where a
call's bar lies on its session's time scale (as Jaeger UI keeps its timeline maths apart from its views). The
tree's waterfall, the detail pane, the comparison, the time split and the findings all judge by these, with
one clock, so they cannot disagree; and they are tested without Qt.

A call OpenCode still marks running runs on, to now, unless it is *interrupted*: its session tree has had no
write for INTERRUPTED_MS (OpenCode died or was killed, and will never write its end). Its stored status stays
`running`, as OpenCode wrote it; it ends at that last write instead, and stops growing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from analytics.models import RUNNING

INTERRUPTED_MS = 10 * 60_000  # a running call whose session tree had no write for this long


def now_ms() -> int:
    """The clock every judgement of a running call takes, unless it is given another `now`."""
    return int(time.time() * 1000)


def interrupted_at(last_write_ms: int | None, now: int) -> int | None:
    """Where the running calls of a session tree last written at `last_write_ms` end, as of `now`: at that last
    write when the tree has been silent for INTERRUPTED_MS or more (they are interrupted); else None (they run
    on, to now)."""
    if last_write_ms is None or now - last_write_ms < INTERRUPTED_MS:
        return None
    return last_write_ms


class Timed(Protocol):
    """What a call on a time line has: a trace (`TraceSummary`) or a step (`AgentSpan`)."""

    started_at: int
    ended_at: int | None
    status: str


def end_of(t: Timed, now: int, stopped: int | None = None) -> int:
    """Where a call ends on a time line: its end; a running one's now, or `stopped` (its tree's last write)
    when it was interrupted; one whose end is lost (not running, no end), its start."""
    if t.ended_at is not None:
        return t.ended_at
    if t.status == RUNNING:
        return now if stopped is None else max(stopped, t.started_at)
    return t.started_at


def running_for(t: Timed, now: int, stopped: int | None = None) -> int:
    """How long a running call has run: until now, or until its tree's last write if it was interrupted."""
    return max((now if stopped is None else stopped) - t.started_at, 0)


def bar(start: int, end: int, scale_start: int, scale_ms: int) -> tuple[float, float]:
    """(left, width) of the interval [start, end] as fractions of a scale of `scale_ms` from `scale_start`,
    clipped to it."""
    scale = max(scale_ms, 1)
    left = min(max((start - scale_start) / scale, 0.0), 1.0)
    return left, min(max((end - start) / scale, 0.0), 1.0 - left)


class Call(Timed, Protocol):
    """A call with its place: its trace id and its session tree."""

    trace_id: str
    root_session_id: str


class Bounds(NamedTuple):
    """A session tree's time scale: its start, the latest end in it, and whether anything in it runs on."""

    start: int
    end: int
    running: bool


def session_bounds(traces: Iterable[Call], stops: dict[str, int]) -> dict[str, Bounds]:
    """Per root session of these traces (`root_session_id`), its time scale; `stops` gives, per interrupted
    call (trace id), its tree's last write: it ends there and does not run on."""
    bounds: dict[str, list] = {}
    for t in traces:
        b = bounds.setdefault(t.root_session_id, [t.started_at, t.started_at, False])
        stopped = stops.get(t.trace_id) if t.status == RUNNING else None
        b[0] = min(b[0], t.started_at)
        b[1] = max(b[1], t.ended_at or stopped or t.started_at)
        b[2] = b[2] or t.status == RUNNING and stopped is None
    return {k: Bounds(*v) for k, v in bounds.items()}


def call_bar(t: Timed, scale: Bounds, now: int, stopped: int | None = None) -> tuple[float, float]:
    """(left, width) of a call's bar on its session's time scale: it starts at its offset from the session's
    start; a scale that runs on reaches now, and one that ends before the call is stretched to it."""
    end = end_of(t, now, stopped)
    scale_end = max(scale.end, now) if scale.running else scale.end
    return bar(t.started_at, end, scale.start, max(scale_end, end) - scale.start)
