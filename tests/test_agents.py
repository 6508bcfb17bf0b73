"""OpenCode, Claude Code and Codex read together (issue 19), from their real histories where each agent keeps
its own: found with no configuration, recognised when given, loaded into one trace store each under its own
key, told apart by a `source` column, and every command of the CLI on their rows; an LLM call of a model with no
price (Codex's fixtures run `mock-model`) has an unknown cost, never $0."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.errors import SourceError
from analytics.models import CLAUDE_CODE, CODEX, LLM, OPENCODE
from analytics.queries import trace_queries as q
from analytics.sources import Sources, discover, kind_of, nothing_found, open_paths
from dashboard.cli import main
from tests.agents_support import CLAUDE_332, CODEX_171, case_root, claude_projects, codex_sessions, three_histories
from tests.conftest import CASES_118, SAMPLE_1165, copy_store, tree_digest

KINDS = [OPENCODE, CLAUDE_CODE, CODEX]


@pytest.fixture
def home() -> Path:
    return Path(os.environ["HOME"])


@pytest.fixture
def histories(home: Path) -> dict[str, Path]:
    return three_histories(home)


@pytest.fixture
def db(tmp_path: Path, histories: dict[str, Path], capsys: pytest.CaptureFixture) -> str:
    """A trace store loaded by `agent-traces load` with no --source: every history found."""
    path = str(tmp_path / "t.duckdb")
    assert main(["load", "--db", path]) == 0
    capsys.readouterr()
    return path


def _json(capsys: pytest.CaptureFixture, argv: list[str]) -> object:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _out(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _traces(db: str) -> list:
    with TraceStore(db, read_only=True) as store:
        roots = [s.session_id for s in q.get_sessions_with_traces(store)]
        return q.get_full_trees(store, roots)[0]


# -- finding and recognising the histories -------------------------------------------------------------------


def test_nothing_found_is_one_sentence_naming_the_three_places(home: Path) -> None:
    found = discover()
    assert not found and found.problems == []
    sentence = nothing_found()
    assert sentence.startswith("No agent history found (OpenCode at ")
    assert str(home / ".claude" / "projects") in sentence and str(home / ".codex" / "sessions") in sentence
    assert "(Codex turned off in the settings)" in nothing_found(["codex"])


def test_the_three_histories_are_found_where_each_agent_keeps_them(home: Path, histories: dict[str, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    found = discover()
    assert found.kinds == KINDS and found.problems == []
    assert [f.location for f in found] == [histories[OPENCODE], histories[CLAUDE_CODE], histories[CODEX]]
    assert discover(["codex", "opencode"]).kinds == [CLAUDE_CODE]  # sources_off
    # the agents' own variables are honoured
    moved = home / "elsewhere"
    shutil.move(home / ".claude", moved / "claude")
    shutil.move(home / ".codex", moved / "codex")
    assert discover().kinds == [OPENCODE]  # gone from the usual places: simply absent
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(moved / "claude"))
    monkeypatch.setenv("CODEX_HOME", str(moved / "codex"))
    assert [f.location for f in discover()][1:] == [moved / "claude" / "projects", moved / "codex" / "sessions"]
    # one that is there and cannot be read is a sentence; the others are read all the same
    (histories[OPENCODE] / "opencode.db").write_bytes(b"not a database at all" * 100)
    broken = discover()
    assert broken.kinds == [CLAUDE_CODE, CODEX] and len(broken.problems) == 1


def test_a_source_path_is_recognised_whatever_the_agent(tmp_path: Path, histories: dict[str, Path],
                                                        home: Path) -> None:
    codex_day = next(histories[CODEX].glob("*/*/*"))
    for path, kind in ((histories[OPENCODE], OPENCODE), (histories[OPENCODE] / "opencode.db", OPENCODE),
                       (copy_store(SAMPLE_1165, tmp_path / "old") / "storage", OPENCODE),
                       (home / ".claude", CLAUDE_CODE), (histories[CLAUDE_CODE], CLAUDE_CODE),
                       (home / ".codex", CODEX), (histories[CODEX], CODEX), (codex_day, CODEX),
                       (codex_day.parent.parent, CODEX)):
        assert kind_of(path) == kind, path
    given = open_paths([home / ".codex", home / ".claude", histories[OPENCODE] / "opencode.db"])
    assert given.kinds == [CODEX, CLAUDE_CODE, OPENCODE]
    assert given.found[0].location == histories[CODEX]  # a CODEX_HOME means its sessions folder
    # what it cannot be is one sentence each
    project = next(histories[CLAUDE_CODE].iterdir())
    for path, words in ((project, "looks like one Claude Code project folder"),
                        (next(project.glob("*.jsonl")), "is one session file"),
                        (tmp_path / "missing", "There is no file or folder at"),
                        (tmp_path, "holds no history agent-traces can read")):
        with pytest.raises(SourceError, match=words):
            kind_of(path)


# -- the command line on the three together -------------------------------------------------------------------


def test_load_with_no_source_reads_the_three_into_one_store(tmp_path: Path, histories: dict[str, Path],
                                                            capsys: pytest.CaptureFixture) -> None:
    before = {k: tree_digest(p) for k, p in histories.items()}
    listing = {k: sorted(p.rglob("*")) for k, p in histories.items()}
    db = str(tmp_path / "t.duckdb")
    out = _out(capsys, ["load", "--db", db]).splitlines()
    assert [line.split(" ", 2)[1] for line in out if line.startswith("Read ")] == ["OpenCode", "Claude", "Codex"]
    assert "Cost unknown for 68 LLM calls read: no price in genai-prices for mock-model." in out
    report = _json(capsys, ["load", "--db", db])
    assert [r["kind"] for r in report["sources"]] == KINDS and report["problems"] == []
    assert report["unchanged"] is False  # the JSON-lines histories have no whole-folder stamp: looked at again
    assert all(r["sessions_changed"] == 0 for r in report["sources"])  # ...and nothing had changed
    with TraceStore(db, read_only=True) as store:
        keys = dict(store.conn.execute("SELECT source, count(*) FROM source_sessions GROUP BY ALL").fetchall())
        assert keys == {str(histories[OPENCODE]): 13, str(histories[CLAUDE_CODE]): 18, str(histories[CODEX]): 25}
        by_source = dict(store.conn.execute("SELECT source, count(*) FROM sessions GROUP BY ALL").fetchall())
        assert by_source == {OPENCODE: 13, CLAUDE_CODE: 18, CODEX: 25}
        assert q.sources(store) == [CLAUDE_CODE, CODEX, OPENCODE]
    # nothing written beside the histories, not a byte changed
    assert {k: tree_digest(p) for k, p in histories.items()} == before
    assert {k: sorted(p.rglob("*")) for k, p in histories.items()} == listing


def test_a_history_turned_off_in_the_settings_is_not_read(tmp_path: Path, histories: dict[str, Path],
                                                          capsys: pytest.CaptureFixture) -> None:
    settings = Path(os.environ["XDG_CONFIG_HOME"]) / "agent-traces" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"sources_off": ["codex", "opencode"]}))
    report = _json(capsys, ["load", "--db", str(tmp_path / "t.duckdb")])
    assert [r["kind"] for r in report["sources"]] == [CLAUDE_CODE]
    settings.write_text(json.dumps({"sources_off": "codex"}))  # not a list: said once, and its default used
    assert main(["load", "--db", str(tmp_path / "t.duckdb")]) == 0
    assert "sources_off must be a list of the sources not to read" in capsys.readouterr().err


def test_source_is_repeatable_and_reads_only_what_it_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "t.duckdb")
    claude = claude_projects(tmp_path / "p", ("nested",))
    report = _json(capsys, ["load", "--db", db, "--source", str(claude), "--source",
                            str(CASES_118 / "opencode.db")])
    assert [r["kind"] for r in report["sources"]] == [CLAUDE_CODE, OPENCODE]
    assert report["traces_written"] == 3 + 14


def test_sessions_tree_and_show_say_which_agent_ran_it(db: str, capsys: pytest.CaptureFixture) -> None:
    rows = _json(capsys, ["sessions", "--db", db])
    assert {r["source"] for r in rows} == set(KINDS)
    versions = {r["source"]: r["version"] for r in rows}
    assert versions[CLAUDE_CODE] == "2.1.332" and versions[CODEX] == "0.171.0"
    text = _out(capsys, ["sessions", "--db", db])
    assert text.splitlines()[0].split()[:2] == ["SESSION", "AGENT"]
    assert "Claude Code 2.1.332" in text and "Codex 0.171.0" in text and f"OpenCode {versions[OPENCODE]}" in text
    claude = next(r for r in rows if r["source"] == CLAUDE_CODE
                  and r["title"].startswith("Go. {{agent general-purpose|Ou"))
    tree = _out(capsys, ["tree", claude["session_id"], "--db", db]).splitlines()
    assert tree[0].endswith("(Claude Code 2.1.332)") and "└─ ✓ general-purpose — Outer" in tree[1]
    assert tree[2].startswith("   └─ ✓ general-purpose — Inner  [")
    show = _out(capsys, ["show", claude["session_id"], "--db", db])
    assert "Source       Claude Code 2.1.332" in show and "Agent        main" in show


def test_source_kind_filters_every_listing_command(db: str, capsys: pytest.CaptureFixture) -> None:
    for kind in KINDS:
        rows = _json(capsys, ["sessions", "--db", db, "--source-kind", kind])
        assert rows and {r["source"] for r in rows} == {kind}
    found = _json(capsys, ["search", "echo", "--db", db, "--source-kind", CODEX])
    assert found["total"] and {t["source"] for t in found["traces"]} == {CODEX}
    assert _json(capsys, ["search", "echo inner", "--db", db, "--source-kind", CLAUDE_CODE])["total"] == 0
    chains = _json(capsys, ["find", "* -> * -> *", "--db", db, "--source-kind", CODEX])
    assert len(chains) == 1 and chains[0]["agents"] == "codex -> default -> default"  # Codex's nested case
    deep = _json(capsys, ["find", "main -> * -> *", "--db", db])
    assert len(deep) == 1 and deep[0]["agents"] == "main -> general-purpose -> general-purpose"
    metrics = _json(capsys, ["metrics", "--db", db, "--source-kind", CLAUDE_CODE, "--tools"])
    assert {m["agent"] for m in metrics["agents"]} == {"main", "general-purpose"}
    assert {t["tool"] for t in metrics["tools"]} >= {"Bash"}
    odd = _json(capsys, ["anomalies", "--db", db, "--source-kind", CODEX, "--now", "2099-01-01T00:00"])
    assert odd and all(a["trace_id"].startswith("01a243ef") for a in odd)
    # a session id (or prefix) is looked for among one agent's sessions
    claude_root = next(r for r in _json(capsys, ["sessions", "--db", db, "--source-kind", CLAUDE_CODE]))
    assert main(["tree", claude_root["session_id"], "--db", db, "--source-kind", CLAUDE_CODE]) == 0
    assert main(["tree", claude_root["session_id"], "--db", db, "--source-kind", CODEX]) == 2
    assert "among the Codex sessions" in capsys.readouterr().err


def test_every_command_on_claude_code_and_codex_rows(db: str, capsys: pytest.CaptureFixture) -> None:
    """What the other commands show of the new rows means what it means for OpenCode's."""
    traces = _traces(db)
    nested = case_root(traces, "Nested.")  # Codex: codex -> default -> default, an `echo inner` at the bottom
    tree = [t for t in traces if t.root_session_id == nested.trace_id]
    assert len(tree) == 3 and max(t.depth for t in tree) == 2
    timeline = _out(capsys, ["timeline", nested.trace_id, "--db", db]).splitlines()
    assert [line.split()[0] for line in timeline] == ["codex", "default", "default"]
    inner = max(tree, key=lambda t: t.depth)
    steps = _json(capsys, ["steps", inner.trace_id, "--db", db])
    assert [s["name"] for s in steps if s["kind"] == "tool"] == ["exec_command"]
    assert all(s["cost_usd"] is None for s in steps if s["kind"] == LLM)  # mock-model has no price
    assert "echo inner" in _out(capsys, ["steps", inner.trace_id, "--db", db])
    found = _json(capsys, ["search", "echo inner", "--db", db])
    assert {t["trace_id"] for t in found["traces"]} >= {inner.trace_id}
    killed = {case_root(traces, "Killed.").trace_id, case_root(traces, "Go. {{agent general-purpose|Sl").trace_id}
    odd = _json(capsys, ["anomalies", "--db", db, "--now", "2099-01-01T00:00"])
    interrupted = {f["session_id"] for f in odd if f["finding"] == "interrupted"}
    assert killed <= interrupted  # the killed runs of both agents, left running
    exported = _json(capsys, ["export", nested.trace_id, "--db", db])
    assert {t["source"] for t in exported["traces"]} == {CODEX}
    metrics = _json(capsys, ["metrics", nested.trace_id, "--db", db])
    assert [t["subagent_type"] for t in next(iter(metrics["critical_paths"].values()))] == [
        "codex", "default", "default"]
    assert [a["agent"] for a in metrics["time"]] and all(a["total_ms"] >= 0 for a in metrics["time"])


