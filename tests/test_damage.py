"""Hand-made damage on copies of the real stores: the damaged session (or record) is skipped and counted, every
other trace loads exactly as it did from the undamaged store, and nothing aborts the whole load."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.errors import SourceError
from analytics.extraction import extract, extract_traces
from analytics.loader import load
from analytics.models import LoadReport
from analytics.opencode import open_source
from tests.conftest import CASES_118, SAMPLE_118, SAMPLE_1165, STEPS_118, STEPS_1165, copy_store

# The 1.18.33 sample's session trees (tests/fixtures/opencode-1.18.33): tree 9 nests three levels.
ROOT1 = "ses_dfe78d176ffeEpZvUCEOZHN903"
ROOT9 = "ses_dfe78a00dffeMviYdAavtyrhNf"
PLANNER = "ses_dfe788f91ffepbCkpANOSKNvjz"  # child of ROOT9
CODER = "ses_dfe788e4fffeUwuNyvd2ld9VC2"  # child of PLANNER
REVIEWER = "ses_dfe788ce0ffeNEVGGlSiWKGpD7"  # child of CODER
# The 1.1.65 JSON sample: the same shape.
JSON_ROOT13 = "ses_dfe7f96c4ffefzV5xzrasQwLPm"
JSON_PLANNER = "ses_dfe7f95d7ffem5POl223EvAZTC"
JSON_CODER = "ses_dfe7f958bffeRlmcTs4od5p1N8"


def _rows(store: TraceStore) -> dict[str, dict]:
    """Every stored trace as a dict of its columns (the first-seen time left out)."""
    cur = store.conn.execute("SELECT * EXCLUDE (created_at) FROM agent_traces")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _sessions(store: TraceStore) -> dict[str, tuple]:
    return {r[0]: r for r in store.conn.execute("SELECT * FROM sessions").fetchall()}


def _load(db: Path, source: Path, full: bool = False) -> tuple[dict[str, dict], LoadReport]:
    with TraceStore(db) as store:
        report = load(store, open_source(source), full=full)
        return _rows(store), report


def _others(rows: dict[str, dict], damaged_roots: set[str]) -> dict[str, dict]:
    return {k: r for k, r in rows.items() if r["root_session_id"] not in damaged_roots}


def _baseline(tmp_path: Path, fixture: Path = SAMPLE_118) -> dict[str, dict]:
    clean = copy_store(fixture, tmp_path / "clean")
    return _load(tmp_path / "clean.duckdb", clean)[0]


def _damaged_db(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    data = copy_store(SAMPLE_118, tmp_path / "damaged")
    return data, sqlite3.connect(data / "opencode.db")


def _assert_forest(rows: dict[str, dict]) -> None:
    """Every trace's parent chain ends at a session trace, and depth counts the steps."""
    for tid, r in rows.items():
        seen, cur, steps = set(), r, 0
        while cur["parent_trace_id"] is not None:
            assert cur["trace_id"] not in seen, f"parent cycle through {tid}"
            seen.add(cur["trace_id"])
            cur = rows[cur["parent_trace_id"]]
            steps += 1
        assert cur["kind"] == "session"
        assert r["depth"] == steps


# -- a clock stepped back --------------------------------------------------------------------------------


def test_an_answer_stamped_before_its_question_loads(tmp_path: Path) -> None:
    """The assistant's time is before its user message's (the clock stepped back): the turn split kept it."""
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    user_time, = conn.execute("SELECT min(time_created) FROM message WHERE session_id = ?", (CODER,)).fetchone()
    conn.execute("UPDATE message SET time_created = ? WHERE session_id = ? AND data LIKE '%\"assistant\"%'",
                 (user_time - 60_000, CODER))
    conn.commit()
    conn.close()
    db = tmp_path / "t.duckdb"
    after, _ = _load(db, data)
    again, report = _load(db, data, full=True)  # and every later load too
    assert _others(after, {ROOT9}) == _others(before, {ROOT9})
    assert after == again
    assert set(after) == set(before)  # the damaged tree is still whole
    _assert_forest(after)


