"""``benchmarks/spectrum_samples.py``: what the selection's spectrum rule reads from a fit, at
several numbers of symmetry samples, and its table's counts."""

import argparse
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import spectrum_samples  # noqa: E402

from noether_ppl import inference, systems  # noqa: E402
from noether_ppl.inference.conservation import (  # noqa: E402
    conservation_residuals,
    conservation_spectrum,
    spectrum_cuts,
)
from noether_ppl.inference.select import DEFAULT_MAX_RESIDUAL  # noqa: E402
from noether_ppl.models import ModelSpec, NoetherRazor  # noqa: E402


def test_read_spectrum_is_the_selections_rule_on_the_fit_at_that_many_samples(tiny_sho):
    truth = np.asarray(systems.HarmonicOscillator().generators())  # SO(2), (1, 3, 3)
    spec = ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, measure="ball")
    model = NoetherRazor(spec, phase_dim=2, generators=truth)
    result = inference.fit(model, tiny_sho, key=jax.random.key(0), num_steps=5, lr=1e-2,
                           progress_bar=False)
    x = np.asarray(tiny_sho.states, np.float64).reshape(-1, 2)
    key = jax.random.key(3)
    got = spectrum_samples.read_spectrum(result, truth, x, 32, key, names=["L"])
    # by hand: the same fit with 32 group elements from the same key
    wide = spectrum_samples.with_sym_samples(result, 32)
    assert wide.model.spec.sym_samples == 32 and result.model.spec.sym_samples == 4
    spectrum, S = conservation_spectrum(wide, x, key=key)
    (D, ratio), = spectrum_cuts(spectrum, DEFAULT_MAX_RESIDUAL)
    assert (got["read"], got["gap_ratio"]) == (D, pytest.approx(ratio, rel=1e-12))
    assert got["at_true"] == pytest.approx(spectrum[0]) and got["past_true"] == pytest.approx(
        spectrum[1])
    assert got["true_max_residual"] == pytest.approx(
        float(conservation_residuals(wide, truth, x, key=key)[0]), rel=1e-12)
    assert got["true_residuals"] == {"L": got["true_max_residual"]}
    assert 0.0 <= got["leading_min_par"] <= 1.0 + 1e-12
    # a different number of samples is a different Monte-Carlo Ĥ
    other = spectrum_samples.read_spectrum(result, truth, x, 4, key)
    assert other["true_max_residual"] != got["true_max_residual"]


def test_table_counts_the_keys_that_read_the_true_dimension():
    args = argparse.Namespace(system="two-body-2d", trajectories=50, points=10, dt=0.1,
                              hidden=[64, 64], substeps=4, integrator="rk4", sym_samples=16,
                              steps=16000, lr=3e-3, batch_size=10,
                              spectrum_sym_samples=[16, 256])

    def read(S, d):
        return {"sym_samples": S, "read": d, "gap_ratio": 2.0, "at_true": 0.01,
                "past_true": 0.02, "true_max_residual": 0.03, "leading_min_par": 0.99}

    rows = [{"key": k, "test_mse": 1e-3, "fit_s": 1.0, "reads": [read(16, a), read(256, b)]}
            for k, (a, b) in enumerate([(6, 7), (7, 7), (5, 8)])]
    text = spectrum_samples.table(rows, args)
    assert "| 16 | 1/3 | 6 [5, 7] |" in text and "| 256 | 2/3 | 7 [7, 8] |" in text
    assert text.count("\n| 0 |") == 2  # one line per key and S'
