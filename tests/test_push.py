"""OpenTelemetry export and push: the spans of real stores (agent calls, LLM calls, tool calls), the OTLP/JSON
file, and pushes over OTLP/HTTP to a small real HTTP server that records the protobuf bodies and answers what
a backend would (200, 401, 413, 415, 503). Phoenix itself is in tests/test_phoenix.py (integration)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from analytics.cli import main
from analytics.db import SCHEMA_VERSION, TraceStore
from analytics.loader import load
from analytics.opencode import open_source
from analytics.otlp import from_otlp_json, hex_id, request_of, session_spans, to_otlp
from analytics.push import Endpoint, Pusher, resolve_endpoint
from analytics.queries import trace_queries as q
from analytics.settings import Settings
from tests.conftest import STEPS_118, Backend, attrs, copy_store, cut_tree, replay_tree


@pytest.fixture
def steps(store: TraceStore) -> TraceStore:
    load(store, open_source(STEPS_118))
    return store


def roots_of(store: TraceStore) -> dict[str, str]:
    return {r.title: r.session_id for r in q.get_sessions_with_traces(store)}


def test_steps_are_spans_under_their_calls_with_genai_attributes(steps: TraceStore) -> None:
    root = roots_of(steps)["Nested tools"]
    request = request_of(session_spans(steps, root))
    (rs,) = request.resource_spans
    res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert res["openinference.project.name"] == "agent-traces" and res["service.name"] == "opencode"
    spans = list(rs.scope_spans[0].spans)
    by_id = {s.span_id: s for s in spans}
    assert len({s.trace_id for s in spans}) == 1 and spans[0].trace_id.hex() == hex_id(root, 16)
    traces = q.get_full_traces(steps, root)
    agents = [s for s in spans if s.name.startswith("invoke_agent ")]
    assert [s.name for s in agents] == [f"invoke_agent {t.subagent_type}" for t in traces]  # build, planner, coder
    for t in traces:
        span = by_id[bytes.fromhex(hex_id(t.trace_id, 8))]
        a = attrs(span)
        assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == t.subagent_type
        assert a["input.value"] == t.prompt_input and a["gen_ai.usage.input_tokens"] == t.tokens_in
        if t.parent_trace_id:
            assert span.parent_span_id == bytes.fromhex(hex_id(t.parent_trace_id, 8))
        else:
            assert span.parent_span_id == b""
        for step in q.get_spans(steps, t.trace_id):
            s = by_id[bytes.fromhex(hex_id(step.span_id, 8))]
            a = attrs(s)
            if step.kind == "llm":  # an LLM call hangs under its agent call
                assert s.name == f"chat {step.name}" and s.parent_span_id == span.span_id
                assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == step.name
                assert a["gen_ai.usage.input_tokens"] == step.tokens_in
                assert a["gen_ai.usage.output_tokens"] == step.tokens_out
                assert a["llm.token_count.prompt"] == step.tokens_in and a["openinference.span.kind"] == "LLM"
            else:  # a tool call under the LLM call that made it
                assert s.name == f"execute_tool {step.name}"
                assert s.parent_span_id == bytes.fromhex(hex_id(step.parent_span_id, 8))
                assert a["gen_ai.tool.name"] == step.name and a["openinference.span.kind"] == "TOOL"
                assert a.get("input.value") == (step.input or None)
    steps_total = sum(len(q.get_spans(steps, t.trace_id)) for t in traces)
    assert len(spans) == len(traces) + steps_total and steps_total > len(traces)


def test_the_file_is_the_request_push_sends_as_otlp_json(steps: TraceStore, backend: Backend) -> None:
    root = roots_of(steps)["Many tools"]
    data = to_otlp(steps, root)
    span = data["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    # OTLP/JSON: hex ids (not protobuf's base64), enums as numbers, 64-bit integers as strings
    assert span["traceId"] == hex_id(root, 16) and len(span["spanId"]) == 16 and len(span["parentSpanId"]) == 16
    assert isinstance(span["kind"], int) and isinstance(span["startTimeUnixNano"], str)
    json.dumps(data)
    pusher = Pusher(steps.path, Endpoint(backend.url + "/v1/traces"))
    steps.close()
    try:
        assert pusher.push(sessions=[root], force=True).sent > 0
    finally:
        pusher.close()
    ((path, headers, sent),) = backend.requests
    headers = {k.lower(): v for k, v in headers.items()}
    assert path == "/v1/traces" and headers["content-type"] == "application/x-protobuf"
    running = [s for s in from_otlp_json(data).resource_spans[0].scope_spans[0].spans if s.status.code == 0]
    expected = from_otlp_json(data)
    kept = [s for s in expected.resource_spans[0].scope_spans[0].spans if s not in running]
    del expected.resource_spans[0].scope_spans[0].spans[:]
    expected.resource_spans[0].scope_spans[0].spans.extend(kept)
    assert sent == expected  # the same message, span for span, less the calls still running


def test_ids_are_stable_and_a_second_push_sends_nothing(tmp_path: Path, backend: Backend) -> None:
    db = tmp_path / "a.duckdb"
    with TraceStore(db) as store:
        load(store, open_source(STEPS_118))
    pusher = Pusher(db, Endpoint(backend.url))
    pusher.clock = just_after_the_last_write(db)  # the killed run's calls still count as running
    try:
        first = pusher.push()
        assert first.sent == len(backend.spans()) > 100 and first.problem is None
        assert first.running > 0 and "still running go when they end" in first.line()
        again = pusher.push()
        assert again.sent == 0 and again.unchanged == first.sent and len(backend.requests) == 1
        assert again.line().startswith("Nothing new to send to")
    finally:
        pusher.close()
    with TraceStore(tmp_path / "b.duckdb") as other:  # another store built from the same OpenCode data
        load(other, open_source(STEPS_118))
        ids = {s.context.span_id for r in roots_of(other).values() for s in session_spans(other, r)}
    assert {int.from_bytes(s.span_id, "big") for s in backend.spans()} <= ids


def just_after_the_last_write(db: Path, minutes: float = 1) -> Callable[[], float]:
    """A clock this long after the store's last write (a killed run's calls are judged interrupted only 10
    minutes after it: the fixtures' were written days ago)."""
    from analytics.queries.time_split import last_writes

    with TraceStore(db, read_only=True) as store:
        last = max(last_writes(store.cursor()).values())
    return lambda: last / 1000 + minutes * 60


