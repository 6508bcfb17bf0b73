"""Pattern search, metrics, critical path, anomalies and export, on stores written by real OpenCode binaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.cli import main
from analytics.db import TraceStore
from analytics.export import to_json, to_otlp
from analytics.loader import load
from analytics.opencode import open_source
from analytics.patterns import PatternError, parse
from analytics.queries import analysis_queries as a
from analytics.queries.trace_queries import TraceFilter
from tests.conftest import CASES_118, CASES_1165, SAMPLE_118, SAMPLE_1165

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"


@pytest.fixture
def demo(store: TraceStore) -> TraceStore:
    load(store, open_source(DEMO))
    return store


@pytest.fixture
def history(store: TraceStore) -> TraceStore:
    """Everything the real fixture stores hold, in one trace store: several runs of the same agents."""
    for source in (DEMO, CASES_118, CASES_1165 / "storage", SAMPLE_118, SAMPLE_1165 / "storage"):
        load(store, open_source(source))
    return store


@pytest.mark.parametrize("pattern, chains", [
    ("coordinator -> tester", ["coordinator -> tester"]),
    ("build -> * -> tester", ["build -> coordinator -> tester"]),
    ("coordinator -> * -> refactoring", ["coordinator -> tester -> refactoring"]),
    ("build -> ** -> refactoring", ["build -> coordinator -> tester -> refactoring"]),
    ("build -> ** -> explore", ["build -> explore", "build -> explore"]),
    ("TESTER -> Refactoring", ["tester -> refactoring"]),
    ("*[error]", ["general"]),
    ("general[completed]", []),
    ("*[>60s]", ["build", "general"]),
    ("coder[<3s]", ["coder"]),  # Implement token bucket, 2.1 s
    ("planner -> coder[>=3s]", ["planner -> coder", "planner -> coder"]),
    ("reviewer -> *", []),
])
def test_pattern_search(demo: TraceStore, pattern: str, chains: list[str]) -> None:
    assert sorted(m.agents for m in a.find_pattern(demo, pattern)) == sorted(chains)


def test_pattern_matches_point_at_their_sessions(demo: TraceStore) -> None:
    (m,) = a.find_pattern(demo, "tester -> refactoring")
    assert m.chain[0].session_id != m.chain[1].session_id  # the call was made in the tester's own session
    assert m.chain[1].parent_trace_id == m.chain[0].trace_id
    assert m.session_id == m.chain[0].root_session_id


@pytest.mark.parametrize("bad, column, words", [
    ("tester ->", 10, "expected an agent name"),
    ("tester -> -> coder", 11, "expected an agent name"),
    ("tester[fast]", 8, "unknown condition 'fast'"),
    ("tester[>soon]", 9, "expected a duration"),
    ("tester coder", 8, "expected -> between steps"),
    ("tester[error", 13, "missing ]"),
    ("**", 1, "at least one agent"),
    ("", 1, "empty pattern"),
])
def test_invalid_patterns_point_at_the_error(bad: str, column: int, words: str) -> None:
    with pytest.raises(PatternError) as err:
        parse(bad)
    assert err.value.column + 1 == column and words in str(err.value)
    assert str(err.value).splitlines()[-1] == "  " + " " * (column - 1) + "^"


def test_metrics_per_agent(demo: TraceStore) -> None:
    metrics = {m.agent: m for m in a.agent_metrics(a.forest(demo))}
    coder = metrics["coder"]
    assert coder.invocations == 3 and coder.errors == 0 and coder.median_ms is not None
    assert metrics["general"].error_rate == 1.0
    tester = metrics["tester"]  # the tester delegated to refactoring: its inclusive totals are larger
    assert tester.total_tokens_in == tester.tokens_in + metrics["refactoring"].tokens_in
    assert a.percentile([5, 1, 3, 2, 4], 95) == 5 and a.percentile([], 50) is None
    assert a.percentile(list(range(1, 101)), 95) == 95


def test_critical_path_and_bottlenecks(demo: TraceStore) -> None:
    roots = {r.trace.description: r for r in a.forest(demo)}
    path = a.critical_path(roots["Rate limiting for the API client"])
    assert [t.subagent_type for t in path] == ["build", "coordinator", "reviewer"]  # the review finished last
    assert [t.subagent_type for t in a.critical_path(roots["SQLAlchemy 2.0 upgrade"])] == ["build", "planner", "coder"]
    slowest = a.bottlenecks(list(roots.values()), limit=2)
    assert slowest[0].trace.description == "Reproduce on acme-large" and 0.8 < slowest[0].share < 1


def test_own_time_leaves_out_the_time_spent_waiting_on_delegations(demo: TraceStore) -> None:
    tester = next(n for r in a.forest(demo) for n in r.walk() if n.trace.subagent_type == "tester")
    refactoring = tester.children[0].trace
    assert a.own_ms(tester) == tester.trace.duration_ms - refactoring.duration_ms


def test_anomalies_from_the_users_own_history(history: TraceStore) -> None:
    found = a.find_anomalies(a.forest(history))
    flagged = {(x.trace.description, x.metric) for x in found}
    # the 400 KB prompt made two reviewer calls (1.18 and 1.1.65 runs) far costlier than a reviewer's usual
    assert ("Huge context", "tokens") in flagged or ("Huge context", "cost") in flagged
    huge = next(x for x in found if x.trace.description == "Huge context")
    assert huge.ratio > 10 and huge.samples >= 5
    assert huge.reason.startswith(f"{huge.ratio:.1f}× the median") and "reviewer" in huge.reason
    assert all(x.ratio >= a.MIN_RATIO for x in found)


def test_export_json(demo: TraceStore) -> None:
    sid = next(r.trace.session_id for r in a.forest(demo) if r.trace.description == "Rate limiting for the API client")
    data = to_json(demo, sid)
    assert data["session"]["delegation_count"] == 5 and len(data["traces"]) == 6
    json.dumps(data)
    assert {t["subagent_type"] for t in data["traces"]} == {"build", "coordinator", "coder", "tester", "refactoring",
                                                            "reviewer"}


def test_export_otlp_a_span_per_agent_call_and_step_with_parent_links(demo: TraceStore) -> None:
    roots = {r.trace.description: r for r in a.forest(demo)}
    export = to_otlp(demo, roots["Nightly export fails on large accounts"].trace.session_id)
    spans = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert sum(s["name"].startswith("invoke_agent ") for s in spans) == 4
    assert {s["name"].split()[0] for s in spans} <= {"invoke_agent", "chat", "execute_tool"}
    ids = {s["spanId"] for s in spans}
    assert len({s["traceId"] for s in spans}) == 1 and len(spans[0]["traceId"]) == 32
    assert all(len(s["spanId"]) == 16 and s["kind"] in (1, 3) for s in spans)  # INTERNAL; CLIENT for LLM calls
    root = [s for s in spans if "parentSpanId" not in s]
    assert len(root) == 1 and all(s["parentSpanId"] in ids for s in spans if s is not root[0])
    failed = next(s for s in spans if s["status"]["code"] == 2)
    assert "Subagent failed" in failed["status"]["message"]
    attrs = {x["key"]: x["value"] for x in failed["attributes"]}
    assert attrs["gen_ai.agent.name"] == {"stringValue": "general"}
    assert attrs["openinference.span.kind"] == {"stringValue": "AGENT"}
    assert int(failed["endTimeUnixNano"]) > int(failed["startTimeUnixNano"]) > 1_700_000_000_000_000_000
    ok = next(s for s in spans if s["name"].startswith("invoke_agent explore"))
    attrs = {x["key"]: x["value"] for x in ok["attributes"]}
    assert int(attrs["gen_ai.usage.input_tokens"]["intValue"]) > 0 and "input.value" in attrs


def test_cli_find_anomalies_metrics_export(history: TraceStore, tmp_path: Path, capsys) -> None:
    db = str(history.path)
    history.close()
    assert main(["find", "coordinator -> * -> refactoring", "--db", db]) == 0
    assert "1 chains in 1 sessions match" in capsys.readouterr().out
    assert main(["find", "tester[", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "missing ] to close the conditions at column 8" in err and err.rstrip().endswith("^")
    assert main(["anomalies", "--db", db, "--json"]) == 0
    assert any(x["agent"] == "reviewer" for x in json.loads(capsys.readouterr().out))
    assert main(["metrics", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "Slowest delegations:" in out and "reviewer" in out
    sessions = json.loads((main(["sessions", "--db", db, "--json"]), capsys.readouterr().out)[1])
    sid = next(s["session_id"] for s in sessions if s["title"] == "Rate limiting for the API client")
    assert main(["metrics", sid, "--db", db]) == 0
    assert "Critical path: build" in capsys.readouterr().out
    out_file = tmp_path / "otlp.json"
    assert main(["export", sid[:14], "--format", "otlp", "-o", str(out_file), "--db", db]) == 0
    spans = json.loads(out_file.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert sum(s["name"].startswith("invoke_agent ") for s in spans) == 6


def test_filters_apply_to_analysis(demo: TraceStore) -> None:
    only_billing = [r for r in a.forest(demo, TraceFilter(agent="planner"))]
    assert [r.trace.description for r in only_billing] == ["SQLAlchemy 2.0 upgrade"]
