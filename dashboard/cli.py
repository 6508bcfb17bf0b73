"""The `agent-traces` entry point: the plain commands of `analytics.cli` plus `dashboard`, the default.

It sits above both layers (the dependency points down: `analytics` never imports `dashboard`), and imports
the Qt side only when the dashboard is asked for, so `agent-traces load` works without Qt's system libraries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from analytics import cli
from analytics.errors import AgentTracesError


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Open the window; a missing PyQt6 or Qt system library is one sentence, not a traceback."""
    try:
        from dashboard.app import run
    except ImportError as exc:  # PyQt6 or its system libraries are missing
        raise AgentTracesError(f"The dashboard cannot start ({exc}); see the README for the Qt system "
                               "libraries (Debian: libegl1 libxkbcommon-x11-0 libxcb-cursor0).") from exc
    return run(source=args.source, db=args.db, demo=args.demo, screenshot=args.screenshot)


def _dashboard_options(p: argparse.ArgumentParser, after_command: bool) -> None:
    """The dashboard's options; the `dashboard` command's copy has no defaults (see `cli._common`)."""
    none = {"default": argparse.SUPPRESS} if after_command else {}
    if after_command:  # `agent-traces` alone has --source already
        p.add_argument("--source", action="append", metavar="PATH", help=cli.SOURCE_HELP, **none)
    p.add_argument("--demo", action="store_true", help="show the bundled demo store", **none)
    p.add_argument("--screenshot", metavar="PATH", help="render the window to a PNG and exit (works offscreen)",
                   **none)
    p.set_defaults(func=cmd_dashboard)


def add_dashboard(parser: argparse.ArgumentParser, sub: Any, common: argparse.ArgumentParser) -> None:
    """`agent-traces dashboard`, and the same options on `agent-traces` alone (the dashboard is the default)."""
    _dashboard_options(parser, after_command=False)
    _dashboard_options(sub.add_parser("dashboard", parents=[common], help="open the dashboard (the default command)"),
                       after_command=True)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every plain command and the dashboard."""
    return cli.build_parser(extend=add_dashboard)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `agent-traces` with these arguments (default: the process's); returns the exit code."""
    return cli.main(argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
