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
import numpyro.distributions as dist
from numpyro.distributions.kl import kl_divergence
from numpyro.handlers import replay, seed, substitute, trace
from numpyro.infer.elbo import ELBO

from ..distributions import collapsed_kl

__all__ = ["MatrixNormalELBO"]


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
    vectorize_particles : ``True`` (``jax.vmap`` over particles), ``False`` (``lax.map``) or a
        callable, as in NumPyro's ELBOs.
    """

    def __init__(self, num_particles: int = 1, *, optimal_prior_variance: bool = True,
                 vectorize_particles=True):
        if isinstance(num_particles, bool) or not isinstance(num_particles, int) or \
                num_particles < 1:
            raise ValueError(f"Expected num_particles >= 1, got {num_particles!r}.")
        self.optimal_prior_variance = bool(optimal_prior_variance)
        super().__init__(num_particles=num_particles, vectorize_particles=vectorize_particles)

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

        if self.num_particles == 1:
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
