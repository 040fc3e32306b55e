"""Noether's razor as an ordinary NumPyro model (Sec. 4.1, Fig. 1).

Graphical model: weights θ of the observable F_θ (one ``numpyro.sample`` site per layer,
``θ_l ~ N(0, v_l I)``), conserved quantities C_η (``numpyro.param`` sites: empirical-Bayes
point parameters η = {W_k, b_k}, ``A_k = W_k + W_kᵀ``), the symmetrised Hamiltonian Ĥ (Eq. 14)
and the data ``x_{t+Δt} ~ N(Φ_n(x_t; J∇Ĥ, Δt), σ² I)`` (Sec. 4.1; App. A.1 Eq. 13), ``Φ_n``
``n`` sub-steps of the spec's integrator (the paper's: Euler, n = 20; the default: one RK2 step).

K = 0 is the plain (Bayesian) HNN; ``generators=`` fixes the symmetry (the "oracle").
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..geometry import _check_phase_dim, generator_from_quadratic, symmetric_from_unconstrained
from ..integrators import get_integrator
from ..nn import get_activation, layer_shapes, mlp
from ..pointwise import sharded_pointwise, tiled_pointwise
from ..symmetrize import (
    group_elements,
    sample_symmetry_times,
    symmetrize,
    symmetrized_value_and_grad,
    symmetrized_vector_field,
)
from .spec import ModelSpec

__all__ = ["NoetherRazor", "CONSERVED_PARAMS"]

CONSERVED_PARAMS = ("conserved_W", "conserved_b")
"""Names of the ``numpyro.param`` sites of η (learning rate ``lr_conserved`` in ``fit``)."""


class NoetherRazor:
    """A Bayesian Hamiltonian neural network with learnable quadratic symmetries.

    Parameters
    ----------
    spec : the :class:`ModelSpec`.
    phase_dim : M, the (even) dimension of phase space ``x = (q, p)``.
    generators : optional fixed generators ``(L, M+1, M+1)`` (e.g. ``system.generators()``):
        the model symmetrises over the group they generate and learns no η; ``spec.n_conserved``
        is then replaced by ``L``.
    conserved_init : optional ``(W, b)`` of shapes ``(K, M, M)`` and ``(K, M)``: the initial η;
        by default ``N(0, conserved_init_scale²)`` entries drawn from the model's PRNG key.

    Calling the model: ``model(x_t, x_next=None, *, dt, num_data=None, noise_variance=None,
    prior_variances=None, mesh=None)`` with ``x_t, x_next (B, M)``. ``num_data`` is the size of
    the full data set when ``x_t`` is a mini-batch: the likelihood is then scaled by
    ``num_data / B`` so the ELBO is for the full data set. ``mesh`` (from
    :func:`noether_ppl.pointwise.pairs_mesh`) splits the pairs across devices. The symmetry
    times are drawn from ``numpyro.prng_key()``, so the model runs under
    ``numpyro.handlers.seed`` (SVI, Predictive and MCMC do that).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        phase_dim: int,
        generators=None,
        conserved_init=None,
    ):
        if not isinstance(spec, ModelSpec):
            raise ValueError(f"Expected `spec` to be a ModelSpec, got {type(spec).__name__}.")
        M = _check_phase_dim(phase_dim)
        if spec.dtype == "float64" and not jax.config.jax_enable_x64:
            raise ValueError(
                "ModelSpec(dtype='float64') needs 64-bit JAX: set JAX_ENABLE_X64=1 or call "
                "jax.config.update('jax_enable_x64', True) before building the model."
            )
        self.spec = spec
        self.phase_dim = M
        self.dtype = jnp.dtype(spec.dtype)
        self.activation = get_activation(spec.activation, spec.elu_alpha)
        self.shapes = layer_shapes(M, spec.hidden, 1)
        self.site_names = tuple(f"theta_{l}" for l in range(len(self.shapes)))
        self.fixed_generators = None
        if generators is not None:
            G = np.asarray(generators, dtype=np.float64)
            if G.ndim == 2:
                G = G[None]
            if G.ndim != 3 or G.shape[1:] != (M + 1, M + 1):
                raise ValueError(
                    f"Expected `generators` of shape (L, {M + 1}, {M + 1}) for phase_dim={M}, "
                    f"got {np.shape(generators)}."
                )
            if not np.all(np.isfinite(G)):
                raise ValueError("Expected finite `generators`.")
            if G.shape[0] == 0:
                raise ValueError("Expected at least one generator in `generators`.")
            self.fixed_generators = G
        self.n_conserved = G.shape[0] if generators is not None else spec.n_conserved
        self.conserved_init = None
        if conserved_init is not None:
            if self.fixed_generators is not None:
                raise ValueError(
                    "`conserved_init` is for learned generators; got `generators` too.")
            W, b = (np.asarray(a, dtype=np.float64) for a in conserved_init)
            K = self.n_conserved
            if W.shape != (K, M, M) or b.shape != (K, M):
                raise ValueError(
                    f"Expected `conserved_init` = (W, b) of shapes {(K, M, M)} and {(K, M)}, "
                    f"got {W.shape} and {b.shape}."
                )
            self.conserved_init = (W, b)
        # The numerical pieces compile as one program each when the model runs eagerly
        # (SVI.init, Predictive); under an outer jit they are inlined.
        self._group_elements_jit = jax.jit(self._group_elements_impl)
        self._predict_jit = jax.jit(self._predict_impl)
        self._mean_jit = jax.jit(self._mean_impl, static_argnames="mesh")

    # ------------------------------------------------------------------ description
    @property
    def variant(self) -> str:
        """``"vanilla"`` (K = 0), ``"oracle"`` (fixed generators) or ``"learned"``."""
        if self.fixed_generators is not None:
            return "oracle"
        return "vanilla" if self.n_conserved == 0 else "learned"

    @property
    def learns_conserved(self) -> bool:
        return self.fixed_generators is None and self.n_conserved > 0

    def nominal_prior_variances(self) -> list[float]:
        """The model's prior variance per layer when none is given: the fixed
        ``spec.prior_variance`` or, for ``"optimal"``, ``1 / fan_in`` (the initialisation scale;
        the ELBO then replaces it by the closed-form optimum of App. D.3)."""
        if self.spec.prior_variance != "optimal":
            return [float(self.spec.prior_variance)] * len(self.shapes)
        return [1.0 / (inp - 1) for _, inp in self.shapes]

    def __repr__(self) -> str:
        return (
            f"NoetherRazor(variant={self.variant!r}, phase_dim={self.phase_dim}, "
            f"K={self.n_conserved}, hidden={self.spec.hidden})"
        )

    # ------------------------------------------------------------------ pure pieces
    def generators_from_params(self, params: dict | None = None):
        """Generators ``(K, M+1, M+1)`` of C_η from ``params`` (or the fixed ones; None if K=0)."""
        if self.fixed_generators is not None:
            return jnp.asarray(self.fixed_generators, self.dtype)
        if self.n_conserved == 0:
            return None
        W, b = params["conserved_W"], params["conserved_b"]
        return generator_from_quadratic(symmetric_from_unconstrained(W), b)

    def group_elements(self, key: jax.Array, generators) -> jax.Array | None:
        """S group elements ``expm(Σ τ_k G_k)`` (Eq. 4, Eq. 14) shared by every evaluation."""
        if generators is None:
            return None
        return self._group_elements_jit(key, generators)

    def _group_elements_impl(self, key, generators):
        s = self.spec
        taus = sample_symmetry_times(
            key,
            s.sym_samples,
            generators.shape[0],
            measure=s.measure,
            scale=s.measure_scale,
            sampling=s.sampling,
            dtype=generators.dtype,
        )
        return group_elements(generators, taus)

    def hamiltonian(self, weights: Sequence[jax.Array], Phis, x: jax.Array) -> jax.Array:
        """``Ĥ(x)`` for ``x (..., M)`` (``F_θ(x)`` when ``Phis`` is None)."""
        if Phis is None:
            return mlp(weights, x, self.activation)
        if x.ndim == 2:
            return symmetrized_value_and_grad(weights, self.activation, Phis, x)[0]
        return symmetrize(lambda y: mlp(weights, y, self.activation), Phis)(x)

    def vector_field(self, weights: Sequence[jax.Array], Phis):
        """``x (B, M) ↦ J ∇Ĥ(x)``."""
        return symmetrized_vector_field(weights, self.activation, Phis)

    def predict(self, weights, Phis, x_t: jax.Array, dt) -> jax.Array:
        """Likelihood mean: ``substeps`` integrator steps of ``J∇Ĥ`` over ``Δt`` from
        ``x_t (B, M)`` (Sec. 4.1)."""
        return self._predict_jit(weights, Phis, x_t, dt)

    def _predict_impl(self, weights, Phis, x_t, dt):
        step = get_integrator(self.spec.integrator)
        return step(self.vector_field(weights, Phis), x_t, dt, self.spec.substeps)

    def _mean_impl(self, weights, eta, key, x_t, dt, mesh=None):
        """Generators of C_η (or the fixed ones), S group elements from ``key`` and the
        likelihood mean, as one program."""
        generators = self.generators_from_params(eta)
        Phis = None if generators is None else self._group_elements_impl(key, generators)
        dt = jnp.asarray(dt, self.dtype)

        # Each pair's chain of sub-steps is independent: tiles of pairs, recomputed in the backward
        # pass, keep reverse mode's memory at one tile; a mesh splits the pairs across devices
        # (noether_ppl.pointwise).
        def per_pairs(params, x):
            return tiled_pointwise(lambda p, xi: self._predict_impl(p[0], p[1], xi, p[2]),
                                   params, x, self.spec.tile_for(x.shape[0]))

        params = (weights, Phis, dt)
        if mesh is None:
            return per_pairs(params, x_t)
        return sharded_pointwise(per_pairs, params, x_t, mesh)

    # ------------------------------------------------------------------ the NumPyro model
    def _sample_weights(self, prior_variances):
        variances = (prior_variances if prior_variances is not None
                     else self.nominal_prior_variances())
        if len(variances) != len(self.shapes):
            raise ValueError(
                f"Expected {len(self.shapes)} `prior_variances`, got {len(variances)}."
            )
        weights = []
        for name, shape, v in zip(self.site_names, self.shapes, variances, strict=True):
            scale = jnp.sqrt(jnp.asarray(v, self.dtype))
            prior = dist.Normal(jnp.zeros((), self.dtype), scale).expand(list(shape)).to_event(2)
            # numpyro draws in the default float width; compute in the model's dtype
            weights.append(jnp.asarray(numpyro.sample(name, prior), self.dtype))
        return weights

    def _conserved_params(self):
        if not self.learns_conserved:
            return {}
        K, M = self.n_conserved, self.phase_dim
        if self.conserved_init is not None:
            W0 = jnp.asarray(self.conserved_init[0], self.dtype)
            b0 = jnp.asarray(self.conserved_init[1], self.dtype)
        else:
            scale = self.spec.conserved_init_scale

            # The barrier keeps XLA from fusing the scaling into the draw, so the initial η is
            # the same bits whether SVI.init runs eagerly or compiled (as in ``fit``).
            def W0(key):
                z = jax.random.normal(jax.random.fold_in(key, 0), (K, M, M), self.dtype)
                return scale * jax.lax.optimization_barrier(z)

            def b0(key):
                z = jax.random.normal(jax.random.fold_in(key, 1), (K, M), self.dtype)
                return scale * jax.lax.optimization_barrier(z)
        return {
            "conserved_W": numpyro.param("conserved_W", W0),
            "conserved_b": numpyro.param("conserved_b", b0),
        }

    def __call__(
        self,
        x_t,
        x_next=None,
        *,
        dt,
        num_data: int | None = None,
        noise_variance=None,
        prior_variances=None,
        mesh=None,
    ):
        x_t = jnp.asarray(x_t, self.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.phase_dim:
            raise ValueError(
                f"Expected `x_t` of shape (B, {self.phase_dim}), got {tuple(x_t.shape)}."
            )
        if x_next is not None:
            x_next = jnp.asarray(x_next, self.dtype)
            if x_next.shape != x_t.shape:
                raise ValueError(
                    f"Expected `x_next` of the shape of `x_t` {tuple(x_t.shape)}, "
                    f"got {tuple(x_next.shape)}."
                )
        B = x_t.shape[0]
        if num_data is not None and num_data < B:
            raise ValueError(f"Expected `num_data` >= batch size {B}, got {num_data}.")

        weights = self._sample_weights(prior_variances)
        eta = self._conserved_params()
        key = None
        if self.n_conserved > 0:
            key = numpyro.prng_key()
            if key is None:
                raise ValueError(
                    "NoetherRazor draws symmetry samples from numpyro.prng_key(): run the model "
                    "under numpyro.handlers.seed (SVI, Predictive and MCMC do this for you)."
                )
        pred = self._mean_jit(weights, eta, key, x_t, dt, mesh=mesh)

        sigma2 = noise_variance if noise_variance is not None else self.spec.noise_variance
        if sigma2 == "empirical":
            if x_next is None:
                raise ValueError(
                    "noise_variance='empirical' (App. D.2) needs `x_next`, or pass an explicit "
                    "`noise_variance=` when predicting."
                )
            sigma2 = jnp.mean((x_next - pred) ** 2)
            numpyro.deterministic("noise_variance", sigma2)
        scale = jnp.sqrt(jnp.asarray(sigma2, self.dtype))
        size = B if num_data is None else int(num_data)
        with numpyro.plate("pairs", size, subsample_size=B):
            numpyro.sample("x_next", dist.Normal(pred, scale).to_event(1), obs=x_next)
        return pred

