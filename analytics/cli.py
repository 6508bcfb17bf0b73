"""The `agent-traces` command line: load the agents' histories (OpenCode, Claude Code, Codex) and look at the
delegations they hold.

Every command that needs no Qt lives here, so this module stays plain Python like the rest of `analytics`.
The installed `agent-traces` entry is `dashboard.cli`, which extends `build_parser` with the `dashboard`
command (also the default) and runs through `main`; `python -m analytics.cli` gives the plain commands only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from analytics import format as fmt
from analytics.db import TraceStore
from analytics.errors import AgentTracesError
from analytics.loader import LoadProgress
from analytics.models import SOURCES, LoadReport
from analytics.queries import trace_queries as q
from analytics.settings import (
    CONTENT_MODES,
    DEFAULT_CONTENT_MODE,
    DEFAULT_CUT_KB,
    MAX_CUT_KB,
    MAX_REFRESH_SECONDS,
    MAX_RETENTION_DAYS,
    Settings,
    check_retention_days,
)
from analytics.sources import Sources, sources_for
from analytics.terminal import TERMINAL_NAMES, TerminalError, launch, plan, shell_command

if TYPE_CHECKING:
    from analytics.queries.time_split import AgentTime, TimeSplit, ToolStats

# Adds commands to the parser: (parser, its subparsers, the options every command shares).
Extension = Callable[[argparse.ArgumentParser, Any, argparse.ArgumentParser], None]
DESCRIPTION = ("The agent-traces command line: load the histories of OpenCode, Claude Code and Codex and look at the "
               "delegations they hold.")


def _say(text: object = "", block: bool = False, file: TextIO | None = None) -> None:
    """Print human output; OpenCode's text in it is data, never terminal control, so every line goes through
    `fmt.printable` (one-line fields escape newlines too; `block` keeps them, for prompts). --json is exact."""
    print(fmt.printable(text, block), file=file or sys.stdout)


def _print_json(value: object) -> None:
    def default(o: object) -> object:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)  # type: ignore[arg-type]
        if isinstance(o, tuple):
            return list(o)
        return str(o)

    sys.stdout.write(fmt.json_safe(json.dumps(value, default=default, ensure_ascii=False, indent=1)) + "\n")


STORE_WAIT_SECONDS = 5.0  # the dashboard holds the store only while it reads or writes


def _open(args: argparse.Namespace, read_only: bool = True) -> TraceStore:
    return TraceStore(args.db, read_only=read_only, wait_seconds=STORE_WAIT_SECONDS)


def report_lines(report: LoadReport) -> list[str]:
    """What a load of one history did: read, written, skipped (the first ones with their reasons), and the LLM
    calls whose cost is unknown."""
    who = f"{SOURCES[report.kind]} " if report.kind in SOURCES else ""
    if report.unchanged:
        lines = [f"Nothing changed in {who}{report.source} since the last load ({report.sessions_seen} sessions)."]
    else:
        lines = [
            f"Read {who}{report.source} ({report.generation}): {report.sessions_seen} sessions, "
            f"{report.sessions_changed} new or changed, {report.sessions_deleted} deleted; "
            f"{report.traces_written} traces written in {report.seconds:.2f} s."
        ]
    if report.skipped_total:
        kinds = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(report.skipped.items()))
        lines.append(f"Skipped {report.skipped_total} unreadable items ({kinds}); the rest loaded. First ones:")
        lines.extend(f"  {e}" for e in report.skipped_examples[:5])
    if report.unpriced:
        calls = sum(report.unpriced.values())
        models = ", ".join(sorted(report.unpriced))
        lines.append(f"Cost unknown for {calls} LLM call{'s' * (calls != 1)} read: no price in genai-prices for "
                     f"{models}.")
    return lines


def open_sources(args: argparse.Namespace, settings: Settings) -> Sources:
    """The histories a command reads: --source (one or more), else every one found but those the settings turn
    off; one that is there and cannot be read is said on stderr, and the others are read."""
    sources = sources_for(getattr(args, "source", None), settings.sources_off)
    for problem in sources.problems:
        _say(f"agent-traces: {problem}", file=sys.stderr)
    if not sources:
        raise AgentTracesError("No history could be read; see above.")
    return sources


def load_settings() -> Settings:
    """The user's settings; what the file held that could not be used is said once, on stderr."""
    settings = Settings.load()
    for problem in settings.problems:
        print(f"agent-traces: {problem}.", file=sys.stderr)
    return settings


def cmd_load(args: argparse.Namespace) -> int:
    settings = load_settings()
    sources = open_sources(args, settings)

    terminal = not args.json and sys.stderr.isatty()

    def progress(step: LoadProgress) -> None:
        """On a terminal, one line written over in place; elsewhere (a log, a pipe) nothing: the summary says
        it all at the end."""
        if terminal:
            sys.stderr.write("\r" + fmt.printable(f"… {step}") + "\x1b[K")
            sys.stderr.flush()

    try:
        with _open(args, read_only=False) as store:
            reports = sources.load(store, full=args.full, progress=progress if terminal else None,
                                   retention_days=settings.retention_days)
            held, note = store.cleaned_count(), store.held_back_note()
    finally:
        if terminal:  # the progress line goes, whatever happened
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
    removed = sum(r.retention_removed for r in reports)
    if args.json:
        _print_json({**_totals(reports), "sources": [dataclasses.asdict(r) for r in reports],
                     "problems": sources.problems, "cleaned_traces": removed, "held_back_sessions": held})
    else:
        for report in reports:
            for line in report_lines(report):
                _say(line)
        if removed:
            print(f"Removed {removed} traces older than {settings.retention_days} days (retention setting).")
        if args.full and note:
            print(note)
    return 0