def test_an_answer_stamped_before_its_question_in_json(tmp_path: Path) -> None:
    before = _baseline(tmp_path, SAMPLE_1165)
    storage = copy_store(SAMPLE_1165, tmp_path / "damaged") / "storage"
    messages = [json.loads(p.read_text()) | {"_path": p} for p in (storage / "message" / JSON_CODER).glob("*.json")]
    user = next(m for m in messages if m["role"] == "user")
    for m in messages:
        if m["role"] == "assistant":
            path = m.pop("_path")
            m["time"]["created"] = user["time"]["created"] - 60_000
            path.write_text(json.dumps(m))
    after, _ = _load(tmp_path / "t.duckdb", storage)
    assert _others(after, {JSON_ROOT13}) == _others(before, {JSON_ROOT13})
    assert set(after) == set(before)


# -- numbers that do not fit -------------------------------------------------------------------------------


def test_a_token_count_that_overflows_is_counted_not_fatal(tmp_path: Path) -> None:
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    pid, raw = conn.execute("SELECT id, data FROM part WHERE session_id = ? AND data LIKE '%step-finish%'",
                            (CODER,)).fetchone()
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (re.sub(r'"input":\d+', '"input":1e999', raw), pid))
    conn.commit()
    conn.close()
    after, report = _load(tmp_path / "t.duckdb", data)
    assert _others(after, {ROOT9}) == _others(before, {ROOT9})
    assert set(after) == set(before)
    assert report.skipped == {"tokens": 1}
    assert any("out of range" in e for e in report.skipped_examples)


def test_a_huge_integer_token_count_and_an_infinite_cost_in_json(tmp_path: Path) -> None:
    """Python's JSON reads any integer and `Infinity`; neither reaches DuckDB's BIGINT and DOUBLE columns."""
    before = _baseline(tmp_path, SAMPLE_1165)
    storage = copy_store(SAMPLE_1165, tmp_path / "damaged") / "storage"
    message_ids = {p.stem for p in (storage / "message" / JSON_CODER).glob("*.json")}
    steps = [p for mid in sorted(message_ids) for p in sorted((storage / "part" / mid).glob("*.json"))
             if '"step-finish"' in p.read_text()]
    steps[0].write_text(re.sub(r'"output": \d+', '"output": ' + "9" * 40, steps[0].read_text()))
    steps[-1].write_text(re.sub(r'"cost": [0-9.e-]+', '"cost": Infinity', steps[-1].read_text()))
    after, report = _load(tmp_path / "t.duckdb", storage)
    assert _others(after, {JSON_ROOT13}) == _others(before, {JSON_ROOT13})
    assert set(after) == set(before)
    assert report.skipped_total >= 2


def test_an_absurd_session_time_is_counted_not_fatal(tmp_path: Path) -> None:
    """A time DuckDB's TIMESTAMP cannot hold (valid here: 1970 to 9999) is replaced and counted."""
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    conn.execute("UPDATE session SET time_created = -100000000000000000 WHERE id = ?", (ROOT9,))
    conn.execute("UPDATE session SET time_updated = 1e300 WHERE id = ?", (CODER,))
    conn.commit()
    conn.close()
    db = tmp_path / "t.duckdb"
    after, report = _load(db, data)
    assert _others(after, {ROOT9}) == _others(before, {ROOT9})
    assert set(after) == set(before)
    assert report.skipped.get("time", 0) >= 2
    with TraceStore(db) as store:
        created = store.conn.execute("SELECT epoch_ms(created_at) FROM sessions WHERE session_id = ?",
                                     [ROOT9]).fetchone()[0]
    assert abs(created - before[ROOT9]["started_at"].timestamp() * 1000) < 1000  # the time in the session id


# -- text that is not UTF-8 ----------------------------------------------------------------------------------


def test_a_parent_id_that_is_not_utf8_is_skipped_not_fatal(tmp_path: Path) -> None:
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    conn.execute("UPDATE session SET parent_id = CAST(X'7365735FFF' AS TEXT) WHERE id = ?", (CODER,))
    conn.commit()
    conn.close()
    after, report = _load(tmp_path / "t.duckdb", data)
    assert _others(after, {ROOT9, CODER}) == _others(before, {ROOT9})
    assert report.skipped == {"session": 1}


