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


@pytest.mark.slow
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
    wide = result.with_sym_samples(32)
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
    assert "the spectrum's 7th and 8th residuals" in text and "Refits" not in text
    # with refits: the keys whose 7th direction the evidence supports (beyond 2 se)
    args.refit_steps, args.num_repeats = 4000, 32
    for r, (d, se) in zip(rows, [(50.0, 20.0), (30.0, 20.0), (-90.0, 20.0)], strict=True):
        r["refits"] = {"sym_samples": 256, "stopped": [], "leading_min_par": 0.99,
                       "without": {"neg_elbo_per_n": -1.0},
                       "leading": {"delta": d, "se": se, "neg_elbo_per_n": -1.1},
                       "true": {"delta": d + 100.0, "se": se, "neg_elbo_per_n": -1.2}}
    text = spectrum_samples.table(rows, args)
    assert "| 0 | 0.990 | -1.0000 | -1.1000 | +50 ± 20 | -1.2000 | +150 ± 20 | – |" in text
    assert "leading 7 on 1/3 keys, true generators on 2/3." in text


@pytest.mark.slow  # four fits of three models (≈ 25 s): a diagnostic's option
def test_refit_cuts_refits_at_the_leading_directions_and_the_truth_and_compares_their_elbo(
        monkeypatch):
    system = systems.SUITE["anisotropic-1-2"]()  # two conserved quantities: L = 2, M = 4
    truth = np.asarray(system.generators())
    train = system.simulate(jax.random.key(0), n_trajectories=3, n_steps=3, dt=0.2)
    spec = ModelSpec(hidden=(8,), n_conserved=2, sym_samples=4, measure="ball")
    result = inference.fit(NoetherRazor(spec, phase_dim=4, generators=truth), train,
                           key=jax.random.key(0), num_steps=3, lr=1e-2, progress_bar=False)
    fits = []

    def recording_fit(model, data, **kw):
        fits.append((model, kw, inference.fit(model, data, **kw)))
        return fits[-1][2]

    monkeypatch.setattr(spectrum_samples, "fit", recording_fit)
    args = argparse.Namespace(refit_steps=2, lr=1e-2, batch_size=3, num_repeats=3)
    key = jax.random.key(5)
    got = spectrum_samples.refit_cuts(result, truth, train, 16, key, args)
    assert len(fits) == 3
    assert all(kw["num_steps"] == 2 and kw["init_params"] is result.params
               for _, kw, _ in fits)
    # the first two hold the spectrum's leading 1 and 2 directions read with S' = 16, each of
    # the true generators' median size; the third holds the true generators
    x = np.asarray(train.states, np.float64).reshape(-1, 4)
    _, S = conservation_spectrum(result.with_sym_samples(16), x, key=key)
    size = float(np.median(np.linalg.svd(truth.reshape(2, -1), compute_uv=False)))
    for (model, _, _), D in zip(fits[:2], (1, 2), strict=True):
        G = np.asarray(model.fixed_generators)
        assert G.shape == (D, 5, 5) and model.spec.sym_samples == 4
        np.testing.assert_allclose(np.linalg.norm(G.reshape(D, -1), axis=1), size, rtol=1e-10)
        lead = S[:D].reshape(D, -1) / np.linalg.norm(S[:D].reshape(D, -1), axis=1)[:, None]
        flat = G.reshape(D, -1) / size  # an orthonormal basis of the same span
        np.testing.assert_allclose(lead @ flat.T @ flat, lead, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(fits[2][0].fixed_generators), truth)
    # the differences are the paired ELBO differences against the 1-direction refit
    k_cmp = jax.random.split(jax.random.fold_in(key, 1))[1]
    for name, other in (("leading", fits[1][2]), ("true", fits[2][2])):
        d, se, _, _ = inference.elbo_difference(other, fits[0][2], train, key=k_cmp,
                                                num_repeats=3)
        assert got[name]["delta"] == pytest.approx(d, rel=1e-9)
        assert got[name]["se"] == pytest.approx(se, rel=1e-9)
    assert got["stopped"] == [] and got["sym_samples"] == 16
