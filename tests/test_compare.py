"""Comparing two runs (analytics/queries/compare.py and `agent-traces compare`) on real stores.

`compare-1.18.33` holds the same task run three times by the real OpenCode 1.18.33 (tools/make_compare_store.sh):
a first run, a run after a prompt change with another shape (a coder "Test" call added, the reviewer gone,
grep three times instead of once), and a run killed while its coder still runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.queries import compare as cmp
from analytics.queries import trace_queries as q
from analytics.word_diff import ADDED, DIFF_CHARS, word_diff
from dashboard.cli import main
from tests.conftest import CASES_118, COMPARE_118, STEPS_118

FIELDS = ("duration_ms", "tokens_in", "tokens_out", "cost_usd")


def _store(tmp_path: Path, source: Path) -> TraceStore:
    store = TraceStore(tmp_path / f"{source.name}.duckdb")
    load(store, open_source(source))
    return store


@pytest.fixture
def runs(tmp_path: Path):
    """The compare store, and its three root sessions oldest first: first run, changed run, killed run."""
    store = _store(tmp_path, COMPARE_118)
    sessions = sorted(q.get_sessions_with_traces(store), key=lambda s: s.created_at)
    yield store, [s.session_id for s in sessions]
    store.close()


def _by_id(store: TraceStore, *roots: str) -> dict[str, q.TraceSummary]:
    return {t.trace_id: t for r in roots for t in q.get_traces_by_session(store, r)}


def test_a_run_against_itself_pairs_every_call_with_no_difference(runs) -> None:
    store, (first, _changed, _killed) = runs
    c = cmp.compare(store, first, first)
    traces = q.get_traces_by_session(store, first)
    assert len(c.pairs) == len(traces) == 4
    assert all(p.kind == "matched" and p.left.trace_id == p.right.trace_id for p in c.pairs)
    assert all(p.delta(name) == 0 for p in c.pairs for name in cmp.FIGURES)
    assert all(c.total_delta(name) == 0 for name in cmp.FIGURES)
    assert all(not p.tool_changes() for p in c.pairs)
    assert c.counts == {"matched": 4, "added": 0, "removed": 0}


def test_two_runs_of_a_different_shape(runs) -> None:
    store, (first, changed, _killed) = runs
    c = cmp.compare(store, first, changed)
    assert [(p.kind, p.depth, p.label) for p in c.pairs] == [
        ("matched", 0, "build"),
        ("matched", 1, "planner — Plan"),
        ("matched", 2, "coder — Code"),
        ("added", 2, "coder — Test"),
        ("removed", 1, "reviewer — Review"),
    ]
    traces = _by_id(store, first, changed)
    for p in c.pairs:
        for name in FIELDS:
            if p.kind == "matched":
                assert p.delta(name) == pytest.approx(getattr(traces[p.right.trace_id], name)
                                                      - getattr(traces[p.left.trace_id], name))
            else:
                assert p.delta(name) is None
    code = c.pairs[2]
    grep = next(ch for ch in code.tool_changes() if ch.tool == "grep")
    assert (grep.left.calls, grep.right.calls) == (1, 3)  # the changed prompt greps three times
    assert grep.text().startswith("grep: 1 → 3 calls")
    # the totals include every descendant: the trees' sums, right − left
    for name, attr in (("tokens_in", "total_tokens_in"), ("tokens_out", "total_tokens_out")):
        left, right = (getattr(q.get_trace_tree(store, s)[0], attr) for s in (first, changed))
        assert c.total_delta(name) == right - left
    assert c.right_total.tool_calls - c.left_total.tool_calls == 3
    assert c.counts == {"matched": 3, "added": 1, "removed": 1}


def test_the_other_way_round_swaps_added_and_removed(runs) -> None:
    store, (first, changed, _killed) = runs
    forth, back = cmp.compare(store, first, changed), cmp.compare(store, changed, first)
    assert back.counts == {"matched": 3, "added": 1, "removed": 1}
    assert {p.label: p.kind for p in back.pairs}["coder — Test"] == "removed"
    assert {p.label: p.kind for p in back.pairs}["reviewer — Review"] == "added"
    assert back.total_delta("tokens_in") == -forth.total_delta("tokens_in")


def test_a_side_still_running(runs) -> None:
    store, (first, _changed, killed) = runs
    c = cmp.compare(store, first, killed)
    assert [p.kind for p in c.pairs] == ["matched", "matched", "matched", "removed"]
    assert all(p.right.status == "running" for p in c.pairs[:3])
    assert all(p.delta("duration_ms") is None for p in c.pairs)  # no time to compare while it runs
    assert c.right_total.duration_ms is None and c.total_delta("duration_ms") is None
    assert c.pairs[1].delta("tokens_in") == c.pairs[1].right.tokens_in - c.pairs[1].left.tokens_in
    assert c.right_total.status == "running"


def test_a_resumed_subagent_against_its_first_run(tmp_path: Path) -> None:
    """Write v1 and Write v2 are two calls of one coder session, the second resuming it (task_id)."""
    store = _store(tmp_path, CASES_118)
    calls = [t for t in q.get_traces(store, [r.trace_id for r in q.search_traces(store, "Write v")])
             if t.description in ("Write v1", "Write v2")]
    v1, v2 = sorted(calls, key=lambda t: t.description)
    assert v1.child_session_id == v2.child_session_id
    c = cmp.compare(store, v1.trace_id, v2.trace_id)
    assert len(c.pairs) == 1 and c.pairs[0].label == "coder — Write v1 ⇄ coder — Write v2"
    for name in FIELDS:
        assert c.pairs[0].delta(name) == pytest.approx(getattr(v2, name) - getattr(v1, name))
    # each call is measured on its own turn of the shared session
    llm, tools = cmp.tool_use(store, [v1.trace_id, v2.trace_id])
    assert c.left_total.llm_calls == llm[v1.trace_id] and c.right_total.llm_calls == llm[v2.trace_id]
    # a child session id names the delegation that opened it
    assert cmp.resolve_side(store, v1.child_session_id) == v1.trace_id
    store.close()


def test_deep_nesting_keeps_each_level(tmp_path: Path) -> None:
    store = _store(tmp_path, STEPS_118)
    nested = next(s for s in q.get_sessions_with_traces(store) if s.title == "Nested tools")
    c = cmp.compare(store, nested.session_id, nested.session_id)
    assert [p.depth for p in c.pairs] == [p.left.depth for p in c.pairs] == [0, 1, 2]
    # comparing the planner delegation alone: its subtree, one level shallower
    planner = c.pairs[1].left.trace_id
    sub = cmp.compare(store, planner, planner)
    assert [p.depth for p in sub.pairs] == [0, 1]
    assert sub.left_total.tokens_in == c.pairs[1].left.tokens_in + c.pairs[2].left.tokens_in
    store.close()


def test_word_diff_of_real_prompts(runs) -> None:
    store, (first, changed, _killed) = runs
    a, b = (q.get_trace_details(store, s).trace.prompt_input for s in (first, changed))
    d = word_diff(a, b)
    assert "".join(t for _k, t in d.left) == a and "".join(t for _k, t in d.right) == b
    added = [t for k, t in d.right if k == ADDED]
    assert ", with tests" in added and not any(k == ADDED for k, _t in d.left)
    assert word_diff(a, a).identical


def test_word_diff_of_a_long_text_is_bounded(tmp_path: Path) -> None:
    """The 400 KB prompt of the cases store, and 10 MB made of it: only the first DIFF_CHARS are diffed."""
    store = _store(tmp_path, CASES_118)
    big = max((q.get_trace_details(store, t.trace_id).trace for t in q.get_traces_by_session(
        store, next(s.session_id for s in q.get_sessions_with_traces(store) if s.title == "Scripted session 31"))),
        key=lambda t: len(t.prompt_input)).prompt_input
    assert len(big) > 300_000
    changed = big.replace("tester", "TESTER", 3)[:-1000]
    d = word_diff(big, changed)
    assert d.left_cut == len(big) - DIFF_CHARS and d.right_cut == len(changed) - DIFF_CHARS
    assert "".join(t for _k, t in d.left) == big[:DIFF_CHARS]
    huge = big * 28  # about 10 MB
    d = word_diff(huge, huge[::-1])
    assert sum(len(t) for _k, t in d.right) == DIFF_CHARS and d.right_cut == len(huge) - DIFF_CHARS
    store.close()


def test_cli_compare_json_and_human(runs, capsys: pytest.CaptureFixture) -> None:
    store, (first, changed, killed) = runs
    db = str(store.path)
    store.close()
    capsys.readouterr()
    assert main(["compare", first[:12], changed, "--db", db, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["left"] == first and out["right"] == changed
    assert out["pairs"][0]["left"] == first and out["pairs"][0]["right"] == changed  # the roots first
    assert [(p["left"] is None, p["right"] is None) for p in out["pairs"]] == [
        (False, False), (False, False), (False, False), (True, False), (False, True)]
    assert set(out["pairs"][0]["delta"]) == set(FIELDS)
    assert out["pairs"][3]["delta"] == dict.fromkeys(FIELDS)
    assert out["totals"]["added"] == 1 and out["totals"]["removed"] == 1
    with TraceStore(db, read_only=True) as s:
        roots = [q.get_trace_tree(s, x)[0] for x in (first, changed)]
    assert out["totals"]["delta"]["tokens_in"] == roots[1].total_tokens_in - roots[0].total_tokens_in

    assert main(["compare", first, first, "--db", db, "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert all(v == 0 for p in same["pairs"] for v in p["delta"].values())

    assert main(["compare", first, killed, "--db", db]) == 0
    text = capsys.readouterr().out
    assert "calls: 3 matched, 0 added on the right, 1 removed" in text
    assert "running" in text and "− " in text and "reviewer — Review" in text

    assert main(["compare", first, changed, "--db", db]) == 0
    text = capsys.readouterr().out
    assert "+     coder — Test" in text and "grep: 1 → 3 calls" in text

    assert main(["compare", first, "nope", "--db", db]) == 2
    assert "No trace or session matches 'nope'" in capsys.readouterr().err


def _reworded(tmp_path: Path) -> tuple[TraceStore, str, str]:
    """The compare store with the changed run's coder call given a reworded description ("Code" became "Write
    the code"), as a prompt change would make it: the first and the changed run."""
    import sqlite3

    from tests.conftest import copy_store

    oc = copy_store(COMPARE_118, tmp_path / "oc")
    conn = sqlite3.connect(oc / "opencode.db")
    (data,) = conn.execute("SELECT data FROM part WHERE id = 'prt_2339f7405001QQl2XH8SWbF30p'").fetchone()
    part = json.loads(data)
    part["state"]["input"]["description"] = part["state"]["title"] = "Write the code"
    conn.execute("UPDATE part SET data = ? WHERE id = 'prt_2339f7405001QQl2XH8SWbF30p'", [json.dumps(part)])
    conn.commit()
    conn.close()
    store = _store(tmp_path, oc)
    first, changed, _killed = sorted(q.get_sessions_with_traces(store), key=lambda s: s.created_at)
    return store, first.session_id, changed.session_id


