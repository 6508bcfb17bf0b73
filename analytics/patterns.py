"""A small query language over delegation chains.

    tester -> refactoring            tester delegated to refactoring
    coordinator -> * -> tester       with exactly one agent in between
    build -> ** -> reviewer          with any number of agents in between (none included)
    tester[error]                    a tester call that failed
    *[>60s]                          any call longer than a minute
    coder[completed, >2m, <10m] -> reviewer

A step is an agent name (letters, digits, `_ - . /`), `*` (any one agent) or `**` (any run of agents, possibly
none), with optional conditions in brackets: a status (completed, error, running) or a duration comparison
(`>`, `>=`, `<`, `<=` followed by a number and ms, s, m or h). `A -> B` means A delegated to B directly. A
chain may start at any depth. Names are matched without regard to case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from analytics.errors import AgentTracesError

STATUSES = ("completed", "error", "running")
UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_TOKEN = re.compile(r"\s*(?:(->)|(\*\*)|(\*)|(\[)|(\])|(,)|([A-Za-z0-9_./-]+)|(>=|<=|>|<)|(\S))")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")


class PatternError(AgentTracesError):
    """An invalid pattern; the message points at the column of the problem."""

    def __init__(self, pattern: str, column: int, problem: str) -> None:
        self.pattern, self.column, self.problem = pattern, column, problem
        super().__init__(f"{problem} at column {column + 1}:\n  {pattern}\n  {' ' * column}^")


@dataclass(frozen=True)
class Step:
    agent: str | None  # None: any one agent
    any_run: bool = False  # `**`: zero or more agents
    status: str | None = None
    min_ms: float | None = None  # strictly greater than, or at least when min_inclusive
    max_ms: float | None = None
    min_inclusive: bool = False
    max_inclusive: bool = False

    def accepts(self, agent: str, status: str, duration_ms: int | None) -> bool:
        if self.agent is not None and agent.lower() != self.agent.lower():
            return False
        if self.status is not None and status != self.status:
            return False
        if self.min_ms is not None and not _past(duration_ms, self.min_ms, self.min_inclusive, 1):
            return False
        if self.max_ms is not None and not _past(duration_ms, self.max_ms, self.max_inclusive, -1):
            return False
        return True


def _past(value: int | None, limit: float, inclusive: bool, direction: int) -> bool:
    """value beyond limit (above when direction is 1, below when -1), or equal to it when inclusive."""
    if value is None:
        return False
    return (value - limit) * direction > 0 or (inclusive and value == limit)


@dataclass(frozen=True)
class Pattern:
    text: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Pattern:
    """Parse a pattern, or raise PatternError pointing at the problem."""
    tokens = [(m.start(m.lastindex), m.lastindex, m.group(m.lastindex)) for m in _TOKEN.finditer(text)
              if m.lastindex]
    if not tokens:
        raise PatternError(text, 0, "empty pattern: write agent names joined by ->")
    steps: list[Step] = []
    i = 0

    def at(k: int) -> int:
        return tokens[k][0] if k < len(tokens) else len(text)

    while True:
        if i >= len(tokens):
            raise PatternError(text, at(i), "expected an agent name, * or **")
        pos, kind, value = tokens[i]
        if kind == 7:
            step = Step(agent=value)
        elif kind == 3:
            step = Step(agent=None)
        elif kind == 2:
            step = Step(agent=None, any_run=True)
        else:
            raise PatternError(text, pos, f"expected an agent name, * or ** but found {value!r}")
        i += 1
        if i < len(tokens) and tokens[i][1] == 4:  # [conditions]
            if step.any_run:
                raise PatternError(text, tokens[i][0], "** cannot take conditions")
            step, i = _conditions(text, tokens, i + 1, step)
        steps.append(step)
        if i >= len(tokens):
            break
        pos, kind, value = tokens[i]
        if kind != 1:
            raise PatternError(text, pos, f"expected -> between steps but found {value!r}")
        i += 1
    if all(s.any_run for s in steps):
        raise PatternError(text, 0, "a pattern needs at least one agent name or *")
    return Pattern(text.strip(), tuple(steps))


def _conditions(text: str, tokens: list, i: int, step: Step) -> tuple[Step, int]:
    values = dict(step.__dict__)
    while True:
        if i >= len(tokens):
            raise PatternError(text, len(text), "missing ] to close the conditions")
        pos, kind, value = tokens[i]
        if kind == 7 and value.lower() in STATUSES:
            values["status"] = value.lower()
            i += 1
        elif kind == 8:  # a comparison, then a duration
            rest = text[pos + len(value):]
            m = _DURATION.match(rest.lstrip())
            if not m:
                raise PatternError(text, pos + len(value), "expected a duration such as 90s, 2m or 500ms")
            ms = float(m.group(1)) * UNITS_MS[m.group(2) or "s"]
            if value.startswith(">"):
                values["min_ms"], values["min_inclusive"] = ms, value == ">="
            else:
                values["max_ms"], values["max_inclusive"] = ms, value == "<="
            end = pos + len(value) + (len(rest) - len(rest.lstrip())) + m.end()
            i += 1
            while i < len(tokens) and tokens[i][0] < end:
                i += 1
        elif kind == 7:
            raise PatternError(text, pos, f"unknown condition {value!r}: use completed, error, running or a "
                                          "duration such as >60s")
        else:
            raise PatternError(text, pos, f"expected a condition but found {value!r}")
        if i >= len(tokens):
            raise PatternError(text, len(text), "missing ] to close the conditions")
        pos, kind, value = tokens[i]
        if kind == 5:
            return Step(**values), i + 1
        if kind != 6:
            raise PatternError(text, pos, f"expected , or ] but found {value!r}")
        i += 1


@dataclass(frozen=True)
class Node:
    """What matching needs of a trace."""

    trace_id: str
    agent: str
    status: str
    duration_ms: int | None
    children: tuple[str, ...]


def match_tree(pattern: Pattern, nodes: dict[str, Node], roots: list[str]) -> Iterator[tuple[str, ...]]:
    """Every chain of trace ids in these trees that the pattern matches (each chain once, outermost first)."""
    steps = pattern.steps
    seen: set[tuple[str, ...]] = set()

    def walk(start: str) -> Iterator[tuple[str, ...]]:
        """Every chain matching the steps from node `start` on, depth first (a stack of (node, step, path so
        far) rather than recursion: a chain may be deeper than recursion goes)."""
        todo: list[tuple[str, int, tuple[str, ...]]] = [(start, 0, ())]
        while todo:
            tid, k, path = todo.pop()
            if k == len(steps):
                yield path
                continue
            step, node = steps[k], nodes[tid]
            if step.any_run:
                more = [(tid, k + 1, path)]  # zero agents
                if k + 1 < len(steps):
                    more += [(child, k, path + (tid,)) for child in node.children]  # this node is one of the run
                todo.extend(reversed(more))
                continue
            if not step.accepts(node.agent, node.status, node.duration_ms):
                continue
            if k + 1 == len(steps):
                yield path + (tid,)
                continue
            todo.extend((child, k + 1, path + (tid,)) for child in reversed(node.children))

    stack = list(roots)
    while stack:
        tid = stack.pop()
        for chain in walk(tid):
            if chain and chain not in seen:
                seen.add(chain)
                yield chain
        stack.extend(nodes[tid].children)
