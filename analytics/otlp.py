"""A session tree as OpenTelemetry spans: one per agent call, LLM call and tool call, with stable ids.

The spans are the OpenTelemetry SDK's own `ReadableSpan`s, encoded by the OTLP exporter's own encoder
(`request_of`) for a push (`analytics/push.py`), and the file export is the JSON of the very
`ExportTraceServiceRequest` a push sends (`otlp_json`). Attributes follow the OpenTelemetry GenAI
conventions (`gen_ai.*`: Jaeger, Langfuse, Grafana) and OpenInference (`openinference.span.kind`,
`input.value`, `output.value`, `llm.token_count.*`: Phoenix):

- every agent call (the root session and each delegation) is an `invoke_agent` span, under the call that
  delegated to it;
- each of its LLM calls is a `chat` span under it, with `gen_ai.usage.*`;
- each tool call is an `execute_tool` span under the LLM call that made it, with `gen_ai.tool.name`.

Ids are derived from OpenCode's: the trace id from the root session, a span id from the call, message or part
id (sha256), so the same call has the same span id in every export and every push. A span still running ends,
for now, at the last time the store knows of its session (not the wall clock), so exporting an unchanged store
twice gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from analytics.db import TraceStore
from analytics.errors import AgentTracesError
from analytics.models import COMPLETED, ERROR, LLM, AgentSpan, AgentTrace
from analytics.queries import trace_queries as q
from analytics.queries.trace_queries import root_of
from analytics.settings import CONTENT_MODES, DEFAULT_CONTENT_MODE, DEFAULT_CUT_KB, MAX_CUT_KB

VERSION = "0.1.0"
DEFAULT_PROJECT = "agent-traces"
SERVICE_NAME = "opencode"  # the service of a session tree: the agent that ran it, OpenCode's named as always
MS = 1_000_000  # nanoseconds in a millisecond


def hex_id(text: str, size: int) -> str:
    """A stable id of `size` bytes in hex, derived from an OpenCode id (never all zeros, which OTLP forbids)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[: size * 2]
    return digest if digest.strip("0") else "1".rjust(size * 2, "0")


def _int_id(text: str, size: int) -> int:
    return int(hex_id(text, size), 16)


def trace_id_of(root_session_id: str) -> int:
    """The OTLP trace id of a session tree (16 bytes)."""
    return _int_id(root_session_id, 16)


def span_id_of(opencode_id: str) -> int:
    """The OTLP span id of a call, message or part (8 bytes)."""
    return _int_id(opencode_id, 8)


def resource(project: str, source: str = "opencode") -> Resource:
    """The resource every span of a session tree carries: the service (the agent that ran it: `opencode`,
    `claude-code`, `codex`), and the Phoenix project the spans go to."""
    return Resource({"service.name": SERVICE_NAME if source == "opencode" else source,
                     "openinference.project.name": project,
                     "telemetry.sdk.name": "agent-traces", "telemetry.sdk.version": VERSION})


SCOPE = InstrumentationScope("agent-traces", VERSION)


FULL, CUT, NONE = CONTENT_MODES
# A text attribute carries at most this many bytes even in `full`: the requests stay under MAX_BATCH_BYTES
# (4 MiB) with a span's input and output both whole, and every backend caps an attribute or a request far
# below what an agent's tool output can be (Tempo keeps 2 KB of an attribute by default; Langfuse Cloud takes
# 5 MB a request; the Collector, Jaeger and Tempo 20 MiB on OTLP/HTTP).
FULL_TEXT_BYTES = 1024 * 1024
STATUS_CHARS = 2000  # of an error's text, as its span's status message


