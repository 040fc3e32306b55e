"""``FitResult``: everything a fitted Noether's-razor model needs to predict and be analysed."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..data import check_int

__all__ = ["FitResult"]


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`~noether_ppl.inference.fit`.

    Attributes
    ----------
    model, guide, elbo : the NumPyro model, guide and objective that were optimised.
    params : constrained parameters by name: the guide's variational parameters and the
        model's η (``conserved_W``, ``conserved_b``) when it learns conserved quantities.
    losses : ``(steps,)`` −ELBO/N per step (a Monte-Carlo estimate on each mini-batch).
    dt, num_data : the data's Δt and number of training pairs N.
    steps : optimisation steps taken.
    svi_state : the final ``SVIState`` (optimiser state and RNG key) for resuming.
    info : free-form run information (batch size, learning rates, wall time, ...).
    eta_norms : ``(steps,)`` ‖η‖ after each step for a model that learns C_η, else None.
    """

    model: Any
    guide: Any
    elbo: Any
    params: dict
    losses: np.ndarray
    dt: float
    num_data: int
    steps: int
    svi_state: Any = None
    info: dict = dataclasses.field(default_factory=dict)
    eta_norms: np.ndarray | None = None

    @classmethod
    def from_svi(cls, model, guide, elbo, svi, state, losses, *, data, plan, key, wall_time, steps,
                 eta_norms=None):
        params = {k: jnp.asarray(v) for k, v in svi.get_params(state).items()}
        info = {
            "batch_size": plan.batch_size,
            "n_trajectories": plan.n_trajectories,
            "wall_time_s": float(wall_time),
        }
        return cls(model, guide, elbo, params, np.asarray(losses), float(data.dt),
                   plan.num_data, int(steps), state, info, eta_norms)

    # ------------------------------------------------------------------ posterior
    @property
    def spec(self):
        return self.model.spec

    @property
    def variant(self) -> str:
        return self.model.variant

    def weights_mean(self) -> list[jax.Array]:
        """Posterior-mean weights ``[M_l]`` of every layer (the paper's tables use these)."""
        med = self.guide.median(self.params)
        return [med[name] for name in self.model.site_names]

    def sample_weights(self, key: jax.Array, num_samples: int) -> list[jax.Array]:
        """``num_samples`` posterior draws of every layer: ``[(num_samples, out_l, in_l + 1)]``."""
        draws = self.guide.sample_posterior(key, self.params, sample_shape=(num_samples,))
        return [draws[name] for name in self.model.site_names]

    def prior_variances(self) -> list[float]:
        """Per-layer prior variance in effect: the closed-form optimum (App. D.3, Eq. 17) of the
        fitted posterior, or the fixed value."""
        if self.spec.prior_variance != "optimal":
            return self.model.nominal_prior_variances()
        from ..distributions import optimal_prior_variance

        post = self.guide.get_posterior(self.params)
        return [float(optimal_prior_variance(post[name])) for name in self.model.site_names]

    # ------------------------------------------------------------------ symmetry
    def generators(self) -> np.ndarray:
        """Learned (or fixed) generators ``(K, M+1, M+1)`` in float64; ``(0, M+1, M+1)`` for K=0."""
        G = self.model.generators_from_params(self.params)
        M = self.model.phase_dim
        if G is None:
            return np.zeros((0, M + 1, M + 1))
        return np.asarray(G, dtype=np.float64)

    def group_elements(self, key: jax.Array):
        """A fresh set of S group elements ``(S, M+1, M+1)`` (None for the plain HNN)."""
        G = self.model.generators_from_params(self.params)
        return self.model.group_elements(key, G)

    def with_sym_samples(self, sym_samples: int) -> FitResult:
        """This fit with its model's Monte-Carlo symmetry samples S (Eq. 14) set to
        ``sym_samples``: the same parameters and the same fixed or learned generators, so its
        Ĥ, spectrum and ELBO estimate those of the same symmetrised Hamiltonian, with another
        variance. Nothing else of the fit changes (its ``losses`` are those of the fit)."""
        m = self.model
        spec = m.spec.replace(sym_samples=check_int("sym_samples", sym_samples))
        model = type(m)(spec, phase_dim=m.phase_dim, generators=m.fixed_generators,
                        conserved_init=m.conserved_init)
        return dataclasses.replace(self, model=model)

    # ------------------------------------------------------------------ prediction
    def hamiltonian(self, x, *, key: jax.Array, weights=None) -> jax.Array:
        """``Ĥ(x)`` for ``x (..., M)`` with posterior-mean weights unless ``weights`` is given."""
        weights = self.weights_mean() if weights is None else weights
        x = jnp.asarray(x, self.model.dtype)
        return self.model.hamiltonian(weights, self.group_elements(key), x)

    def predict(self, x_t, *, key: jax.Array, weights=None, dt: float | None = None) -> jax.Array:
        """One-Δt prediction (the likelihood mean) from ``x_t (B, M)``."""
        weights = self.weights_mean() if weights is None else weights
        x_t = jnp.asarray(x_t, self.model.dtype)
        return self.model.predict(weights, self.group_elements(key), x_t,
                                  self.dt if dt is None else dt)

    def noise_variance(self, x_t=None, x_next=None, *, key=None) -> float:
        """σ² of the likelihood: the fixed value, or (``"empirical"``) the mean squared
        posterior-mean residual on the given pairs (App. D.2)."""
        nv = self.spec.noise_variance
        if nv != "empirical":
            return float(nv)
        if x_t is None or x_next is None or key is None:
            raise ValueError("noise_variance='empirical' needs `x_t`, `x_next` and `key`.")
        pred = self.predict(x_t, key=key)
        return float(jnp.mean((jnp.asarray(x_next, pred.dtype) - pred) ** 2))
