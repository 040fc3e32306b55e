"""How good are the predictions of a fitted model: the columns of the paper's tables (Sec. 5,
Tables 1–3), the same under posterior samples, and long rollouts against ground truth.

- :func:`one_step_mse`: one-Δt error with the posterior-mean weights (the "MSE" columns).
- :func:`elbo_terms`: NLL/N, KL/N and −ELBO/N of the full-data ELBO (Sec. 4.3, App. A.1).
- :func:`predictive_metrics`: the one-step predictive distribution under q(θ) (Sec. 4.1).
- :func:`rollout_metrics`: many-Δt rollouts with error growth and the drift of the energy and of
  every ground-truth and every model conserved quantity (Sec. 2.3: ``{C, H} = 0`` ⇔ conserved).
- :func:`evaluate`: all of it for a training set and named test sets ("test", "moved",
  "wider", Table 3).

The one-step metrics are in :mod:`~noether_ppl.analysis.predictive`, the rollouts in
:mod:`~noether_ppl.analysis.rollouts`; this module runs them all (:func:`evaluate`).

Every computation is a jitted, vectorised JAX program over fixed-size chunks of points (the
last chunk padded): memory stays bounded and one compiled program per model serves every data
set. Results are dataclasses with ``to_dict()`` for JSON.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import jax
import numpy as np

from ..data import Trajectories, check_key
from ..inference.evidence import DEFAULT_REPEATS
from .predictive import (
    DEFAULT_CHUNK,
    _check_count,
    _check_data,
    _check_result,
    _check_system,
    elbo_terms,
    one_step_mse,
    predictive_metrics,
)
from .rollouts import rollout_metrics

__all__ = ["Evaluation", "evaluate"]


def _train_noise_variance(result, train: Trajectories, key) -> float:
    """σ²: the fixed value, or (App. D.2, ``"empirical"``) the posterior-mean MSE on ``train``."""
    if result.spec.noise_variance != "empirical":
        return float(result.spec.noise_variance)
    return one_step_mse(result, train, key=key)


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
    timings: dict | None = None,
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
    chunk : points per compiled chunk (:data:`~noether_ppl.analysis.predictive.DEFAULT_CHUNK`);
        the results do not depend on it.
    timings : a dict to which the seconds of the rollouts are added (``"rollouts_s"``).
    """
    _check_result(result)
    _check_data(train, result, "train")
    check_key(key)
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
    start = time.perf_counter()
    if rollouts:
        steps = rollout_steps if rollout_steps is not None else (100 if system else None)
        rolls = {
            name: rollout_metrics(result, data, key=jax.random.fold_in(k_roll, i),
                                  system=system, n_steps=steps,
                                  n_trajectories=rollout_trajectories, chunk=chunk)
            for i, (name, data) in enumerate(tests.items())
        }
    if timings is not None:
        timings["rollouts_s"] = timings.get("rollouts_s", 0.0) + time.perf_counter() - start
    return Evaluation(
        variant=result.variant,
        train_mse=predictive["train"].mse,
        **elbo_terms(result, train, key=k_elbo, num_repeats=num_repeats),
        test_mse={name: predictive[name].mse for name in tests},
        predictive=predictive,
        rollouts=rolls,
    )