@dataclass(frozen=True)
class Content:
    """How much of the texts a push sends: the prompts and answers of agent and LLM calls, and the input,
    output and title of tool calls (with the description of a delegation and an error's message).

    - `full`: each text whole, up to FULL_TEXT_BYTES (cut with a marker beyond);
    - `cut`: each text cut to `cut_kb` KB, with a marker saying so;
    - `none`: no text at all: agents, models, tool names, times, tokens, costs, statuses and the tree.
    """

    mode: str = DEFAULT_CONTENT_MODE
    cut_kb: int = DEFAULT_CUT_KB

    def __post_init__(self) -> None:
        if self.mode not in CONTENT_MODES:
            raise AgentTracesError(f"The content of a push is one of {', '.join(CONTENT_MODES)}, not "
                                   f"{self.mode!r}.")
        if isinstance(self.cut_kb, bool) or not isinstance(self.cut_kb, int) or \
                not 1 <= self.cut_kb <= MAX_CUT_KB:
            raise AgentTracesError(f"Texts are cut to 1 to {MAX_CUT_KB} KB, not {self.cut_kb!r}.")

    @property
    def limit(self) -> int:
        """Bytes of a text that go."""
        return {FULL: FULL_TEXT_BYTES, CUT: self.cut_kb * 1024, NONE: 0}[self.mode]

    @property
    def key(self) -> str:
        """What a sent tree's mark holds of the choice (another choice sends the trees again)."""
        return f"{self.mode}:{self.cut_kb}" if self.mode == CUT else self.mode

    def text(self, value: str | None) -> str | None:
        """The part of a text that goes, with a marker where it was cut (None: none of it goes)."""
        if not value or self.mode == NONE:
            return None
        limit = self.limit
        if len(value) * 4 <= limit:  # no text of this length can be over the limit in UTF-8
            return value
        raw = value.encode("utf-8", "surrogatepass")
        if len(raw) <= limit:
            return value
        size = f"{limit // 1024:,} KB" if limit < 1024 * 1024 else f"{limit // (1024 * 1024):,} MB"
        return raw[:limit].decode("utf-8", "ignore") + f"\n… [cut by agent-traces at {size}]"

    def describe(self) -> str:
        """What of the texts goes, in a few words."""
        if self.mode == NONE:
            return ("no prompts, outputs or tool inputs (names, times, tokens, costs, statuses and the tree "
                    "only)")
        if self.mode == CUT:
            return f"prompts, outputs and tool inputs cut to {self.cut_kb} KB each"
        return "prompts, outputs and tool inputs in full (up to 1 MB each)"


DEFAULT_CONTENT = Content()


def _attributes(pairs: Iterable[tuple[str, object]]) -> dict[str, Any]:
    """The pairs with a value (None and empty texts are left out), tuples as lists of strings."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if value is None or value == "":
            continue
        out[key] = [str(v) for v in value] if isinstance(value, tuple | list) else value
    return out


def _status(status: str, message: str | None) -> Status:
    """The span status; an error's message is its text as it goes (cut already), or just "error"."""
    if status == COMPLETED:
        return Status(StatusCode.OK)
    if status == ERROR:
        return Status(StatusCode.ERROR, (message or "error")[:STATUS_CHARS])
    return Status(StatusCode.UNSET)  # still running


INTERRUPTED = "interrupted"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _usage(tokens_in: int, tokens_out: int, reasoning: int, cache_read: int, cache_write: int,
           cost: float | None, unpriced: int = 0) -> list[tuple[str, object]]:
    """The usage attributes; a cost that is not known whole (LLM calls of a model with no price) is left out,
    never sent as 0, and the calls it lacks are said (`agent_traces.unpriced_calls`)."""
    known = cost is not None and not unpriced
    return [
        ("gen_ai.usage.input_tokens", tokens_in),
        ("gen_ai.usage.output_tokens", tokens_out),
        ("gen_ai.usage.reasoning_tokens", reasoning),
        ("gen_ai.usage.cache_read_input_tokens", cache_read),
        ("gen_ai.usage.cache_creation_input_tokens", cache_write),
        ("llm.token_count.prompt", tokens_in),
        ("llm.token_count.completion", tokens_out),
        ("llm.token_count.total", tokens_in + tokens_out),
        ("agent_traces.cost_usd", float(cost) if known else None),
        ("agent_traces.unpriced_calls", unpriced or (1 if cost is None else None)),
    ]


