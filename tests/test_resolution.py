"""``analysis.mean_error`` / ``mean_resolution``: the likelihood mean's error over Δt against a
reference integrator, in units of the noise (Sec. 4.1's Gaussian)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import analysis, inference, systems
from noether_ppl.analysis.resolution import MeanResolution
from noether_ppl.models import ModelSpec, NoetherRazor

A = np.array([[0.0, 1.0], [-1.0, 0.0]])  # dq/dt = p, dp/dt = -q: H = (q² + p²)/2


def rotation_field(x):
    return x @ jnp.asarray(A).T


def test_one_rk2_step_on_the_oscillator_matches_the_closed_form():
    """For the linear flow ``x ↦ e^{hA}x`` one RK2 step is ``(I + hA + h²A²/2)x``; with
    A² = −I its error is ``((1 − h²/2 − cos h)² + (h − sin h)²) ‖x‖²`` per state (against
    RK4 with 256 steps, exact to ~1e-13 here; with the default 16 to ~1e-7)."""
    x = jax.random.normal(jax.random.key(0), (64, 2), jnp.float64)
    for h in (0.2, 1.0):
        r = analysis.mean_error(rotation_field, x, h, integrator="rk2", substeps=1,
                                noise_variance=1e-3, reference=("rk4", 256))
        c = (1 - h * h / 2 - np.cos(h)) ** 2 + (h - np.sin(h)) ** 2
        sq = c * np.sum(np.asarray(x) ** 2, axis=-1)
        assert r.nats == pytest.approx(np.mean(0.5 * sq / 1e-3), rel=1e-8)
        assert r.nats_median == pytest.approx(np.median(0.5 * sq / 1e-3), rel=1e-8)
        assert r.nats_max == pytest.approx(np.max(0.5 * sq / 1e-3), rel=1e-8)
        assert r.noise_ratio == pytest.approx(np.mean(sq) / (2 * 1e-3), rel=1e-8)
        assert r.reference_ratio < 1e-12 and r.n_points == 64 and r.phase_dim == 2
        assert r.fraction_unresolved == pytest.approx(np.mean(sq / 2e-3 > 1.0))
    # Δt = 1: the error exceeds the noise and the verdict and the text say so
    assert not r.resolved() and "does not resolve" in str(r)
    small = analysis.mean_error(rotation_field, x, 0.05, integrator="rk2", substeps=1,
                                noise_variance=1e-3)
    assert small.resolved() and "does not resolve" not in str(small)


@pytest.mark.parametrize("integrator, order", [("rk2", 2), ("rk4", 4)])
def test_the_error_falls_at_the_integrators_order(integrator, order):
    """A method of order p has a local error O(h^{p+1}): the squared error over h falls by
    2^{2(p+1)} when h is halved (Hénon–Heiles, a nonlinear field)."""
    system = systems.SUITE["henon-heiles"]()
    x = np.asarray(system.simulate(jax.random.key(1), n_trajectories=8, n_steps=2,
                                   dt=0.1).states).reshape(-1, 4)
    ratios = [analysis.mean_error(system.vector_field, x, h, integrator=integrator,
                                  substeps=1, noise_variance=1e-3,
                                  reference=("rk4", 64)).noise_ratio for h in (0.1, 0.05)]
    assert ratios[0] / ratios[1] == pytest.approx(2.0 ** (2 * (order + 1)), rel=0.15)


def test_the_reference_itself_has_no_error_and_more_substeps_never_hurt():
    system = systems.SUITE["two-body-2d"]()
    x = np.asarray(system.simulate_split(jax.random.key(1000), "train", n_trajectories=10,
                                         n_steps=2).pairs()[0])
    same = analysis.mean_error(system.vector_field, x, 0.3, integrator="rk4", substeps=16,
                               noise_variance=1e-3)
    assert same.nats == 0.0 and same.noise_ratio == 0.0
    coarse, fine = (analysis.mean_error(system.vector_field, x, 0.3, integrator="rk2",
                                        substeps=n, noise_variance=1e-3) for n in (1, 4))
    assert fine.noise_ratio < coarse.noise_ratio
    assert coarse.reference_ratio == fine.reference_ratio < 1e-2 * coarse.noise_ratio
    d = coarse.to_dict()
    assert d["reference"] == ["rk4", 16] and d["resolved"] == coarse.resolved()


@pytest.mark.slow
def test_a_fitted_model_is_measured_through_its_own_mean(tiny_sho):
    """``mean_resolution`` is ``mean_error`` of the fitted Ĥ's field through the model's
    integrator, at its σ²; the oscillator's pairs at Δt = 0.2 are resolved by two RK2
    steps."""
    spec = ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, substeps=2, dtype="float64")
    res = inference.fit(NoetherRazor(spec, phase_dim=2), tiny_sho, key=jax.random.key(0),
                        num_steps=30, lr=1e-2, progress_bar=False)
    r = analysis.mean_resolution(res, tiny_sho, key=jax.random.key(3))
    assert isinstance(r, MeanResolution)
    assert (r.integrator, r.substeps, r.dt) == ("rk2", 2, pytest.approx(0.2))
    assert r.noise_variance == 1e-3 and r.n_points == tiny_sho.n_pairs
    k_sym = jax.random.split(jax.random.key(3), 3)[1]
    field = res.model.vector_field(res.weights_mean(), res.group_elements(k_sym))
    again = analysis.mean_error(field, jnp.asarray(tiny_sho.pairs()[0]), 0.2,
                                integrator="rk2", substeps=2, noise_variance=1e-3)
    assert r.nats == pytest.approx(again.nats, rel=1e-10)
    assert r.resolved()
    few = analysis.mean_resolution(res, tiny_sho, key=jax.random.key(3), max_points=4)
    assert few.n_points == 4


def test_bad_arguments_are_refused_by_name(tiny_sho):
    x = np.zeros((4, 2))
    for kwargs, word in (({"x": np.zeros(4)}, "`x`"), ({"x": np.zeros((4, 3))}, "`x`"),
                         ({"dt": 0.0}, "`dt`"), ({"noise_variance": -1.0}, "`noise_variance`"),
                         ({"integrator": "rk9"}, "integrator"), ({"substeps": 0}, "integrator"),
                         ({"reference": ("rk4",)}, "`reference`"),
                         ({"reference": ("rk4", 0)}, "`reference`")):
        args = {"x": x, "dt": 0.1, "integrator": "rk2", "substeps": 1,
                "noise_variance": 1e-3, **kwargs}
        with pytest.raises(ValueError, match=word):
            analysis.mean_error(rotation_field, args.pop("x"), args.pop("dt"), **args)
    with pytest.raises(ValueError, match="not finite"):
        analysis.mean_error(lambda y: y * jnp.inf, x + 1.0, 0.1, integrator="rk2",
                            substeps=1, noise_variance=1e-3)
    with pytest.raises(ValueError, match="`result`"):
        analysis.mean_resolution(object(), tiny_sho, key=jax.random.key(0))
    spec = ModelSpec(hidden=(4,), n_conserved=0)
    res = inference.fit(NoetherRazor(spec, phase_dim=2), tiny_sho, key=jax.random.key(0),
                        num_steps=2, progress_bar=False)
    with pytest.raises(ValueError, match="`max_points`"):
        analysis.mean_resolution(res, tiny_sho, key=jax.random.key(0), max_points=0)
    with pytest.raises(ValueError, match="`data`"):
        analysis.mean_resolution(res, "data", key=jax.random.key(0))
