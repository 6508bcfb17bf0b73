"""Export a session's traces as plain JSON. OpenTelemetry (OTLP/JSON, and pushing over OTLP/HTTP) is
`analytics/otlp.py` and `analytics/push.py`; `to_otlp` is kept here under its old name."""

from __future__ import annotations

import dataclasses
from typing import Any

from analytics.db import TraceStore
from analytics.errors import AgentTracesError
from analytics.models import AgentTrace
from analytics.otlp import to_otlp
from analytics.queries import trace_queries as q

__all__ = ["session_traces", "to_json", "to_otlp"]


def session_traces(store: TraceStore, session_id: str) -> list[AgentTrace]:
    """Every trace of the session's tree, in full, parents before children."""
    traces = q.get_full_traces(store, q.root_of(store, session_id))
    if not traces:
        raise AgentTracesError(f"No traces for session {session_id!r}; `agent-traces sessions` lists them.")
    return traces


def to_json(store: TraceStore, session_id: str) -> dict[str, Any]:
    traces = session_traces(store, session_id)
    summary = q.get_session_summary(store, traces[0].root_session_id)
    return {
        "format": "agent-traces/1",
        "session": dataclasses.asdict(summary) if summary else None,
        "traces": [{**dataclasses.asdict(t), "tools_used": list(t.tools_used)} for t in traces],
    }
