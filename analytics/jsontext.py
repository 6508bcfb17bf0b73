"""JSON from the data, at any depth: parsed, written and walked without recursion on its nesting.

A tool call's input is whatever the model wrote, and SQLite keeps JSON nested far deeper than Python's
recursion limit (1,500 levels in one input ended every window refresh in a RecursionError). Python's own
`json` recurses once per level (in C, but counted against the same limit), so each function here tries it
first, as it is much faster, and on a RecursionError does the same work with a stack of its own: the result
is the same, only slower, and only for those documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.decoder import scanstring
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_scan_once = json.JSONDecoder().scan_once  # one value: a scalar, or a container (recursing)
_END = object()


def loads(text: str) -> Any:
    """json.loads, at any depth (NaN and Infinity taken as json.loads takes them)."""
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_deep(text)


def _loads_deep(text: str) -> Any:
    """json.loads with a stack of containers instead of recursion (scalars are read by json's own scanner)."""
    stack: list[list[Any]] = []  # [container, the key its next value goes under]
    pos = _WS.match(text, 0).end()
    while True:
        ch = text[pos:pos + 1]
        if ch in ("[", "{"):
            container: Any = [] if ch == "[" else {}
            pos = _WS.match(text, pos + 1).end()
            if text[pos:pos + 1] == ("]" if ch == "[" else "}"):
                value, pos = container, pos + 1
            else:
                stack.append([container, None])
                if ch == "{":
                    stack[-1][1], pos = _key(text, pos)
                continue
        else:
            try:
                value, pos = _scan_once(text, pos)
            except StopIteration:
                raise json.JSONDecodeError("Expecting value", text, pos) from None
        while True:  # a value is whole: into its container, closing every container that ends here
            if not stack:
                end = _WS.match(text, pos).end()
                if end != len(text):
                    raise json.JSONDecodeError("Extra data", text, end)
                return value
            container, key = stack[-1]
            if isinstance(container, list):
                container.append(value)
            else:
                container[key] = value
            pos = _WS.match(text, pos).end()
            ch = text[pos:pos + 1]
            if ch == ",":
                pos = _WS.match(text, pos + 1).end()
                if isinstance(container, dict):
                    stack[-1][1], pos = _key(text, pos)
                break
            if ch == ("]" if isinstance(container, list) else "}"):
                stack.pop()
                value, pos = container, pos + 1
                continue
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


def _key(text: str, pos: int) -> tuple[str, int]:
    """An object's key and the ':' after it; the position of its value."""
    if text[pos:pos + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = scanstring(text, pos + 1)
    pos = _WS.match(text, pos).end()
    if text[pos:pos + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, _WS.match(text, pos + 1).end()


def dumps(value: Any, separators: tuple[str, str] = (",", ":"), allow_nan: bool = False,
          ensure_ascii: bool = False) -> str:
    """json.dumps at any depth; compact and keeping non-ASCII characters unless told otherwise."""
    try:
        return json.dumps(value, ensure_ascii=ensure_ascii, separators=separators, allow_nan=allow_nan)
    except RecursionError:
        return _dumps_deep(value, separators, allow_nan, ensure_ascii)


def _dumps_deep(value: Any, separators: tuple[str, str], allow_nan: bool, ensure_ascii: bool = False) -> str:
    scalar = json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=allow_nan).encode
    item_sep, key_sep = separators
    out: list[str] = []
    stack: list[list[Any]] = []  # [iterator over the items, closing bracket, first item still to come]

    def start(v: Any) -> None:
        if isinstance(v, dict):
            out.append("{")
            stack.append([iter(v.items()), "}", True])
        elif isinstance(v, list | tuple):
            out.append("[")
            stack.append([iter(v), "]", True])
        else:
            out.append(scalar(v))

    start(value)
    while stack:
        top = stack[-1]
        item = next(top[0], _END)
        if item is _END:
            out.append(top[1])
            stack.pop()
            continue
        if not top[2]:
            out.append(item_sep)
        top[2] = False
        if top[1] == "}":
            key, item = item
            out.append(scalar(key if isinstance(key, str) else json.dumps(key).strip('"')) + key_sep)
        start(item)
    return "".join(out)


def rebuild(value: Any, leaf: Callable[[Any], Any], keys: bool = False) -> Any:
    """A copy of a parsed JSON value with `leaf` applied to every scalar (and with `keys`, to every object
    key), made without recursion."""
    if not isinstance(value, dict | list):
        return leaf(value)
    root: Any = {} if isinstance(value, dict) else []
    stack = [(value, root)]
    while stack:
        source, copy = stack.pop()
        for k, v in source.items() if isinstance(source, dict) else enumerate(source):
            if isinstance(v, dict | list):
                new: Any = {} if isinstance(v, dict) else []
                stack.append((v, new))
            else:
                new = leaf(v)
            if isinstance(copy, dict):
                copy[leaf(k) if keys else k] = new
            else:
                copy.append(new)
    return root
