"""Domain errors, each carrying one plain sentence a user can act on."""


class AgentTracesError(Exception):
    """Base class: the message is meant to be shown as it is."""


class SourceError(AgentTracesError):
    """The OpenCode store is missing, locked, damaged or in a layout this version does not know."""


class StoreError(AgentTracesError):
    """The agent-traces DuckDB file is locked, damaged or newer than this program."""


class StoreBusy(StoreError):
    """Another process (or another part of this one) holds the trace store; `who` says which, if known."""

    def __init__(self, message: str, path: object = None, who: str = "") -> None:
        super().__init__(message)
        self.path, self.who = path, who
