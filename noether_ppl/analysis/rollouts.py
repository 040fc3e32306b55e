"""Long rollouts of a fitted model against ground truth: error growth and the drift of the
energy and of every ground-truth and every model conserved quantity (Sec. 2.3:
``{C, H} = 0`` ⇔ conserved), as :class:`RolloutMetrics`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Trajectories, check_key
from ..geometry import quadratic_from_generator, quadratic_observable
from ..integrators import rollout
from ..precision import float64 as _x64
from .predictive import (
    DEFAULT_CHUNK,
    _check_count,
    _check_data,
    _check_result,
    _check_system,
    _over_chunks,
)

__all__ = ["RolloutMetrics", "rollout_metrics", "model_conserved_quantities",
           "model_hamiltonian"]


@functools.partial(jax.jit, static_argnames=("model",))
def _hamiltonian_kernel(model, weights, Phis, x):
    """``Ĥ(x) = (1/S) Σ_s F_θ(Φ_s x)`` (Eq. 14) at points ``x (B, M)``."""
    return model.hamiltonian(weights, Phis, x)


@functools.partial(jax.jit, static_argnames=("model", "n_steps"))
def _rollout_kernel(model, weights, Phis, x0, dt, n_steps):
    """``(n, n_steps + 1, M)``: the model's integrator over ``n_steps`` Δt (Sec. 4.1)."""
    field = model.vector_field(weights, Phis)
    xs = rollout(field, x0, dt, n_steps, integrator=model.spec.integrator,
                 substeps=model.spec.substeps)
    return jnp.swapaxes(xs, 0, 1)


