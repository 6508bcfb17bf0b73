"""One Codex CLI rollout file (a thread's history, JSON lines), parsed incrementally into turns and model calls.

Codex appends one `{timestamp, type, payload}` object per line to
`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<threadId>.jsonl` and never rewrites it, so a `Rollout` keeps
how far it has read and the parse state, and a later `feed` takes only the lines added since; a file that shrank
or whose first bytes changed is read again from the start (`reader.py` decides). What each record means was
observed by running Codex 0.120.0, 0.140.0, 0.150.0, 0.160.0 and 0.171.0 (tests/fixtures/README.md):

- `session_meta`: the thread (`id`, `parent_thread_id` or `source.subagent.thread_spawn`, `forked_from_id`, `cwd`,
  `cli_version`, `agent_nickname`, `agent_role`, `agent_path` in v2). A child that starts with a copy of its
  parent's history has a second `session_meta` (the parent's) followed by that copy; from 0.150 its own
  `session_meta` says where its own records start (`subagent_history_start_ordinal`, each line has an `ordinal`).
  Before 0.150 the copied turns are recognised by their turn ids, which are the parent's (`reader.py`).
- a turn: `event_msg task_started` ... `task_complete` (`error` on a failed model call in 0.171; nothing in 0.140)
  or `turn_aborted`; its model in `turn_context`; its prompt in `event_msg user_message` (up to 0.150) or
  `item_completed` `UserMessage` (0.171), or, for a multi-agent v2 child, the `agent_message` that started it.
- a model response: its output items (`response_item` `function_call`, `custom_tool_call`, assistant `message`,
  `reasoning`) then its usage: `token_usage_record` (0.160+, one per response, with its `response_id`), else the
  `event_msg token_count` whose running total moved (0.120 repeats the total after each tool output, and a forked
  child's first one repeats its parent's).
- a tool: `function_call` `{call_id, name, namespace?, arguments}`, answered by `function_call_output`; a command's
  exit status in `item_completed` `CommandExecution` (0.171) or the output text ("Process exited with code N").
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from analytics.models import MAX_TIME_MS, MIN_TIME_MS
from analytics.opencode.records import as_int, as_str

# Model output items of a response; everything else is input to the next call.
_OUTPUT_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "web_search_call", "reasoning",
                           "image_generation_call", "tool_search_call"})
_TOOL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
_TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output"})
# Records and events that say nothing a trace needs (seen in 0.120.0 to 0.171.0): read past, not counted.
_QUIET_TYPES = frozenset({"world_state", "inter_agent_communication_metadata", "compacted"})
_QUIET_EVENTS = frozenset({"thread_settings_applied", "agent_message", "agent_reasoning", "stream_error",
                           "item_started", "agent_reasoning_section_break", "context_compacted"})
_QUIET_ITEMS = frozenset({"AgentMessage", "Reasoning"})
_EXIT_CODE = re.compile(r"Process exited with code (-?\d+)")
SPAWN_TOOLS = frozenset({"spawn_agent"})
WAIT_TOOLS = frozenset({"wait_agent", "wait"})

_AFTER_TIME = 39  # in a line as Codex writes it, the byte after `{"timestamp":"2026-12-05T01:22:46.984Z"`
_EVENT = b'event_msg","payload":{"type":"'
_MESSAGE = b'response_item","payload":{"type":"message",'
_QUIET_EVENT_HEADS = (b'thread_settings_applied"', b'agent_message"', b'agent_reasoning"')
_scan = json.JSONDecoder().scan_once  # json.loads without its wrappers (see records.loads_compact)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = datetime.resolution * 1000  # one millisecond
_second_ms: dict[str, int] = {}


def time_ms(text: object) -> int | None:
    """Milliseconds since the epoch of a Codex timestamp (`2026-12-05T01:16:09.948Z`), None when it is none.

    Lines of one file share their second, so the second is parsed once and the milliseconds added."""
    if not isinstance(text, str):
        return None
    if len(text) == 24 and text[19] == "." and text[23] == "Z" and text[20:23].isdigit():
        head = text[:19]
        base = _second_ms.get(head)
        if base is None:
            try:
                base = (datetime.fromisoformat(head).replace(tzinfo=UTC) - _EPOCH) // _MS
            except ValueError:
                return None
            if len(_second_ms) > 100_000:
                _second_ms.clear()
            _second_ms[head] = base
        return base + int(text[20:23])
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return (dt - _EPOCH) // _MS
    except OverflowError:
        return None



class Tool:
    """A tool call of a model response, and its answer when it came."""

    __slots__ = ("call_id", "name", "namespace", "arguments", "created_ms", "start_ms", "end_ms", "output",
                 "failed")

    def __init__(self, call_id: str, name: str, namespace: str | None, arguments: str | None,
                 created_ms: int) -> None:
        self.call_id = call_id
        self.name = name
        self.namespace = namespace
        self.arguments = arguments
        self.created_ms = created_ms
        self.start_ms: int | None = None  # when the command ran (CommandExecution), if Codex said
        self.end_ms: int | None = None
        self.output: str | None = None
        self.failed: bool | None = None  # from CommandExecution's status, when there is one


class Call:
    """One model response: one LLM call, with its output items and usage."""

    __slots__ = ("key", "start_ms", "end_ms", "last_item_ms", "usage", "tools", "texts", "error")

    def __init__(self, start_ms: int) -> None:
        self.key: str | None = None  # the response id (0.160+)
        self.start_ms = start_ms
        self.end_ms: int | None = None
        self.last_item_ms = start_ms
        self.usage: tuple[int, int, int, int, int] | None = None  # input, cached, cache write, output, reasoning
        self.tools: list[Tool] = []
        self.texts: list[str] = []
        self.error: str | None = None  # the stream was cut before its usage came


class Turn:
    """A task_started ... task_complete span of a thread, with its prompt and model calls."""

    __slots__ = ("turn_id", "start_ms", "end_ms", "state", "error", "prompts", "model", "calls", "last_message",
                 "synthetic")

    def __init__(self, turn_id: str | None, start_ms: int, synthetic: bool = False) -> None:
        self.turn_id = turn_id
        self.start_ms = start_ms
        self.end_ms: int | None = None
        self.state = "running"  # running | completed | error | aborted
        self.error: str | None = None
        self.prompts: list[str] = []
        self.model: str | None = None
        self.calls: list[Call] = []
        self.last_message: str | None = None
        self.synthetic = synthetic  # records before any task_started (0.100 writes its prompt there)


class Meta:
    """What a rollout's own `session_meta` says about its thread."""

    __slots__ = ("thread_id", "parent_id", "forked_from", "created_ms", "cwd", "version", "nickname", "role",
                 "agent_path", "provider", "start_ordinal", "model")

    def __init__(self, payload: dict, created_ms: int) -> None:
        self.thread_id: str = payload["id"]
        source = payload.get("source")
        spawn = {}
        if isinstance(source, dict):
            sub = source.get("subagent")
            if isinstance(sub, dict) and isinstance(sub.get("thread_spawn"), dict):
                spawn = sub["thread_spawn"]
        self.parent_id = as_str(payload.get("parent_thread_id")) or as_str(spawn.get("parent_thread_id"))
        self.forked_from = as_str(payload.get("forked_from_id"))
        self.created_ms = created_ms
        self.cwd = as_str(payload.get("cwd")) or ""
        self.version = as_str(payload.get("cli_version"))
        self.nickname = as_str(payload.get("agent_nickname")) or as_str(spawn.get("agent_nickname"))
        self.role = as_str(payload.get("agent_role")) or as_str(spawn.get("agent_role"))
        self.agent_path = as_str(payload.get("agent_path")) or as_str(spawn.get("agent_path"))
        self.provider = as_str(payload.get("model_provider"))
        start = payload.get("subagent_history_start_ordinal")
        self.start_ordinal = start if isinstance(start, int) and not isinstance(start, bool) else None
        self.model = as_str(payload.get("model"))


