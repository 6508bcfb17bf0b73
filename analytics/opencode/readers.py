"""The reader interface every storage generation implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analytics.models import AgentSpan, LoadReport
from analytics.opencode.records import RawMessage, RawSession, RawTool, SessionStamp


@dataclass
class WrittenSteps:
    """What a reader's streamed insert (`StreamedSteps.insert`) tells the load: the ids of the steps its SQL
    wrote, the tool names they give each trace, and the tool calls it read the careful way instead, each with
    where it goes (its trace, root session, LLM call and that call's time), for Python to make into steps; and
    what that careful reading skipped."""

    span_ids: list[str]
    tools: dict[str, set[str]]  # trace id -> tool names
    calls: list[tuple[RawTool, str, str, str, int]]  # (call, trace id, root session id, message id, message time)
    report: LoadReport


class StreamedSteps(ABC):
    """Steps a reader keeps out of Python: its SQL writes them into the store, in the store's transaction."""

    @abstractmethod
    def insert(self, cur: duckdb.DuckDBPyConnection, table: str, taken: set[str]) -> WrittenSteps:
        """Insert the steps into `table` (with `agent_spans`' columns) through `cur`; a step whose id is in
        `taken` (a step made in Python) or repeated is left to the careful reading. Each call writes them anew
        (a write that did not fit is done again)."""


class Reader(ABC):
    """One OpenCode store (a database file or a JSON storage directory) of one generation.

    Use inside `with reader:`; for SQLite that is one read transaction, so `index` and `read` agree.
    """

    generation: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def label(self) -> str:
        return f"{self.generation}:{self.path}"

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @abstractmethod
    def stamp(self) -> str:
        """A fingerprint of the whole store from file metadata only: same stamp, nothing changed."""

    @abstractmethod
    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        """Every session id with its parent and a cheap per-session fingerprint."""

    @abstractmethod
    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        """The sessions with these ids (all when None), messages in order, calls in full."""

    @abstractmethod
    def fill_texts(self, messages: list[RawMessage], report: LoadReport) -> None:
        """Set `texts` (the non-synthetic text parts, in order) on these messages."""

    def tool_spans(self, spans: list[AgentSpan]) -> StreamedSteps | None:
        """The tool calls of these LLM calls (the steps of a batch `read` gave) that this reader did not hand
        over as `RawMessage.tool_calls` but streams into the store; None when it hands over all of them."""
        return None


def file_stamp(*paths: Path) -> str:
    """Size and mtime of each file that exists, as one string."""
    out = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            out.append(f"{p.name}:-")
            continue
        out.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(out)