def model_hamiltonian(result, x, *, key: jax.Array, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """``Ĥ(x)`` (Eq. 14) with the posterior-mean weights and one set of S group elements drawn
    from ``key``: ``result.hamiltonian(x, key=key)`` for ``x (n, M)`` → ``(n,)`` float64, run
    as one compiled program per model over chunks of ``chunk`` points (the program of the
    rollouts' own-energy drift, so figures on any grid compile nothing new)."""
    _check_result(result)
    model = result.model
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.phase_dim:
        raise ValueError(f"Expected `x` of shape (n, {model.phase_dim}), got {x.shape}.")
    weights = result.weights_mean()
    Phis = result.group_elements(key)
    return _over_chunks(lambda xb: _hamiltonian_kernel(model, weights, Phis, xb),
                        jnp.asarray(x, model.dtype), _check_count("chunk", chunk))


def model_conserved_quantities(result, x) -> np.ndarray:
    """Values ``C_k(x) = ½ xᵀA_k x + b_kᵀx`` (Sec. 3.1) of the model's conserved quantities:
    the learned C_η, or those of the fixed (oracle) generators, recovered from the generators
    ``G_k = [[JA_k, Jb_k], [0, 0]]`` (Eq. 4). ``x (..., M)`` → ``(..., K)`` float64
    (``K = 0`` for the plain HNN)."""
    _check_result(result)
    x = np.asarray(x, dtype=np.float64)
    M = result.model.phase_dim
    if x.ndim < 1 or x.shape[-1] != M:
        raise ValueError(f"Expected `x` of shape (..., {M}), got {x.shape}.")
    G = result.generators()
    if G.shape[0] == 0:
        return np.zeros(x.shape[:-1] + (0,))
    with _x64():
        A, b = quadratic_from_generator(jnp.asarray(G, jnp.float64))
        values = quadratic_observable(A, b, jnp.asarray(x)[..., None, :])
        return np.asarray(values, dtype=np.float64)


# ----------------------------------------------------------------------------- rollouts
@dataclasses.dataclass(frozen=True)
class RolloutMetrics:
    """Rollouts of the fitted dynamics (posterior-mean weights) from the initial conditions of
    a data set, against ground truth.

    Time series have ``n_steps + 1`` entries (``times``); every "drift" is the mean over
    trajectories of ``|Q(x_t) − Q(x_0)|``: 0 for an exactly conserved ``Q`` (Sec. 2.3).

    Attributes
    ----------
    times : ``(T+1,)`` ``0, Δt, …, TΔt``.
    mse : ``(T+1,)`` squared error to ground truth, mean over trajectories and coordinates.
    energy_drift : ``(T+1,)`` drift of the true ``H`` along the model's rollout (None without a
        system).
    model_energy_drift : ``(T+1,)`` drift of the model's own ``Ĥ`` along its rollout
        (integrator error).
    true_conserved_drift : ``(T+1, L)`` drift of the ground-truth conserved quantities along
        the model's rollout (None when no system with known generators is given).
    true_conserved_names : their names.
    conserved_drift : ``(T+1, K)`` drift of the model's conserved quantities (learned C_η or
        the oracle's) along the model's rollout.
    conserved_drift_truth : ``(T+1, K)`` the same along the ground truth: near 0 when a learned
        C_k is a real conserved quantity of the system.
    conserved_names : ``C_0 … C_{K-1}``.
    reference : ``"system"`` (accurate float64 integration) or ``"data"`` (the data's own
        trajectories).
    model_states, true_states : ``(n, T+1, M)`` the rollouts and the ground truth (not in
        ``to_dict``).
    """

    times: np.ndarray
    mse: np.ndarray
    energy_drift: np.ndarray | None
    model_energy_drift: np.ndarray
    true_conserved_drift: np.ndarray | None
    true_conserved_names: list[str] | None
    conserved_drift: np.ndarray
    conserved_drift_truth: np.ndarray
    conserved_names: list[str]
    reference: str
    model_states: np.ndarray
    true_states: np.ndarray

    @property
    def n_trajectories(self) -> int:
        return int(self.model_states.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.times.shape[0] - 1)

    def to_dict(self) -> dict:
        def series(a):
            return None if a is None else np.asarray(a, np.float64).tolist()

        def per_name(a, names):
            if a is None:
                return None
            return {n: np.asarray(a[:, i], np.float64).tolist() for i, n in enumerate(names)}

        return {
            "reference": self.reference,
            "n_trajectories": self.n_trajectories,
            "n_steps": self.n_steps,
            "times": series(self.times),
            "mse": series(self.mse),
            "final_mse": float(self.mse[-1]),
            "energy_drift": series(self.energy_drift),
            "model_energy_drift": series(self.model_energy_drift),
            "true_conserved_drift": per_name(self.true_conserved_drift,
                                             self.true_conserved_names),
            "conserved_drift": per_name(self.conserved_drift, self.conserved_names),
            "conserved_drift_truth": per_name(self.conserved_drift_truth, self.conserved_names),
        }


def _mean_abs_drift(values: np.ndarray) -> np.ndarray:
    """``values (n, T+1, ...)`` → ``(T+1, ...)`` mean over trajectories of ``|v_t − v_0|``."""
    return np.mean(np.abs(values - values[:, :1]), axis=0)


def rollout_metrics(result, data: Trajectories, *, key: jax.Array, system=None,
                    n_steps: int | None = None, n_trajectories: int | None = None,
                    chunk: int = DEFAULT_CHUNK) -> RolloutMetrics:
    """Roll the fitted dynamics (posterior-mean weights; the model's integrator and sub-steps,
    Sec. 4.1) out for ``n_steps`` Δt from the initial states of the first ``n_trajectories``
    trajectories of ``data``, and compare with ground truth.

    Ground truth is ``system.integrate`` (accurate float64) when ``system`` is given; otherwise
    the data's own trajectories, which limits ``n_steps`` to ``data.n_steps``. One set of S
    group elements is drawn from ``key`` and used for the whole rollout.
    """
    _check_result(result)
    _check_data(data, result, "data")
    check_key(key)
    system = _check_system(system, result)
    chunk = _check_count("chunk", chunk)
    n_traj = _check_count("n_trajectories", n_trajectories, allow_none=True)
    if n_traj is None:
        n_traj = data.n_trajectories
    elif n_traj > data.n_trajectories:
        raise ValueError(
            f"Expected `n_trajectories` <= {data.n_trajectories} (the trajectories in `data`), "
            f"got {n_trajectories}."
        )
    T = _check_count("n_steps", n_steps, allow_none=True)
    if T is None:
        T = data.n_steps
    if system is None and T > data.n_steps:
        raise ValueError(
            f"`n_steps`={T} is longer than the data's {data.n_steps} steps: pass `system=` for "
            f"an accurate ground truth over longer horizons."
        )
    model = result.model
    dt = data.dt
    x0 = np.asarray(data.states[:n_traj, 0], np.float64)
    if system is not None:
        truth = system.integrate(x0, T, dt).states
        reference = "system"
    else:
        truth = np.asarray(data.states[:n_traj, : T + 1], np.float64)
        reference = "data"

    weights = result.weights_mean()
    Phis = result.group_elements(key)
    M = model.phase_dim
    pred = np.asarray(_rollout_kernel(model, weights, Phis, jnp.asarray(x0, model.dtype), dt, T),
                      np.float64)
    own_energy = _over_chunks(lambda xb: _hamiltonian_kernel(model, weights, Phis, xb),
                              jnp.asarray(pred.reshape(-1, M), model.dtype), chunk)
    own_energy = own_energy.reshape(n_traj, T + 1)

    energy_drift = true_drift = true_names = None
    if system is not None:
        H = np.asarray(system.hamiltonian(pred), np.float64)
        H0 = np.asarray(system.hamiltonian(truth[:, :1]), np.float64)
        energy_drift = np.mean(np.abs(H - H0), axis=0)
        if getattr(system, "has_known_generators", False):
            C = np.asarray(system.conserved_quantities(pred), np.float64)
            C0 = np.asarray(system.conserved_quantities(truth[:, :1]), np.float64)
            true_drift = np.mean(np.abs(C - C0), axis=0)
            true_names = list(system.generator_names())
    K = result.generators().shape[0]
    names = [f"C_{k}" for k in range(K)]
    return RolloutMetrics(
        times=np.arange(T + 1, dtype=np.float64) * dt,
        mse=np.mean((pred - truth) ** 2, axis=(0, 2)),
        energy_drift=energy_drift,
        model_energy_drift=_mean_abs_drift(own_energy),
        true_conserved_drift=true_drift,
        true_conserved_names=true_names,
        conserved_drift=_mean_abs_drift(model_conserved_quantities(result, pred)),
        conserved_drift_truth=_mean_abs_drift(model_conserved_quantities(result, truth)),
        conserved_names=names,
        reference=reference,
        model_states=pred,
        true_states=truth,
    )