_ENVELOPE = frozenset({"timestamp", "type", "payload", "ordinal", "metadata"})  # metadata: 0.171's history info


def _whole_text(value: object) -> object:
    """A parsed value with every lone surrogate (a `\\udXXX` escape JavaScript or Rust wrote for half a pair) made
    U+FFFD: no UTF-8 store takes one."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_whole_text(k): _whole_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_text(v) for v in value]
    return value


def read_meta(obj: object) -> tuple[Meta | None, str | None]:
    """The thread of a rollout's first record, or why it is none."""
    if not isinstance(obj, dict) or obj.get("type") != "session_meta":
        return None, "the first line is not a session_meta record"
    payload = obj.get("payload")
    if not isinstance(payload, dict) or not as_str(payload.get("id")):
        return None, "the session_meta record has no thread id"
    created = time_ms(obj.get("timestamp")) or time_ms(payload.get("timestamp"))
    if created is None:
        return None, "the session_meta record has no readable timestamp"
    return Meta(payload, created), None


def usage_figures(usage: object) -> tuple[tuple[int, int, int, int, int] | None, str | None]:
    """(input, cached input, cache write, output, reasoning) of a Codex usage object, and what was wrong with it.

    A figure that is not a number counts as 0 (and is reported); one too large for the store is kept as it is, so
    the loader replaces and counts it (OUT_OF_RANGE for an overflowing float)."""
    if not isinstance(usage, dict):
        return None, "the usage is not an object"
    out = []
    bad = []
    for key in ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
                "reasoning_output_tokens"):
        v = usage.get(key, 0)
        n = as_int(v)
        if n is None:
            bad.append(key)
            n = 0
        out.append(n)
    return tuple(out), (f"{', '.join(bad)} not a number; counted as 0" if bad else None)  # type: ignore[return-value]


