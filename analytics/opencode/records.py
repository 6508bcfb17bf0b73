"""The records every reader yields, whatever the OpenCode storage generation.

A reader turns its rows or files into these; the loader never sees SQL or file paths. Only what a trace needs
is kept: message headers, usage, tool names, the task/subagent calls in full, and (on request) text parts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from analytics import jsontext
from analytics.models import OUT_OF_RANGE, Usage

DELEGATION_TOOLS = frozenset({"task", "subagent"})


@dataclass(slots=True)
class RawCall:
    """One task (1.x) or subagent (2.x) tool call, as stored."""

    trace_id: str
    message_id: str
    created_ms: int
    status: str
    input: dict
    output: str | None
    error: str | None
    child_session_id: str | None
    truncated: bool
    start_ms: int | None
    end_ms: int | None
    # a background subagent (1.14.51+, `background: true`): the tool call returned at once ("Background task
    # started") and the result came later, so its run is its child session's, not the tool call's
    background: bool = False


class RawTool(NamedTuple):
    """One tool call that is not a delegation, as stored: its input as JSON text and its output in full.

    A tuple, so a reader makes one from its fields without a call per field (`tuple.__new__(RawTool, row)`)."""

    span_id: str
    name: str
    title: str | None
    status: str  # completed | error | running
    start_ms: int | None
    end_ms: int | None
    input: str | None
    output: str | None  # the output text, or the error text of a failed call


@dataclass(slots=True)
class RawMessage:
    """A message header with the figures the loader needs.

    `texts` is None until asked for: text parts are fetched only for the few messages whose text becomes a
    prompt or an output. `usage` is the sum of the step-finish parts, or the message's own `tokens` when it
    has none (2.x, old stores, a step still running).
    """

    id: str
    role: str
    parent_id: str | None
    agent: str | None
    created_ms: int
    completed_ms: int | None
    model: str | None
    provider: str | None
    error: str | None
    usage: Usage = field(default_factory=Usage)
    tools: list[str] = field(default_factory=list)
    calls: list[RawCall] = field(default_factory=list)
    texts: list[str] | None = None
    tool_calls: list[RawTool] = field(default_factory=list)  # every tool call but the delegations, in order
    priced: bool = True  # False: its model has no price (Claude Code, Codex), so `usage.cost` is unknown, not 0


@dataclass(slots=True)
class RawSession:
    id: str
    parent_id: str | None
    title: str
    directory: str
    project_id: str | None
    agent: str | None
    version: str | None
    created_ms: int
    updated_ms: int
    store: str
    messages: list[RawMessage] = field(default_factory=list)
    source: str = "opencode"  # the agent that wrote it (models.SOURCES)


@dataclass(frozen=True)
class SessionStamp:
    """A cheap fingerprint of one session: when it changes, the session is read again."""

    parent_id: str | None
    fingerprint: str
    created_ms: int = 0  # loads go newest first
    readable: bool = True  # False: the session is there but cannot be read right now (half-written, not UTF-8)


def _whole_text(value: object) -> object:
    """The value with every lone surrogate in its texts (keys too) made U+FFFD; at any depth."""
    return jsontext.rebuild(value, _whole_string, keys=True)


def _whole_string(value: object) -> object:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


_scan_once = json.JSONDecoder().scan_once


def loads_compact(text: str) -> object:
    """json.loads, calling the C scanner directly.

    json.loads wraps the same scanner in three Python calls and two whitespace regex matches, which is most
    of its cost on the small arrays a load parses by the hundred thousand (what SQLite's json_extract
    returns). Text that does not start a document (leading space, not JSON) or has more than whitespace after
    one goes through json.loads, which parses it or says what is wrong; one nested deeper than recursion goes
    is parsed by `jsontext.loads`, without it.
    """
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, RecursionError):  # not a document here, or one nested deeper than recursion goes
        return jsontext.loads(text)
    if end != len(text) and text[end:].strip(" \t\n\r"):  # JSON's whitespace only, as json.loads
        return jsontext.loads(text)
    return value


def loads_js(text: str) -> object:
    """json.loads for what JavaScript's JSON.stringify wrote: a string cut inside a surrogate pair is written
    as a lone `\\udXXX` escape, which Python keeps as a lone surrogate that no UTF-8 store (DuckDB) takes;
    those become U+FFFD. Only a text holding such an escape pays for the walk."""
    value = loads_compact(text)
    if "\\ud" in text or "\\uD" in text:
        return _whole_text(value)
    return value


def output_text(raw: bytes) -> str:
    """A string SQLite's json_extract unescaped, fetched as bytes: UTF-8, except that SQLite writes a lone
    `\\udXXX` escape (a string JavaScript cut inside a surrogate pair) as the 3-byte form of that surrogate,
    which becomes U+FFFD as in `loads_js`. Bytes that are not UTF-8 even so raise ValueError."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _whole_text(raw.decode("utf-8", "surrogatepass"))  # type: ignore[return-value]