def _totals(reports: list[LoadReport]) -> dict[str, object]:
    """The figures of several loads added up (what `load --json` gives at its top level)."""
    skipped: dict[str, int] = {}
    for r in reports:
        for what, n in r.skipped.items():
            skipped[what] = skipped.get(what, 0) + n
    return {"sessions_seen": sum(r.sessions_seen for r in reports),
            "sessions_changed": sum(r.sessions_changed for r in reports),
            "sessions_deleted": sum(r.sessions_deleted for r in reports),
            "traces_written": sum(r.traces_written for r in reports), "skipped": skipped,
            "unchanged": all(r.unchanged for r in reports), "seconds": sum(r.seconds for r in reports)}


def cmd_sessions(args: argparse.Namespace) -> int:
    with _open(args) as store:
        rows = q.get_sessions_with_traces(store, _since_ms(args.days), with_delegations=args.with_delegations,
                                          source=args.source_kind)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("No sessions yet; run `agent-traces load`." if args.source_kind is None else
              f"No {SOURCES[args.source_kind]} sessions in the trace store.")
        return 0
    print(f"{'SESSION':36} {'AGENT':20} {'STARTED':19} {'DELEG':>5} {'ERR':>3} {'TOKENS':>8} {'COST':>9}  TITLE")
    for r in rows:
        _say(f"{r.session_id:36} {fmt.source_label(r.source, r.version)[:20]:20} {fmt.when(r.created_at):19} "
             f"{r.delegation_count:>5} {r.error_count:>3} {fmt.tokens(r.tokens_in + r.tokens_out):>8} "
             f"{fmt.cost(r.cost_usd, r.unpriced_calls, short=True):>9}  {r.title}")
    return 0


def _session(store: TraceStore, prefix: str, source: str | None = None) -> str:
    """The session an id or unique prefix names (of one agent's history with `source`)."""
    sid = q.resolve_session_id(store, prefix, source)
    if sid is None:
        q.check_unambiguous(store, "session", prefix)
        among = f" among the {SOURCES[source]} sessions" if source else ""
        raise AgentTracesError(f"No session matches {prefix!r}{among}; `agent-traces sessions` lists them.")
    return sid


def _trace(store: TraceStore, prefix: str) -> str:
    tid = q.resolve_trace_id(store, prefix)
    if tid is None:
        q.check_unambiguous(store, "trace", prefix)
        raise AgentTracesError(f"No trace matches {prefix!r}; `agent-traces tree SESSION` shows trace ids.")
    return tid


