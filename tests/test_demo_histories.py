"""The bundled demo (resources/demo) and the compare-agents fixture, read by the project's own readers.

Both were written by the real binaries (tools/make_demo_store.sh, tools/make_compare_agents.sh). The tests check
the point of each: who delegated to whom, nested and in the background, with which outcome and at what cost;
that nothing of the machine that made them shows; that reading them leaves every byte as it was; and that the
same task run by three agents lines up in a comparison.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from analytics.claude_code import open_claude_source
from analytics.codex import open_codex_source
from analytics.db import TraceStore
from analytics.extraction import extract
from analytics.loader import build_traces, load
from analytics.models import COMPLETED, DELEGATION, ERROR, LLM, SESSION, TOOL, AgentSpan, AgentTrace, LoadReport
from analytics.opencode import open_source
from analytics.opencode.source import Source
from analytics.pricing import call_cost
from analytics.queries.compare import compare
from tests.conftest import FIXTURES, tree_digest

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"
COMPARE = FIXTURES / "compare-agents"
HOUR_MS = 3_600_000


def built(src) -> tuple[list[AgentTrace], list[AgentSpan], LoadReport]:
    """Every trace and step of a history, as the loader builds them (OpenCode's tool calls are written by SQL,
    which `extract` reads back)."""
    report = LoadReport()
    if isinstance(src, Source):
        traces, _infos, spans = extract(src, report=report)
        return traces, spans, report
    with src.reading():
        index = src.index(report)
        sessions = src.read(None, report)
        traces, _infos, spans = build_traces(sessions, lambda need: src.fill_texts(need, report),
                                             {k: v.parent_id for k, v in index.items()}, report)
    return traces, spans, report


def sources(root: Path) -> list:
    """The three agents' histories under `root`, in the demo's layout (OpenCode's store beside `claude/projects`
    and `codex/sessions`) or the fixture's (the store in `opencode/`)."""
    store = root if (root / "opencode.db").exists() else root / "opencode"
    return [open_source(store), open_claude_source(root / "claude" / "projects"),
            open_codex_source(root / "codex" / "sessions")]


def children(traces: list[AgentTrace], parent: AgentTrace) -> list[AgentTrace]:
    return sorted((t for t in traces if t.parent_trace_id == parent.trace_id), key=lambda t: t.started_at)


def steps(spans: list[AgentSpan], trace: AgentTrace, kind: str | None = None) -> list[AgentSpan]:
    return sorted((s for s in spans if s.trace_id == trace.trace_id and kind in (None, s.kind)),
                  key=lambda s: s.started_at)


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


# -- the demo ---------------------------------------------------------------------------------------------------

def test_demo_layout() -> None:
    """The folders the window's --demo reads: OpenCode's store, a Claude Code `projects` folder, a Codex
    `sessions` folder."""
    assert sorted(p.name for p in DEMO.iterdir()) == ["claude", "codex", "opencode.db"]
    (project,) = (DEMO / "claude" / "projects").iterdir()
    assert project.name == "-home-demo-code-shop-api"
    assert len(list((DEMO / "codex" / "sessions").rglob("rollout-*.jsonl"))) == 3


def test_demo_opencode_sessions() -> None:
    traces, spans, report = built(open_source(DEMO))
    roots = {t.description: t for t in traces if t.kind == SESSION}
    assert sorted(roots) == ["Nightly export fails on large accounts", "Rate limiting for the API client",
                             "SQLAlchemy 2.0 upgrade"]
    count = {d: sum(1 for t in traces if t.kind == DELEGATION and t.root_session_id == r.session_id)
             for d, r in roots.items()}
    assert count == {"Nightly export fails on large accounts": 3, "Rate limiting for the API client": 5,
                     "SQLAlchemy 2.0 upgrade": 3}
    rate = roots["Rate limiting for the API client"]
    assert max(t.depth for t in traces if t.root_session_id == rate.session_id) == 3
    assert [t.description for t in traces if t.status == ERROR] == ["Reproduce on acme-large"]
    assert all(s.cost_usd > 0 for s in spans if s.kind == LLM and s.tokens_in)  # OpenCode stores its costs
    assert not report.skipped


