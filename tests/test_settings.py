"""settings.json with bad values, the settings dialog, and the window's exception hook (real widgets)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.opencode import open_source
from analytics.settings import Settings
from dashboard.app import Choice, build, exception_hook, show_when_ready, startup_notice
from dashboard.widgets.settings_dialog import SettingsDialog
from tests.conftest import CASES_118, copy_store, open_window


def _written(tmp_path: Path, data: object) -> Path:
    """A settings file holding `data` (a hand-made bad input, on purpose)."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "words"), [
    ({"refresh_seconds": "5"}, 'refresh_seconds must be a number of seconds, not "5"; using 5 s'),
    ({"refresh_seconds": 1e308}, "refresh_seconds must be from 1 to 3600 seconds, not 1e+308"),
    ('{"refresh_seconds": Infinity}', "refresh_seconds must be from 1 to 3600 seconds, not Infinity"),
    ('{"refresh_seconds": NaN}', "not NaN"),
    ({"refresh_seconds": 0.2}, "refresh_seconds must be from 1 to 3600"),
    ({"refresh_seconds": True}, "refresh_seconds must be a number of seconds, not true"),
    ({"refresh_seconds": 10**30}, "refresh_seconds must be from 1 to 3600"),
    ({"retention_days": "30"}, 'retention_days must be a whole number of days (1 or more), not "30"; keeping'),
    ({"retention_days": True}, "retention_days must be a whole number of days (1 or more), not true"),
    ({"retention_days": 0}, "retention_days must be from 1 to 36500 days, not 0"),
    ({"retention_days": -3}, "not -3"),
    ({"retention_days": 2.5}, "not 2.5"),
    ({"retention_days": 10**12}, "retention_days must be from 1 to 36500 days"),
    ({"terminal_template": "kitty -e 'opencode --session {id}"}, "has a quote or a backslash that nothing closes"),
    ({"terminal_template": ["kitty", "{cmd}"]}, "terminal_template must be a command as a string, or null"),
    ({"terminal_template": "kitty {nope}"}, "has an unknown field ('nope'); use {dir}, {id}, {resume} and {cmd}"),
    ({"sources_off": "codex"}, 'sources_off must be a list of the sources not to read ("opencode", "claude-code", '
                               '"codex"), not "codex"; using []'),
    ({"sources_off": ["claude"]}, 'sources_off: "claude" is not a source (use "opencode", "claude-code", "codex")'),
    ({"sources_off": [None]}, "sources_off: null is not a source"),
])
def test_a_bad_value_is_reported_once_and_its_default_used(tmp_path: Path, caplog, data, words: str) -> None:
    path = _written(tmp_path, data)
    with caplog.at_level(logging.INFO, logger="analytics.settings"):
        s = Settings.load(path)
    assert len(s.problems) == 1 and words in s.problems[0] and s.problems[0].startswith(str(path))
    assert (s.retention_days, s.refresh_seconds, s.terminal_template) == (None, 5.0, None)
    assert len([r for r in caplog.records if r.name == "analytics.settings"]) == 1
    assert s.notice() == f"Settings: {s.problems[0]}."


def test_good_values_pass_and_the_good_keys_of_a_bad_file_are_kept(tmp_path: Path) -> None:
    good = Settings.load(_written(tmp_path, {"retention_days": 30, "refresh_seconds": 2,
                                             "terminal_template": " kitty {cmd} ", "other": 1}))
    assert (good.retention_days, good.refresh_seconds, good.terminal_template, good.problems) == \
        (30, 2.0, "kitty {cmd}", [])
    mixed = Settings.load(_written(tmp_path, {"retention_days": "30", "refresh_seconds": 60}))
    assert (mixed.retention_days, mixed.refresh_seconds, len(mixed.problems)) == (None, 60.0, 1)
    assert Settings.load(_written(tmp_path, {"retention_days": None, "terminal_template": None})).problems == []
    off = Settings.load(_written(tmp_path, {"sources_off": ["codex", "opencode", "codex"]}))
    assert off.sources_off == ["codex", "opencode"] and off.problems == []


