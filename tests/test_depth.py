"""Data nested deeper than Python's recursion limit: a tool call's JSON input 1,500 levels deep (SQLite keeps
it), read, flagged, shown, exported and pushed like any other; and `analytics.jsontext`, which parses, writes
and walks JSON at any depth, against Python's own json."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import format as fmt
from analytics import jsontext
from analytics.cli import main
from analytics.db import TraceStore
from analytics.queries import trace_queries as q
from tests.conftest import STEPS_118, copy_store

DEPTH = 1500


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text of lists nested `depth` deep around `leaf`."""
    return "[" * depth + leaf + "]" * depth


def deep_store(tmp_path: Path, depth: int = DEPTH) -> Path:
    """A copy of the steps store whose nine identical grep calls (the runaway grep) each got a key nested
    `depth` deep in their input, as a model could write it."""
    oc = copy_store(STEPS_118, tmp_path / "oc")
    conn = sqlite3.connect(oc / "opencode.db")
    sid = conn.execute("SELECT id FROM session WHERE title = 'Runaway grep (@coder subagent)'").fetchone()[0]
    rows = conn.execute("SELECT id, data FROM part WHERE session_id = ? AND data LIKE '%\"tool\":\"grep\"%'",
                        [sid]).fetchall()
    for pid, data in rows:
        assert '"input":{' in data
        conn.execute("UPDATE part SET data = ? WHERE id = ?",
                     [data.replace('"input":{', '"input":{"deep":' + nested(depth) + ",", 1), pid])
    conn.commit()
    conn.close()
    assert len(rows) == 9
    return oc


def test_a_deeply_nested_input_is_read_flagged_shown_and_exported(tmp_path: Path, capsys) -> None:
    oc = deep_store(tmp_path)
    db = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(oc), "--db", db]) == 0
    assert "Skipped" not in capsys.readouterr().out
    assert main(["anomalies", "--db", db]) == 0
    assert "grep 'FIXME' called 9 times with the same input" in capsys.readouterr().out
    with TraceStore(db, read_only=True) as store:
        (root,) = [r.session_id for r in q.get_sessions_with_traces(store) if r.title == "Runaway grep"]
        trace = next(t for t in q.get_full_traces(store, root) if t.kind == "delegation")
        grep = [s for s in q.get_spans(store, trace.trace_id) if s.name == "grep"]
    assert len(grep) == 9 and all(s.input.count("[") >= DEPTH for s in grep)
    assert fmt.tool_argument(grep[0].input) == "FIXME"
    assert main(["steps", trace.trace_id, "--db", db]) == 0
    assert main(["export", root, "--db", db, "--format", "otlp"]) == 0
    assert nested(DEPTH) in capsys.readouterr().out  # in the input.value of the grep calls
    assert main(["export", root, "--db", db, "--format", "json"]) == 0


def test_a_tool_argument_nested_deep_is_shown_without_recursion() -> None:
    deep_list = nested(DEPTH)
    assert fmt.tool_argument(deep_list, 20) == "[[[[[[[[[[[[[[[[[[[…"
    assert fmt.tool_argument('{"n": ' + deep_list + "}", 20).startswith('{"n": [[[[')


@pytest.mark.gui
def test_the_window_stays_whole_with_a_deeply_nested_input(qtbot, tmp_path: Path) -> None:
    """Every refresh ended in "Unexpected error: maximum recursion depth" and the tree stayed empty."""
    from dashboard.widgets.detail_pane import pretty_json
    from tests.test_dashboard import open_window

    oc = deep_store(tmp_path)
    window, section = open_window(qtbot, oc, tmp_path / "t.duckdb")
    assert "Unexpected error" not in window.statusBar().currentMessage()
    assert len(section.tree.items) > 10
    assert any("grep 'FIXME' called 9 times" in reason for reason in section.tree.marks.flags.values())
    text = '{"deep":' + nested(DEPTH) + "}"
    assert pretty_json(text) == text  # too deep to indent: shown as it is
    window.close()


