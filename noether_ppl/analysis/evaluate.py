"""How good are the predictions of a fitted model: the columns of the paper's tables (Sec. 5,
Tables 1–3), the same under posterior samples, and long rollouts against ground truth.

- :func:`one_step_mse`: one-Δt error with the posterior-mean weights (the "MSE" columns).
- :func:`elbo_terms`: NLL/N, KL/N and −ELBO/N of the full-data ELBO (Sec. 4.3, App. A.1).
- :func:`predictive_metrics`: the one-step predictive distribution under q(θ) (Sec. 4.1).
- :func:`rollout_metrics`: many-Δt rollouts with error growth and the drift of the energy and of
  every ground-truth and every model conserved quantity (Sec. 2.3: ``{C, H} = 0`` ⇔ conserved).
- :func:`evaluate`: all of it for a training set and named test sets ("test", "moved",
  "wider", Table 3).

Every computation is a jitted, vectorised JAX program over fixed-size chunks of points (the
last chunk padded): memory stays bounded and one compiled program per model serves every data
set. Results are dataclasses with ``to_dict()`` for JSON.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Trajectories, _check_key
from ..geometry import quadratic_from_generator, quadratic_observable
from ..inference.evidence import DEFAULT_REPEATS, elbo_estimate
from ..integrators import rollout
from ..precision import float64 as _x64

__all__ = [
    "one_step_mse",
    "elbo_terms",
    "PredictiveMetrics",
    "predictive_metrics",
    "RolloutMetrics",
    "rollout_metrics",
    "model_conserved_quantities",
    "Evaluation",
    "evaluate",
]

DEFAULT_CHUNK = 512
"""Points per compiled chunk: every data set runs through the same compiled programs, chunk by
chunk (the last chunk padded), which bounds memory and avoids a compile per data-set size."""


# ----------------------------------------------------------------------------- validation
def _check_result(result, name: str = "result") -> None:
    needed = ("model", "guide", "params", "weights_mean", "sample_weights", "generators")
    if not all(hasattr(result, a) for a in needed):
        raise ValueError(
            f"Expected `{name}` to be a FitResult (from noether_ppl.inference.fit), got "
            f"{type(result).__name__}."
        )


def _check_data(data, result, name: str) -> Trajectories:
    if not isinstance(data, Trajectories):
        raise ValueError(f"Expected `{name}` to be a Trajectories, got {type(data).__name__}.")
    if data.phase_dim != result.model.phase_dim:
        raise ValueError(
            f"`{name}` has phase dimension {data.phase_dim} but the model has "
            f"phase_dim={result.model.phase_dim}."
        )
    return data


def _check_count(name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive integer, got {value!r}.")
    return int(value)


def _check_system(system, result):
    if system is None:
        return None
    if not (hasattr(system, "integrate") and hasattr(system, "hamiltonian")
            and hasattr(system, "phase_dim")):
        raise ValueError(
            f"Expected `system` to be a HamiltonianSystem (noether_ppl.systems), got "
            f"{type(system).__name__}."
        )
    if system.phase_dim != result.model.phase_dim:
        raise ValueError(
            f"`system` has phase_dim={system.phase_dim} but the model has "
            f"phase_dim={result.model.phase_dim}."
        )
    return system


# ----------------------------------------------------------------------------- kernels
def _over_chunks(fn, x, chunk: int, axis: int = 0) -> np.ndarray:
    """``fn`` (a compiled kernel on ``(chunk, M)`` points) over ``x (n, M)`` chunk by chunk;
    outputs are joined along ``axis`` (the points axis of ``fn``'s output) as float64.

    Every chunk has the same shape (the last is padded with copies of the first point and the
    padded rows dropped), so one compiled program serves every data set.
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    n_chunks = max(1, -(-n // chunk))
    pad = n_chunks * chunk - n
    if pad:
        x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])], axis=0)
    outs = [np.asarray(fn(x[i * chunk:(i + 1) * chunk]), np.float64) for i in range(n_chunks)]
    return np.take(np.concatenate(outs, axis=axis), np.arange(n), axis=axis)


