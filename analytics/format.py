"""Human-readable figures, shared by the command line and the dashboard, and `printable` for OpenCode's text."""

from __future__ import annotations

from datetime import datetime

from analytics import jsontext


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


def cost(usd: float | None) -> str:
    if usd is None:
        return "—"
    if usd == 0:
        return "$0"
    if usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:.2f}"


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


def signed(value: float | None, kind: str) -> str:
    """A difference with its sign, in the unit of its figure: +1.6 s, −3.3K, +$0.05, +3 ("" when there is none;
    "±0" when it is zero). `kind` is duration, tokens, cost or count."""
    if value is None:
        return ""
    if value == 0:
        return "±0"
    sign = "+" if value > 0 else "−"
    size = abs(value)
    text = {"duration": duration, "tokens": tokens, "cost": cost}.get(kind, lambda v: str(int(v)))(size)
    return sign + text


def signed_percent(value: float | None) -> str:
    """+58%, −11%, ±0% ("" when there is none)."""
    if value is None:
        return ""
    if round(value) == 0:
        return "±0%" if value == 0 else ("+<1%" if value > 0 else "−<1%")
    return f"{'+' if value > 0 else '−'}{abs(value):.0f}%"
