"""Claude Code histories written by the real binaries (tests/fixtures/claude-code-*), loaded exactly.

Each fixture is checked against the files themselves, read here a second way (Python's json, line by line):
every API response is one LLM step with its usage, every tool_use one tool step with its result, every
Agent/Task call one delegation owning its subagent's steps; plus what each case is about (nested, parallel,
failing tool, failing model call, background, killed, resumed) and Claude Code's own cost total.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from analytics.claude_code import default_projects_dir, open_claude_source
from analytics.db import TraceStore
from analytics.errors import SourceError
from analytics.loader import build_traces, load
from analytics.models import COMPLETED, DELEGATION, ERROR, LLM, RUNNING, SESSION, TOOL, LoadReport
from tests.conftest import FIXTURES, tree_digest

VERSIONS = ("1.0.128", "2.0.27", "2.1.1", "2.1.50", "2.1.332")
INLINE = ("1.0.128", "2.0.27")  # subagents written inside the session file
CASES = sorted(p.relative_to(FIXTURES) for v in VERSIONS for p in (FIXTURES / f"claude-code-{v}").iterdir())


def build(path: Path, report: LoadReport | None = None):
    """Traces, session records and steps of a history, as the loader builds them."""
    report = report if report is not None else LoadReport()
    src = open_claude_source(path)
    with src.reading():
        index = src.index(report)
        sessions = src.read(None, report)
        traces, infos, spans = build_traces(sessions, lambda need: src.fill_texts(need, report),
                                            {k: v.parent_id for k, v in index.items()}, report)
    return traces, infos, spans, src


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


class Oracle:
    """One conversation file read with json.loads: its API responses, tool calls and prompts."""

    def __init__(self, path: Path, sidechain: bool | None = None) -> None:
        self.calls: dict[str, dict] = {}  # message id -> {start, end, usage, model, tools, error}
        self.tools: dict[str, dict] = {}  # tool_use id -> {name, input, start, end, status, output}
        self.prompts: list[str] = []
        prev = pending = None
        for line in path.read_text().splitlines():
            r = json.loads(line)
            kind = r.get("type")
            if kind == "api-request":
                pending = pending or r["timestamp"]
                continue
            if kind not in ("user", "assistant"):
                continue
            if sidechain is not None and bool(r.get("isSidechain")) != sidechain:
                continue
            t = r["timestamp"]
            m = r["message"]
            if kind == "assistant":
                c = self.calls.setdefault(m["id"], {"start": ms(pending or prev or t), "end": ms(t), "usage": {},
                                                    "model": m["model"], "tools": [], "texts": [],
                                                    "error": r.get("isApiErrorMessage", False)})
                c["end"] = max(c["end"], ms(t))
                for k, v in m.get("usage", {}).items():
                    if isinstance(v, int):
                        c["usage"][k] = max(c["usage"].get(k, 0), v)
                for b in m["content"]:
                    if b["type"] == "tool_use":
                        c["tools"].append(b["id"])
                        self.tools[b["id"]] = {"name": b["name"], "input": b["input"], "start": ms(t), "end": None,
                                               "status": RUNNING, "output": None, "message": m["id"]}
                    elif b["type"] == "text":
                        c["texts"].append(b["text"])
            else:
                content = m["content"]
                if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
                    for b in content:
                        if b.get("type") == "tool_result":
                            tool = self.tools[b["tool_use_id"]]
                            tool["end"] = ms(t)
                            tool["status"] = ERROR if b.get("is_error") else COMPLETED
                            out = b["content"]
                            tool["output"] = out if isinstance(out, str) else "\n".join(x["text"] for x in out)
                elif isinstance(content, str) and not r.get("isMeta") and "<task-notification>" not in content:
                    self.prompts.append(content)
            prev, pending = t, None


def files(case: Path) -> tuple[Path, list[Path]]:
    """The session file and the subagent files (not Claude Code's Warmup ones) of a one-session fixture."""
    all_ = sorted((FIXTURES / case).rglob("*.jsonl"))
    session = next(p for p in all_ if not p.name.startswith("agent-"))
    agents = [p for p in all_ if p.name.startswith("agent-") and '"content":"Warmup"' not in p.read_text()[:3000]]
    return session, agents


def oracles(case: Path) -> list[Oracle]:
    session, agents = files(case)
    if case.parent.name.removeprefix("claude-code-") in INLINE:  # subagents inline: each sidechain chain is one
        return [Oracle(session, sidechain=False)] + _inline_chains(session)
    return [Oracle(session)] + [Oracle(p) for p in agents]


def _inline_chains(path: Path) -> list[Oracle]:
    """2.0.27's sidechains, each written to a file of its own so that Oracle reads it alone."""
    chain_of: dict[str, str] = {}
    lines: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if not r.get("isSidechain"):
            continue
        chain = chain_of.get(r.get("parentUuid")) or r["uuid"]
        chain_of[r["uuid"]] = chain
        lines[chain].append(line)
    out = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"oracle-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    for chain, ls in lines.items():
        if '"content":"Warmup"' in ls[0]:
            continue
        f = tmp / f"{chain}.jsonl"
        f.write_text("\n".join(ls) + "\n")
        out.append(Oracle(f))
    return out


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_step_is_the_files(case: Path) -> None:
    """Each API response is one LLM step (parallel tool calls written as several records counted once), each
    tool call one tool step under it, with the files' times, usage, inputs and outputs."""
    traces, _infos, spans, _src = build(FIXTURES / case)
    want_calls = {mid: c for o in oracles(case) for mid, c in o.calls.items()}
    every_tool = {tid: t for o in oracles(case) for tid, t in o.tools.items()}
    want_tools = {tid: t for tid, t in every_tool.items() if t["name"] not in ("Agent", "Task")}
    llm = {sp.span_id: sp for sp in spans if sp.kind == LLM}
    tools = {sp.span_id: sp for sp in spans if sp.kind == TOOL}
    assert set(llm) == set(want_calls)
    assert set(tools) == set(want_tools)
    for mid, c in want_calls.items():
        sp = llm[mid]
        u = c["usage"]
        assert (sp.tokens_in, sp.tokens_out, sp.tokens_cache_write, sp.tokens_cache_read) == (
            u.get("input_tokens", 0), u.get("output_tokens", 0), u.get("cache_creation_input_tokens", 0),
            u.get("cache_read_input_tokens", 0)), mid
        assert sp.name == c["model"]
        assert sp.started_at == c["start"]
        pending = [t for t in c["tools"] if every_tool[t]["status"] == RUNNING]
        if sp.status == RUNNING:  # the last step of a killed run: its tool (or subagent) never answered
            assert pending and sp.ended_at is None
        else:
            assert sp.ended_at == c["end"]
            assert sp.status == (ERROR if c["error"] else COMPLETED)
    for tid, t in want_tools.items():
        sp = tools[tid]
        assert (sp.name, sp.status, sp.started_at, sp.ended_at, sp.output) == (
            t["name"], t["status"], t["start"], t["end"], t["output"])
        assert json.loads(sp.input) == t["input"]
        assert sp.parent_span_id == t["message"]
    # every step belongs to the trace whose own turn it is: a session's to the session, a subagent's to its call
    by_trace = defaultdict(set)
    for sp in spans:
        if sp.kind == LLM:
            by_trace[sp.trace_id].add(sp.span_id)
    o = oracles(case)
    session = next(t for t in traces if t.kind == SESSION)
    assert by_trace[session.trace_id] == set(o[0].calls)
    delegations = [t for t in traces if t.kind == DELEGATION]
    agent_calls = [tid for x in o for tid, t in x.tools.items() if t["name"] in ("Agent", "Task")]
    assert sorted(t.trace_id for t in delegations) == sorted(agent_calls)
    assert {frozenset(by_trace[t.trace_id]) for t in delegations} == {frozenset(x.calls) for x in o[1:]}
    for t in traces:  # a trace's own figures are the sum of its own LLM steps
        own = [sp for sp in spans if sp.trace_id == t.trace_id and sp.kind == LLM]
        assert t.tokens_in == sum(sp.tokens_in for sp in own)
        assert t.tokens_out == sum(sp.tokens_out for sp in own)
        assert t.cost_usd == pytest.approx(sum(sp.cost_usd for sp in own))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_prompts_outputs_and_parents(case: Path) -> None:
    traces, infos, _spans, _src = build(FIXTURES / case)
    o = oracles(case)
    session = next(t for t in traces if t.kind == SESSION)
    assert session.prompt_input == o[0].prompts[0]
    assert session.parent_trace_id is None and session.depth == 0
    assert session.subagent_type == "main"
    for t in traces:
        if t.kind != DELEGATION:
            continue
        call = next(x.tools[t.trace_id] for x in o if t.trace_id in x.tools)
        assert t.prompt_input == call["input"]["prompt"]
        assert t.description == call["input"]["description"]
        assert t.subagent_type == call["input"]["subagent_type"]
        child = next(i for i in infos if i.session_id == t.child_session_id)
        assert child.root_session_id == session.session_id
        if t.status == COMPLETED:
            sub = next(x for x in o[1:] if x.prompts and x.prompts[0] == call["input"]["prompt"])
            assert t.prompt_output == next(c["texts"][-1] for c in reversed(sub.calls.values()) if c["texts"])
    assert {i.session_id for i in infos} == {t.child_session_id for t in traces}
    assert all(i.directory == f"/tmp/cc-fixture/{case.name}" for i in infos)


def _case(version: str, name: str) -> Path:
    return FIXTURES / f"claude-code-{version}" / name


@pytest.mark.parametrize("version", VERSIONS)
def test_parallel_calls_are_one_llm_call_and_two_delegations(version: str) -> None:
    traces, _infos, spans, _src = build(_case(version, "parallel"))
    session = next(t for t in traces if t.kind == SESSION)
    delegations = [t for t in traces if t.kind == DELEGATION]
    assert len(delegations) == 2
    assert {t.parent_trace_id for t in delegations} == {session.trace_id}
    first = min((sp for sp in spans if sp.trace_id == session.trace_id), key=lambda sp: sp.started_at)
    made_first = {tid for x in oracles(_case(version, "parallel")) for tid, tl in x.tools.items()
                  if tl["message"] == first.span_id}
    assert {t.trace_id for t in delegations} <= made_first  # both calls come from the first API response
    assert all(t.status == COMPLETED for t in traces)
    assert sorted(t.description for t in delegations) == ["Left", "Right"]


def test_nested_subagents_hang_under_their_caller() -> None:
    traces, infos, spans, _src = build(_case("2.1.332", "nested"))
    by_desc = {t.description: t for t in traces if t.kind == DELEGATION}
    outer, inner = by_desc["Outer"], by_desc["Inner"]
    session = next(t for t in traces if t.kind == SESSION)
    assert (outer.parent_trace_id, outer.depth) == (session.trace_id, 1)
    assert (inner.parent_trace_id, inner.depth) == (outer.trace_id, 2)
    assert inner.session_id == outer.child_session_id  # the inner call was made in the outer subagent's file
    inner_info = next(i for i in infos if i.session_id == inner.child_session_id)
    assert inner_info.parent_session_id == outer.child_session_id  # meta.json's parentAgentId
    bash = next(sp for sp in spans if sp.kind == TOOL)
    assert (bash.trace_id, bash.name, bash.output) == (inner.trace_id, "Bash", "deep")
    assert inner.started_at >= outer.started_at and inner.ended_at <= outer.ended_at


def test_older_versions_gave_subagents_no_subagent_tool() -> None:
    """2.0.27, 2.1.1 and 2.1.50 answered the nested prompt without a call: one delegation, no nesting."""
    for version in ("2.0.27", "2.1.1", "2.1.50"):
        traces, _infos, _spans, _src = build(_case(version, "nested"))
        assert [t.depth for t in traces if t.kind == DELEGATION] == [1]


@pytest.mark.parametrize("version", ("2.0.27", "2.1.332"))
def test_a_failing_tool_is_an_error_step_inside_a_completed_subagent(version: str) -> None:
    traces, _infos, spans, _src = build(_case(version, "tool-error"))
    delegation = next(t for t in traces if t.kind == DELEGATION)
    failed = [sp for sp in spans if sp.status == ERROR]
    assert [(sp.kind, sp.name, sp.trace_id) for sp in failed] == [(TOOL, "Bash", delegation.trace_id)]
    assert "No such file or directory" in failed[0].output
    assert delegation.status == COMPLETED


def test_a_failing_model_call_ends_the_subagent_in_error() -> None:
    traces, _infos, spans, _src = build(_case("2.1.332", "model-error"))
    delegation = next(t for t in traces if t.kind == DELEGATION)
    assert delegation.status == ERROR
    assert "API Error: 400" in delegation.prompt_output
    own = [sp for sp in spans if sp.trace_id == delegation.trace_id]
    assert [(sp.kind, sp.status, sp.name, sp.tokens_in) for sp in own] == [(LLM, ERROR, "<synthetic>", 0)]
    assert own[0].output == "API Error: 400 scripted provider failure 400"
    # it started when its first request was sent; Claude Code retried five times before it gave up
    requests = [json.loads(x) for x in files(_case("2.1.332", "model-error"))[1][0].read_text().splitlines()]
    sent = [ms(r["timestamp"]) for r in requests if r["type"] == "api-request"]
    assert len(sent) == 6 and own[0].started_at == sent[0]
    assert next(t for t in traces if t.kind == SESSION).status == COMPLETED


def test_a_background_subagent_takes_its_run_from_its_own_file() -> None:
    traces, _infos, _spans, src = build(_case("2.1.332", "background"))
    delegation = next(t for t in traces if t.kind == DELEGATION)
    o = oracles(_case("2.1.332", "background"))
    sub = o[1]
    assert delegation.status == COMPLETED
    assert delegation.started_at == ms_of_first(files(_case("2.1.332", "background"))[1][0])
    assert delegation.ended_at == max(c["end"] for c in sub.calls.values())
    assert delegation.prompt_output == "Finished. Task was: Run.. Tool results seen: behind"
    launch = next(t for t in o[0].tools.values() if t["name"] == "Agent")
    assert launch["end"] < delegation.ended_at  # the tool call returned at once ("async_launched")


def ms_of_first(path: Path) -> int:
    return ms(json.loads(path.read_text().splitlines()[0])["timestamp"])


def test_a_killed_run_is_left_running() -> None:
    traces, _infos, spans, _src = build(_case("2.1.332", "killed"))
    assert {t.kind: t.status for t in traces} == {SESSION: RUNNING, DELEGATION: RUNNING}
    assert all(t.ended_at is None for t in traces)
    bash = next(sp for sp in spans if sp.kind == TOOL)
    assert (bash.status, bash.ended_at, bash.output) == (RUNNING, None, None)
    assert "time.sleep(60)" in bash.input


def test_a_resumed_session_is_one_session_with_two_turns() -> None:
    traces, infos, spans, src = build(_case("2.1.332", "resumed"))
    session = next(t for t in traces if t.kind == SESSION)
    assert session.prompt_input == "First. {{bash echo one}}"
    assert session.prompt_output.startswith("Finished. Task was: Again.")
    assert [t.description for t in traces if t.kind == DELEGATION] == ["Second"]
    assert len([i for i in infos if i.parent_session_id is None]) == 1
    # cost-state is written after each run and is cumulative: the last one is the total, not the sum of both
    states = [json.loads(x) for x in files(_case("2.1.332", "resumed"))[0].read_text().splitlines()
              if '"type":"cost-state"' in x]
    assert len(states) == 2 and states[1]["totalCostUSD"] > states[0]["totalCostUSD"]
    assert sum(t.cost_usd for t in traces) == pytest.approx(states[1]["totalCostUSD"], abs=1e-9)


@pytest.mark.parametrize("case", [c for c in CASES if str(c).startswith("claude-code-2.1.332")], ids=str)
def test_computed_cost_is_claude_codes_own_total(case: Path) -> None:
    """The price table's cost of every call adds up to the session's last `cost-state` (Claude Code's own
    figure, subagents included); the killed run never wrote one."""
    traces, _infos, _spans, src = build(FIXTURES / case)
    session = next(t for t in traces if t.kind == SESSION)
    state = src.readers[0].cost_state(session.session_id)
    if case.name == "killed":
        assert state is None
        return
    assert sum(t.cost_usd for t in traces) == pytest.approx(state[0], abs=1e-9)


def test_the_model_named_on_the_command_line_is_priced() -> None:
    traces, _infos, spans, _src = build(_case("2.1.332", "agent-tool"))
    assert {sp.name for sp in spans if sp.kind == LLM} == {"claude-sonnet-4-5"}
    sp = next(sp for sp in spans if sp.kind == LLM)
    assert sp.cost_usd == pytest.approx(sp.tokens_in * 3e-6 + sp.tokens_out * 15e-6)


def test_old_sessions_are_priced_by_their_dated_model_ids() -> None:
    _traces, _infos, spans, _src = build(_case("2.0.27", "parallel"))
    models = {sp.name for sp in spans if sp.kind == LLM}
    assert models == {"claude-sonnet-4-5-20250929"}
    assert all(sp.cost_usd > 0 for sp in spans if sp.kind == LLM)


def test_warmup_subagents_are_left_out() -> None:
    """2.0.27 .. 2.1.5 start "Warmup" subagents no call refers to: they are no sessions and not counted."""
    report = LoadReport()
    _traces, infos, _spans, _src = build(_case("2.1.1", "nested"), report)
    warmups = [p for p in (_case("2.1.1", "nested")).rglob("agent-*.jsonl") if '"Warmup"' in p.read_text()]
    assert warmups and len(infos) == 2
    assert report.skipped == {}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_load_into_a_store_and_leave_the_files_alone(case: Path, tmp_path: Path) -> None:
    history = tmp_path / "projects"
    shutil.copytree(FIXTURES / case / "projects", history)
    before = tree_digest(history)
    listing = sorted(str(p.relative_to(history)) for p in history.rglob("*"))
    traces, _infos, spans, _src = build(history)
    with TraceStore(tmp_path / "t.duckdb") as store:
        report = load(store, open_claude_source(history))
        assert report.traces_written == len(traces) and report.skipped == {}
        rows = store.conn.execute(
            "SELECT trace_id, kind, status, tokens_in, tokens_out, parent_trace_id, depth FROM agent_traces").fetchall()
        assert sorted(rows) == sorted((t.trace_id, t.kind, t.status, t.tokens_in, t.tokens_out, t.parent_trace_id,
                                       t.depth) for t in traces)
        n_spans = store.conn.execute("SELECT count(*) FROM agent_spans").fetchone()[0]
        assert n_spans == len(spans)
        again = load(store, open_claude_source(history))
        assert again.sessions_changed == 0 and again.traces_written == 0
    assert tree_digest(history) == before
    assert sorted(str(p.relative_to(history)) for p in history.rglob("*")) == listing


def test_all_cases_load_together(tmp_path: Path) -> None:
    """One projects folder holding every fixture: ids do not collide, every session tree is there."""
    history = tmp_path / "projects"
    history.mkdir()
    for case in CASES:
        for p in (FIXTURES / case / "projects").iterdir():
            shutil.copytree(p, history / f"{case.parent.name}-{p.name}")
    with TraceStore(tmp_path / "t.duckdb") as store:
        report = load(store, open_claude_source(history))
        assert report.skipped == {}
        sessions = store.conn.execute("SELECT count(*) FROM agent_traces WHERE kind = 'session'").fetchone()[0]
    assert sessions == len(CASES)


def test_found_with_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["HOME"])
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    assert default_projects_dir() == home / ".claude" / "projects"
    with pytest.raises(SourceError, match="No Claude Code history"):
        open_claude_source()
    shutil.copytree(_case("2.1.332", "nested") / "projects", home / ".claude" / "projects")
    assert open_claude_source().location == home / ".claude" / "projects"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cfg"))
    shutil.copytree(_case("2.1.332", "parallel") / "projects", tmp_path / "cfg" / "projects")
    assert open_claude_source().location == tmp_path / "cfg" / "projects"
    assert open_claude_source(tmp_path / "cfg").location == tmp_path / "cfg" / "projects"


def test_a_background_subagent_without_its_file_takes_the_notification(tmp_path: Path) -> None:
    """The notification carries the outcome: with the subagent's file gone, the call still ends there."""
    history = tmp_path / "projects"
    shutil.copytree(_case("2.1.332", "background") / "projects", history)
    for p in history.rglob("agent-*"):
        p.unlink()
    traces, _infos, _spans, _src = build(history)
    delegation = next(t for t in traces if t.kind == DELEGATION)
    lines = [json.loads(x) for x in files(_case("2.1.332", "background"))[0].read_text().splitlines()]
    notice = next(r for r in lines if r.get("origin", {}).get("kind") == "task-notification")
    assert delegation.status == COMPLETED
    assert delegation.ended_at == ms(notice["timestamp"])
    assert delegation.prompt_output == "Finished. Task was: Run.. Tool results seen: behind"
    assert (delegation.tokens_in, delegation.child_session_id) == (0, None)
