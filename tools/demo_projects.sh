# The neutral home the demo histories are made in, and the small projects the agents work on in it. Sourced by
# tools/make_demo_store.sh and tools/make_compare_agents.sh (after `set -euo pipefail`).
#
#   demo_home DIR        DIR (default /home/demo) made empty and used as HOME: every path an agent stores then
#                        reads like a user's (/home/demo/code/shop-api), not like the machine that made it. A DIR
#                        that exists must hold the marker this function leaves, so no real home is ever wiped.
#   seed_shop_api DIR    a git repository: a small storefront API (checkout, catalogue, an outbound API client, a
#                        deploy script) whose history has Monday's release bring an N+1 query into checkout
#   seed_billing DIR     a git repository: invoices (a total off by a cent against its lines), the nightly export
#                        job and three nights of its logs
#
# Commits are dated days before the runs, so that the histories' git context reads as a real repository's.

MARKER=.agent-traces-demo-home

demo_home() {
  local dir=${1:-/home/demo}
  if [ -e "$dir" ] && [ ! -e "$dir/$MARKER" ]; then
    echo "$dir exists and was not made by this script: give another folder (DEMO_HOME=...)" >&2
    exit 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir/code" "$dir/.cache"
  touch "$dir/$MARKER"
  HOME=$dir
  export HOME XDG_DATA_HOME= XDG_CONFIG_HOME= XDG_CACHE_HOME= XDG_STATE_HOME=
}

_git() {  # _git DAYS_AGO ARGS...: git as the project's author, dated DAYS_AGO days before now
  local when; when=$(date -d "-$1 days" '+%Y-%m-%dT%H:%M:%S')
  shift
  GIT_AUTHOR_DATE=$when GIT_COMMITTER_DATE=$when git -c user.name='Dana Reyes' -c user.email=dana@shop.example \
    -c commit.gpgsign=false "$@"
}

_commit() {  # _commit DAYS_AGO MESSAGE: everything in the working tree, committed
  git add -A && _git "$1" commit -qm "$2"
}

seed_shop_api() {
  mkdir -p "$1" && cd "$1" && git init -q -b main
  mkdir -p src/api src/shop tests scripts
  cat > README.md <<'EOF'
# shop-api

The storefront's HTTP API: carts, checkout and orders, plus the client it uses to call the payment and
shipping services. `python3 -m unittest discover -s tests` runs the tests; `scripts/deploy.py ENV` deploys.
EOF
  cat > src/api/__init__.py <<'EOF'
EOF
  cat > src/api/client.py <<'EOF'
"""The HTTP client shop-api uses to call the payment and shipping services."""

import json
import time
import urllib.request


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


class ApiClient:
    def __init__(self, base_url, token, timeout=10.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method, path, payload=None):
        """One call; the response body decoded from JSON."""
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        started = time.time()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode("utf-8", "replace")) from e
        finally:
            self.last_duration = time.time() - started
EOF
  cat > src/shop/__init__.py <<'EOF'
EOF
  cat > src/shop/db.py <<'EOF'
"""The catalogue database: SQLite in tests and scripts, PostgreSQL in production (the same SQL)."""

import sqlite3


def connect(path=":memory:"):
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def seed(conn, products=500):
    """A catalogue of `products` SKUs, every seventh one 10% off."""
    conn.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT, price_cents INTEGER)")
    conn.execute("CREATE TABLE promotions (sku TEXT PRIMARY KEY, percent_off INTEGER)")
    conn.executemany("INSERT INTO products VALUES (?, ?, ?)",
                     [(f"SKU-{i:04d}", f"Product {i}", 500 + 37 * i % 4500) for i in range(products)])
    conn.executemany("INSERT INTO promotions VALUES (?, ?)", [(f"SKU-{i:04d}", 10) for i in range(0, products, 7)])


class QueryCounter:
    """Counts the statements a connection runs."""

    def __init__(self, conn):
        self.count = 0
        conn.set_trace_callback(self._seen)

    def _seen(self, sql):
        self.count += 1
EOF
  cat > src/shop/checkout.py <<'EOF'
"""Pricing a cart at checkout."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


def price_cart(conn, lines):
    """The cart's total in cents."""
    skus = sorted({line.sku for line in lines})
    marks = ",".join("?" * len(skus))
    prices = dict(conn.execute(f"SELECT sku, price_cents FROM products WHERE sku IN ({marks})", skus).fetchall())
    total = 0
    for line in lines:
        if line.sku not in prices:
            raise KeyError(line.sku)
        total += prices[line.sku] * line.quantity
    return total
