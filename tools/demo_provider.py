"""A scripted OpenAI-compatible provider that plays a few believable engineering sessions, so that the real
`opencode` binary writes the demo store bundled in resources/demo (see tools/make_demo_store.sh).

Each script is keyed by the start of the user message that opens a turn (the user's prompt, or the prompt a
`task` call gave a subagent) and lists rounds: round k is the answer after k tool rounds. A round is a list
of tool calls (issued in parallel) or a final text. `resume:` in a task prompt resumes the child session
named in an earlier task result. `FAIL` answers HTTP 400, which OpenCode does not retry.
"""

from __future__ import annotations

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count

ids = count(1)


def task(agent: str, description: str, prompt: str) -> tuple:
    return ("task", {"description": description, "prompt": prompt, "subagent_type": agent})


def bash(command: str, description: str) -> tuple:
    return ("bash", {"command": command, "description": description})


RATE = "Add rate limiting to the API client: at most 10 requests per second per host, with retries on 429."
COORD = ("Plan and drive the rate-limiting change in src/api/client.py. Split it into an implementation and a "
         "test task, run them, then have the result reviewed. Report what changed and anything left open.")
IMPL = ("Implement a token-bucket limiter in src/api/ratelimit.py (10 tokens/s per host, burst 10) and use it in "
        "ApiClient.request(). On HTTP 429, honour Retry-After, retry at most 3 times, then raise RateLimited.")
TESTS = ("Write pytest tests for the rate limiter: burst then throttle, per-host isolation, Retry-After handling "
         "and the RateLimited error after 3 retries. Use a fake clock; no sleeping in tests.")
REFAC = ("The tests need a clock seam: refactor ApiClient so the limiter and the sleep function are injected "
         "(default: time.monotonic / time.sleep). Keep the public API unchanged.")
REVIEW = "Review the rate-limiting diff (src/api/ratelimit.py, src/api/client.py, tests/test_ratelimit.py)."
EXPORT = "The nightly export job fails on large accounts since Tuesday. Find out why and propose a fix."
FIND = "Find the nightly export job: entry point, scheduler config, and where it pages through accounts."
LOGS = "Read logs/export-*.log from the last three nights and summarise every error with its first occurrence."
REPRO = "Reproduce the export failure with the 'acme-large' fixture and capture the traceback."
ORM = "Upgrade SQLAlchemy from 1.4 to 2.0 across the codebase."
ORM_PLAN = "Inventory every SQLAlchemy 1.x idiom in src/ (Query API, implicit autocommit, engine.execute) and " \
           "write the migration plan, module by module."
ORM_CODE = "Migrate src/db/models.py and src/db/session.py to SQLAlchemy 2.0 style (select(), Session.execute)."
ORM_MORE = "resume: Now migrate src/reports/*.py the same way, and run the report tests."

SCRIPTS: dict[str, list] = {
    RATE: [[task("coordinator", "Rate-limit the API client", COORD)],
           "Rate limiting is in: a per-host token bucket (10 req/s, burst 10) in `src/api/ratelimit.py`, used by "
           "`ApiClient.request()`; 429 responses honour Retry-After and give up after 3 retries with "
           "`RateLimited`. 14 new tests pass; the reviewer's one remark (jitter on retries) is filed as a TODO."],
    COORD: [[task("coder", "Implement token bucket", IMPL), task("tester", "Test the limiter", TESTS)],
            [task("reviewer", "Review rate limiting", REVIEW)],
            "Done. Implementation and tests are in; review approved with one suggestion (add jitter)."],
    IMPL: [[bash("sed -n '1,80p' src/api/client.py", "Read the client")],
           [bash("python -m compileall -q src/api", "Compile the package")],
           "Added `TokenBucket` (src/api/ratelimit.py, 58 lines) and wired it into `ApiClient.request()`; 429 "
           "handling retries up to 3 times using Retry-After, then raises `RateLimited`."],
    TESTS: [[bash("ls tests", "List the tests")],
            [task("refactoring", "Inject the clock", REFAC)],
            [bash("pytest -q tests/test_ratelimit.py", "Run the new tests")],
            "14 tests in tests/test_ratelimit.py, all passing in 0.21 s with a fake clock."],
    REFAC: [[bash("grep -n 'time\\.' src/api/client.py", "Find the clock calls")],
            "ApiClient now takes `clock=` and `sleep=` (defaults time.monotonic / time.sleep); no public change."],
    REVIEW: ["Approved. The bucket is per host and thread-safe; Retry-After is parsed for both seconds and HTTP "
             "dates. Suggestion: add jitter to the retry delay so clients do not retry in lockstep."],
    EXPORT: [[task("explore", "Find the export job", FIND), task("explore", "Read the export logs", LOGS)],
             [task("general", "Reproduce on acme-large", REPRO)],
             "The job pages accounts with OFFSET, and since Tuesday's index change each page re-sorts the whole "
             "table: pages past ~40k rows time out after 300 s. Fix: keyset pagination on (account_id). The "
             "reproduction could not run here (see the failed subagent): the fixture needs the staging database."],
    FIND: [[bash("grep -rn 'nightly_export' src/ config/", "Find the job")],
           "Entry point `src/jobs/export.py:run_nightly`, scheduled in `config/cron.yaml` at 02:00; it pages "
           "through accounts with `LIMIT 500 OFFSET n` in `iter_accounts()`."],
    LOGS: [[bash("grep -h ERROR logs/export-*.log | head -50", "Collect the errors")],
           "Three nights, one error class: `statement timeout` in iter_accounts() at offset 40500 (Tue), "
           "39000 (Wed), 41000 (Thu). First seen Tuesday 02:41."],
    REPRO: ["FAIL"],
    ORM: [[task("planner", "Plan the ORM upgrade", ORM_PLAN)],
          "SQLAlchemy 2.0 migration done for src/db and src/reports (both subagent turns); remaining: "
          "src/admin (3 files), listed in MIGRATION.md."],
    ORM_PLAN: [[bash("grep -rln 'session.query\\|engine.execute' src/", "Inventory 1.x idioms")],
               [task("coder", "Migrate db layer", ORM_CODE)],
               [task("coder", "Migrate reports", ORM_MORE)],
               "Plan written to MIGRATION.md: db layer and reports migrated; admin left for a later pass."],
    ORM_CODE: [[bash("pytest -q tests/db", "Run the db tests")],
               "models.py and session.py use select()/Session.execute; 31 db tests pass."],
    "Now migrate src/reports": [[bash("pytest -q tests/reports", "Run the report tests")],
                                "src/reports migrated (4 files); 12 report tests pass."],
}
SLOW = {ORM_CODE: 1.2, "Now migrate src/reports": 1.2}  # seconds more per answer: the migrations take a while
TITLES = {RATE: "Rate limiting for the API client", EXPORT: "Nightly export fails on large accounts",
          ORM: "SQLAlchemy 2.0 upgrade"}


