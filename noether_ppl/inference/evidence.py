"""The ELBO of a fitted model on a data set, with its Monte-Carlo standard error.

The razor chooses by the ELBO (Sec. 4.3–4.4), so a comparison of two fits by the ELBO is only
as good as the estimate of it. ``E_q[log p(X | θ, η)]`` is a Monte-Carlo average over weight
draws θ ~ q and symmetry samples τ ~ μ (App. A.1, Eq. 13–14); the KL is exact. Each of
``num_repeats`` independent evaluations draws its own weights and symmetry times, so their
spread gives the standard error of the mean. Two fits compared on the same keys
(:func:`elbo_difference`) share their weight draws' random numbers where the two guides have
the same shapes, which makes the standard error of the difference smaller than either's.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Trajectories, check_key
from .result import FitResult

__all__ = ["ElboEstimate", "elbo_estimate", "elbo_difference", "DEFAULT_REPEATS"]

DEFAULT_REPEATS = 32
"""Independent Monte-Carlo evaluations per estimate (weights and symmetry times each)."""


@dataclasses.dataclass(frozen=True)
class ElboEstimate:
    """Per-datapoint ELBO terms of a fit on ``n_pairs`` pairs (the tables' columns).

    ``neg_elbo_per_n = nll_per_n + kl_per_n``; ``se_per_n`` is the standard error of
    ``neg_elbo_per_n`` over the ``num_repeats`` evaluations (``repeats_per_n``)."""

    nll_per_n: float
    kl_per_n: float
    neg_elbo_per_n: float
    se_per_n: float
    num_repeats: int
    n_pairs: int
    repeats_per_n: np.ndarray

    @property
    def elbo(self) -> float:
        """The total ELBO in nats, ``−N · neg_elbo_per_n``."""
        return -self.n_pairs * self.neg_elbo_per_n

    @property
    def se(self) -> float:
        """Standard error of the total ELBO in nats."""
        return self.n_pairs * self.se_per_n

    def to_dict(self) -> dict:
        return {"nll_per_n": self.nll_per_n, "kl_per_n": self.kl_per_n,
                "neg_elbo_per_n": self.neg_elbo_per_n, "se_per_n": self.se_per_n,
                "num_repeats": self.num_repeats, "n_pairs": self.n_pairs}


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int, got {value!r}.")
    return int(value)


@functools.partial(jax.jit, static_argnames=("elbo", "model", "guide"))
def elbo_kernel(elbo, model, guide, params, keys, x_t, x_next, dt):
    """``(nll, kl)`` per key ``(R,)``: the fitted ELBO's ``loss_components`` on the pairs
    ``x_t, x_next (B, M)`` (unscaled sums over the pairs)."""

    def one(k):
        out = elbo.loss_components(k, params, model, guide, x_t, x_next, dt=dt, num_data=None)
        return out["nll"], out["kl"]

    return jax.lax.map(one, keys)


def _repeats(result: FitResult, data: Trajectories, keys, chunk: int):
    """``(nll (R,), kl (R,))`` summed over all pairs, chunk by chunk (each chunk its own draw,
    so the sum stays an unbiased estimate of the full-data NLL)."""
    x_t, x_next = data.pairs()
    x_t = jnp.asarray(x_t, result.model.dtype)
    x_next = jnp.asarray(x_next, result.model.dtype)
    N = x_t.shape[0]
    if result.spec.noise_variance == "empirical":  # σ² depends on every pair (App. D.2)
        chunk = N
    nll = np.zeros(keys.shape[0])
    kl = np.zeros(keys.shape[0])
    for c, start in enumerate(range(0, N, chunk)):
        chunk_keys = jax.vmap(lambda k, c=c: jax.random.fold_in(k, c))(keys)
        n_c, kl = elbo_kernel(result.elbo, result.model, result.guide, result.params,
                              chunk_keys, x_t[start:start + chunk],
                              x_next[start:start + chunk], data.dt)
        nll = nll + np.asarray(n_c, np.float64)
    return nll, np.asarray(kl, np.float64), N


def _check(result, data, key):
    if not isinstance(result, FitResult):
        raise ValueError(f"Expected a FitResult, got {type(result).__name__}.")
    if not isinstance(data, Trajectories):
        raise ValueError(f"Expected `data` to be a Trajectories, got {type(data).__name__}.")
    if data.phase_dim != result.model.phase_dim:
        raise ValueError(f"`data` has phase dimension {data.phase_dim} but the model has "
                         f"phase_dim={result.model.phase_dim}.")
    check_key(key)


def _estimate(nll, kl, N) -> ElboEstimate:
    R = nll.shape[0]
    total = (nll + kl) / N
    se = float(np.std(total, ddof=1) / math.sqrt(R)) if R > 1 else math.inf
    return ElboEstimate(float(np.mean(nll)) / N, float(np.mean(kl)) / N, float(np.mean(total)),
                        se, R, N, total)


def elbo_estimate(result: FitResult, data: Trajectories, *, key: jax.Array,
                  num_repeats: int = DEFAULT_REPEATS, chunk: int = 8192) -> ElboEstimate:
    """NLL/N, KL/N and −ELBO/N of ``result`` on all pairs of ``data`` (Sec. 4.3, App. A.1
    Eq. 13), the mean of ``num_repeats`` independent Monte-Carlo evaluations, with its
    standard error."""
    _check(result, data, key)
    num_repeats = _check_count("num_repeats", num_repeats)
    chunk = _check_count("chunk", chunk)
    nll, kl, N = _repeats(result, data, jax.random.split(key, num_repeats), chunk)
    return _estimate(nll, kl, N)


def elbo_difference(a: FitResult, b: FitResult, data: Trajectories, *, key: jax.Array,
                    num_repeats: int = DEFAULT_REPEATS, chunk: int = 8192,
                    sym_samples: int | None = None
                    ) -> tuple[float, float, ElboEstimate, ElboEstimate]:
    """``(d, se, est_a, est_b)``: the total ELBO of ``a`` minus that of ``b`` in nats on the
    pairs of ``data`` (positive: ``a`` has the higher evidence bound), the standard error of
    that difference over ``num_repeats`` paired evaluations on the same keys, and the two
    estimates. With ``sym_samples``, each fit with conserved quantities is estimated with Ĥ
    from that many symmetry samples instead of its model's S (Eq. 14;
    :meth:`FitResult.with_sym_samples`: the same parameters, another Monte-Carlo estimate of
    the same symmetrised Ĥ); a fit without them (the plain HNN) is unchanged."""
    _check(a, data, key)
    _check(b, data, key)
    num_repeats = _check_count("num_repeats", num_repeats)
    chunk = _check_count("chunk", chunk)
    if sym_samples is not None:
        sym_samples = _check_count("sym_samples", sym_samples)
        a, b = (f.with_sym_samples(sym_samples) if f.model.n_conserved else f for f in (a, b))
    keys = jax.random.split(key, num_repeats)
    nll_a, kl_a, N = _repeats(a, data, keys, chunk)
    nll_b, kl_b, _ = _repeats(b, data, keys, chunk)
    diff = (nll_b + kl_b) - (nll_a + kl_a)  # −ELBO_b − (−ELBO_a) = ELBO_a − ELBO_b
    se = float(np.std(diff, ddof=1) / math.sqrt(num_repeats)) if num_repeats > 1 else math.inf
    return float(np.mean(diff)), se, _estimate(nll_a, kl_a, N), _estimate(nll_b, kl_b, N)
