"""Codex history load benchmark: the real fixture rollouts scaled to thousands of threads, measured against a raw
read-and-parse of the same files in the same run.

    python -m benchmarks.bench_codex_load [--workdir DIR] [--copies N] [--reloads N]

The history is `--copies` copies of tests/fixtures/codex-0.171.0 (23 rollouts each; every thread, turn and item id
renamed per copy, spread over day folders), each rollout missing its last two lines, which the reload measurements
append one at a time (the first append to a tree parses its files whole in this process, the second only the
line). Prints, in one run, on the same files:
  * raw read-and-parse: read every file and json.loads every line (the least any reader must do);
  * full load into a new trace store (in a child process, with its peak RSS), in turn with the raw reference
    (`--runs` times; the best of each is compared, the machine being shared);
  * reload with nothing changed, and after one line was appended to one rollout (only that tree is redone),
    with the bytes the reader read.
Targets: full load <= 2x raw read-and-parse; one appended line reloaded <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.codex import open_codex_source  # noqa: E402
from analytics.db import TraceStore  # noqa: E402
from analytics.loader import load  # noqa: E402
from benchmarks import run_child  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "codex-0.171.0" / "sessions"
_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def build(workdir: Path, copies: int) -> tuple[Path, list[tuple[Path, bytes, bytes]]]:
    """The scaled history, and for each rollout its last two lines held back (to append later)."""
    sessions = workdir / "sessions"
    if sessions.exists():
        shutil.rmtree(sessions)
    held: list[tuple[Path, bytes, bytes]] = []
    files = sorted(FIXTURE.rglob("rollout-*.jsonl"))
    data = {f: f.read_bytes() for f in files}
    for c in range(copies):
        ids: dict[bytes, bytes] = {}

        def rename(m: re.Match, ids: dict = ids) -> bytes:
            return ids.setdefault(m.group(0), str(uuid.uuid4()).encode())

        day = sessions / "2026" / f"{1 + c // 30 % 12:02d}" / f"{1 + c % 30:02d}"
        day.mkdir(parents=True, exist_ok=True)
        for f in files:
            body = _ID.sub(rename, data[f])
            name = _ID.sub(rename, f.name.encode()).decode()
            lines = body.splitlines(keepends=True)
            path = day / name
            path.write_bytes(b"".join(lines[:-2]))
            held.append((path, lines[-2], lines[-1]))
    return sessions, held


def raw_read_and_parse(sessions: Path) -> dict:
    """The reference: read every rollout and parse every line, written plainly."""
    t = time.perf_counter()
    lines = size = 0
    for path in sessions.rglob("rollout-*.jsonl"):
        with open(path, "rb") as f:
            data = f.read()
        size += len(data)
        for line in data.splitlines():
            json.loads(line)
            lines += 1
    return {"seconds": time.perf_counter() - t, "lines": lines, "bytes": size}


def child_full_load(sessions: str, db: str) -> None:
    """In a child process: one full load, then its time and the process's peak RSS."""
    t = time.perf_counter()
    with TraceStore(db) as store:
        report = load(store, open_codex_source(sessions))
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "traces": report.traces_written, "sessions": report.sessions_seen,
                      "skipped": report.skipped,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _time_reader(reader) -> list[float]:
    """Wrap the reader's calls so the time a reload spends in them adds up in the returned cell."""
    spent = [0.0]
    for name in ("stamp", "index", "read"):
        fn = getattr(reader, name)

        def timed(*a, _fn=fn, **k):
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t

        setattr(reader, name, timed)
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-codex"))
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--reloads", type=int, default=7)
    ap.add_argument("--runs", type=int, default=2, help="full loads (each after a raw read-and-parse)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    sessions, held = build(args.workdir, args.copies)
    raw = raw_read_and_parse(sessions)
    print(f"history: {len(held)} rollouts, {raw['bytes'] / 1e6:.0f} MB, {raw['lines']} lines"
          f" (made in {time.perf_counter() - t:.1f} s)")
    # the reference and the load in turn, twice (the machine is shared: the best of each is compared)
    db = args.workdir / "traces.duckdb"
    raws, fulls = [raw["seconds"]], []
    for k in range(args.runs):
        for p in args.workdir.glob("traces.duckdb*"):
            p.unlink()
        fulls.append(run_child(["-c", "import sys; from benchmarks.bench_codex_load import"
                                " child_full_load as f; f(sys.argv[1], sys.argv[2])", str(sessions), str(db)]))
        if k + 1 < args.runs:
            raws.append(raw_read_and_parse(sessions)["seconds"])
    full = min(fulls, key=lambda f: f["seconds"])
    print(f"raw read-and-parse: {', '.join(f'{x:.2f}' for x in raws)} s")
    seconds = ", ".join(f"{f['seconds']:.2f}" for f in fulls)
    rss = max(f["peak_rss_mb"] for f in fulls)
    print(f"full load: {seconds} s; best {full['seconds'] / min(raws):.2f}x the best raw, {full['traces']} traces,"
          f" {full['sessions']} sessions, peak RSS {rss:.0f} MB, skipped {full['skipped']}")

    # reloads, in this process, with one source kept as the window keeps it
    with TraceStore(db) as store:
        source = open_codex_source(sessions)
        (reader,) = source.readers
        t = time.perf_counter()
        report = load(store, source)
        print(f"reload, nothing changed: {(time.perf_counter() - t) * 1000:.1f} ms (unchanged={report.unchanged})")
        spent = _time_reader(reader)
        step = max(1, len(held) // args.reloads)
        picked = held[::step][:args.reloads]
        for label, which in (("cold: the tree's files parsed whole, the first time this process reads them", 1),
                             ("warm: only the appended line parsed", 2)):
            times, reads, own = [], [], []
            for item in picked:
                with open(item[0], "ab") as f:
                    f.write(item[which])
                before = reader.bytes_read
                spent[0] = 0.0
                t = time.perf_counter()
                report = load(store, source)
                times.append((time.perf_counter() - t) * 1000)
                own.append(spent[0] * 1000)
                reads.append(reader.bytes_read - before)
                assert report.sessions_changed >= 1, report
            print(f"reload after one appended line ({label}): median {statistics.median(times):.1f} ms,"
                  f" max {max(times):.1f} ms ({', '.join(f'{x:.0f}' for x in times)} ms), of which the reader"
                  f" (listing, index, parse) {statistics.median(own):.1f} ms median; bytes read"
                  f" {', '.join(str(r) for r in reads)} (lines {', '.join(str(len(i[which])) for i in picked)})")
    if os.environ.get("BENCH_KEEP") is None:
        shutil.rmtree(sessions)


if __name__ == "__main__":
    main()
