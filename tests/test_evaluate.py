"""evaluate (Sec. 5, Tables 1–3): one-step MSE against a direct computation, ELBO terms,
posterior-sample metrics, rollouts against accurate ground truth, and the table layouts.

The small fits here are shared with test_arviz.py and test_plots.py (``fitted``/``setup`` are
cached for the whole session).
"""

import functools
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import Trajectories, systems
from noether_ppl.analysis.evaluate import Evaluation, evaluate
from noether_ppl.analysis.predictive import one_step_mse
from noether_ppl.analysis.rollouts import rollout_metrics
from noether_ppl.analysis.tables import format_table
from noether_ppl.inference import fit
from noether_ppl.models import ModelSpec, NoetherRazor
from noether_ppl.nn import mlp
from noether_ppl.symmetrize import symmetrize

SPEC = ModelSpec(hidden=(16,), elu_alpha=2.0, sym_samples=8, integrator="euler", substeps=5,
                 sampling="grid")
"""Tiny CPU settings, with the paper's Euler sub-steps (written out in ``direct_one_step``).
``sampling="grid"``: the oracle's S group elements are a fixed quadrature
of SO(2), so its predictions do not depend on the key (vanilla has none)."""


@functools.cache
def setup():
    """The oscillator of App. C.1 (7 × 4 pairs, Δt = 0.2) and three small test sets of the
    same shape (test, moved, wider; Table 3's splits): one compiled simulation for all."""
    sho = systems.HarmonicOscillator()
    keys = jax.random.split(jax.random.key(0), 4)
    size = {"n_trajectories": 7, "n_steps": 4, "dt": 0.2}
    train = sho.simulate(keys[0], **size)
    tests = {split: sho.simulate_split(k, split, **size)
             for split, k in zip(("test", "moved", "wider"), keys[1:], strict=True)}
    return types.SimpleNamespace(system=sho, train=train, tests=tests)


@functools.cache
def fitted(variant: str):
    """300 full-batch steps of the plain HNN ("vanilla") or the SO(2) oracle."""
    s = setup()
    if variant == "vanilla":
        model = NoetherRazor(SPEC.replace(n_conserved=0), phase_dim=2)
    else:
        model = NoetherRazor(SPEC, phase_dim=2, generators=s.system.generators())
    return fit(model, s.train, key=jax.random.key(2), num_steps=300, lr=3e-3,
               progress_bar=False)


@functools.cache
def oracle_evaluation() -> Evaluation:
    s = setup()
    return evaluate(fitted("oracle"), s.train, s.tests, key=jax.random.key(5), system=s.system,
                    num_samples=16, rollout_steps=4)


def direct_one_step(result, x_t, Phis, dt):
    """Likelihood mean written out: n explicit Euler sub-steps of J∇Ĥ with
    Ĥ(x) = (1/S) Σ_s F(Φ_s x) (Eq. 14) differentiated by jax.grad, one point at a time."""
    model = result.model
    assert model.spec.integrator == "euler"
    weights = result.weights_mean()

    def H(x):
        F = lambda y: mlp(weights, y, model.activation)
        return F(x) if Phis is None else symmetrize(F, Phis)(x)

    def step(x):
        h = dt / model.spec.substeps
        for _ in range(model.spec.substeps):
            g = jax.grad(H)(x)
            x = x + h * jnp.concatenate([g[1:], -g[:1]])   # J∇H for M = 2
        return x

    return np.asarray(jax.jit(jax.vmap(step))(jnp.asarray(x_t, model.dtype)), np.float64)


def direct_mses(result, sets, key):
    """Direct one-step MSE of each data set (all of the same Δt) in one compiled program."""
    pairs = [d.pairs() for d in sets]
    dts = {d.dt for d in sets}
    assert len(dts) == 1
    pred = direct_one_step(result, np.concatenate([p[0] for p in pairs]),
                           result.group_elements(key), dts.pop())
    out, start = [], 0
    for _, x_next in pairs:
        out.append(float(np.mean((pred[start:start + len(x_next)] - x_next) ** 2)))
        start += len(x_next)
    return out


