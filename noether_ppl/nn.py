"""The observable F_θ: a pure MLP over a list of per-layer weight matrices (App. D.1).

Layer ``l`` holds one matrix ``θ_l = [W_l b_l]`` of shape ``(out_l, in_l + 1)``: the bias is
folded in as an extra input column, which is the layout of the matrix-normal posterior of
App. D.1 (Eq. 16). The network maps ``R^M → R``.

Two evaluations are provided: :func:`mlp` (the value) and :func:`mlp_value_and_input_grad`
(value and ``∇_x F`` by a hand-written backward pass that reuses the forward activations).
The second is the hot path of the Hamiltonian vector field ``J ∇Ĥ`` and stays differentiable
with respect to the weights, so the ELBO gradient flows through it. For activations whose first
two derivatives are functions of ``f(z)`` alone (ELU with α > 0, tanh) it is one custom-VJP
kernel whose reverse pass (the second-order pass of the ELBO gradient) is derived by hand: it
keeps ``f(z_l)`` of each hidden layer and the inner input-gradient rows (three arrays for two
hidden layers, where reverse mode kept eight) and evaluates no transcendental in reverse.
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
    for ``z ≤ 0``) instead of recomputing transcendental functions. ``output_derivatives``,
    when set, maps ``f(z)`` alone to ``(f'(z), f''(z))``; it enables the hand-derived kernel of
    :func:`mlp_value_and_input_grad`, which then stores only ``f(z)``.
    """

    fn: callable
    derivative: callable
    output_derivatives: callable | None = None


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

    def output_derivatives(fz):
        # α > 0: f(z) > 0 exactly when z > 0, and ELU''(z) = α e^z = f(z) + α for z ≤ 0.
        pos = fz > 0
        return jnp.where(pos, 1.0, fz + alpha), jnp.where(pos, 0.0, fz + alpha)

    return Activation(fn, derivative, output_derivatives if alpha > 0 else None)


