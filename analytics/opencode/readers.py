"""The reader interface every storage generation implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from analytics.models import AgentSpan, LoadReport
from analytics.opencode.records import RawMessage, RawSession, SessionStamp


@dataclass(frozen=True)
class StreamedSteps:
    """Steps a reader keeps out of Python until they are stored: their span ids; `open()`, which streams the rows
    they are made from (each call anew: a write that did not fit is done again) as an object DuckDB scans once
    (`__arrow_c_stream__`); and `select`, the DuckDB query (with `params`) that makes `agent_spans` rows of them,
    in its column order, from the stream registered under the name it is given (`query(name)`)."""

    span_ids: list[str]
    open: Callable[[], AbstractContextManager[object]]
    select: str
    params: list[object]

    def query(self, rows: str) -> str:
        return self.select.replace("{rows}", rows)


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