@pytest.mark.gui
def test_the_dialog_turns_a_history_off_and_keeps_it_off(qtbot, tmp_path: Path, monkeypatch) -> None:
    """The Read boxes are sources_off: unticked, saved in the file; the other settings' values stay."""
    monkeypatch.setenv("AGENT_TRACES_CONFIG", str(tmp_path / "settings.json"))
    dialog = SettingsDialog(Settings(sources_off=["codex"], refresh_seconds=7))
    qtbot.addWidget(dialog)
    assert [b.isChecked() for b in dialog.read.values()] == [True, True, False]
    dialog.read["claude-code"].setChecked(False)
    dialog.read["codex"].setChecked(True)
    dialog.settings().save()
    saved = Settings.load()
    assert saved.sources_off == ["claude-code"] and saved.refresh_seconds == 7 and saved.problems == []
    assert json.loads((tmp_path / "settings.json").read_text())["sources_off"] == ["claude-code"]
    dialog.read["claude-code"].setChecked(True)
    dialog.settings().save()
    assert "sources_off" not in json.loads((tmp_path / "settings.json").read_text())  # the default is not written


def test_an_unreadable_or_odd_file_is_one_problem(tmp_path: Path) -> None:
    assert "could not be read" in Settings.load(_written(tmp_path, '{"refresh_seconds": ')).problems[0]
    assert "must hold a JSON object" in Settings.load(_written(tmp_path, [1, 2])).problems[0]
    assert Settings.load(tmp_path / "none.json").problems == []


