"""The observable F_θ: a pure MLP over a list of per-layer weight matrices (App. D.1).

Layer ``l`` holds one matrix ``θ_l = [W_l b_l]`` of shape ``(out_l, in_l + 1)``: the bias is
folded in as an extra input column, which is the layout of the matrix-normal posterior of
App. D.1 (Eq. 16). The network maps ``R^M → R``.

Two evaluations are provided: :func:`mlp` (the value) and :func:`mlp_value_and_input_grad`
(value and ``∇_x F`` by a hand-written backward pass that reuses the forward activations).
The second is the hot path of the Hamiltonian vector field ``J ∇Ĥ`` and stays differentiable
with respect to the weights, so the ELBO gradient flows through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "layer_shapes",
    "init_weights",
    "mlp",
    "mlp_value_and_input_grad",
]


class Activation(NamedTuple):
    """An activation ``f`` with its derivative written in terms of ``(z, f(z))``.

    ``derivative(z, fz)`` lets the backward pass reuse ``f(z)`` (for ELU, ``f'(z) = f(z) + α``
    for ``z ≤ 0``) instead of recomputing transcendental functions.
    """

    fn: callable
    derivative: callable


def _elu(alpha: float) -> Activation:
    def derivative(z, fz):
        return jnp.where(z > 0, 1.0, fz + alpha)

    # The JVP reuses f(z) (f'(z) = f(z) + α for z ≤ 0), so differentiating the vector field
    # J∇F (second order in the ELBO gradient) evaluates no transcendental beyond expm1.
    @jax.custom_jvp
    def fn(z):
        return jnp.where(z > 0, z, alpha * jnp.expm1(jnp.minimum(z, 0.0)))

    @fn.defjvp
    def fn_jvp(primals, tangents):
        (z,), (dz,) = primals, tangents
        fz = fn(z)
        return fz, derivative(z, fz) * dz

    return Activation(fn, derivative)


def _tanh() -> Activation:
    return Activation(jnp.tanh, lambda z, fz: 1.0 - fz * fz)


def _softplus() -> Activation:
    return Activation(jax.nn.softplus, lambda z, fz: jax.nn.sigmoid(z))


def _silu() -> Activation:
    def derivative(z, fz):
        s = jax.nn.sigmoid(z)
        return s + fz * (1.0 - s)

    return Activation(jax.nn.silu, derivative)


def _sine() -> Activation:
    return Activation(jnp.sin, lambda z, fz: jnp.cos(z))


ACTIVATIONS = {
    "elu": _elu,
    "tanh": _tanh,
    "softplus": _softplus,
    "silu": _silu,
    "sin": _sine,
}
"""Smooth activations (the vector field needs ``∇F`` and the ELBO gradient needs ``∇²F``)."""


def get_activation(name: str, alpha: float = 1.0) -> Activation:
    """Look up an activation by name; ``alpha`` is ELU's α (the paper uses α = 2 for the SHO)."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}."
        )
    if name == "elu":
        return _elu(alpha)
    return ACTIVATIONS[name]()


def layer_shapes(in_dim: int, hidden: Sequence[int], out_dim: int = 1) -> list[tuple[int, int]]:
    """Shapes ``(out_l, in_l + 1)`` of the per-layer matrices ``[W_l b_l]`` (App. D.1)."""
    sizes = [in_dim, *hidden, out_dim]
    return [(sizes[i + 1], sizes[i] + 1) for i in range(len(sizes) - 1)]


def init_weights(key: jax.Array, shapes: Sequence[tuple[int, int]], dtype=jnp.float32):
    """LeCun-normal weights (variance ``1/in_l``) and zero biases, keeping activations O(1)."""
    keys = jax.random.split(key, len(shapes))
    weights = []
    for k, (out, inp) in zip(keys, shapes, strict=True):
        fan_in = inp - 1
        w = jax.random.normal(k, (out, fan_in), dtype) / jnp.sqrt(jnp.asarray(fan_in, dtype))
        weights.append(jnp.concatenate([w, jnp.zeros((out, 1), dtype)], axis=1))
    return weights


def _affine(theta: jax.Array, h: jax.Array) -> jax.Array:
    # h (..., in) @ W (out, in)ᵀ + b: the bias is the last column of θ.
    return jnp.matmul(h, theta[:, :-1].T) + theta[:, -1]


def mlp(weights: Sequence[jax.Array], x: jax.Array, activation: Activation) -> jax.Array:
    """Evaluate ``F_θ(x)`` for ``x (..., in)``; returns ``(...)`` (scalar output layer)."""
    h = x
    for theta in weights[:-1]:
        h = activation.fn(_affine(theta, h))
    return _affine(weights[-1], h)[..., 0]


def mlp_value_and_input_grad(
    weights: Sequence[jax.Array], x: jax.Array, activation: Activation
) -> tuple[jax.Array, jax.Array]:
    """``F_θ(x)`` and ``∇_x F_θ(x)`` for ``x (..., in)``: returns ``(...)`` and ``(..., in)``.

    Reverse accumulation written out by hand: ``δ_L = W_L``, ``δ_{l} = (δ_{l+1} ⊙ f'(z_l)) W_l``.
    Equal to ``jax.grad`` of :func:`mlp` (tested) but shares the forward activations and keeps
    one batched matmul per layer, which is what the symmetrised vector field needs.
    """
    zs, fzs = [], []
    h = x
    for theta in weights[:-1]:
        z = _affine(theta, h)
        h = activation.fn(z)
        zs.append(z)
        fzs.append(h)
    value = _affine(weights[-1], h)[..., 0]
    delta = jnp.broadcast_to(weights[-1][0, :-1], h.shape)
    for theta, z, fz in zip(reversed(weights[:-1]), reversed(zs), reversed(fzs), strict=True):
        delta = jnp.matmul(delta * activation.derivative(z, fz), theta[:, :-1])
    return value, delta
