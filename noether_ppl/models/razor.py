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
from numpyro import handlers
from numpyro.primitives import _PYRO_STACK

from ..geometry import (
    check_phase_dim,
    check_quadratic_generators,
    generator_from_quadratic,
    symmetric_from_unconstrained,
)
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


_UNSEEDED = (
    "NoetherRazor draws its weights and symmetry times at random: run the model under "
    "numpyro.handlers.seed (SVI, Predictive and MCMC do this for you), or give every random "
    "site a value with numpyro.handlers.substitute (the weights `theta_l` and, for K > 0, the "
    "symmetry times `symmetry_times`)."
)
_SUPPLYING_HANDLERS = (handlers.seed, handlers.substitute, handlers.condition, handlers.replay)
_MISSING_TIMES = np.zeros((0, 0))
"""Placeholder value of the site ``symmetry_times`` in an unseeded call: a handler must replace
it."""


def _check_seeded() -> None:
    """Refuse a call that no handler gives random keys or site values (NumPyro itself would
    fail on a bare ``AssertionError`` at the first sample site)."""
    if not any(isinstance(h, _SUPPLYING_HANDLERS) for h in _PYRO_STACK):
        raise ValueError(_UNSEEDED)


class NoetherRazor:
    """A Bayesian Hamiltonian neural network with learnable quadratic symmetries.

    Parameters
    ----------
    spec : the :class:`ModelSpec`.
    phase_dim : M, the (even) dimension of phase space ``x = (q, p)``.
    generators : optional fixed generators ``(L, M+1, M+1)`` (e.g. ``system.generators()``):
        the model symmetrises over the group they generate and learns no η; ``spec.n_conserved``
        is then replaced by ``L``. Each must generate a quadratic observable,
        ``[[JA, Jb], [0, 0]]`` with ``A`` symmetric (Eq. 4;
        :func:`~noether_ppl.geometry.check_quadratic_generators`), else ``ValueError``.
    conserved_init : optional ``(W, b)`` of shapes ``(K, M, M)`` and ``(K, M)``: the initial η;
        by default ``N(0, conserved_init_scale²)`` entries drawn from the model's PRNG key.

    Calling the model: ``model(x_t, x_next=None, *, dt, num_data=None, noise_variance=None,
    prior_variances=None, mesh=None)`` with ``x_t, x_next (B, M)``. ``num_data`` is the size of
    the full data set when ``x_t`` is a mini-batch: the likelihood is then scaled by
    ``num_data / B`` so the ELBO is for the full data set. ``mesh`` (from
    :func:`noether_ppl.pointwise.pairs_mesh`) splits the pairs across devices.

    Sites: ``theta_l`` (sample), ``conserved_W``, ``conserved_b`` (param, learned η only),
    ``symmetry_times`` (deterministic, K > 0: the S symmetry times ``τ (S, K)`` of Eq. 14, drawn
    from ``numpyro.prng_key()``; ``handlers.substitute`` fixes them, as does ``Predictive(...,
    condition_deterministic=True)`` with posterior samples that hold them, and ``τ = 0`` gives
    the plain HNN's prediction), ``noise_variance`` (deterministic, empirical σ² only), the
    observed ``x_next`` (in the plate ``pairs``) and, with ``mc_likelihood="unbiased"``, K > 0
    and ``x_next`` given, the factor ``symmetry_mc_correction`` (in the plate; its sum with
    ``x_next``'s log-density is the unbiased estimate, :class:`ModelSpec`). The model runs under
    ``numpyro.handlers.seed`` (SVI, Predictive and MCMC do that) or with every random site
    substituted; otherwise it raises ``ValueError``.
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
        M = check_phase_dim(phase_dim)
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
            G = check_quadratic_generators(generators, name="generators", phase_dim=M)
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

    def symmetry_times(self, key: jax.Array, dtype=None) -> jax.Array:
        """The model's S symmetry times ``τ (S, K)`` from ``key``: ``τ_s ~ scale · μ`` with the
        spec's measure and sampling scheme (Sec. 3.2; Eq. 14's ``τ^(s)``). The model records
        them as its site ``"symmetry_times"``."""
        if self.n_conserved == 0:
            raise ValueError("A model with K = 0 (the plain HNN) has no symmetry times.")
        dtype = self.dtype if dtype is None else dtype
        return self._symmetry_times_impl(key, jnp.dtype(dtype))

    def _symmetry_times_impl(self, key, dtype):
        s = self.spec

        def draw(k, n):
            return sample_symmetry_times(k, n, self.n_conserved, measure=s.measure,
                                         scale=s.measure_scale, sampling=s.sampling, dtype=dtype)

        if s.mc_likelihood == "unbiased":  # G independent groups (ModelSpec.mc_likelihood)
            size = s.sym_samples // s.mc_groups
            return jnp.concatenate([draw(k, size)
                                    for k in jax.random.split(key, s.mc_groups)])
        return draw(key, s.sym_samples)

    def group_elements(self, key: jax.Array, generators) -> jax.Array | None:
        """S group elements ``expm(Σ τ_k G_k)`` (Eq. 4, Eq. 14) at the symmetry times drawn from
        ``key`` (:meth:`symmetry_times`), shared by every evaluation."""
        if generators is None:
            return None
        return self._group_elements_jit(key, generators)

    def _group_elements_impl(self, key, generators):
        return group_elements(generators, self._symmetry_times_impl(key, generators.dtype))

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

    def _mean_impl(self, weights, eta, key, taus, x_t, dt, mesh=None):
        """Generators of C_η (or the fixed ones), the symmetry times (drawn from ``key`` when
        ``taus`` is None), their S group elements and the likelihood mean, as one program.
        Returns ``(means, τ (S, K) or None)``: ``means (1, B, M)`` from all S samples, or with
        ``mc_likelihood="unbiased"`` (and K > 0) ``(G, B, M)``, one mean ``f̂_a`` per group of
        S/G consecutive samples."""
        generators = self.generators_from_params(eta)
        Phis = None
        if generators is not None:
            if taus is None:
                taus = self._symmetry_times_impl(key, generators.dtype)
            Phis = group_elements(generators, taus)
        dt = jnp.asarray(dt, self.dtype)

        # Each pair's chain of sub-steps is independent: tiles of pairs, recomputed in the backward
        # pass, keep reverse mode's memory at one tile; a mesh splits the pairs across devices
        # (noether_ppl.pointwise).
        def per_pairs(params, x):
            return tiled_pointwise(lambda p, xi: self._predict_impl(p[0], p[1], xi, p[2]),
                                   params, x, self.spec.tile_for(x.shape[0]))

        def mean(phis):
            params = (weights, phis, dt)
            if mesh is None:
                return per_pairs(params, x_t)
            return sharded_pointwise(per_pairs, params, x_t, mesh)

        if Phis is not None and self.spec.mc_likelihood == "unbiased":
            G = self.spec.mc_groups
            # one group after another: one traced mean, one group's intermediates at a time
            return jax.lax.map(mean, Phis.reshape((G, -1) + Phis.shape[1:])), taus
        return mean(Phis)[None], taus

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

    def _symmetrized_mean(self, weights, eta, x_t, dt, mesh):
        """The likelihood means (:meth:`_mean_impl`) at the symmetry times of the site
        ``"symmetry_times"``.

        The times are drawn from ``numpyro.prng_key()`` inside the mean's program (one
        compiled program per call) and recorded as a ``numpyro.deterministic`` site; when a
        handler (``handlers.substitute``, ``Predictive`` with posterior samples) replaces the
        site's value, the mean is computed again at the given times (under an outer ``jit``
        the discarded first computation is dead code)."""
        S, K = self.spec.sym_samples, self.n_conserved
        key = numpyro.prng_key()
        if key is None:  # no seed handler: the times must come from a handler
            drawn = preds = None
            taus = numpyro.deterministic("symmetry_times", _MISSING_TIMES)
            if taus is _MISSING_TIMES:
                raise ValueError(_UNSEEDED)
        else:
            preds, drawn = self._mean_jit(weights, eta, key, None, x_t, dt, mesh=mesh)
            taus = numpyro.deterministic("symmetry_times", drawn)
        if taus is not drawn:
            if tuple(jnp.shape(taus)) != (S, K):
                raise ValueError(f"Expected the site `symmetry_times` to have shape (S, K) = "
                                 f"{(S, K)}, got {tuple(jnp.shape(taus))}.")
            preds, _ = self._mean_jit(weights, eta, None, jnp.asarray(taus), x_t, dt, mesh=mesh)
        return preds

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

        _check_seeded()
        weights = self._sample_weights(prior_variances)
        eta = self._conserved_params()
        if self.n_conserved == 0:
            preds, _ = self._mean_jit(weights, eta, None, None, x_t, dt, mesh=mesh)
        else:
            preds = self._symmetrized_mean(weights, eta, x_t, dt, mesh)
        pred = jnp.mean(preds, axis=0)
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
            G = preds.shape[0]
            if G > 1 and x_next is not None:
                # with the Gaussian at the groups' mean f̄: −Σ_{a≠b} (x − f̂_a)·(x − f̂_b) /
                # (2σ² G(G−1)) − const, unbiased for the exactly symmetrised model
                # (ModelSpec.mc_likelihood)
                spread = jnp.sum((preds - pred) ** 2, axis=(0, -1))
                numpyro.factor("symmetry_mc_correction", spread / (2.0 * sigma2 * G * (G - 1)))
        return pred