@functools.partial(jax.jit, static_argnames=("model",))
def _hamiltonian_kernel(model, weights, Phis, x):
    """``Ĥ(x) = (1/S) Σ_s F_θ(Φ_s x)`` (Eq. 14) at points ``x (B, M)``."""
    return model.hamiltonian(weights, Phis, x)


@functools.partial(jax.jit, static_argnames=("model", "guide", "num_samples"))
def _sample_predict_kernel(model, guide, params, key, x, dt, num_samples):
    """``(num_samples, B, M)`` likelihood means (Sec. 4.1) of ``θ_s ~ q``, each draw with its own
    S group elements (as in the ELBO's estimate, App. A.1 Eq. 13); the same ``key`` gives the
    same draws for every chunk of points."""
    k_w, k_sym = jax.random.split(key)
    draws = guide.sample_posterior(k_w, params, sample_shape=(num_samples,))
    generators = model.generators_from_params(params)

    def one(args):
        theta, k = args
        # Guide draws come in the default float width; the model computes in its own dtype.
        weights = [jnp.asarray(theta[n], model.dtype) for n in model.site_names]
        return model.predict(weights, model.group_elements(k, generators), x, dt)

    return jax.lax.map(one, (draws, jax.random.split(k_sym, num_samples)))


@functools.partial(jax.jit, static_argnames=("model", "n_steps"))
def _rollout_kernel(model, weights, Phis, x0, dt, n_steps):
    """``(n, n_steps + 1, M)``: the model's integrator over ``n_steps`` Δt (Sec. 4.1)."""
    field = model.vector_field(weights, Phis)
    xs = rollout(field, x0, dt, n_steps, integrator=model.spec.integrator,
                 substeps=model.spec.substeps)
    return jnp.swapaxes(xs, 0, 1)


def _pairs(data: Trajectories, dtype) -> tuple[jax.Array, jax.Array]:
    x_t, x_next = data.pairs()
    return jnp.asarray(x_t, dtype), jnp.asarray(x_next, dtype)


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


# ----------------------------------------------------------------------------- one step
def one_step_mse(result, data: Trajectories, *, key: jax.Array, weights=None,
                 chunk: int = DEFAULT_CHUNK) -> float:
    """Mean squared one-Δt error over all pairs and coordinates of ``data`` with the
    posterior-mean weights (the "MSE" columns of Tables 1–3), or with ``weights`` if given.

    The prediction is the likelihood mean of Sec. 4.1 (``substeps`` integrator steps of
    ``J∇Ĥ`` over the data's Δt); one set of S group elements is drawn from ``key``
    (``result.group_elements(key)``) and shared by all pairs.
    """
    _check_result(result)
    _check_data(data, result, "data")
    _check_key(key)
    chunk = _check_count("chunk", chunk)
    model = result.model
    x_t, x_next = _pairs(data, model.dtype)
    weights = result.weights_mean() if weights is None else weights
    weights = [jnp.asarray(w, model.dtype) for w in weights]
    Phis = result.group_elements(key)
    pred = _over_chunks(lambda xb: model.predict(weights, Phis, xb, data.dt), x_t, chunk)
    return float(np.mean((pred - np.asarray(x_next, np.float64)) ** 2))


def elbo_terms(result, data: Trajectories, *, key: jax.Array,
               num_repeats: int = DEFAULT_REPEATS, chunk: int = 8192) -> dict:
    """NLL/N, KL/N and −ELBO/N (Sec. 4.3, App. A.1 Eq. 13; the tables' columns) of ``result``
    on all pairs of ``data``, averaged over ``num_repeats`` independent Monte-Carlo
    evaluations (weights and symmetry samples), with the standard error of −ELBO/N
    (``neg_elbo_se_per_n``; None for one repeat). See
    :func:`~noether_ppl.inference.elbo_estimate`.

    For more than ``chunk`` pairs the expected NLL is summed over chunks (each chunk an
    independent draw, so the sum stays an unbiased estimate of the full-data NLL); the KL does
    not depend on the data. With ``noise_variance="empirical"`` (App. D.2) σ² depends on the
    whole data set, so the pairs are never chunked.
    """
    _check_result(result)
    _check_data(data, result, "data")
    _check_key(key)
    num_repeats = _check_count("num_repeats", num_repeats)
    chunk = _check_count("chunk", chunk)
    est = elbo_estimate(result, data, key=key, num_repeats=num_repeats, chunk=chunk)
    return {"nll_per_n": est.nll_per_n, "kl_per_n": est.kl_per_n,
            "neg_elbo_per_n": est.neg_elbo_per_n,
            "neg_elbo_se_per_n": est.se_per_n if num_repeats > 1 else None}