def test_saving_refuses_an_invalid_value(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    for bad in (Settings(refresh_seconds="5"), Settings(retention_days=0), Settings(retention_days=True),  # type: ignore[arg-type]
                Settings(terminal_template="a 'b")):
        with pytest.raises(ValueError):
            bad.save(path)
    assert not path.exists()
    Settings(retention_days=3, refresh_seconds=7).save(path)
    assert json.loads(path.read_text()) == {"retention_days": 3, "refresh_seconds": 7, "terminal_template": None}


@pytest.mark.gui
def test_the_problems_are_what_the_window_says_once_it_has_data(qtbot, tmp_path: Path) -> None:
    settings = Settings.load(_written(tmp_path, {"refresh_seconds": "5"}))
    live = copy_store(CASES_118, tmp_path / "opencode")
    assert startup_notice(Choice(open_source(live), tmp_path / "t.duckdb", "x"), settings) == settings.notice()
    w, _section = open_window(qtbot, live, tmp_path / "t.duckdb", settings)
    assert w.watcher.timer.interval() == 5000  # the default, not "5"
    w.close()
    # the same path run() takes: the sentence is (re)shown after the first fill's own status line
    window, _service = build(Choice(open_source(live), tmp_path / "t2.duckdb", "x"), settings)
    qtbot.addWidget(window)
    show_when_ready(window, settings.notice())
    with qtbot.wait_signal(window.tracing.ready, timeout=20_000):
        window.show()
    qtbot.wait_until(lambda: window.statusBar().currentMessage() == settings.notice(), timeout=5_000)
    window.close()


@pytest.mark.gui
def test_dialog_opens_on_settings_it_cannot_show_and_never_saves_an_invalid_value(qtbot, tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.setenv("AGENT_TRACES_CONFIG", str(tmp_path / "settings.json"))
    # made in code, unchecked: the dialog used to raise on the string
    dialog = SettingsDialog(Settings(retention_days="30", refresh_seconds=1e308))  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    assert dialog.keep_all.isChecked() and dialog.refresh.value() == 5
    accepted: list[bool] = []
    dialog.accepted.connect(lambda: accepted.append(True))
    dialog.template.setText("kitty -e 'opencode")
    assert "nothing closes" in dialog.problem.text()
    dialog.accept()  # as a caller might, with Save disabled: refused while the command does not parse
    assert accepted == []
    assert not (tmp_path / "settings.json").exists()
    dialog.template.setText("kitty {cmd}")
    dialog.keep_all.setChecked(False)
    dialog.days.setValue(0)  # the spin box keeps 1 as its least
    with qtbot.wait_signal(dialog.accepted, timeout=5_000):
        dialog.accept()
    assert dialog.settings().retention_days == 1
    dialog.settings().save()
    assert Settings.load().problems == []


@pytest.mark.gui
def test_dialog_opened_on_a_bad_template_starts_with_save_disabled(qtbot) -> None:
    from PyQt6.QtWidgets import QDialogButtonBox

    dialog = SettingsDialog(Settings(terminal_template="a 'b"))
    qtbot.addWidget(dialog)
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()
    assert "nothing closes" in dialog.problem.text()


@pytest.mark.gui
@pytest.mark.qt_no_exception_capture  # pytest-qt's own hook would catch it first; this tests the app's hook
def test_an_exception_in_a_slot_is_logged_and_said_and_the_app_lives_on(qtbot, tmp_path: Path, caplog) -> None:
    live = copy_store(CASES_118, tmp_path / "opencode")
    w, section = open_window(qtbot, live, tmp_path / "t.duckdb")
    before = sys.excepthook

    def broken() -> None:
        raise RuntimeError("the slot broke\nsecond line")

    section.ready.connect(broken)
    with caplog.at_level(logging.ERROR, logger="dashboard.app"), exception_hook(w):
        assert sys.excepthook is not before
        section.ready.emit()  # a real signal, a real slot that raises: PyQt6 would abort() without a hook
        assert w.statusBar().currentMessage() == (
            "Unexpected error (RuntimeError: the slot broke); the window keeps running and the details are "
            "in the log.")
        with qtbot.wait_signal(section.service.done, timeout=20_000):  # the event loop and the worker go on
            section.refresh()
        assert w.isVisible()
    assert sys.excepthook is before
    assert "Traceback (most recent call last)" in caplog.text and "in broken" in caplog.text
    assert "RuntimeError: the slot broke" in caplog.text
    section.ready.disconnect(broken)
    w.close()


def test_run_keeps_the_hook_for_the_apps_lifetime_and_restores_it(tmp_path: Path) -> None:
    """The whole run(): a slot that raises while the window runs is logged, the app finishes normally."""
    live = copy_store(CASES_118, tmp_path / "opencode")
    script = f"""
import logging, sys
logging.basicConfig(level=logging.WARNING)
import dashboard.app as app
real_build = app.build
def boom():
    raise ValueError("slot failure on purpose")
def build(choice, settings):
    window, service = real_build(choice, settings)
    window.tracing.ready.connect(boom)
    return window, service
app.build = build
code = app.run(source={str(live)!r}, db={str(tmp_path / 't.duckdb')!r}, screenshot={str(tmp_path / 's.png')!r})
print("exit", code, "restored", sys.excepthook is sys.__excepthook__)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr
    assert "exit 0 restored True" in run.stdout
    assert "Traceback (most recent call last)" in run.stderr and "ValueError: slot failure on purpose" in run.stderr


@pytest.mark.parametrize("headers", [{"authorization": "Bearer s3cret", "x-n": 1},
                                     {"authorization": "Bearer s3cret\r\nx-evil: 1"},
                                     ["authorization", "Bearer s3cret"], "authorization: Bearer s3cret"])
def test_bad_otlp_headers_are_said_without_any_value(tmp_path: Path, headers: object) -> None:
    s = Settings.load(_written(tmp_path, {"otlp_headers": headers}))
    assert s.otlp_headers == {} and len(s.problems) == 1 and "otlp_headers" in s.problems[0]
    assert "s3cret" not in s.problems[0] and "s3cret" not in (s.notice() or "")


@pytest.mark.parametrize(("before", "after"), [(None, 0o600), (0o644, 0o600), (0o600, 0o600), (0o400, 0o400),
                                               (0o640, 0o600)])
def test_the_settings_file_is_written_for_its_owner_only(tmp_path: Path, before: int | None, after: int) -> None:
    """It may hold a bearer token (otlp_headers): written 0600, atomically; a stricter mode is kept."""
    path = tmp_path / "conf" / "settings.json"
    if before is not None:
        path.parent.mkdir()
        path.write_text("{}")
        path.chmod(before)
    old_umask = os.umask(0o022)
    try:
        Settings(otlp_endpoint="http://localhost:6006", otlp_headers={"authorization": "Bearer t"}).save(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == after
    assert json.loads(path.read_text())["otlp_headers"] == {"authorization": "Bearer t"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]  # no temporary file left
