"""How things read, shared by the command line and the window: figures (a duration, tokens, dollars) by kind, a
status's words, a step's label, a change between two runs; and `printable` for OpenCode's text."""

from __future__ import annotations

from datetime import datetime

from analytics import jsontext
from analytics.models import SOURCES


def _escape(code: int) -> str:
    """The visible form of one control character: `\\n`, `\\t`, `\\r`, else `\\x1b` or `\\u202e`."""
    short = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}
    return short.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


# What a terminal would act on instead of showing: C0 controls, DEL, C1 controls (NEL U+0085 among them), the
# Unicode line and paragraph separators, and the bidi embeddings, overrides and isolates that reorder the
# text around them ("Trojan Source"). Each is shown as its escape, `\x1b` or `\u202e`.
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
           *range(0x2066, 0x206A)]
_INLINE = str.maketrans({c: _escape(c) for c in _UNSAFE})
_BLOCK = str.maketrans({c: _escape(c) for c in _UNSAFE if chr(c) not in "\n\t"})


def printable(text: object, block: bool = False) -> str:
    r"""`text` with every character a terminal would obey (ESC, CR, BEL, C1, DEL, U+2028/9, bidi controls)
    shown as an escape such as `\x1b`, so text from OpenCode can never retitle, clear or rewrite a terminal.

    One-line fields (titles, agents, directories) escape `\n` and `\t` too, so a row stays one row; with
    `block`, for a prompt printed as a block of lines, newlines and tabs are kept (CRLF counts as a newline).
    Backslashes are left alone: a literal `\x1b` typed in a prompt looks the same, and `--json` is exact.
    """
    text = str(text)
    if block:
        return text.replace("\r\n", "\n").translate(_BLOCK)
    return text.translate(_INLINE)


# What json.dumps(ensure_ascii=False) leaves raw of those (it escapes the C0 controls itself)
_JSON_UNSAFE = str.maketrans({c: f"\\u{c:04x}" for c in _UNSAFE if c >= 0x7F})


def json_safe(text: str) -> str:
    r"""JSON text with DEL, the C1 controls, U+2028/9 and the bidi controls written as ``-style escapes:
    the same JSON (a reader gets the text exact), which a terminal shows instead of obeying. Raw, they can
    only stand inside strings, where an escape means the same character."""
    return text.translate(_JSON_UNSAFE)


def duration(ms: float | None) -> str:
    """412 ms, 1.9 s, 1m 08s, 2h 05m (a median may come as a float)."""
    if ms is None:
        return "—"
    ms = int(ms)
    if ms < 1000:
        return f"{ms} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m:02d}m"
    return f"{h // 24}d {h % 24:02d}h"


def tokens(n: float | None) -> str:
    """812, 7.1K, 1.3M."""
    if n is None:
        return "—"
    n = int(n)
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}K"
    return f"{n / 1_000_000:.1f}M"


def cost(usd: float | None, unpriced: int = 0, short: bool = False) -> str:
    """$0.42, $0.0031, $0; with `unpriced` LLM calls whose model has no price (Claude Code, Codex), never a
    plain figure: "unknown" when nothing else is known, else the known part and what it lacks ("$0.42 + 3
    calls unpriced", or "$0.42+" where room is short). "—" when there is no figure at all."""
    if unpriced:
        if not usd:
            return "unknown"
        known = cost(usd)
        return f"{known}+" if short else f"{known} + {unpriced} call{'s' * (unpriced != 1)} unpriced"
    if usd is None:
        return "—"
    if usd == 0:
        return "$0"
    if usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:.2f}"


def source_label(source: str | None, version: str | None = None) -> str:
    """Which agent wrote a session, for a person: "Claude Code 2.1.332", "OpenCode", "Codex 0.171.0"."""
    name = SOURCES.get(source or "", source or "?")
    return f"{name} {version}" if version else name


def step_cost(usd: float | None) -> str:
    """One LLM call's cost: "unknown" when its model has no price (the store holds NULL), not "$0"."""
    return "unknown" if usd is None else cost(usd)


def unpriced_note(unpriced: int) -> str:
    """What a tooltip says of a cost that is not known whole."""
    if not unpriced:
        return ""
    return (f"{unpriced} LLM call{'s' * (unpriced != 1)} of a model with no price in the table (genai-prices): "
            "the cost shown is what the priced calls cost")