def test_calls_left_running_by_a_killed_run_go_once_judged_interrupted(steps: TraceStore, backend: Backend) -> None:
    """They were never pushed: a span goes once it ended, and these never end. Judged interrupted (no write in
    their tree for 10 minutes, the window's rule), they go with that status, ending at the tree's last write."""
    from analytics.queries.time_split import last_writes
    from analytics.timeline import INTERRUPTED_MS

    root = roots_of(steps)["Killed bash"]
    last = last_writes(steps.cursor(), [root])[root]
    running = {hex_id(s.span_id, 8) for t in q.get_full_traces(steps, root) for s in q.get_spans(steps, t.trace_id)
               if s.status == "running"} | {hex_id(t.trace_id, 8) for t in q.get_full_traces(steps, root)
                                             if t.status == "running"}
    assert running
    pusher = Pusher(steps.path, Endpoint(backend.url))
    steps.close()
    try:
        pusher.clock = lambda: (last + INTERRUPTED_MS - 60_000) / 1000  # 9 minutes after: still running
        first = pusher.push()
        assert first.running == len(running) and not running & {s.span_id.hex() for s in backend.spans()}
        pusher.clock = lambda: (last + INTERRUPTED_MS + 60_000) / 1000  # 11 minutes after: interrupted
        second = pusher.push()
        assert second.sent == len(running) and second.running == 0 and second.problem is None
        sent = {s.span_id.hex(): s for s in backend.spans() if s.span_id.hex() in running}
        assert set(sent) == running
        for span in sent.values():
            assert span.status.code == 2 and span.status.message.startswith("interrupted: no write since ")
            assert attrs(span)["agent_traces.status"] == "interrupted" and span.end_time_unix_nano == last * 1_000_000
        third = pusher.push()  # once sent, the tree is not built again
        assert third.sent == 0 and third.running == 0 and third.unchanged == first.spans
    finally:
        pusher.close()


def test_only_changed_spans_are_sent_again(steps: TraceStore, backend: Backend) -> None:
    pusher = Pusher(steps.path, Endpoint(backend.url))
    step = next(s for t in q.get_full_traces(steps, roots_of(steps)["Many tools"])
                for s in q.get_spans(steps, t.trace_id) if s.kind == "llm")
    steps.close()
    try:
        pusher.push()
        with TraceStore(pusher.db_path) as store:  # the call's usage changed (as a reload would bring)
            store.cursor().execute("UPDATE agent_spans SET tokens_out = tokens_out + 1 WHERE span_id = ?",
                                   [step.span_id])
        before = len(backend.requests)
        report = pusher.push()
        assert report.sent == 1 and len(backend.requests) == before + 1
        (span,) = backend.requests[-1][2].resource_spans[0].scope_spans[0].spans
        assert span.span_id.hex() == hex_id(step.span_id, 8) and attrs(span)["gen_ai.usage.output_tokens"] == \
            step.tokens_out + 1
    finally:
        pusher.close()


