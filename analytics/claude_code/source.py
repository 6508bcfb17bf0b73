"""The Claude Code history as a load source: the interface `analytics.loader.load` uses for OpenCode's `Source`.

One reader, so none of the OpenCode source's per-session bookkeeping (which store wins each session) is paid on
every reload of a long history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from analytics.claude_code.reader import ClaudeReader
from analytics.models import AgentSpan, LoadReport
from analytics.opencode.readers import StreamedSteps
from analytics.opencode.records import RawMessage, RawSession, SessionStamp


class ClaudeSource:
    """A Claude Code `projects/` folder, read by one `ClaudeReader` kept between loads."""

    def __init__(self, reader: ClaudeReader, location: Path) -> None:
        self.reader = reader
        self.readers = [reader]  # as OpenCode's Source: what a watcher looks at is each reader's path
        self.location = location

    @property
    def generation(self) -> str:
        return self.reader.generation

    def stamp(self) -> str:
        return self.reader.stamp()

    @contextmanager
    def reading(self) -> Iterator[ClaudeSource]:
        with self.reader:
            yield self

    def index(self, report: LoadReport) -> dict[str, SessionStamp]:
        return self.reader.index(report)

    def read(self, ids: Collection[str] | None, report: LoadReport) -> list[RawSession]:
        return self.reader.read(ids, report)

    def tool_spans(self, spans: list[AgentSpan]) -> list[StreamedSteps]:
        """None: the reader hands every tool call over as `RawMessage.tool_calls` (see `Source.tool_spans`)."""
        return []

    def fill_texts(self, messages_by_session: dict[str, list[RawMessage]], report: LoadReport) -> None:
        for messages in messages_by_session.values():
            self.reader.fill_texts(messages, report)