def test_demo_claude_code_session() -> None:
    """The checkout fix: the main agent runs Bash and Read in one response, then two subagents in one response,
    one in the foreground (which delegates a regression test to a nested one) and one in the background; it edits
    the code, runs the tests, answers, and answers again when the background review comes back."""
    src = open_claude_source(DEMO / "claude" / "projects")
    traces, spans, report = built(src)
    (root,) = [t for t in traces if t.kind == SESSION]
    assert root.subagent_type == "main" and root.prompt_input.startswith("Checkout got slow")
    profile, review = children(traces, root)
    assert (profile.description, review.description) == ("Profile checkout queries", "Review the 2.4.0 commits")
    assert abs(profile.started_at - review.started_at) < 1000  # called in the same response
    (nested,) = children(traces, profile)
    assert nested.description == "Write a query-count regression test" and nested.depth == 2
    assert children(traces, review) == children(traces, nested) == []
    assert {t.status for t in traces} == {COMPLETED}

    assert [s.name for s in steps(spans, root, TOOL)] == ["Bash", "Read", "Edit", "Bash", "Bash"]
    assert [s.name for s in steps(spans, profile, TOOL)] == ["Bash", "Read", "Read"]
    assert [(s.name, s.status) for s in steps(spans, nested, TOOL)] == [
        ("Read", COMPLETED), ("Write", COMPLETED), ("Bash", ERROR)]  # the new test fails, as it should then
    assert [s.name for s in steps(spans, review, TOOL)] == ["Bash", "Bash"]

    # the review ran in the background: its call returned at once, its end came later as a notification, after
    # the main agent's own answer, and the main agent answered again
    assert review.ended_at > profile.ended_at and review.prompt_output.startswith("One finding.")
    main_file = next((DEMO / "claude" / "projects").rglob(f"{root.session_id}.jsonl"))
    records = [json.loads(line) for line in main_file.read_text().splitlines()]
    launched = [r["toolUseResult"] for r in records if isinstance(r.get("toolUseResult"), dict)
                and r["toolUseResult"].get("status") == "async_launched"]
    assert len(launched) == 1 and launched[0]["description"] == "Review the 2.4.0 commits"
    notice = next(r for r in records if r["type"] == "user" and "<task-notification>" in str(r["message"]["content"]))
    answers = [r for r in records if r["type"] == "assistant" and r["message"]["content"][0]["type"] == "text"]
    assert ms(answers[0]["timestamp"]) < ms(notice["timestamp"]) < ms(answers[1]["timestamp"])
    assert review.ended_at <= ms(notice["timestamp"])

    # every call priced by its real model name, and the sum is Claude Code's own total
    llm = [s for s in spans if s.kind == LLM]
    assert len(llm) == 17 and {s.name for s in llm} == {"claude-sonnet-4-5-20250929"}
    assert all(s.cost_usd > 0 for s in llm) and "price" not in report.skipped
    total, by_model = src.reader.cost_state(root.session_id)
    assert sum(s.cost_usd for s in llm) == pytest.approx(total) and list(by_model) == ["claude-sonnet-4-5"]
    assert 0.2 < total < 1


