"""The SQL that reads OpenCode 1.x tool calls (analytics/opencode/sqlite_v1_sql.py) and the careful Python path it
hands odd rows to read every call of the real stores alike, field by field: each macro there is the twin of a
rule in records.py, and a row takes one path or the other depending on its damage, never on its kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.db import SPAN_COLUMNS
from analytics.extraction import _tool_span, build_traces
from analytics.models import TOOL, LoadReport
from analytics.opencode import open_source
from analytics.opencode.sqlite_store import staging
from tests.conftest import BACKGROUND_118, CASES_118, COMPARE_118, SAMPLE_118, STEPS_118


@pytest.mark.parametrize("fixture", [STEPS_118, CASES_118, SAMPLE_118, COMPARE_118, BACKGROUND_118],
                         ids=lambda p: p.name)
def test_the_sql_and_the_careful_path_read_every_tool_call_alike(fixture: Path) -> None:
    src = open_source(fixture)
    report = LoadReport()
    with src.reading():
        parents = {sid: st.parent_id for sid, st in src.index(report).items()}
        _traces, _infos, spans = build_traces(src.read(None, report), lambda need: src.fill_texts(need, report),
                                              parents, report)
        (steps,) = src.tool_spans(spans)
        columns = ", ".join(f"{name} {typ}" for name, typ in SPAN_COLUMNS)
        select = ", ".join(f"epoch_ms({name})" if typ == "TIMESTAMP" else name for name, typ in SPAN_COLUMNS)
        with staging().cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE steps ({columns})")
            written = steps.insert(cur, "steps", {sp.span_id for sp in spans})
            by_sql = {row[0]: row for row in cur.execute(f"SELECT {select} FROM steps").fetchall()}
        rowids = [rid for rid, in src.readers[0].db.rows("SELECT rowid FROM part WHERE data LIKE '%\"tool\"%'")]
        careful = steps._careful(rowids, report)  # every tool call read the careful way
    assert written.calls == [] and report.skipped == {}
    by_python = {}
    for mid, m in careful.items():
        trace_id, root, created = steps.place[mid]
        for call in m.tool_calls:
            sp = _tool_span(call, trace_id, root, mid, created)
            by_python[sp.span_id] = tuple(sp)
    assert by_sql and by_sql.keys() == by_python.keys()
    inputs = SPAN_COLUMNS.index(("input", "VARCHAR"))
    for span_id, row in by_sql.items():
        twin = by_python[span_id]
        assert row[4] == TOOL
        assert row[:inputs] + row[inputs + 1:] == twin[:inputs] + twin[inputs + 1:], span_id
        # the input is JSON text either way: SQLite's `->` and DuckDB write it each in its own form
        assert (json.loads(row[inputs]) if row[inputs] else None) == (
            json.loads(twin[inputs]) if twin[inputs] else None), span_id
