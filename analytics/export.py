"""Export a session's traces: as plain JSON, or as OpenTelemetry OTLP/JSON for Jaeger, Phoenix or Langfuse.

OTLP/JSON follows the protobuf JSON mapping of `ExportTraceServiceRequest` (opentelemetry-proto): ids in hex,
times as strings of nanoseconds, enums as numbers. One span per trace, parented like the delegation tree.
Attributes follow both the OpenTelemetry GenAI conventions (`gen_ai.*`, read by Jaeger and Langfuse) and
OpenInference (`openinference.span.kind`, `input.value`, `output.value`, read by Phoenix).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

from analytics.db import TraceStore
from analytics.errors import AgentTracesError
from analytics.models import AgentTrace
from analytics.queries import trace_queries as q

SPAN_KIND_INTERNAL = 1
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
VERSION = "0.1.0"


def session_traces(store: TraceStore, session_id: str) -> list[AgentTrace]:
    """Every trace of the session's tree, in full, parents before children."""
    row = store.cursor().execute("SELECT root_session_id FROM sessions WHERE session_id = ?",
                                 [session_id]).fetchone()
    traces = q.get_full_traces(store, row[0] if row else session_id)
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


def _hex_id(text: str, size: int) -> str:
    """A stable id of `size` bytes in hex, derived from an OpenCode id (never all zeros)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[: size * 2]
    return digest if digest.strip("0") else "1".rjust(size * 2, "0")


def _attr(key: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, (list, tuple)):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": str(v)} for v in value]}}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(t: AgentTrace, trace_hex: str, now_ms: int) -> dict[str, Any]:
    end = t.ended_at if t.ended_at is not None else (now_ms if t.status == "running" else t.started_at)
    attributes = [
        ("gen_ai.operation.name", "invoke_agent"),
        ("gen_ai.agent.name", t.subagent_type),
        ("gen_ai.agent.description", t.description),
        ("gen_ai.request.model", t.model),
        ("gen_ai.provider.name", t.provider),
        ("gen_ai.usage.input_tokens", t.tokens_in),
        ("gen_ai.usage.output_tokens", t.tokens_out),
        ("gen_ai.usage.reasoning_tokens", t.tokens_reasoning),
        ("gen_ai.usage.cache_read_input_tokens", t.tokens_cache_read),
        ("gen_ai.usage.cache_creation_input_tokens", t.tokens_cache_write),
        ("gen_ai.conversation.id", t.child_session_id or t.session_id),
        ("openinference.span.kind", "AGENT"),
        ("input.value", t.prompt_input),
        ("output.value", t.prompt_output),
        ("llm.token_count.prompt", t.tokens_in),
        ("llm.token_count.completion", t.tokens_out),
        ("llm.token_count.total", t.tokens_in + t.tokens_out),
        ("agent_traces.kind", t.kind),
        ("agent_traces.trace_id", t.trace_id),
        ("agent_traces.parent_agent", t.parent_agent),
        ("agent_traces.status", t.status),
        ("agent_traces.cost_usd", float(t.cost_usd)),
        ("agent_traces.tools_used", list(t.tools_used)),
        ("opencode.session_id", t.session_id),
        ("opencode.child_session_id", t.child_session_id),
    ]
    span: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": _hex_id(t.trace_id, 8),
        "name": f"invoke_agent {t.subagent_type}" + (f": {t.description}" if t.description else ""),
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(t.started_at * 1_000_000),
        "endTimeUnixNano": str(end * 1_000_000),
        "attributes": [a for k, v in attributes if (a := _attr(k, v)) is not None],
        "status": {"code": STATUS_OK} if t.status == "completed" else
                  {"code": STATUS_ERROR, "message": t.prompt_output or "error"} if t.status == "error" else
                  {"code": STATUS_UNSET, "message": "still running"},
    }
    if t.parent_trace_id:
        span["parentSpanId"] = _hex_id(t.parent_trace_id, 8)
    return span


def to_otlp(store: TraceStore, session_id: str, now_ms: int | None = None) -> dict[str, Any]:
    """The session tree as one OTLP/JSON ExportTraceServiceRequest (one trace, one span per agent call)."""
    traces = session_traces(store, session_id)
    trace_hex = _hex_id(traces[0].root_session_id, 16)
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return {
        "resourceSpans": [{
            "resource": {"attributes": [_attr("service.name", "opencode"),
                                        _attr("telemetry.sdk.name", "agent-traces")]},
            "scopeSpans": [{
                "scope": {"name": "agent-traces", "version": VERSION},
                "spans": [_span(t, trace_hex, now_ms) for t in traces],
            }],
        }]
    }