def as_int(value: object) -> int | None:
    """An integer from a JSON number (OpenCode writes ms as numbers, sometimes as floats).

    NaN is no number (None); an infinity (`1e999`) is OUT_OF_RANGE, which the loader replaces and counts.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        try:
            return int(value)
        except OverflowError:
            return OUT_OF_RANGE
    return None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def usage_from(tokens: object, cost: object) -> Usage:
    """Usage from an OpenCode `tokens` object ({input, output, reasoning, cache:{read, write}}) and a cost."""
    t = tokens if isinstance(tokens, dict) else {}
    cache = t.get("cache") if isinstance(t.get("cache"), dict) else {}
    c = cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else 0.0
    return Usage(
        as_int(t.get("input")) or 0,
        as_int(t.get("output")) or 0,
        as_int(t.get("reasoning")) or 0,
        as_int(cache.get("read")) or 0,
        as_int(cache.get("write")) or 0,
        float(c),
    )


def named_error(name: str | None, message: str | None) -> str:
    """`APIError: overloaded`, or whichever of the two there is."""
    if message and name:
        return f"{name}: {message}"
    return message or name or "error"


def error_text(error: object) -> str | None:
    """A readable message from an OpenCode NamedError ({name, data:{message}}) or a plain string."""
    if error is None:
        return None
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        message = as_str(data.get("message")) or as_str(error.get("message"))
        return named_error(as_str(error.get("name")) or as_str(error.get("type")), message)
    return str(error)


CALL_STATUS = {"completed": "completed", "error": "error"}


def call_status(status: object) -> str:
    """completed | error | running (pending, streaming and running all count as running)."""
    return CALL_STATUS.get(status if isinstance(status, str) else "", "running")


_CHILD_ID_PATTERNS = [
    re.compile(r'<task id="(ses_[A-Za-z0-9_]+)"'),
    re.compile(r'<subagent sessionID="(ses_[A-Za-z0-9_]+)"'),
    re.compile(r"task_id: (ses_[A-Za-z0-9_]+)"),
    re.compile(r"session_id: (ses_[A-Za-z0-9_]+)"),
]


def child_id_from_output(text: str | None) -> str | None:
    """The child session id OpenCode writes into a task result, when the metadata lost it."""
    if not text:
        return None
    head = text[:2000]
    for pattern in _CHILD_ID_PATTERNS:
        m = pattern.search(head)
        if m:
            return m.group(1)
    return None


def call_from_state(
    trace_id: str, message_id: str, created_ms: int, state: dict, output: str | None
) -> RawCall:
    """A RawCall from a tool `state` object; `output` is the result text (joined content in 2.x)."""
    metadata = state.get("metadata") if isinstance(state.get("metadata"), dict) else {}
    time = state.get("time") if isinstance(state.get("time"), dict) else {}
    inp = state.get("input") if isinstance(state.get("input"), dict) else {}
    child = as_str(metadata.get("sessionId")) or as_str(metadata.get("sessionID"))
    err = state.get("error")
    return RawCall(
        trace_id=trace_id,
        message_id=message_id,
        created_ms=created_ms,
        status=call_status(state.get("status")),
        input=inp,
        output=output,
        error=error_text(err) if err is not None else None,
        child_session_id=child,
        truncated=bool(metadata.get("truncated")),
        start_ms=as_int(time.get("start")),
        end_ms=as_int(time.get("end")),
        background=metadata.get("background") is True or inp.get("background") is True,
    )


def tool_from_state(span_id: str, name: str, state: dict, output: str | None, start_ms: int | None,
                    end_ms: int | None) -> RawTool:
    """A RawTool from a tool part's `state` (JSON store, 2.x): the input as compact JSON text, like SQLite's
    json_extract gives it; a failed call's output is its error text."""
    status = call_status(state.get("status"))
    inp = state.get("input")
    err = state.get("error")
    text = error_text(err) if status == "error" and err is not None else output
    return RawTool(span_id, name, as_str(state.get("title")), status, start_ms, end_ms,
                   None if inp is None else json_text(inp), text)


def json_text(value: object) -> str:
    """Compact JSON text of a parsed value, at any depth. Python's parser also took `NaN` and `Infinity`, which
    are no JSON (a reader of the input would refuse it): written as null."""
    try:
        return jsontext.dumps(value)
    except ValueError:
        return jsontext.dumps(jsontext.rebuild(value, _finite))


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if value - value == 0 else None
    return value


def id_time_ms(id_: str, ref_ms: int) -> int | None:
    """The creation time encoded in an OpenCode id, resolved near a reference time (ids keep ms mod 2**36)."""
    prefix, _, rest = id_.partition("_")
    try:
        v = int(rest[:12], 16)
    except ValueError:
        return None
    if prefix == "ses":
        v = ~v & ((1 << 48) - 1)
    low = v >> 12
    period = 1 << 36
    base = ref_ms - ref_ms % period
    return min((base + low + k * period for k in (-1, 0, 1)), key=lambda c: abs(c - ref_ms))
