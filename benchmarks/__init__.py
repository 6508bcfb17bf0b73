"""Benchmarks: each builds its stores and prints its figures beside a reference measured in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_child(argv: list[str], **kwargs) -> dict:
    """Run a measuring child process (nothing else counts in its peak RSS) and return the JSON record its last
    line prints; if it fails, what it wrote on stderr is shown and the benchmark stops (a captured traceback
    would be lost)."""
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, **kwargs)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the measuring child failed (exit {done.returncode}): {' '.join(argv[:3])}")
    return json.loads(done.stdout.strip().splitlines()[-1])