# -- costs -----------------------------------------------------------------------------------------------


def test_a_cost_with_no_price_is_unknown_in_every_command(db: str, capsys: pytest.CaptureFixture) -> None:
    traces = _traces(db)
    spawn = case_root(traces, "Spawn shell.")
    assert spawn.cost_usd == 0.0 and spawn.unpriced_calls == 3  # its three model calls, none priced
    tree = _out(capsys, ["tree", spawn.trace_id, "--db", db])
    assert ", unknown]" in tree and tree.splitlines()[-1].endswith(" out, unknown, 1 delegations")
    assert "$0" not in tree
    show = _out(capsys, ["show", spawn.trace_id, "--db", db])
    assert "Cost         unknown (with delegations: unknown)" in show
    sessions = _json(capsys, ["sessions", "--db", db, "--source-kind", CODEX])
    row = next(r for r in sessions if r["session_id"] == spawn.trace_id)
    assert row["cost_usd"] == 0.0 and row["unpriced_calls"] == 5
    line = next(x for x in _out(capsys, ["sessions", "--db", db]).splitlines() if x.startswith(spawn.trace_id))
    assert " unknown " in line
    details = _json(capsys, ["show", spawn.trace_id, "--db", db])
    assert details["total_unpriced_calls"] == 5 and details["trace"]["unpriced_calls"] == 3
    # Claude Code's calls are priced: figures, nothing unknown
    claude_tree = _out(capsys, ["tree", case_root(traces, "Go. {{agent general-purpose|Lo").trace_id, "--db", db])
    assert "unknown" not in claude_tree and "$0.14" in claude_tree


