"""Plain records shared by the readers, the loader, the store and the queries.

Times are integer milliseconds since the Unix epoch, as OpenCode writes them; the DuckDB store turns them
into TIMESTAMP columns and the queries hand them back as milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

SESSION = "session"
DELEGATION = "delegation"

# The agents whose histories are read, as the `source` column names them, with the name a person reads.
OPENCODE = "opencode"
CLAUDE_CODE = "claude-code"
CODEX = "codex"
SOURCES = {OPENCODE: "OpenCode", CLAUDE_CODE: "Claude Code", CODEX: "Codex"}

COMPLETED = "completed"
ERROR = "error"
RUNNING = "running"

# What the store can hold, and what a real OpenCode record can say. Times are ms since the epoch; DuckDB's
# TIMESTAMP holds far more, but anything before 1970 or after 9999 is damage, not history. A token count above
# 10**15 (or below 0) is damage too, and keeps the per-tree sums far inside BIGINT. Values outside are replaced
# and counted in the LoadReport (loader.py, `_checked`).
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31 23:59:59.999 UTC
MAX_TOKENS = 10**15
MAX_COST_USD = 1e12
OUT_OF_RANGE = 1 << 63  # what a reader puts where a number overflowed (1e999): the loader replaces and counts it


class Usage(NamedTuple):
    """Token and cost figures of one or more assistant steps.

    A tuple, not a frozen dataclass: a load makes one per message and per sum, hundreds of thousands, and a
    frozen dataclass sets each field through `object.__setattr__`, several times the cost of a tuple."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.reasoning + other.reasoning,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            self.cost + other.cost,
        )


@dataclass(frozen=True)
class AgentTrace:
    """One agent invocation: a root session ("session") or one task/subagent tool call ("delegation")."""

    trace_id: str
    kind: str
    session_id: str
    root_session_id: str
    child_session_id: str | None
    parent_trace_id: str | None
    parent_agent: str | None
    subagent_type: str
    description: str | None
    prompt_input: str
    prompt_output: str | None
    status: str
    started_at: int
    ended_at: int | None
    duration_ms: int | None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_reasoning: int = 0
    tokens_cache_read: int = 0
    tokens_cache_write: int = 0
    cost_usd: float = 0.0
    tools_used: tuple[str, ...] = ()
    model: str | None = None
    provider: str | None = None
    depth: int = 0
    # which agent's history it came from (SOURCES); a store made before the column reads 'opencode'
    source: str = "opencode"
    # its own LLM calls whose model has no price (Claude Code, Codex): `cost_usd` is then the known part only
    unpriced_calls: int = 0


LLM = "llm"
TOOL = "tool"


class AgentSpan(NamedTuple):
    """One step inside a trace's own turns: an LLM call (an assistant message) or a tool call made in one.

    A tool call's parent is the LLM call that made it; an LLM call has none. Delegations are not spans: they
    are traces of their own. The LLM spans of a trace add up to the trace's own tokens and cost. A tuple, not
    a dataclass: a load makes hundreds of thousands of them, and writes them to the store as they are.
    """

    span_id: str
    trace_id: str
    root_session_id: str
    parent_span_id: str | None
    kind: str  # llm | tool
    name: str  # the model id, or the tool name
    title: str | None
    status: str
    started_at: int
    ended_at: int | None
    duration_ms: int | None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_reasoning: int = 0
    tokens_cache_read: int = 0
    tokens_cache_write: int = 0
    cost_usd: float | None = 0.0  # None: an LLM call whose model has no price (unknown, not free)
    input: str | None = None
    output: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    """An OpenCode session as the store keeps it: enough to filter, label and reopen it."""

    session_id: str
    root_session_id: str
    parent_session_id: str | None
    title: str
    directory: str
    project_id: str | None
    agent: str | None
    version: str | None
    created_at: int
    updated_at: int
    store: str
    source: str = "opencode"


@dataclass
class LoadReport:
    """What a load read, wrote and skipped, for the summary line and the status bar."""

    source: str = ""
    generation: str = ""
    kind: str = ""  # the agent (SOURCES) whose history was read

    sessions_seen: int = 0
    sessions_changed: int = 0
    sessions_deleted: int = 0
    traces_written: int = 0
    unchanged: bool = False
    full: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: list[str] = field(default_factory=list)
    retention_removed: int = 0  # traces dropped afterwards by the retention setting
    seconds: float = 0.0
    unpriced: dict[str, int] = field(default_factory=dict)  # model -> LLM calls read with no price for it

    def unpriced_call(self, model: str | None) -> None:
        """Count an LLM call read whose model has no price: its cost is unknown (not a damaged record)."""
        name = model or "(no model)"
        self.unpriced[name] = self.unpriced.get(name, 0) + 1

    def skip(self, what: str, where: str, why: str) -> None:
        """Count one unreadable item, keeping a few examples for the report."""
        self.skipped[what] = self.skipped.get(what, 0) + 1
        if len(self.skipped_examples) < 20:
            self.skipped_examples.append(f"{what} {where}: {why}")

    def merge(self, other: LoadReport) -> None:
        """Add what another report skipped (a part of the load read on its own)."""
        for what, n in other.skipped.items():
            self.skipped[what] = self.skipped.get(what, 0) + n
        for model, n in other.unpriced.items():
            self.unpriced[model] = self.unpriced.get(model, 0) + n
        self.skipped_examples.extend(other.skipped_examples[:max(0, 20 - len(self.skipped_examples))])

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())
