"""A scripted model that plays believable sessions to the real Claude Code, Codex and OpenCode binaries, so that
they write the demo histories bundled in resources/demo (tools/make_demo_store.sh) and the compare-agents fixture
(tools/make_compare_agents.sh) exactly as they write a user's.

One server speaks the three APIs the agents call:
  POST /v1/messages          Anthropic Messages, streamed (Claude Code)
  POST /v1/responses         OpenAI Responses, streamed (Codex; its WebSocket attempts get a 404 and it falls back
                             to HTTP)
  POST /v1/chat/completions  OpenAI chat completions, streamed (OpenCode)

A conversation is known by its prompt (the user's, or the one a delegation gave a subagent): SCRIPTS maps each
prompt to its rounds. Round k is the answer after k model turns: a list of steps issued in parallel, or the final
text. Steps are written once for the three agents and become each one's own tools:

  agent(TYPE, DESCRIPTION, PROMPT, background)  Agent (Claude Code), task (OpenCode), spawn_agent (Codex)
  wait()                                        wait_agent on the agents still running (Codex only: the others'
                                                subagent calls return when the subagent is done)
  bash(COMMAND, DESCRIPTION)                    Bash / bash / exec_command
  read(PATH)                                    Read / read / exec_command sed -n
  edit(PATH, OLD, NEW)                          Edit / edit / exec_command python3 (Codex has no edit tool here)
  write(PATH, CONTENT)                          Write / write / exec_command cat >
  pause(SECONDS)                                the model takes that much longer to answer this round

A round with nothing for an agent (a wait, for Claude Code) is not one of its rounds. A turn after the last round
(Claude Code's notice that a background subagent finished) is answered with the script's `later` text.

Token figures follow each request: its size (4 bytes a token); the part the conversation's previous call already
sent is read from the cache (Anthropic: cache_read_input_tokens, the new part written to the cache; OpenAI:
cached_tokens in 128-token blocks); the output is what the answer holds, plus reasoning tokens for Codex. Each
answer takes the time a model would need to write it: 0.6 to 1.4 s, then about 80 tokens a second.

Usage: python3 demo_agents.py PORTFILE [VARIANT]   (a free port, written to PORTFILE; VARIANT "reworded" gives
the compare task's coder call another description)
       python3 demo_agents.py prompt NAME          (prints the prompt NAME, e.g. CHECKOUT, for the run scripts)
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VARIANT = ""
LOG = os.environ.get("DEMO_LOG")  # a file to append each request to, to see what an agent sent
MODEL_IDS = {  # what the Anthropic API answers for the aliases Claude Code sends
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}


@dataclass(frozen=True)
class Step:
    kind: str
    args: tuple


def agent(kind: str, description: str, prompt: str, background: bool = False) -> Step:
    return Step("agent", (kind, description, prompt, background))


def wait() -> Step:
    return Step("wait", ())


def bash(command: str, description: str = "") -> Step:
    return Step("bash", (command, description))


def read(path: str) -> Step:
    return Step("read", (path,))


def edit(path: str, old: str, new: str) -> Step:
    return Step("edit", (path, old, new))


def write(path: str, content: str) -> Step:
    return Step("write", (path, content))


def pause(seconds: float) -> Step:
    return Step("pause", (seconds,))


@dataclass
class Script:
    rounds: list  # each a list of Steps or the final text
    later: str | None = None
    title: str | None = None  # OpenCode's session title


# -- the demo: Claude Code in shop-api ----------------------------------------------------------------------

CHECKOUT = ("Checkout got slow after Monday's release: p95 of POST /checkout went from 180 ms to 1.4 s. Find the "
            "cause, fix it, and add a regression test so it cannot come back.")
PROFILE = ("Profile pricing a cart at checkout: run scripts/profile_checkout.py, read src/shop/checkout.py and "
           "src/shop/db.py, and find why a 40-line cart is slow. Then have a regression test written that fails "
           "while the cause is there. Report the cause with file and line, and the test's name.")
QUERY_TEST = ("Write a regression test in tests/test_checkout_queries.py: price a 40-line cart with "
              "shop.db.QueryCounter attached and assert at most 2 queries. Follow the style of "
              "tests/test_checkout.py (unittest, src on sys.path). Run it and report whether it passes; it is "
              "expected to fail until checkout is fixed.")
RELEASE = ("Review the commits of Monday's release (2.4.0) for anything that could slow checkout: queries in "
           "loops, new remote calls, lost caching. Report each finding with its commit and file.")
N_PLUS_ONE = '''    total = 0
    for line in lines:
        row = conn.execute(
            "SELECT p.price_cents, COALESCE(pr.percent_off, 0) AS off FROM products p "
            "LEFT JOIN promotions pr ON pr.sku = p.sku WHERE p.sku = ?", (line.sku,)).fetchone()
        if row is None:
            raise KeyError(line.sku)
        unit = row["price_cents"] * (100 - row["off"]) // 100
        total += unit * line.quantity
    return total
'''
BATCHED = '''    skus = sorted({line.sku for line in lines})
    marks = ",".join("?" * len(skus))
    rows = conn.execute(
        "SELECT p.sku, p.price_cents, COALESCE(pr.percent_off, 0) AS off FROM products p "
        f"LEFT JOIN promotions pr ON pr.sku = p.sku WHERE p.sku IN ({marks})", skus).fetchall()
    unit = {r["sku"]: r["price_cents"] * (100 - r["off"]) // 100 for r in rows}
    total = 0
    for line in lines:
        if line.sku not in unit:
            raise KeyError(line.sku)
        total += unit[line.sku] * line.quantity
    return total
'''
QUERY_TEST_FILE = '''import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shop.checkout import Line, price_cart  # noqa: E402
from shop.db import QueryCounter, connect, seed  # noqa: E402


class CheckoutQueryCountTest(unittest.TestCase):
    """Pricing a cart must not cost a query per line (the 2.4.0 checkout regression)."""

    def test_cart_is_priced_in_constant_queries(self):
        conn = connect()
        seed(conn)
        lines = [Line(f"SKU-{i * 11:04d}", 1) for i in range(40)]
        counter = QueryCounter(conn)
        price_cart(conn, lines)
        self.assertLessEqual(counter.count, 2, f"{counter.count} queries for {len(lines)} lines")


if __name__ == "__main__":
    unittest.main()
'''

# -- the demo: Codex in billing ------------------------------------------------------------------------------

ROUNDING = ("Invoice 88412 (ticket BILL-231) shows a total of 1,026.94 but its lines add up to 1,026.93. Find "
            "where the rounding goes wrong, fix it so that the total is always the sum of the printed lines, and "
            "cover it with a test.")
TRACE = ("Trace how an invoice's total is computed, from the lines to the PDF (src/billing/): which functions "
         "round, in what order and on which types. Answer with file:line for each rounding step; change no file.")
REPRO = ("Write a failing test for BILL-231 in tests/test_invoice_rounding.py: load fixtures/invoice_88412.json "
         "and assert that invoice_total() equals the sum of the line_total() values (1026.93). Use unittest like "
         "tests/test_invoice.py. Do not change src/. Run it and report the failure.")
INVOICE_FILE = '''"""Invoices: lines, VAT and totals."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

