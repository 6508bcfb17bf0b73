"""analytics/word_diff.py: two texts diffed word by word in bounded work. Any pair gives back both texts exactly,
run by run; what it marks the same is common to both, in order; small changes align exactly; and no input can
hold the worker (one long line of 40,000 words from a small vocabulary took 28.5 s, one of 98,000 never ended),
falling back to a coarser diff that says so."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.word_diff import ADDED, DIFF_CHARS, REMOVED, SAME, TextDiff, word_diff

HANG = 20.0  # seconds: a guard against a diff that does not end (the figure to meet is 1 s; see the report)


def joined(runs: list[tuple[str, str]], kinds: tuple[str, ...] = (SAME, ADDED, REMOVED)) -> str:
    return "".join(t for k, t in runs if k in kinds)


def checked(a: str, b: str, **options: int) -> TextDiff:
    """The diff, checked: each side's runs are its text, and the same runs are the same text on both sides."""
    d = word_diff(a, b, **options)
    assert joined(d.left) == a[:DIFF_CHARS] and joined(d.right) == b[:DIFF_CHARS]
    assert {k for k, _ in d.left} <= {SAME, REMOVED} and {k for k, _ in d.right} <= {SAME, ADDED}
    assert joined(d.left, (SAME,)) == joined(d.right, (SAME,))
    return d


def ended(a: str, b: str) -> TextDiff:
    """The diff, on a thread that must end within HANG seconds."""
    box: list[TextDiff] = []
    worker = threading.Thread(target=lambda: box.append(word_diff(a, b)), daemon=True)
    worker.start()
    worker.join(HANG)
    assert box, f"the diff of two texts of {len(a):,} and {len(b):,} characters did not end in {HANG:g} s"
    return checked(a, b)


def words(n: int, vocabulary: int, seed: int) -> str:
    r = random.Random(seed)
    return " ".join(f"w{r.randrange(vocabulary)}" for _ in range(n))


@pytest.mark.parametrize(("n", "vocabulary"), [(40_000, 100), (40_000, 300), (98_000, 300), (98_000, 4)])
def test_one_long_line_from_a_small_vocabulary_ends(n: int, vocabulary: int) -> None:
    a, b = words(n, vocabulary, 1)[:DIFF_CHARS], words(n, vocabulary, 2)[:DIFF_CHARS]
    d = ended(a, b)
    assert d.coarse  # two unrelated texts without a unique word: marked changed whole, and said


def test_many_short_lines_from_a_small_vocabulary_end() -> None:
    r = random.Random(3)
    a, b = ("\n".join(r.choice("xyz") for _ in range(60_000)) for _ in range(2))
    assert ended(a, b).coarse


def test_stretches_between_unique_words_end_within_the_work() -> None:
    """Unique anchors every few dozen words, a two-word vocabulary between them: many small exact stretches."""
    def gapped(seed: int) -> str:
        r = random.Random(seed)
        return " ".join(f"anchor{k} " + " ".join(r.choice("ab") for _ in range(25)) for k in range(4000))
    ended(gapped(1), gapped(2))


def test_prose_with_repeated_words_and_scattered_edits_aligns_word_by_word() -> None:
    r = random.Random(4)
    text = [f"word{i % 2000}" for i in range(20_000)]  # every word ten times: none unique
    r.shuffle(text)
    edited = list(text)
    spots = sorted(r.sample(range(len(text)), 200))
    for i in spots:
        edited[i] = "EDIT"
    a, b = " ".join(text), " ".join(edited)
    assert len(b) < DIFF_CHARS
    d = ended(a, b)
    assert not d.coarse
    assert joined(d.right, (ADDED,)).count("EDIT") == 200 and len(joined(d.right, (ADDED,))) < 200 * 6


def test_the_work_is_bounded_and_what_it_cannot_pay_for_is_marked_whole() -> None:
    a, b = "the cat sat on the mat\nand it was good", "the dog sat on a mat\nand it was good"
    d = checked(a, b, work=0)
    assert d.coarse and joined(d.left, (SAME,)).endswith("mat\nand it was good")
    exact = checked(a, b)
    assert not exact.coarse and joined(exact.right, (ADDED,)) == "doga"


def lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev, row = row, [0] * (len(b) + 1)
        for j, y in enumerate(b):
            row[j + 1] = prev[j] + 1 if x == y else max(prev[j + 1], row[j])
    return row[-1]


TEXT = st.lists(st.sampled_from(["a", "b", "c", " ", "\n", "dd", "é", "<", "\t"]), max_size=60).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(TEXT, TEXT)
def test_any_pair_gives_back_both_texts_and_a_longest_alignment_when_small(a: str, b: str) -> None:
    from analytics.word_diff import _TOKEN

    d = checked(a, b)
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    if "\n" not in a + b:  # one line each: the words of the line, aligned exactly while small
        assert len(_TOKEN.findall(joined(d.left, (SAME,)))) >= lcs(ta, tb) - 1
