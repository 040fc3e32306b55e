"""The posterior refitted at learned conserved quantities (two-stage empirical Bayes)."""

import jax
import numpy as np
import pytest

from noether_ppl import systems
from noether_ppl.inference import DivergenceError, RunawayError, fit, refit_posterior
from noether_ppl.inference import restarts as restarts_module
from noether_ppl.inference.restarts import final_neg_elbo, fit_restarts
from noether_ppl.models import ModelSpec, NoetherRazor
from noether_ppl.models.razor import CONSERVED_PARAMS

FIT = dict(num_steps=30, lr=3e-3, lr_conserved=1e-2, progress_bar=False)
THETA = {k: v for k, v in FIT.items() if k != "lr_conserved"}  # refit_posterior's arguments


@pytest.fixture(scope="module")
def first(tiny_razor, tiny_sho):
    return fit(tiny_razor, tiny_sho, key=jax.random.key(3), **FIT)


def _theta(params):
    return {k: np.asarray(v) for k, v in params.items() if k not in CONSERVED_PARAMS}


def test_lr_conserved_zero_holds_eta_at_its_initial_value(tiny_razor, tiny_sho):
    eta = {"conserved_W": np.array([[[0.3, -0.2], [0.1, 0.4]]], np.float32),
           "conserved_b": np.array([[0.05, -0.1]], np.float32)}
    result = fit(tiny_razor, tiny_sho, key=jax.random.key(1), init_params=eta,
                 **{**FIT, "lr_conserved": 0.0})
    for name, value in eta.items():
        np.testing.assert_array_equal(np.asarray(result.params[name]), value)
    moved = fit(tiny_razor, tiny_sho, key=jax.random.key(1), init_params=eta, **FIT)
    assert not np.array_equal(np.asarray(moved.params["conserved_W"]), eta["conserved_W"])
    # θ starts where it would have: the first loss is the same with η held or moving.
    assert result.losses[0] == moved.losses[0]


def test_refit_keeps_eta_bit_for_bit_and_fits_theta_again(tiny_razor, tiny_sho, first):
    again = refit_posterior(first, tiny_sho, key=jax.random.key(4), **THETA)
    for name in CONSERVED_PARAMS:
        np.testing.assert_array_equal(np.asarray(again.params[name]),
                                      np.asarray(first.params[name]))
    np.testing.assert_array_equal(np.asarray(again.generators()), np.asarray(first.generators()))
    assert again.model is first.model and again.model.learns_conserved
    # It is exactly fit() from that key with η given and held.
    eta = {name: np.asarray(first.params[name]) for name in CONSERVED_PARAMS}
    direct = fit(tiny_razor, tiny_sho, key=jax.random.key(4), init_params=eta,
                 **{**FIT, "lr_conserved": 0.0})
    np.testing.assert_array_equal(again.losses, direct.losses)
    theta_a, theta_f = _theta(again.params), _theta(first.params)
    assert theta_a.keys() == theta_f.keys()
    assert any(not np.array_equal(theta_a[k], theta_f[k]) for k in theta_a)


def test_fit_restarts_keeps_the_higher_elbo_of_fit_and_refit(tiny_razor, tiny_sho, first):
    key = jax.random.key(3)
    for refit_kwargs, steps in ((None, 30), ({"num_steps": 5}, 5)):
        best = fit_restarts(tiny_razor, tiny_sho, key=key, refit=True, refit_kwargs=refit_kwargs,
                            **FIT)
        record = best.info["refit"]
        assert record["fit_neg_elbo_per_n"] == pytest.approx(final_neg_elbo(first), rel=1e-6)
        again = refit_posterior(first, tiny_sho, key=key, **{**THETA, **(refit_kwargs or {})})
        assert record["refit_neg_elbo_per_n"] == pytest.approx(final_neg_elbo(again), rel=1e-6)
        assert record["steps"] == steps and not record["diverged"]
        kept = again if record["kept"] == "refit" else first
        assert record["kept"] == ("refit" if final_neg_elbo(again) < final_neg_elbo(first)
                                  else "fit")
        np.testing.assert_array_equal(best.losses, kept.losses)
        assert best.info["restart"] == 0 and len(best.info["restarts"]) == 1
    # a 5-step refit ends far worse than the 30-step fit: the fit is kept
    assert record["kept"] == "fit"