@pytest.mark.parametrize("code, words", [
    (401, "asks for credentials (401 Unauthorized): give them with --header"),
    (415, "does not take OTLP/HTTP protobuf at this address (415 Unsupported Media Type)"),
    (404, "should end in /v1/traces"),
])
def test_a_refusal_is_one_sentence_and_nothing_is_recorded(steps: TraceStore, backend: Backend, code: int,
                                                           words: str) -> None:
    backend.codes = [code]
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=5)
    steps.close()
    try:
        report = pusher.push()
        assert report.problem is not None and words in report.problem and not report.retryable
        assert report.sent == 0 and report.waiting > 0 and "It said: no thanks." in report.problem
        assert pusher.push().sent == report.waiting  # the next push sends them all
    finally:
        pusher.close()


def test_too_large_is_split_then_refused_span_by_span(steps: TraceStore, backend: Backend) -> None:
    root = roots_of(steps)["Root tools"]
    total = sum(1 for s in session_spans(steps, root) if s.status.status_code.value != 0)
    backend.codes = [413] * 3  # the whole tree, then its first half, then the first quarter
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=5)
    steps.close()
    try:
        report = pusher.push(sessions=[root])
        assert report.problem is None and report.sent + len(report.refused) == total and total > 4
        assert report.sent == len(backend.spans()) and len(report.refused) <= 1
    finally:
        pusher.close()


def test_a_busy_backend_is_retried_and_a_missing_one_reported(steps: TraceStore, backend: Backend) -> None:
    backend.codes = [503]  # then 200: the exporter's own retry gets it through
    pusher = Pusher(steps.path, Endpoint(backend.url), timeout=5)
    steps.close()
    try:
        report = pusher.push()
        assert report.problem is None and report.sent == len(backend.spans()) > 0
    finally:
        pusher.close()
    backend.stop()
    with TraceStore(pusher.db_path) as store:
        store.cursor().execute("DELETE FROM pushed")
        store.cursor().execute("DELETE FROM pushed_trees")
    gone = Pusher(pusher.db_path, Endpoint(backend.url), timeout=1.5)
    try:
        report = gone.push()
    finally:
        gone.close()
    assert report.retryable and "did not answer (connection refused, retried until the timeout" in report.problem
    assert report.sent == 0 and f"{report.waiting} spans wait for the next push" in report.line()


def test_follow_sends_a_delegation_opencode_writes_meanwhile(tmp_path: Path, backend: Backend) -> None:
    oc = copy_store(STEPS_118, tmp_path / "oc")
    ids = cut_tree(oc / "opencode.db", "Parallel bash")
    pusher = Pusher(tmp_path / "t.duckdb", Endpoint(backend.url), source=open_source(oc))
    passes: list = []
    first, sent_later, stop = threading.Event(), threading.Event(), threading.Event()

    def on_pass(report) -> None:
        passes.append(report)
        first.set()
        if len(passes) > 1 and report.sent:
            sent_later.set()
            stop.set()

    worker = threading.Thread(target=pusher.follow, args=(0.2, stop, on_pass))
    worker.start()
    try:
        assert first.wait(60)
        before = {s.span_id for s in backend.spans()}
        replay_tree(oc / "opencode.db", STEPS_118 / "opencode.db", ids)
        assert sent_later.wait(60)
    finally:
        stop.set()
        worker.join(60)
        pusher.close()
    new = [s for s in backend.spans() if s.span_id not in before]
    names = {s.name for s in new}
    assert "invoke_agent coder" in names and "execute_tool bash" in names
    assert all(s.trace_id == bytes.fromhex(hex_id(ids[0], 16)) for s in new)


