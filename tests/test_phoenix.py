"""Against a real Phoenix (the `integration` extra): `phoenix serve` on free loopback ports, spans pushed with the
command line, read back through Phoenix's REST API (`GET /v1/projects/{name}/spans`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.db import TraceStore
from analytics.otlp import hex_id
from analytics.queries import trace_queries as q
from tests.conftest import STEPS_118, copy_store, cut_tree, replay_tree

pytestmark = pytest.mark.integration
PHOENIX = shutil.which("phoenix", path=str(Path(sys.executable).parent))
if PHOENIX is None:
    pytest.skip("Phoenix is not installed: pip install -e '.[integration]' runs these tests",
                allow_module_level=True)

START_SECONDS = 180
PROJECT = "agent-traces-it"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


class Phoenix:
    """A `phoenix serve` of its own: a temporary working directory, free HTTP and gRPC ports, on the loopback."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_PORT": str(self.port),
               "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_HOST": "127.0.0.1"}
        self.log = open(workdir / "phoenix.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([PHOENIX, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                get(f"{self.url}/v1/projects")
                return
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = (workdir / "phoenix.log").read_text()[-2000:]
                    raise RuntimeError(f"phoenix serve did not start: {log}") from exc
                time.sleep(0.5)

    def spans(self, project: str = PROJECT) -> list[dict]:
        out, cursor = [], None
        while True:
            url = f"{self.url}/v1/projects/{project}/spans?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            try:
                page = get(url)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # no span in that project yet
                    return []
                raise
            out += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def wait_for(self, count: int, seconds: float = 60) -> list[dict]:
        """The project's spans once there are at least `count` (Phoenix inserts in the background)."""
        deadline = time.monotonic() + seconds
        while True:
            spans = self.spans()
            if len(spans) >= count or time.monotonic() > deadline:
                return spans
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()


@pytest.fixture
def phoenix(tmp_path: Path) -> Iterator[Phoenix]:
    (tmp_path / "phoenix").mkdir()
    p = Phoenix(tmp_path / "phoenix")
    yield p
    if p.proc.poll() is None:
        p.stop()


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analytics.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_every_call_arrives_once_with_its_parent_prompt_and_tokens(phoenix: Phoenix, tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    push = ["push", "--db", db, "--source", str(STEPS_118), "--otlp-endpoint", phoenix.url, "--project", PROJECT]
    first = cli(*push, "--json")
    assert first.returncode == 0, first.stderr
    sent = json.loads(first.stdout)["sent"]
    spans = phoenix.wait_for(sent)
    assert len(spans) == sent > 100
    by_id = {s["context"]["span_id"]: s for s in spans}
    assert len(by_id) == len(spans)  # once each
    with TraceStore(db, read_only=True) as store:
        for root in (r.session_id for r in q.get_sessions_with_traces(store)):
            for t in q.get_full_traces(store, root):
                span = by_id.get(hex_id(t.trace_id, 8))
                if t.status == "running":  # the fixture's killed run: its tree has had no write for days
                    assert span["attributes"]["agent_traces.status"] == "interrupted"  # sent once, judged so
                    continue
                assert span["name"] == f"invoke_agent {t.subagent_type}"
                assert span["context"]["trace_id"] == hex_id(root, 16)
                assert span["parent_id"] == (hex_id(t.parent_trace_id, 8) if t.parent_trace_id else None)
                assert span["attributes"]["input.value"] == t.prompt_input
                assert span["attributes"]["llm.token_count.prompt"] == t.tokens_in
                for step in q.get_spans(store, t.trace_id):
                    s = by_id.get(hex_id(step.span_id, 8))
                    if step.status == "running":
                        continue
                    assert s["parent_id"] == hex_id(step.parent_span_id or t.trace_id, 8)
                    if step.kind == "llm":
                        assert s["span_kind"] == "LLM" and s["attributes"]["gen_ai.usage.input_tokens"] == \
                            step.tokens_in and s["attributes"]["llm.token_count.completion"] == step.tokens_out
                    else:
                        assert s["span_kind"] == "TOOL" and s["attributes"]["gen_ai.tool.name"] == step.name
                        if step.input:
                            assert s["attributes"]["input.value"] == step.input
    again = cli(*push)
    assert again.returncode == 0 and again.stdout.startswith("Nothing new to send"), again.stdout
    # sending a session again on purpose replaces nothing twice either: the ids are the same
    with TraceStore(db, read_only=True) as store:
        sid = next(r.session_id for r in q.get_sessions_with_traces(store) if r.title == "Many tools")
    forced = cli("export", sid, "--db", db, "--otlp-endpoint", phoenix.url, "--project", PROJECT)
    assert forced.returncode == 0 and forced.stdout.startswith("Sent "), forced.stderr
    time.sleep(3)  # what Phoenix would have inserted by now
    assert len(phoenix.spans()) == sent


def test_follow_sends_a_delegation_opencode_writes_meanwhile(phoenix: Phoenix, tmp_path: Path) -> None:
    oc = copy_store(STEPS_118, tmp_path / "oc")
    ids = cut_tree(oc / "opencode.db", "Parallel bash")
    db = str(tmp_path / "t.duckdb")
    with subprocess.Popen(
            [sys.executable, "-m", "analytics.cli", "push", "--follow", "--interval", "0.5", "--db", db, "--source",
             str(oc), "--otlp-endpoint", phoenix.url, "--project", PROJECT],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as follow:
        try:
            first = follow.stdout.readline()
            assert first.startswith("Sent "), first
            before = len(phoenix.wait_for(int(first.split()[1])))
            replay_tree(oc / "opencode.db", STEPS_118 / "opencode.db", ids)
            line = follow.stdout.readline()
            assert line.startswith("Sent "), line
            spans = phoenix.wait_for(before + int(line.split()[1]))
        finally:
            follow.terminate()
            follow.wait(30)
    new = [s for s in spans if s["context"]["trace_id"] == hex_id(ids[0], 16)]
    names = {s["name"] for s in new}
    assert "invoke_agent coder" in names and "execute_tool bash" in names and len(spans) == before + len(new)


def test_a_stopped_backend_is_retried_then_reported(phoenix: Phoenix, tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    url = phoenix.url
    phoenix.stop()
    gone = cli("push", "--db", db, "--source", str(STEPS_118), "--otlp-endpoint", url, "--timeout", "3")
    assert gone.returncode == 2
    assert "did not answer (connection refused, retried until the timeout" in gone.stderr
    assert "spans wait for the next push" in gone.stderr