# -- a damaged database ------------------------------------------------------------------------------------------


def _corrupt_page(db: Path, table: str, nth: int) -> None:
    conn = sqlite3.connect(db)
    page_size, = conn.execute("PRAGMA page_size").fetchone()
    pages = [p for p, in conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'"
                                      " ORDER BY pageno", (table,))]
    conn.close()
    with db.open("r+b") as f:
        f.seek((pages[nth] - 1) * page_size)
        f.write(b"\x0d" + b"\xee" * (page_size - 1))


def _readable(db: Path, sid: str) -> bool:
    conn = sqlite3.connect(db)
    try:
        for table in ("message", "part"):
            conn.execute(f"SELECT data FROM {table} WHERE session_id = ?", (sid,)).fetchall()
        return True
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


@pytest.mark.parametrize("table", ["part", "message"])
def test_a_corrupt_page_skips_only_the_sessions_on_it(table: str, tmp_path: Path) -> None:
    before = _baseline(tmp_path)
    data = copy_store(SAMPLE_118, tmp_path / "damaged")
    _corrupt_page(data / "opencode.db", table, 1)
    with TraceStore(tmp_path / "x.duckdb") as store:
        sessions = _sessions_of(store, before)
    damaged = {sid for sid in sessions if not _readable(data / "opencode.db", sid)}
    assert damaged  # the page held rows of some sessions, not all
    damaged_roots = {sessions[s] for s in damaged}
    assert damaged_roots != set(sessions.values())
    after, report = _load(tmp_path / "t.duckdb", data)
    assert _others(after, damaged_roots) == _others(before, damaged_roots)
    assert report.skipped.get("session", 0) >= len(damaged)
    assert any("damaged" in e for e in report.skipped_examples)


def _sessions_of(_store: TraceStore, rows: dict[str, dict]) -> dict[str, str]:
    """Each session id the traces name, with its root."""
    out = {}
    for r in rows.values():
        out[r["session_id"]] = r["root_session_id"]
        if r["child_session_id"]:
            out[r["child_session_id"]] = r["root_session_id"]
    return out


def test_a_corrupt_session_table_gets_one_plain_sentence(tmp_path: Path) -> None:
    data = copy_store(SAMPLE_118, tmp_path / "damaged")
    _corrupt_page(data / "opencode.db", "session", 0)
    with pytest.raises(SourceError, match="damaged"):
        extract_traces(data)


# -- cycles ------------------------------------------------------------------------------------------------------------


def test_a_parent_id_cycle_loads(tmp_path: Path) -> None:
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    conn.execute("UPDATE session SET parent_id = ? WHERE id = ?", (REVIEWER, ROOT9))
    conn.commit()
    conn.close()
    after, _ = _load(tmp_path / "t.duckdb", data)
    damaged = {r["root_session_id"] for r in after.values()} - {r["root_session_id"] for r in before.values()}
    assert _others(after, {ROOT9} | damaged) == _others(before, {ROOT9})
    _assert_forest(after)


def _set_child(conn: sqlite3.Connection, session: str, child: str) -> None:
    pid, raw = conn.execute("SELECT id, data FROM part WHERE session_id = ? AND data LIKE '%\"tool\":\"task\"%'",
                            (session,)).fetchone()
    part = json.loads(raw)
    part["state"]["metadata"]["sessionId"] = child
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(part), pid))


@pytest.mark.parametrize("links", [
    pytest.param({PLANNER: CODER, CODER: PLANNER, ROOT9: REVIEWER}, id="two calls into each other's session"),
    pytest.param({CODER: CODER}, id="a call into its own session"),
])
def test_delegations_pointing_at_each_other_load(links: dict[str, str], tmp_path: Path) -> None:
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    for session, child in links.items():
        _set_child(conn, session, child)
    conn.commit()
    conn.close()
    after, _ = _load(tmp_path / "t.duckdb", data)
    assert _others(after, {ROOT9}) == _others(before, {ROOT9})
    assert set(after) == set(before)
    _assert_forest(after)


