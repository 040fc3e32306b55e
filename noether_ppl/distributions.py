"""Matrix-normal posteriors against Gaussian priors: analytic KL and the closed-form prior
variance (App. D.1, D.3, D.4).

NumPyro ships :class:`numpyro.distributions.MatrixNormal` ``MN(m, U, V)`` with ``U = L_r L_rᵀ``
(rows, ``n × n``) and ``V = L_c L_cᵀ`` (columns, ``p × p``), i.e. ``vec(X) ~ N(vec(m), V ⊗ U)``.
What it lacks is a KL divergence; this module registers one on NumPyro's dispatcher
(``numpyro.distributions.kl.kl_divergence``) for a diagonal Gaussian prior of the same event
shape, written ``dist.Normal(loc, scale).expand([n, p]).to_event(2)`` (or without ``expand``),
so :class:`numpyro.infer.TraceMeanField_ELBO` uses it instead of sampling.

With a prior ``N(0, v I)`` the KL is smallest at ``v* = (Tr Σ + mᵀm) / D`` (Eq. 17), which
collapses it to ``½ [D log(Tr Σ + mᵀm) − D log D − log|Σ|]`` (Eq. 18).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions.kl import kl_divergence

__all__ = [
    "MatrixNormal",
    "matrix_normal_moments",
    "optimal_prior_variance",
    "collapsed_kl",
    "kl_to_diagonal_normal",
]

MatrixNormal = dist.MatrixNormal


def _logdet_tril(L):
    return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(L, axis1=-2, axis2=-1))), axis=-1)


def matrix_normal_moments(q: dist.MatrixNormal):
    """``(D, Tr Σ, mᵀm, log|Σ|)`` of ``q = MN(m, U, V)`` with ``Σ = V ⊗ U``, batched.

    ``Tr Σ = Tr U · Tr V = ‖L_r‖²_F ‖L_c‖²_F`` and ``log|Σ| = 2p log|L_r| + 2n log|L_c|``
    (App. D.4 with Cholesky factors).
    """
    n, p = q.event_shape
    tr = jnp.sum(q.scale_tril_row**2, axis=(-2, -1)) * jnp.sum(q.scale_tril_column**2,
                                                                axis=(-2, -1))
    mm = jnp.sum(q.loc**2, axis=(-2, -1))
    logdet = 2.0 * (p * _logdet_tril(q.scale_tril_row) + n * _logdet_tril(q.scale_tril_column))
    return n * p, tr, mm, logdet


def optimal_prior_variance(q: dist.MatrixNormal):
    """``v* = (Tr Σ + mᵀm) / D``: the prior variance of ``N(0, v I)`` that minimises
    ``KL(q ‖ N(0, v I))`` and so maximises the ELBO in ``v`` (App. D.3, Eq. 17)."""
    D, tr, mm, _ = matrix_normal_moments(q)
    return (tr + mm) / D


def collapsed_kl(q: dist.MatrixNormal):
    """``min_v KL(q ‖ N(0, v I)) = ½ [D log(Tr Σ + mᵀm) − D log D − log|Σ|]`` (App. D.4, Eq. 18)."""
    D, tr, mm, logdet = matrix_normal_moments(q)
    return 0.5 * (D * jnp.log(tr + mm) - D * jnp.log(D) - logdet)


def kl_to_diagonal_normal(q: dist.MatrixNormal, loc, scale):
    """``KL(MN(m, U, V) ‖ N(loc, diag(scale²)))`` elementwise over the ``(n, p)`` event.

    ``½ [Σ_ij (U_ii V_jj + (m_ij − loc_ij)²) / s²_ij − D + Σ_ij log s²_ij − log|Σ|]``; the
    marginal variance of entry ``(i, j)`` is ``U_ii V_jj``.
    """
    n, p = q.event_shape
    var_row = jnp.sum(q.scale_tril_row**2, axis=-1)  # U_ii = Σ_k L_r[i, k]²
    var_col = jnp.sum(q.scale_tril_column**2, axis=-1)  # V_jj
    marginal = var_row[..., :, None] * var_col[..., None, :]
    s2 = jnp.broadcast_to(jnp.square(scale), marginal.shape)
    quad = (marginal + (q.loc - loc) ** 2) / s2
    _, _, _, logdet = matrix_normal_moments(q)
    return 0.5 * (jnp.sum(quad + jnp.log(s2), axis=(-2, -1)) - n * p - logdet)


def _diagonal_normal_parts(p):
    """``(loc, scale)`` of a prior ``Independent(Normal)`` over two event dims (optionally via
    ``expand``), or ``None`` when ``p`` is not of that form."""
    if not isinstance(p, dist.Independent) or p.reinterpreted_batch_ndims != 2:
        return None
    base = p.base_dist
    if isinstance(base, dist.ExpandedDistribution):
        base = base.base_dist
    if type(base) is not dist.Normal:
        return None
    return base.loc, base.scale


@kl_divergence.register(dist.MatrixNormal, dist.Independent)
def _kl_matrix_normal_independent_normal(q, p):
    parts = _diagonal_normal_parts(p)
    if parts is None or tuple(p.event_shape) != tuple(q.event_shape):
        raise NotImplementedError(
            "KL(MatrixNormal || Independent) is implemented for a diagonal Normal prior with "
            "the same event shape, e.g. dist.Normal(0, s).expand([n, p]).to_event(2)."
        )
    loc, scale = parts
    # The base Normal's batch shape covers the event dims; align it with q's (n, p).
    return kl_to_diagonal_normal(q, loc, scale)
