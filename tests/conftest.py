"""Shared fixtures: real OpenCode stores copied to a temporary directory, a fresh trace store, and a real OTLP/HTTP
receiver on the loopback (`Backend`) for the push tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_118 = FIXTURES / "opencode-1.18.33"
SAMPLE_1165 = FIXTURES / "opencode-1.1.65"
SAMPLE_2 = FIXTURES / "opencode-2.0.26"
CASES_118 = FIXTURES / "cases-1.18.33"
CASES_1165 = FIXTURES / "cases-1.1.65"
STEPS_118 = FIXTURES / "steps-1.18.33"
STEPS_1165 = FIXTURES / "steps-1.1.65" / "storage"
COMPARE_118 = FIXTURES / "compare-1.18.33"  # the same task run three times, in two shapes and killed
BACKGROUND_118 = FIXTURES / "background-1.18.33"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own OpenCode, Claude Code or Codex history, trace store or settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for var in ("OPENCODE_DB", "AGENT_TRACES_DB", "AGENT_TRACES_CONFIG", "CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _isolated_qsettings(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Widget tests (marked `gui`) remember layouts in a QSettings file of their own, empty at the start."""
    if request.node.get_closest_marker("gui") is None:
        return
    from PyQt6.QtCore import QSettings

    qapp = request.getfixturevalue("qapp")
    qapp.setOrganizationName("agent-traces-tests")
    qapp.setApplicationName("dashboard")
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    QSettings().clear()


def copy_store(src: Path, dest: Path) -> Path:
    """A writable copy of a fixture store (tests that change a store change the copy)."""
    shutil.copytree(src, dest)
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def build_v2_store(dest_dir: Path) -> Path:
    """The OpenCode 2.0.26 capture as the SQLite file OpenCode wrote (rebuilt from its SQL dump)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    db = dest_dir / "opencode.db"
    conn = sqlite3.connect(db)
    conn.executescript((SAMPLE_2 / "opencode-2.0.26.sql").read_text())
    conn.close()
    return db


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def expected(sample: Path) -> list[dict]:
    return json.loads((sample / "expected-traces.json").read_text())


@pytest.fixture
def store(tmp_path: Path):
    from analytics.db import TraceStore

    s = TraceStore(tmp_path / "traces.duckdb")
    yield s
    s.close()


@pytest.fixture
def v2_dir(tmp_path: Path) -> Path:
    build_v2_store(tmp_path / "oc2")
    return tmp_path / "oc2"


def tree_sessions(db: Path, title: str) -> list[str]:
    """The ids of the session titled `title` in an OpenCode 1.x SQLite store and of every session under it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ids = [conn.execute("SELECT id FROM session WHERE title = ?", [title]).fetchone()[0]]
        for sid in ids:
            ids += [r[0] for r in conn.execute("SELECT id FROM session WHERE parent_id = ?", [sid])]
        return ids
    finally:
        conn.close()


ROWS_OF_SESSION = (("session", "id"), ("message", "session_id"), ("part", "session_id"),
                   ("event_sequence", "aggregate_id"))


def cut_tree(db: Path, title: str) -> list[str]:
    """Remove a session tree from a copy of a real 1.x SQLite store (to be written back by `replay_tree`)."""
    ids = tree_sessions(db, title)
    conn = sqlite3.connect(db)
    with conn:
        for table, column in reversed(ROWS_OF_SESSION):
            conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", [[i] for i in ids])
    conn.close()
    return ids


def replay_tree(db: Path, original: Path, ids: list[str]) -> None:
    """Write back the rows OpenCode wrote for these sessions, from the original store: what OpenCode itself
    writes when that session tree runs (sessions, messages, parts, event sequence), in one transaction."""
    conn = sqlite3.connect(f"file:{db}", uri=True)
    conn.execute("ATTACH DATABASE ? AS original", [f"file:{original}?mode=ro"])
    with conn:
        for table, column in ROWS_OF_SESSION:
            conn.executemany(f"INSERT INTO {table} SELECT * FROM original.{table} WHERE {column} = ?",
                             [[i] for i in ids])
    conn.execute("DETACH DATABASE original")
    conn.close()


