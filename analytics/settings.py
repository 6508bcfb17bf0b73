"""User settings in one JSON file, with defaults; the command line and environment override them.

File: $AGENT_TRACES_CONFIG, else $XDG_CONFIG_HOME/agent-traces/settings.json, else
~/.config/agent-traces/settings.json.

Every key is checked when the file is read: a value of the wrong type or out of range is reported (one
sentence in `Settings.problems`, which the window shows in its status bar and the CLI prints to stderr) and
its default is used instead. Values are taken as JSON gives them: a number in quotes ("5") is a string and is
refused, like any other string where a number belongs, so what the file says is what the program does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from analytics.models import SOURCES
from analytics.terminal import TerminalError, template_argv

log = logging.getLogger(__name__)

MIN_REFRESH_SECONDS = 1.0
MAX_REFRESH_SECONDS = 3600.0
MAX_RETENTION_DAYS = 36_500  # a hundred years: beyond that the cutoff leaves the range of a timestamp
KEYS = ("retention_days", "refresh_seconds", "terminal_template", "otlp_endpoint", "otlp_headers", "otlp_project",
        "otlp_content", "otlp_cut_kb", "sources_off")
DEFAULT_OTLP_PROJECT = "agent-traces"
# What of the texts a push sends (analytics/otlp.py, Content): each whole, each cut, or none
CONTENT_MODES = ("full", "cut", "none")
DEFAULT_CONTENT_MODE = "cut"
DEFAULT_CUT_KB = 8
MAX_CUT_KB = 1024
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token characters
HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in a value


def _shown(value: object) -> str:
    """A value as the JSON file spells it, for a message."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def retention_problem(value: object) -> str | None:
    """Why `value` is not a retention in days (a whole number from 1 to MAX_RETENTION_DAYS), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"retention_days must be a whole number of days (1 or more), not {_shown(value)}"
    if not 1 <= value <= MAX_RETENTION_DAYS:
        return f"retention_days must be from 1 to {MAX_RETENTION_DAYS} days, not {value}"
    return None


def check_retention_days(value: object) -> int:
    """`value` if it is a valid retention in days; otherwise ValueError with the reason."""
    problem = retention_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value  # type: ignore[return-value]


def refresh_problem(value: object) -> str | None:
    """Why `value` is not a refresh interval in seconds (a finite number from 1 to 3600), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"refresh_seconds must be a number of seconds, not {_shown(value)}"
    finite = not isinstance(value, float) or math.isfinite(value)  # a huge int does not fit a float
    if not finite or not MIN_REFRESH_SECONDS <= value <= MAX_REFRESH_SECONDS:
        return (f"refresh_seconds must be from {MIN_REFRESH_SECONDS:g} to {MAX_REFRESH_SECONDS:g} seconds, "
                f"not {_shown(value)}")
    return None


def template_problem(value: object) -> str | None:
    """Why `value` is not a terminal template (a string a shell could split into words, or null), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"terminal_template must be a command as a string, or null, not {_shown(value)}"
    try:
        template_argv(value, "/dir", "ses_id", "cmd")  # the same check as when a session is opened
    except TerminalError as exc:
        return str(exc).rstrip(".")
    return None


def endpoint_problem(value: object) -> str | None:
    """Why `value` is not an OpenTelemetry endpoint (an http(s) URL, or null), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip().startswith(("http://", "https://")):
        return f"otlp_endpoint must be an http:// or https:// URL, or null, not {_shown(value)}"
    return None


def headers_problem(value: object) -> str | None:
    """Why `value` is not a set of OTLP headers (an object of header names and string values HTTP can carry),
    or None. The message names the header at fault, never a value: it is often a token."""
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string"}.get(type(value), "something else")
        return f"otlp_headers must be an object of header names and string values, not {kind}"
    for key, item in value.items():
        if not isinstance(item, str):
            return f"otlp_headers must hold string values; the value of {_shown(key)} is not a string"
        if not HEADER_NAME.fullmatch(key.strip()):
            return f"otlp_headers: {_shown(key)} is not a header name (one word of letters, digits and -)"
        if HEADER_CONTROL.search(item.strip()):
            return (f"otlp_headers: the value of {_shown(key)} holds a line break or another control character, "
                    "which HTTP cannot carry")
    return None


def content_problem(value: object) -> str | None:
    """Why `value` is not a choice of what of the texts a push sends, or None."""
    if value not in CONTENT_MODES:
        return f"otlp_content must be one of {', '.join(CONTENT_MODES)}, not {_shown(value)}"
    return None