# ----------------------------------------------------------------------------- posterior samples
@dataclasses.dataclass(frozen=True)
class PredictiveMetrics:
    """One-step predictions of a data set under posterior samples ``θ_s ~ q(θ)`` (Sec. 4.1).

    Attributes
    ----------
    mse : one-step MSE with the posterior-mean weights (the tables' column).
    sample_mse : ``E_q[MSE(θ)]``, the MSE averaged over the draws.
    predictive_mean_mse : MSE of the predictive mean ``(1/S) Σ_s f_{θ_s}(x)``.
    predictive_std : RMS over pairs and coordinates of the standard deviation of the
        predictions across draws (epistemic spread; the likelihood adds ``noise_variance``).
    lpd_per_n : log pointwise predictive density per pair,
        ``(1/N) Σ_i log (1/S) Σ_s N(x_i' | f_{θ_s}(x_i), σ² I)``.
    noise_variance : σ² used in ``lpd_per_n``.
    num_samples, n_pairs : draws and pairs.
    """

    mse: float
    sample_mse: float
    predictive_mean_mse: float
    predictive_std: float
    lpd_per_n: float
    noise_variance: float
    num_samples: int
    n_pairs: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _train_noise_variance(result, train: Trajectories, key) -> float:
    """σ²: the fixed value, or (App. D.2, ``"empirical"``) the posterior-mean MSE on ``train``."""
    if result.spec.noise_variance != "empirical":
        return float(result.spec.noise_variance)
    return one_step_mse(result, train, key=key)


def predictive_metrics(result, data: Trajectories, *, key: jax.Array, num_samples: int = 32,
                       noise_variance: float | None = None,
                       chunk: int = DEFAULT_CHUNK) -> PredictiveMetrics:
    """One-step predictive quality of ``data`` under ``num_samples`` posterior draws (see
    :class:`PredictiveMetrics`). ``noise_variance`` (σ² of the Gaussian likelihood, Sec. 4.1)
    defaults to the model's fixed value; a model with ``noise_variance="empirical"`` needs it
    given (e.g. the training MSE, App. D.2) so that test targets never set their own σ²."""
    _check_result(result)
    _check_data(data, result, "data")
    _check_key(key)
    num_samples = _check_count("num_samples", num_samples)
    chunk = _check_count("chunk", chunk)
    if noise_variance is None:
        if result.spec.noise_variance == "empirical":
            raise ValueError(
                "The model has noise_variance='empirical': pass `noise_variance=` (e.g. the "
                "training-set MSE, App. D.2) to score held-out data."
            )
        noise_variance = float(result.spec.noise_variance)
    if not (isinstance(noise_variance, (int, float, np.floating)) and not isinstance(
            noise_variance, bool) and 0 < noise_variance < math.inf):
        raise ValueError(f"Expected `noise_variance` > 0 and finite, got {noise_variance!r}.")
    k_mean, k_samples = jax.random.split(key)
    x_t, x_next = _pairs(data, result.model.dtype)
    target = np.asarray(x_next, np.float64)
    mse = one_step_mse(result, data, key=k_mean, chunk=chunk)
    model = result.model
    preds = _over_chunks(
        lambda xb: _sample_predict_kernel(model, result.guide, result.params, k_samples, xb,
                                          data.dt, num_samples), x_t, chunk, axis=1)
    sq = (preds - target[None]) ** 2
    mean_pred = preds.mean(axis=0)
    M = target.shape[-1]
    loglik = (-0.5 * M * math.log(2 * math.pi * noise_variance)
              - 0.5 * np.sum(sq, axis=-1) / noise_variance)          # (S, N)
    top = loglik.max(axis=0)
    lpd = top + np.log(np.mean(np.exp(loglik - top), axis=0))
    return PredictiveMetrics(
        mse=mse,
        sample_mse=float(np.mean(sq)),
        predictive_mean_mse=float(np.mean((mean_pred - target) ** 2)),
        predictive_std=float(np.sqrt(np.mean(preds.var(axis=0)))),
        lpd_per_n=float(np.mean(lpd)),
        noise_variance=float(noise_variance),
        num_samples=num_samples,
        n_pairs=int(target.shape[0]),
    )


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
    _check_key(key)
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


