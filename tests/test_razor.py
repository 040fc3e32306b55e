import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from numpyro import handlers
from numpyro.infer.util import log_density

from noether_ppl.models import ModelSpec, NoetherRazor


def numpy_reference_log_joint(weights, W, b, x_t, x_next, dt, S, substeps, sigma2, prior_var,
                              integrator="euler"):
    """Independent NumPy computation of log p(X, θ | η) for a tanh MLP, grid symmetry samples,
    the likelihood mean by Euler or explicit-midpoint (``"rk2"``) sub-steps."""
    M = x_t.shape[1]
    J = np.block([[np.zeros((M // 2, M // 2)), np.eye(M // 2)],
                  [-np.eye(M // 2), np.zeros((M // 2, M // 2))]])
    A = W[0] + W[0].T
    G = np.zeros((M + 1, M + 1))
    G[:M, :M] = J @ A
    G[:M, M] = J @ b[0]
    taus = math.pi * (2 * (np.arange(S) + 0.5) / S - 1)
    Phis = [scipy.linalg.expm(t * G) for t in taus]

    def grad_F(y):
        # F(y) = w2 · tanh(W1 y + c1) + c2 ; ∇F = W1ᵀ (w2 ⊙ (1 - tanh²))
        W1, c1 = weights[0][:, :-1], weights[0][:, -1]
        w2 = weights[1][0, :-1]
        h = np.tanh(W1 @ y + c1)
        return W1.T @ (w2 * (1 - h**2))

    def field(x):
        g = np.mean([P[:M, :M].T @ grad_F(P[:M, :M] @ x + P[:M, M]) for P in Phis], axis=0)
        return J @ g

    logp = 0.0
    for xt, xn in zip(x_t, x_next, strict=True):
        y = xt.copy()
        h = dt / substeps
        for _ in range(substeps):
            if integrator == "euler":
                y = y + h * field(y)
            else:  # explicit midpoint
                y = y + h * field(y + 0.5 * h * field(y))
        logp += np.sum(-0.5 * (xn - y) ** 2 / sigma2 - 0.5 * np.log(2 * np.pi * sigma2))
    for w, v in zip(weights, prior_var, strict=True):
        logp += np.sum(-0.5 * w**2 / v - 0.5 * np.log(2 * np.pi * v))
    return logp


@pytest.mark.parametrize("integrator", ["euler", "rk2"])
def test_log_joint_equals_hand_computation(integrator):
    spec = ModelSpec(hidden=(5,), activation="tanh", n_conserved=1, sym_samples=3,
                     sampling="grid", integrator=integrator, substeps=3, noise_variance=0.05,
                     prior_variance=0.7, dtype="float64")
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(1, 2, 2)) * 0.5, rng.normal(size=(1, 2)) * 0.3
    model = NoetherRazor(spec, phase_dim=2, conserved_init=(W, b))
    weights = [rng.normal(size=s) for s in model.shapes]
    x_t, x_next = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    params = {name: jnp.asarray(w) for name, w in zip(model.site_names, weights, strict=True)}
    params.update(conserved_W=jnp.asarray(W), conserved_b=jnp.asarray(b))
    logp, _ = log_density(handlers.seed(model, 0), (x_t, x_next), {"dt": 0.3}, params)
    ref = numpy_reference_log_joint(weights, W, b, x_t, x_next, 0.3, 3, 3, 0.05, [0.7, 0.7],
                                    integrator)
    np.testing.assert_allclose(float(logp), ref, rtol=1e-10)


def test_minibatch_likelihood_is_scaled_to_the_full_data_set():
    spec = ModelSpec(hidden=(4,), n_conserved=0, substeps=1, dtype="float64")
    model = NoetherRazor(spec, phase_dim=2)
    x = jax.random.normal(jax.random.key(0), (3, 2), jnp.float64)
    tr = handlers.trace(handlers.seed(model, 0)).get_trace(x, x, dt=0.1, num_data=30)
    assert tr["x_next"]["scale"] == pytest.approx(10.0)


def test_variants_and_model_runs_under_predictive():
    from numpyro.infer import Predictive

    spec = ModelSpec(hidden=(8,), n_conserved=2, sym_samples=4, substeps=2)
    learned = NoetherRazor(spec, phase_dim=4)
    assert learned.variant == "learned"
    assert NoetherRazor(spec.replace(n_conserved=0), phase_dim=4).variant == "vanilla"
    G = jnp.zeros((3, 5, 5)).at[:, 0, 2].set(1.0)
    oracle = NoetherRazor(spec, phase_dim=4, generators=G)
    assert oracle.variant == "oracle" and oracle.n_conserved == 3
    x = jnp.ones((6, 4))
    pred = Predictive(learned, num_samples=3)(jax.random.key(0), x, dt=0.1)
    assert pred["x_next"].shape == (3, 6, 4)
    assert pred["theta_0"].shape == (3, 8, 5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_conserved": -1}, "n_conserved"),
        ({"measure": "cauchy"}, "measure"),
        ({"sym_samples": 0}, "sym_samples"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (4, 0)}, "hidden"),
        ({"activation": "relu"}, "activation"),
        ({"integrator": "leapfrog"}, "integrator"),
        ({"noise_variance": -1.0}, "noise_variance"),
        ({"noise_variance": "auto"}, "noise_variance"),
        ({"prior_variance": 0.0}, "prior_variance"),
        ({"substeps": 0}, "substeps"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_specs_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelSpec(**kwargs)


def test_bad_model_arguments_raise_before_tracing():
    spec = ModelSpec(hidden=(4,))
    with pytest.raises(ValueError, match="phase_dim"):
        NoetherRazor(spec, phase_dim=3)
    with pytest.raises(ValueError, match="generators"):
        NoetherRazor(spec, phase_dim=2, generators=np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match="conserved_init"):
        NoetherRazor(spec, phase_dim=2, conserved_init=(np.zeros((2, 2, 2)), np.zeros((1, 2))))
    model = NoetherRazor(spec, phase_dim=2)
    with pytest.raises(ValueError, match="x_t"):
        handlers.seed(model, 0)(jnp.ones((3, 4)), dt=0.1)
    with pytest.raises(ValueError, match="x_next"):
        handlers.seed(model, 0)(jnp.ones((3, 2)), jnp.ones((2, 2)), dt=0.1)


def test_spec_replace_and_round_trip():
    spec = ModelSpec(hidden=[16, 16], n_conserved=3)
    assert spec.hidden == (16, 16)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.replace(n_conserved=0).n_conserved == 0
    with pytest.raises(ValueError, match="widht"):
        spec.replace(widht=3)


def _weights(model, seed=0):
    rng = np.random.default_rng(seed)
    return {n: jnp.asarray(0.7 * rng.normal(size=s)) for n, s in zip(model.site_names,
                                                                    model.shapes, strict=True)}


def test_symmetry_times_are_a_site_and_zero_times_give_the_plain_hnn():
    """τ (S, K) is the deterministic site "symmetry_times"; handlers.substitute fixes it, and
    at τ = 0 every group element is the identity, so Ĥ = F_θ and the likelihood mean is the
    plain HNN's (K = 0) with the same weights, to round-off of the mean over S equal terms."""
    S = 4
    spec = ModelSpec(hidden=(6, 5), n_conserved=2, sym_samples=S, sampling="iid",
                     substeps=3, dtype="float64")
    model = NoetherRazor(spec, phase_dim=4)
    hnn = NoetherRazor(spec.replace(n_conserved=0), phase_dim=4)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(7, 4)))
    data = _weights(model)
    seeded = handlers.seed(handlers.substitute(model, data), 3)
    tr = handlers.trace(seeded).get_trace(x, dt=0.2)
    first = seeded(x, dt=0.2)
    site = tr["symmetry_times"]
    assert site["type"] == "deterministic" and site["value"].shape == (S, 2)
    assert model.symmetry_times(jax.random.key(0)).shape == (S, 2)
    assert float(jnp.max(jnp.abs(site["value"]))) > 0.1
    eta = {k: tr[k]["value"] for k in ("conserved_W", "conserved_b")}
    # The recorded times are the ones used: substituted into a call with another seed, they
    # give the same mean; other times give another.
    fixed = {**data, **eta, "symmetry_times": site["value"]}
    again = handlers.seed(handlers.substitute(model, fixed), 11)(x, dt=0.2)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first))
    other = handlers.seed(handlers.substitute(model, {**data, **eta}), 11)(x, dt=0.2)
    assert not np.allclose(np.asarray(other), np.asarray(again))
    zero = {**data, **eta, "symmetry_times": jnp.zeros((S, 2))}
    pred = handlers.seed(handlers.substitute(model, zero), 5)(x, dt=0.2)
    plain = handlers.seed(handlers.substitute(hnn, data), 5)(x, dt=0.2)
    np.testing.assert_allclose(np.asarray(pred), np.asarray(plain), rtol=1e-13, atol=1e-15)


def test_unseeded_calls_raise_the_packages_error_and_substituted_sites_need_no_seed():
    """NumPyro fails on a bare AssertionError at the first sample site of an unseeded call; the
    model says what to do instead. With every random site substituted (as
    numpyro.infer.util.log_likelihood does) it runs without a seed."""
    from numpyro.infer.util import log_likelihood

    spec = ModelSpec(hidden=(4,), n_conserved=1, sym_samples=3, substeps=1, prior_variance=1.0,
                     dtype="float64")
    x = jnp.ones((3, 2))
    G = np.zeros((1, 3, 3))
    G[0, 0, 1], G[0, 1, 0] = 1.0, -1.0                                   # SO(2): H = |x|²/2
    for model in (NoetherRazor(spec, phase_dim=2), NoetherRazor(spec.replace(n_conserved=0),
                                                                phase_dim=2),
                  NoetherRazor(spec, phase_dim=2, generators=G)):
        with pytest.raises(ValueError, match="handlers.seed"):
            model(x, x, dt=0.1)
        with pytest.raises(ValueError, match="handlers.seed"):
            handlers.trace(model).get_trace(x, x, dt=0.1)
    oracle = model
    data = _weights(oracle)
    with pytest.raises(ValueError, match="symmetry_times"):                 # τ not supplied
        handlers.substitute(oracle, data)(x, x, dt=0.1)
    with pytest.raises(ValueError, match=r"symmetry_times.*\(3, 1\)"):      # wrong shape
        handlers.seed(handlers.substitute(oracle, {**data, "symmetry_times": jnp.zeros(3)}),
                      0)(x, x, dt=0.1)
    taus = jnp.asarray([[-1.0], [0.3], [2.0]])
    samples = {k: v[None] for k, v in {**data, "symmetry_times": taus}.items()}
    ll = log_likelihood(oracle, samples, x, 1.1 * x, dt=0.1)["x_next"]
    lp, _ = log_density(handlers.seed(oracle, 0), (x, 1.1 * x), {"dt": 0.1},
                        {**data, "symmetry_times": taus})
    prior = sum(float(jnp.sum(-0.5 * w**2 / 1.0 - 0.5 * jnp.log(2 * jnp.pi)))
                for w in data.values())                         # N(0, 1): prior_variance 1.0
    assert ll.shape == (1, 3)
    np.testing.assert_allclose(float(jnp.sum(ll)) + prior, float(lp), rtol=1e-12)


@pytest.mark.parametrize("defect,match", [("asymmetric", "not symmetric"),
                                          ("bottom", "bottom row")])
def test_fixed_generators_must_be_quadratic(defect, match):
    G = np.zeros((2, 5, 5))
    G[:, 0, 2] = 1.0                                              # C = p_0²/2 (A symmetric)
    NoetherRazor(ModelSpec(hidden=(4,)), phase_dim=4, generators=G)
    if defect == "asymmetric":
        G[1, 0, 1] = 0.3                                          # J A with A[2, 1] ≠ A[1, 2]
    else:
        G[1, 4, 0] = 0.3
    with pytest.raises(ValueError, match=f"`generators`.*generator 1.*{match}"):
        NoetherRazor(ModelSpec(hidden=(4,)), phase_dim=4, generators=G)