def text_of(message: dict) -> str:
    c = message.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "\n".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def script_for(text: str) -> tuple[str, list] | None:
    text = text.strip().strip('"')
    for key, rounds in SCRIPTS.items():
        if text.startswith(key) or key.startswith(text[:60]) and len(text) > 20:
            return key, rounds
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._json(200, {"object": "list", "data": [{"id": "demo-1", "object": "model"}]})

    def _json(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:  # noqa: N802
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        msgs = req.get("messages", [])
        has_tools = bool(req.get("tools"))
        last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=0)
        user = text_of(msgs[last_user]) if msgs else ""
        rounds_done = sum(1 for m in msgs[last_user + 1:] if m.get("role") == "assistant")
        tin = 2400 + len(json.dumps(msgs)) // 4
        final, calls = None, []
        if not has_tools:  # OpenCode asks for a session title
            found = next((t for k, t in TITLES.items() if k[:40] in user), None)
            final = found or user.strip().strip('"')[:48]
        else:
            found = script_for(user)
            if found is None:
                final = "Done."
            else:
                key, rounds = found
                time.sleep(SLOW.get(key, 0))
                step = rounds[min(rounds_done, len(rounds) - 1)]
                if step == "FAIL":
                    time.sleep(0.8)
                    self._json(400, {"error": {"message": "fixture 'acme-large' needs the staging database "
                                                          "(connection refused)", "type": "invalid_request_error"}})
                    return
                if isinstance(step, str):
                    final = step
                else:
                    for name, args in step:
                        args = dict(args)
                        m = re.match(r"resume: (.*)", args.get("prompt", ""), re.S)
                        if m:  # resume the child session an earlier task call of this turn created
                            turn = "\n".join(text_of(m) for m in msgs[last_user:])
                            earlier = re.findall(r'<task id="(ses_\w+)"', turn)
                            args["prompt"] = m.group(1)
                            if earlier:
                                args["task_id"] = earlier[0]
                        calls.append((name, args))
        time.sleep(0.25 + 0.1 * (len(user) % 7))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        cid = f"chatcmpl-{next(ids)}"

        def chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> None:
            d = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": "demo-1",
                 "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                d["usage"] = usage
            self.wfile.write(b"data: " + json.dumps(d).encode() + b"\n\n")
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if final is not None:
            for word in re.findall(r"\S+\s*", final):
                chunk({"content": word})
            chunk({}, "stop")
            tout = 40 + len(final) // 3
        else:
            for i, (name, args) in enumerate(calls):
                chunk({"tool_calls": [{"index": i, "id": f"call_{next(ids)}_{i}", "type": "function",
                                       "function": {"name": name, "arguments": json.dumps(args)}}]})
            chunk({}, "tool_calls")
            tout = 60 + sum(len(json.dumps(a)) for _, a in calls) // 3
        chunk(None, usage={"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8766), Handler).serve_forever()