def test_demo_codex_session() -> None:
    """The rounding fix: the root runs a command, spawns an explorer and a worker in one response, waits for them
    (twice: a wait returns when the first is done), writes the fix and runs the tests."""
    traces, spans, report = built(open_codex_source(DEMO / "codex" / "sessions"))
    (root,) = [t for t in traces if t.kind == SESSION]
    assert root.prompt_input.startswith("Invoice 88412 (ticket BILL-231)")
    explorer, worker = children(traces, root)
    assert (explorer.subagent_type, worker.subagent_type) == ("explorer", "worker")
    assert abs(explorer.started_at - worker.started_at) < 1000 and explorer.depth == worker.depth == 1
    assert {t.status for t in traces} == {COMPLETED} and not report.skipped
    assert [s.name for s in steps(spans, root, TOOL)] == ["exec_command", "wait_agent", "wait_agent",
                                                         "exec_command", "exec_command"]
    assert [s.name for s in steps(spans, explorer, TOOL)] == ["exec_command"] * 3
    assert [s.status for s in steps(spans, worker, TOOL)] == [COMPLETED] * 3 + [ERROR]  # its test fails first
    assert explorer.prompt_output.startswith("Two roundings") and worker.prompt_output.startswith("Added tests/")
    llm = [s for s in spans if s.kind == LLM]
    assert len(llm) == 14 and {(s.name, s.title) for s in llm} == {("gpt-5.1-codex", "openai")}


def _codex_price(s: AgentSpan) -> float | None:
    return call_cost("openai", s.name, s.started_at, s.tokens_in, s.tokens_out + s.tokens_reasoning,
                     s.tokens_cache_read)


def test_demo_codex_costs_are_known() -> None:
    """The Codex session's model and provider are in the price table: every call has its cost."""
    _traces, spans, report = built(open_codex_source(DEMO / "codex" / "sessions"))
    llm = [s for s in spans if s.kind == LLM]
    assert all((_codex_price(s) or 0) > 0 and s.cost_usd == pytest.approx(_codex_price(s)) for s in llm)
    assert 0.05 < sum(s.cost_usd for s in llm) < 1 and "price" not in report.skipped


def test_demo_sessions_are_spread_over_the_last_days() -> None:
    """OpenCode's sessions two days and 20 hours back and now, Claude Code's a day back, Codex's now (its binary
    is static: libfaketime cannot move its clock)."""
    starts = {}
    for src in sources(DEMO):
        traces, _spans, _report = built(src)
        starts.update({t.prompt_input.strip('"')[:20]: t.started_at  # (OpenCode quotes its prompts)
                       for t in traces if t.kind == SESSION})
    last = max(starts.values())
    back = {k: round((last - v) / HOUR_MS) for k, v in starts.items()}
    assert back == {"Upgrade SQLAlchemy f": 48, "Checkout got slow af": 24, "The nightly export j": 20,
                    "Add rate limiting to": 0, "Invoice 88412 (ticke": 0}