def _text_of(content: object) -> str:
    """The text of a message's content parts (input_text / output_text / encrypted_content as the mock writes it)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for p in content:
        if isinstance(p, dict):
            t = p.get("text")
            if not isinstance(t, str):
                t = p.get("encrypted_content")
            if isinstance(t, str):
                parts.append(t)
    return "".join(parts)


def output_text(value: object) -> str:
    """A tool output as text: Codex writes a string, or (some tools) a list of content items or an object."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        text = _text_of(value)
        if text:
            return text
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Rollout:
    """The parse state of one rollout file: its thread, turns and calls so far, and where reading stopped."""

    def __init__(self, meta: Meta) -> None:
        self.meta = meta
        self.turns: list[Turn] = []
        self.turn_ids: set[str] = set()  # every turn id the file names, copied ones included (fork detection)
        self.tools: dict[str, Tool] = {}  # call id -> tool call
        self.spawned: dict[str, str] = {}  # spawn call id -> child thread id, from Codex's own events
        self.waited: dict[str, tuple[str, str]] = {}  # child thread id -> (completed | errored, text) from waits
        self.skips: list[tuple[str, str, str]] = []  # damage found in this file, reported with each read
        self.last_ms = meta.created_ms
        self.copied = False  # a foreign session_meta was seen: what follows is a copy of another thread
        self.copied_records = 0
        self._turn: Turn | None = None
        self._pending: Call | None = None
        self._mark_ms = meta.created_ms  # the last record that was input to the model
        self._usage_records = False  # 0.160+: token_usage_record, and token_count is only a running total
        self._total: object = None  # the last token_count running total
        self.lines = 1

    # -- reading -----------------------------------------------------------------------------------------

    def skip(self, what: str, why: str) -> None:
        self.skips.append((what, f"{self.meta.thread_id} line {self.lines}", why))

    def feed_line(self, raw: bytes) -> None:
        """One complete line (without its newline)."""
        self.lines += 1
        if raw.startswith(b'{"timestamp":"') and raw.endswith(b"}") and self._passed_over(raw):
            return
        try:
            text = raw.decode("utf-8")
            obj, end = _scan(text, 0)
        except UnicodeDecodeError:
            self.skip("line", "not valid UTF-8")
            return
        except RecursionError:
            self.skip("line", "nested too deeply")
            return
        except StopIteration:
            if raw.strip():
                self.skip("line", "not valid JSON")
            return
        except ValueError:
            self.skip("line", "not valid JSON")
            return
        if end != len(text) and text[end:].strip(" \t\n\r"):  # more than one document: json.loads says why
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError):
                self.skip("line", "not valid JSON")
                return
        if not isinstance(obj, dict):
            self.skip("line", "not a JSON object")
            return
        if b"\\u" in raw and (b"\\ud" in raw or b"\\uD" in raw):
            obj = _whole_text(obj)
        if len(obj) > 3 and not obj.keys() <= _ENVELOPE:
            for key in obj.keys() - _ENVELOPE:
                self.skip("field", f"unknown field {key!r} read past")
        kind = obj.get("type")
        payload = obj.get("payload")
        ts = time_ms(obj.get("timestamp"))
        if not isinstance(kind, str) or not isinstance(payload, dict) or ts is None:
            self.skip("line", "not a {timestamp, type, payload} record")
            return
        ordinal = obj.get("ordinal")
        start = self.meta.start_ordinal
        if start is not None and isinstance(ordinal, int) and 0 < ordinal < start:
            self._inherited(kind, payload)
            return
        if ts > self.last_ms:
            self.last_ms = ts
        try:
            self._record(kind, payload, ts)
        except RecursionError:
            self.skip("line", "nested too deeply")
        except (TypeError, AttributeError, KeyError, ValueError, OverflowError) as exc:  # a shape not foreseen
            self.skip("record", f"a {kind} record of an unexpected shape ({type(exc).__name__}: {exc})"[:300])

    def _passed_over(self, raw: bytes) -> bool:
        """Whether a line is one of the records a trace needs nothing from, told by its first bytes as Codex
        writes them (`{"timestamp":"<24 characters>","ordinal":N,"type":"...","payload":{"type":"...`), so that
        it need not be parsed: `world_state` (the model's environment), developer and user messages (instructions,
        and prompts, which are read from their events), `thread_settings_applied`, the events that repeat an
        agent's message or reasoning, and, once the file has usage records (0.160+), `token_count` running totals:
        a third of a rollout after its first line. Only their time is read: a world_state or a message is input
        to the next model call."""
        i = raw.find(b'"type":"', _AFTER_TIME, _AFTER_TIME + 32)
        if i < 0:
            return False
        i += 8
        if raw.startswith(b'world_state"', i):
            input_ = True
        elif raw.startswith(_EVENT, i):
            i += len(_EVENT)
            quiet = (raw.startswith(_QUIET_EVENT_HEADS, i)
                     or self._usage_records and raw.startswith(b'token_count"', i)
                     or raw.startswith(b'item_completed"', i)
                     and raw.find(b'"item":{"type":"AgentMessage"', i, i + 240) > 0)
            if not quiet:
                return False
            input_ = False
        elif raw.startswith(_MESSAGE, i):
            head = raw[i:i + 160]
            if b'"role":"developer"' not in head and b'"role":"user"' not in head:
                return False
            input_ = True
        else:
            return False
        ts = time_ms(raw[14:_AFTER_TIME - 1].decode("ascii", "replace"))
        if ts is None:
            return False
        start = self.meta.start_ordinal
        if start is not None and raw.startswith(b',"ordinal":', _AFTER_TIME):
            j = raw.find(b",", _AFTER_TIME + 11, _AFTER_TIME + 32)
            digits = raw[_AFTER_TIME + 11:j]
            if j > 0 and digits.isdigit() and 0 < int(digits) < start:
                self.copied_records += 1  # copied from the parent, as `_inherited`
                return True
        if input_:
            self._mark_ms = ts
        if ts > self.last_ms:
            self.last_ms = ts
        return True

    def _inherited(self, kind: str, payload: dict) -> None:
        """A record of the parent's history copied into a forked child: not this thread's work."""
        self.copied_records += 1
        if kind == "event_msg" and payload.get("type") == "token_count":
            info = payload.get("info")
            if isinstance(info, dict):
                self._total = info.get("total_token_usage")
        elif kind == "event_msg" and payload.get("type") == "task_started":
            tid = as_str(payload.get("turn_id"))
            if tid:
                self.turn_ids.add(tid)

    def _record(self, kind: str, p: dict, ts: int) -> None:
        if kind == "response_item":
            self._response_item(p, ts)
        elif kind == "event_msg":
            self._event(p, ts)
        elif kind == "token_usage_record":
            if as_str(p.get("thread_id")) not in (None, self.meta.thread_id):
                self.copied_records += 1  # another thread's usage, copied with its history
                return
            self._usage_records = True
            usage, bad = usage_figures(p.get("usage"))
            if usage is None:
                self.skip("record", "token_usage_record without a usage object")
                return
            if bad:
                self.skip("tokens", bad)
            self._respond(ts, usage, as_str(p.get("response_id")), ts)
        elif kind == "turn_context":
            model = as_str(p.get("model"))
            tid = as_str(p.get("turn_id"))
            turn = self._turn
            if tid and (turn is None or turn.turn_id != tid):
                turn = next((t for t in reversed(self.turns) if t.turn_id == tid), turn)
            if turn is not None and model:
                turn.model = model
            self._mark_ms = ts
        elif kind == "session_meta":
            if as_str(p.get("id")) != self.meta.thread_id:
                self.copied = True  # the parent's history follows (a fork); its turns are told apart later
        elif kind in _QUIET_TYPES:
            self._mark_ms = ts
        else:
            self.skip("record", f"unknown record type {kind!r}")

    def _current_turn(self, ts: int) -> Turn:
        turn = self._turn
        if turn is None:
            turn = self._turn = Turn(None, ts, synthetic=True)
            self.turns.append(turn)
        return turn

    def _response_item(self, p: dict, ts: int) -> None:
        item = p.get("type")
        if not isinstance(item, str):
            self.skip("record", "a response item without a type")
            return
        if item in _TOOL_OUTPUTS:
            call_id = as_str(p.get("call_id"))
            tool = self.tools.get(call_id) if call_id else None
            if tool is None:
                if not self.copied:
                    self.skip("record", f"a tool output for call {call_id!r} that was never made")
                return
            tool.output = output_text(p.get("output"))
            tool.end_ms = ts
            self._mark_ms = ts
            if tool.name in WAIT_TOOLS:
                self._read_wait(tool.output)
            return
        if item == "message":
            role = p.get("role")
            if role == "assistant":
                call = self._output(ts)
                text = _text_of(p.get("content"))
                if text:
                    call.texts.append(text)
            else:  # user (the prompt is taken from its event), developer, system: input
                self._mark_ms = ts
            return
        if item in _OUTPUT_ITEMS:
            call = self._output(ts)
            if item in _TOOL_ITEMS:
                self._tool(call, p, item, ts)
            return
        if item == "agent_message":  # multi-agent v2: a message between agents; the one that starts a turn of
            me = self.meta.agent_path  # this agent's is its prompt (its task)
            turn = self._turn
            if me and p.get("recipient") == me and (
                    turn is None or not turn.prompts and not turn.calls and self._pending is None):
                self._current_turn(ts).prompts.append(_text_of(p.get("content")))
            self._mark_ms = ts
            return
        self.skip("record", f"unknown response item {item!r}")

    def _tool(self, call: Call, p: dict, item: str, ts: int) -> None:
        call_id = as_str(p.get("call_id")) or as_str(p.get("id"))
        if not call_id:
            self.skip("record", f"a {item} without a call id")
            return
        if item == "custom_tool_call":
            args = p.get("input")
        elif item == "local_shell_call":
            args = p.get("action")
        else:
            args = p.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        name = as_str(p.get("name")) or ("local_shell" if item == "local_shell_call" else item)
        tool = Tool(call_id, name, as_str(p.get("namespace")), args, ts)
        if call_id in self.tools:
            self.skip("record", f"call id {call_id!r} made twice; the second is left out")
            return
        self.tools[call_id] = tool
        call.tools.append(tool)

    def _output(self, ts: int) -> Call:
        """The response being received: output items come before its usage."""
        call = self._pending
        if call is None:
            call = self._pending = Call(self._mark_ms)
        call.last_item_ms = ts
        return call

    def _respond(self, ts: int, usage: tuple[int, int, int, int, int], key: str | None, end: int) -> None:
        """A response's usage: the response is complete."""
        call = self._pending
        if call is None:
            call = Call(self._mark_ms)
        self._pending = None
        call.usage = usage
        call.key = key
        call.end_ms = end
        self._current_turn(ts).calls.append(call)
        self._mark_ms = ts

    def _event(self, p: dict, ts: int) -> None:
        ev = p.get("type")
        if not isinstance(ev, str):
            self.skip("event", "an event without a type")
            return
        if ev == "token_count":
            info = p.get("info")
            if not isinstance(info, dict):
                return
            total = info.get("total_token_usage")
            if total == self._total:
                return
            self._total = total
            if self._usage_records:
                return
            usage, bad = usage_figures(info.get("last_token_usage"))
            if usage is None:
                self.skip("record", "token_count without last_token_usage")
                return
            if bad:
                self.skip("tokens", bad)
            # 0.140 writes the count after the tool outputs: the response ended with its last item
            end = self._pending.last_item_ms if self._pending is not None else ts
            self._respond(ts, usage, None, end)
        elif ev == "task_started":
            tid = as_str(p.get("turn_id"))
            self._close_pending(None)
            turn = self._turn
            if turn is not None and turn.synthetic and not turn.calls and turn.end_ms is None:
                turn.turn_id, turn.synthetic = tid, False  # the prompt came first (0.100)
            else:
                turn = self._turn = Turn(tid, ts)
                self.turns.append(turn)
            if tid:
                self.turn_ids.add(tid)
            self._mark_ms = ts
        elif ev in ("task_complete", "turn_aborted"):
            turn = self._current_turn(ts)
            tid = as_str(p.get("turn_id"))
            if tid and turn.turn_id != tid:
                turn = next((t for t in reversed(self.turns) if t.turn_id == tid), turn)
            if ev == "turn_aborted":
                reason = as_str(p.get("reason")) or "aborted"
                self._end_turn(turn, ts, "aborted", f"turn aborted ({reason})")
            else:
                err = p.get("error")
                text = None
                if isinstance(err, dict):
                    text = as_str(err.get("message")) or json.dumps(err, ensure_ascii=False)
                elif err is not None:
                    text = str(err)
                turn.last_message = as_str(p.get("last_agent_message"))
                self._end_turn(turn, ts, "error" if text else "completed", text)
            self._mark_ms = ts
        elif ev == "user_message":  # up to 0.150: the user's own prompt
            msg = p.get("message")
            if isinstance(msg, str):
                self._prompt(msg, ts)
            self._mark_ms = ts
        elif ev == "item_completed":
            self._item_completed(p.get("item"), as_int(p.get("started_at_ms")), ts)
        elif ev == "error":  # the running turn's error, when a version writes one apart from task_complete
            turn = self._turn
            if turn is not None and turn.error is None:
                turn.error = as_str(p.get("message")) or "error"
            self._mark_ms = ts
        elif ev in _QUIET_EVENTS:
            pass
        else:
            self.skip("event", f"unknown event {ev!r}")

    def _prompt(self, text: str, ts: int) -> None:
        """A prompt of the user's, written once as an event (a version writing both forms would repeat it)."""
        prompts = self._current_turn(ts).prompts
        if not prompts or prompts[-1] != text:
            prompts.append(text)

    def _item_completed(self, item: object, started: int | None, ts: int) -> None:
        if not isinstance(item, dict):
            self.skip("event", "item_completed without an item")
            return
        kind = item.get("type")
        if not isinstance(kind, str):
            self.skip("event", "a completed item without a type")
            return
        if kind == "UserMessage":  # 0.150+: the user's own prompt
            self._prompt(_text_of(item.get("content")), ts)
            self._mark_ms = ts
        elif kind == "CommandExecution":
            tool = self.tools.get(as_str(item.get("id")) or "")
            if tool is not None:
                tool.start_ms = _checked_time(started)
                status = item.get("status")
                tool.failed = status == "failed" or (status == "completed" and item.get("exit_code") not in (0, None))
        elif kind == "CollabAgentToolCall":
            call_id = as_str(item.get("id"))
            tool = self.tools.get(call_id or "")
            if tool is not None:
                tool.start_ms = _checked_time(started)
            receivers = item.get("receiver_thread_ids")
            if item.get("tool") == "spawn_agent" and call_id and isinstance(receivers, list) and receivers:
                child = as_str(receivers[0])
                if child:
                    self.spawned.setdefault(call_id, child)
        elif kind == "SubAgentActivity":  # v2: the thread a spawn started
            call_id = as_str(item.get("id"))
            child = as_str(item.get("agent_thread_id"))
            if item.get("kind") == "started" and call_id and child:
                self.spawned.setdefault(call_id, child)
        elif kind in _QUIET_ITEMS:
            pass
        else:
            self.skip("event", f"unknown completed item {kind!r}")

    def _read_wait(self, text: str) -> None:
        """A v1 wait result, {"status": {thread: {"completed": text} | {"errored": text}}}: what each child said."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, dict):
            return
        for child, state in status.items():
            if isinstance(state, dict):
                for k in ("completed", "errored"):
                    v = state.get(k)
                    if isinstance(v, str):
                        self.waited[child] = (k, v)

    def _close_pending(self, error: str | None) -> None:
        """Output items whose usage never came (the stream was cut): a call without figures."""
        call = self._pending
        if call is None:
            return
        self._pending = None
        call.end_ms = call.last_item_ms
        call.error = error or "the response ended without its usage"
        self._current_turn(call.last_item_ms).calls.append(call)

    def _end_turn(self, turn: Turn, ts: int, state: str, error: str | None) -> None:
        self._close_pending(error)
        turn.end_ms = ts
        turn.state = state
        if error and not turn.error:
            turn.error = error
        if self._turn is turn:
            self._turn = None

    # -- what the reader builds from -----------------------------------------------------------------

    @property
    def pending(self) -> Call | None:
        """The response being received at the end of what was read (its usage has not come yet)."""
        return self._pending

    @property
    def open_turn(self) -> Turn | None:
        return self._turn


def _checked_time(ms: int | None) -> int | None:
    """A time Codex wrote as a number, if it is one the store can hold."""
    return ms if ms is not None and MIN_TIME_MS <= ms <= MAX_TIME_MS else None


SHELL_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell"})


def exit_failed(name: str, output: str) -> bool:
    """Whether a tool's output says it failed: Codex's answer to a tool it does not have, or for a command
    exec_command's "Process exited with code N" (N != 0) or the old shell tool's JSON `metadata.exit_code`."""
    if output.startswith("unsupported call:"):
        return True
    if name not in SHELL_TOOLS:
        return False
    m = _EXIT_CODE.search(output, 0, 400)
    if m:
        return m.group(1) != "0"
    if output.startswith("{"):
        try:
            meta = json.loads(output).get("metadata")
        except (ValueError, AttributeError, RecursionError):
            return False
        code = meta.get("exit_code") if isinstance(meta, dict) else None
        return isinstance(code, int) and code != 0
    return False


__all__ = ["Call", "Meta", "Rollout", "SPAWN_TOOLS", "Tool", "Turn", "WAIT_TOOLS", "exit_failed",
           "read_meta", "time_ms", "usage_figures"]
