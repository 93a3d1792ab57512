"""``presentation.plain_table`` (the text/plain of every report table) against tabulate, which
it replaces in the report kernels: the same text, character for character, for random tables
of the values reports hold (numbers, blanks, ✓, dashes, wide and combining characters,
padded and multi-line cells)."""

from __future__ import annotations

import random
import sys

import pytest

from obslib.presentation import Col, Table, plain_table, text_width

tabulate = pytest.importorskip("tabulate").tabulate

POOL = ["", " ", "a", "abc", "long value here", "1,234.50", "-0.137", "✓", "–", "x · y", "× 3", "日本語", "é", "e\u0301",
        "  pad  ", "a\nb", "line1\nlonger line2", "NO DATA", "ü ß", "\u00a0x", "2025-10-04 10:43"]
HEADERS = ["h", "rows", "win rate (%)", "worst hourly p95 (ms)", "日本", "x"]


def test_random_tables_match_tabulate():
    rng = random.Random(14)
    for _ in range(2000):
        ncol, nrow = rng.randint(1, 6), rng.randint(1, 6)
        headers = [rng.choice(HEADERS) for _ in range(ncol)]
        right = [rng.random() < 0.5 for _ in range(ncol)]
        cells = [[rng.choice(POOL) for _ in range(ncol)] for _ in range(nrow)]
        want = tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True,
                        colalign=["right" if r else "left" for r in right])
        assert plain_table(cells, headers, right) == want, (cells, headers, right)


def test_hand_made_table():
    # widths: max(widest cell, header + 2) = 9 and 5; two spaces between; the right column's
    # header and numbers right-aligned; trailing blanks dropped
    assert plain_table([["a", "1,234"], ["long name", ""]], ["name", "n"], [False, True]) == (
        "name     " + "  " + "    n\n"
        "---------  -----\n"
        "a          1,234\n"
        "long name")
    assert text_width("日本") == 4 and text_width("e\u0301") == 1 and text_width("✓ –") == 3


def test_a_report_table_prints_without_importing_tabulate():
    sys.modules.pop("tabulate", None)
    t = Table([Col("k", "key", "id"), Col("v", "value (ms)", "num", 0)], [{"k": "feed", "v": 1234.4}, {"k": "b"}])
    # widths 5 (header "key" + 2) and 12 ("value (ms)" + 2)
    assert str(t) == "key  " + "  " + "  value (ms)\n-----  ------------\nfeed " + "  " + "       1,234\nb"
    assert "tabulate" not in sys.modules