def test_a_history_with_priced_and_unpriced_calls_says_both(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A subagent on a model the price table does not know yet (a newer Claude): its own cost is unknown, the
    session's own is known, and the whole tree's is the known part and how many calls it lacks."""
    projects = claude_projects(tmp_path / "projects", ("nested",))
    inner = next(p for p in projects.rglob("agent-*.jsonl") if b"echo deep" in p.read_bytes()
                 and b"Delegate." not in p.read_bytes())
    inner.write_bytes(inner.read_bytes().replace(b'"model":"claude-opus-5-5"', b'"model":"claude-opus-9"'))
    db = str(tmp_path / "t.duckdb")
    assert main(["load", "--source", str(projects), "--db", db]) == 0
    assert "no price in genai-prices for claude-opus-9" in capsys.readouterr().out
    traces = _traces(db)
    root = next(t for t in traces if t.kind == "session")
    tree = _out(capsys, ["tree", root.trace_id, "--db", db])
    assert "general-purpose — Inner  [" in tree and ", unknown]" in tree
    total = tree.splitlines()[-1]
    assert " + 2 calls unpriced, 2 delegations" in total and "total with delegations:" in total
    show = _out(capsys, ["show", root.trace_id, "--db", db])
    assert "(with delegations: $0." in show and " + 2 calls unpriced)" in show


def test_otlp_leaves_an_unknown_cost_out_and_names_the_agent(db: str, capsys: pytest.CaptureFixture) -> None:
    traces = _traces(db)

    def spans(session: str) -> tuple[str, list[dict]]:
        doc = _json(capsys, ["export", session, "--format", "otlp", "--db", db])
        rs = doc["resourceSpans"]
        service = {a["value"]["stringValue"] for r in rs for a in r["resource"]["attributes"]
                   if a["key"] == "service.name"}
        assert len(service) == 1
        return service.pop(), [{a["key"]: a["value"] for a in s["attributes"]} | {"name": s["name"]}
                               for r in rs for ss in r["scopeSpans"] for s in ss["spans"]]

    service, codex = spans(case_root(traces, "Spawn shell.").trace_id)
    assert service == "codex"
    assert not [s for s in codex if "agent_traces.cost_usd" in s]  # never sent as 0
    assert {s["name"].split()[0] for s in codex if "agent_traces.unpriced_calls" in s} == {"invoke_agent", "chat"}
    service, claude = spans(case_root(traces, "Go. {{agent general-purpose|Lo").trace_id)
    assert service == "claude-code"
    assert all("agent_traces.cost_usd" in s for s in claude if s["name"].startswith(("chat", "invoke_agent")))
    assert not [s for s in claude if "agent_traces.unpriced_calls" in s]
    service, opencode = spans(next(t for t in traces if t.source == OPENCODE and t.kind == "session").trace_id)
    assert service == "opencode" and not [s for s in opencode if "agent_traces.unpriced_calls" in s]


def test_compare_across_agents(db: str, capsys: pytest.CaptureFixture) -> None:
    """The same kind of task run by OpenCode and by Claude Code, or by Codex: aligned as any two runs are."""
    traces = _traces(db)
    opencode = next(t for t in traces if t.source == OPENCODE and t.kind == "session"
                    and any(c.parent_trace_id == t.trace_id for c in traces))
    claude = case_root(traces, "Go. {{agent general-purpose|Lo")
    codex = case_root(traces, "Spawn shell.")
    c = _json(capsys, ["compare", opencode.trace_id, claude.trace_id, "--db", db])
    assert c["pairs"][0]["kind"] == "matched" and c["pairs"][0]["left"] == opencode.trace_id
    assert isinstance(c["totals"]["delta"]["cost_usd"], float)  # both priced
    c = _json(capsys, ["compare", claude.trace_id, codex.trace_id, "--db", db])
    assert c["totals"]["right"]["unpriced_calls"] == 5 and c["totals"]["delta"]["cost_usd"] is None
    assert c["pairs"][0]["delta"]["cost_usd"] is None and c["pairs"][0]["delta"]["tokens_in"] is not None
    text = _out(capsys, ["compare", claude.trace_id, codex.trace_id, "--db", db])
    cost = next(line for line in text.splitlines() if line.strip().startswith("cost"))
    known = sum(t.cost_usd for t in traces if t.root_session_id == claude.trace_id)
    assert cost.split() == ["cost", f"${known:.2f}", "→", "unknown"]


# -- reopening, each with its agent's command ---------------------------------------------------------------


def test_open_uses_each_agents_own_command(db: str, capsys: pytest.CaptureFixture, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no terminal installed: named bare
    traces = _traces(db)

    def opened(trace_id: str) -> dict:
        return _json(capsys, ["open", trace_id, "--dry-run", "--terminal", "xterm", "--db", db])

    claude = case_root(traces, "Go. {{agent general-purpose|Ou")
    got = opened(claude.trace_id)
    assert shlex.split(got["shell_command"]) == ["cd", "--", "/tmp/cc-fixture/nested", "&&", "claude", "--resume",
                                                 claude.session_id]
    assert got["note"] is None and got["argv"][-1] == got["shell_command"]
    inner = next(t for t in traces if t.root_session_id == claude.trace_id and t.depth == 2)
    got = opened(inner.trace_id)  # a subagent cannot be resumed alone: its session is
    assert got["session_id"] == claude.session_id and "cannot be resumed on its own" in got["note"]
    text = _out(capsys, ["open", inner.trace_id, "--dry-run", "--terminal", "xterm", "--db", db])
    assert text.startswith("A Claude Code subagent cannot be resumed on its own")
    spawn = case_root(traces, "Spawn shell.")
    child = next(t for t in traces if t.parent_trace_id == spawn.trace_id)
    got = opened(child.trace_id)  # Codex resumes a spawned agent's own thread
    assert shlex.split(got["shell_command"])[-3:] == ["codex", "resume", child.child_session_id]
    assert got["source"] == CODEX and got["note"] is None


# -- one store, each history under its own key ----------------------------------------------------------------


def test_each_history_loads_and_deletes_under_its_own_key(tmp_path: Path, histories: dict[str, Path]) -> None:
    sources = discover()
    with TraceStore(tmp_path / "t.duckdb") as store:
        sources.load(store)
        counts = dict(store.conn.execute("SELECT source, count(*) FROM sessions GROUP BY ALL").fetchall())
        root = case_root(q.get_full_trees(store, [r.session_id for r in q.get_sessions_with_traces(store)])[0],
                         "Killed.")
        tree = q.get_trace_tree(store, root.trace_id)[0]
        threads = {root.session_id} | {n.trace.child_session_id for n in tree.walk()}
        gone = [p for p in histories[CODEX].rglob("*.jsonl") if any(p.name.endswith(f"{t}.jsonl") for t in threads)]
        assert len(gone) == 2
        for p in gone:  # the user deleted the killed run's rollouts
            p.unlink()
        reports = sources.load(store)  # the same readers: only what changed is read again
        assert [r.sessions_deleted for r in reports] == [0, 0, 2]
        after = dict(store.conn.execute("SELECT source, count(*) FROM sessions GROUP BY ALL").fetchall())
        assert after == {**counts, CODEX: counts[CODEX] - 2}


def test_sources_of_what_a_caller_holds() -> None:
    from analytics.claude_code import open_claude_source
    from analytics.codex import open_codex_source
    from analytics.opencode import open_source

    assert Sources.of(open_source(CASES_118)).kinds == [OPENCODE]
    assert Sources.of(open_claude_source(CLAUDE_332 / "nested" / "projects")).kinds == [CLAUDE_CODE]
    assert Sources.of(open_codex_source(CODEX_171)).kinds == [CODEX]
    assert Sources.of(None).kinds == [] and not Sources.of(None)
    assert codex_sessions  # (imported for the fixtures of other tests)


# -- push: one agent's sessions, and a pass that reads only what was added ------------------------------------


def test_push_selects_one_agent_and_each_pass_reads_only_what_was_added(tmp_path: Path,
                                                                         histories: dict[str, Path]) -> None:
    """What `push --source-kind claude-code --follow` does: its histories are opened once and kept, so each pass's
    load parses only the lines the agents appended since the last one."""
    from analytics.push import Endpoint, Pusher

    claude_file = next(p for p in histories[CLAUDE_CODE].rglob("*.jsonl") if "subagents" in p.parts
                       and b"echo deep" in p.read_bytes() and b"Delegate." not in p.read_bytes())
    codex_file = max(histories[CODEX].rglob("*.jsonl"), key=lambda p: p.stat().st_size)
    held = {}
    for path in (claude_file, codex_file):  # the agents have not written their last line yet
        data = path.read_bytes()
        cut = data.rstrip(b"\n").rfind(b"\n") + 1
        path.write_bytes(data[:cut])
        held[path] = data[cut:]
    sources = discover()
    pusher = Pusher(tmp_path / "t.duckdb", Endpoint("http://127.0.0.1:9"), sources, source_kind=CLAUDE_CODE)
    try:
        first = pusher.push(dry_run=True)
        assert [r.kind for r in first.loads] == KINDS
        assert first.sessions == 8 and first.to_send_sessions == 8  # Claude Code's root sessions only
        claude, codex = sources.found[1].source.readers[0], sources.found[2].source.readers[0]
        parsed, read = claude.stats.bytes_parsed, codex.bytes_read
        for path, line in held.items():
            with open(path, "ab") as f:
                f.write(line)
        second = pusher.push(dry_run=True)
        assert second.loads[1].sessions_changed == 1 and second.loads[2].sessions_changed == 1
        assert claude.stats.bytes_parsed - parsed == len(held[claude_file])
        # the line, and the 64 bytes before it and the file's first 128 (compared: an append, not a rewrite)
        assert codex.bytes_read - read == len(held[codex_file]) + 64 + 128
    finally:
        pusher.close()
