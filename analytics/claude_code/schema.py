"""The fields of a Claude Code history line that a trace needs, as msgspec structs.

A line is decoded straight into these structs by msgspec's C decoder: the fields named here are made into
Python objects, every other field (the system prompt snapshots, tool schemas and attachments that make up
most of a history's bytes) is skipped without being built. A field whose type is wrong (`"uuid": 5`) fails
the line, which the reader then skips and counts; fields typed `Any` take whatever is there and are checked
where they are used (token counts may be floats, or numbers too large for a store).

Seen in 1.0.128 .. 2.1.332 (see tests/fixtures/README.md); unknown fields are ignored by construction.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Usage(msgspec.Struct):
    input_tokens: Any = None
    output_tokens: Any = None
    cache_creation_input_tokens: Any = None
    cache_read_input_tokens: Any = None
    cache_creation: Any = None  # {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens} (2.1.x): priced apart


class Block(msgspec.Struct):
    """One content block of a message: text, thinking, tool_use, tool_result, image, ..."""

    type: Any = None
    text: Any = None
    id: Any = None
    name: Any = None
    input: Any = None
    tool_use_id: Any = None
    content: Any = None  # a tool_result's: a string or a list of blocks
    is_error: Any = None


class Message(msgspec.Struct):
    id: Any = None
    role: Any = None
    model: Any = None
    content: str | list[Block] | None = None
    usage: Usage | None = None
    stop_reason: Any = None


class Record(msgspec.Struct):
    """One line of a session or subagent file (every record type shares this one struct)."""

    type: str | None = None
    uuid: str | None = None
    parentUuid: str | None = None  # the file's own field names
    timestamp: str | None = None
    isSidechain: bool | None = None
    agentId: str | None = None
    sessionId: str | None = None
    cwd: str | None = None
    version: str | None = None
    gitBranch: str | None = None
    isMeta: bool | None = None
    isCompactSummary: bool | None = None
    isApiErrorMessage: bool | None = None
    origin: Any = None  # {kind: "task-notification", ...} on a background subagent's outcome (2.1.x)
    message: Message | None = None
    toolUseResult: msgspec.Raw = msgspec.Raw()  # empty when absent (decoded only for subagent calls: it can be large)
    # title records
    summary: Any = None
    customTitle: Any = None
    aiTitle: Any = None
    # cost-state (2.1.x): the session's running total, cumulative across resumes
    totalCostUSD: Any = None
    modelUsage: Any = None


class AgentResult(msgspec.Struct):
    """`toolUseResult` of a subagent call (Agent / Task): its outcome as Claude Code saw it."""

    status: Any = None
    agentId: Any = None
    isAsync: Any = None
    content: Any = None
    agentType: Any = None


class Meta(msgspec.Struct):
    """`agent-<id>.meta.json` beside a subagent file (2.1.x after 2.1.64)."""

    agentType: Any = None
    description: Any = None
    toolUseId: Any = None
    parentAgentId: Any = None
    model: Any = None


RECORDS = msgspec.json.Decoder(Record)
AGENT_RESULT = msgspec.json.Decoder(AgentResult)
META = msgspec.json.Decoder(Meta)
