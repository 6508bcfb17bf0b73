"""Claude Code load benchmark: a heavy-use history (5,000 sessions, about 1.3 GB of JSON lines made from the real
2.1.332 fixtures by benchmarks/make_claude_history.py), measured against a raw read-and-parse of the same files.

    python -m benchmarks.bench_claude_load [--workdir DIR] [--sessions N]

Prints, in one run, on the same files:
  * raw read-and-parse (the reference): read every file, json.loads every line, as any reader must at least do
    with Python's parser; and DuckDB's read_json of the same files (its C parser, all columns as JSON);
  * full load into a new trace store, in a child process (so nothing else counts in its peak RSS);
  * reload with nothing changed, then after one line (one more API response) was appended to the newest session,
    in the same process as the full load, with the source kept between loads as the window keeps it.
Targets: full load <= 2x the raw read-and-parse; one appended line reloaded <= 100 ms; peak RSS < 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.claude_code import open_claude_source  # noqa: E402
from analytics.db import TraceStore  # noqa: E402
from analytics.loader import load  # noqa: E402
from analytics.models import LoadReport  # noqa: E402
from benchmarks import run_child  # noqa: E402
from benchmarks.make_claude_history import make  # noqa: E402


def jsonl_files(history: Path) -> list[Path]:
    return sorted(history.rglob("*.jsonl"))


def raw_parse(history: Path) -> dict:
    """The reference: read every file and parse every line with json.loads, written plainly."""
    t = time.perf_counter()
    lines = size = 0
    for path in jsonl_files(history):
        data = path.read_bytes()
        size += len(data)
        for line in data.splitlines():
            if line:
                json.loads(line)
                lines += 1
    return {"seconds": time.perf_counter() - t, "lines": lines, "bytes": size}


def duckdb_read_json(history: Path) -> float:
    """DuckDB's own newline-delimited JSON reader over the same files (C, both cores), each line's top-level
    fields as JSON values, for comparison."""
    import duckdb

    conn = duckdb.connect()
    t = time.perf_counter()
    conn.execute(
        "SELECT count(*), count(message) FROM read_json(?, format='newline_delimited', ignore_errors=true,"
        " columns={'type': 'VARCHAR', 'uuid': 'VARCHAR', 'timestamp': 'VARCHAR', 'message': 'JSON',"
        " 'toolUseResult': 'JSON'}, maximum_object_size=268435456)", [str(history / "**" / "*.jsonl")]).fetchall()
    seconds = time.perf_counter() - t
    conn.close()
    return seconds


def one_more_response(history: Path) -> tuple[Path, int]:
    """Append one API response to the newest session file: its last assistant record with fresh ids."""
    newest = max((p for p in history.glob("*/*.jsonl")), key=lambda p: p.stat().st_mtime_ns)
    last = next(x for x in reversed(newest.read_bytes().splitlines()) if b'"type":"assistant"' in x)
    record = json.loads(last)
    record["uuid"] = f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}"
    record["message"]["id"] = "msg_01" + secrets.token_hex(11)
    line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    with open(newest, "ab") as f:
        f.write(line)
    return newest, len(line)


def child(history: str, db: str) -> None:
    """Run in a child process: the full load, an unchanged reload, five one-line reloads; print figures."""
    src = open_claude_source(history)
    reader = src.readers[0]
    t = time.perf_counter()
    with TraceStore(db) as store:
        report = load(store, src, full=True)
        full = time.perf_counter() - t
        full_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        spans = store.conn.execute("SELECT count(*) FROM agent_spans").fetchone()[0]
        unchanged = []
        for _ in range(3):
            t = time.perf_counter()
            assert load(store, src).sessions_changed == 0
            unchanged.append(time.perf_counter() - t)
        index = []
        for _ in range(5):  # the reader's own share of a reload: finding what changed
            t = time.perf_counter()
            reader.index(LoadReport())
            index.append(time.perf_counter() - t)
        appended, parsed = [], []
        for _ in range(5):
            before = reader.stats.bytes_parsed
            _path, size = one_more_response(Path(history))
            t = time.perf_counter()
            r = load(store, src)
            appended.append(time.perf_counter() - t)
            assert r.sessions_changed == 1, r
            parsed.append((reader.stats.bytes_parsed - before, size))
    print(json.dumps({"seconds": full, "traces": report.traces_written, "spans": spans,
                      "skipped": report.skipped_total, "peak_rss_mb": full_rss,
                      "peak_rss_after_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "unchanged": min(unchanged), "appended": min(appended), "appended_all": appended,
                      "index": min(index),
                      "parsed": parsed, "retained_files": len(reader._logs)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=str(ROOT / "benchmarks" / "out"))
    p.add_argument("--sessions", type=int, default=5000)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(args.workdir)
    history = work / f"claude-{args.sessions}" / "projects"
    if not history.exists():
        print("making the history…", file=sys.stderr)
        make(history, args.sessions)
    ref = min((raw_parse(history) for _ in range(2)), key=lambda r: r["seconds"])
    print(f"history: {args.sessions} sessions, {len(jsonl_files(history))} files, {ref['lines']} lines, "
          f"{ref['bytes'] / 2**20:.0f} MB (copies of the 2.1.332 fixtures)")
    print(f"raw read + json.loads (reference)   {ref['seconds']:8.3f} s")
    print(f"DuckDB read_json of the same files  {duckdb_read_json(history):8.3f} s   (for comparison)")
    db = work / "claude-traces.duckdb"
    for suffix in ("", ".wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    r = run_child([__file__, "--child", str(history), str(db)])
    print(f"full load                           {r['seconds']:8.3f} s   {r['seconds'] / ref['seconds']:.2f}x the raw "
          f"read-and-parse (target <= 2x); {r['traces']} traces, {r['spans']} spans, {r['skipped']} skipped")
    print(f"peak RSS of the full load           {r['peak_rss_mb']:8.0f} MB  (target < 400 MB; "
          f"{r['peak_rss_after_mb']:.0f} MB after the reloads, {r['retained_files']} files' parse state kept)")
    print(f"reload, nothing changed             {r['unchanged'] * 1000:8.1f} ms  (of which the reader's index "
          f"{r['index'] * 1000:.1f} ms; the rest is the loader's bookkeeping over every session id)")
    print(f"reload, one line appended           {r['appended'] * 1000:8.1f} ms  (target <= 100 ms; runs: "
          f"{', '.join(f'{x * 1000:.0f}' for x in r['appended_all'])} ms; bytes parsed per reload "
          f"{r['parsed'][0][0]} for a {r['parsed'][0][1]}-byte line)")
    os.sync()


if __name__ == "__main__":
    main()
