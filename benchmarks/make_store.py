"""Build large OpenCode stores shaped like heavy real use, for the benchmarks.

The SQLite store uses the exact schema of a database written by opencode 1.18.33 (copied from the test
fixture's sqlite_master) and rows shaped like the ones that binary writes: every model step is an assistant
message with step-start, text or reasoning, tool and step-finish parts; task calls carry the 1.15.11+ output
wrapper and metadata; subagents delegate further (depth up to 3). The JSON store mirrors 1.1.65's files.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

FIXTURE_DB = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "cases-1.18.33" / "opencode.db"
AGENTS = ["general", "explore", "coder", "reviewer", "tester", "planner", "refactoring", "docs"]
TOOLS = ["read", "bash", "grep", "edit", "glob", "write"]
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Ids:
    """OpenCode-style ids: prefix, 12 hex digits of ms*4096+counter, 14 base62 characters."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd, self.counter = rnd, 0

    def make(self, prefix: str, ms: int, descending: bool = False) -> str:
        self.counter += 1
        v = (ms * 4096 + self.counter % 4096) & ((1 << 48) - 1)
        if descending:
            v = ~v & ((1 << 48) - 1)
        return f"{prefix}_{v:012x}" + "".join(self.rnd.choice(B62) for _ in range(14))


def _text(rnd: random.Random, n: int) -> str:
    words = ["the", "parser", "module", "returns", "config", "value", "test", "fails", "because", "cache",
             "invalid", "token", "handler", "retry", "loop", "file", "path", "function", "class", "error"]
    return " ".join(rnd.choice(words) for _ in range(n // 6)) + "."


class _Writer:
    def __init__(self, conn: sqlite3.Connection, rnd: random.Random, directory: str, project: str,
                 delegate_p: float = 0.22, max_depth: int = 3) -> None:
        self.conn, self.rnd, self.ids = conn, rnd, Ids(rnd)
        self.delegate_p, self.max_depth = delegate_p, max_depth
        self.directory, self.project = directory, project
        self.sessions: list[tuple] = []
        self.messages: list[tuple] = []
        self.parts: list[tuple] = []
        self.delegations = 0

    def part(self, mid: str, sid: str, ms: int, data: dict) -> str:
        pid = self.ids.make("prt", ms)
        self.parts.append((pid, mid, sid, ms, ms, json.dumps(data, separators=(",", ":"))))
        return pid

    def session(self, parent: str | None, title: str, agent: str, ms: int) -> str:
        sid = self.ids.make("ses", ms, descending=True)
        self.sessions.append((sid, self.project, parent, f"slug-{len(self.sessions)}", self.directory, title,
                              "1.18.33", ms, ms, agent))
        return sid

    def conversation(self, sid: str, agent: str, prompt: str, t: int, depth: int, budget: dict) -> int:
        """One turn: a user message and several model steps; some steps delegate. Returns the end time."""
        rnd = self.rnd
        umid = self.ids.make("msg", t)
        self.messages.append((umid, sid, t, t, json.dumps(
            {"role": "user", "time": {"created": t}, "agent": agent,
             "model": {"providerID": "anthropic", "modelID": "claude-sonnet-4-5"}, "summary": {"diffs": []}},
            separators=(",", ":"))))
        self.part(umid, sid, t, {"type": "text", "text": prompt})
        steps = rnd.randint(7, 13)
        for step in range(steps):
            t += rnd.randint(200, 3000)
            mid = self.ids.make("msg", t)
            start = t
            self.part(mid, sid, t, {"type": "step-start", "snapshot": f"{rnd.getrandbits(160):040x}"})
            if rnd.random() < 0.5:
                self.part(mid, sid, t, {"type": "reasoning", "text": _text(rnd, 600),
                                        "time": {"start": t, "end": t + 40}})
            n_tools = 0 if step == steps - 1 else rnd.randint(1, 3)
            for _ in range(n_tools):
                t += rnd.randint(50, 1500)
                if (depth < self.max_depth and budget["delegations"] > 0
                        and rnd.random() < self.delegate_p - depth * 0.05):
                    budget["delegations"] -= 1
                    t = self.delegate(mid, sid, agent, t, depth, budget)
                    continue
                tool = rnd.choice(TOOLS)
                out = _text(rnd, rnd.choice([150, 500, 1500, 4000]))
                self.part(mid, sid, t, {"type": "tool", "tool": tool, "callID": f"toolu_{rnd.getrandbits(64):x}",
                                        "state": {"status": "completed", "input": {"filePath": "src/x.py"},
                                                  "output": out, "title": "src/x.py",
                                                  "metadata": {"truncated": False},
                                                  "time": {"start": t, "end": t + 30}}})
            if step == steps - 1:
                self.part(mid, sid, t, {"type": "text", "text": _text(rnd, 900), "time": {"start": t, "end": t + 5}})
            tin, tout = rnd.randint(2000, 30000), rnd.randint(50, 2000)
            cost = tin * 3e-6 + tout * 15e-6
            tokens = {"total": tin + tout, "input": tin, "output": tout, "reasoning": 0,
                      "cache": {"write": 0, "read": rnd.randint(0, 20000)}}
            self.part(mid, sid, t, {"reason": "stop" if step == steps - 1 else "tool-calls", "type": "step-finish",
                                    "tokens": tokens, "cost": cost})
            self.messages.append((mid, sid, start, t, json.dumps(
                {"parentID": umid, "role": "assistant", "mode": agent, "agent": agent,
                 "path": {"cwd": self.directory, "root": self.directory}, "cost": cost, "tokens": tokens,
                 "modelID": "claude-sonnet-4-5", "providerID": "anthropic",
                 "time": {"created": start, "completed": t}, "finish": "stop"}, separators=(",", ":"))))
        return t

    def delegate(self, mid: str, sid: str, agent: str, t: int, depth: int, budget: dict) -> int:
        rnd = self.rnd
        self.delegations += 1
        sub = rnd.choice([a for a in AGENTS if a != agent])
        desc = f"{sub} task {self.delegations}"
        prompt = _text(rnd, rnd.choice([300, 1200, 4000]))
        child = self.session(sid, f"{desc} (@{sub} subagent)", sub, t + 2)
        end = self.conversation(child, sub, prompt, t + 5, depth + 1, budget)
        status = "error" if rnd.random() < 0.03 else "completed"
        state = {"status": status, "input": {"description": desc, "prompt": prompt, "subagent_type": sub},
                 "metadata": {"parentSessionId": sid, "sessionId": child,
                              "model": {"modelID": "claude-sonnet-4-5", "providerID": "anthropic"},
                              "truncated": False},
                 "title": desc, "time": {"start": t, "end": end + 3}}
        if status == "error":
            state["error"] = f"Subagent failed (task_id: {child}): overloaded"
        else:
            state["output"] = f'<task id="{child}" state="completed">\n<task_result>\n{_text(rnd, 700)}\n' \
                              "</task_result>\n</task>"
        self.part(mid, sid, t, {"type": "tool", "tool": "task", "callID": f"toolu_{rnd.getrandbits(64):x}",
                                "state": state})
        return end + 10

    def flush(self) -> None:
        c = self.conn
        c.executemany("INSERT INTO session (id, project_id, parent_id, slug, directory, title, version,"
                      " time_created, time_updated, agent) VALUES (?,?,?,?,?,?,?,?,?,?)", self.sessions)
        c.executemany("INSERT INTO message VALUES (?,?,?,?,?)", self.messages)
        c.executemany("INSERT INTO part VALUES (?,?,?,?,?,?)", self.parts)
        self.sessions, self.messages, self.parts = [], [], []


def build_sqlite(path: Path, roots: int = 1000, delegations: int = 8200, seed: int = 7,
                 delegate_p: float = 0.22, max_depth: int = 3) -> dict:
    """An opencode.db with the 1.18.33 schema; returns counts. `delegate_p` is the chance that a tool call of a
    step is a delegation (less at each level down), `max_depth` how deep delegations nest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    ddl = [r[0] for r in sqlite3.connect(f"file:{FIXTURE_DB}?mode=ro&immutable=1", uri=True).execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY type = 'index'")]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    for statement in ddl:
        conn.execute(statement)
    conn.execute("INSERT INTO project (id, worktree, time_created, time_updated, sandboxes) VALUES"
                 " ('p1', '/home/dev/app', 0, 0, '[]')")
    rnd = random.Random(seed)
    w = _Writer(conn, rnd, "/home/dev/app", "p1", delegate_p, max_depth)
    budget = {"delegations": delegations}
    t = 1_790_000_000_000
    per_root = delegations / roots
    for i in range(roots):
        t += rnd.randint(60_000, 3_600_000)
        sid = w.session(None, f"Session {i}", "build", t)
        # each root gets its share of the delegation budget, spent as its steps decide
        local = {"delegations": int(per_root * (i + 1)) - (delegations - budget["delegations"])}
        before = local["delegations"]
        w.conversation(sid, "build", _text(rnd, 400), t + 100, 0, local)
        budget["delegations"] -= before - local["delegations"]
        if len(w.parts) > 50_000:
            w.flush()
    w.flush()
    # 1.18 logs every write as an event and keeps each session's last sequence number (one row per session)
    conn.execute("INSERT INTO event_sequence (aggregate_id, seq) SELECT session_id, count(*) FROM"
                 " (SELECT session_id FROM message UNION ALL SELECT session_id FROM part) GROUP BY session_id")
    conn.commit()
    counts = {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
              for name in ("session", "message", "part")}
    counts["delegations"] = w.delegations
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return counts


def build_json(path: Path, roots: int = 100, seed: int = 11) -> dict:
    """A legacy storage/ directory of 1.1.65-shaped files, from a small SQLite build of the same shape."""
    tmp = path.parent / "json-source.db"
    build_sqlite(tmp, roots=roots, delegations=roots * 8, seed=seed)
    conn = sqlite3.connect(tmp)
    files = 0
    for sid, parent, title, created, updated, directory in conn.execute(
            "SELECT id, parent_id, title, time_created, time_updated, directory FROM session"):
        d = path / "session" / "p1"
        d.mkdir(parents=True, exist_ok=True)
        info = {"id": sid, "slug": "s", "version": "1.1.65", "projectID": "p1", "directory": directory,
                "title": title, "time": {"created": created, "updated": updated}}
        if parent:
            info["parentID"] = parent
        (d / f"{sid}.json").write_text(json.dumps(info, indent=2))
        files += 1
    for mid, sid, data in conn.execute("SELECT id, session_id, data FROM message"):
        d = path / "message" / sid
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{mid}.json").write_text(json.dumps({"id": mid, "sessionID": sid, **json.loads(data)}, indent=2))
        files += 1
    for pid, mid, sid, data in conn.execute("SELECT id, message_id, session_id, data FROM part"):
        d = path / "part" / mid
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{pid}.json").write_text(json.dumps({"id": pid, "sessionID": sid, "messageID": mid,
                                                   **json.loads(data)}, indent=2))
        files += 1
    conn.close()
    tmp.unlink()
    return {"files": files}
