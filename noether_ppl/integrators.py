"""Time integrators for ``dx/dt = f(x)`` on batches of phase-space points.

The likelihood mean of Sec. 4.1 is ``x_t`` pushed through ``n`` explicit Euler sub-steps of
``J ∇Ĥ`` over ``Δt`` (the paper uses ``n = 20``, App. C). Alternatives selectable in the model
spec: the explicit midpoint rule (``rk2``), Kutta's third-order method (``rk3``), classical
RK4 (order 4) and the implicit midpoint rule (symplectic; solved by a fixed
number of fixed-point iterations so it stays differentiable and jit-friendly).

Every integrator has the signature ``step(field, x, dt, substeps) -> x_next`` for ``x (..., M)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = [
    "INTEGRATORS", "euler", "rk2", "rk3", "rk4", "implicit_midpoint", "get_integrator", "rollout",
]

Field = Callable[[jax.Array], jax.Array]


def _substeps(step: Callable[[jax.Array, float], jax.Array], x, dt, substeps: int):
    h = dt / substeps
    if substeps == 1:
        return step(x, h)
    return jax.lax.fori_loop(0, substeps, lambda _, y: step(y, h), x)


def euler(field: Field, x: jax.Array, dt, substeps: int = 20) -> jax.Array:
    """``n`` explicit Euler sub-steps ``x ← x + (Δt/n) f(x)`` (the paper's likelihood mean)."""
    return _substeps(lambda y, h: y + h * field(y), x, dt, substeps)


def rk2(field: Field, x: jax.Array, dt, substeps: int = 1) -> jax.Array:
    """Explicit midpoint rule (order 2, two field evaluations per sub-step)."""

    def step(y, h):
        return y + h * field(y + 0.5 * h * field(y))

    return _substeps(step, x, dt, substeps)


def rk3(field: Field, x: jax.Array, dt, substeps: int = 1) -> jax.Array:
    """Kutta's third-order method (three field evaluations per sub-step)."""

    def step(y, h):
        k1 = field(y)
        k2 = field(y + 0.5 * h * k1)
        k3 = field(y + h * (2.0 * k2 - k1))
        return y + (h / 6.0) * (k1 + 4.0 * k2 + k3)

    return _substeps(step, x, dt, substeps)


def rk4(field: Field, x: jax.Array, dt, substeps: int = 1) -> jax.Array:
    """Classical fourth-order Runge–Kutta with ``n`` sub-steps."""

    def step(y, h):
        k1 = field(y)
        k2 = field(y + 0.5 * h * k1)
        k3 = field(y + 0.5 * h * k2)
        k4 = field(y + h * k3)
        return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    return _substeps(step, x, dt, substeps)


def implicit_midpoint(
    field: Field,
    x: jax.Array,
    dt,
    substeps: int = 1,
    iterations: int = 10,
    tol: float | None = None,
    max_iterations: int = 200,
) -> jax.Array:
    """Implicit midpoint ``y' = y + h f((y + y')/2)``: symplectic, and it conserves every
    quadratic first integral of the exact flow.

    Solved by fixed-point sweeps from an explicit Euler predictor (a contraction for
    ``h·Lip(f)/2 < 1``): ``iterations`` sweeps by default, which is reverse-differentiable (the
    training path); with ``tol`` the sweeps go on until ``max|Δy| < tol`` (at most
    ``max_iterations``; for rollouts and evaluation, not differentiable in reverse mode).
    """

    def step(y, h):
        def sweep(y_next):
            return y + h * field(0.5 * (y + y_next))

        y0 = y + h * field(y)
        if tol is None:
            return jax.lax.fori_loop(0, iterations, lambda _, z: sweep(z), y0)

        def cond(state):
            i, _, delta = state
            return (i < max_iterations) & (delta > tol)

        def body(state):
            i, z, _ = state
            z_new = sweep(z)
            return i + 1, z_new, jnp.max(jnp.abs(z_new - z))

        return jax.lax.while_loop(cond, body, (0, y0, jnp.asarray(jnp.inf, y.dtype)))[1]

    return _substeps(step, x, dt, substeps)


INTEGRATORS = {"euler": euler, "rk2": rk2, "rk3": rk3, "rk4": rk4, "midpoint": implicit_midpoint}


def get_integrator(name: str) -> Callable:
    if name not in INTEGRATORS:
        raise ValueError(f"Unknown integrator {name!r}; expected one of {sorted(INTEGRATORS)}.")
    return INTEGRATORS[name]


def rollout(
    field: Field,
    x0: jax.Array,
    dt,
    n_steps: int,
    *,
    integrator: str = "euler",
    substeps: int = 20,
    **integrator_kwargs,
) -> jax.Array:
    """Push ``x0 (..., M)`` forward ``n_steps`` times by ``Δt``: returns ``(n_steps + 1, ..., M)``.

    ``integrator_kwargs`` go to the integrator (e.g. ``tol`` of the implicit midpoint rule).
    """
    step = get_integrator(integrator)

    def body(x, _):
        x_next = step(field, x, dt, substeps, **integrator_kwargs)
        return x_next, x_next

    _, xs = jax.lax.scan(body, x0, None, length=n_steps)
    return jnp.concatenate([x0[None], xs], axis=0)