EOF
  cat > tests/test_checkout.py <<'EOF'
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shop.checkout import Line, price_cart  # noqa: E402
from shop.db import connect, seed  # noqa: E402


class PriceCartTest(unittest.TestCase):
    def setUp(self):
        self.conn = connect()
        seed(self.conn)

    def test_total_of_two_lines(self):
        self.assertEqual(price_cart(self.conn, [Line("SKU-0001", 2), Line("SKU-0002", 1)]), 2 * 537 + 574)

    def test_unknown_sku(self):
        with self.assertRaises(KeyError):
            price_cart(self.conn, [Line("SKU-9999", 1)])


if __name__ == "__main__":
    unittest.main()
EOF
  cat > scripts/profile_checkout.py <<'EOF'
"""Profile pricing a 40-line cart: statements run, and the time they would take against production."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shop.checkout import Line, price_cart  # noqa: E402
from shop.db import QueryCounter, connect, seed  # noqa: E402

ROUND_TRIP_MS = 31  # p50 of a query from the API hosts to the production database

conn = connect()
seed(conn)
lines = [Line(f"SKU-{i * 11:04d}", 1 + i % 3) for i in range(40)]
counter = QueryCounter(conn)
started = time.perf_counter()
total = price_cart(conn, lines)
local_ms = (time.perf_counter() - started) * 1000
print(f"{len(lines)} lines, total {total} cents")
print(f"{counter.count} queries, {local_ms:.1f} ms locally, ~{counter.count * ROUND_TRIP_MS} ms at {ROUND_TRIP_MS} ms per round trip")
EOF
  cat > scripts/deploy.py <<'EOF'
"""Deploy shop-api: build the wheel, copy it to each host of the environment, restart the service there."""

import argparse
import subprocess
import sys

HOSTS = {"staging": ["stg-api-1"], "production": ["api-1", "api-2", "api-3"]}


def steps(env):
    """The commands a deploy runs, in order."""
    out = [["python3", "-m", "build", "--wheel"]]
    for host in HOSTS[env]:
        out.append(["scp", "dist/shop_api-latest.whl", f"{host}:/srv/shop-api/"])
        out.append(["ssh", host, "sudo systemctl restart shop-api"])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("env", choices=sorted(HOSTS))
    args = p.parse_args(argv)
    for cmd in steps(args.env):
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
EOF
  printf '__pycache__/\ndist/\n' > .gitignore
  _commit 12 "shop-api: carts, checkout, catalogue"
  sed -i 's/^        self.timeout = timeout$/        self.timeout = timeout\n        self.last_duration = None/' src/api/client.py
  _commit 9 "ApiClient keeps the duration of its last call"
  cat > src/shop/checkout.py <<'EOF'
"""Pricing a cart at checkout."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


def price_cart(conn, lines):
    """The cart's total in cents, promotions applied per SKU."""
    total = 0
    for line in lines:
        row = conn.execute(
            "SELECT p.price_cents, COALESCE(pr.percent_off, 0) AS off FROM products p "
            "LEFT JOIN promotions pr ON pr.sku = p.sku WHERE p.sku = ?", (line.sku,)).fetchone()
        if row is None:
            raise KeyError(line.sku)
        unit = row["price_cents"] * (100 - row["off"]) // 100
        total += unit * line.quantity
    return total
EOF
  sed -i 's/^    def test_unknown_sku(self):$/    def test_promotion(self):\n        self.assertEqual(price_cart(self.conn, [Line("SKU-0007", 3)]), 3 * (759 * 90 \/\/ 100))\n\n    def test_unknown_sku(self):/' tests/test_checkout.py
  _commit 5 "Price lines individually to honour per-SKU promotions (#412)"
  sed -i 's/^HOSTS = /# api-3 joined production on the 14th\nHOSTS = /' scripts/deploy.py
  _commit 4 "Release 2.4.0"
  cd - > /dev/null
}