# -- a session that cannot be read right now keeps its previous traces ------------------------------------------


def test_a_half_written_json_session_file_keeps_its_tree(tmp_path: Path) -> None:
    storage = copy_store(SAMPLE_1165, tmp_path / "live") / "storage"
    db = tmp_path / "t.duckdb"
    first, _ = _load(db, storage)
    path = next((storage / "session").rglob(f"{JSON_PLANNER}.json"))
    whole = path.read_text()
    path.write_text(whole[:50])  # OpenCode is rewriting it
    during, report = _load(db, storage)
    assert during == first
    assert report.skipped == {"session": 1} and report.sessions_deleted == 0
    with TraceStore(db) as store:
        assert JSON_PLANNER in _sessions(store)
    path.write_text(whole)
    after, _ = _load(db, storage)
    assert after == first


def test_an_unreadable_session_row_keeps_its_tree(tmp_path: Path) -> None:
    data = copy_store(SAMPLE_118, tmp_path / "live")
    db = tmp_path / "t.duckdb"
    first, _ = _load(db, data)
    conn = sqlite3.connect(data / "opencode.db")
    conn.execute("UPDATE session SET title = CAST(X'4F6C64FF' AS TEXT) WHERE id = ?", (CODER,))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (CODER,))
    conn.commit()
    during, report = _load(db, data)
    assert during == first
    assert report.skipped == {"session": 1}
    conn.execute("UPDATE session SET title = 'Code search (@coder subagent)' WHERE id = ?", (CODER,))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (CODER,))
    conn.commit()
    conn.close()
    after, report = _load(db, data)
    assert after == first and report.sessions_changed >= 1


# -- found by the mutation test (tests/test_mutations.py) ----------------------------------------------------------


@pytest.mark.parametrize("change", [
    pytest.param("UPDATE message SET time_created = ':' WHERE session_id = ?", id="a time that is text"),
    pytest.param("UPDATE message SET id = NULL WHERE rowid = (SELECT max(rowid) FROM message WHERE session_id ="
                 f" '{ROOT9}') AND ? IS NOT NULL", id="a message without an id"),
    pytest.param("UPDATE session SET title = 42, directory = x'ff', time_updated = 1e300 WHERE id = ?",
                 id="session columns of other types"),
    pytest.param("UPDATE part SET message_id = 7 WHERE session_id = ?", id="a part's message id that is a number"),
])
def test_a_column_of_another_type_is_not_fatal(change: str, tmp_path: Path) -> None:
    """SQLite hands back whatever a cell holds: a sort of mixed types, a None id, an int title all raised."""
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    conn.execute(change, (CODER,))
    conn.commit()
    conn.close()
    after, _ = _load(tmp_path / "t.duckdb", data)
    assert _others(after, {ROOT9}) == _others(before, {ROOT9})


def test_v2_content_that_is_not_a_list_is_not_fatal(v2_dir: Path, tmp_path: Path) -> None:
    db = v2_dir / "opencode.db"
    before = extract_traces(v2_dir)
    conn = sqlite3.connect(db)
    mid, sid = conn.execute("SELECT id, session_id FROM session_message WHERE type = 'assistant'"
                            " AND data LIKE '%subagent%' LIMIT 1").fetchone()
    conn.execute("UPDATE session_message SET data = json_set(data, '$.content', 5) WHERE id = ?", (mid,))
    conn.commit()
    conn.close()
    after = extract_traces(v2_dir)
    root = next(t.root_session_id for t in before if t.session_id == sid)
    assert [t for t in after if t.root_session_id != root] == [t for t in before if t.root_session_id != root]


