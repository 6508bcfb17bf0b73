"""Helpers for the Codex tests: the fixture histories, loading them both ways, and a plain reading of the raw
rollout lines to check the reader against (written apart from the reader, as simply as the files allow)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from analytics.codex import open_codex_source
from analytics.db import TraceStore
from analytics.loader import build_traces, load
from analytics.models import AgentSpan, AgentTrace, LoadReport
from analytics.queries import trace_queries as q
from tests.conftest import FIXTURES

CODEX_171 = FIXTURES / "codex-0.171.0"
CODEX_140 = FIXTURES / "codex-0.140.0"
CODEX_120 = FIXTURES / "codex-0.120.0"
ALL_CODEX = {"0.171.0": CODEX_171, "0.140.0": CODEX_140, "0.120.0": CODEX_120}


def built(source: Path) -> tuple[list[AgentTrace], list[AgentSpan], LoadReport]:
    """Every trace and step of a history, through the loader's build_traces."""
    src = open_codex_source(source)
    report = LoadReport()
    with src.reading():
        index = src.index(report)
        sessions = src.read(None, report)
        traces, _infos, spans = build_traces(sessions, lambda need: src.fill_texts(need, report),
                                             {sid: st.parent_id for sid, st in index.items()}, report)
    return traces, spans, report


def stored(source: Path, db: Path) -> tuple[list[AgentTrace], list[AgentSpan], LoadReport]:
    """Every trace and step of a history, loaded into a real DuckDB store and read back."""
    with TraceStore(db) as store:
        report = load(store, open_codex_source(source))
        return read_store(store) + (report,)


def read_store(store: TraceStore) -> tuple[list[AgentTrace], list[AgentSpan]]:
    roots = [s.session_id for s in q.get_sessions_with_traces(store)]
    traces, spans = q.get_full_trees(store, roots)
    return traces, [s for ss in spans.values() for s in ss]


def copy_history(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def case_root(traces: list[AgentTrace], name: str) -> AgentTrace:
    """The root session trace of a case: its prompt starts with the case name."""
    return next(t for t in traces if t.kind == "session" and t.prompt_input.startswith(name + "."))


def tree(traces: list[AgentTrace], root: AgentTrace) -> list[AgentTrace]:
    """The delegations under a root, in start order."""
    return sorted((t for t in traces if t.kind == "delegation" and t.root_session_id == root.trace_id),
                  key=lambda t: (t.started_at, t.trace_id))


def steps(spans: list[AgentSpan], trace_id: str) -> list[AgentSpan]:
    return sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: (s.started_at, s.kind != "llm"))


# -- the raw lines ---------------------------------------------------------------------------------------------

def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000 + 0.5)


@dataclass
class RawThread:
    """One rollout as its lines say, with the records of a forked child's copied history left out."""

    path: Path
    meta: dict
    created: int
    own: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)  # per model response: usage figures, response id, end time
    tools: dict[str, dict] = field(default_factory=dict)  # call id -> name, arguments, output, times

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def prompt(self) -> str | None:
        """The first prompt of the user's: `user_message` up to 0.140, `item_completed` UserMessage after."""
        for d in self.own:
            p = d["payload"]
            if d["type"] == "event_msg" and p.get("type") == "user_message":
                return p["message"]
            if d["type"] == "event_msg" and p.get("type") == "item_completed" and p["item"]["type"] == "UserMessage":
                return p["item"]["content"][0]["text"]
        return None

    @property
    def parent(self) -> str | None:
        """The spawning thread: `parent_thread_id`, or (0.120) only the spawn source's."""
        source = self.meta.get("source")
        spawn = source.get("subagent", {}).get("thread_spawn", {}) if isinstance(source, dict) else {}
        return self.meta.get("parent_thread_id") or spawn.get("parent_thread_id")


def raw_threads(source: Path) -> dict[str, RawThread]:
    """Every thread of a fixture history, read plainly: own records are those from
    `subagent_history_start_ordinal` on (0.150+), or, before, those outside turns whose id the parent has too."""
    threads: dict[str, RawThread] = {}
    turn_ids: dict[str, set[str]] = {}
    lines_of: dict[str, list[dict]] = {}
    for path in sorted(source.rglob("rollout-*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        meta = lines[0]["payload"]
        t = RawThread(path, meta, ms(lines[0]["timestamp"]))
        threads[t.id] = t
        lines_of[t.id] = lines
        turn_ids[t.id] = {d["payload"]["turn_id"] for d in lines
                          if d["type"] == "event_msg" and d["payload"].get("type") == "task_started"}
    for t in threads.values():
        lines = lines_of[t.id]
        start = t.meta.get("subagent_history_start_ordinal")
        copied_turns = turn_ids.get(t.parent or "", set()) if t.meta.get("forked_from_id") else set()
        turn = None
        prev_total = None
        usage_records = any(d["type"] == "token_usage_record" for d in lines)
        pending_end = None
        for i, d in enumerate(lines[1:], 1):
            p = d["payload"]
            if d["type"] == "event_msg" and p.get("type") == "task_started":
                turn = p["turn_id"]
            inherited = (start is not None and d.get("ordinal", i) < start) or turn in copied_turns
            if d["type"] == "event_msg" and p.get("type") == "token_count" and p.get("info"):
                total = p["info"]["total_token_usage"]
                moved = total != prev_total
                prev_total = total
                if moved and not usage_records and not inherited:
                    t.calls.append({"usage": p["info"]["last_token_usage"], "id": None,
                                    "end": pending_end or ms(d["timestamp"])})
                    pending_end = None
            if inherited:
                continue
            t.own.append(d)
            if d["type"] == "token_usage_record":
                t.calls.append({"usage": p["usage"], "id": p["response_id"], "end": ms(d["timestamp"])})
            elif d["type"] == "response_item" and p.get("type") == "function_call":
                t.tools[p["call_id"]] = {"name": p["name"], "arguments": p["arguments"], "made": ms(d["timestamp"]),
                                         "output": None, "end": None}
                pending_end = ms(d["timestamp"])
            elif d["type"] == "response_item" and p.get("type") == "message" and p.get("role") == "assistant":
                pending_end = ms(d["timestamp"])
            elif d["type"] == "response_item" and p.get("type") == "function_call_output":
                t.tools[p["call_id"]].update(output=p["output"], end=ms(d["timestamp"]))
    return threads


def expected_usage(u: dict) -> tuple[int, int, int, int, int]:
    """(input, output, reasoning, cache read, cache write) as the store counts a Codex usage object."""
    cached = u.get("cached_input_tokens", 0)
    write = u.get("cache_write_input_tokens", 0)
    reasoning = u.get("reasoning_output_tokens", 0)
    return u["input_tokens"] - cached - write, u["output_tokens"] - reasoning, reasoning, cached, write


def trace_usage(t: AgentTrace) -> tuple[int, int, int, int, int]:
    return t.tokens_in, t.tokens_out, t.tokens_reasoning, t.tokens_cache_read, t.tokens_cache_write


def span_usage(s: AgentSpan) -> tuple[int, int, int, int, int]:
    return s.tokens_in, s.tokens_out, s.tokens_reasoning, s.tokens_cache_read, s.tokens_cache_write
