"""One-step predictions of a fitted model: the columns of the paper's tables (Sec. 5,
Tables 1–3) and the predictive distribution under posterior samples (Sec. 4.1).

- :func:`one_step_mse`: one-Δt error with the posterior-mean weights (the "MSE" columns).
- :func:`elbo_terms`: NLL/N, KL/N and −ELBO/N of the full-data ELBO (Sec. 4.3, App. A.1).
- :func:`predictive_metrics`: the one-step predictive distribution under q(θ) (Sec. 4.1).

Also the checks of the arguments and the chunking (:data:`DEFAULT_CHUNK`) that
:mod:`~noether_ppl.analysis.rollouts` and :mod:`~noether_ppl.analysis.evaluate` share.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Trajectories, check_key
from ..inference.evidence import DEFAULT_REPEATS, elbo_estimate

__all__ = ["DEFAULT_CHUNK", "one_step_mse", "elbo_terms", "PredictiveMetrics",
           "predictive_metrics"]

DEFAULT_CHUNK = 128
"""Points per compiled chunk: every data set runs through the same compiled programs, chunk by
chunk (the last chunk padded), which bounds memory and avoids a compile per data-set size. The
results do not depend on it. 128 (was 512): a small training set is padded to one chunk, and
the 28 training pairs of ``sho-cpu`` cost the posterior-draw predictions of 512 points; with 128
the predictive metrics of ``sho-cpu``'s training set took 0.7 s instead of 6 s and those of its
2000 test pairs 16 s instead of 22 s (8 draws, 2 CPU cores; smaller chunks stay in cache)."""


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


def _pairs(data: Trajectories, dtype) -> tuple[jax.Array, jax.Array]:
    x_t, x_next = data.pairs()
    return jnp.asarray(x_t, dtype), jnp.asarray(x_next, dtype)


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
    check_key(key)
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
    check_key(key)
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


def predictive_metrics(result, data: Trajectories, *, key: jax.Array, num_samples: int = 32,
                       noise_variance: float | None = None,
                       chunk: int = DEFAULT_CHUNK) -> PredictiveMetrics:
    """One-step predictive quality of ``data`` under ``num_samples`` posterior draws (see
    :class:`PredictiveMetrics`). ``noise_variance`` (σ² of the Gaussian likelihood, Sec. 4.1)
    defaults to the model's fixed value; a model with ``noise_variance="empirical"`` needs it
    given (e.g. the training MSE, App. D.2) so that test targets never set their own σ²."""
    _check_result(result)
    _check_data(data, result, "data")
    check_key(key)
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