# ----------------------------------------------------------------------------- everything
@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One row of a paper-style table (Tables 1–3) and what lies behind it.

    Attributes
    ----------
    variant : ``"vanilla"``, ``"learned"`` or ``"oracle"``.
    train_mse : one-step MSE on the training pairs, posterior-mean weights.
    nll_per_n, kl_per_n, neg_elbo_per_n : the full-data ELBO terms per pair on the training set.
    test_mse : ``{set name: one-step MSE}`` for every test set.
    predictive : ``{"train" | set name: PredictiveMetrics}`` under posterior samples.
    rollouts : ``{set name: RolloutMetrics}``.
    neg_elbo_se_per_n : Monte-Carlo standard error of ``neg_elbo_per_n`` (None for one repeat).
    """

    variant: str
    train_mse: float
    nll_per_n: float
    kl_per_n: float
    neg_elbo_per_n: float
    test_mse: dict
    predictive: dict = dataclasses.field(default_factory=dict)
    rollouts: dict = dataclasses.field(default_factory=dict)
    neg_elbo_se_per_n: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready: the table columns at the top level, the rest nested."""
        return {
            "variant": self.variant,
            "train_mse": self.train_mse,
            "nll_per_n": self.nll_per_n,
            "kl_per_n": self.kl_per_n,
            "neg_elbo_per_n": self.neg_elbo_per_n,
            "neg_elbo_se_per_n": self.neg_elbo_se_per_n,
            "test_mse": dict(self.test_mse),
            "predictive": {k: v.to_dict() for k, v in self.predictive.items()},
            "rollouts": {k: v.to_dict() for k, v in self.rollouts.items()},
        }

    def __str__(self) -> str:
        lines = [
            f"Evaluation of the {self.variant} model",
            f"  train: MSE {self.train_mse:.3e}   NLL/N {self.nll_per_n:.4g}   "
            f"KL/N {self.kl_per_n:.4g}   -ELBO/N {self.neg_elbo_per_n:.4g}"
            + (f" ± {self.neg_elbo_se_per_n:.2g}" if self.neg_elbo_se_per_n is not None else ""),
        ]
        for name, p in self.predictive.items():
            lines.append(
                f"  {name:>6} one-step: MSE {p.mse:.3e} (mean weights)  {p.sample_mse:.3e} "
                f"(E_q)  {p.predictive_mean_mse:.3e} (predictive mean)  spread "
                f"{p.predictive_std:.3e}  lpd/N {p.lpd_per_n:.4g}"
            )
        for name, r in self.rollouts.items():
            parts = [f"  {name:>6} rollout ({r.n_trajectories} x {r.n_steps} steps vs "
                     f"{r.reference}): final MSE {r.mse[-1]:.3e}"]
            if r.energy_drift is not None:
                parts.append(f"|dH| {r.energy_drift[-1]:.3e}")
            if r.true_conserved_drift is not None and r.true_conserved_drift.shape[1]:
                parts.append(f"max |dC_true| {np.max(r.true_conserved_drift[-1]):.3e}")
            if r.conserved_drift.shape[1]:
                parts.append(f"max |dC_model| {np.max(r.conserved_drift[-1]):.3e}")
            lines.append("  ".join(parts))
        if not self.predictive:
            lines += [f"  {n:>6} one-step MSE {v:.3e}" for n, v in self.test_mse.items()]
        return "\n".join(lines)


