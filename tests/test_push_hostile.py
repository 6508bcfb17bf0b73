"""Pushes to receivers that are hostile, broken or just unusual, on the small real HTTP server of
tests/conftest.py (Backend): redirects, partial successes, trickles, huge answers, and what a user can get wrong
(the endpoint, the headers, the timeout). What counts is what the user is told and what the trace store
records as sent."""

from __future__ import annotations

import base64
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from analytics.cli import main
from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.push import Endpoint, Pusher
from tests.conftest import STEPS_118, Backend


@pytest.fixture
def steps(store: TraceStore) -> TraceStore:
    load(store, open_source(STEPS_118))
    return store


def answer(code: int, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> Callable:
    """A receiver's whole answer: the status, these headers and this body."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return write


def pushed_count(path) -> int:
    with TraceStore(path, read_only=True) as store:
        return store.cursor().execute("SELECT count(*) FROM pushed").fetchone()[0]


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_is_a_failure_that_names_the_new_location(steps: TraceStore, backend: Backend,
                                                             code: int) -> None:
    backend.answers = [answer(code, (("Location", "https://elsewhere.example:4318/v1/traces"),))]
    pusher = Pusher(steps.path, Endpoint(backend.url + "/v1/traces"), timeout=5)
    steps.close()
    try:
        report = pusher.push()
        assert report.sent == 0 and report.problem is not None and not report.retryable
        assert f"redirect ({code})" in report.problem and "https://elsewhere.example:4318/v1/traces" in report.problem
        assert not report.line().startswith("Sent") and pushed_count(pusher.db_path) == 0
        again = pusher.push()  # nothing was taken for sent: every span is offered again
        assert again.problem is None and again.sent == report.waiting > 0
    finally:
        pusher.close()


def test_spans_a_partial_success_rejects_are_not_sent(steps: TraceStore, backend: Backend) -> None:
    rejected = ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
        rejected_spans=3, error_message="3 spans are older than the retention")).SerializeToString()
    backend.answers = [answer(200, (("Content-Type", "application/x-protobuf"),), rejected)]
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=5)
    steps.close()
    try:
        report = pusher.push()
        assert report.sent == 0 and report.problem is not None
        assert "rejected 3 of" in report.problem and "older than the retention" in report.problem
        assert pushed_count(pusher.db_path) == 0
        again = pusher.push()
        assert again.problem is None and again.sent == report.waiting > 0
    finally:
        pusher.close()


def test_a_partial_success_that_rejects_nothing_is_a_success(steps: TraceStore, backend: Backend) -> None:
    warning = ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(
        rejected_spans=0, error_message="attribute values were cut")).SerializeToString()
    backend.answers = [answer(200, (("Content-Type", "application/x-protobuf"),), warning)]
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=5)
    steps.close()
    try:
        report = pusher.push()
        assert report.problem is None and report.sent > 0 and pushed_count(pusher.db_path) == report.sent
    finally:
        pusher.close()


def trickle(every: float, pad: int, hung_up: threading.Event, finished: threading.Event) -> Callable:
    """A receiver that answers one byte every `every` seconds (a 200, once it is all there), noting whether the
    client hung up before the end."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        text = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: " + b"a" * pad + b"\r\n\r\n"
        try:
            for i in range(len(text)):
                handler.wfile.write(text[i:i + 1])
                handler.wfile.flush()
                if hung_up.wait(every):
                    return
        except OSError:
            hung_up.set()
            return
        finished.set()

    return write


def test_the_timeout_bounds_the_whole_answer_however_slowly_it_comes(steps: TraceStore,
                                                                     backend: Backend) -> None:
    hung_up, finished = threading.Event(), threading.Event()
    backend.answers = [trickle(0.3, 200, hung_up, finished)]  # about 80 s to answer in full
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=2)
    steps.close()
    try:
        report = pusher.push()
    finally:
        pusher.close()
    assert hung_up.wait(30) and not finished.is_set()  # the client hung up long before the answer was whole
    assert report.sent == 0 and report.retryable
    assert "did not answer in full within the timeout of 2 s" in report.problem
    assert pushed_count(pusher.db_path) == 0


