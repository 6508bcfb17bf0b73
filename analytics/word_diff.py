"""Two texts diffed word by word, in bounded work: first by lines, then by words inside each changed block.

Plain Python, used by the Compare tab (on its worker thread) for two calls' prompts and outputs. Any two texts
of up to DIFF_CHARS characters each are diffed within a fixed amount of work (WORK steps), whatever they hold:

- what both texts start and end with is matched by a scan;
- then, like the patience diff of Bazaar and git, the tokens found once on each side anchor the alignment
  (the longest series of them in the same order), and the stretches between anchors are diffed the same
  way; where no single token is unique (a text that repeats its words), runs of 3, 8 or 24 tokens are;
- a stretch small enough (SMALL_CELLS) is aligned exactly (a longest common subsequence);
- a stretch left over once the work is spent, or too large with nothing unique in it (one long line of a
  few hundred words repeated, which made difflib run for minutes), is marked changed whole, and the diff says
  so (`TextDiff.coarse`).

So a small edit in a long text costs a scan, real prose aligns on its many unique words, and no input can
hold the worker: the whole of a 200,000-character pair takes well under a second.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

DIFF_CHARS = 200_000  # of each text; the rest is said, not diffed (the detail pane shows texts this far too)
WORK = 1_500_000  # steps one diff may take: tokens scanned, and cells of the exact alignments
SMALL_CELLS = 10_000  # a stretch of n × m tokens up to this is aligned exactly
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")

SAME, REMOVED, ADDED = "same", "removed", "added"


@dataclass(frozen=True)
class TextDiff:
    """Two texts as runs of (kind, text): `left` holds same and removed runs, `right` same and added ones.

    Joined, each side's runs are exactly its text as far as it was diffed (`DIFF_CHARS`); `left_cut` and
    `right_cut` say how many characters were left out after that. `coarse`: some changed stretch was too
    large to align word by word in the work allowed, and is marked changed whole."""

    left: list[tuple[str, str]]
    right: list[tuple[str, str]]
    left_cut: int = 0
    right_cut: int = 0
    coarse: bool = False

    @property
    def identical(self) -> bool:
        return all(kind == SAME for kind, _ in (*self.left, *self.right)) and not (self.left_cut or self.right_cut)


class _Budget:
    """The work left to one diff; `coarse` once a stretch was marked changed whole for want of it."""

    def __init__(self, steps: int) -> None:
        self.left = steps
        self.coarse = False

    def take(self, steps: int) -> bool:
        """Spend `steps` if they are left."""
        if steps > self.left:
            return False
        self.left -= steps
        return True


def matching_blocks(a: list[str], b: list[str], budget: _Budget) -> list[tuple[int, int, int]]:
    """(i, j, n): a[i:i+n] == b[j:j+n], in order, not overlapping; within the budget (see the module doc).
    A stack of stretches, not recursion."""
    found: list[tuple[int, int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        a0, a1, b0, b1 = stack.pop()
        head = 0
        while a0 + head < a1 and b0 + head < b1 and a[a0 + head] == b[b0 + head]:
            head += 1
        if head:
            found.append((a0, b0, head))
            a0, b0 = a0 + head, b0 + head
        tail = 0
        while a0 < a1 - tail and b0 < b1 - tail and a[a1 - 1 - tail] == b[b1 - 1 - tail]:
            tail += 1
        if tail:
            found.append((a1 - tail, b1 - tail, tail))
            a1, b1 = a1 - tail, b1 - tail
        n, m = a1 - a0, b1 - b0
        budget.take(head + tail)
        if not n or not m:
            continue
        if n * m <= SMALL_CELLS and budget.take(n * m):
            found.extend(_exact(a, b, a0, a1, b0, b1))
            continue
        anchors = _anchors(a, b, a0, a1, b0, b1, budget)
        if not anchors:
            budget.coarse = True  # marked changed whole
            continue
        i0, j0 = a0, b0
        for i, j, k in anchors:
            found.append((i, j, k))
            stack.append((i0, i, j0, j))
            i0, j0 = i + k, j + k
        stack.append((i0, a1, j0, b1))
    found.sort()
    merged: list[tuple[int, int, int]] = []
    for i, j, k in found:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + k)
        else:
            merged.append((i, j, k))
    return merged


GRAMS = (1, 3, 8, 24)  # tokens an anchor holds: one, else a run of them that is unique where single ones are not


def _anchors(a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int,
             budget: _Budget) -> list[tuple[int, int, int]]:
    """(i, j, k): runs of k tokens found once in a[a0:a1] and once in b[b0:b1], the longest series of them in
    the same order on both sides (patience sorting), not overlapping. Single tokens first; where none is
    unique on both sides (a text that repeats its words), runs of 3, 8 or 24 of them. None when the budget
    cannot pay for the scans."""
    for k in GRAMS:
        if a1 - a0 < k or b1 - b0 < k:
            break
        if not budget.take(k * ((a1 - a0) + (b1 - b0))):
            return []
        if k == 1:
            grams_a, grams_b = a[a0:a1], b[b0:b1]
        else:
            grams_a = [tuple(a[i:i + k]) for i in range(a0, a1 - k + 1)]
            grams_b = [tuple(b[j:j + k]) for j in range(b0, b1 - k + 1)]
        in_a, in_b = Counter(grams_a), Counter(grams_b)
        where_b = {g: b0 + j for j, g in enumerate(grams_b) if in_b[g] == 1 and in_a[g] == 1}
        pairs = [(a0 + i, where_b[g]) for i, g in enumerate(grams_a) if g in where_b]
        if pairs:
            run, end_i, end_j = [], -1, -1
            for i, j in _increasing(pairs):
                if i >= end_i and j >= end_j:  # runs of k may overlap: keep those that do not
                    run.append((i, j, k))
                    end_i, end_j = i + k, j + k
            return run
    return []


def _increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest series of pairs (in order of i) whose j increase too."""
    tails: list[int] = []  # the smallest last j of a series of each length
    ends: list[int] = []  # the index in `pairs` of that last element
    before = [-1] * len(pairs)
    for n, (_i, j) in enumerate(pairs):
        at = bisect_left(tails, j)
        if at == len(tails):
            tails.append(j)
            ends.append(n)
        else:
            tails[at], ends[at] = j, n
        before[n] = ends[at - 1] if at else -1
    run, n = [], ends[-1]
    while n != -1:
        run.append(pairs[n])
        n = before[n]
    return run[::-1]


