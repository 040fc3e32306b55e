import jax
import numpy as np
import pytest

from noether_ppl.inference import DivergenceError, RunawayError, fit
from noether_ppl.inference import restarts as restarts_module
from noether_ppl.inference.restarts import final_neg_elbo, fit_restarts, runaway_line
from noether_ppl.models import ModelSpec, NoetherRazor

FIT = dict(num_steps=30, lr=3e-3, lr_conserved=1e-2, progress_bar=False)


def _same_params(a, b):
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                                        for k in a)


def test_one_restart_is_exactly_fit(tiny_razor, tiny_sho):
    key = jax.random.key(5)
    single = fit(tiny_razor, tiny_sho, key=key, **FIT)
    best = fit_restarts(tiny_razor, tiny_sho, key=key, restarts=1, **FIT)
    assert _same_params(single.params, best.params)
    assert best.info["restart"] == 0 and len(best.info["restarts"]) == 1


def test_keeps_the_restart_with_the_lowest_final_loss(tiny_razor, tiny_sho):
    key = jax.random.key(6)
    best = fit_restarts(tiny_razor, tiny_sho, key=key, restarts=3, **FIT)
    records = best.info["restarts"]
    assert [r["restart"] for r in records] == [0, 1, 2]
    scores = [r["neg_elbo_per_n"] for r in records]
    assert best.info["restart"] == int(np.argmin(scores))
    # Each restart is the plain fit from its own key: recompute every one independently.
    for r, score in enumerate(scores):
        k = key if r == 0 else jax.random.fold_in(key, r)
        again = fit(tiny_razor, tiny_sho, key=k, **FIT)
        assert final_neg_elbo(again) == pytest.approx(score, rel=1e-6)
        if r == best.info["restart"]:
            assert _same_params(again.params, best.params)
    assert len(set(scores)) == 3  # independent initialisations, different optima


def test_final_neg_elbo_is_the_mean_of_the_last_steps(tiny_razor, tiny_sho):
    result = fit(tiny_razor, tiny_sho, key=jax.random.key(7), **FIT)
    losses = np.asarray(result.losses, dtype=np.float64)
    assert final_neg_elbo(result, 0.1) == pytest.approx(losses[-3:].mean())
    assert final_neg_elbo(result, 1e-6) == pytest.approx(losses[-1])
    assert final_neg_elbo(result, 1.0) == pytest.approx(losses.mean())


def _first_fit_raises(monkeypatch, error):
    """``fit_restarts``' first fit runs, then raises ``error(result)`` as if it had stopped."""
    real_fit = restarts_module.fit
    calls = 0

    def first_raises(*args, **kwargs):
        nonlocal calls
        calls += 1
        result = real_fit(*args, **kwargs)
        if calls == 1:
            raise error(result)
        return result

    monkeypatch.setattr(restarts_module, "fit", first_raises)
    return real_fit


def test_a_diverged_restart_is_recorded_and_skipped(tiny_razor, tiny_sho, monkeypatch):
    _first_fit_raises(monkeypatch, lambda result: DivergenceError(7, result))
    best = fit_restarts(tiny_razor, tiny_sho, key=jax.random.key(8), restarts=2, **FIT)
    first, second = best.info["restarts"]
    assert first["diverged"] and first["neg_elbo_per_n"] is None and first["steps"] == 7
    assert not second["diverged"] and best.info["restart"] == 1


def test_a_runaway_restart_competes_with_the_state_it_kept(tiny_razor, tiny_sho, monkeypatch):
    # as if stopped at step 25, keeping this state
    real_fit = _first_fit_raises(
        monkeypatch, lambda result: RunawayError(25, result, median=1e6, best=1.0, limit=10.0))
    key = jax.random.key(8)
    best = fit_restarts(tiny_razor, tiny_sho, key=key, restarts=2, **FIT)
    first, second = best.info["restarts"]
    assert not first["diverged"] and first["ran_away_at"] == 25
    assert "ran_away_at" not in second
    assert first["neg_elbo_per_n"] == pytest.approx(
        final_neg_elbo(real_fit(tiny_razor, tiny_sho, key=key, **FIT)), rel=1e-6)
    assert best.info["restart"] == int(np.argmin([first["neg_elbo_per_n"],
                                                  second["neg_elbo_per_n"]]))
    first_kept = {**best.info, "restart": 0}
    assert runaway_line("m", first_kept) == (
        f"m: the loss ran away; the fit was stopped at step 25 and keeps its state after step "
        f"{FIT['num_steps']}, the end of its best chunk (see `runaway_factor`).")
    assert runaway_line("m", {**best.info, "restart": 1}) is None


def test_all_restarts_diverging_raises(tiny_sho):
    vanilla = NoetherRazor(ModelSpec(hidden=(8,), n_conserved=0, substeps=2), phase_dim=2)
    with pytest.raises(DivergenceError):
        fit_restarts(vanilla, tiny_sho, key=jax.random.key(0), restarts=2, num_steps=200,
                     lr=1e6, schedule="constant", progress_bar=False, chunk_size=50)


@pytest.mark.parametrize("kwargs, match", [
    ({"restarts": 0}, "restarts"),
    ({"restarts": 1.5}, "restarts"),
    ({"restarts": True}, "restarts"),
    ({"score_fraction": 0.0}, "score_fraction"),
    ({"score_fraction": 2.0}, "score_fraction"),
])
def test_bad_arguments_are_refused_before_fitting(tiny_razor, tiny_sho, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_restarts(tiny_razor, tiny_sho, key=jax.random.key(0), **{"restarts": 2, **kwargs},
                     **FIT)
