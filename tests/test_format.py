"""The shared formatting (analytics/format.py), as the CLI and the window both show it: figures by kind, a
status's words, a step's labels, a comparison's cells."""

from __future__ import annotations

from analytics import format as fmt


def test_figures_read_by_kind() -> None:
    assert [fmt.figure(v, k) for v, k in ((1500, "duration"), (7100, "tokens"), (0.052, "cost"), (3.0, "count"),
                                          (0.42, "percent"))] == ["1.5 s", "7.1K", "$0.05", "3", "42%"]
    assert {fmt.figure(None, k) for k in fmt.FIGURES} == {"—"}
    assert fmt.signed(-3300, "tokens") == "−3.3K" and fmt.signed(2, "count") == "+2" and fmt.signed(0, "cost") == "±0"


def test_a_status_reads_with_its_mark() -> None:
    assert [fmt.status_label(s) for s in ("completed", "error", "running", "odd")] == [
        "✓ completed", "✗ error", "⟳ running", "odd"]


def test_a_step_says_what_it_is_and_what_it_did() -> None:
    assert fmt.step_label("tool", "bash", "List files", '{"command": "ls"}') == ("bash", "List files")
    assert fmt.step_label("tool", "bash", None, '{"command": "git log\\n--oneline"}') == ("bash", "git log ⏎ --oneline")
    llm = ("llm", "mock-1", "mock")  # the provider id is never the description
    assert fmt.step_label(*llm, tools=["grep"] * 9 + ["read"]) == ("LLM · mock-1", "grep ×9, read")
    assert fmt.step_label(*llm, tools=["read"], delegated=["coder", "coder"]) == ("LLM · mock-1", "read, → coder ×2")
    assert fmt.step_label(*llm, output="\n  Rate limited\nretry")[1] == "Rate limited"
    assert fmt.step_label(*llm, answer="Done: " + "x" * 300)[1].endswith("…")
    assert fmt.step_label(*llm)[1] == "no tool call"
    assert fmt.steps_text(1, 2) == "1 LLM call · 2 tool calls"


def test_a_comparison_cell() -> None:
    assert fmt.compare_cell(14_400, 12_800, "duration", "completed", "completed") == (
        "14.4 s → 12.8 s  −1.6 s (−11%)", -1)
    assert fmt.compare_cell(None, 5000, "duration", "running", "completed") == ("running → 5.0 s", 0)
    assert fmt.compare_cell(None, 3, "count", None, "completed") == ("· → 3", 0)
    assert fmt.compare_cell(2, 2, "count", "completed", "completed") == ("2 → 2  ±0", 0)
    assert fmt.compare_change(0, 5, "tokens") == "+5" and fmt.compare_change(10, None, "tokens") == ""
