"""A Claude Code history at heavy-use scale, made by copying the real 2.1.332 fixture histories.

Each session tree (a session file and its subagent files) of tests/fixtures/claude-code-2.1.332 is copied again
and again with fresh ids (session, agent, record uuids, message and tool_use ids), so that the copies are the
bytes Claude Code wrote with only the ids changed: the same record types, sizes and shapes. Sessions are spread
over `projects` folders and given file times a minute apart (the newest last), as a user's would be.

    python -m benchmarks.make_claude_history DIR [--sessions 5000]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tests" / "fixtures" / "claude-code-2.1.332"

_IDS = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # sessions, records
                  rb"|(?:msg|toolu)_mock\d+|\ba[0-9a-f]{16}\b")  # API responses, tool calls, agents


def _templates() -> list[list[tuple[str, bytes]]]:
    """Each fixture case's files, as (path relative to its project folder, bytes)."""
    out = []
    for case in sorted(TEMPLATES.iterdir()):
        project = next((case / "projects").iterdir())
        out.append([(str(p.relative_to(project)), p.read_bytes()) for p in sorted(project.rglob("*")) if p.is_file()])
    return out


def _fresh(old: bytes) -> bytes:
    if old.startswith(b"msg_"):
        return b"msg_01" + secrets.token_hex(11).encode()
    if old.startswith(b"toolu_"):
        return b"toolu_01" + secrets.token_hex(11).encode()
    if len(old) == 17:
        return b"a" + secrets.token_hex(8).encode()
    return str(uuid.uuid4()).encode()


def make(dest: Path, sessions: int, projects: int = 50) -> int:
    """Write `sessions` session trees under dest; returns the bytes written."""
    templates = _templates()
    written = 0
    start = 1_790_000_000  # file times: a minute apart, oldest first
    for n in range(sessions):
        files = templates[n % len(templates)]
        ids: dict[bytes, bytes] = {}

        def new_id(m: re.Match, ids: dict[bytes, bytes] = ids) -> bytes:
            old = m.group(0)
            if old not in ids:
                ids[old] = _fresh(old)
            return ids[old]

        project = dest / f"-home-dev-project{n % projects:02d}"
        for rel, data in files:
            path = project / _IDS.sub(new_id, rel.encode()).decode()
            path.parent.mkdir(parents=True, exist_ok=True)
            body = _IDS.sub(new_id, data)
            path.write_bytes(body)
            t = start + n * 60
            os.utime(path, (t, t))
            written += len(body)
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dest")
    p.add_argument("--sessions", type=int, default=5000)
    args = p.parse_args()
    n = make(Path(args.dest), args.sessions)
    print(f"{args.sessions} sessions, {n / 2**20:.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