def test_a_string_cut_inside_a_surrogate_pair_is_stored(tmp_path: Path) -> None:
    """JavaScript writes a string cut inside an emoji as a lone `\\ud83d` escape; DuckDB refused the whole
    write. It loads with U+FFFD in its place."""
    storage = copy_store(SAMPLE_1165, tmp_path / "json") / "storage"
    path = next((storage / "session").rglob(f"{JSON_ROOT13}.json"))
    path.write_text(path.read_text().replace('"title": "Scripted session 13"', '"title": "Scripted \\ud83d"'))
    data, conn = _damaged_db(tmp_path)
    pid, raw = conn.execute("SELECT id, data FROM part WHERE session_id = ? AND data LIKE '%\"tool\":\"task\"%'",
                            (PLANNER,)).fetchone()
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (raw.replace("Implement search.", "Implement \\ud83d"), pid))
    conn.commit()
    conn.close()
    rows, _ = _load(tmp_path / "j.duckdb", storage)
    with TraceStore(tmp_path / "j.duckdb") as store:
        assert _sessions(store)[JSON_ROOT13][3] == "Scripted \ufffd"
    rows, _ = _load(tmp_path / "s.duckdb", data)
    assert rows[pid]["prompt_input"].startswith("Implement \ufffd")


def test_a_tool_output_cut_inside_a_surrogate_pair_or_not_utf8(tmp_path: Path) -> None:
    """The tool output comes unescaped from SQLite: a lone `\\ud83d` escape arrives as the 3-byte form of the
    surrogate and loads as U+FFFD; an output whose bytes are not UTF-8 skips that part alone, counted."""
    data = copy_store(STEPS_118, tmp_path / "s")
    conn = sqlite3.connect(data / "opencode.db")
    (cut, cut_raw), (bad, bad_raw) = conn.execute(
        "SELECT id, data FROM part WHERE data LIKE '%\"tool\":\"bash\"%' AND json_extract(data, '$.state.status')"
        " = 'completed' ORDER BY id LIMIT 2").fetchall()
    cut_json = json.loads(cut_raw)
    cut_json["state"]["output"] = "ok \ud83d"
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(cut_json), cut))
    bad_json = json.loads(bad_raw)
    bad_json["state"]["output"] = "BAD"
    conn.execute("UPDATE part SET data = CAST(replace(CAST(? AS BLOB), CAST('BAD' AS BLOB), x'ff') AS TEXT)"
                 " WHERE id = ?", (json.dumps(bad_json), bad))
    conn.commit()
    conn.close()
    _load(tmp_path / "clean.duckdb", STEPS_118)
    _rows, report = _load(tmp_path / "t.duckdb", data)
    before, after = _span_rows(tmp_path / "clean.duckdb"), _span_rows(tmp_path / "t.duckdb")
    assert after[cut]["output"] == "ok \ufffd"
    assert bad not in after and report.skipped == {"part": 1}
    assert {k: v for k, v in after.items() if k != cut} == {k: v for k, v in before.items() if k not in (cut, bad)}


def _span_rows(db: Path) -> dict[str, dict]:
    with TraceStore(db) as store:
        cur = store.conn.execute("SELECT * FROM agent_spans")
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_a_negative_token_count_is_counted_and_the_spans_agree(tmp_path: Path) -> None:
    """A negative count in one message's step-finish lowered its trace's total unseen (or zeroed the whole
    trace), while its LLM span had 0: the message's figure is replaced and counted, before it is summed."""
    data = copy_store(STEPS_118, tmp_path / "damaged")
    conn = sqlite3.connect(data / "opencode.db")
    mid, pid, raw, n = conn.execute(
        "SELECT message_id, id, data, json_extract(data, '$.tokens.input') FROM part WHERE data LIKE"
        " '%step-finish%' AND json_extract(data, '$.tokens.input') > 0 ORDER BY id LIMIT 1").fetchone()
    conn.execute("UPDATE part SET data = json_set(data, '$.tokens.input', -1000000000000) WHERE id = ?", (pid,))
    conn.commit()
    conn.close()
    before, _ = _load(tmp_path / "clean.duckdb", STEPS_118)
    before_spans = _span_rows(tmp_path / "clean.duckdb")
    after, report = _load(tmp_path / "t.duckdb", data)
    spans = _span_rows(tmp_path / "t.duckdb")
    assert report.skipped == {"tokens": 1}
    tid = spans[mid]["trace_id"]
    assert spans[mid]["tokens_in"] == before_spans[mid]["tokens_in"] - n
    assert after[tid]["tokens_in"] == before[tid]["tokens_in"] - n
    assert after[tid]["tokens_in"] == sum(s["tokens_in"] for s in spans.values()
                                          if s["trace_id"] == tid and s["kind"] == "llm")