def huge(code: int, size: int, written: list[int]) -> Callable:
    """A receiver whose answer has a body of `size` bytes, counting how much of it it got to write."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"no! " * (256 * 1024)
        try:
            while written[0] < size:
                handler.wfile.write(chunk)
                written[0] += len(chunk)
        except OSError:
            pass

    return write


@pytest.mark.parametrize("code", [400, 200])
def test_a_huge_answer_is_not_read_whole(steps: TraceStore, backend: Backend, code: int) -> None:
    written = [0]
    size = 300 * 1024 * 1024
    backend.answers = [huge(code, size, written)]
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=30)
    steps.close()
    try:
        report = pusher.push()
    finally:
        pusher.close()
    if code == 400:
        assert "(400 Bad Request). It said: no! no!" in report.problem and report.sent == 0
    else:
        assert report.problem is None and report.sent > 0
    assert written[0] < size // 4  # the client stopped reading: it took what it needs of the answer


# -- what the user gives: the endpoint, the headers, the timeout ----------------------------------------------


@pytest.fixture
def db(tmp_path) -> str:
    path = tmp_path / "t.duckdb"
    with TraceStore(path) as store:
        load(store, open_source(STEPS_118))
    return str(path)


def test_credentials_in_the_url_are_sent_but_never_shown_or_stored(db: str, backend: Backend, capsys,
                                                                    caplog) -> None:
    host = backend.url.removeprefix("http://")
    url = f"http://alice:s3cret%21@{host}"
    with caplog.at_level(logging.DEBUG):
        assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", url, "-v"]) == 0
        first = capsys.readouterr()
        assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", url, "--json"]) == 0
        second = capsys.readouterr()
    said = first.out + first.err + second.out + second.err + caplog.text
    assert "s3cret" not in said and "alice" not in said and f"to http://{host}/v1/traces" in first.out
    assert json.loads(second.out)["endpoint"] == f"http://{host}/v1/traces"
    headers = {k.lower(): v for k, v in backend.requests[0][1].items()}
    assert headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cret!").decode()
    with TraceStore(db, read_only=True) as store:
        kept = store.cursor().execute("SELECT DISTINCT endpoint FROM pushed UNION SELECT DISTINCT endpoint"
                                      " FROM pushed_trees").fetchall()
    assert kept == [(f"http://{host}/v1/traces",)]


def test_a_store_that_recorded_credentials_forgets_them_and_sends_nothing_twice(db: str, backend: Backend,
                                                                                capsys) -> None:
    host = backend.url.removeprefix("http://")
    assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", backend.url]) == 0
    with TraceStore(db) as store:  # as an older agent-traces recorded a push to http://alice:s3cret@host
        for table in ("pushed", "pushed_trees"):
            store.cursor().execute(f"UPDATE {table} SET endpoint = ?", [f"http://alice:s3cret@{host}/v1/traces"])
    sent = len(backend.spans())
    assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", f"http://alice:s3cret@{host}"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("Nothing new to send")
    assert len(backend.spans()) == sent
    with TraceStore(db, read_only=True) as store:
        kept = store.cursor().execute("SELECT endpoint FROM pushed UNION ALL SELECT endpoint FROM pushed_trees")
        assert all("s3cret" not in e for e, in kept.fetchall())


def test_a_query_stays_after_the_traces_path_and_is_not_shown(db: str, backend: Backend, capsys) -> None:
    assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", backend.url + "/?api_key=K3Y"]) == 0
    out = capsys.readouterr().out
    assert backend.requests[0][0] == "/v1/traces?api_key=K3Y"
    assert "K3Y" not in out and "/v1/traces?…" in out
    with TraceStore(db, read_only=True) as store:
        assert all("K3Y" not in e for e, in store.cursor().execute("SELECT endpoint FROM pushed").fetchall())


@pytest.mark.parametrize(("url", "words"), [
    ("http://", "is not a URL of a host"),
    ("http://localhost:99999", "is not a URL of a host"),
    ("http://[::1", "is not a URL of a host"),
    ("http://local host:4318", "holds a space or a control character"),
    ("ftp://localhost:4318", "must be an http:// or https:// URL"),
])
def test_a_malformed_endpoint_is_said_before_anything_is_sent(db: str, capsys, url: str, words: str) -> None:
    assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", url]) == 2
    err = capsys.readouterr().err
    assert words in err and "did not answer" not in err


@pytest.mark.parametrize("header", ["x-team=blue\r\nx-evil: 1", "authorization=Bearer\ns3cret", "bad name=s3cret"])
def test_a_header_that_http_cannot_carry_is_said_without_its_value(db: str, backend: Backend, capsys, caplog,
                                                                   header: str) -> None:
    with caplog.at_level(logging.DEBUG):
        assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", backend.url, "--header", header,
                     "-v"]) == 2
    err = capsys.readouterr().err
    assert ("line break or another control character" in err or "must be one word" in err)
    assert "did not answer" not in err and "s3cret" not in err + caplog.text and "evil" not in err + caplog.text
    assert backend.posts == 0


def test_a_malformed_header_in_the_environment_is_said_without_its_value(db: str, backend: Backend, capsys,
                                                                         caplog, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer s3cret,x-api-key")
    with caplog.at_level(logging.DEBUG):
        assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", backend.url, "-v"]) == 2
    err = capsys.readouterr().err
    assert "OTEL_EXPORTER_OTLP_HEADERS" in err and "pair 2 has no '='" in err
    assert "s3cret" not in err + caplog.text and backend.posts == 0


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "1e300", "soon"])
def test_a_timeout_that_is_no_wait_is_refused_by_the_option(db: str, capsys, timeout: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["push", "--db", db, "--no-load", "--otlp-endpoint", "http://localhost:4318", "--timeout", timeout])
    assert exited.value.code == 2 and "above 0" in capsys.readouterr().err


# -- a push interrupted, or kept waiting by the trace store -----------------------------------------------------


def slow_ok(backend: Backend, seconds: float) -> Callable:
    """A receiver that takes `seconds` to accept a request (and keeps it, as `codes` 200 does)."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        backend.requests.append((handler.path, dict(handler.headers.items()),
                                 ExportTraceServiceRequest.FromString(handler.body)))
        answer(200)(handler)

    return write