class _Builder:
    """Makes the spans of one session tree, sharing its trace id, resource and "now"."""

    def __init__(self, root_session_id: str, project: str, last_ms: int, content: Content,
                 stopped_ms: int | None = None, source: str = "opencode") -> None:
        self.trace_id = trace_id_of(root_session_id)
        self.resource = resource(project, source)
        self.last_ms = last_ms
        self.text = content.text
        self.stopped_ms = stopped_ms  # the tree is judged interrupted: its running calls end at its last write

    def context(self, opencode_id: str) -> SpanContext:
        return SpanContext(self.trace_id, span_id_of(opencode_id), is_remote=False,
                           trace_flags=TraceFlags(TraceFlags.SAMPLED))

    def span(self, name: str, opencode_id: str, parent_id: str | None, kind: SpanKind, attributes: dict[str, Any],
             status: Status, started_at: int, ended_at: int | None) -> ReadableSpan:
        end = ended_at if ended_at is not None else max(self.last_ms, started_at)
        if status.status_code is StatusCode.UNSET and self.stopped_ms is not None:
            # still marked running in a tree OpenCode stopped writing: interrupted (findings.py), and sent so
            end = self.stopped_ms
            status = Status(StatusCode.ERROR, f"interrupted: no write since {_iso(self.stopped_ms)}")
            attributes["agent_traces.status"] = INTERRUPTED
        return ReadableSpan(
            name=name, context=self.context(opencode_id),
            parent=self.context(parent_id) if parent_id is not None else None,
            resource=self.resource, attributes=attributes, kind=kind, status=status,
            start_time=started_at * MS, end_time=max(end, started_at) * MS, instrumentation_scope=SCOPE,
        )

    def agent(self, t: AgentTrace) -> ReadableSpan:
        text = self.text
        output = text(t.prompt_output)
        attributes = _attributes([
            ("gen_ai.operation.name", "invoke_agent"),
            ("gen_ai.agent.name", t.subagent_type),
            ("gen_ai.agent.description", text(t.description)),
            ("gen_ai.request.model", t.model),
            ("gen_ai.provider.name", t.provider),
            ("gen_ai.conversation.id", t.child_session_id or t.session_id),
            *_usage(t.tokens_in, t.tokens_out, t.tokens_reasoning, t.tokens_cache_read, t.tokens_cache_write,
                    t.cost_usd, t.unpriced_calls),
            ("openinference.span.kind", "AGENT"),
            ("input.value", text(t.prompt_input)),
            ("output.value", output),
            ("agent_traces.kind", t.kind),
            ("agent_traces.trace_id", t.trace_id),
            ("agent_traces.parent_agent", t.parent_agent),
            ("agent_traces.status", t.status),
            ("agent_traces.tools_used", t.tools_used),
            ("opencode.session_id", t.session_id),
            ("opencode.child_session_id", t.child_session_id),
        ])
        name = f"invoke_agent {t.subagent_type}"
        return self.span(name, t.trace_id, t.parent_trace_id, SpanKind.INTERNAL, attributes,
                         _status(t.status, output), t.started_at, t.ended_at)

    def step(self, s: AgentSpan, trace: AgentTrace) -> ReadableSpan:
        text = self.text
        output = text(s.output)
        if s.kind == LLM:
            attributes = _attributes([
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.request.model", s.name),
                ("gen_ai.response.model", s.name),
                ("gen_ai.provider.name", s.title),
                ("gen_ai.agent.name", trace.subagent_type),
                *_usage(s.tokens_in, s.tokens_out, s.tokens_reasoning, s.tokens_cache_read, s.tokens_cache_write,
                        s.cost_usd),
                ("openinference.span.kind", "LLM"),
                ("llm.model_name", s.name),
                ("llm.provider", s.title),
                ("output.value", output),
                ("agent_traces.status", s.status),
                ("opencode.message_id", s.span_id),
            ])
            return self.span(f"chat {s.name}", s.span_id, s.trace_id, SpanKind.CLIENT, attributes,
                             _status(s.status, output), s.started_at, s.ended_at)
        tool_input = text(s.input)
        attributes = _attributes([
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", s.name),
            ("gen_ai.tool.call.id", s.span_id),
            ("gen_ai.agent.name", trace.subagent_type),
            ("openinference.span.kind", "TOOL"),
            ("tool.name", s.name),
            ("input.value", tool_input),
            # a cut input is no JSON any more
            ("input.mime_type", "application/json" if tool_input and tool_input == s.input else None),
            ("output.value", output),
            ("agent_traces.title", text(s.title)),
            ("agent_traces.status", s.status),
        ])
        # a tool call whose LLM call was lost to damage hangs under the agent call
        return self.span(f"execute_tool {s.name}", s.span_id, s.parent_span_id or s.trace_id, SpanKind.INTERNAL,
                         attributes, _status(s.status, output), s.started_at, s.ended_at)