def test_cli_push_with_headers_from_the_option_and_the_environment(tmp_path: Path, backend: Backend,
                                                                    monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=blue")
    db = str(tmp_path / "t.duckdb")
    args = ["push", "--db", db, "--source", str(STEPS_118), "--otlp-endpoint", backend.url,
            "--header", "authorization=Bearer s3cret", "--project", "mine"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Sent {len(backend.spans())} spans of ") and backend.url + "/v1/traces" in out
    headers = {k.lower(): v for k, v in backend.requests[0][1].items()}
    assert headers["authorization"] == "Bearer s3cret" and headers["x-team"] == "blue"
    resource = {kv.key: kv.value.string_value for kv in backend.requests[0][2].resource_spans[0].resource.attributes}
    assert resource["openinference.project.name"] == "mine"
    assert main(args) == 0 and capsys.readouterr().out.startswith("Nothing new to send")
    backend.codes = [401]
    assert main(args[:-2] + ["--project", "other"]) == 2
    assert "401 Unauthorized" in capsys.readouterr().err
    sessions = json.loads((main(["sessions", "--db", db, "--json"]), capsys.readouterr().out)[1])
    sid = next(s["session_id"] for s in sessions if s["title"] == "Many tools")
    assert main(["export", sid[:12], "--db", db, "--otlp-endpoint", backend.url]) == 0
    assert capsys.readouterr().out.startswith("Sent ")


def test_endpoint_from_option_environment_or_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)

    def url(given: str | None, configured: str | None = None) -> str:
        return _traces(*resolve_endpoint(given, configured))

    assert url(None, "http://localhost:6006/") == "http://localhost:6006/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert url(None, "http://localhost:6006") == "http://collector:4318/v1/traces"
    assert url("http://phoenix:6006/v1/traces") == url("http://phoenix:6006/v1/traces/") == \
        "http://phoenix:6006/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom")  # a full URL
    assert url(None) == "http://collector:4318/custom"
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    with pytest.raises(Exception, match="No OpenTelemetry endpoint"):
        resolve_endpoint(None, None)


def _traces(url: str, exact: bool) -> str:
    return Endpoint(url, exact=exact).target.url


def test_settings_keep_the_otlp_keys_checked() -> None:
    s = Settings.from_dict({"otlp_endpoint": "http://localhost:6006", "otlp_headers": {"authorization": "x"},
                            "otlp_project": "team"})
    assert (s.otlp_endpoint, s.otlp_headers, s.otlp_project, s.problems) == \
        ("http://localhost:6006", {"authorization": "x"}, "team", [])
    bad = Settings.from_dict({"otlp_endpoint": "localhost:6006", "otlp_headers": {"a": 1}, "otlp_project": ""})
    assert (bad.otlp_endpoint, bad.otlp_headers, bad.otlp_project) == (None, {}, "agent-traces")
    assert len(bad.problems) == 3 and "otlp_endpoint must be an http:// or https:// URL" in bad.problems[0]
    assert "otlp_endpoint" not in Settings().to_dict() and s.to_dict()["otlp_project"] == "team"


def test_a_store_of_schema_3_gains_the_table_and_keeps_its_data(steps: TraceStore) -> None:
    count = steps.trace_count()
    steps.cursor().execute("DROP TABLE pushed")
    steps.cursor().execute("DROP TABLE pushed_trees")
    steps.cursor().execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    path = steps.path
    steps.close()
    with TraceStore(path) as again:
        assert again.schema_version() == SCHEMA_VERSION and again.trace_count() == count
        assert again.pushed_digests("x") == {}


def test_a_pass_on_an_unchanged_store_builds_no_span(steps: TraceStore, backend: Backend,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import analytics.push

    built: list[str] = []
    real = analytics.push.trees_spans
    monkeypatch.setattr(analytics.push, "trees_spans", lambda store, roots, *rest: built.extend(roots)
                        or real(store, roots, *rest))
    pusher = Pusher(steps.path, Endpoint(backend.url))
    root = roots_of(steps)["Many tools"]
    step = next(s for t in q.get_full_traces(steps, root) for s in q.get_spans(steps, t.trace_id))
    steps.close()
    try:
        first = pusher.push()
        assert first.sent > 0 and len(built) == first.sessions
        built.clear()
        again = pusher.push()
        assert built == [] and (again.sessions, again.spans, again.sent) == (first.sessions, first.spans, 0)
        with TraceStore(pusher.db_path) as store:  # one tree changes: only that one is built again
            store.cursor().execute("UPDATE agent_spans SET title = 'changed' WHERE span_id = ?", [step.span_id])
        third = pusher.push()
        assert built == [root] and third.sessions == first.sessions
    finally:
        pusher.close()
    built.clear()
    later = Pusher(pusher.db_path, Endpoint(backend.url))  # another run (cron): the store remembers the trees
    try:
        assert later.push().sent == 0 and built == []
        other = Pusher(pusher.db_path, Endpoint(backend.url, project="other"))  # another project: all again
        assert other.push().sent == first.sent and len(built) == first.sessions
        other.close()
    finally:
        later.close()
