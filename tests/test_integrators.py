import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import integrators


def oscillator(x):
    # dq/dt = p, dp/dt = -q: exact solution is a rotation
    return jnp.stack([x[..., 1], -x[..., 0]], axis=-1)


def exact(x0, t):
    c, s = np.cos(t), np.sin(t)
    return np.stack([c * x0[..., 0] + s * x0[..., 1], -s * x0[..., 0] + c * x0[..., 1]], -1)


@pytest.mark.parametrize(
    "name,order", [("euler", 1), ("rk2", 2), ("rk3", 3), ("rk4", 4), ("midpoint", 2)])
def test_convergence_order(name, order):
    x0 = jnp.array([[1.0, 0.3], [-0.2, 0.8]])
    step = integrators.get_integrator(name)
    kw = {"tol": 1e-14} if name == "midpoint" else {}
    ns = np.array([8, 16, 32, 64])
    errs = [float(jnp.max(jnp.abs(step(oscillator, x0, 1.0, int(n), **kw) - exact(x0, 1.0))))
            for n in ns]
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.25, (slope, errs)


def test_midpoint_conserves_quadratic_energy_and_euler_does_not():
    x0 = jnp.array([[1.0, 0.0]])
    xs = integrators.rollout(oscillator, x0, 0.3, 200, integrator="midpoint", substeps=1,
                             tol=1e-14)
    energy = 0.5 * jnp.sum(xs**2, axis=-1)
    assert float(jnp.max(jnp.abs(energy - 0.5))) < 1e-10
    xs = integrators.rollout(oscillator, x0, 0.3, 200, integrator="euler", substeps=1)
    assert float(jnp.max(jnp.abs(0.5 * jnp.sum(xs**2, -1) - 0.5))) > 1.0


def test_rollout_shape_and_first_state():
    x0 = jnp.ones((5, 2))
    xs = integrators.rollout(oscillator, x0, 0.1, 7, integrator="rk4", substeps=2)
    assert xs.shape == (8, 5, 2)
    np.testing.assert_array_equal(xs[0], x0)
    np.testing.assert_allclose(xs[-1], exact(np.ones((5, 2)), 0.7), atol=1e-7)


def test_unknown_integrator():
    with pytest.raises(ValueError, match="leapfrog"):
        integrators.get_integrator("leapfrog")


def test_midpoint_fixed_iterations_are_differentiable():
    x0 = jnp.array([[1.0, 0.3]])
    f = lambda s: jnp.sum(integrators.implicit_midpoint(lambda x: s * oscillator(x), x0, 0.5, 2))
    g = jax.grad(f)(1.0)
    eps = 1e-6
    np.testing.assert_allclose(g, (f(1.0 + eps) - f(1.0 - eps)) / (2 * eps), rtol=1e-6)
