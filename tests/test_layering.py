"""The layering the README promises: nothing under `analytics/` imports PyQt6 or `dashboard`, even lazily; and
no module imports itself through others (an import circle), in `analytics` or `dashboard`.

The modules are parsed, not imported, so an import inside a function or under `if TYPE_CHECKING:` (the easy
ways to slip one in, or to hide a circle) counts as much as one at the top; `importlib.import_module("...")`
and `__import__("...")` with a literal name too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("PyQt6", "dashboard")


def _package_of(path: Path) -> list[str]:
    """The dotted package a module file sits in, as parts (analytics/opencode/x.py -> [analytics, opencode])."""
    return list(path.relative_to(ROOT).with_suffix("").parts[:-1])


def imported_modules(source: str, package: list[str]) -> list[tuple[int, str]]:
    """Every module name a module of `package` imports anywhere in its body, with its line; relative
    imports resolved against the package."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module:
                found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}".lstrip(".")) for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def forbidden_imports(path: Path) -> list[str]:
    """`file:line imports name` for each import of PyQt6 or dashboard in the file."""
    found = imported_modules(path.read_text(encoding="utf-8"), _package_of(path))
    return [f"{path.relative_to(ROOT)}:{line} imports {name}" for line, name in found
            if name.split(".")[0] in FORBIDDEN]


def project_modules() -> dict[str, Path]:
    """Every module of the two packages by its dotted name (a package by its own: analytics.opencode)."""
    out = {}
    for package in ("analytics", "dashboard"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Each module of the project, with the modules of the project it imports anywhere in its body."""
    modules = project_modules()
    return {name: {m for _line, m in imported_modules(path.read_text(encoding="utf-8"), _package_of(path))
                   if m in modules and m != name}
            for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a graph: each set of modules that reach one another, sorted (Tarjan's strongly
    connected components, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, rest = work[-1]
            nxt = next(rest, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return sorted(found)


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    assert len(graph) > 40 and "analytics.queries.findings" in graph["analytics.queries.overview"]
    assert circles(graph) == []


def test_the_circle_check_sees_a_circle_however_it_is_imported() -> None:
    """The checker itself: a circle of three and one of two beside modules that only lead into them; and an
    import made for type hints only counts (analysis_queries and findings once imported each other so)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a", "f"}, "f": {"e"}, "g": {"a"}}
    assert circles(graph) == [["a", "b", "c"], ["e", "f"]]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from analytics.queries.findings import Flag\n"
    assert "analytics.queries.findings" in [m for _l, m in imported_modules(source, ["analytics", "queries"])]


def test_nothing_under_analytics_imports_qt_or_the_dashboard() -> None:
    modules = sorted((ROOT / "analytics").rglob("*.py"))
    assert len(modules) > 15
    assert {ROOT / "analytics" / "cli.py", ROOT / "analytics" / "terminal.py"} <= set(modules)
    problems = [p for m in modules for p in forbidden_imports(m)]
    assert problems == []


def test_the_check_sees_every_kind_of_import() -> None:
    """The checker itself, on a module of analytics.opencode that hides its imports in every way it knows."""
    source = ("import os\nimport PyQt6.QtCore\nfrom PyQt6 import QtWidgets\n"
              "def f():\n    from dashboard.terminal import x\n    import dashboard\n"
              "    from ... import dashboard as d\n    importlib.import_module('dashboard.app')\n"
              "from . import records\nfrom analytics import format\n")
    names = [name for _line, name in imported_modules(source, ["analytics", "opencode"])]
    assert "analytics.opencode.records" in names and "analytics.format" in names
    assert [n for n in names if n.split(".")[0] in FORBIDDEN] == [
        "PyQt6.QtCore", "PyQt6", "PyQt6.QtWidgets", "dashboard.terminal", "dashboard.terminal.x", "dashboard",
        "dashboard", "dashboard.app"]


def test_plain_commands_run_without_qt() -> None:
    """Importing the command line and running a plain command loads no PyQt6 module."""
    code = ("import sys, analytics.cli, analytics.terminal; from dashboard import cli;"
            "cli.build_parser().parse_args(['sessions']);"
            "sys.exit(1 if any(m.startswith('PyQt') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT).returncode == 0


def test_the_installed_command_is_the_composing_entry() -> None:
    from analytics import cli as plain
    from dashboard import cli

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"agent-traces": "dashboard.cli:main"}
    assert cli.build_parser().parse_args([]).func is cli.cmd_dashboard  # no arguments: the dashboard
    assert cli.build_parser().parse_args(["dashboard", "--demo"]).demo
    assert cli.build_parser().parse_args(["load"]).func is plain.cmd_load
    assert getattr(plain.build_parser().parse_args([]), "func", None) is None  # the plain one prints its help