# ----------------------------------------------------------------------------- one step
def test_one_step_mse_equals_a_direct_computation():
    s = setup()
    oracle = fitted("oracle")
    k = jax.random.key(11)
    names = list(s.tests)
    train_mse, *test_mses = direct_mses(oracle, [s.train, *s.tests.values()], k)
    expected = test_mses[0]
    assert one_step_mse(oracle, s.tests["test"], key=k) == pytest.approx(expected, rel=1e-4)
    # Several chunks, the last one padded: the same number.
    assert one_step_mse(oracle, s.tests["test"], key=k, chunk=5) == pytest.approx(expected,
                                                                                 rel=1e-6)
    # evaluate's table columns: the oracle's grid quadrature makes them key-independent.
    ev = oracle_evaluation()
    assert ev.train_mse == pytest.approx(train_mse, rel=1e-4)
    for name, mse in zip(names, test_mses, strict=True):
        assert ev.test_mse[name] == pytest.approx(mse, rel=1e-4)
    # Different sets give different numbers (the test would notice a mix-up).
    assert len({round(v, 12) for v in ev.test_mse.values()}) == 3


def test_elbo_terms_add_up_and_the_kl_is_the_analytic_one():
    s = setup()
    oracle = fitted("oracle")
    ev = oracle_evaluation()
    x_t, x_next = (jnp.asarray(a, oracle.model.dtype) for a in s.train.pairs())
    N = x_t.shape[0]
    comps = oracle.elbo.loss_components(jax.random.key(0), oracle.params, oracle.model,
                                        oracle.guide, x_t, x_next, dt=s.train.dt, num_data=N)
    assert ev.kl_per_n == pytest.approx(float(comps["kl"]) / N, rel=1e-5)
    assert ev.neg_elbo_per_n == pytest.approx(ev.nll_per_n + ev.kl_per_n, rel=1e-12)
    # The training objective ended near the evaluated −ELBO/N (same data, full batch).
    assert abs(np.mean(oracle.losses[-50:]) - ev.neg_elbo_per_n) < 0.1 * abs(ev.neg_elbo_per_n)


def test_posterior_sample_metrics():
    ev = oracle_evaluation()
    assert set(ev.predictive) == {"train", "test", "moved", "wider"}
    for name, p in ev.predictive.items():
        assert p.num_samples == 16 and p.predictive_std > 0 and np.isfinite(p.lpd_per_n)
        # E_s[(f_s − y)²] = (f̄ − y)² + Var_s f, averaged over pairs and coordinates.
        assert p.sample_mse == pytest.approx(p.predictive_mean_mse + p.predictive_std**2,
                                             rel=1e-9)
        assert p.mse == ev.test_mse.get(name, ev.train_mse)
    # In distribution the model is better than on the positions ×3 ("wider") set.
    assert ev.predictive["test"].lpd_per_n > ev.predictive["wider"].lpd_per_n


def test_rollouts_against_accurate_ground_truth():
    s = setup()
    oracle = fitted("oracle")
    ev = oracle_evaluation()
    assert set(ev.rollouts) == {"test", "moved", "wider"}
    for name, r in ev.rollouts.items():
        data = s.tests[name]
        assert r.reference == "system" and r.n_trajectories == 7 and r.n_steps == 4
        np.testing.assert_allclose(r.true_states, data.states, atol=1e-12)
        np.testing.assert_allclose(r.times, data.times)
        # The model starts from x_0 in its float32: zero up to that rounding.
        assert r.mse[0] < 1e-13 and r.energy_drift[0] < 1e-6
        assert r.mse[-1] > r.mse[1]                                # errors grow
        # The oscillator's only ground-truth conserved quantity is H itself; the oracle's
        # conserved quantity is the same H: three names for one drift.
        assert r.true_conserved_names == ["H"] and r.conserved_names == ["C_0"]
        np.testing.assert_allclose(r.true_conserved_drift[:, 0], r.energy_drift, rtol=1e-9)
        np.testing.assert_allclose(r.conserved_drift[:, 0], r.energy_drift, rtol=1e-6,
                                   atol=1e-6)
        # The true flow conserves H (float64 integration at rtol 1e-12).
        assert np.max(r.conserved_drift_truth) < 1e-8
    # The first rollout step is the likelihood mean of Sec. 4.1.
    k = jax.random.key(3)
    r = rollout_metrics(oracle, s.tests["test"], key=k)
    assert r.reference == "data" and r.energy_drift is None and r.true_conserved_drift is None
    x0 = s.tests["test"].states[:, 0]
    first = oracle.predict(x0, key=k)
    np.testing.assert_allclose(r.model_states[:, 1], np.asarray(first, np.float64), atol=1e-6)
    np.testing.assert_allclose(r.mse, ev.rollouts["test"].mse, rtol=1e-5)  # grid: same field