def _bash_part(store: Path) -> tuple[str, Callable[[dict], None]]:
    """A completed bash call of a steps store (SQLite or JSON), and how to change its state in place."""
    if (store / "opencode.db").exists():
        conn = sqlite3.connect(store / "opencode.db")
        pid, = conn.execute("SELECT id FROM part WHERE json_extract(data, '$.tool') = 'bash' AND"
                            " json_extract(data, '$.state.status') = 'completed' ORDER BY id LIMIT 1").fetchone()
        conn.close()

        def change(state: dict) -> None:
            conn = sqlite3.connect(store / "opencode.db")
            doc = json.loads(conn.execute("SELECT data FROM part WHERE id = ?", (pid,)).fetchone()[0])
            doc["state"].update(state)
            conn.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(doc), pid))
            conn.commit()
            conn.close()
        return pid, change
    path = next(p for p in sorted((store / "part").rglob("*.json"))
                if '"bash"' in (t := p.read_text()) and json.loads(t).get("state", {}).get("status") == "completed")

    def change_file(state: dict) -> None:
        doc = json.loads(path.read_text())
        doc["state"].update(state)
        path.write_text(json.dumps(doc))
    return path.stem, change_file


@pytest.mark.parametrize("fixture", [STEPS_118, STEPS_1165], ids=["sqlite-1.18.33", "json-1.1.65"])
@pytest.mark.parametrize(("state", "want"), [
    pytest.param({"input": "ls -la"}, {"input": '"ls -la"'}, id="an input that is a string"),
    pytest.param({"input": 5}, {"input": "5"}, id="an input that is a number"),
    pytest.param({"input": None}, {"input": None}, id="an input that is null"),
    pytest.param({"output": {"a": 1}}, {"output": None}, id="an output that is an object"),
    pytest.param({"output": 7}, {"output": None}, id="an output that is a number"),
    pytest.param({"status": "error", "error": {"name": "APIError", "data": {"message": "overloaded"}}},
                 {"status": "error", "output": "APIError: overloaded"}, id="an error that is an object"),
])
def test_a_tool_input_or_output_of_another_type_reads_alike_in_every_store(
        fixture: Path, state: dict, want: dict, tmp_path: Path) -> None:
    """A span's input is JSON text and its output a text, whichever store it came from: SQLite's json_extract
    gave a string input bare (not JSON), a number input as nothing, an object output or error as its JSON."""
    store = copy_store(fixture.parent if fixture.name == "storage" else fixture, tmp_path / "s")
    store = store / "storage" if fixture.name == "storage" else store
    pid, change = _bash_part(store)
    change(state)
    report = LoadReport()
    spans = {sp.span_id: sp for sp in _spans_of(store, report)}
    assert report.skipped == {}
    for name, value in want.items():
        assert getattr(spans[pid], name) == value, name


def test_a_tool_input_holding_nan_is_json_text(tmp_path: Path) -> None:
    """Python's parser takes `NaN` and `Infinity` in a JSON file; written back as they were, the input was no
    JSON text (SQLite refuses such a row whole)."""
    store = copy_store(STEPS_1165.parent, tmp_path / "s") / "storage"
    pid, _change = _bash_part(store)
    path = next(store.rglob(f"part/*/{pid}.json"))
    doc = json.loads(path.read_text())
    doc["state"]["input"] = {"n": 1.5, "nan": float("nan"), "inf": [float("inf")]}
    path.write_text(json.dumps(doc))
    span = next(sp for sp in _spans_of(store, LoadReport()) if sp.span_id == pid)
    assert json.loads(span.input, parse_constant=lambda c: pytest.fail(c)) == {"n": 1.5, "nan": None, "inf": [None]}