seed_billing() {
  mkdir -p "$1" && cd "$1" && git init -q -b main
  mkdir -p src/billing src/jobs src/db src/reports config fixtures tests logs
  cat > README.md <<'EOF'
# billing

Invoices, VAT and the nightly export of account balances to the accounting system.
`python3 -m unittest discover -s tests` runs the tests.
EOF
  : > src/billing/__init__.py
  cat > src/billing/invoice.py <<'EOF'
"""Invoices: lines, VAT and totals."""

from dataclasses import dataclass

VAT_RATE = 0.2


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: int
    unit_price: float  # euros, VAT excluded


def line_total(line):
    """A line's amount, VAT included, as printed on the invoice."""
    return round(line.quantity * line.unit_price * (1 + VAT_RATE), 2)


def invoice_total(lines):
    """The amount due, VAT included."""
    return round(sum(line.quantity * line.unit_price for line in lines) * (1 + VAT_RATE), 2)
EOF
  cat > src/billing/pdf.py <<'EOF'
"""The invoice as the PDF renderer lays it out (one row per line, then the total)."""

from billing.invoice import invoice_total, line_total


def rows(lines):
    out = [(line.description, line.quantity, f"{line_total(line):.2f}") for line in lines]
    out.append(("Total due", "", f"{invoice_total(lines):.2f}"))
    return out
EOF
  cat > fixtures/invoice_88412.json <<'EOF'
{"invoice": 88412, "account": "acme-large", "lines": [
  {"description": "Annual plan, seats", "quantity": 4, "unit_price": 155.63},
  {"description": "Support hours", "quantity": 9, "unit_price": 23.25},
  {"description": "Data export add-on", "quantity": 1, "unit_price": 24.01}]}
EOF
  cat > tests/test_invoice.py <<'EOF'
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from billing.invoice import InvoiceLine, invoice_total, line_total  # noqa: E402


class InvoiceTest(unittest.TestCase):
    def test_line_total_includes_vat(self):
        self.assertEqual(line_total(InvoiceLine("Seats", 2, 10.0)), 24.0)

    def test_total_of_round_lines(self):
        self.assertEqual(invoice_total([InvoiceLine("Seats", 2, 10.0), InvoiceLine("Hours", 1, 5.0)]), 30.0)


if __name__ == "__main__":
    unittest.main()
EOF
  cat > src/jobs/export.py <<'EOF'
"""The nightly export of account balances to the accounting system (scheduled in config/cron.yaml)."""

PAGE = 500


def iter_accounts(db):
    offset = 0
    while True:
        rows = db.execute("SELECT * FROM accounts ORDER BY created_at LIMIT %s OFFSET %s", (PAGE, offset))
        if not rows:
            return
        yield from rows
        offset += PAGE


def run_nightly(db, sink):
    """nightly_export: every account's balance, one CSV row each."""
    for account in iter_accounts(db):
        sink.write(f"{account['id']},{account['balance']}\n")
EOF
  cat > config/cron.yaml <<'EOF'
jobs:
  - name: nightly_export
    schedule: "0 2 * * *"
    entry: jobs.export:run_nightly
    timeout: 300
EOF
  cat > src/db/models.py <<'EOF'
"""Accounts and invoices (SQLAlchemy 1.4 declarative models)."""

from sqlalchemy import Column, Integer, Numeric, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Account(Base):
    __tablename__ = "accounts"
    id = Column(Integer, primary_key=True)
    name = Column(String(200))
    balance = Column(Numeric(12, 2))


def find_account(session, name):
    return session.query(Account).filter_by(name=name).first()
EOF
  cat > src/db/session.py <<'EOF'
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql://billing@db/billing")
Session = sessionmaker(bind=engine)


def purge_drafts():
    engine.execute("DELETE FROM invoices WHERE status = 'draft' AND created_at < now() - interval '30 days'")
EOF
  cat > src/reports/monthly.py <<'EOF'
from db.models import Account


def balances(session):
    return [(a.name, a.balance) for a in session.query(Account).order_by(Account.name)]
EOF
  printf '__pycache__/\nlogs/\n' > .gitignore
  _commit 20 "billing: invoices, VAT, nightly export"
  sed -i 's/^PAGE = 500$/PAGE = 500  # accounts per page/' src/jobs/export.py
  _commit 6 "Index accounts on (region, created_at)"
  # three nights of the export job's logs (not committed), the last three before the runs
  local n offsets=([3]=40500 [2]=39000 [1]=41000)
  for n in 3 2 1; do
    cat > "logs/export-$(date -d "-$n days" +%F).log" <<EOF
$(date -d "-$n days" +%F)T02:00:01Z INFO nightly_export started (pages of 500)
$(date -d "-$n days" +%F)T02:41:17Z ERROR iter_accounts: canceling statement due to statement timeout (offset ${offsets[$n]})
$(date -d "-$n days" +%F)T02:41:17Z ERROR nightly_export failed after 2476 s
EOF
  done
  cd - > /dev/null
}
