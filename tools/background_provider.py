"""The scripted provider (shared/tools/mock_provider.py) with one more directive, for background subagents.

A `{{task AGENT|DESCRIPTION|&bg PROMPT}}` call is sent with `"background": true` (and PROMPT without the
`&bg ` mark), which OpenCode 1.14.51+ accepts when OPENCODE_EXPERIMENTAL_BACKGROUND_SUBAGENTS=true. Everything
else is the mock provider unchanged: it is loaded from its path and its tool-call arguments are rewritten as
they are serialised.

    python3 tools/background_provider.py MOCK_PROVIDER_PY PORT
"""

from __future__ import annotations

import importlib.util
import json
import sys
from http.server import ThreadingHTTPServer

MARK = "&bg "


class _Json:
    """json, but a task call whose prompt starts with MARK is written with `background: true`."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(value: object, *args: object, **kwargs: object) -> str:
        if isinstance(value, dict) and "subagent_type" in value and str(value.get("prompt", "")).startswith(MARK):
            value = {**value, "prompt": value["prompt"][len(MARK):], "background": True}
        return json.dumps(value, *args, **kwargs)


def main() -> None:
    spec = importlib.util.spec_from_file_location("mock_provider", sys.argv[1])
    mock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mock)
    mock.json = _Json
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), mock.H).serve_forever()


if __name__ == "__main__":
    main()