def test_a_reworded_call_pairs_by_agent_and_position_and_says_the_change(tmp_path: Path, capsys) -> None:
    store, first, changed = _reworded(tmp_path)
    c = cmp.compare(store, first, changed)
    assert [(p.kind, p.depth, p.label) for p in c.pairs] == [
        ("matched", 0, "build"),
        ("matched", 1, "planner — Plan"),
        ("matched", 2, "coder — Code ⇄ coder — Write the code"),
        ("added", 2, "coder — Test"),
        ("removed", 1, "reviewer — Review"),
    ]
    assert c.pairs[2].description_change == ("Code", "Write the code")
    assert c.pairs[1].description_change is None and c.pairs[3].description_change is None
    assert next(ch for ch in c.pairs[2].tool_changes() if ch.tool == "grep").right.calls == 3
    db = str(store.path)
    store.close()
    assert main(["compare", first, changed, "--db", db]) == 0
    out = capsys.readouterr().out
    assert '    description: "Code" → "Write the code"' in out
    assert main(["compare", first, changed, "--db", db, "--json"]) == 0
    pairs = json.loads(capsys.readouterr().out)["pairs"]
    assert pairs[2]["description"] == {"left": "Code", "right": "Write the code"}
    assert pairs[1]["description"] is None


def _node(agent: str, description: str, n: int) -> q.TraceNode:
    return q.TraceNode(q.TraceSummary(f"t{n}", "delegation", "s", "s", None, None, None, agent, description,
                                      "completed", n, n + 1, 1, 0, 0, 0, 0, 0, 0.0, (), None, None, 1, "", None))