def evaluate(
    result,
    train: Trajectories,
    tests: Mapping[str, Trajectories] | Trajectories | None = None,
    *,
    key: jax.Array,
    system=None,
    num_samples: int = 32,
    num_repeats: int = DEFAULT_REPEATS,
    rollout_steps: int | None = None,
    rollout_trajectories: int | None = None,
    rollouts: bool = True,
    chunk: int = DEFAULT_CHUNK,
) -> Evaluation:
    """Everything the paper's tables report (Sec. 5, Tables 1–3) and more, for one fit.

    Parameters
    ----------
    result : a :class:`~noether_ppl.inference.FitResult`.
    train : the training :class:`~noether_ppl.Trajectories` (train MSE and ELBO terms).
    tests : named test sets, e.g. ``{"test": ..., "moved": ..., "wider": ...}`` (a single
        ``Trajectories`` is named ``"test"``); the name ``"train"`` is reserved.
    key : PRNG key; split into independent keys for every estimate.
    system : the :class:`~noether_ppl.systems.HamiltonianSystem` that generated the data:
        accurate ground truth for the rollouts, the true energy and its conserved quantities.
    num_samples : posterior draws for :class:`PredictiveMetrics` (0 draws are not allowed).
    num_repeats : Monte-Carlo repeats of the ELBO terms.
    rollout_steps : Δt steps per rollout; default 100 with a ``system``, else each test set's
        own length (without a system no longer horizon is possible).
    rollout_trajectories : initial conditions per test set (default all).
    rollouts : set False to skip the rollouts.
    """
    _check_result(result)
    _check_data(train, result, "train")
    _check_key(key)
    if isinstance(tests, Trajectories):
        tests = {"test": tests}
    tests = {} if tests is None else tests
    if not isinstance(tests, Mapping):
        raise ValueError(
            f"Expected `tests` to be a mapping of names to Trajectories (or one Trajectories), "
            f"got {type(tests).__name__}."
        )
    for name, t in tests.items():
        if not isinstance(name, str) or not name or name == "train":
            raise ValueError(f"Expected test-set names to be non-empty strings other than "
                             f"'train', got {name!r}.")
        _check_data(t, result, f"tests[{name!r}]")
    system = _check_system(system, result)
    num_samples = _check_count("num_samples", num_samples)
    num_repeats = _check_count("num_repeats", num_repeats)
    _check_count("rollout_steps", rollout_steps, allow_none=True)
    _check_count("rollout_trajectories", rollout_trajectories, allow_none=True)
    chunk = _check_count("chunk", chunk)
    if rollouts and system is None and rollout_steps is not None:
        short = [n for n, t in tests.items() if rollout_steps > t.n_steps]
        if short:
            raise ValueError(
                f"`rollout_steps`={rollout_steps} is longer than test set(s) {short}: pass "
                f"`system=` for an accurate ground truth over longer horizons."
            )
    if rollouts and rollout_trajectories is not None:
        few = [n for n, t in tests.items() if rollout_trajectories > t.n_trajectories]
        if few:
            raise ValueError(
                f"`rollout_trajectories`={rollout_trajectories} exceeds the trajectories of "
                f"test set(s) {few}."
            )

    k_elbo, k_noise, k_pred, k_roll = jax.random.split(key, 4)
    sigma2 = _train_noise_variance(result, train, k_noise)
    sets = {"train": train, **tests}
    predictive = {
        name: predictive_metrics(result, data, key=jax.random.fold_in(k_pred, i),
                                 num_samples=num_samples, noise_variance=sigma2, chunk=chunk)
        for i, (name, data) in enumerate(sets.items())
    }
    rolls = {}
    if rollouts:
        steps = rollout_steps if rollout_steps is not None else (100 if system else None)
        rolls = {
            name: rollout_metrics(result, data, key=jax.random.fold_in(k_roll, i),
                                  system=system, n_steps=steps,
                                  n_trajectories=rollout_trajectories, chunk=chunk)
            for i, (name, data) in enumerate(tests.items())
        }
    return Evaluation(
        variant=result.variant,
        train_mse=predictive["train"].mse,
        **elbo_terms(result, train, key=k_elbo, num_repeats=num_repeats),
        test_mse={name: predictive[name].mse for name in tests},
        predictive=predictive,
        rollouts=rolls,
    )