def when(ms: int | None) -> str:
    """Local date and time to the second."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def minute(ms: int | None) -> str:
    """Local date and time to the minute: 2026-12-01 14:02."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def ago(ms: float) -> str:
    """How long ago, coarsely: 40 s, 7 min, 6 h, 3 days."""
    s = max(int(ms // 1000), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 48 * 3600:
        return f"{s // 3600} h"
    return f"{s // 86400} days"


TOOL_INPUT_KEYS = ("command", "filePath", "path", "pattern", "url", "query", "description")  # telling ones first


def tool_argument(raw: str | None, limit: int = 120) -> str:
    """A tool call's input (JSON text) on one line: its command, path or pattern when it has one, else its first
    text value, else the JSON itself; cut at `limit` characters."""
    if not raw:
        return ""
    try:
        value = jsontext.loads(raw)  # at any depth: a model may nest its input 1,500 deep
    except ValueError:
        value = raw
    if isinstance(value, dict):
        text = next((value[k] for k in TOOL_INPUT_KEYS if isinstance(value.get(k), str) and value[k].strip()),
                    None) or next((v for v in value.values() if isinstance(v, str) and v.strip()), None)
        text = text if text is not None else jsontext.dumps(value, (", ", ": "), allow_nan=True)
    elif isinstance(value, str):
        text = value
    else:  # a list or a number: as JSON (a nested list's repr would recurse)
        text = jsontext.dumps(value, (", ", ": "), allow_nan=True)
    text = " ⏎ ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def count(n: float | None) -> str:
    """A whole number: 3 ("—" when there is none)."""
    return "—" if n is None else str(int(n))


def share(fraction: float | None) -> str:
    """A fraction as a percentage: 42% ("—" when there is none)."""
    return "—" if fraction is None else f"{fraction * 100:.0f}%"


# How a figure of each kind reads, wherever one is shown (the CLI's tables, the window's columns, a comparison).
FIGURES = {"duration": duration, "tokens": tokens, "cost": cost, "count": count, "percent": share}


def figure(value: float | None, kind: str) -> str:
    """A figure as its kind reads: `figure(1500, "duration")` is "1.5 s"."""
    return FIGURES[kind](value)


STATUS_MARK = {"completed": "✓", "error": "✗", "running": "⟳"}


def status_label(status: str) -> str:
    """A status with its mark: "✓ completed", "✗ error", "⟳ running" (an unknown one as it is)."""
    mark = STATUS_MARK.get(status)
    return f"{mark} {status}" if mark else status


def tool_runs(names: list[str]) -> str:
    """Tool names in order, runs of one tool shortened: "read, glob, grep ×9"."""
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in runs)


def first_line(text: str | None, limit: int = 120) -> str:
    """The first line of a text that is not blank, cut at `limit` characters ("" for none)."""
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def steps_text(llm: int, tools: int) -> str:
    """ "14 LLM calls · 37 tool calls": how many steps a call took."""
    return f"{llm} LLM call{'s' * (llm != 1)} · {tools} tool call{'s' * (tools != 1)}"


def step_label(kind: str, name: str, title: str | None, tool_input: str | None = None,
               tools: list[str] | None = None, output: str | None = None, answer: str | None = None,
               delegated: list[str] | None = None) -> tuple[str, str]:
    """A step's two labels, the same in the tree and in `agent-traces steps`: what it is, and what it did.

    A tool call: its name, and its title, else its main argument (`bash`, `git log --oneline`). An LLM call:
    "LLM · model", and what the call did: the tools it called (`tools`, in order) and the agents it delegated to
    (`delegated`: "→ coder ×2"); else the first line of its output (the store keeps an LLM call's error there),
    else of `answer` (the text it answered with, when that is known: a trace's last LLM call answered with the
    trace's output)."""
    if kind != "llm":
        return name, title or tool_argument(tool_input)
    calls = [tool_runs(tools)] if tools else []
    if delegated:
        calls.append("→ " + tool_runs(delegated))
    did = ", ".join(calls) or first_line(output) or first_line(answer) or "no tool call"
    return f"LLM · {name}", did


def signed(value: float | None, kind: str) -> str:
    """A difference with its sign, in the unit of its figure: +1.6 s, −3.3K, +$0.05, +3 ("" when there is none;
    "±0" when it is zero). `kind` is duration, tokens, cost or count."""
    if value is None:
        return ""
    if value == 0:
        return "±0"
    sign = "+" if value > 0 else "−"
    size = abs(value)
    return sign + figure(size, kind)


def signed_percent(value: float | None) -> str:
    """+58%, −11%, ±0% ("" when there is none)."""
    if value is None:
        return ""
    if round(value) == 0:
        return "±0%" if value == 0 else ("+<1%" if value > 0 else "−<1%")
    return f"{'+' if value > 0 else '−'}{abs(value):.0f}%"


def compare_side(value: float | None, kind: str, running: bool = False, unpriced: int = 0) -> str:
    """One side's figure in a comparison: as its kind reads, "running" for the time of a call still running, a
    cost with unpriced calls as `cost` says it ("unknown", "$0.42+")."""
    if kind == "duration" and value is None and running:
        return "running"
    if kind == "cost" and unpriced:
        return cost(value, unpriced, short=True)
    return figure(value, kind)


def compare_change(left: float | None, d: float | None, kind: str) -> str:
    """A difference between two runs' figures, with its share of the left one: "−1.6 s (−11%)", "±0" ("" when
    there is none)."""
    if d is None:
        return ""
    pct = signed_percent(d / left * 100) if d and left else ""
    return signed(d, kind) + (f" ({pct})" if pct else "")


def compare_cell(a: float | None, b: float | None, kind: str, left_status: str | None,
                 right_status: str | None, unpriced: tuple[int, int] = (0, 0)) -> tuple[str, int]:
    """A figure of two aligned calls: "14.4 s → 12.8 s  −1.6 s (−11%)", and +1 when the right one is larger,
    −1 when smaller, 0 otherwise. A side whose status is None has no such call: "·"; a cost with unpriced calls
    on either side (`unpriced`, left and right) has no difference."""
    text_a = "·" if left_status is None else compare_side(a, kind, left_status == "running", unpriced[0])
    text_b = "·" if right_status is None else compare_side(b, kind, right_status == "running", unpriced[1])
    if left_status is None or right_status is None or a is None or b is None or any(unpriced):
        return f"{text_a} → {text_b}", 0
    d = b - a
    return f"{text_a} → {text_b}  {compare_change(a, d, kind)}", (d > 0) - (d < 0)