VAT_RATE = Decimal("0.2")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: int
    unit_price: float  # euros, VAT excluded


def line_total(line):
    """A line's amount, VAT included, rounded half up to the cent as printed on the invoice."""
    amount = Decimal(str(line.unit_price)) * line.quantity * (1 + VAT_RATE)
    return float(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def invoice_total(lines):
    """The amount due: the sum of the lines as printed (BILL-231)."""
    return float(sum((Decimal(str(line_total(line))) for line in lines), Decimal(0)))
'''
ROUNDING_TEST_FILE = '''import json
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from billing.invoice import InvoiceLine, invoice_total, line_total  # noqa: E402


class InvoiceRoundingTest(unittest.TestCase):
    """BILL-231: the total due must equal the sum of the printed lines."""

    def test_total_is_sum_of_printed_lines(self):
        data = json.loads((ROOT / "fixtures" / "invoice_88412.json").read_text())
        lines = [InvoiceLine(**line) for line in data["lines"]]
        self.assertEqual(invoice_total(lines), round(sum(line_total(line) for line in lines), 2))
        self.assertEqual(invoice_total(lines), 1026.93)


if __name__ == "__main__":
    unittest.main()
'''

# -- compare-agents: one task for OpenCode, Claude Code and Codex ----------------------------------------------

DRY_RUN = ("Add a --dry-run flag to scripts/deploy.py that prints the commands without running them, and test "
           "it.")
CODER = ("In scripts/deploy.py, add a --dry-run option: print every command as now, but run none of them. Keep the "
         "output format. Check it with a staging dry run.")
TESTER = ("Write tests/test_deploy_dry_run.py (unittest): a production dry run must print all 7 commands and run "
          "none of them (patch subprocess.run to fail the test if it is called). Run it.")
CODER_DESCRIPTION = {"": "Add the --dry-run flag", "reworded": "Implement --dry-run in deploy.py"}
DEPLOY_OLD = '''    args = p.parse_args(argv)
    for cmd in steps(args.env):
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
'''
DEPLOY_NEW = '''    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = p.parse_args(argv)
    for cmd in steps(args.env):
        print("+", " ".join(cmd), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
'''
DRY_RUN_TEST_FILE = '''import io
import sys
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import deploy  # noqa: E402


class DryRunTest(unittest.TestCase):
    def test_production_dry_run_runs_nothing(self):
        out = io.StringIO()
        with mock.patch("subprocess.run", side_effect=AssertionError("ran a command")), redirect_stdout(out):
            self.assertEqual(deploy.main(["--dry-run", "production"]), 0)
        printed = out.getvalue().splitlines()
        self.assertEqual(len(printed), 7)
        self.assertTrue(all(line.startswith("+ ") for line in printed))


if __name__ == "__main__":
    unittest.main()
'''


def scripts() -> dict[str, Script]:
    """Every scripted conversation, by its prompt (VARIANT applied)."""
    return {
        CHECKOUT: Script([
            [bash("git log --oneline -6", "Show recent commits"), read("src/shop/checkout.py")],
            [agent("general-purpose", "Profile checkout queries", PROFILE),
             agent("general-purpose", "Review the 2.4.0 commits", RELEASE, background=True)],
            [edit("src/shop/checkout.py", N_PLUS_ONE, BATCHED)],
            [bash("python3 -m unittest discover -s tests -v", "Run the test suite"),
             bash("python3 scripts/profile_checkout.py", "Profile the fixed checkout")],
            "Fixed. The cause was `price_cart()` in `src/shop/checkout.py`: since #412 (in Monday's 2.4.0 release) "
            "it runs one SELECT per cart line to apply per-SKU promotions, so a 40-line cart makes 40 round trips "
            "to the database, about 1.24 s at production latency, which matches the p95 you saw.\n\n"
            "The fix prices the whole cart in one query (`WHERE p.sku IN (...)` with the promotions joined), with "
            "the same promotion rule. The profile now shows 1 query for 40 lines (~31 ms at production latency), "
            "and all 4 tests pass, including the new `tests/test_checkout_queries.py`, which fails if pricing a "
            "cart ever takes more than 2 queries. The review of the release commits is still running in the "
            "background; I'll add what it finds.",
        ], later="The review of the 2.4.0 commits is back and agrees: #412 is the only change in the release that "
                 "touches checkout, and the per-line query was its only problem. The other commit (api-3 added to "
                 "the production hosts in scripts/deploy.py) cannot affect latency. Nothing more to fix."),
        PROFILE: Script([
            [bash("python3 scripts/profile_checkout.py", "Profile a 40-line cart")],
            [read("src/shop/checkout.py"), read("src/shop/db.py")],
            [agent("general-purpose", "Write a query-count regression test", QUERY_TEST)],
            "Cause: `price_cart()` (src/shop/checkout.py:15-18) runs one `SELECT ... WHERE p.sku = ?` per cart "
            "line, an N+1 that came with the per-SKU promotions. The profile shows 40 queries for a 40-line cart: "
            "~1.24 s at the production round trip of 31 ms, against ~31 ms for a single batched query. One "
            "`WHERE p.sku IN (...)` with the promotions LEFT JOINed gives the same totals.\n\n"
            "Regression test: `tests/test_checkout_queries.py::CheckoutQueryCountTest::"
            "test_cart_is_priced_in_constant_queries` (at most 2 queries for 40 lines). It fails now, as it should "
            "(40 queries).",
        ]),
        QUERY_TEST: Script([
            [read("tests/test_checkout.py")],
            [write("tests/test_checkout_queries.py", QUERY_TEST_FILE)],
            [bash("python3 -m unittest tests.test_checkout_queries -v", "Run the new test")],
            "Added `tests/test_checkout_queries.py` with `test_cart_is_priced_in_constant_queries`. It fails as "
            "expected until checkout is fixed: `AssertionError: 40 not less than or equal to 2 : 40 queries for "
            "40 lines`.",
        ]),
        RELEASE: Script([
            [bash("git log --stat -3 --format='%h %ad %s' --date=short", "List the release's commits")],
            [bash("git show HEAD~1 -- src/shop/checkout.py", "Show #412's change to checkout")],
            [pause(40),
             "One finding. #412 (\"Price lines individually to honour per-SKU promotions\", HEAD~1) replaced the "
             "single `WHERE sku IN (...)` lookup in `price_cart()` (src/shop/checkout.py) with a query per cart "
             "line inside the loop: an N+1 that grows with the cart. The release's other commit only adds api-3 to "
             "the production hosts in scripts/deploy.py. Suggestion: one query for the whole cart, with the "
             "promotions LEFT JOINed."],
        ]),
        ROUNDING: Script([
            [bash("grep -rn 'round(' src/billing")],
            [agent("explorer", "Trace the rounding", TRACE), agent("worker", "Reproduce BILL-231", REPRO)],
            [wait()],
            [write("src/billing/invoice.py", INVOICE_FILE)],
            [bash("python3 -m unittest discover -s tests -v")],
            "Fixed BILL-231. `invoice_total()` (src/billing/invoice.py) rounded the VAT-inclusive sum of the "
            "unrounded lines, while each printed line is rounded on its own: for invoice 88412 that is 1,026.94 "
            "against 1,026.93 for the three printed lines (747.024, 251.10 and 28.812 before rounding).\n\n"
            "Amounts are now Decimal, each line rounded half up to the cent, and the total is the sum of the "
            "rounded lines, so the PDF's total always equals its rows. The explorer found no other place that "
            "computes a total (the PDF renderer calls both functions). The worker's test, "
            "tests/test_invoice_rounding.py (invoice 88412 from fixtures/), failed before the change; all 3 tests "
            "pass now.",
        ]),
        TRACE: Script([
            [bash("sed -n '1,40p' src/billing/invoice.py"), bash("cat src/billing/pdf.py")],
            [bash("grep -rn 'invoice_total\\|line_total' src/")],
            "Two roundings, both on floats:\n"
            "- src/billing/invoice.py:17 `line_total()` rounds each line (quantity x price x 1.2) to the cent. "
            "For invoice 88412: 747.02, 251.10, 28.81 (sum 1,026.93).\n"
            "- src/billing/invoice.py:22 `invoice_total()` rounds once, after summing the unrounded lines: "
            "855.78 x 1.2 = 1,026.936, so 1,026.94.\n"
            "The PDF (src/billing/pdf.py:7-8) prints the rows from `line_total()` and the total from "
            "`invoice_total()`, so the two disagree whenever the lines' rounding errors add up past half a cent. "
            "Nothing else computes a total.",
        ]),
        REPRO: Script([
            [bash("cat fixtures/invoice_88412.json"), bash("sed -n '1,20p' tests/test_invoice.py")],
            [write("tests/test_invoice_rounding.py", ROUNDING_TEST_FILE)],
            [bash("python3 -m unittest tests.test_invoice_rounding -v")],
            "Added tests/test_invoice_rounding.py (`test_total_is_sum_of_printed_lines`). It fails on the current "
            "code: `AssertionError: 1026.94 != 1026.93`. src/ is unchanged.",
        ]),
        DRY_RUN: Script([
            [read("scripts/deploy.py")],
            [agent("coder", CODER_DESCRIPTION[VARIANT], CODER)],
            [wait()],
            [agent("tester", "Test the dry-run flag", TESTER)],
            [wait()],
            "Done: `scripts/deploy.py --dry-run ENV` prints each command, prefixed with `+` as before, and runs "
            "none of them. tests/test_deploy_dry_run.py checks that a production dry run prints the 7 commands "
            "and calls nothing; it passes.",
        ], title="Add --dry-run to the deploy script"),
        CODER: Script([
            [read("scripts/deploy.py")],
            [edit("scripts/deploy.py", DEPLOY_OLD, DEPLOY_NEW)],
            [bash("python3 scripts/deploy.py --dry-run staging", "Dry-run a staging deploy")],
            "Added `--dry-run` to scripts/deploy.py: the commands are printed as before and none is run. A staging "
            "dry run prints the build, the copy to stg-api-1 and the restart.",
        ]),
        TESTER: Script([
            [write("tests/test_deploy_dry_run.py", DRY_RUN_TEST_FILE)],
            [bash("python3 -m unittest tests.test_deploy_dry_run -v", "Run the dry-run test")],
            "tests/test_deploy_dry_run.py: `test_production_dry_run_runs_nothing` passes (7 commands printed, "
            "subprocess.run never called).",
        ]),
    }


SCRIPTS: dict[str, Script] = {}


def script_of(text: str) -> tuple[str, Script] | None:
    text = text.strip().strip('"')  # OpenCode quotes the prompt of `opencode run`
    for key, script in SCRIPTS.items():
        if text.startswith(key):
            return key, script
    return None


# -- one step as each agent's tool call ----------------------------------------------------------------------

def claude_call(step: Step, cwd: str) -> tuple[str, dict] | None:
    if step.kind == "agent":
        kind, description, prompt, background = step.args
        return "Agent", {"description": description, "prompt": prompt, "subagent_type": kind,
                         "run_in_background": background}
    if step.kind == "bash":
        return "Bash", {"command": step.args[0], "description": step.args[1]}
    if step.kind == "read":
        return "Read", {"file_path": f"{cwd}/{step.args[0]}"}
    if step.kind == "edit":
        return "Edit", {"file_path": f"{cwd}/{step.args[0]}", "old_string": step.args[1], "new_string": step.args[2]}
    if step.kind == "write":
        return "Write", {"file_path": f"{cwd}/{step.args[0]}", "content": step.args[1]}
    return None


def opencode_call(step: Step, cwd: str) -> tuple[str, dict] | None:
    if step.kind == "agent":
        kind, description, prompt, _background = step.args
        return "task", {"description": description, "prompt": prompt, "subagent_type": kind}
    if step.kind == "bash":
        return "bash", {"command": step.args[0], "description": step.args[1] or step.args[0][:40]}
    if step.kind == "read":
        return "read", {"filePath": f"{cwd}/{step.args[0]}"}
    if step.kind == "edit":
        return "edit", {"filePath": f"{cwd}/{step.args[0]}", "oldString": step.args[1], "newString": step.args[2]}
    if step.kind == "write":
        return "write", {"filePath": f"{cwd}/{step.args[0]}", "content": step.args[1]}
    return None


def codex_call(step: Step, pending: list[str]) -> tuple[str, dict] | None:
    if step.kind == "agent":
        kind, _description, prompt, _background = step.args
        return "spawn_agent", {"message": prompt, "agent_type": kind}
    if step.kind == "wait":
        return "wait_agent", {"targets": pending, "timeout_ms": 300000}
    if step.kind == "bash":
        return "exec_command", {"cmd": step.args[0]}
    if step.kind == "read":
        return "exec_command", {"cmd": f"sed -n '1,200p' {step.args[0]}"}
    if step.kind == "edit":
        path, old, new = step.args
        code = (f"from pathlib import Path\np = Path({path!r})\ntext = p.read_text()\nold = {old!r}\n"
                f"new = {new!r}\nassert text.count(old) == 1\np.write_text(text.replace(old, new))\n")
        return "exec_command", {"cmd": f"python3 - <<'PY'\n{code}PY"}
    if step.kind == "write":
        return "exec_command", {"cmd": f"cat > {step.args[0]} <<'EOF'\n{step.args[1]}EOF"}
    return None


def issued(rounds: list, translate) -> list:
    """The rounds an agent sees: each step translated (None: not for this agent), empty rounds left out; a round
    is (calls, pause) or (text, pause)."""
    out = []
    for r in rounds:
        if isinstance(r, str):
            out.append((r, 0.0))
            continue
        steps = [s for s in r if isinstance(s, Step)]
        delay = sum(s.args[0] for s in steps if s.kind == "pause")
        texts = [s for s in r if isinstance(s, str)]
        if texts:
            out.append((texts[0], delay))
            continue
        calls = [c for c in (translate(s) for s in steps if s.kind != "pause") if c is not None]
        if calls:
            out.append((calls, delay))
    return out


# -- figures ------------------------------------------------------------------------------------------------

ids = random.Random()  # seeded by the system: two runs, or a demo and a fixture, never share an id
ids_lock = threading.Lock()


def new_id(prefix: str, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    with ids_lock:
        return prefix + "".join(ids.choice(alphabet) for _ in range(n))


def output_tokens(answer: str | list) -> int:
    if isinstance(answer, str):
        return 12 + len(answer) // 4
    return sum(20 + len(json.dumps(args)) // 4 for _name, args in answer)


def think(answer: str | list, delay: float) -> None:
    """As long as a model takes to write this answer."""
    h = zlib.crc32(json.dumps(answer).encode())
    time.sleep(0.6 + (h % 9) / 10 + output_tokens(answer) / 80 + delay)


# -- the three APIs -----------------------------------------------------------------------------------------

def texts_of(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append(part["text"])
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a) -> None:
        pass

    def _json(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, data: dict, name: str | None = None) -> None:
        head = f"event: {name}\n" if name else ""
        self.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802
        self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
        req = json.loads(raw)
        if LOG:
            with ids_lock, open(LOG, "a") as f:
                f.write(json.dumps({"path": self.path, "body": req}) + "\n")
        path = self.path.split("?")[0]
        if path.endswith("/count_tokens"):
            self._json(200, {"input_tokens": len(raw) // 4})
        elif path.endswith("/v1/messages"):
            self.messages_api(req, len(raw))
        elif path.endswith("/responses"):
            self.responses_api(req, len(raw))
        elif path.endswith("/chat/completions"):
            self.chat_api(req, len(raw))
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})

    # Anthropic Messages (Claude Code)

    def messages_api(self, req: dict, size: int) -> None:
        msgs = req.get("messages") or []
        found, at = None, 0
        for i, m in enumerate(msgs):
            if m.get("role") != "user":
                continue
            for t in texts_of(m.get("content")):
                if not t.startswith("<") and (found := script_of(t)):
                    break
            if found:
                at = i
                break
        cwd = _first(r"Primary working directory: (\S+)", json.dumps(req))
        if not req.get("tools") or found is None:
            answer, delay = "OK.", 0.0
        else:
            _key, script = found
            rounds = issued(script.rounds, lambda s: claude_call(s, cwd))
            done = sum(1 for m in msgs[at + 1:] if m.get("role") == "assistant")
            answer, delay = rounds[done] if done < len(rounds) else (script.later or rounds[-1][0], 0.0)
        think(answer, delay)
        total = size // 4
        earlier = (size - len(json.dumps(msgs[-2:]))) // 4 if len(msgs) >= 3 else 0
        inp = 3 + total % 5
        usage = {"input_tokens": inp, "cache_creation_input_tokens": max(total - earlier - inp, 0),
                 "cache_read_input_tokens": earlier, "output_tokens": output_tokens(answer)}
        model = MODEL_IDS.get(req.get("model", ""), req.get("model", "claude-sonnet-4-5-20250929"))
        mid = new_id("msg_01", 22)
        if isinstance(answer, str):
            content, stop = [{"type": "text", "text": answer}], "end_turn"
        else:
            content = [{"type": "tool_use", "id": new_id("toolu_01", 22), "name": n, "input": a} for n, a in answer]
            stop = "tool_use"
        if not req.get("stream"):
            self._json(200, {"id": mid, "type": "message", "role": "assistant", "model": model, "content": content,
                             "stop_reason": stop, "stop_sequence": None, "usage": usage})
            return
        self._stream()
        self._event({"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": dict(usage, output_tokens=1)}}, "message_start")
        for i, block in enumerate(content):
            if block["type"] == "text":
                self._event({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                            "content_block_start")
                for word in re.findall(r"\S+\s*", block["text"]):
                    self._event({"type": "content_block_delta", "index": i,
                                 "delta": {"type": "text_delta", "text": word}}, "content_block_delta")
            else:
                self._event({"type": "content_block_start", "index": i, "content_block": dict(block, input={})},
                            "content_block_start")
                js = json.dumps(block["input"])
                for k in range(0, len(js), 60):
                    self._event({"type": "content_block_delta", "index": i,
                                 "delta": {"type": "input_json_delta", "partial_json": js[k:k + 60]}},
                                "content_block_delta")
            self._event({"type": "content_block_stop", "index": i}, "content_block_stop")
        self._event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                     "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
        self._event({"type": "message_stop"}, "message_stop")

    # OpenAI Responses (Codex)

    def responses_api(self, req: dict, size: int) -> None:
        items = req.get("input") or []
        names, namespace = {}, {}
        for t in req.get("tools") or []:
            for sub in t.get("tools") or [] if t.get("type") == "namespace" else [t]:
                if sub.get("name"):
                    names[sub["name"]] = sub
                    if t.get("type") == "namespace":
                        namespace[sub["name"]] = t["name"]
        found, at = None, 0
        for i in range(len(items) - 1, -1, -1):  # the newest task: a forked child holds its parent's too
            it = items[i]
            if it.get("type") == "message" and it.get("role") == "user" or it.get("type") == "agent_message":
                for t in texts_of(it.get("content")):
                    if found := script_of(t):
                        break
                if found:
                    at = i
                    break
        if found is None:
            answer, delay = "OK.", 0.0
        else:
            answer, delay = self._codex_round(found[1], items[at + 1:])
        think(answer, delay)
        total = size // 4
        earlier = 0
        last_model = max((i for i, it in enumerate(items) if _model_item(it)), default=None)
        if last_model is not None:
            earlier = len(json.dumps(items[last_model + 1:]))
            earlier = max((size - earlier) // 4, 0) // 128 * 128
        reasoning = 64 * (1 + zlib.crc32(json.dumps(answer).encode()) % 6)
        out = output_tokens(answer) + reasoning
        usage = {"input_tokens": total, "input_tokens_details": {"cached_tokens": earlier}, "output_tokens": out,
                 "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": total + out}
        rid = "resp_" + new_id("", 48, "0123456789abcdef")
        base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": req.get("model")}
        self._stream()
        self._event({"type": "response.created", "response": dict(base, status="in_progress", output=[])})
        output = []
        if isinstance(answer, str):
            mid = "msg_" + new_id("", 48, "0123456789abcdef")
            self._event({"type": "response.output_item.added", "output_index": 0, "item": {
                "type": "message", "id": mid, "role": "assistant", "status": "in_progress", "content": []}})
            for word in re.findall(r"\S+\s*", answer):
                self._event({"type": "response.output_text.delta", "item_id": mid, "output_index": 0,
                             "content_index": 0, "delta": word})
            item = {"type": "message", "id": mid, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}]}
            self._event({"type": "response.output_item.done", "output_index": 0, "item": item})
            output.append(item)
        else:
            for i, (name, args) in enumerate(answer):
                item = {"type": "function_call", "id": "fc_" + new_id("", 48, "0123456789abcdef"),
                        "call_id": new_id("call_", 24), "name": name, "arguments": json.dumps(args),
                        "status": "completed"}
                if name in namespace:
                    item["namespace"] = namespace[name]
                self._event({"type": "response.output_item.added", "output_index": i,
                             "item": dict(item, arguments="", status="in_progress")})
                self._event({"type": "response.function_call_arguments.done", "item_id": item["id"],
                             "output_index": i, "arguments": item["arguments"]})
                self._event({"type": "response.output_item.done", "output_index": i, "item": item})
                output.append(item)
        self._event({"type": "response.completed",
                     "response": dict(base, status="completed", output=output, usage=usage)})

    def _codex_round(self, script: Script, after: list) -> tuple[str | list, float]:
        """This turn's answer: the rounds in order, a wait round repeated while a spawned agent still runs."""
        runs = []  # (index of a run of model items, index where the next run starts)
        i = 0
        while i < len(after):
            if _model_item(after[i]):
                j = i
                while j < len(after) and _model_item(after[j]):
                    j += 1
                runs.append(i)
                i = j
            else:
                i += 1
        runs.append(len(after))
        rounds = script.rounds
        k = 0
        for n in range(len(runs) - 1):
            if k < len(rounds) and _is_wait(rounds[k]) and _pending(after[:runs[n + 1]]):
                continue
            k += 1
        pending = _pending(after)
        while k < len(rounds) and _is_wait(rounds[k]) and not pending:
            k += 1
        if k >= len(rounds):
            return rounds[-1] if isinstance(rounds[-1], str) else "Done.", 0.0
        (answer, delay), = issued([rounds[k]], lambda s: codex_call(s, pending))
        return answer, delay

    # OpenAI chat completions (OpenCode)

    def chat_api(self, req: dict, size: int) -> None:
        msgs = req.get("messages") or []
        found, at = None, 0
        for i, m in enumerate(msgs):
            if m.get("role") == "user":
                for t in texts_of(m.get("content")):
                    if found := script_of(t):
                        break
                if found:
                    at = i
                    break
        if not req.get("tools"):  # OpenCode asks for a title
            answer, delay = (found[1].title if found and found[1].title else "Session"), 0.0
        elif found is None:
            answer, delay = "Done.", 0.0
        else:
            cwd = _first(r"Working directory: (\S+)", json.dumps(req))
            rounds = issued(found[1].rounds, lambda s: opencode_call(s, cwd))
            done = sum(1 for m in msgs[at + 1:] if m.get("role") == "assistant")
            answer, delay = rounds[done] if done < len(rounds) else (found[1].later or rounds[-1][0], 0.0)
        think(answer, delay)
        self._stream()
        cid = new_id("chatcmpl-", 24)

        def chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> None:
            d = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": req.get("model"),
                 "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                d["usage"] = usage
            self._event(d)

        chunk({"role": "assistant", "content": ""})
        if isinstance(answer, str):
            for word in re.findall(r"\S+\s*", answer):
                chunk({"content": word})
            chunk({}, "stop")
        else:
            for i, (name, args) in enumerate(answer):
                chunk({"tool_calls": [{"index": i, "id": new_id("call_", 24), "type": "function",
                                       "function": {"name": name, "arguments": json.dumps(args)}}]})
            chunk({}, "tool_calls")
        tin, tout = size // 4, output_tokens(answer)
        chunk(None, usage={"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _first(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    return m.group(1).replace("\\n", "").rstrip("\\") if m else "."


def _model_item(it: dict) -> bool:
    return it.get("type") in ("function_call", "custom_tool_call", "reasoning") or (
        it.get("type") == "message" and it.get("role") == "assistant")


def _is_wait(r: object) -> bool:
    return isinstance(r, list) and any(s.kind == "wait" for s in r)


def _pending(items: list) -> list[str]:
    """The agents spawned in these items whose end no wait_agent result has reported yet."""
    spawns, spawned, done = set(), [], set()
    for it in items:
        if it.get("type") == "function_call" and it.get("name") == "spawn_agent":
            spawns.add(it.get("call_id"))
        elif it.get("type") == "function_call_output":
            out = it.get("output")
            out = out if isinstance(out, str) else json.dumps(out)
            try:
                value = json.loads(out)
            except ValueError:
                continue
            if not isinstance(value, dict):
                continue
            if it.get("call_id") in spawns and isinstance(value.get("agent_id"), str):
                spawned.append(value["agent_id"])
            elif isinstance(value.get("status"), dict):
                done.update(k for k, v in value["status"].items() if isinstance(v, dict) and v)
    return [a for a in spawned if a not in done]


if __name__ == "__main__":
    if sys.argv[1] == "prompt":  # a prompt by its name, for the scripts that start the agents
        print(globals()[sys.argv[2]])
        sys.exit()
    VARIANT = sys.argv[2] if len(sys.argv) > 2 else ""
    SCRIPTS.update(scripts())
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
