# ruff: noqa  (a copy of the shared mock, kept as written there so the two can be compared)
"""Scripted OpenAI Responses API mock (a copy of the steering repository's shared/tools/mock_responses.py, which a
user's clone does not have, with one addition: a fourth {{tokens}} / {{rtokens}} figure, the reasoning tokens).

Scripted OpenAI Responses API mock (POST /v1/responses, SSE) for driving a real Codex CLI offline.

Usage: python3 mock_responses.py PORT(0=any) PORTFILE LOGFILE
Every request (method, path, headers minus auth, full body) is appended to LOGFILE as one JSON line.

Directives live in the first user message that carries any (the `codex exec` prompt for the root thread,
the spawn message for a sub-agent thread):
  {{spawn TYPE|PROMPT}}      -> function_call of the sub-agent spawn tool (name/params read from the tool list;
                                the tool may sit in a Responses `namespace` tool, then the call carries `namespace`);
                                with multi_agent_v2 TYPE is the required task_name, fork_turns=$MOCK_FORK_TURNS|none
  {{wait}}                   -> function_call of the wait tool (v1: targets = every agent id seen in tool outputs after
                                the scripted message)
  {{sh COMMAND}}             -> function_call of the shell tool (exec_command / shell / shell_command)
  {{call NAME JSON}}         -> arbitrary function_call
  {{fail STATUS}}            -> HTTP error STATUS
  {{tokens IN OUT CACHED REASONING}} -> usage figures (REASONING is counted inside OUT, as the API does)
  {{sleep S}}                -> delay
  {{next}}                   -> separates rounds: round k is issued after k model turns
  {{rtokens IN OUT CACHED REASONING}} -> usage figures for the answer to this round only (overrides {{tokens}});
                                a last round holding only {{rtokens}} sets the final answer's figures
Environment (optional): MOCK_COUNTER_START=N starts the id counter (msg_/toolu_/resp_/call_ ids) at N instead of 1,
so that a second process serving a resumed session does not reuse the first one's ids.
Environment (optional): MOCK_SCRIPT_PICK=last takes the LAST user message (or agent_message) that carries
directives instead of the first (for `codex exec resume`, whose new prompt follows the old conversation).
Top-level directives of one round become parallel function calls. After the last round: final text.
"""
import json, os, re, sys, time, itertools, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

counter = itertools.count(int(os.environ.get("MOCK_COUNTER_START", "1")))  # ids: msg_mock0001, toolu_mock0002, ...
lock = threading.Lock()
LOG = "/dev/null"


def directives(text):
    out, i, n = [], 0, len(text)
    while i < n:
        j = text.find("{{", i)
        if j < 0:
            break
        depth, k = 0, j
        while k < n:
            if text.startswith("{{", k):
                depth += 1; k += 2; continue
            if text.startswith("}}", k):
                depth -= 1; k += 2
                if depth == 0:
                    break
                continue
            k += 1
        body = text[j + 2:k - 2]
        kind, _, rest = body.partition(" ")
        out.append((kind.strip(), rest))
        i = k
    return out


def split_rounds(text):
    parts, depth, cur, i = [], 0, [], 0
    while i < len(text):
        if depth == 0 and text.startswith("{{next}}", i):
            parts.append("".join(cur)); cur = []; i += 8; continue
        if text.startswith("{{", i):
            depth += 1; cur.append("{{"); i += 2; continue
        if text.startswith("}}", i):
            depth -= 1; cur.append("}}"); i += 2; continue
        cur.append(text[i]); i += 1
    parts.append("".join(cur))
    return parts


def item_text(it):
    c = it.get("content")
    if isinstance(c, str):
        return c
    return "\n".join(p.get("text") or p.get("encrypted_content") or "" for p in c or [] if isinstance(p, dict))


def is_model_item(it):
    return it.get("type") in ("function_call", "custom_tool_call", "reasoning", "local_shell_call") or \
        (it.get("type") == "message" and it.get("role") == "assistant")


def strip_directives(t):
    return re.sub(r"\{\{.*", "", t, flags=re.S).strip()


NS = {}  # function name -> namespace it was declared in (Responses "namespace" tools)