def _spans_of(store: Path, report: LoadReport) -> list:
    return extract(store, report=report)[2]


def test_a_task_call_with_the_id_of_a_session_loads(tmp_path: Path) -> None:
    """A task part whose id is its root session's: two traces with one id, and DuckDB refused the whole write.
    The call is left out and counted; every other tree loads as before."""
    before = _baseline(tmp_path)
    data, conn = _damaged_db(tmp_path)
    pid, = conn.execute("SELECT id FROM part WHERE session_id = ? AND data LIKE '%\"tool\":\"task\"%'"
                        " ORDER BY id LIMIT 1", (ROOT9,)).fetchone()
    conn.execute("UPDATE part SET id = ? WHERE id = ?", (ROOT9, pid))
    conn.commit()
    conn.close()
    after, report = _load(tmp_path / "t.duckdb", data)
    assert _others(after, {ROOT9}) == _others(before, {ROOT9})
    assert after[ROOT9]["kind"] == "session" and pid not in after
    assert report.skipped == {"part": 1}


def test_a_step_id_stored_under_another_tree_is_not_fatal(tmp_path: Path) -> None:
    """A tool part takes the id of an LLM call in another tree (a damaged store), and only its own tree is
    read again: the stored span with that id made the insert fail, and every later load with it."""
    data = copy_store(STEPS_118, tmp_path / "s")
    db = tmp_path / "t.duckdb"
    _load(db, data)
    spans = _span_rows(db)
    tool = next(s for s in spans.values() if s["kind"] == "tool")
    llm = next(s for s in spans.values() if s["kind"] == "llm" and s["root_session_id"] != tool["root_session_id"])
    conn = sqlite3.connect(data / "opencode.db")
    sid, = conn.execute("SELECT session_id FROM part WHERE id = ?", (tool["span_id"],)).fetchone()
    conn.execute("UPDATE part SET id = ? WHERE id = ?", (llm["span_id"], tool["span_id"]))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (sid,))
    conn.commit()
    conn.close()
    _rows_after, report = _load(db, data)
    assert report.sessions_changed == 1
    after = _span_rows(db)
    assert after[llm["span_id"]]["kind"] == "tool" and after[llm["span_id"]]["root_session_id"] == tool[
        "root_session_id"]
    assert tool["span_id"] not in after


def test_a_tool_part_with_the_id_of_an_llm_call_leaves_the_call_whole(tmp_path: Path) -> None:
    """A tool part takes the id of a message that made tool calls of its own: of the two spans with that id the
    tool call won, and the message's own tool calls were left under a tool call. The LLM call wins."""
    data = copy_store(STEPS_118, tmp_path / "s")
    conn = sqlite3.connect(data / "opencode.db")
    mid, = conn.execute("SELECT message_id FROM part WHERE data LIKE '%\"tool\":\"bash\"%' GROUP BY message_id"
                        " ORDER BY message_id DESC LIMIT 1").fetchone()
    pid, = conn.execute("SELECT id FROM part WHERE data LIKE '%\"tool\":\"bash\"%' AND message_id < ?"
                        " ORDER BY id LIMIT 1", (mid,)).fetchone()
    conn.execute("UPDATE part SET id = ? WHERE id = ?", (mid, pid))
    conn.commit()
    conn.close()
    report = LoadReport()
    spans = {sp.span_id: sp for sp in _spans_of(data, report)}
    assert spans[mid].kind == "llm"
    assert all(spans[sp.parent_span_id].kind == "llm" for sp in spans.values() if sp.kind == "tool")
    assert report.skipped == {"part": 1}


