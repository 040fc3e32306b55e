"""Hand-derived kernels against plain JAX autodiff of their straightforward definitions.

The fused kernel behind :func:`noether_ppl.nn.mlp_value_and_input_grad` (custom VJP; App. D.1's
MLP) and the symmetrised field built on it (Sec. 3.2, Eq. 14) must equal, in float64 to a
relative 1e-10: the value ``mlp``, the input gradient ``jax.grad(mlp)``, and the gradients of
scalar losses of both with respect to the weights and the inputs (the second-order pass of the
ELBO gradient: ``∂/∂θ`` of a loss of ``∇_y F``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import geometry, nn, symmetrize

RTOL = 1e-10
KERNEL_ACTIVATIONS = [("elu", 1.0), ("elu", 2.0), ("tanh", 1.0)]
FALLBACK_ACTIVATIONS = [("softplus", 1.0), ("silu", 1.0), ("sin", 1.0)]


@pytest.fixture(autouse=True)
def _float64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def net(M, hidden, seed=0):
    w = nn.init_weights(jax.random.key(seed), nn.layer_shapes(M, hidden, 1), jnp.float64)
    # non-zero biases (the bias column is part of θ) and a wider spread of pre-activations,
    # so both branches of ELU are exercised
    rng = np.random.default_rng(seed)
    return [1.5 * x.at[:, -1].set(jnp.asarray(rng.normal(size=x.shape[0]))) for x in w]


def reference(weights, x, act):
    """Value and input gradient by autodiff of the plain ``mlp``, point by point."""
    f = lambda w, y: nn.mlp(w, y, act)
    flat = x.reshape(-1, x.shape[-1])
    value = jax.vmap(lambda y: f(weights, y))(flat).reshape(x.shape[:-1])
    grad = jax.vmap(jax.grad(lambda y: f(weights, y)))(flat).reshape(x.shape)
    return value, grad


def loss(fn, weights, x, act, use_value=True, use_grad=True):
    value, grad = fn(weights, x, act)
    out = jnp.zeros((), x.dtype)
    if use_value:
        out = out + jnp.sum(jnp.sin(value) * jnp.arange(value.size).reshape(value.shape))
    if use_grad:
        out = out + jnp.sum(jnp.cos(grad) * x) + jnp.sum(grad**2)
    return out


def assert_close(a, b):
    for p, q in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert p.shape == q.shape
        np.testing.assert_allclose(p, q, rtol=RTOL, atol=RTOL * float(jnp.max(jnp.abs(q))))


@pytest.mark.parametrize("name,alpha", KERNEL_ACTIVATIONS)
def test_output_derivatives_match_autodiff(name, alpha):
    act = nn.get_activation(name, alpha=alpha)
    assert act.output_derivatives is not None
    z = jnp.concatenate([jnp.linspace(-6.0, 6.0, 241), jnp.zeros(1), jnp.array([1e-300, -1e-300])])
    fp, fpp = act.output_derivatives(act.fn(z))
    np.testing.assert_allclose(fp, jax.vmap(jax.grad(act.fn))(z), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(fpp, jax.vmap(jax.grad(jax.grad(act.fn)))(z), rtol=1e-13,
                               atol=1e-14)


SHAPES = [(2, (16, 12), (3, 5)), (6, (9, 7, 5), (11,)), (3, (8,), ())]
"""(M, hidden widths, batch shape): the thin phase-space layer (element-wise products), a wider
input layer with three hidden layers (matmuls), and a single point with one hidden layer."""


@pytest.mark.parametrize("name,alpha,M,hidden,batch",
                         [(n, a, *shape) for n, a in KERNEL_ACTIVATIONS for shape in SHAPES]
                         + [(n, a, *SHAPES[0]) for n, a in FALLBACK_ACTIVATIONS])
def test_value_input_grad_and_their_gradients(name, alpha, M, hidden, batch):
    act = nn.get_activation(name, alpha=alpha)
    assert (act.output_derivatives is not None) == ((name, alpha) in KERNEL_ACTIVATIONS)
    weights = net(M, hidden)
    x = jax.random.normal(jax.random.key(1), batch + (M,), jnp.float64)
    value, grad = nn.mlp_value_and_input_grad(weights, x, act)
    ref_value, ref_grad = reference(weights, x, act)
    assert_close(value, ref_value)
    assert_close(grad, ref_grad)
    # both outputs used, only ∇F (the vector field), only F (the Hamiltonian)
    for uses in [(True, True), (False, True), (True, False)]:
        got = jax.grad(lambda w, y, u=uses: loss(nn.mlp_value_and_input_grad, w, y, act, *u),
                       argnums=(0, 1))(weights, x)
        want = jax.grad(lambda w, y, u=uses: loss(reference, w, y, act, *u),
                        argnums=(0, 1))(weights, x)
        assert_close(got, want)


@pytest.mark.parametrize("name,alpha", KERNEL_ACTIVATIONS)
def test_gradients_under_jit_and_with_respect_to_one_argument(name, alpha):
    act = nn.get_activation(name, alpha=alpha)
    weights = net(2, (10, 10), seed=3)
    x = jax.random.normal(jax.random.key(4), (7, 2), jnp.float64)
    g_w = jax.jit(jax.grad(lambda w: jnp.sum(nn.mlp_value_and_input_grad(w, x, act)[1] ** 3)))
    want = jax.grad(lambda w: jnp.sum(reference(w, x, act)[1] ** 3))(weights)
    assert_close(g_w(weights), want)
    g_x = jax.grad(lambda y: jnp.sum(nn.mlp_value_and_input_grad(weights, y, act)[0] ** 2))
    assert_close(g_x(x), jax.grad(lambda y: jnp.sum(reference(weights, y, act)[0] ** 2))(x))


def straightforward_symmetrized(weights, act, Phis, x):
    """``Ĥ(x) = (1/S) Σ_s F(Φ_s x)`` (Eq. 14) and its gradient, by autodiff of ``mlp``."""

    def H(xi):
        return symmetrize.symmetrize(lambda y: nn.mlp(weights, y, act), Phis)(xi[None])[0]

    return jax.vmap(H)(x), jax.vmap(jax.grad(H))(x)


@pytest.mark.parametrize("name,alpha", KERNEL_ACTIVATIONS)
def test_symmetrized_value_and_grad_matches_the_definition(name, alpha):
    act = nn.get_activation(name, alpha=alpha)
    M, K, S = 4, 2, 6
    rng = np.random.default_rng(5)
    G = jnp.stack([geometry.generator_from_quadratic(jnp.asarray(A + A.T), jnp.asarray(b))
                   for A, b in ((rng.normal(size=(M, M)), rng.normal(size=M))
                                for _ in range(K))])
    taus = symmetrize.sample_symmetry_times(jax.random.key(6), S, K, dtype=jnp.float64) / 4
    weights = net(M, (12, 9), seed=7)
    x = jax.random.normal(jax.random.key(8), (5, M), jnp.float64)

    def ours(w, G, x):
        return symmetrize.symmetrized_value_and_grad(w, act, symmetrize.group_elements(G, taus),
                                                     x)

    def ref(w, G, x):
        return straightforward_symmetrized(w, act, symmetrize.group_elements(G, taus), x)

    assert_close(ours(weights, G, x), ref(weights, G, x))

    def scalar(fn, w, G, x):  # the ELBO's shape: a loss of the field J∇Ĥ, and of Ĥ
        value, grad = fn(w, G, x)
        return jnp.sum((x + 0.1 * grad) ** 2) + jnp.sum(jnp.tanh(value))

    got = jax.grad(lambda *a: scalar(ours, *a), argnums=(0, 1, 2))(weights, G, x)
    want = jax.grad(lambda *a: scalar(ref, *a), argnums=(0, 1, 2))(weights, G, x)
    assert_close(got, want)