def _reference(left: list[q.TraceNode], right: list[q.TraceNode]) -> list[tuple[str | None, str | None]]:
    """The documented rule, written the slow way: by (agent, description) and order among equals; then, of the
    calls left over, the same agent's between the same two calls paired so far, in order; each right-only call
    after the row of the right call before it."""
    partner: dict[int, int] = {}
    used: set[int] = set()
    for i, a in enumerate(left):
        for j, b in enumerate(right):
            if j not in used and (a.trace.subagent_type, a.trace.description) == \
                    (b.trace.subagent_type, b.trace.description):
                partner[i] = j
                used.add(j)
                break
    paired_left, paired_right = set(partner), set(used)
    for i, a in enumerate(left):
        if i in paired_left:
            continue
        place = sum(1 for k in paired_left if k < i)
        for j, b in enumerate(right):
            if j not in used and sum(1 for k in paired_right if k < j) == place and \
                    a.trace.subagent_type == b.trace.subagent_type:
                partner[i] = j
                used.add(j)
                break
    rows: list[tuple[q.TraceNode | None, q.TraceNode | None]] = [(a, right[partner[i]] if i in partner else None)
                                                                  for i, a in enumerate(left)]
    at = 0
    for j, b in enumerate(right):
        if j in used:
            at = next(k for k, (_a, x) in enumerate(rows) if x is b) + 1
        else:
            rows.insert(at, (None, b))
            at += 1
    return [(a.trace.trace_id if a else None, b.trace.trace_id if b else None) for a, b in rows]


