"""Posterior draws of a fitted model and the PSIS check of the variational posterior.

The draws ``θ_s ~ q(θ)`` (the matrix-normal posterior, App. D.1) with their exact ``log q(θ_s)``,
and the model itself run at each draw (``numpyro.infer.util.log_density``: ``log p(X, θ_s)``
and the model's trace, each draw with its own S symmetry times, Eq. 14), serve both
:func:`vi_diagnostics` here and :func:`~noether_ppl.inference.to_arviz`: the same ``key``
draws the same ``θ_s`` and the same symmetry times in both.

``vi_diagnostics``: Pareto k̂ of the importance ratios ``log w = log p(X, θ) − log q(θ)``
(PSIS; Yao et al., 2018): k̂ < 0.7 says the variational posterior is usable as an importance
proposal for the true posterior.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.infer.util import log_density

from ..data import Trajectories, check_key

__all__ = ["VIDiagnostics", "vi_diagnostics", "psis_khat", "MIN_PSIS_SAMPLES"]

MIN_PSIS_SAMPLES = 25
"""Fewest importance ratios for a Pareto tail fit (PSIS fits the largest 20%, at least 5)."""


# ----------------------------------------------------------------------------- draws
def _check_inputs(result, data, num_samples, num_chains=1):
    if not all(hasattr(result, a) for a in ("model", "guide", "params", "prior_variances")):
        raise ValueError(
            f"Expected `result` to be a FitResult (from noether_ppl.inference.fit), got "
            f"{type(result).__name__}."
        )
    if not isinstance(data, Trajectories):
        raise ValueError(f"Expected `data` to be a Trajectories, got {type(data).__name__}.")
    if data.phase_dim != result.model.phase_dim:
        raise ValueError(f"`data` has phase dimension {data.phase_dim} but the model has "
                         f"phase_dim={result.model.phase_dim}.")
    for name, v in (("num_samples", num_samples), ("num_chains", num_chains)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"Expected `{name}` to be a positive integer, got {v!r}.")
    if num_samples % num_chains:
        raise ValueError(f"Expected `num_samples` ({num_samples}) to be a multiple of "
                         f"`num_chains` ({num_chains}).")


def _keys(key):
    """``(weights, symmetry, predictive)`` keys; the same ``key`` gives the same weight draws
    and symmetry times in :func:`~noether_ppl.inference.to_arviz` and :func:`vi_diagnostics`."""
    return jax.random.split(key, 3)


def _eta(params) -> dict:
    return {k: params[k] for k in ("conserved_W", "conserved_b") if k in params}


def _draw_theta(model, guide, params, key, num_samples) -> tuple[dict, jax.Array]:
    """``θ_s ~ q`` and ``log q(θ_s)`` under the matrix-normal guide (App. D.1, Eq. 15–16).

    Per site ``θ = M + L_r Z L_cᵀ`` with ``Z ~ N(0, I)``, so ``log q(θ) = −½‖Z‖² −
    p log|L_r| − n log|L_c| − ½ np log 2π`` exactly, from ``Z``: no triangular solve with
    ``L_r``, ``L_c`` (which can overflow in float32 for wide, ill-conditioned factors, where
    ``MatrixNormal.log_prob`` returns NaN). Returns ``({site: (S, n, p)}, (S,))``.
    """
    post = guide.get_posterior(params)
    keys = jax.random.split(key, len(model.site_names))
    theta, log_q = {}, jnp.zeros((num_samples,))
    for k, name in zip(keys, model.site_names, strict=True):
        q = post[name]
        n, p = q.event_shape
        L_r, L_c = q.scale_tril_row, q.scale_tril_column
        Z = jax.random.normal(k, (num_samples, n, p), q.loc.dtype)
        theta[name] = q.loc + jnp.einsum("ij,sjk,lk->sil", L_r, Z, L_c)
        log_det = (p * jnp.sum(jnp.log(jnp.diagonal(L_r)))
                   + n * jnp.sum(jnp.log(jnp.diagonal(L_c))))
        log_q = log_q + (-0.5 * jnp.sum(Z**2, axis=(1, 2)) - log_det
                         - 0.5 * n * p * jnp.log(2 * jnp.pi))
    return theta, log_q


def _model_at(model, theta, eta, key, x_t, x_next, dt, prior_var):
    """``(log p(X, θ | η, v), trace)``: the model itself at the draw ``θ`` (η fixed, the prior
    at the variances ``v`` in effect, App. D.3), its symmetry times drawn from ``key``."""
    kwargs = {"dt": dt, "prior_variances": list(prior_var)}
    return log_density(handlers.seed(model, key), (x_t, x_next), kwargs, {**theta, **eta})


@functools.partial(jax.jit, static_argnames=("model", "guide", "num_samples"))
def _log_weight_kernel(model, guide, params, prior_var, key, x_t, x_next, dt, num_samples):
    """``log p(X, θ_s | η, v)`` and ``log q(θ_s)`` for ``θ_s ~ q`` (:func:`_draw_theta`)."""
    k_w, k_sym, _ = _keys(key)
    theta, log_q = _draw_theta(model, guide, params, k_w, num_samples)
    eta = _eta(params)

    def one(args):
        th, k = args
        return _model_at(model, th, eta, k, x_t, x_next, dt, prior_var)[0]

    return jax.lax.map(one, (theta, jax.random.split(k_sym, num_samples))), log_q


# ----------------------------------------------------------------------------- diagnostics
@dataclasses.dataclass(frozen=True)
class VIDiagnostics:
    """PSIS diagnostics of the variational posterior ("did the VI work?").

    Attributes
    ----------
    pareto_k : k̂ of the importance ratios ``w = p(X, θ) / q(θ)``, ``θ ~ q``: < ``good_k``
        means importance sampling from q converges usefully; > 0.7 means q misses mass of the
        posterior (usual for VI of neural networks: a symptom, not a failure of the fit).
    good_k : ``min(1 − 1/log10(S), 0.7)`` for S draws (Vehtari et al., 2024).
    ess : effective sample size ``1 / Σ w̃_s²`` of the smoothed, normalised weights.
    log_p, log_q : ``(S,)`` per draw; ``log_weights`` ``(S,)`` smoothed, normalised.
    n_nonfinite : draws with a non-finite ``log p − log q`` (then ``pareto_k`` is ``inf``).
    """

    pareto_k: float
    good_k: float
    ess: float
    num_samples: int
    log_p: np.ndarray
    log_q: np.ndarray
    log_weights: np.ndarray
    n_nonfinite: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.pareto_k < self.good_k)

    def to_dict(self) -> dict:
        return {"pareto_k": self.pareto_k, "good_k": self.good_k, "ess": self.ess,
                "num_samples": self.num_samples, "n_nonfinite": self.n_nonfinite,
                "ok": self.ok}

    def __str__(self) -> str:
        verdict = "reliable" if self.ok else "unreliable: q misses posterior mass"
        return (f"VI diagnostics: Pareto k-hat {self.pareto_k:.3f} (good < {self.good_k:.2f}: "
                f"{verdict}); ESS {self.ess:.1f} of {self.num_samples} draws")


def vi_diagnostics(result, data: Trajectories, *, key: jax.Array,
                   num_samples: int = 200) -> VIDiagnostics:
    """Pareto k̂ of ``log w = log p(X, θ) − log q(θ)`` for ``θ ~ q`` (PSIS).

    ``log p`` is ``numpyro.infer.util.log_density`` of the model on all pairs of ``data`` with
    the prior at the variances in effect (App. D.3), η fixed at its fitted value; ``log q`` from
    the guide's matrix-normal factors (``get_posterior``). The same ``key`` draws the same
    ``θ`` and symmetry times as :func:`~noether_ppl.inference.to_arviz`.
    """
    _check_inputs(result, data, num_samples)
    check_key(key)
    if num_samples < MIN_PSIS_SAMPLES:
        raise ValueError(f"Expected `num_samples` >= {MIN_PSIS_SAMPLES} for a Pareto fit (its "
                         f"tail is the largest 20% of the ratios, at least 5), got "
                         f"{num_samples}.")
    dtype = result.model.dtype
    x_t, x_next = data.pairs()
    prior_var = [float(v) for v in result.prior_variances()]
    log_p, log_q = _log_weight_kernel(
        result.model, result.guide, result.params, jnp.asarray(prior_var, dtype), key,
        jnp.asarray(x_t, dtype), jnp.asarray(x_next, dtype), float(data.dt), num_samples)
    log_p = np.asarray(log_p, np.float64)
    log_q = np.asarray(log_q, np.float64)
    log_w = log_p - log_q
    n_bad = int(np.sum(~np.isfinite(log_w)))
    if n_bad:
        # A draw of q where p or q is not finite: the ratios have no usable tail estimate.
        khat, lw, ess = math.inf, np.full_like(log_w, np.nan), 0.0
    else:
        khat, lw = psis_khat(log_w)
        ess = float(1.0 / np.sum(np.exp(2 * lw)))
    return VIDiagnostics(
        pareto_k=khat,
        good_k=float(min(1.0 - 1.0 / math.log10(num_samples), 0.7)),
        ess=ess,
        num_samples=int(num_samples),
        log_p=log_p,
        log_q=log_q,
        log_weights=lw,
        n_nonfinite=n_bad,
    )


def psis_khat(log_weights) -> tuple[float, np.ndarray]:
    """Pareto-smoothed importance sampling of the ratios ``w = exp(log_weights)``: the shape
    k̂ of the generalized Pareto fit to their upper tail and the smoothed log weights,
    normalised to ``logsumexp = 0``. (``arviz_stats``' ``psislw`` smooths ``exp(−input)``,
    its LOO convention, so it is given ``−log w``.) For a normal target ``N(0, σ_p²)`` and
    proposal ``N(0, σ_q²)`` with ``σ_q < σ_p`` the true shape is ``1 − σ_q²/σ_p²``; equal
    ratios give ``-inf``. Ratios spread over so many orders of magnitude that the fit breaks
    down (all but one weight underflow next to the largest: one draw carries all the weight)
    give ``+inf`` and the plain normalised log ratios, without NumPy's warnings."""
    from arviz_stats.base import array_stats

    log_w = np.asarray(log_weights, dtype=np.float64)
    if log_w.ndim != 1 or log_w.size < MIN_PSIS_SAMPLES or not np.all(np.isfinite(log_w)):
        raise ValueError(
            f"Expected `log_weights` to be a finite 1-D array of >= {MIN_PSIS_SAMPLES} values "
            f"(the Pareto fit uses the largest 20%, at least 5), got shape {log_w.shape}."
        )
    if np.ptp(log_w) == 0.0:  # equal ratios: q is p up to a constant, no tail to fit
        return -math.inf, np.full_like(log_w, -math.log(log_w.size))
    with np.errstate(all="ignore"):
        lw, khat = array_stats.psislw(-log_w, r_eff=1.0)
        lw = np.asarray(lw, np.float64)
        lw = lw - np.logaddexp.reduce(lw)
    if not (np.isfinite(khat) and np.all(np.isfinite(lw))):
        return math.inf, log_w - np.logaddexp.reduce(log_w)
    return float(khat), lw