def test_a_store_holding_only_the_session_of_an_unreadable_tree_loads_it_later(tmp_path: Path) -> None:
    """The first load of a tree whose root cannot be read stores its child's session row and no trace; the load
    that can read the root must replace that row, not take the store for an empty one (it aborted on the
    session's key, every time)."""
    data = copy_store(SAMPLE_118, tmp_path / "s")
    child = "ses_dfe78b94cffelwqLB8OZdBn9fS"  # the only child of ROOT1
    conn = sqlite3.connect(data / "opencode.db")
    conn.execute("PRAGMA foreign_keys = OFF")
    for table, column in (("part", "session_id"), ("message", "session_id"), ("session", "id"),
                          ("event_sequence", "aggregate_id")):
        conn.execute(f"DELETE FROM {table} WHERE {column} NOT IN (?, ?)", (ROOT1, child))
    conn.commit()
    whole, _ = _load(tmp_path / "whole.duckdb", data)
    conn.execute("UPDATE session SET title = CAST(X'4F6C64FF' AS TEXT) WHERE id = ?", (ROOT1,))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (ROOT1,))
    conn.commit()
    db = tmp_path / "t.duckdb"
    during, report = _load(db, data)
    assert during == {} and report.skipped == {"session": 1}
    with TraceStore(db) as store:
        assert set(_sessions(store)) == {child}
    conn.execute("UPDATE session SET title = 'Scripted session 1' WHERE id = ?", (ROOT1,))
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (ROOT1,))
    conn.commit()
    conn.close()
    after, report = _load(db, data)
    assert after == whole and report.skipped_total == 0


def test_a_part_skipped_before_the_scan_starts_over_is_counted_once(tmp_path: Path) -> None:
    """A tool output that is not UTF-8 is skipped as the rows stream in; a part further on that is not JSON makes
    the scan start over on its careful path, which must not count the first part again."""
    data = copy_store(STEPS_118, tmp_path / "s")
    db = tmp_path / "t.duckdb"
    _load(db, data)
    conn = sqlite3.connect(data / "opencode.db")
    sid, = conn.execute("SELECT session_id FROM part WHERE data LIKE '%\"tool\":\"bash\"%' GROUP BY session_id"
                        " HAVING count(*) >= 6 ORDER BY session_id LIMIT 1").fetchone()
    (a, a_raw), (b, b_raw) = conn.execute(
        "SELECT id, data FROM part WHERE session_id = ? AND data LIKE '%\"tool\":\"bash\"%'"
        " AND json_extract(data, '$.state.status') = 'completed' ORDER BY rowid", (sid,)).fetchall()[::3][:2]
    a_json = json.loads(a_raw)
    a_json["state"]["output"] = "BAD"
    conn.execute("UPDATE part SET data = CAST(replace(CAST(? AS BLOB), CAST('BAD' AS BLOB), x'ff') AS TEXT)"
                 " WHERE id = ?", (json.dumps(a_json), a))
    conn.execute("UPDATE part SET data = ? WHERE id = ?", (b_raw[:-5], b))  # cut short: not JSON
    conn.execute("UPDATE event_sequence SET seq = seq + 1 WHERE aggregate_id = ?", (sid,))
    conn.commit()
    conn.close()
    _rows, report = _load(db, data)
    assert report.skipped == {"part": 2}
    assert sorted(e.split(":")[0] for e in report.skipped_examples) == sorted([f"part {a}", f"part {b}"])


def test_two_parts_of_a_message_whose_ids_read_alike_keep_the_one_sqlite_sorts_first(tmp_path: Path) -> None:
    """A part id stored as a blob reads as the same text as another part's id: the call kept is the one SQLite
    sorts first (a text before a blob), as when the scan was ordered, not the one it happens to find first."""
    data = copy_store(CASES_118, tmp_path / "s")
    conn = sqlite3.connect(data / "opencode.db")
    (echo_two,), (echo_three,) = conn.execute(
        "SELECT id FROM part WHERE json_extract(data, '$.state.title') IN ('echo two', 'echo three')"
        " ORDER BY rowid").fetchall()
    conn.execute("UPDATE part SET id = CAST(? AS BLOB) WHERE id = ?", (echo_three, echo_two))
    conn.commit()
    conn.close()
    _load(tmp_path / "t.duckdb", data)
    assert _span_rows(tmp_path / "t.duckdb")[echo_three]["title"] == "echo three"