SMALL_BATCHES = ("import sys, analytics.push as p; p.MAX_BATCH_SPANS = 10; from analytics.cli import main;"
                 " sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_push_between_batches_and_keeps_the_record_of_each(db: str, backend: Backend,
                                                                            sig: int, code: int) -> None:
    backend.answers = [slow_ok(backend, 0.3) for _ in range(100)]
    counter = Pusher(Path(db), Endpoint(backend.url))
    total = counter.push(dry_run=True).to_send  # the killed run's calls among them once judged interrupted
    counter.close()
    push = subprocess.Popen([sys.executable, "-c", SMALL_BATCHES, "push", "--db", db, "--no-load",
                             "--otlp-endpoint", backend.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while len(backend.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        push.send_signal(sig)
        out, err = push.communicate(timeout=60)
    finally:
        if push.poll() is None:
            push.kill()
    assert push.returncode == code, (out, err)
    assert "Traceback" not in err and "Stopped" in out + err
    accepted = {s.span_id.hex() for s in backend.spans()}
    with TraceStore(db, read_only=True) as store:
        recorded = {r for r, in store.cursor().execute("SELECT span_id FROM pushed").fetchall()}
    assert recorded == accepted and 0 < len(accepted) < total
    backend.answers = []
    assert main(["push", "--db", db, "--no-load", "--otlp-endpoint", backend.url]) == 0
    ids = [s.span_id for s in backend.spans()]
    assert len(ids) == len(set(ids)) == total  # the rest went, and nothing twice


def test_follow_waits_while_another_process_holds_the_store(db: str, backend: Backend, tmp_path) -> None:
    counter = Pusher(Path(db), Endpoint(backend.url))
    total = counter.push(dry_run=True).to_send
    counter.close()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
                               "print('ready', flush=True); sys.stdin.read()", db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    said: list[str] = []
    passes: list = []
    stop, sent = threading.Event(), threading.Event()

    def on_pass(report) -> None:
        passes.append(report)
        if report.sent:
            sent.set()
            stop.set()

    pusher = Pusher(Path(db), Endpoint(backend.url), timeout=5)
    worker = threading.Thread(target=pusher.follow, args=(0.2, stop, on_pass), kwargs={"on_busy": said.append})
    try:
        assert holder.stdout.readline().strip() == "ready"
        worker.start()
        deadline = time.monotonic() + 60
        while not said and time.monotonic() < deadline:
            time.sleep(0.05)
        assert said and "in use by another process" in said[0] and "waiting" in said[0]
        time.sleep(1.0)  # still held: it keeps waiting, and says so once
        holder.stdin.close()
        holder.wait(30)
        assert sent.wait(60)
    finally:
        stop.set()
        if holder.poll() is None:
            holder.stdin.close()
            holder.wait(30)
        holder.stdout.close()
        worker.join(60)
        pusher.close()
    assert len(said) == 1 and passes[-1].sent == total