def cmd_tree(args: argparse.Namespace) -> int:
    with _open(args) as store:
        sid = _session(store, args.session, args.source_kind)
        roots = q.get_trace_tree(store, sid)
        version = store.cursor().execute("SELECT version FROM sessions WHERE session_id = ?",
                                         [roots[0].trace.root_session_id]).fetchone() if roots else None
    if args.json:
        _print_json(roots)
        return 0

    def show(root: q.TraceNode) -> None:
        """The tree's lines, parents first (a stack, not recursion: a chain may be deeper than it goes)."""
        stack = [(root, "", True, True)]
        while stack:
            node, prefix, last, top = stack.pop()
            t = node.trace
            branch = "" if top else ("└─ " if last else "├─ ")
            label = f"{t.subagent_type}" + (f" — {t.description}" if t.description and t.kind != "session" else "")
            agent = f"  ({fmt.source_label(t.source, version[0] if version else None)})" if top else ""
            _say(f"{prefix}{branch}{fmt.STATUS_MARK.get(t.status, '?')} {label}  [{fmt.duration(t.duration_ms)}, "
                 f"{fmt.tokens(t.tokens_in)} in / {fmt.tokens(t.tokens_out)} out, "
                 f"{fmt.cost(t.cost_usd, t.unpriced_calls)}"
                 f"{', ' + t.status if t.status != 'completed' else ''}]  {t.trace_id}{agent}")
            child_prefix = prefix + ("" if top else ("   " if last else "│  "))
            stack.extend((c, child_prefix, i == len(node.children) - 1, False)
                         for i, c in reversed(list(enumerate(node.children))))

    for r in roots:
        show(r)
        print(f"  total with delegations: {fmt.tokens(r.total_tokens_in)} in / {fmt.tokens(r.total_tokens_out)} "
              f"out, {fmt.cost(r.total_cost_usd, r.total_unpriced_calls)}, {r.descendants} delegations")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    with _open(args) as store:
        roots = q.get_trace_tree(store, _session(store, args.session))
    nodes = [n for r in roots for n in r.walk()]
    if args.json:
        _print_json([n.trace for n in nodes])
        return 0
    if not nodes:
        return 0
    t0 = min(n.trace.started_at for n in nodes)
    now = int(time.time() * 1000)
    end = max((n.trace.ended_at or now) for n in nodes)
    span = max(end - t0, 1)
    width = 40
    for n in nodes:
        t = n.trace
        a = int((t.started_at - t0) / span * width)
        b = max(a + 1, int(((t.ended_at or now) - t0) / span * width))
        bar = " " * a + ("█" if t.status != "running" else "▒") * (b - a)
        label = ("  " * t.depth + t.subagent_type)[:24]
        _say(f"{label:24} +{fmt.duration(t.started_at - t0):>9} {fmt.duration(t.duration_ms):>9} |{bar:{width}}|")
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    """A trace's own LLM calls and, under each, the tool calls it made, on the trace's time line."""
    with _open(args) as store:
        tid = _trace(store, args.trace)
        spans = q.get_spans(store, tid)
        trace = q.get_trace_details(store, tid)
    if args.json:
        _print_json([s._asdict() for s in spans])
        return 0
    assert trace is not None
    t0 = trace.trace.started_at
    llm = sum(1 for s in spans if s.kind == "llm")
    _say(f"{trace.trace.subagent_type}: {fmt.steps_text(llm, len(spans) - llm)}")
    for s in spans:
        mark = fmt.STATUS_MARK.get(s.status, "?")
        if s.kind == "llm":
            what = (f"{s.name:24.24} {fmt.tokens(s.tokens_in):>7} in {fmt.tokens(s.tokens_out):>7} out"
                    f" {fmt.step_cost(s.cost_usd):>8}")
            _say(f"+{fmt.duration(s.started_at - t0):>9} {fmt.duration(s.duration_ms):>9} {mark} llm  {what}")
        else:
            title = fmt.step_label(s.kind, s.name, s.title, s.input)[1][:60]
            _say(f"+{fmt.duration(s.started_at - t0):>9} {fmt.duration(s.duration_ms):>9} {mark}   "
                 f"{s.name:12.12} {title}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        d = q.get_trace_details(store, _trace(store, args.trace))
    assert d is not None
    if args.json:
        _print_json(d)
        return 0
    t = d.trace
    rows = [
        ("Trace", t.trace_id), ("Source", fmt.source_label(t.source, d.version)), ("Agent", t.subagent_type),
        ("Chain", " › ".join(d.chain)),
        ("Description", t.description or "—"), ("Status", t.status), ("Started", fmt.when(t.started_at)),
        ("Duration", fmt.duration(t.duration_ms)),
        ("Time", _split_line(d.time)),
        ("Tokens", f"{t.tokens_in} in / {t.tokens_out} out (with delegations: {d.total_tokens_in} / "
                   f"{d.total_tokens_out}); reasoning {t.tokens_reasoning}, cache {t.tokens_cache_read} read / "
                   f"{t.tokens_cache_write} write"),
        ("Cost", f"{fmt.cost(t.cost_usd, t.unpriced_calls)} (with delegations: "
                 f"{fmt.cost(d.total_cost_usd, d.total_unpriced_calls)})"),
        ("Model", f"{t.provider or '?'}/{t.model or '?'}"), ("Tools", ", ".join(t.tools_used) or "—"),
        ("Session", f"{t.session_id} → {t.child_session_id or '—'}"), ("Directory", d.directory),
    ]
    for k, v in rows:
        _say(f"{k:12} {v}")
    print("\n── Prompt input " + "─" * 40)
    _say(t.prompt_input, block=True)
    print("\n── Prompt output " + "─" * 39)
    _say(t.prompt_output if t.prompt_output is not None else "(none yet: still running)", block=True)
    return 0


def _split_line(split: TimeSplit | None) -> str:
    """Where a trace's time went, in one line ("so far" for a running trace, or where it was interrupted)."""
    from analytics.queries.time_split import split_note, split_text

    if split is None:
        return "—"
    return split_text(split) + split_note(split)


def cmd_search(args: argparse.Namespace) -> int:
    with _open(args) as store:
        rows = q.search_traces(store, args.text, limit=args.limit, source=args.source_kind)
        total = len(rows) if len(rows) < args.limit else q.count_matching(store, args.text, args.source_kind)
    if args.json:
        _print_json({"total": total, "shown": len(rows), "traces": rows})
        return 0
    for t in rows:
        preview = " ".join(t.input_preview.split())[:70]
        _say(f"{t.trace_id:34} {fmt.when(t.started_at)} {t.subagent_type:12} {t.status:9} {preview}")
    if total > len(rows):
        print(f"{total} traces match, showing {len(rows)} of {total} (the newest); --limit N shows more.")
    else:
        print(f"{total} traces match.")
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    with _open(args, read_only=False) as store:
        if args.forget:
            forgotten = store.forget_cleaned()
        else:
            removed = store.cleanup_old_traces(args.retention_days)
    if args.forget:
        if args.json:
            _print_json({"forgotten_sessions": forgotten})
        elif not forgotten:
            print("Retention holds no session back; nothing to forget.")
        else:
            days = Settings.load().retention_days
            again = (f" (retention_days is {days} in the settings: those older than {days} days go again after "
                     "that load)") if days is not None else ""
            print(f"Forgot {forgotten} cleaned sessions: the next `agent-traces load` imports them again{again}.")
        return 0
    if args.json:
        _print_json({"removed_traces": removed})
    else:
        print(f"Removed {removed} traces from sessions older than {args.retention_days} days; they will not be "
              "imported again (`agent-traces cleanup --forget` undoes that).")
    return 0


def _retention_days(text: str) -> int:
    """--retention-days: a whole number of days, 1 or more."""
    try:
        return check_retention_days(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of days from 1 to {MAX_RETENTION_DAYS} (0 would remove everything and "
            "hold every session back)") from exc


MAX_DAYS = 36_500.0  # a hundred years, as for the retention


def _days(text: str) -> float:
    """--days / --since: a number of days above 0 (a fraction is fine), at most a hundred years."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_DAYS:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days above 0 (and at most {MAX_DAYS:,.0f})")
    return value


def _count(text: str) -> int:
    """--limit: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 1 or more")
    return value


MIN_INTERVAL_SECONDS = 0.1  # an unchanged store is looked at in a few ms: a tenth of a second is no busy loop


def _interval(text: str) -> float:
    """--interval: seconds between two looks (0.1 to refresh_seconds' 3600)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_INTERVAL_SECONDS <= value <= MAX_REFRESH_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from {MIN_INTERVAL_SECONDS:g} to "
                                         f"{MAX_REFRESH_SECONDS:g}")
    return value


def _cut_kb(text: str) -> int:
    """--cut: whole KB, 1 to MAX_CUT_KB."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CUT_KB:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of KB from 1 to {MAX_CUT_KB}")
    return value


def _timeout(text: str) -> float:
    """--timeout: seconds, above 0 and at most a day."""
    from analytics.otlp_http import check_timeout

    try:
        return check_timeout(float(text), "--timeout")
    except (ValueError, AgentTracesError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 (and at most a day)") \
            from None


def cmd_open(args: argparse.Namespace) -> int:
    with _open(args) as store:
        target = q.session_to_open(store, _trace(store, args.trace))
    if target is None:
        raise AgentTracesError(f"No session recorded for {args.trace!r}; run `agent-traces load` again.")
    session_id, directory, source = target.session_id, target.directory, target.source
    template = load_settings().terminal_template
    problem, launched = None, None
    try:
        launched = plan(directory, session_id, source=source, template=template, terminal=args.terminal)
        if not args.dry_run:
            launch(launched.argv, directory)
    except TerminalError as exc:
        if not args.dry_run:
            raise AgentTracesError(str(exc)) from exc
        problem = str(exc)
    argv = launched.argv if launched else []
    if args.json:
        _print_json({"session_id": session_id, "directory": directory, "source": source, "note": target.note,
                     "shell_command": shell_command(directory, session_id, source), "argv": argv,
                     "typed": launched.typed if launched else None, "problem": problem})
    else:
        if target.note:
            _say(target.note)
        _say(shell_command(directory, session_id, source))
        _say("via: " + " ".join(shlex.quote(a) for a in argv) if argv else f"(not run: {problem})")
    return 0


def _since_ms(days: float | None) -> int | None:
    """The start of the last `days` days, in epoch milliseconds (None: no bound)."""
    return None if days is None else int((time.time() - days * 86400) * 1000)


def _filter(args: argparse.Namespace) -> q.TraceFilter:
    return q.TraceFilter(start_ms=_since_ms(getattr(args, "days", None)), agent=getattr(args, "agent", None),
                         source=getattr(args, "source_kind", None))


def cmd_find(args: argparse.Namespace) -> int:
    from analytics.queries.analysis_queries import find_pattern

    with _open(args) as store:
        matches = find_pattern(store, args.pattern, _filter(args))
    if args.json:
        _print_json([{"session_id": m.session_id, "agents": m.agents,
                      "trace_ids": [t.trace_id for t in m.chain]} for m in matches])
        return 0
    sessions = {m.session_id for m in matches}
    for m in matches:
        last = m.chain[-1]
        _say(f"{m.session_id}  {fmt.when(m.chain[0].started_at)}  {m.agents}  "
              f"[{fmt.duration(last.duration_ms)}, {last.status}]  {last.trace_id}")
    _say(f"{len(matches)} chains in {len(sessions)} sessions match {args.pattern!r}.")
    return 0


def _moment(text: str) -> int:
    """A point in time for --now: milliseconds since the epoch, or an ISO date and time (local unless it says)."""
    from datetime import datetime

    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use 2026-12-01T14:02 or milliseconds since "
                                         "the epoch)") from None


def cmd_anomalies(args: argparse.Namespace) -> int:
    """Calls and sessions far above what is usual, then what went wrong inside calls (findings.py)."""
    from analytics.queries.analysis_queries import find_anomalies, forest
    from analytics.queries.findings import find_findings

    now_ms = args.now if args.now is not None else int(time.time() * 1000)
    with _open(args) as store:
        history = forest(store)
        among = forest(store, _filter(args)) if args.days is not None or args.source_kind is not None else None
        findings = find_findings(store, now_ms)
    found = find_anomalies(history, among)
    if among is not None:
        kept = {n.trace.trace_id for r in among for n in r.walk()}
        findings = [f for f in findings if f.trace.trace_id in kept]
    if args.json:
        _print_json([{"trace_id": a.trace.trace_id, "session_id": a.trace.root_session_id, "agent":
                      a.trace.subagent_type, "kind": a.trace.kind, "finding": "anomaly", "metric": a.metric,
                      "value": a.value, "median": a.median, "ratio": a.ratio, "reason": a.reason} for a in found]
                    + [{"trace_id": f.trace.trace_id, "session_id": f.trace.root_session_id, "agent":
                        f.trace.subagent_type, "kind": f.trace.kind, "finding": f.rule, "ratio": f.ratio,
                        "reason": f.reason, "span_ids": list(f.span_ids), "last_write_ms": f.last_write_ms}
                       for f in findings])
        return 0
    for x in [*found, *findings]:
        _say(f"{x.trace.trace_id:34} {fmt.when(x.trace.started_at)}  {x.reason}")
    print(f"{len(found)} anomalies, {len(findings)} findings in the steps.")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from analytics.queries import time_split as ts
    from analytics.queries.analysis_queries import agent_metrics, bottlenecks, critical_path, forest

    with _open(args) as store:
        f = _filter(args)
        if args.session:
            f = q.TraceFilter(session_id=q.get_trace_tree(
                store, _session(store, args.session, args.source_kind))[0].trace.trace_id)
        roots = forest(store, f)
        ids = [n.trace.trace_id for r in roots for n in r.walk()]
        times = ts.agent_time_splits(store, ids)
        tools = ts.tool_stats(store, ids) if args.tools else []
    metrics, slow = agent_metrics(roots), bottlenecks(roots, args.limit)
    paths = {r.trace.trace_id: critical_path(r) for r in roots} if args.session else {}
    if args.json:
        _print_json({"agents": metrics, "time": times, "bottlenecks": [{"trace": b.trace, "share": b.share}
                                                                        for b in slow],
                     "critical_paths": paths, **({"tools": tools} if args.tools else {})})
        return 0
    print(f"{'AGENT':14} {'RUNS':>5} {'ERR%':>5} {'MEDIAN':>9} {'P95':>9} {'TOKENS own/with deleg.':>24} "
          f"{'COST own/with deleg.':>22}")
    for m in metrics:
        median, p95 = fmt.duration(m.median_ms), fmt.duration(m.p95_ms)
        tokens = f"{fmt.tokens(m.tokens_in + m.tokens_out)} / {fmt.tokens(m.total_tokens_in + m.total_tokens_out)}"
        cost = (f"{fmt.cost(m.cost_usd, m.unpriced_calls, short=True)} / "
                f"{fmt.cost(m.total_cost_usd, m.total_unpriced_calls, short=True)}")
        errors = f"{m.error_rate * 100:.0f}%"
        _say(f"{m.agent:14} {m.invocations:>5} {errors:>5} {median:>9} {p95:>9} {tokens:>24} {cost:>22}")
    _print_times(times)
    if args.tools:
        _print_tools(tools)
    print("\nSlowest delegations:")
    for b in slow:
        _say(f"  {fmt.duration(b.trace.duration_ms):>9}  {b.share * 100:3.0f}% of its session  "
              f"{b.trace.subagent_type} — {b.trace.description}  {b.trace.trace_id}")
    for path in paths.values():
        _say()
        _say("Critical path: " + " › ".join(f"{t.subagent_type} ({fmt.duration(t.duration_ms)})" for t in path))
    return 0


def _print_times(times: list[AgentTime]) -> None:
    """Where each agent's time went (time_split.AgentTime): each part with its share of the agent's total."""
    print(f"\nWhere the time went (finished runs):\n{'AGENT':14} {'RUNS':>5} {'TOTAL':>9} {'LLM':>15} "
          f"{'TOOLS':>15} {'WAITING ON DELEG.':>17} {'IDLE':>15}")
    for a in times:
        parts = " ".join(f"{fmt.duration(v):>9} {v / a.total_ms * 100 if a.total_ms else 0:4.0f}%".rjust(width)
                         for v, width in ((a.llm_ms, 15), (a.tool_ms, 15), (a.waiting_ms, 17), (a.idle_ms, 15)))
        running = f"  (+{a.running} running)" if a.running else ""
        _say(f"{a.agent:14} {a.traces:>5} {fmt.duration(a.total_ms):>9} {parts}{running}")


def _print_tools(tools: list[ToolStats]) -> None:
    """Per agent, then for all agents, each tool's calls, errors, median and p95 duration and share of time."""
    print(f"\nTools:\n{'AGENT / TOOL':24} {'CALLS':>6} {'ERRORS':>6} {'MEDIAN':>9} {'P95':>9} {'SHARE':>6}")
    agent: object = ()
    for x in tools:
        if x.agent != agent:
            agent = x.agent
            _say(x.agent if x.agent is not None else "all agents")
        _say(f"  {x.tool:22} {x.calls:>6} {x.errors:>6} {fmt.duration(x.median_ms):>9} {fmt.duration(x.p95_ms):>9} "
             f"{x.share * 100:5.0f}%")



def _endpoint(args: argparse.Namespace, settings: Settings):
    """Where --otlp-endpoint, the OTEL_EXPORTER_OTLP_* variables or the settings say to send spans."""
    from analytics.push import Endpoint, parse_headers, resolve_endpoint

    headers = {**{k.lower(): v for k, v in settings.otlp_headers.items()}, **parse_headers(args.header or ())}
    url, exact = resolve_endpoint(args.otlp_endpoint, settings.otlp_endpoint)
    return Endpoint(url, headers, args.project or settings.otlp_project, exact)


def _content(args: argparse.Namespace, settings: Settings):
    """What of the texts goes: --content and --cut, else the settings' otlp_content and otlp_cut_kb."""
    from analytics.otlp import Content

    return Content(args.content or settings.otlp_content,
                   args.cut if args.cut is not None else settings.otlp_cut_kb)


def _announce(args: argparse.Namespace) -> Callable[[Any], None]:
    """Says what is about to leave the machine, on stderr, before it does (not with --json)."""

    def say(report) -> None:
        if not args.json:
            _say(report.plan_line(), file=sys.stderr)
            sys.stderr.flush()

    return say


def _push_line(report) -> None:
    for load in report.loads:
        if not load.unchanged:
            for line in report_lines(load):
                _say(line, file=sys.stderr)
    _say(report.line(), file=sys.stderr if report.problem or report.stopped else sys.stdout)
    sys.stdout.flush()


def _push_json(report, content: Any = None) -> dict[str, object]:
    return {"endpoint": report.url, "sessions": report.sessions, "spans": report.spans, "sent": report.sent,
            "unchanged": report.unchanged, "running": report.running, "waiting": report.waiting,
            "refused": report.refused, "problem": report.problem,
            "content": content.mode if content is not None else None,
            "cut_kb": content.cut_kb if content is not None and content.mode == "cut" else None,
            "to_send": report.to_send, "to_send_sessions": report.to_send_sessions,
            "to_send_bytes": report.to_send_bytes}


@contextmanager
def _stopped_by_signals(pusher: Any) -> Iterator[list[int]]:
    """SIGINT (Ctrl+C) and SIGTERM stop a push between two batches: what the backend accepted is recorded, the
    rest waits for the next push. A second SIGINT ends the request in flight too. Yields the signals taken."""
    taken: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield taken
        return

    def stop(signum: int, _frame: object) -> None:
        if taken and signum == signal.SIGINT:
            pusher.cancel()
        taken.append(signum)
        pusher.stop.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield taken
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_code(report: Any, taken: list[int]) -> int:
    """130 or 143 when a signal stopped the push (as a shell reports one), 2 for a problem, else 0."""
    if taken:
        return 128 + taken[0]
    return 2 if report.problem else 0


def cmd_push(args: argparse.Namespace) -> int:
    """Send what is new or changed to an OpenTelemetry backend; with --follow, keep doing so as OpenCode writes."""
    from analytics.push import Pusher

    settings = load_settings()
    endpoint = _endpoint(args, settings)
    content = _content(args, settings)
    sources = None if args.no_load else open_sources(args, settings)
    pusher = Pusher(_store_path(args), endpoint, sources, since_ms=_since_ms(args.since), timeout=args.timeout,
                    retention_days=settings.retention_days, content=content, source_kind=args.source_kind)
    try:
        with _stopped_by_signals(pusher) as taken:
            if args.dry_run:
                report = pusher.push(dry_run=True)
                if args.json:
                    _print_json(_push_json(report, content))
                else:
                    _say(report.plan_line("Would send", "Nothing was sent (--dry-run)."))
                return _exit_code(report, taken) if taken else 0
            if not args.follow:
                report = pusher.push(announce=_announce(args))
                if args.json:
                    _print_json(_push_json(report, content))
                else:
                    _push_line(report)
                return _exit_code(report, taken)

            def said(report) -> None:
                if args.json:
                    print(fmt.json_safe(json.dumps(_push_json(report, content), ensure_ascii=False)), flush=True)
                elif (report.sent or report.problem or report.refused or report.stopped or not report.loads
                      or not all(r.unchanged for r in report.loads)):
                    _push_line(report)

            def busy(text: str) -> None:
                _say(f"agent-traces: {text}", file=sys.stderr)

            interval = args.interval if args.interval is not None else settings.refresh_seconds
            report = pusher.follow(interval, pusher.stop, said, announce=_announce(args), on_busy=busy)
            return _exit_code(report, taken)
    finally:
        pusher.close()


def _store_path(args: argparse.Namespace):
    from analytics.db import default_db_path

    return Path(args.db) if args.db else default_db_path()


def cmd_export(args: argparse.Namespace) -> int:
    from analytics.export import to_json
    from analytics.otlp import to_otlp

    settings = load_settings()
    if args.otlp_endpoint:
        from analytics.push import Pusher

        endpoint = _endpoint(args, settings)
        content = _content(args, settings)
        with _open(args, read_only=False) as store:  # the push records what it sent
            sid = _session(store, args.session)
        pusher = Pusher(_store_path(args), endpoint, timeout=args.timeout, content=content)
        try:
            with _stopped_by_signals(pusher) as taken:
                report = pusher.push(sessions=[sid], force=True, announce=_announce(args))
        finally:
            pusher.close()
        if args.json:
            _print_json(_push_json(report, content))
        else:
            _push_line(report)
        return _exit_code(report, taken)
    with _open(args) as store:
        sid = _session(store, args.session)
        data = to_otlp(store, sid, args.project or settings.otlp_project, _content(args, settings)) \
            if args.format == "otlp" else to_json(store, sid)
    text = fmt.json_safe(json.dumps(data, ensure_ascii=False, indent=1, default=str))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        _say(f"Wrote {args.output} ({args.format}).", file=sys.stderr)
    else:
        print(text)
    return 0


COMPARE_MARK = {"matched": "=", "added": "+", "removed": "−"}
COMPARE_KINDS = (("duration_ms", "duration"), ("tokens_in", "tokens"), ("tokens_out", "tokens"),
                 ("cost_usd", "cost"), ("llm_calls", "count"), ("tool_calls", "count"))


def _cell(figures: object, value: float | None, kind: str) -> str:
    """One side's figure in a comparison: empty when the side has no such call, "running" for its time."""
    if figures is None:
        return ""
    return fmt.compare_side(value, kind, getattr(figures, "status", None) == "running",
                            figures.unpriced_calls if kind == "cost" else 0)  # type: ignore[attr-defined]


def compare_lines(c: object) -> list[str]:
    """A comparison as aligned lines: the two sides, the totals, then one line per pair and the tools whose
    use differs under it."""
    from analytics.queries.compare import Comparison

    assert isinstance(c, Comparison)
    root = c.pairs[0]
    lines = [f"left:  {c.left_id}  {root.left.subagent_type} ({fmt.source_label(root.left.source)})  "
             f"{fmt.when(c.left_start)}",
             f"right: {c.right_id}  {root.right.subagent_type} ({fmt.source_label(root.right.source)})  "
             f"{fmt.when(c.right_start)}", "",
             "Totals with delegations (right − left):"]
    names = {"duration_ms": "duration", "tokens_in": "tokens in", "tokens_out": "tokens out", "cost_usd": "cost",
             "llm_calls": "LLM calls", "tool_calls": "tool calls"}
    for name, kind in COMPARE_KINDS:
        a, b, d = c.left_total.value(name), c.right_total.value(name), c.total_delta(name)
        change = fmt.compare_change(a, d, kind)
        lines.append(f"  {names[name]:11} {_cell(c.left_total, a, kind):>9} → {_cell(c.right_total, b, kind):<9} "
                     f"{change}".rstrip())
    lines.append(f"  {'status':11} {c.left_total.status:>9} → {c.right_total.status}")
    n = c.counts
    lines.append(f"  calls: {n['matched']} matched, {n['added']} added on the right, {n['removed']} removed")
    lines.append("")
    lines.append(f"  {'CALL':34} {'DURATION':<26} {'TOKENS IN':<22} {'TOKENS OUT':<22} {'COST':<26} {'LLM':>7} "
                 f"{'TOOLS':>7}")
    for p in c.pairs:
        cells = []
        for name, kind in COMPARE_KINDS:
            a = p.left_figures.value(name) if p.left_figures else None
            b = p.right_figures.value(name) if p.right_figures else None
            left, right = _cell(p.left_figures, a, kind), _cell(p.right_figures, b, kind)
            width = 7 if kind == "count" else (26 if kind in ("duration", "cost") else 22)
            if kind == "count":
                cells.append(f"{left or '·'}→{right or '·'}".rjust(width))
                continue
            text = f"{left or '·':>7} → {right or '·':<7} {fmt.compare_change(a, p.delta(name), kind)}"
            cells.append(f"{text:<{width}}")
        status = "" if p.kind != "matched" or p.left.status == p.right.status else (
            f"  {p.left.status} → {p.right.status}")
        label = "  " * p.depth + p.label
        lines.append(f"{COMPARE_MARK[p.kind]} {label[:34]:34} " + " ".join(cells) + status)
        if p.description_change:
            was, now = (json.dumps(d, ensure_ascii=False) for d in p.description_change)
            lines.append(f"  {'  ' * p.depth}  description: {was} → {now}")
        for change in p.tool_changes():
            lines.append(f"  {'  ' * p.depth}  {change.text()}")
    return lines


def cmd_compare(args: argparse.Namespace) -> int:
    """Two runs (sessions or delegations) side by side: the aligned calls and what changed."""
    from analytics.queries.compare import compare

    with _open(args) as store:
        c = compare(store, args.left, args.right)
    if args.json:
        _print_json(c.to_json())
        return 0
    for line in compare_lines(c):
        _say(line)
    return 0


PUSH_DESCRIPTION = (
    "Send the session trees of the trace store to an OpenTelemetry backend over OTLP/HTTP: only what is new "
    "or changed since the last push there, loading what OpenCode wrote first. Every agent call, LLM call and "
    "tool call goes as a span with its names, times, tokens, costs and status (agent, model and tool names, "
    "session ids); the texts (prompts, outputs and tool inputs, with delegation descriptions, tool titles and "
    "error messages) go as --content says: cut (the default), each to --cut KB (8); full, each whole up to "
    "1 MB; none, none of them. Before anything is sent it says how many sessions, spans and bytes go, and "
    "what of the texts; --dry-run says only that.")
SOURCE_HELP = ("a history to read instead of those found: OpenCode's data folder, opencode.db file or storage/ "
               "folder; Claude Code's projects/ folder (or the .claude folder holding it); Codex's sessions/ folder "
               "(or the CODEX_HOME holding it, or archived_sessions/). Repeat it for several (default: every one "
               "found: $OPENCODE_DB or ~/.local/share/opencode, $CLAUDE_CONFIG_DIR/projects or ~/.claude/projects, "
               "$CODEX_HOME/sessions or ~/.codex/sessions, but those sources_off turns off)")
SOURCE_KIND_HELP = "only the sessions of one agent's history: " + ", ".join(SOURCES)


def _common(after_command: bool = False) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name (`agent-traces --db F load` and
    `agent-traces load --db F`). The copy a command gets has no defaults: argparse lets a command's defaults
    overwrite what was given before its name, which silently loaded into the default store."""
    none = {"default": argparse.SUPPRESS} if after_command else {}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="trace store file (default: $AGENT_TRACES_DB or "
                                     "~/.local/share/agent-traces/traces.duckdb)", **none)
    common.add_argument("--json", action="store_true", help="print JSON for scripts", **none)
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens", **none)
    return common


def build_parser(extend: Extension | None = None) -> argparse.ArgumentParser:
    """Every plain command; `extend(parser, subparsers, common)` adds more (the dashboard's entry adds its own)."""
    p = argparse.ArgumentParser(prog="agent-traces", description=DESCRIPTION, parents=[_common()])
    p.add_argument("--source", action="append", metavar="PATH", help=SOURCE_HELP)
    sub = p.add_subparsers(dest="command")
    common = _common(after_command=True)
    if extend is not None:
        extend(p, sub, common)
    kind = argparse.ArgumentParser(add_help=False)  # the listing commands' filter on the agent
    kind.add_argument("--source-kind", choices=tuple(SOURCES), metavar="KIND", help=SOURCE_KIND_HELP)
    s = sub.add_parser("load", parents=[common], help="read the agents' histories into the trace store")
    s.add_argument("--source", action="append", metavar="PATH", help=SOURCE_HELP, default=argparse.SUPPRESS)
    s.add_argument("--full", action="store_true", help="rebuild everything instead of loading what changed")
    s.set_defaults(func=cmd_load)
    s = sub.add_parser("sessions", parents=[common, kind], help="list root sessions with their totals")
    s.add_argument("--days", type=_days, help="only sessions started in the last N days")
    s.add_argument("--with-delegations", action="store_true", help="only sessions that delegated")
    s.set_defaults(func=cmd_sessions)
    for name, func, text in (("tree", cmd_tree, "the delegation tree of a session"),
                             ("timeline", cmd_timeline, "the delegations of a session on a time line")):
        s = sub.add_parser(name, parents=[common, kind] if name == "tree" else [common], help=text)
        s.add_argument("session", help="session id (a unique prefix is enough)")
        s.set_defaults(func=func)
    s = sub.add_parser("steps", parents=[common], help="a trace's LLM calls and tool calls, on its time line")
    s.add_argument("trace", help="trace id (a unique prefix is enough)")
    s.set_defaults(func=cmd_steps)
    s = sub.add_parser("show", parents=[common], help="one trace in full, prompts included")
    s.add_argument("trace", help="trace id (a unique prefix is enough)")
    s.set_defaults(func=cmd_show)
    s = sub.add_parser("search", parents=[common, kind], help="find text in prompts and outputs")
    s.add_argument("text")
    s.add_argument("--limit", type=_count, default=200, help="how many traces to list (default 200)")
    s.set_defaults(func=cmd_search)
    s = sub.add_parser("open", parents=[common], help="reopen a trace's session in a terminal")
    s.add_argument("trace", help="trace id (a unique prefix is enough)")
    s.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    s.add_argument("--terminal", choices=TERMINAL_NAMES, metavar="NAME",
                   help="this terminal instead of the automatic choice, on any platform (with --dry-run: what it "
                        f"would run): {', '.join(TERMINAL_NAMES)}")
    s.set_defaults(func=cmd_open)
    s = sub.add_parser("find", parents=[common, kind], help="sessions whose delegation chains match a pattern",
                       description="Patterns: tester -> refactoring; coordinator -> * -> tester; "
                                   "build -> ** -> reviewer; tester[error]; *[>60s]; coder[completed, <2m]")
    s.add_argument("pattern")
    s.add_argument("--days", type=_days, help="only sessions started in the last N days")
    s.set_defaults(func=cmd_find)
    s = sub.add_parser("anomalies", parents=[common, kind],
                       help="calls and sessions far above what is usual, and what went wrong inside calls")
    s.add_argument("--days", type=_days, help="only report those of the last N days (judged on all history)")
    s.add_argument("--now", type=_moment, help="judge running calls (interrupted, stalled) as of this time: "
                                               "2026-12-01T14:02 or ms since the epoch (default: now)")
    s.set_defaults(func=cmd_anomalies)
    s = sub.add_parser("metrics", parents=[common, kind], help="per-agent metrics, bottlenecks, critical path")
    s.add_argument("session", nargs="?", help="one session (adds its critical path)")
    s.add_argument("--days", type=_days, help="only sessions started in the last N days")
    s.add_argument("--agent", help="only trees where this agent took part")
    s.add_argument("--limit", type=_count, default=10, help="how many bottlenecks to list")
    s.add_argument("--tools", action="store_true", help="also each agent's tools: calls, errors, median, p95, "
                   "share of its tool time")
    s.set_defaults(func=cmd_metrics)
    otlp = argparse.ArgumentParser(add_help=False)
    otlp.add_argument("--header", action="append", metavar="KEY=VALUE",
                      help="an HTTP header for the backend (repeatable), added to OTEL_EXPORTER_OTLP_HEADERS")
    otlp.add_argument("--project", help="the project the spans go to (openinference.project.name, for Phoenix; "
                                        "default: otlp_project in the settings, else agent-traces)")
    otlp.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                      help="how long one request may take, retries included (default: OTEL_EXPORTER_OTLP_TIMEOUT, "
                           "else 10)")
    otlp.add_argument("--content", choices=CONTENT_MODES,
                      help="what of the texts (prompts, outputs and tool inputs) goes: cut, each to --cut KB; "
                           "full, each whole up to 1 MB; none, none of them (default: otlp_content in the settings, "
                           f"else {DEFAULT_CONTENT_MODE})")
    otlp.add_argument("--cut", type=_cut_kb, metavar="KB",
                      help=f"with --content cut, the KB of each text that go (default: otlp_cut_kb in the settings, "
                           f"else {DEFAULT_CUT_KB})")
    s = sub.add_parser("export", parents=[common, otlp],
                       help="a session's traces as JSON or OTLP/JSON, or sent to an OpenTelemetry backend")
    s.add_argument("session")
    s.add_argument("--format", choices=("json", "otlp"), default="json")
    s.add_argument("-o", "--output", help="write to this file instead of standard output")
    s.add_argument("--otlp-endpoint", metavar="URL",
                   help="send the session over OTLP/HTTP (protobuf) to this backend instead of writing a file")
    s.set_defaults(func=cmd_export)
    s = sub.add_parser("push", parents=[common, otlp, kind],
                       help="send what is new or changed to an OpenTelemetry backend (OTLP/HTTP)",
                       description=PUSH_DESCRIPTION)
    s.add_argument("--otlp-endpoint", metavar="URL",
                   help="the backend: a base URL (http://localhost:6006, http://collector:4318) or its /v1/traces "
                        "(default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, otlp_endpoint "
                        "in the settings)")
    s.add_argument("--since", type=_days, metavar="DAYS", help="only sessions started in the last DAYS days")
    s.add_argument("--follow", action="store_true",
                   help="keep pushing as the agents write, until interrupted (Ctrl+C)")
    s.add_argument("--interval", type=_interval, metavar="SECONDS",
                   help="with --follow, how often to look for changes (default: refresh_seconds in the settings)")
    s.add_argument("--source", action="append", metavar="PATH",
                   help="a history to load first, repeatable (default: as for `load`)")
    s.add_argument("--no-load", action="store_true", help="send what the trace store holds, without loading")
    s.add_argument("--dry-run", action="store_true",
                   help="say what would go (sessions, spans, bytes, what of the texts) and send nothing")
    s.set_defaults(func=cmd_push)
    s = sub.add_parser("compare", parents=[common], help="two runs side by side: aligned calls and their "
                                                         "differences (right − left)")
    s.add_argument("left", help="a session id (its root trace) or a trace id (a delegation with what it "
                                "delegated); a unique prefix is enough")
    s.add_argument("right", help="the other run, the same way")
    s.set_defaults(func=cmd_compare)
    s = sub.add_parser("cleanup", parents=[common], help="drop sessions older than N days, or bring them back")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--retention-days", type=_retention_days, metavar="N",
                      help="remove the sessions started more than N days ago (N >= 1); loads skip them after")
    what.add_argument("--forget", action="store_true",
                      help="forget which sessions were removed, so the next load imports them again")
    s.set_defaults(func=cmd_cleanup)
    return p


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Parse and run one command (`parser`: one from `build_parser`, maybe extended); returns the exit code."""
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except AgentTracesError as exc:
        _say(f"agent-traces: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