def tool_names(tools):
    out = {}
    for t in tools or []:
        if t.get("type") == "namespace":
            for sub in t.get("tools") or []:
                out[sub["name"]] = sub
                NS[sub["name"]] = t.get("name")
            continue
        nm = t.get("name") or (t.get("function") or {}).get("name")
        if nm:
            out[nm] = t
    return out


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _log(self, body):
        hdr = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "x-api-key")}
        with lock, open(LOG, "a") as f:
            f.write(json.dumps({"t": time.time(), "method": self.command, "path": self.path, "headers": hdr, "body": body}) + "\n")

    def _json(self, status, obj):
        b = json.dumps(obj).encode()
        self.send_response(status); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)

    def do_GET(self):
        self._log(None)
        if self.path.split("?")[0].endswith("/models"):
            return self._json(200, {"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "mock"}]})
        self._json(404, {"error": {"message": "mock: no such route", "type": "not_found"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(n) or b"{}"
        if (self.headers.get("Content-Encoding") or "").lower() == "zstd":
            try:
                import zstandard
                raw = zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 28)
            except Exception as e:
                self._log({"_undecodable": str(e)})
                return self._json(400, {"error": {"message": "mock cannot decode zstd", "type": "invalid_request_error"}})
        try:
            req = json.loads(raw)
        except Exception:
            req = {"_raw": raw.decode("utf-8", "replace")[:2000]}
        self._log(req)
        if not self.path.split("?")[0].endswith("/responses"):
            return self._json(404, {"error": {"message": "mock: no such route", "type": "not_found"}})
        items = req.get("input") or []
        if isinstance(items, str):
            items = [{"type": "message", "role": "user", "content": items}]
        tools = tool_names(req.get("tools"))
        spawn_tool = next((nm for nm in tools if "spawn" in nm), None)
        wait_tool = next((nm for nm in tools if nm in ("wait", "wait_agent", "wait_for_agents") or nm.startswith("wait")), None)
        shell_tool = next((nm for nm in ("exec_command", "shell_command", "shell") if nm in tools), None)
        # scripted message: first user message carrying directives
        si, stext = 0, ""
        order = range(len(items) - 1, -1, -1) if os.environ.get("MOCK_SCRIPT_PICK") == "last" else range(len(items))
        for i in order:
            it = items[i]
            # multi_agent_v2 delivers a sub-agent's task as an `agent_message` item (payload in encrypted_content)
            if (it.get("type") == "message" and it.get("role") == "user") or it.get("type") == "agent_message":
                t = item_text(it)
                if "{{" in t:
                    si, stext = i, t
                    break
        # rounds done = runs of model items after the scripted message
        done, prev = 0, False
        for it in items[si + 1:]:
            m = is_model_item(it)
            if m and not prev:
                done += 1
            prev = m
        rounds = split_rounds(stext)
        tin, tout, tcached, treason = 1000 + len(raw) // 4, 50, 0, 0
        for kind, rest in directives(stext):
            if kind == "tokens":
                a = [int(x) for x in rest.split()] + [0, 0]
                tin, tout, tcached, treason = a[:4]
        calls, final, rtok = [], None, False
        if not stext:
            final = "Mock answer %d" % next(counter)
        elif done < len(rounds):
            for kind, rest in directives(rounds[done]):
                if kind == "rtokens":
                    a = [int(x) for x in rest.split()] + [0, 0]
                    tin, tout, tcached, treason = a[:4]; rtok = True
                elif kind == "sleep":
                    time.sleep(float(rest))
                elif kind == "fail":
                    st = int(rest.strip() or 400)
                    return self._json(st, {"error": {"message": "scripted provider failure %d" % st, "type": "invalid_request_error" if st == 400 else "server_error"}})
                elif kind == "spawn" and spawn_tool:
                    typ, _, prompt = rest.partition("|")
                    props = ((tools[spawn_tool].get("parameters") or {}).get("properties") or {})
                    args = {}
                    msgkey = next((k for k in ("message", "prompt", "task", "items") if k in props), "message")
                    args[msgkey] = prompt.strip() if msgkey != "items" else [{"type": "text", "text": prompt.strip()}]
                    if "task_name" in props:  # multi_agent_v2: TYPE is the task name
                        args["task_name"] = typ.strip() or "task_%d" % next(counter)
                        if "fork_turns" in props:
                            args["fork_turns"] = os.environ.get("MOCK_FORK_TURNS", "none")
                    elif typ.strip():
                        tk = next((k for k in ("agent_type", "role", "type", "subagent_type") if k in props), None)
                        if tk:
                            args[tk] = typ.strip()
                    calls.append((spawn_tool, args))
                elif kind == "wait" and wait_tool:
                    ids = []
                    for it in items[si + 1:]:  # only this script's outputs (a resumed thread's old agents are gone)
                        if it.get("type") == "function_call_output":
                            out = it.get("output")
                            out = out if isinstance(out, str) else json.dumps(out)
                            ids += re.findall(r'"(?:agent_id|id|thread_id)"\s*:\s*"([^"]+)"', out)
                    props = ((tools[wait_tool].get("parameters") or {}).get("properties") or {})
                    key = next((k for k in ("ids", "agent_ids", "targets", "id") if k in props), None)
                    args = {key: ids if key != "id" else (ids[0] if ids else "")} if key else {}
                    if "timeout_ms" in props:
                        args["timeout_ms"] = 30000
                    calls.append((wait_tool, args))
                elif kind == "sh" and shell_tool:
                    cmd = rest.strip()
                    if shell_tool == "exec_command":
                        calls.append((shell_tool, {"cmd": cmd}))
                    elif shell_tool == "shell_command":
                        calls.append((shell_tool, {"command": cmd}))
                    else:
                        calls.append((shell_tool, {"command": ["bash", "-lc", cmd]}))
                elif kind == "call":
                    nm, _, js = rest.strip().partition(" ")
                    calls.append((nm, json.loads(js or "{}")))
            if not calls and not rtok:
                final = "Done: " + (strip_directives(rounds[done]) or "nothing")[:200]
        if final is None and not calls:
            outs = [it.get("output") for it in items if it.get("type") == "function_call_output"]
            outs = [o if isinstance(o, str) else json.dumps(o) for o in outs[-3:]]
            final = "Finished. Task was: %s. Last tool outputs: %s" % (strip_directives(stext)[:120] or "(scripted)",
                                                                      " | ".join(o[:100].replace("\n", " ") for o in outs))
        rid = "resp_mock%04d" % next(counter)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream"); self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close"); self.end_headers()

        def ev(data):
            self.wfile.write(("event: %s\ndata: %s\n\n" % (data["type"], json.dumps(data))).encode()); self.wfile.flush()
        model = req.get("model", "mock-model")
        base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model}
        ev({"type": "response.created", "response": dict(base, status="in_progress", output=[])})
        output = []
        if final is not None:
            mid = "msg_mock%04d" % next(counter)
            ev({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "id": mid, "role": "assistant", "status": "in_progress", "content": []}})
            ev({"type": "response.content_part.added", "item_id": mid, "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}})
            for w in re.findall(r"\S+\s*", final):
                ev({"type": "response.output_text.delta", "item_id": mid, "output_index": 0, "content_index": 0, "delta": w})
            ev({"type": "response.output_text.done", "item_id": mid, "output_index": 0, "content_index": 0, "text": final})
            item = {"type": "message", "id": mid, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": final, "annotations": []}]}
            ev({"type": "response.output_item.done", "output_index": 0, "item": item})
            output.append(item)
        else:
            for i, (nm, args) in enumerate(calls):
                fid, cid = "fc_mock%04d" % next(counter), "call_mock%04d" % next(counter)
                js = json.dumps(args)
                ev({"type": "response.output_item.added", "output_index": i,
                    "item": dict({"type": "function_call", "id": fid, "call_id": cid, "name": nm, "arguments": "", "status": "in_progress"},
                             **({"namespace": NS[nm]} if NS.get(nm) else {}))})
                for k in range(0, len(js), 40):
                    ev({"type": "response.function_call_arguments.delta", "item_id": fid, "output_index": i, "delta": js[k:k + 40]})
                ev({"type": "response.function_call_arguments.done", "item_id": fid, "output_index": i, "arguments": js})
                item = {"type": "function_call", "id": fid, "call_id": cid, "name": nm, "arguments": js, "status": "completed"}
                if NS.get(nm) and os.environ.get("MOCK_NS_MODE", "field") == "field":
                    item["namespace"] = NS[nm]
                elif NS.get(nm) and os.environ.get("MOCK_NS_MODE") == "dotted":
                    item["name"] = NS[nm] + "." + nm
                ev({"type": "response.output_item.done", "output_index": i, "item": item})
                output.append(item)
        usage = {"input_tokens": tin, "input_tokens_details": {"cached_tokens": tcached}, "output_tokens": tout,
                 "output_tokens_details": {"reasoning_tokens": treason}, "total_tokens": tin + tout}
        ev({"type": "response.completed", "response": dict(base, status="completed", output=output, usage=usage)})
        self.close_connection = True


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    LOG = sys.argv[3] if len(sys.argv) > 3 else "/dev/null"
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(str(srv.server_address[1]))
    srv.serve_forever()
