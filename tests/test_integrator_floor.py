"""``benchmarks/integrator_floor.py``: the true H's NLL/N through each likelihood mean, against
the likelihood's floor and predicting no motion."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import integrator_floor as fl  # noqa: E402


def test_a_mean_is_an_integrator_and_its_steps():
    assert fl.mean("rk4x16") == ("rk4", 16) and fl.mean("eulerx20") == ("euler", 20)
    for bad in ("rk4", "rk4x0", "rk9x2", "rk4x-1", "x4"):
        with pytest.raises(argparse.ArgumentTypeError):
            fl.mean(bad)


@pytest.mark.slow
def test_the_oscillator_reaches_the_floor_and_finer_means_do_no_worse():
    """The oscillator's flow is linear: RK4 over Δt = 0.05 is exact to ~1e-9 per step, so the
    true H predicts the pairs to the floor (M/2) log 2πσ², while predicting no motion is far
    above it; more steps of the same method never do worse."""
    means = [("rk2", 1), ("rk4", 1), ("rk4", 4)]
    (row,) = fl.rows_of("sho", [0.05], means, [0, 1], 1e-3)
    floor = 0.5 * 2 * np.log(2 * np.pi * 1e-3)
    assert row["floor"] == pytest.approx(floor) and row["dt"] == 0.05
    np.testing.assert_allclose(row["rk4x4"], floor, atol=1e-6)
    assert min(row["no_motion"]) > floor + 1.0
    assert all(a >= b - 1e-9 for a, b in zip(row["rk4x1"], row["rk4x4"], strict=True))
    text = fl.table([row], means, [0, 1], 1e-3)
    assert "| sho | 0.05 |" in text and "rk4x4" in text.splitlines()[2]


def test_bad_arguments_are_refused_by_name(capsys):
    for argv, word in ((["--systems", "nope"], "--systems"),
                       (["--systems", "sho", "--dts", "0"], "--dts"),
                       (["--systems", "sho", "--means", "rk4x0"], "--means")):
        with pytest.raises(SystemExit):
            fl.main(argv)
        assert word in capsys.readouterr().err