@pytest.mark.parametrize("root", [DEMO, COMPARE], ids=["demo", "compare-agents"])
def test_no_path_of_the_machine_that_made_it(root: Path) -> None:
    """The agents ran in a neutral home (/home/demo): no file holds a temporary, root or build folder."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) > 3
    for p in files:
        data = p.read_bytes()
        for machine in (b"/tmp/", b"/root/", b"/work/"):
            assert machine not in data, f"{p.relative_to(root)} holds {machine.decode()}"
        assert b"/home/demo/code/" in data or p.suffix == ".json"  # where the work happened (meta.json: nowhere)


@pytest.mark.parametrize("root", [DEMO, COMPARE], ids=["demo", "compare-agents"])
def test_reading_leaves_every_byte(root: Path, tmp_path: Path) -> None:
    """Loaded into a real store, read twice: no file changed, none added beside them."""
    before = tree_digest(root)
    listing = sorted(p.relative_to(root) for p in root.rglob("*"))
    with TraceStore(tmp_path / "traces.duckdb") as store:
        for src in sources(root):
            report = load(store, src)
            assert report.sessions_seen and not report.skipped
            load(store, src, full=True)
    assert tree_digest(root) == before
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == listing


# -- the same task run by three agents ----------------------------------------------------------------------------

@pytest.fixture
def compared(tmp_path: Path) -> tuple[TraceStore, dict[str, AgentTrace]]:
    """The compare-agents fixture in one store, and its four runs' roots: opencode, claude, claude-reworded,
    codex."""
    store = TraceStore(tmp_path / "traces.duckdb")
    roots: dict[str, AgentTrace] = {}
    for name, src in zip(("opencode", "claude", "codex"), sources(COMPARE), strict=True):
        load(store, src)
        traces, _spans, _report = built(src)
        for r in (t for t in traces if t.kind == SESSION):
            coder = children(traces, r)[0]
            roots[name + ("-reworded" if coder.description == "Implement --dry-run in deploy.py" else "")] = r
    yield store, roots
    store.close()


def test_compare_agents_runs_have_the_same_shape() -> None:
    """Every run: the main agent reads the script, then delegates to coder, then to tester; each completes."""
    tools = {}
    for name, src in zip(("opencode", "claude", "codex"), sources(COMPARE), strict=True):
        traces, spans, report = built(src)
        assert {t.status for t in traces} == {COMPLETED} and not report.skipped
        for root in (t for t in traces if t.kind == SESSION):
            assert root.prompt_input.strip('"').startswith("Add a --dry-run flag")  # (OpenCode quotes it)
            coder, tester = children(traces, root)
            assert (coder.subagent_type, tester.subagent_type) == ("coder", "tester")
            assert coder.ended_at <= tester.started_at  # one after the other
            tools[name, coder.description or ""] = [
                [s.name for s in steps(spans, t, TOOL)] for t in (root, coder, tester)]
            assert all(s.cost_usd > 0 for s in spans if s.kind == LLM)
    assert tools[("opencode", "Add the --dry-run flag")] == [["read"], ["read", "edit", "bash"], ["write", "bash"]]
    assert tools[("claude", "Add the --dry-run flag")] == [["Read"], ["Read", "Edit", "Bash"], ["Write", "Bash"]]
    assert tools[("claude", "Implement --dry-run in deploy.py")] == tools[("claude", "Add the --dry-run flag")]
    (codex,) = [v for (name, _d), v in tools.items() if name == "codex"]  # Codex names a child by a nickname
    assert codex == [["exec_command", "wait_agent", "wait_agent"], ["exec_command"] * 3, ["exec_command"] * 2]


def test_compare_opencode_with_claude_code(compared) -> None:
    store, roots = compared
    c = compare(store, roots["opencode"].trace_id, roots["claude"].trace_id)
    assert c.counts == {"matched": 3, "added": 0, "removed": 0}
    assert [p.label for p in c.pairs[1:]] == ["coder — Add the --dry-run flag", "tester — Test the dry-run flag"]
    assert all(p.description_change is None for p in c.pairs)
    assert {name for p in c.pairs for name in (p.left_tools | p.right_tools)} == {
        "read", "edit", "bash", "write", "Read", "Edit", "Bash", "Write"}


def test_compare_with_a_reworded_description(compared) -> None:
    store, roots = compared
    c = compare(store, roots["opencode"].trace_id, roots["claude-reworded"].trace_id)
    assert c.counts == {"matched": 3, "added": 0, "removed": 0}
    assert [p.description_change for p in c.pairs] == [
        None, ("Add the --dry-run flag", "Implement --dry-run in deploy.py"), None]


def test_compare_opencode_with_codex(compared) -> None:
    """Codex's children carry no description (a nickname stands in): they pair by agent and place."""
    store, roots = compared
    c = compare(store, roots["opencode"].trace_id, roots["codex"].trace_id)
    assert c.counts == {"matched": 3, "added": 0, "removed": 0}
    assert [(p.left.subagent_type, p.right.subagent_type) for p in c.pairs[1:]] == [
        ("coder", "coder"), ("tester", "tester")]
    assert c.pairs[1].right_tools["exec_command"].calls == 3


def test_an_installed_package_carries_the_demo() -> None:
    """pyproject's package-data takes every file of the demo (setuptools expands its globs recursively, as here;
    checked once with `pip install .` in a fresh venv)."""
    import glob
    import tomllib

    pyproject = tomllib.loads((DEMO.parent.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["resources"]
    taken = {Path(f) for p in patterns for f in glob.glob(p, root_dir=DEMO.parent, recursive=True)}
    assert {p.relative_to(DEMO.parent) for p in DEMO.rglob("*") if p.is_file()} <= taken
