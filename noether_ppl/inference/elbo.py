"""``MatrixNormalELBO``: the ELBO of Noether's razor with analytic KL terms (Sec. 4.3, App. A.1,
App. D.3–D.4).

``ELBO = E_q[log p(X | θ, η)] − KL(q(θ) ‖ p(θ))`` (Eq. 9–13). The expected log-likelihood is a
Monte-Carlo average over ``num_particles`` reparameterised weight draws (the paper's M), each
with its own S symmetry samples inside the model (Eq. 13–14); the KL is exact:

- ``optimal_prior_variance=True`` (default, App. D.3–D.4): every latent site guided by a
  :class:`~numpyro.distributions.MatrixNormal` gets the prior ``N(0, v I)`` with the ``v`` that
  maximises the ELBO, ``v* = (Tr Σ + mᵀm)/D`` (Eq. 17), so its KL collapses to Eq. 18. The
  objective is then the ELBO of the model at ``v = v*``: still a lower bound on
  ``log p(X | η, v*)``, maximised jointly in ``q``, η and ``v`` (empirical Bayes).
- ``optimal_prior_variance=False``: the model's own prior, through NumPyro's KL dispatch
  (the matrix-normal KL of :mod:`noether_ppl.distributions`).

The likelihood term carries NumPyro's subsample scaling, so on a mini-batch the estimate is
unbiased for the full-data ELBO.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions.kl import kl_divergence
from numpyro.handlers import replay, seed, substitute, trace
from numpyro.infer.elbo import ELBO

from ..distributions import collapsed_kl

__all__ = ["MatrixNormalELBO"]


def _zero_cotangent(x):
    """A zero cotangent for a leaf: zeros for floats, ``float0`` for integers and keys."""
    x = jnp.asarray(x) if not hasattr(x, "dtype") else x
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(np.shape(x), dtype=jax.dtypes.float0)


def _accumulated_mean(fn, params, keys, data):
    """``mean_k fn(params, keys[k], data)`` whose gradient in ``params`` is summed particle by
    particle inside the forward pass (``lax.scan`` of ``value_and_grad``); the backward pass
    scales it by the incoming cotangent. Exact for this scalar mean; ``data`` (and the keys)
    get zero cotangents."""
    data_leaves, data_tree = jax.tree_util.tree_flatten(data)
    is_array = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in data_leaves]
    arrays = [leaf for leaf, a in zip(data_leaves, is_array, strict=True) if a]

    def rebuild(arrays):
        it = iter(arrays)
        leaves = [next(it) if a else leaf for leaf, a in zip(data_leaves, is_array, strict=True)]
        return jax.tree_util.tree_unflatten(data_tree, leaves)

    n = keys.shape[0]

    @jax.custom_vjp
    def mean(params, keys, arrays):
        values = jax.lax.map(lambda k: fn(params, k, rebuild(arrays)), keys)
        return jnp.mean(values)

    def mean_fwd(params, keys, arrays):
        value_and_grad = jax.value_and_grad(lambda p, k: fn(p, k, rebuild(arrays)))
        dtype = jax.eval_shape(lambda: fn(params, keys[0], rebuild(arrays))).dtype

        def body(acc, key):
            value, grad = value_and_grad(params, key)
            return (acc[0] + value, jax.tree_util.tree_map(jnp.add, acc[1], grad)), None

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        (total, grad), _ = jax.lax.scan(body, (jnp.zeros((), dtype), zeros), keys)
        return total / n, (jax.tree_util.tree_map(lambda g: g / n, grad), keys, arrays)

    def mean_bwd(residuals, cotangent):
        grad, keys, arrays = residuals
        return (jax.tree_util.tree_map(lambda g: (cotangent * g).astype(g.dtype), grad),
                _zero_cotangent(keys), [_zero_cotangent(a) for a in arrays])

    mean.defvjp(mean_fwd, mean_bwd)
    return mean(params, keys, arrays)


def _scaled_log_prob_sum(site) -> jax.Array:
    log_prob = site["fn"].log_prob(site["value"])
    if site.get("scale") is not None:
        log_prob = site["scale"] * log_prob
    return jnp.sum(log_prob)


class MatrixNormalELBO(ELBO):
    """ELBO with M weight samples for the likelihood and an analytic (optionally collapsed) KL.

    Parameters
    ----------
    num_particles : M, reparameterised weight samples per estimate (App. A.1, Eq. 13).
    optimal_prior_variance : use the closed-form prior variance (Eq. 17–18) for every
        matrix-normal site; otherwise the model's prior.
    vectorize_particles : ``"accumulate"`` (default): the particles run one after another and
        each one's gradient is taken at once and summed (the expected log-likelihood is a mean
        over particles, so its gradient is the mean of theirs): reverse mode holds one
        particle's intermediates at a time and no forward pass is recomputed. Or, as in
        NumPyro's ELBOs, ``True`` (``jax.vmap``), ``False`` (``lax.map``) or a callable.
    """

    def __init__(self, num_particles: int = 1, *, optimal_prior_variance: bool = True,
                 vectorize_particles="accumulate"):
        if isinstance(num_particles, bool) or not isinstance(num_particles, int) or \
                num_particles < 1:
            raise ValueError(f"Expected num_particles >= 1, got {num_particles!r}.")
        self.optimal_prior_variance = bool(optimal_prior_variance)
        self.accumulate = vectorize_particles == "accumulate"
        if not (self.accumulate or isinstance(vectorize_particles, bool)
                or callable(vectorize_particles)):
            raise ValueError(f"Expected vectorize_particles True, False, 'accumulate' or a "
                             f"callable, got {vectorize_particles!r}.")
        super().__init__(num_particles=num_particles,
                         vectorize_particles=False if self.accumulate else vectorize_particles)

    # ------------------------------------------------------------------ pieces
    def _site_kl(self, name, guide_site, model_site) -> jax.Array:
        q, p = guide_site["fn"], model_site["fn"]
        if self.optimal_prior_variance and isinstance(q, dist.MatrixNormal):
            kl = collapsed_kl(q)
        else:
            try:
                kl = kl_divergence(q, p)
            except NotImplementedError:
                raise ValueError(
                    f"No analytic KL for site {name!r}: guide {type(q).__name__} against prior "
                    f"{type(p).__name__}. MatrixNormalELBO needs matrix-normal guide sites "
                    f"(AutoMatrixNormal) or distributions with a registered kl_divergence."
                ) from None
        if guide_site.get("scale") is not None:
            kl = guide_site["scale"] * kl
        return jnp.sum(kl)

    def _particle(self, rng_key, param_map, model, guide, args, kwargs):
        """``(log-likelihood, KL)`` of one weight draw."""
        model_key, guide_key = jax.random.split(rng_key)
        guide_trace = trace(substitute(seed(guide, guide_key), data=param_map)).get_trace(
            *args, **kwargs)
        model_trace = trace(
            substitute(replay(seed(model, model_key), guide_trace), data=param_map)
        ).get_trace(*args, **kwargs)
        loglik = jnp.zeros(())
        kl = jnp.zeros(())
        for name, site in model_trace.items():
            if site["type"] != "sample":
                continue
            if site["is_observed"]:
                loglik = loglik + _scaled_log_prob_sum(site)
            elif name in guide_trace:
                kl = kl + self._site_kl(name, guide_trace[name], site)
            else:
                raise ValueError(f"Latent site {name!r} of the model is not in the guide.")
        return loglik, kl

    def loss_components(self, rng_key, param_map, model, guide, *args, **kwargs) -> dict:
        """``{"nll", "kl", "neg_elbo"}``: the expected negative log-likelihood over
        ``num_particles`` draws, the KL and their sum, all for the full data set (sums, not
        per-datapoint values)."""

        def one(key):
            return self._particle(key, param_map, model, guide, args, kwargs)

        if self.accumulate:
            # One particle uses the key itself, as NumPyro's ELBOs do.
            keys = (rng_key[None] if self.num_particles == 1
                    else jax.random.split(rng_key, self.num_particles))
            loglik = _accumulated_mean(
                lambda params, key, data: self._particle(key, params, model, guide, *data)[0],
                param_map, keys, (args, kwargs))
            # The KL needs only the site distributions: under jit the model's likelihood mean
            # in this second trace is dead code and is dropped.
            kl = one(rng_key)[1]
        elif self.num_particles == 1:
            loglik, kl = one(rng_key)
        else:
            keys = jax.random.split(rng_key, self.num_particles)
            logliks, kls = self.vectorize_particles_fn(one, keys)
            # The KL does not depend on the draw: every particle computes the same value.
            loglik, kl = jnp.mean(logliks), kls[0]
        nll = -loglik
        return {"nll": nll, "kl": kl, "neg_elbo": nll + kl}

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        """−ELBO (NumPyro's ``ELBO`` interface; used by ``SVI``)."""
        comps = self.loss_components(rng_key, param_map, model, guide, *args, **kwargs)
        return {"loss": comps["neg_elbo"], "mutable_state": None}