# -- analytics.jsontext ---------------------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
JSON = st.recursive(SCALARS,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=30)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(JSON)
def test_jsontext_parses_and_writes_as_json_does(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsontext.dumps(value) == text
    assert jsontext._dumps_deep(value, (",", ":"), False) == text
    assert jsontext.loads(text) == value and jsontext._loads_deep(text) == value
    spaced = json.dumps(value, indent=1)  # whitespace between the tokens
    assert jsontext._loads_deep(spaced) == value


@pytest.mark.parametrize("depth", [DEPTH, 100_000])
def test_jsontext_takes_any_depth(depth: int) -> None:
    text = nested(depth, '{"a":[1,"x",null,true,{}],"b":{"c":[]}}')
    with pytest.raises(RecursionError):
        json.loads(text)
    value = jsontext.loads(text)
    assert jsontext.dumps(value) == text
    doubled = jsontext.rebuild(value, lambda v: v * 2 if isinstance(v, int | str) else v)
    assert jsontext.dumps(doubled) == nested(depth, '{"a":[2,"xx",null,2,{}],"b":{"c":[]}}')


@pytest.mark.parametrize("text", ["[1,2", "[1 2]", '{"a" 1}', "{1:2}", "[1]x", "", "[", "nope"])
def test_jsontext_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        jsontext._loads_deep(text)


def test_jsontext_takes_non_finite_numbers_as_json_does() -> None:
    value = jsontext._loads_deep(nested(3, "NaN"))
    assert math.isnan(value[0][0][0])
    with pytest.raises(ValueError):
        jsontext.dumps(value)
    assert jsontext.dumps(value, allow_nan=True) == nested(3, "NaN")


# -- a delegation chain deeper than recursion goes ----------------------------------------------------------------

CHAIN = 3000


def chain_store(path: Path, depth: int = CHAIN) -> str:
    """A trace store holding one session whose delegations nest `depth` deep (each call delegates to the next),
    written as a load writes it: hostile data no real run makes, but nothing in OpenCode's storage forbids."""
    from analytics.models import AgentTrace, SessionInfo

    t0 = 1_764_000_000_000
    traces = [AgentTrace("ses_root", "session", "ses_root", "ses_root", None, None, None, "build", None, "go",
                         "done", "completed", t0, t0 + 10 * depth + 10, 10 * depth + 10, 10, 5, cost_usd=0.01)]
    for i in range(depth):
        parent = traces[-1]
        traces.append(AgentTrace(f"call_{i}", "delegation", parent.child_session_id or "ses_root", "ses_root",
                                 f"ses_{i}", parent.trace_id, parent.subagent_type, "coder" if i % 2 else "tester",
                                 f"step {i}", f"do {i}", f"did {i}", "completed", t0 + i, t0 + 10 * depth - i,
                                 10 * depth - 2 * i, 10, 5, cost_usd=0.01, depth=i + 1))
    sessions = [SessionInfo("ses_root", "ses_root", None, "Deep chain", "/tmp", None, "build", "1", t0, t0, "x")]
    sessions += [SessionInfo(f"ses_{i}", "ses_root", "ses_root" if i == 0 else f"ses_{i - 1}", f"s{i}", "/tmp",
                             None, "coder", "1", t0 + i, t0 + i, "x") for i in range(depth)]
    with TraceStore(path) as store:
        store.replace(roots={"ses_root"}, traces=traces, sessions=sessions, fingerprints={}, deleted=(),
                      full=False, source_key="hostile", stamp=None)
    return str(path)


def test_a_delegation_chain_deeper_than_recursion_goes(tmp_path: Path, capsys) -> None:
    db = chain_store(tmp_path / "t.duckdb")
    deepest = f"call_{CHAIN - 1}"
    for argv in (["tree", "ses_root"], ["timeline", "ses_root"], ["show", deepest], ["metrics", "ses_root"],
                 ["find", "build -> ** -> coder"], ["anomalies"], ["compare", "ses_root", "ses_root"],
                 ["compare", "call_0", "call_1"], ["export", "ses_root"], ["export", "ses_root", "--format", "otlp"],
                 ["sessions"]):
        assert main([*argv, "--db", db]) == 0, argv
        capsys.readouterr()
    assert main(["tree", "ses_root", "--db", db]) == 0
    out = capsys.readouterr().out
    assert f"{CHAIN} delegations" in out and out.count("└─ ") == CHAIN
    with TraceStore(db, read_only=True) as store:
        (root,) = q.get_trace_tree(store, "ses_root")
        assert [n.trace.trace_id for n in root.walk()] == ["ses_root", *(f"call_{i}" for i in range(CHAIN))]
        assert root.descendants == CHAIN and root.total_tokens_in == 10 * (CHAIN + 1)
        assert q.get_session_summary(store, "ses_root").max_depth == CHAIN


@pytest.mark.gui
def test_the_window_shows_a_delegation_chain_deeper_than_recursion_goes(qtbot, tmp_path: Path) -> None:
    from analytics.settings import Settings
    from dashboard.app import Choice, build

    db = chain_store(tmp_path / "t.duckdb")
    window, _service = build(Choice(None, Path(db), "deep chain"), Settings(refresh_seconds=3600))
    qtbot.addWidget(window)
    with qtbot.wait_signal(window.tracing.ready, timeout=60_000):
        window.show()
    assert "Unexpected error" not in window.statusBar().currentMessage()
    assert len(window.tracing.tree.items) == CHAIN + 1
    with qtbot.wait_signal(window.service.compared, timeout=60_000):
        window.compare_runs("call_0", "call_1")
    window.close()
