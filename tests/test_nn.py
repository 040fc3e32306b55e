import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import nn


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_activation_derivative_matches_autodiff(name):
    act = nn.get_activation(name, alpha=2.0)
    z = jnp.linspace(-4.0, 4.0, 101)
    expected = jax.vmap(jax.grad(act.fn))(z)
    np.testing.assert_allclose(act.derivative(z, act.fn(z)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["elu", "tanh", "softplus"])
def test_hand_written_input_grad_equals_jax_grad(name):
    act = nn.get_activation(name, alpha=2.0)
    shapes = nn.layer_shapes(4, (16, 8), 1)
    assert shapes == [(16, 5), (8, 17), (1, 9)]
    weights = nn.init_weights(jax.random.key(0), shapes, jnp.float64)
    # non-zero biases so the bias column is exercised
    weights = [w.at[:, -1].set(0.3) for w in weights]
    x = jax.random.normal(jax.random.key(1), (3, 5, 4), jnp.float64)
    value, grad = nn.mlp_value_and_input_grad(weights, x, act)
    f = lambda y: nn.mlp(weights, y, act)
    np.testing.assert_allclose(value, f(x), rtol=1e-13)
    ref = jax.vmap(jax.vmap(jax.grad(f)))(x)
    np.testing.assert_allclose(grad, ref, rtol=1e-12, atol=1e-14)
    # and it is differentiable in the weights (second derivative of F through the ELBO)
    g_hand = jax.grad(lambda w: jnp.sum(nn.mlp_value_and_input_grad(w, x, act)[1] ** 2))(weights)
    g_auto = jax.grad(lambda w: jnp.sum(jax.vmap(jax.vmap(jax.grad(
        lambda y: nn.mlp(w, y, act))))(x) ** 2))(weights)
    for a, b in zip(g_hand, g_auto, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_initialisation_keeps_activations_order_one():
    shapes = nn.layer_shapes(2, (200, 200, 200), 1)
    weights = nn.init_weights(jax.random.key(0), shapes, jnp.float32)
    x = jax.random.normal(jax.random.key(1), (1000, 2))
    act = nn.get_activation("elu")
    h = x
    for w in weights[:-1]:
        h = act.fn(h @ w[:, :-1].T + w[:, -1])
        assert 0.2 < float(jnp.std(h)) < 3.0
    out = nn.mlp(weights, x, act)
    assert 0.05 < float(jnp.std(out)) < 5.0


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="relu"):
        nn.get_activation("relu")
