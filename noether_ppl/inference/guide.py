"""``AutoMatrixNormal``: one matrix-normal factor per weight matrix (App. D.1, Eq. 15–16).

``q(θ) = Π_l MN([W_l b_l] | M_l, U_l, V_l)`` with ``U_l = L_r L_rᵀ`` over the ``out_l`` rows and
``V_l = L_c L_cᵀ`` over the ``in_l + 1`` columns (inputs and bias), i.e. the Kronecker-factored
covariance ``V_l ⊗ U_l`` of Louizos & Welling (2016). ``U ⊗ V = (cU) ⊗ (V/c)`` for any
``c > 0``; the guide pins that ambiguity by fixing ``L_r[0, 0] = 1`` (its free parameters are the
strictly lower triangle and the other log-diagonal entries), so the column factor carries the
scale and the parameters number exactly the degrees of freedom of the family:
``n p + n(n+1)/2 + p(p+1)/2 − 1`` per site.
"""

from __future__ import annotations

import contextlib
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.infer.autoguide import AutoGuide

__all__ = ["AutoMatrixNormal", "init_to_lecun"]


def init_to_lecun(site=None):
    """Initial posterior mean of a weight site ``(out, in + 1)``: LeCun-normal weights
    (variance ``1/in``) and zero biases, the initialisation of :func:`noether_ppl.nn.init_weights`
    that keeps activations O(1). For use as ``init_loc_fn`` of :class:`AutoMatrixNormal` or of
    any of NumPyro's autoguides (``AutoNormal``, ``AutoDelta``, ...): like NumPyro's own
    strategies, called with no site it returns a ``functools.partial`` of itself, which NumPyro's
    ``initialize_model`` expects."""
    if site is None:
        return functools.partial(init_to_lecun)
    if site["type"] != "sample" or site["is_observed"] or site["value"] is not None:
        return None
    shape = tuple(site["fn"].event_shape)
    if len(shape) != 2:
        raise ValueError(
            f"init_to_lecun expects matrix-valued sites (out, in + 1); site {site['name']!r} "
            f"has event shape {shape}."
        )
    out, cols = shape
    fan_in = max(cols - 1, 1)
    key = site["kwargs"].get("rng_key")
    if key is None:
        key = numpyro.prng_key()
    dtype = jnp.result_type(site["fn"].mean)
    # The barrier keeps XLA from folding the scaling into the draw: the same bits eagerly and
    # compiled (the guide's prototype trace runs under jit).
    w = jax.lax.optimization_barrier(jax.random.normal(key, (out, cols - 1), dtype))
    w = w / math.sqrt(fan_in)
    return jnp.concatenate([w, jnp.zeros((out, 1), dtype)], axis=1)


