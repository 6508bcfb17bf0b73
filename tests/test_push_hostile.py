"""Pushes to receivers that are hostile, broken or just unusual, on the small real HTTP server of
tests/test_push.py: redirects, partial successes, trickles, huge answers, and what a user can get wrong
(the endpoint, the headers, the timeout). What counts is what the user is told and what the trace store
records as sent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from analytics.db import TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.push import Endpoint, Pusher
from tests.conftest import STEPS_118
from tests.test_push import Backend


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.stop()


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