def _tanh() -> Activation:
    def output_derivatives(fz):
        fp = 1.0 - fz * fz
        return fp, -2.0 * fz * fp

    return Activation(jnp.tanh, lambda z, fz: 1.0 - fz * fz, output_derivatives)


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

    Reverse accumulation written out by hand (App. D.1's MLP ``z_l = h_l W_lᵀ + b_l``,
    ``h_{l+1} = f(z_l)``, ``F = h_n w_nᵀ + b_n``): ``g_n = w_n``, ``d_l = g_{l+1} ⊙ f'(z_l)``,
    ``g_l = d_l W_l``, ``∇_x F = g_0``. Equal to ``jax.grad`` of :func:`mlp` (tested), sharing the
    forward activations, one matmul over all leading dimensions per layer. With
    ``activation.output_derivatives`` (ELU α > 0, tanh) its derivatives with respect to
    ``weights`` and ``x`` come from the hand-derived reverse pass of :func:`_fused_kernel`
    (reverse mode only); otherwise from JAX's reverse mode through the lines below.
    """
    if activation.output_derivatives is not None:
        return _fused_kernel(activation)(*_same_varying_axes(tuple(weights), x))
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


def _same_varying_axes(weights, x):
    """Inside ``shard_map``, mark every input as varying over the mesh axes any of them varies
    over, so the kernel's cotangents have their inputs' types; JAX's transpose of that cast sums
    the weight cotangents across devices, as reverse mode does for replicated parameters."""
    leaves = (*weights, x)
    varying = [getattr(jax.typeof(a).mat, "varying", frozenset()) for a in leaves]
    axes = frozenset().union(*varying)
    if not axes:
        return weights, x
    out = [a if v == axes else jax.lax.pcast(a, tuple(sorted(axes - v)), to="varying")
           for a, v in zip(leaves, varying, strict=True)]
    return tuple(out[:-1]), out[-1]


_THIN = 4
"""Widths up to which a product with a thin side (the phase-space layer, M ≤ 4) is written as
element-wise multiply-adds, which XLA fuses, instead of a matmul."""


def _row_contract(a: jax.Array, b: jax.Array) -> jax.Array:
    """``Σ_rows aᵀ b`` over every leading dimension: ``(..., p), (..., q) → (p, q)``."""
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    if b.shape[-1] <= _THIN:
        return jnp.stack([jnp.sum(a * b[:, j:j + 1], axis=0) for j in range(b.shape[-1])], 1)
    if a.shape[-1] <= _THIN:
        return jnp.stack([jnp.sum(a[:, i:i + 1] * b, axis=0) for i in range(a.shape[-1])], 0)
    return jnp.matmul(a.T, b)


def _matmul_t(h: jax.Array, W: jax.Array) -> jax.Array:
    """``h Wᵀ`` for ``h (..., k)``, ``W (n, k)``; a sum of ``k`` outer products when k is thin."""
    if W.shape[-1] <= _THIN:
        return sum(h[..., j:j + 1] * W[:, j] for j in range(W.shape[-1]))
    return jnp.matmul(h, W.T)


def _kernel_forward(weights, x, fn, derivs):
    """Forward pass and input gradient; returns ``value, g_0, (h_1 … h_n), (g_1 … g_{n-1})``."""
    n = len(weights) - 1
    hs = [x]
    for theta in weights[:-1]:
        hs.append(fn(_matmul_t(hs[-1], theta[:, :-1]) + theta[:, -1]))
    value = _affine(weights[-1], hs[-1])[..., 0]
    gs = [None] * n
    g = weights[-1][0, :-1]  # g_n = w_n, never broadcast to the batch
    for layer in reversed(range(n)):
        g = jnp.matmul(g * derivs(hs[layer + 1])[0], weights[layer][:, :-1])
        gs[layer] = g
    return value, g, tuple(hs[1:]), tuple(gs[1:])


def _fused_kernel(activation: Activation):
    """``(weights, x) ↦ (F_θ(x), ∇_x F_θ(x))`` with a hand-derived reverse pass.

    Residuals per call: ``h_l = f(z_l)`` for each hidden layer and ``g_l`` for the inner ones
    (both ``(..., width_l)``). With cotangents ``v̄ (...)`` and ``ḡ_0 (..., in)`` the pass is,
    for ``l = 0 … n-1`` (up the input-gradient chain; ``g_n = w_n``):
    ``d̄_l = ḡ_l W_lᵀ``, ``W̄_l += d_lᵀ ḡ_l``, ``ḡ_{l+1} = d̄_l ⊙ f'(z_l)``,
    ``z̄_l = d̄_l ⊙ g_{l+1} ⊙ f''(z_l)``, then ``w̄_n += Σ ḡ_n``; and for ``l = n-1 … 0`` (down
    the forward chain, ``h̄_n = v̄ w_n``): ``z̄_l += h̄_{l+1} ⊙ f'(z_l)``, ``W̄_l += z̄_lᵀ h_l``,
    ``b̄_l = Σ z̄_l``, ``h̄_l = z̄_l W_l`` (``x̄ = h̄_0``). ``f'`` and ``f''`` come from ``f(z)``
    (``activation.output_derivatives``), so no transcendental is evaluated twice.
    """
    fn, derivs = activation.fn, activation.output_derivatives
    zero = jax.custom_derivatives.SymbolicZero

    @jax.custom_vjp
    def kernel(weights, x):
        value, grad, _, _ = _kernel_forward(weights, x, fn, derivs)
        return value, grad

    def kernel_fwd(weights, x):
        weights = tuple(w.value for w in weights)
        value, grad, hs, gs = _kernel_forward(weights, x.value, fn, derivs)
        return (value, grad), (weights, x.value, hs, gs)

    def kernel_bwd(res, cts):
        weights, x, hs, gs = res
        v_bar, g_bar = cts
        n = len(weights) - 1
        Ws = [theta[:, :-1] for theta in weights]
        w_n = Ws[-1][0]
        h = (x, *hs)
        w_bar = [jnp.zeros_like(W) for W in Ws]
        b_bar = [jnp.zeros(W.shape[0], W.dtype) for W in Ws]
        z_bar = [None] * n
        if not isinstance(g_bar, zero):
            for layer in range(n):
                g_next = w_n if layer == n - 1 else gs[layer]
                fp, fpp = derivs(h[layer + 1])
                d_bar = _matmul_t(g_bar, Ws[layer])
                w_bar[layer] += _row_contract(g_next * fp, g_bar)
                g_bar = d_bar * fp
                z_bar[layer] = d_bar * g_next * fpp
            w_bar[n] += jnp.sum(g_bar.reshape(-1, g_bar.shape[-1]), axis=0)[None]
        h_bar = None
        if not isinstance(v_bar, zero):
            w_bar[n] += _row_contract(v_bar[..., None], h[n])
            b_bar[n] += jnp.sum(v_bar)[None]
            h_bar = v_bar[..., None] * w_n
        for layer in reversed(range(n)):
            zb = z_bar[layer]
            if h_bar is not None:
                hb = h_bar * derivs(h[layer + 1])[0]
                zb = hb if zb is None else zb + hb
            if zb is None:
                continue
            w_bar[layer] += _row_contract(zb, h[layer])
            b_bar[layer] += jnp.sum(zb.reshape(-1, zb.shape[-1]), axis=0)
            h_bar = jnp.matmul(zb, Ws[layer])
        x_bar = jnp.zeros_like(x) if h_bar is None else h_bar
        theta_bar = tuple(jnp.concatenate([W, b[:, None]], axis=1)
                          for W, b in zip(w_bar, b_bar, strict=True))
        return theta_bar, x_bar

    kernel.defvjp(kernel_fwd, kernel_bwd, symbolic_zeros=True)
    return kernel