def trees_spans(store: TraceStore, roots: list[str], project: str = DEFAULT_PROJECT,
                content: Content = DEFAULT_CONTENT, stopped: dict[str, int] | None = None
                ) -> dict[str, list[ReadableSpan]]:
    """Every span of these session trees, by root: its agent calls (parents first), each followed by its
    steps. Read in two queries, whatever the number of trees; the texts come cut by DuckDB to what `content`
    lets go (one character more, to know they were longer), so a text of any size costs no more than that.
    `stopped` holds the trees judged interrupted, with their last write: their calls still marked running
    end there, with the status `interrupted` (an error)."""
    stopped = stopped or {}
    chars = 0 if content.mode == NONE else content.limit + 1
    traces, steps = q.get_full_trees(store, roots, text_chars=chars)
    by_root: dict[str, list[AgentTrace]] = {}
    for t in traces:
        by_root.setdefault(t.root_session_id, []).append(t)
    out: dict[str, list[ReadableSpan]] = {}
    for root, tree in by_root.items():
        times = [x for t in tree for x in (t.started_at, t.ended_at) if x is not None]
        times += [x for t in tree for s in steps.get(t.trace_id, ()) for x in (s.started_at, s.ended_at)
                  if x is not None]
        build = _Builder(root, project, max(times, default=0), content, stopped.get(root), tree[0].source)
        spans = out[root] = []
        for t in tree:
            spans.append(build.agent(t))
            spans.extend(build.step(s, t) for s in steps.get(t.trace_id, ()))
    return out


def session_spans(store: TraceStore, root_session_id: str, project: str = DEFAULT_PROJECT,
                  content: Content = DEFAULT_CONTENT) -> list[ReadableSpan]:
    """Every span of one session tree (`trees_spans`)."""
    return trees_spans(store, [root_session_id], project, content).get(root_session_id, [])


def request_of(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    """The `ExportTraceServiceRequest` the OTLP exporter sends for these spans (its own encoder)."""
    return encode_spans(spans)


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: object) -> None:
    """Turn the base64 of protobuf's JSON mapping into the hex ids OTLP/JSON asks for, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex() if value else value
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The request as OTLP/JSON (the OTLP specification's JSON encoding): the protobuf JSON mapping, except that
    trace and span ids are hex (not base64) and enums are numbers; keys in lowerCamelCase."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    _hex_ids(data)
    return data


def from_otlp_json(data: dict[str, Any]) -> ExportTraceServiceRequest:
    """The request an OTLP/JSON document holds (what an OTLP/JSON receiver reads from it)."""
    data = json.loads(json.dumps(data))

    def b64(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ID_FIELDS and isinstance(value, str):
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                else:
                    b64(value)
        elif isinstance(node, list):
            for item in node:
                b64(item)

    b64(data)
    return json_format.ParseDict(data, ExportTraceServiceRequest())


def to_otlp(store: TraceStore, session_id: str, project: str = DEFAULT_PROJECT,
            content: Content = DEFAULT_CONTENT) -> dict[str, Any]:
    """A session tree as one OTLP/JSON document: exactly the request `push` sends for it, as JSON."""
    spans = session_spans(store, root_of(store, session_id), project, content)
    if not spans:
        raise AgentTracesError(f"No traces for session {session_id!r}; `agent-traces sessions` lists them.")
    return otlp_json(request_of(spans))