def cut_problem(value: object) -> str | None:
    """Why `value` is not a size in KB to cut texts to (a whole number from 1 to MAX_CUT_KB), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CUT_KB:
        return f"otlp_cut_kb must be a whole number of KB from 1 to {MAX_CUT_KB}, not {_shown(value)}"
    return None


def sources_off_problem(value: object) -> str | None:
    """Why `value` is not a list of the histories not to read ("opencode", "claude-code", "codex"), or None."""
    known = ", ".join(f'"{k}"' for k in SOURCES)
    if not isinstance(value, list):
        return f"sources_off must be a list of the sources not to read ({known}), not {_shown(value)}"
    for item in value:
        if item not in SOURCES:
            return f"sources_off: {_shown(item)} is not a source (use {known})"
    return None


def project_problem(value: object) -> str | None:
    """Why `value` is not a project name (a non-empty string), or None."""
    if not isinstance(value, str) or not value.strip():
        return f"otlp_project must be a name, not {_shown(value)}"
    return None


@dataclass
class Settings:
    """The settings; `problems` lists what the file held that could not be used (not saved)."""

    retention_days: int | None = None  # None keeps everything
    refresh_seconds: float = 5.0
    terminal_template: str | None = None  # e.g. "kitty --directory {dir} opencode --session {id}"
    otlp_endpoint: str | None = None  # an OpenTelemetry backend, e.g. "http://localhost:6006" (Phoenix)
    otlp_headers: dict[str, str] = field(default_factory=dict)  # e.g. {"authorization": "Bearer …"}
    otlp_project: str = DEFAULT_OTLP_PROJECT  # the project the spans go to (`openinference.project.name`)
    otlp_content: str = DEFAULT_CONTENT_MODE  # what of the texts a push sends: full, cut or none
    otlp_cut_kb: int = DEFAULT_CUT_KB  # with `cut`, the KB of each text that go
    sources_off: list[str] = field(default_factory=list)  # histories not read (models.SOURCES), e.g. ["codex"]
    problems: list[str] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The settings in the file, each bad value replaced by its default and reported in `problems`."""
        path = path or settings_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            return cls._reported(f"{path} could not be read ({exc}); using the default settings")
        if not isinstance(data, dict):
            return cls._reported(f"{path} must hold a JSON object; using the default settings")
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> Settings:
        """Settings from parsed JSON: known keys checked one by one; unknown keys are ignored."""
        settings, problems = cls(), []
        where = f"{path}: " if path is not None else ""
        retention = data.get("retention_days")
        if retention is not None and (p := retention_problem(retention)) is not None:
            problems.append(f"{where}{p}; keeping everything")
        else:
            settings.retention_days = retention
        refresh = data.get("refresh_seconds", settings.refresh_seconds)
        if (p := refresh_problem(refresh)) is not None:
            problems.append(f"{where}{p}; using {settings.refresh_seconds:g} s")
        else:
            settings.refresh_seconds = float(refresh)
        template = data.get("terminal_template")
        if (p := template_problem(template)) is not None:
            problems.append(f"{where}{p}; using the automatic terminal")
        else:
            settings.terminal_template = (template.strip() or None) if template is not None else None
        for key, check, default in (("otlp_endpoint", endpoint_problem, None), ("otlp_headers", headers_problem, {}),
                                    ("otlp_project", project_problem, DEFAULT_OTLP_PROJECT),
                                    ("otlp_content", content_problem, DEFAULT_CONTENT_MODE),
                                    ("otlp_cut_kb", cut_problem, DEFAULT_CUT_KB),
                                    ("sources_off", sources_off_problem, [])):
            value = data.get(key, default)
            if (p := check(value)) is not None:
                problems.append(f"{where}{p}; using {_shown(default)}")
            else:
                setattr(settings, key, value.strip() if isinstance(value, str) else
                        dict(value) if isinstance(value, dict) else list(dict.fromkeys(value))
                        if isinstance(value, list) else value)
        settings.problems = problems
        for problem in problems:
            log.info("settings: %s", problem)
        return settings

    @classmethod
    def _reported(cls, problem: str) -> Settings:
        """The defaults, with the one problem that made the whole file unusable."""
        log.info("settings: %s", problem)
        return cls(problems=[problem])

    def invalid(self) -> list[str]:
        """What is wrong with the values this object holds now (empty when it can be saved)."""
        found = [] if self.retention_days is None else [retention_problem(self.retention_days)]
        found += [refresh_problem(self.refresh_seconds), template_problem(self.terminal_template),
                  endpoint_problem(self.otlp_endpoint), headers_problem(self.otlp_headers),
                  project_problem(self.otlp_project), content_problem(self.otlp_content),
                  cut_problem(self.otlp_cut_kb), sources_off_problem(self.sources_off)]
        return [p for p in found if p is not None]

    def notice(self) -> str | None:
        """The problems as one line for a status bar, or None."""
        if not self.problems:
            return None
        return "Settings: " + "; ".join(self.problems) + "."

    def to_dict(self) -> dict[str, object]:
        """The values as the file holds them (problems are not saved); the OpenTelemetry ones and sources_off only
        when set."""
        defaults = Settings()
        return {k: getattr(self, k) for k in KEYS
                if not (k.startswith("otlp_") or k == "sources_off") or getattr(self, k) != getattr(defaults, k)}

    def save(self, path: Path | None = None) -> None:
        """Write the settings; ValueError, and nothing written, if a value is invalid.

        The file may hold a token (otlp_headers): it is written for its owner only (0600, or the stricter
        mode the file had), through a temporary file made 0600 from the start and renamed over it, so no
        moment shows the content to others or half of it to anyone."""
        bad = self.invalid()
        if bad:
            raise ValueError("; ".join(bad))
        path = path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = stat.S_IMODE(path.stat().st_mode) & 0o600  # never more than the owner's read and write
        except FileNotFoundError:
            mode = 0o600
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(self.to_dict(), indent=2))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise


def settings_path() -> Path:
    env = os.environ.get("AGENT_TRACES_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agent-traces" / "settings.json"
