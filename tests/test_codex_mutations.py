"""Mutation test for Codex histories: copies of the real fixture rollouts damaged in hundreds of ways, from a fixed
seed, as tests/test_mutations.py does for OpenCode's stores (its checks are reused).

Each example changes one line of one rollout: a value somewhere inside its JSON (types swapped, fields removed,
numbers huge, negative or not finite, strings cut, ids of other threads and calls), or the line itself (cut short,
not UTF-8, removed, repeated, swapped with the next). Then it asserts that reading never raises, that every trace,
span and session record of the trees the change did not touch is the same as from the undamaged history, that
the spans still hang together, and that DuckDB takes all of it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.codex import open_codex_source
from analytics.loader import build_traces
from analytics.models import LoadReport
from tests.codex_support import ALL_CODEX, copy_history, raw_threads
from tests.test_mutations import Baseline, Read, Written, _by_root, _settings, json_values, mutate_json

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EXAMPLES = 200


class History:
    """A copy of a fixture history, its undamaged reading, and which tree each thread and call belongs to."""

    def __init__(self, source: Path, dest: Path) -> None:
        self.root = copy_history(source, dest)
        self.files = sorted(self.root.rglob("rollout-*.jsonl"))
        self.original = {f: f.read_bytes() for f in self.files}
        undamaged = _read(self.root)
        assert undamaged.report.skipped == {}
        threads = raw_threads(self.root)
        root_of = {}
        for tid in threads:
            cur = tid
            while threads[cur].parent in threads:
                cur = threads[cur].parent  # type: ignore[assignment]
            root_of[tid] = cur
        self.tree_of = dict(root_of)
        self.file_tree = {th.path.name: root_of[tid] for tid, th in threads.items()}
        self.ids = sorted(threads) + sorted({cid for th in threads.values() for cid in th.tools})
        self.baseline = Baseline(_by_root(undamaged.traces), _by_root(undamaged.infos), _by_root(undamaged.spans),
                                 self.tree_of)
        self.baseline.check(undamaged, set())

    def touched(self, path: Path, *texts: str) -> set[str]:
        """The tree of the damaged file, and those of any thread a changed line names."""
        out = {self.file_tree[path.name]}
        for text in texts:
            out |= {self.tree_of[m] for m in _UUID.findall(text) if m in self.tree_of}
        return out


def _read(root: Path) -> Read:
    """What a full load computes from a history, before it writes."""
    src = open_codex_source(root)
    report = LoadReport()
    with src.reading():
        index = src.index(report)
        sessions = src.read(None, report)
        traces, infos, spans = build_traces(sessions, lambda need: src.fill_texts(need, report),
                                            {k: v.parent_id for k, v in index.items()}, report)
    return Read(traces, infos, spans, report)


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, History]:
    return {v: History(ALL_CODEX[v], tmp_path_factory.mktemp(f"codex-{v}") / "h") for v in ("0.171.0", "0.140.0")}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    w = Written(tmp_path_factory.mktemp("written") / "t.duckdb")
    yield w
    w.flush()  # DuckDB takes every damaged tree (ids made unique per example)
    w.store.close()


LINE_OPS = ["value", "value", "value", "value", "cut", "not utf-8", "drop", "repeat", "swap"]


@pytest.mark.parametrize("version", ["0.171.0", "0.140.0"])
@_settings(EXAMPLES)
@given(data=st.data())
def test_a_damaged_rollout_line_never_breaks_the_load(histories, written, version, data) -> None:
    h = histories[version]
    path = data.draw(st.sampled_from(h.files), label="file")
    lines = h.original[path].split(b"\n")[:-1]
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    op = data.draw(st.sampled_from(LINE_OPS), label="op")
    old = lines[i]
    new = list(lines)
    if op == "value":
        doc = json.loads(old)
        values = json_values(h.ids, [1_796_433_767_000])
        new[i] = json.dumps(mutate_json(data, doc, values), ensure_ascii=data.draw(st.booleans())).encode(
            "utf-8", "surrogatepass")
    elif op == "cut":
        new[i] = old[:data.draw(st.integers(0, len(old) - 1))]
    elif op == "not utf-8":
        k = data.draw(st.integers(0, len(old)))
        new[i] = old[:k] + b"\xff\xfe" + old[k:]
    elif op == "drop":
        del new[i]
    elif op == "repeat":
        new.insert(i, old)
    elif i + 1 < len(lines):
        new[i], new[i + 1] = new[i + 1], new[i]
    try:
        path.write_bytes(b"\n".join(new) + b"\n")
        got = _read(h.root)
    finally:
        path.write_bytes(h.original[path])
    touched = h.touched(path, old.decode("utf-8", "replace"), new[i].decode("utf-8", "replace") if i < len(new)
                        else "")
    h.baseline.check(got, touched)
    written.add(got, touched, set(h.baseline.traces))
