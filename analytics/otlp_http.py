"""OTLP/HTTP: where spans go, and one request's whole exchange with the backend, judged here.

The spans are encoded by the OpenTelemetry SDK's own encoder (`analytics/otlp.py`); the request is ours, not
the OpenTelemetry exporter's, because what that exporter takes for success is not what a push may record as
sent, and its waits are not bounded:

- a redirect (3xx) is a failure naming the new location: nothing was delivered (the exporter counted any 3xx
  as a success, so the spans were recorded as sent and never offered again);
- a 200 whose `partial_success` rejects spans is a failure of that request (the exporter never read it);
- the timeout bounds the whole exchange, retries included: connecting, sending and the answer, however slowly
  a receiver trickles it (a socket's read timeout starts again with every byte it gets);
- at most ANSWER_BYTES of an answer are read: what a refusal's sentence or a partial success needs;
- what is wrong with the endpoint, a header or the timeout is said before anything is sent; a header's value
  is never shown or logged, and credentials in the URL (`http://user:pass@host`) become an Authorization
  header: the URL shown, logged and recorded has none.

The OpenTelemetry exporter's settings are honoured as it honours them: OTEL_EXPORTER_OTLP_(TRACES_)HEADERS,
_TIMEOUT (seconds), _COMPRESSION (gzip), _CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY. What is worth
trying again is what the exporter retries: no answer, 429, 502, 503 and 504, waiting 1, 2, 4… s (or what
Retry-After asks) while the timeout allows.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import urllib3
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from analytics.errors import AgentTracesError
from analytics.settings import HEADER_CONTROL, HEADER_NAME

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
DEFAULT_TIMEOUT = 10.0  # seconds, as the OpenTelemetry exporter
ANSWER_BYTES = 64 * 1024  # of an answer's body: a refusal's text is shown cut to 200 characters
RETRYABLE = frozenset({429, 502, 503, 504})
PROTOBUF = "application/x-protobuf"

REFUSALS = {
    400: "rejected the spans as malformed (400 Bad Request)",
    401: "asks for credentials (401 Unauthorized): give them with --header KEY=VALUE or OTEL_EXPORTER_OTLP_HEADERS",
    403: "refused these credentials (403 Forbidden): check --header / OTEL_EXPORTER_OTLP_HEADERS",
    404: f"has no OTLP traces receiver at this address (404 Not Found): the endpoint should end in {TRACES_PATH}",
    405: f"does not take OTLP here (405 Method Not Allowed): the endpoint should end in {TRACES_PATH}",
    413: "found the request too large (413 Payload Too Large)",
    415: "does not take OTLP/HTTP protobuf at this address (415 Unsupported Media Type): is it an OTLP/HTTP "
         "receiver? (a gRPC port does not answer HTTP)",
}


class PushError(AgentTracesError):
    """The backend refused the spans, or could not be reached; `retryable` says whether trying later may help."""

    def __init__(self, message: str, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable, self.status = retryable, status


class Cancelled(PushError):
    """The send was stopped (a signal, the window's Cancel) before the backend answered."""


# -- the endpoint -------------------------------------------------------------------------------------------



def check_header(name: str, value: str, where: str = "") -> tuple[str, str]:
    """(name, value) stripped, if they can be sent as one header; otherwise AgentTracesError saying what is
    wrong, naming the header but never showing its value (it is often a token)."""
    name, value = name.strip(), value.strip()
    if not HEADER_NAME.fullmatch(name):
        raise AgentTracesError(f"A header name{where} must be one word of letters, digits and - (such as "
                               "authorization or x-api-key); the one given is not.")
    if HEADER_CONTROL.search(value):
        raise AgentTracesError(f"The header {name}{where} has a line break or another control character in its "
                               "value, which HTTP cannot carry; remove it (the value is not shown here).")
    return name.lower(), value


def check_headers(headers: Mapping[str, str], where: str = "") -> dict[str, str]:
    """Every header checked by `check_header`, names in lower case."""
    return dict(check_header(k, v, where) for k, v in headers.items())


def env_headers() -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_TRACES_HEADERS, else OTEL_EXPORTER_OTLP_HEADERS: `key=value,key2=value2`, values
    URL-encoded or not (as the exporter takes them); a malformed one is said, without its value."""
    for var in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        text = os.environ.get(var)
        if text:
            out = {}
            for i, pair in enumerate(text.split(","), 1):
                if not pair.strip():
                    continue
                key, eq, value = pair.partition("=")
                if not eq:
                    raise AgentTracesError(f"{var} holds headers as key=value pairs separated by commas; its "
                                           f"pair {i} has no '=' (the value is not shown here).")
                name, value = check_header(unquote(key), unquote(value), f" in {var}")
                out[name] = value
            return out
    return {}


@dataclass(frozen=True)
class Target:
    """A traces URL taken apart: the URL to send to (without credentials), the Authorization header the URL's
    credentials make (if any), and the forms that may be shown and recorded."""

    url: str
    authorization: str | None = None

    @property
    def shown(self) -> str:
        """The URL for a message: its query (where some backends take an API key) as `?…`."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(query="…" if parts.query else ""))

    @property
    def key(self) -> str:
        """What the trace store records the sent spans under: the URL, its query replaced by a digest (two
        queries are two endpoints, and neither is stored in clear)."""
        parts = urlsplit(self.url)
        if not parts.query:
            return self.url
        return urlunsplit(parts._replace(query="sha256-" + hashlib.sha256(parts.query.encode()).hexdigest()[:16]))


def traces_target(endpoint: str, exact: bool = False) -> Target:
    """The OTLP/HTTP traces URL of an endpoint (a base URL, as in OTEL_EXPORTER_OTLP_ENDPOINT, gets /v1/traces
    on its path, before any query; an `exact` one, as in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, is taken as it
    is), its credentials moved to an Authorization header. AgentTracesError, with the reason, for anything that
    is not an http(s) URL of a host."""
    text = endpoint.strip()
    if re.search(r"[\x00-\x20\x7f]", text):
        raise AgentTracesError("The OpenTelemetry endpoint holds a space or a control character; give a URL such "
                               "as http://localhost:4318.")
    try:
        parts = urlsplit(text)
    except ValueError:  # "Invalid IPv6 URL"
        raise AgentTracesError(f"The OpenTelemetry endpoint {_without_userinfo(text)!r} is not a URL of a host "
                               "(such as http://localhost:4318 or https://collector.example.com/v1/traces).") from None
    if parts.scheme.lower() not in ("http", "https") or not text.lower().startswith(("http://", "https://")):
        raise AgentTracesError(f"The OpenTelemetry endpoint must be an http:// or https:// URL, not "
                               f"{_without_userinfo(text)!r}.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, -1
    if not host or port == -1 or port == 0:
        raise AgentTracesError(f"The OpenTelemetry endpoint {_without_userinfo(text)!r} is not a URL of a host "
                               "(such as http://localhost:4318 or https://collector.example.com/v1/traces).")
    if exact:
        path = parts.path
    else:  # a base URL gets /v1/traces; a traces URL loses a trailing slash (a receiver would redirect it)
        path = parts.path.rstrip("/") + ("" if parts.path.rstrip("/").endswith(TRACES_PATH) else TRACES_PATH)
    netloc = parts.netloc.rpartition("@")[2]
    authorization = None
    if "@" in parts.netloc:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return Target(urlunsplit((parts.scheme.lower(), netloc, path, parts.query, "")), authorization)


def _without_userinfo(text: str) -> str:
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", text)


def resolve_timeout(given: float | None) -> float:
    """The option's timeout, else OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT (seconds,
    as the Python exporter reads them), else 10 s; a value that is not a number of seconds above 0 is said."""
    if given is not None:
        return check_timeout(given, "--timeout")
    for var in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        text = os.environ.get(var)
        if text:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            return check_timeout(value, var)
    return DEFAULT_TIMEOUT


MAX_TIMEOUT = 24 * 3600.0


def check_timeout(value: float, what: str) -> float:
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise AgentTracesError(f"{what} is the number of seconds to wait for the backend: above 0 and at most a "
                               f"day, not {value!r}.")
    return float(value)


# -- a deadline for the whole exchange ----------------------------------------------------------------------

_current = threading.local()  # the deadline of the request this thread is making


class _Deadline:
    """The sockets of the request in flight, shut down when its time is up or the send is cancelled: a blocked
    connect, send or read then returns at once, however the receiver trickles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    @contextmanager
    def armed(self, seconds: float) -> Iterator[None]:
        with self._lock:
            self._sockets, self.fired = [], False
        timer = threading.Timer(seconds, self.fire)
        timer.daemon = True
        _current.deadline = self
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            _current.deadline = None
            with self._lock:
                self._sockets = []


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, under a TLS one too


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.add(sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: object, **kwargs: object) -> None:  # a kept-alive connection is watched too
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[arg-type]


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: object, **kwargs: object) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[arg-type]


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, its connections (direct or through a proxy) registered with the current deadline."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: object) -> object:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


# -- the exchange ---------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the backend answered: the status, the headers that matter, and at most ANSWER_BYTES of the body."""

    status: int
    location: str | None = None
    retry_after: str | None = None
    content_type: str = ""
    body: bytes = b""
    cut: bool = False  # the body was longer than what was read


@dataclass
class Exchange:
    """Counts of one sender's requests (for the progress a caller shows)."""

    requests: int = 0
    bytes_sent: int = 0
    retries: int = 0
    notes: list[str] = field(default_factory=list)  # warnings a backend sent with an accepted request


class Sender:
    """Sends encoded OTLP requests to one traces URL, each within `timeout` seconds retries included, and says
    in one sentence (PushError) why a request was not accepted whole. `stop` (or `cancel()`) ends a send at
    once: a waiting retry, a connection being made, a request being sent or an answer being read."""

    def __init__(self, target: Target, headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 stop: threading.Event | None = None) -> None:
        self.target = target
        self.timeout = resolve_timeout(timeout)
        self.headers = {**env_headers(), **check_headers(headers or {})}
        if target.authorization is not None:
            self.headers.setdefault("authorization", target.authorization)
        self.headers["content-type"] = PROTOBUF
        self.compression = _env("COMPRESSION", "none").strip().lower()
        if self.compression not in ("none", "gzip"):
            raise AgentTracesError(f"OTEL_EXPORTER_OTLP_COMPRESSION may be gzip or none, not {self.compression!r}.")
        if self.compression == "gzip":
            self.headers["content-encoding"] = "gzip"
        self.stop = stop if stop is not None else threading.Event()
        self.done = Exchange()
        self._deadline = _Deadline()
        self.session = requests.Session()
        adapter = _WatchedAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        certificate = _env("CERTIFICATE")
        if certificate:
            self.session.verify = certificate
        client_cert, client_key = _env("CLIENT_CERTIFICATE"), _env("CLIENT_KEY")
        if client_cert:
            self.session.cert = (client_cert, client_key) if client_key else client_cert

    def cancel(self) -> None:
        """Stop the send in progress now, and any later one."""
        self.stop.set()
        self._deadline.fire()

    def send(self, body: bytes, spans: int) -> None:
        """Send one encoded ExportTraceServiceRequest of `spans` spans; returns once the backend accepted all of
        them, raises PushError otherwise (`retryable` when trying later may help)."""
        data = gzip.compress(body) if self.compression == "gzip" else body
        end = time.monotonic() + self.timeout
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Cancelled("Stopped before the backend answered.", retryable=True)
            wait: float | None = None
            try:
                got = self._post(data, end)
            except _NoAnswer as exc:
                failure = refusal(self.target.shown, None, str(exc), timeout=self.timeout)
            else:
                if 200 <= got.status < 300:
                    self._accepted(got, spans)
                    return
                failure = refusal(self.target.shown, got.status, _text(got.body), location=got.location)
                if got.status not in RETRYABLE:
                    raise failure
                wait = _retry_after(got.retry_after)
            if self.stop.is_set():
                raise Cancelled("Stopped before the backend answered.", retryable=True)
            wait = wait if wait is not None else 2 ** attempt * random.uniform(0.8, 1.2)
            if time.monotonic() + wait >= end:
                raise failure
            log.info("no answer to take from %s (%s); trying again in %.1f s", self.target.shown, failure, wait)
            self.done.retries += 1
            if self.stop.wait(wait):
                raise Cancelled("Stopped before the backend answered.", retryable=True)
            attempt += 1

    def _post(self, data: bytes, end: float) -> Answer:
        """One POST, bounded by `end` (a monotonic time) from the connection to the last byte read."""
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise _NoAnswer("")
        self.done.requests += 1
        self.done.bytes_sent += len(data)
        with self._deadline.armed(remaining):
            if self.stop.is_set():
                self._deadline.fire()
            try:
                response = self.session.post(self.target.url, data=data, headers=self.headers, timeout=remaining,
                                             stream=True, allow_redirects=False)
                try:
                    body = response.raw.read(ANSWER_BYTES + 1, decode_content=True) or b""
                finally:
                    response.close()
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if self._deadline.fired:
                    raise _NoAnswer("") from exc  # the deadline (or a cancel) cut it
                raise _NoAnswer(_reason(exc)) from exc
        if self._deadline.fired and self.stop.is_set():
            raise _NoAnswer("")
        return Answer(response.status_code, response.headers.get("location"), response.headers.get("retry-after"),
                      response.headers.get("content-type", ""), body[:ANSWER_BYTES], len(body) > ANSWER_BYTES)

    def _accepted(self, got: Answer, spans: int) -> None:
        """A 2xx: raise PushError if its partial success rejects spans; keep a warning it carries."""
        if not got.body or got.cut:
            return
        response = ExportTraceServiceResponse()
        try:
            if "json" in got.content_type:
                from google.protobuf import json_format

                json_format.Parse(got.body.decode("utf-8", "replace"), response, ignore_unknown_fields=True)
            else:
                response.ParseFromString(got.body)
        except Exception:  # an answer that is not an ExportTraceServiceResponse: the 2xx says it all
            log.info("the answer of %s to a push is not an OTLP response; taken as accepted", self.target.shown)
            return
        partial = response.partial_success
        message = " ".join(partial.error_message.split())[:200]
        if partial.rejected_spans > 0:
            said = f": {message.rstrip('.')}" if message else ""
            raise PushError(f"The OpenTelemetry backend at {self.target.shown} rejected {partial.rejected_spans} "
                            f"of {spans} spans{said}. None of them is taken as sent.", status=200)
        if message:  # a warning with the spans all taken
            log.info("%s accepted the spans, saying: %s", self.target.shown, message)
            self.done.notes.append(message)

    def close(self) -> None:
        self.session.close()


class _NoAnswer(Exception):
    """No answer to read: the message says what happened instead (empty: the time ran out)."""


def _env(name: str, default: str = "") -> str:
    return (os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")
            or default)


def _reason(exc: BaseException) -> str:
    """What went wrong with a request, in a few words (requests' own messages repeat the URL and more)."""
    text = str(exc)
    for cause in ("Connection refused", "Name or service not known", "No address associated",
                  "nodename nor servname", "Temporary failure in name resolution", "Connection reset",
                  "Remote end closed connection", "certificate verify failed", "timed out", "Network is unreachable"):
        if cause.lower() in text.lower():
            return cause.lower()
    return type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After asks to wait (a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def refusal(url: str, status: int | None, body: str, location: str | None = None,
            timeout: float | None = None) -> PushError:
    """One sentence for an answer that was not a success (`status` None: no answer at all; `body` then says
    what happened instead, empty when the time ran out)."""
    if status is None:
        limit = f" of {timeout:g} s" if timeout else ""
        what = f"did not answer ({body}, retried until the timeout{limit})" if body else \
            f"did not answer in full within the timeout{limit}"
        return PushError(f"The OpenTelemetry backend at {url} {what}: is it running, and is the address right?",
                         retryable=True)
    if 300 <= status < 400:
        where = f" to {_without_userinfo(location)}" if location else ""
        return PushError(f"The OpenTelemetry backend at {url} answered with a redirect ({status}){where}: nothing "
                         "was sent. Give the new address as the endpoint.", status=status)
    if status in RETRYABLE:
        return PushError(f"The OpenTelemetry backend at {url} is busy or down ({status}), still after retrying.",
                         retryable=True, status=status)
    why = REFUSALS.get(status, f"refused the spans ({status})")
    detail = " ".join(body.split())[:200]
    said = f" It said: {detail.rstrip('.')}." if detail else ""
    return PushError(f"The OpenTelemetry backend at {url} {why}.{said}", status=status)