# -- the window, for the widget tests (marked `gui`) -------------------------------------------------------------


def open_window(qtbot, data: Path, db: Path, settings=None):
    """The dashboard on an OpenCode store (`data`) and a trace store (`db`), shown and its first load on screen:
    (window, its Traces tab)."""
    from analytics.opencode import open_source
    from analytics.settings import Settings
    from dashboard.app import Choice, build

    window, _service = build(Choice(open_source(data), db, str(data)), settings or Settings(refresh_seconds=3600))
    qtbot.addWidget(window)
    section = window.tracing
    with qtbot.wait_signal(section.ready, timeout=20_000):
        window.show()
    return window, section


def wait_idle(qtbot, service, timeout: int = 20_000) -> None:
    """Until the window's background worker has answered everything asked of it (its `idle` signal, which
    comes after the answers' own signals)."""
    if service.busy:
        with qtbot.wait_signal(service.idle, timeout=timeout):
            pass


def row(section, description: str):
    """The trace row of the Traces tab whose description is this."""
    return next(i for i in section.tree.items.values() if i.text(1) == description)


def delegation(section, description: str):
    """The delegation row whose description is this."""
    from dashboard.widgets.roles import Role

    return next(i for i in section.tree.items.values()
                if i.data(0, Role.TRACE).kind == "delegation" and i.data(0, Role.TRACE).description == description)


def select(qtbot, section, description: str) -> None:
    """Make the row with this description current, as a click does, and wait until the pane shows it."""
    from dashboard.widgets.roles import Role

    target = row(section, description)
    tid = target.data(0, Role.TRACE).trace_id
    section.tree.setCurrentItem(target)
    qtbot.wait_until(lambda: section.detail.details is not None and section.detail.details.trace.trace_id == tid,
                     timeout=20_000)


def expand(qtbot, section, item) -> list:
    """Open a row as the user does and wait for its steps: its step rows."""
    from dashboard.widgets.roles import Role

    tid = item.data(0, Role.TRACE).trace_id
    with qtbot.wait_signal(section.service.spans, timeout=10_000):
        item.setExpanded(True)
    qtbot.wait_until(lambda: bool(section.tree.step_rows(tid)))
    return section.tree.step_rows(tid)


def apply_filter(qtbot, section, change) -> None:
    """Change the filter bar (`change(bar)`), apply it and wait for the tree to show the result."""
    change(section.filters)
    section.filters.apply()
    wait_idle(qtbot, section.service)


class Backend:
    """A real HTTP server on the loopback that takes OTLP/HTTP requests, answers the next code of `codes`
    (then 200), and keeps every request: path, headers and the decoded ExportTraceServiceRequest.

    `answers` are hostile or unusual receivers, used before `codes`: each is called with the request handler
    (its body read, in `handler.body`) and writes the whole answer itself (a redirect, a partial success, a
    trickle, a huge body, a slow 200)."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.answers: list[Callable[[BaseHTTPRequestHandler], None]] = []
        self.requests: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = []
        self.posts = 0  # every request, whatever the answer
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                backend.posts += 1
                self.body = body
                if backend.answers:
                    backend.answers.pop(0)(self)
                    return
                code = backend.codes.pop(0) if backend.codes else 200
                if code == 200:
                    backend.requests.append((self.path, dict(self.headers.items()),
                                             ExportTraceServiceRequest.FromString(body)))
                self.send_response(code)
                text = b"" if code == 200 else b"no thanks"
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list:
        return [s for _, _, r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.stop()


def attrs(span) -> dict[str, object]:
    """A protobuf span's attributes as plain values."""
    out = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which != "array_value" else \
            [v.string_value for v in kv.value.array_value.values]
    return out