@pytest.mark.slow  # three refits; the demo's test keeps the best of its two refits by default
def test_several_refits_keep_the_highest_elbo_of_all(tiny_razor, tiny_sho, first):
    """A list of refit settings: one refit each from the same key, the best of fit and refits
    kept, every candidate recorded."""
    key = jax.random.key(3)
    candidates = [{"num_steps": 5}, {"num_steps": 30, "lr_offdiag": 3e-4}, {"num_steps": 30}]
    best = fit_restarts(tiny_razor, tiny_sho, key=key, refit=True, refit_kwargs=candidates,
                        **FIT)
    record = best.info["refit"]
    scores = [final_neg_elbo(refit_posterior(first, tiny_sho, key=key, **{**THETA, **c}))
              for c in candidates]
    assert [c["neg_elbo_per_n"] for c in record["candidates"]] == pytest.approx(scores,
                                                                               rel=1e-6)
    assert [c["settings"] for c in record["candidates"]] == candidates
    assert record["candidate"] == int(np.argmin(scores))
    assert record["refit_neg_elbo_per_n"] == pytest.approx(min(scores), rel=1e-6)
    assert record["kept"] == ("refit" if min(scores) < final_neg_elbo(first) else "fit")
    assert record["steps"] == candidates[record["candidate"]]["num_steps"]
    assert record["wall_time_s"] == pytest.approx(
        sum(c["wall_time_s"] for c in record["candidates"]))
    # one candidate in a list is the same as the dict alone
    one = fit_restarts(tiny_razor, tiny_sho, key=key, refit=True,
                       refit_kwargs=[{"num_steps": 5}], **FIT)
    alone = fit_restarts(tiny_razor, tiny_sho, key=key, refit=True,
                         refit_kwargs={"num_steps": 5}, **FIT)
    def same(record):
        return {k: v for k, v in record.items() if k != "wall_time_s"}

    assert same(one.info["refit"]) == same(alone.info["refit"])
    assert "candidates" not in one.info["refit"]


def test_a_diverged_refit_keeps_the_fit(tiny_razor, tiny_sho, first, monkeypatch):
    def diverges(result, data, *, key, **kwargs):
        raise DivergenceError(4, fit(result.model, data, key=key, **{**THETA, "num_steps": 4}))

    monkeypatch.setattr(restarts_module, "refit_posterior", diverges)
    best = fit_restarts(tiny_razor, tiny_sho, key=jax.random.key(3), refit=True, **FIT)
    assert best.info["refit"]["diverged"] and best.info["refit"]["kept"] == "fit"
    assert best.info["refit"]["steps"] == 4
    np.testing.assert_array_equal(best.losses, first.losses)


def test_a_refit_that_ran_away_competes_with_the_state_it_kept(tiny_razor, tiny_sho, first,
                                                               monkeypatch):
    kept = {}

    def runs_away(result, data, *, key, **kwargs):
        kept["result"] = fit(result.model, data, key=key, **{**THETA, "num_steps": 20})
        raise RunawayError(25, kept["result"], median=1e6, best=1.0, limit=10.0)

    monkeypatch.setattr(restarts_module, "refit_posterior", runs_away)
    best = fit_restarts(tiny_razor, tiny_sho, key=jax.random.key(3), refit=True, **FIT)
    record = best.info["refit"]
    assert not record["diverged"] and record["ran_away_at"] == 25 and record["steps"] == 20
    assert record["refit_neg_elbo_per_n"] == pytest.approx(final_neg_elbo(kept["result"]))
    # the higher ELBO of the fit and the kept state wins, as for a refit that ran to the end
    assert (best is kept["result"]) == (record["kept"] == "refit")


def test_bad_refit_arguments(tiny_razor, tiny_sho, first):
    vanilla = NoetherRazor(ModelSpec(hidden=(8,), n_conserved=0, substeps=2), phase_dim=2)
    oracle = NoetherRazor(ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, substeps=2),
                          phase_dim=2, generators=systems.HarmonicOscillator().generators())
    for m in (vanilla, oracle):
        with pytest.raises(ValueError, match="refit"):
            fit_restarts(m, tiny_sho, key=jax.random.key(0), refit=True, **FIT)
    with pytest.raises(ValueError, match="refit_kwargs"):
        fit_restarts(tiny_razor, tiny_sho, key=jax.random.key(0), refit_kwargs={"lr": 1e-3}, **FIT)
    with pytest.raises(ValueError, match="refit"):
        fit_restarts(tiny_razor, tiny_sho, key=jax.random.key(0), refit=1, **FIT)
    for bad in ([], [{"num_steps": 3}, "lr"]):  # refused before any fit
        with pytest.raises(ValueError, match="list of dicts"):
            fit_restarts(tiny_razor, "not data", key=jax.random.key(0), refit=True,
                         refit_kwargs=bad, **FIT)
    with pytest.raises(ValueError, match="lr_conserved"):
        fit_restarts(tiny_razor, "not data", key=jax.random.key(0), refit=True,
                     refit_kwargs=[{"num_steps": 3}, {"lr_conserved": 1e-3}], **FIT)
    with pytest.raises(ValueError, match="lr_conserved"):  # refused before any fit
        fit_restarts(tiny_razor, "not data", key=jax.random.key(0), refit=True,
                     refit_kwargs={"lr_conserved": 1e-3}, **FIT)
    with pytest.raises(ValueError, match="lr_conserved"):
        refit_posterior(first, tiny_sho, key=jax.random.key(0), **FIT)
    with pytest.raises(ValueError, match="init_params"):
        refit_posterior(first, tiny_sho, key=jax.random.key(0), init_params={}, num_steps=3)
    with pytest.raises(ValueError, match="FitResult"):
        refit_posterior("run", tiny_sho, key=jax.random.key(0), num_steps=3)
    plain = fit(vanilla, tiny_sho, key=jax.random.key(0), **FIT)
    with pytest.raises(ValueError, match="vanilla"):
        refit_posterior(plain, tiny_sho, key=jax.random.key(0), num_steps=3)
    with pytest.raises(ValueError, match="lr_conserved"):
        fit(tiny_razor, tiny_sho, key=jax.random.key(0), **{**FIT, "lr_conserved": -1.0})