def _exact(a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int) -> list[tuple[int, int, int]]:
    """A longest common subsequence of two small stretches, as matching blocks of one token each."""
    n, m = a1 - a0, b1 - b0
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below, x = table[i], table[i + 1], a[a0 + i]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if x == b[b0 + j] else max(below[j], row[j + 1])
    out, i, j = [], 0, 0
    while i < n and j < m:
        if a[a0 + i] == b[b0 + j]:
            out.append((a0 + i, b0 + j, 1))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def _runs(out: list[tuple[str, str]], kind: str, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == kind:
        out[-1] = (kind, out[-1][1] + text)
    else:
        out.append((kind, text))


def _diff(ta: list[str], tb: list[str], left: list[tuple[str, str]], right: list[tuple[str, str]],
          budget: _Budget, changed: callable | None = None) -> None:  # type: ignore[valid-type]
    """Two unit lists (lines or words) diffed into the runs; `changed(a_units, b_units)` takes each changed
    block instead of marking it (the word diff inside changed lines)."""
    i = j = 0
    for bi, bj, k in [*matching_blocks(ta, tb, budget), (len(ta), len(tb), 0)]:
        if i < bi or j < bj:
            if changed is not None:
                changed(ta[i:bi], tb[j:bj])
            else:
                _runs(left, REMOVED, "".join(ta[i:bi]))
                _runs(right, ADDED, "".join(tb[j:bj]))
        _runs(left, SAME, "".join(ta[bi:bi + k]))
        _runs(right, SAME, "".join(tb[bj:bj + k]))
        i, j = bi + k, bj + k


def word_diff(a: str | None, b: str | None, limit: int = DIFF_CHARS, work: int = WORK) -> TextDiff:
    """A word-level diff of two texts: first by lines (what keeps a long text cheap), then by words inside
    each changed block of lines (line by line when both sides have as many). Only the first `limit`
    characters of each are diffed, in at most `work` steps (see the module doc)."""
    a, b = a or "", b or ""
    cut_a, cut_b = max(len(a) - limit, 0), max(len(b) - limit, 0)
    a, b = a[:limit], b[:limit]
    left: list[tuple[str, str]] = []
    right: list[tuple[str, str]] = []
    budget = _Budget(work)

    def words(x: str, y: str) -> None:
        _diff(_TOKEN.findall(x), _TOKEN.findall(y), left, right, budget)

    def lines(la: list[str], lb: list[str]) -> None:
        if len(la) == len(lb):
            for x, y in zip(la, lb, strict=True):
                words(x, y)
        else:
            words("".join(la), "".join(lb))

    _diff(a.splitlines(keepends=True), b.splitlines(keepends=True), left, right, budget, lines)
    return TextDiff(left, right, cut_a, cut_b, budget.coarse)