def _split_arrays(tree):
    """``(arrays, rebuild)``: the array leaves of ``tree`` (to pass through ``jax.jit``) and a
    function that puts them back among its other leaves (static: floats, meshes, ...)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    is_array = [isinstance(x, (jax.Array, np.ndarray)) for x in leaves]
    arrays = [x for x, a in zip(leaves, is_array, strict=True) if a]

    def rebuild(new_arrays):
        it = iter(new_arrays)
        return jax.tree_util.tree_unflatten(
            treedef, [next(it) if a else x for x, a in zip(leaves, is_array, strict=True)])

    return arrays, rebuild


class AutoMatrixNormal(AutoGuide):
    """Matrix-normal guide over every matrix-valued latent site of ``model`` (App. D.1).

    Parameters
    ----------
    model : a NumPyro model whose latent sites have event shape ``(n, p)`` (weight matrices),
        e.g. :class:`~noether_ppl.models.NoetherRazor`.
    prefix : prefix of the parameter names: ``"{site}_{prefix}_loc"`` and the unconstrained
        Cholesky parts ``_row_offdiag``, ``_row_logdiag``, ``_col_offdiag``, ``_col_logdiag``.
    init_loc_fn : per-site initialisation of the posterior mean (default :func:`init_to_lecun`;
        NumPyro's strategies such as ``init_to_median`` work too).
    init_scale : initial posterior standard deviation of every weight (``L_r = I``,
        ``L_c = init_scale · I``).

    Keyword-only, like NumPyro's autoguides. Works with ``SVI``, ``Predictive`` and the
    effect handlers; :meth:`get_posterior` is a pure function of the parameters.
    """

    def __init__(self, model, *, prefix: str = "auto", init_loc_fn=init_to_lecun,
                 init_scale: float = 1e-3, create_plates=None):
        if not callable(model):
            raise ValueError(f"Expected `model` to be callable, got {type(model).__name__}.")
        if not (isinstance(init_scale, (int, float)) and not isinstance(init_scale, bool)
                and 0 < init_scale < math.inf):
            raise ValueError(f"Expected init_scale > 0 and finite, got {init_scale!r}.")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"Expected `prefix` to be a non-empty string, got {prefix!r}.")
        self._init_scale = float(init_scale)
        self._shapes: dict[str, tuple[int, int]] = {}
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn,
                         create_plates=create_plates)

    # ------------------------------------------------------------------ set-up
    def _setup_prototype(self, *args, **kwargs):
        # One trace of the model (no potential-energy gradient as initialize_model would do):
        # the latent sites, their shapes and initial values from init_loc_fn.
        # The trace runs under one jit: eagerly, each of the model's operations (symmetry
        # samples, integrator, likelihood) would compile a program of its own, seconds in all.
        # Only the latent sites' initial values leave the jitted function; the trace kept in
        # ``prototype_trace`` holds their concrete values and the sites' metadata.
        key = numpyro.prng_key()
        arrays, rebuild = _split_arrays((args, kwargs))
        traced = {}

        def latent_inits(key, arrays):
            args, kwargs = rebuild(arrays)
            with handlers.block():
                model = handlers.substitute(handlers.seed(self.model, key),
                                            substitute_fn=self.init_loc_fn)
                trace = handlers.trace(model).get_trace(*args, **kwargs)
            traced.update(trace)
            return {name: site["value"] for name, site in trace.items()
                    if site["type"] == "sample" and not site["is_observed"]}

        values = jax.jit(latent_inits)(key, arrays)
        self.prototype_trace = {
            name: {**site, "value": values.get(name)} for name, site in traced.items()
        }
        self._init_locs = {}
        self._shapes = {}
        for name, site in self.prototype_trace.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            shape = tuple(jnp.shape(site["value"]))
            if len(shape) != 2 or tuple(site["fn"].event_shape) != shape:
                raise ValueError(
                    f"AutoMatrixNormal needs matrix-valued latent sites with event shape (n, p) "
                    f"and no batch dimensions; site {name!r} has value shape {shape} and event "
                    f"shape {tuple(site['fn'].event_shape)}."
                )
            if site["fn"].support is not constraints.real_matrix and not (
                isinstance(site["fn"].support, constraints.independent)
                and site["fn"].support.base_constraint is constraints.real
            ):
                raise ValueError(f"AutoMatrixNormal needs real-valued sites; {name!r} has "
                                 f"support {site['fn'].support}.")
            if site["cond_indep_stack"]:
                raise ValueError(f"AutoMatrixNormal supports global sites only; {name!r} is "
                                 f"inside plate(s) {[f.name for f in site['cond_indep_stack']]}.")
            self._init_locs[name] = site["value"]
            self._shapes[name] = shape
        self._prototype_frames = {}
        self._prototype_frame_full_sizes = {}

    def _param_name(self, site: str, what: str) -> str:
        return f"{site}_{self.prefix}_{what}"

    @staticmethod
    def _tril(offdiag, logdiag):
        """Lower-triangular factor with strict lower triangle ``offdiag`` (row-major vector of
        ``n(n-1)/2`` entries) and diagonal ``exp(logdiag)``."""
        n = logdiag.shape[-1]
        rows, cols = np.tril_indices(n, -1)
        L = jnp.zeros((n, n), logdiag.dtype).at[rows, cols].set(offdiag)
        return L + jnp.exp(logdiag) * jnp.eye(n, dtype=logdiag.dtype)

    @staticmethod
    @jax.jit
    def _factors(loc, factors):
        """``(L_r, L_c)`` from the unconstrained parts (one compiled program when eager)."""
        n = loc.shape[-2]
        if n == 1:
            row = jnp.ones((1, 1), loc.dtype)
        else:
            logdiag = jnp.concatenate([jnp.zeros((1,), loc.dtype), factors["row_logdiag"]])
            row = AutoMatrixNormal._tril(factors["row_offdiag"], logdiag)
        return row, AutoMatrixNormal._tril(factors["col_offdiag"], factors["col_logdiag"])

    def _site_distribution(self, loc, factors):
        """``MN(loc, L_r, L_c)`` from ``factors = {row_offdiag, row_logdiag, col_offdiag,
        col_logdiag}``; ``L_r[0, 0] = exp(0) = 1`` is pinned (``row_logdiag`` holds the other
        ``n - 1`` log-diagonal entries; for ``n = 1``, ``L_r = [[1]]``)."""
        row, col = self._factors(loc, factors)
        # Valid by construction (positive diagonals), so NumPyro's argument check is skipped:
        # run eagerly (SVI.init, Predictive) it would compile a program per check.
        return dist.MatrixNormal(loc, row, col, validate_args=False)

    def _factor_inits(self, n: int, p: int, dtype) -> dict:
        inits = {"col_offdiag": jnp.zeros((p * (p - 1) // 2,), dtype),
                 "col_logdiag": jnp.full((p,), math.log(self._init_scale), dtype)}
        if n > 1:
            inits.update(row_offdiag=jnp.zeros((n * (n - 1) // 2,), dtype),
                         row_logdiag=jnp.zeros((n - 1,), dtype))
        return inits

    # ------------------------------------------------------------------ the guide
    def __call__(self, *args, **kwargs):
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        result = {}
        for name, init_loc in self._init_locs.items():
            n, p = self._shapes[name]
            loc = numpyro.param(self._param_name(name, "loc"), init_loc)
            factors = {what: numpyro.param(self._param_name(name, what), init)
                       for what, init in self._factor_inits(n, p, loc.dtype).items()}
            result[name] = numpyro.sample(name, self._site_distribution(loc, factors))
        return result

    @property
    def initial_means(self) -> dict:
        """``{site: (n, p)}``: the initial posterior means ``M_l`` drawn when the guide was set
        up (``init_loc_fn``), which ``SVI.init`` gives the ``*_loc`` parameters."""
        self._require_setup()
        return dict(self._init_locs)

    @contextlib.contextmanager
    def initial_means_from(self, locs: dict):
        """Within the block, ``SVI.init`` starts the means at ``locs`` (same sites and shapes as
        :attr:`initial_means`; may be traced values), so a jitted ``SVI.init`` can take them
        as arguments rather than holding them as constants."""
        kept = self._init_locs
        self._init_locs = locs
        try:
            yield self
        finally:
            self._init_locs = kept

    # ------------------------------------------------------------------ pure accessors
    def _require_setup(self):
        if self.prototype_trace is None:
            raise ValueError("The guide has not been set up: run SVI.init (or call the guide "
                             "under numpyro.handlers.seed) first.")

    def get_posterior(self, params: dict) -> dict:
        """``{site: dist.MatrixNormal}`` from ``params`` (e.g. ``svi.get_params(state)``)."""
        self._require_setup()
        out = {}
        for name, (n, p) in self._shapes.items():
            factors = {what: params[self._param_name(name, what)]
                       for what in self._factor_inits(n, p, jnp.float32)}
            out[name] = self._site_distribution(params[self._param_name(name, "loc")], factors)
        return out

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), **kwargs):
        """Draws ``{site: (*sample_shape, n, p)}`` from the matrix-normal posterior."""
        posterior = self.get_posterior(params)
        keys = jax.random.split(rng_key, len(posterior))
        return {name: q.sample(k, tuple(sample_shape))
                for k, (name, q) in zip(keys, posterior.items(), strict=True)}

    def median(self, params):
        """The posterior means ``M_l`` (a Gaussian's median)."""
        self._require_setup()
        return {name: params[self._param_name(name, "loc")] for name in self._init_locs}

    def quantiles(self, params, quantiles):
        """Marginal quantiles of every weight: ``N(M_ij, U_ii V_jj)``; shape ``(Q, n, p)``."""
        q = jnp.asarray(quantiles)
        out = {}
        for name, post in self.get_posterior(params).items():
            var = (jnp.sum(post.scale_tril_row**2, -1)[:, None]
                   * jnp.sum(post.scale_tril_column**2, -1)[None, :])
            marginal = dist.Normal(post.loc, jnp.sqrt(var))
            out[name] = marginal.icdf(q.reshape((-1, 1, 1)))
        return out
