"""``benchmarks/un_scaling.py``'s table: one row per run, and per n the dimensions over the
seeds and how many runs matched U(n)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import un_scaling  # noqa: E402


def _row(n, seed, dim, matches, par):
    return {"n": n, "seed": seed, "K": max(12, n * n + 3), "u_n": n * n, "dimension": dim,
            "min_parallelness": par, "matches": matches, "wall_s": 1.0}


def test_table_counts_matches_per_n():
    rows = [_row(1, 0, 2, False, 0.0164), _row(1, 1, 1, True, 0.9999),
            _row(4, 0, 15, False, 0.9990), _row(4, 1, 0, False, None)]
    text = un_scaling.table(rows, 0.05, 0.99)
    assert "| 1 | 0 | 12 | 1 | 2 | 0.0164 | no | 1 |" in text
    assert "| 4 | 1 | 19 | 16 | 0 | – | no | 1 |" in text
    assert "| 1 | 1 | 2, 1 | 1/2 |" in text
    assert "| 4 | 16 | 15, 0 | 0/2 |" in text