@pytest.mark.parametrize("seed", range(30))
def test_children_pair_as_the_rule_says(seed: int) -> None:
    import random

    r = random.Random(seed)
    left = [_node(r.choice("ab"), r.choice("xyz"), i) for i in range(r.randrange(8))]
    right = [_node(r.choice("ab"), r.choice("xyz"), 100 + i) for i in range(r.randrange(8))]
    got = [(a.trace.trace_id if a else None, b.trace.trace_id if b else None)
           for a, b in cmp.match_children(left, right)]
    assert got == _reference(left, right)


def test_matching_tens_of_thousands_of_siblings_ends(tmp_path: Path) -> None:
    """40,000 sibling delegations a side took 36.6 s to pair (the matching was quadratic)."""
    import threading

    left = [_node("coder", f"task {i}", i) for i in range(40_000)]
    right = [_node("coder", f"task {i}", 100_000 + i) for i in range(0, 80_000, 2)]  # every other one, and more
    box: list = []
    worker = threading.Thread(target=lambda: box.append(cmp.match_children(left, right)), daemon=True)
    worker.start()
    worker.join(20)
    assert box, "pairing 40,000 siblings did not end in 20 s"
    rows = box[0]
    # 20,000 by key; of the rest, only the last left call sits where the right's new calls do (after the last
    # pair): one more pair, by place
    assert sum(1 for a, b in rows if a is not None and b is not None) == 20_001
    assert len(rows) == 40_000 + 19_999 and rows[-1][1].trace.description == "task 79998"