def test_vanilla_one_step_mse_equals_a_direct_computation():
    s = setup()
    vanilla = fitted("vanilla")
    assert vanilla.group_elements(jax.random.key(0)) is None
    sets = (s.train, s.tests["moved"])
    for data, mse in zip(sets, direct_mses(vanilla, sets, jax.random.key(1)), strict=True):
        assert one_step_mse(vanilla, data, key=jax.random.key(1)) == pytest.approx(mse, rel=1e-4)


def test_evaluation_to_dict_and_the_paper_table():
    ev = oracle_evaluation()
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["variant"] == "oracle" and set(d["test_mse"]) == {"test", "moved", "wider"}
    assert len(d["rollouts"]["moved"]["mse"]) == 5
    assert d["rollouts"]["test"]["true_conserved_drift"]["H"][0] < 1e-6   # float32 x_0
    table = format_table({"oracle": d}, "3 sets", layout="table3")
    lines = table.splitlines()
    assert lines[0] == "3 sets"
    assert lines[1].split() == ["model", "train", "MSE", "NLL/N", "KL/N", "-ELBO/N", "test",
                                "MSE", "moved", "MSE", "wider", "MSE"]
    assert lines[3].split()[0] == "oracle"
    assert lines[3].split()[-1] == f"{ev.test_mse['wider']:.3e}"
    assert lines[3].split()[4] == f"{ev.neg_elbo_per_n:.2f}"
    assert "Evaluation of the oracle model" in str(ev)


# ----------------------------------------------------------------------------- tables
ROWS = {
    "vanilla": {"train_mse": 0.005, "nll_per_n": 0.3667, "kl_per_n": 3314.374,
                "neg_elbo_per_n": 3314.741, "test_mse": {"test": 0.005}},
    "learned": {"train_mse": 0.002, "nll_per_n": -2.618, "kl_per_n": 3304.754,
                "neg_elbo_per_n": 3302.136, "test_mse": 0.002,
                "test_mse_sets": {"test": 0.002, "moved": 4e-4}},
}


def test_table_layouts():
    t1 = format_table(ROWS, layout="table1").splitlines()
    assert t1[0].split() == ["model", "train", "MSE", "NLL/N", "KL/N", "-ELBO/N", "test", "MSE"]
    assert t1[2].split() == ["vanilla", "5.000e-03", "0.37", "3314.374", "3314.74",
                             "5.000e-03"]
    t3 = format_table(ROWS, layout="table3").splitlines()
    assert t3[2].split()[-2:] == ["—", "—"]                      # vanilla has no moved/wider
    assert t3[3].split()[-3:] == ["2.000e-03", "4.000e-04", "—"]
    auto = format_table(ROWS).splitlines()                       # test + every set found
    assert auto[0].split()[-4:] == ["test", "MSE", "moved", "MSE"]
    md = format_table(ROWS, "Table 1", fmt="markdown").splitlines()
    assert md[0] == "Table 1" and md[1].startswith("| model | train MSE |")
    assert md[3].startswith("| vanilla | 5.000e-03 | 0.37 |")


@pytest.mark.parametrize(
    "rows,kwargs,match",
    [
        ({}, {}, "rows"),
        (ROWS, {"layout": "table9"}, "layout"),
        (ROWS, {"fmt": "latex"}, "fmt"),
        ({"x": [1, 2]}, {}, "row 'x'"),
        ({"x": {"train_mse": "small"}}, {}, "train_mse"),
    ],
)
def test_table_bad_input(rows, kwargs, match):
    with pytest.raises(ValueError, match=match):
        format_table(rows, **kwargs)


# ----------------------------------------------------------------------------- validation
def test_evaluate_rejects_bad_input_before_computing():
    s = setup()
    oracle = fitted("oracle")
    k = jax.random.key(0)
    bad_dim = Trajectories(states=np.zeros((2, 3, 4)), dt=0.2)
    cases = [
        (dict(tests={"train": s.tests["test"]}), "train"),
        (dict(tests=s.tests, rollout_steps=50), "rollout_steps"),
        (dict(tests=s.tests, rollout_trajectories=8), "rollout_trajectories"),
        (dict(tests={"test": bad_dim}), "phase dimension"),
        (dict(tests=[s.tests["test"]]), "mapping"),
        (dict(num_samples=0), "num_samples"),
        (dict(system=systems.CoupledOscillators(2)), "phase_dim"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            evaluate(oracle, s.train, key=k, **kwargs)
    with pytest.raises(ValueError, match="key"):
        evaluate(oracle, s.train, key=0)
    with pytest.raises(ValueError, match="FitResult"):
        evaluate(object(), s.train, key=k)
    with pytest.raises(ValueError, match="n_steps"):
        rollout_metrics(oracle, s.tests["test"], key=k, n_steps=5)
