"""``benchmarks/demo_sensitivity.py``'s summary over fit keys: medians, ranges and the demo's
quality bars, paired by key."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import demo_sensitivity  # noqa: E402


def _rec(variant, key, elbo, mse, par=None):
    r = {"variant": variant, "key": key, "neg_elbo_per_n": elbo, "test_mse": mse}
    if par is not None:
        r["parallelness"] = par
    return r


def test_summary_pairs_keys_and_counts_bars():
    records = [
        _rec("vanilla", 0, 60.0, 1e-2), _rec("vanilla", 1, 50.0, 2e-2),
        _rec("vanilla", 2, 10.0, 3e-2),
        _rec("learned", 0, 20.0, 3e-3, 0.995), _rec("learned", 1, 14.0, 1e-3, 0.98),
        _rec("learned", 2, 12.0, 2e-3, 0.999),
        _rec("oracle", 0, 13.0, 2e-3), _rec("oracle", 1, 12.0, 1e-3),
    ]
    lines, stats = demo_sensitivity.summary(records)
    assert stats["vanilla"]["keys"] == [0, 1, 2]
    assert "| learned | 3 | 14.00 (12.00–20.00) | 2.000e-03 (1.000e-03–3.000e-03) |" in lines
    par = stats["learned: parallelness with SO(2) > 0.99"]
    assert (par["met"], par["of"]) == (2, 3)
    # the ratio only over keys with both fits: 1.5 (key 0) and 1.0 (key 1)
    ratio = stats["learned: test MSE / oracle's ≤ 1.2 (keys where the oracle's −ELBO/N is "
                  "below the HNN's: 0, 1)"]
    assert ratio["values"] == pytest.approx([1.5, 1.0])
    assert (ratio["met"], ratio["of"]) == (1, 2)
    below = stats["learned: −ELBO/N − HNN's < 0"]
    assert below["values"] == pytest.approx([-40.0, -36.0, 2.0])
    assert (below["met"], below["of"]) == (2, 3)
    assert stats["oracle: −ELBO/N − HNN's < 0"]["of"] == 2


def test_summary_of_one_variant_has_no_paired_bars():
    lines, stats = demo_sensitivity.summary([_rec("oracle", 3, 13.0, 2e-3)])
    assert list(stats) == ["oracle"]
    assert not any(line.startswith("| bar") for line in lines)


def test_ratio_bar_leaves_out_keys_where_the_oracle_ran_away():
    records = [
        _rec("vanilla", 0, 40.0, 1e-2), _rec("vanilla", 1, 40.0, 1e-2),
        _rec("learned", 0, 13.0, 3e-3, 0.995), _rec("learned", 1, 13.0, 3e-3, 0.995),
        _rec("oracle", 0, 12.0, 2e-3), _rec("oracle", 1, 1e5, 3.0),  # key 1 ran away
    ]
    lines, stats = demo_sensitivity.summary(records)
    name = "learned: test MSE / oracle's ≤ 1.2 (keys where the oracle's −ELBO/N is below the " \
           "HNN's: 0)"
    assert stats[name]["values"] == pytest.approx([1.5])
    assert (stats[name]["met"], stats[name]["of"]) == (0, 1)
