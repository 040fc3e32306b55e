"""ArviZ for Noether's razor: a fitted model as an ArviZ ``xarray.DataTree`` (the ArviZ 1.x data
model from ``arviz_base``), its summary and netCDF I/O.

``to_arviz`` draws ``θ_s ~ q(θ)`` (the matrix-normal posterior, App. D.1) and runs the model
itself at each draw (``numpyro.infer.util.log_density`` under ``handlers.seed``: each draw with
its own S symmetry times, the model's site ``symmetry_times``, Eq. 14). From the model's
observation site ``x_next`` it takes the likelihood mean, the pointwise log-likelihood per pair
and coordinate (for ``arviz_stats.loo``, ``loo_pit`` and ``compare``) and a posterior-predictive
draw; from the same run ``log p(X, θ)`` (with ``log q(θ)``, for
``loo_approximate_posterior``). One likelihood, the model's, serves SVI, evaluation and ArviZ.
It adds what users look at: ``Ĥ`` and the rates ``dC_k/dt = {C_k, Ĥ}`` (Sec. 2.3) on probe
points, per-layer weight norms, the ELBO trace and η. The i.i.d. draws are laid out as ArviZ's
``(chain, draw)`` sample dimensions, which ``arviz_stats.loo`` requires.

The PSIS check of q (``vi_diagnostics``, ``psis_khat``) lives in :mod:`.psis` and is
re-exported here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ..data import Trajectories, check_key
from ..geometry import quadratic_from_generator, quadratic_observable
from ..pointwise import map_points
from ..precision import float64
from ..symmetrize import group_elements
from .psis import (
    MIN_PSIS_SAMPLES,
    VIDiagnostics,
    _check_inputs,
    _draw_theta,
    _eta,
    _keys,
    _model_at,
    psis_khat,
    vi_diagnostics,
)

__all__ = [
    "to_arviz",
    "VIDiagnostics",
    "vi_diagnostics",
    "vi_diagnostics_from_tree",
    "psis_khat",
    "MIN_PSIS_SAMPLES",
    "summary",
    "save_arviz",
    "load_arviz",
]


def _default_coord_names(M: int) -> list[str]:
    d = M // 2
    return [f"q_{i}" for i in range(d)] + [f"p_{i}" for i in range(d)]


def _pointwise_log_prob(fn, value) -> jax.Array:
    """``log p`` of ``value`` per element of the observation: the site distribution ``fn``
    with its event dimensions (a diagonal Gaussian's coordinates) reinterpreted as batch
    dimensions, so the values sum to ``fn.log_prob(value)``."""
    while isinstance(fn, dist.Independent):
        fn = fn.base_dist
    return jnp.broadcast_to(fn.log_prob(value), jnp.shape(value))


def _conserved_values(generators, x) -> np.ndarray:
    """``C_k(x) = ½ xᵀA_k x + b_kᵀx`` (Sec. 3.1) of generators ``(K, M+1, M+1)`` at
    ``x (P, M)``, float64 ``(P, K)``."""
    with float64():
        A, b = quadratic_from_generator(jnp.asarray(generators, jnp.float64))
        return np.asarray(quadratic_observable(A, b, jnp.asarray(x)[:, None, :]), np.float64)


@functools.partial(jax.jit, static_argnames=("model", "guide", "num_samples", "chunk"))
def _draws_kernel(model, guide, params, prior_var, key, x_t, x_next, probes, dt, num_samples,
                  chunk):
    """Per draw ``θ_s ~ q``: the model at ``θ_s`` (its own S symmetry times) and, from its
    observation site, the likelihood mean, the pointwise log-likelihood ``[pair, coord]``
    (Sec. 4.1) and a posterior-predictive draw; ``log p(X, θ_s)``, ``log q(θ_s)``; ``Ĥ`` and
    ``{C_k, Ĥ}`` on the probes at the draw's symmetry times; weight norms."""
    k_w, k_sym, k_pp = _keys(key)
    theta, log_q = _draw_theta(model, guide, params, k_w, num_samples)
    eta = _eta(params)
    generators = model.generators_from_params(params)
    if generators is not None:
        A, b = quadratic_from_generator(generators)

    def one(args):
        th, k_s, k_e = args
        log_p, trace = _model_at(model, th, eta, k_s, x_t, x_next, dt, prior_var)
        obs = trace["x_next"]
        weights = [jnp.asarray(th[n], model.dtype) for n in model.site_names]
        out = {
            "log_p": log_p,
            "x_pred": jnp.broadcast_to(obs["fn"].mean, x_t.shape),
            "loglik": _pointwise_log_prob(obs["fn"], obs["value"]),
            "x_rep": obs["fn"].sample(k_e),
            "weight_norm": jnp.stack([jnp.sqrt(jnp.sum(w**2)) for w in weights]),
        }
        if "noise_variance" in trace:
            out["sigma2"] = trace["noise_variance"]["value"]
        Phis = None
        if generators is not None:
            out["symmetry_times"] = trace["symmetry_times"]["value"]
            Phis = group_elements(generators, out["symmetry_times"])
        out["hamiltonian"] = map_points(lambda p: model.hamiltonian(weights, Phis, p), probes,
                                        chunk)
        if generators is not None:
            def rate(p):
                field = model.vector_field(weights, Phis)(p)              # J∇Ĥ   (P, M)
                grad_c = jnp.einsum("kij,pj->pki", A, p) + b[None]        # ∇C_k  (P, K, M)
                return jnp.einsum("pki,pi->pk", grad_c, field)

            out["conserved_rate"] = map_points(rate, probes, chunk)
        return out

    keys_s = jax.random.split(k_sym, num_samples)
    keys_e = jax.random.split(k_pp, num_samples)
    return theta, {**jax.lax.map(one, (theta, keys_s, keys_e)), "log_q": log_q}


# ----------------------------------------------------------------------------- to_arviz
def to_arviz(
    result,
    data: Trajectories,
    *,
    key: jax.Array,
    num_samples: int = 200,
    probe_points=None,
    include_weights: bool = False,
    num_chains: int = 1,
    coord_names=None,
    chunk: int = 512,
):
    """An ArviZ ``xarray.DataTree`` of the fitted model on the pairs of ``data``.

    Groups (dims in brackets; ``chain, draw`` are the sample dims, ``num_samples`` i.i.d.
    draws from q laid out as ``num_chains`` pseudo-chains):

    - ``posterior``: ``x_pred`` [pair, coord] likelihood mean (Sec. 4.1); ``hamiltonian``
      [probe] ``Ĥ`` (Eq. 14); ``conserved_rate`` [probe, conserved] ``{C_k, Ĥ}`` (0 when
      C_k is conserved by the sampled Hamiltonian; absent for K = 0); ``weight_norm`` [layer]
      Frobenius norm of each ``θ_l``; ``noise_variance`` when σ² is ``"empirical"``
      (App. D.2); with ``include_weights`` the raw draws: ``theta_l`` [theta_l_row,
      theta_l_col] and, for K > 0, the model's ``symmetry_times`` [sym_sample, conserved].
    - ``posterior_predictive``: ``x_next`` [pair, coord], a draw of the model's observation
      site ``N(x_pred, σ² I)``.
    - ``observed_data``: ``x_next`` [pair, coord].
    - ``log_likelihood``: ``x_next`` [pair, coord] pointwise log density of the model's
      observation site per coordinate (the Gaussian is diagonal, so the values sum over
      ``coord`` to the pair's ``log N(x_next | x_pred, σ² I)``, and over everything to the
      log-likelihood in ``log_p``); the dims of the observed data, as ``arviz_stats.loo_pit``
      needs. ``arviz_stats.loo`` then leaves out one coordinate of one pair at a time; for
      leave-one-pair-out, sum the variable over ``coord`` first.
    - ``sample_stats``: ``log_p`` (``log p(X, θ)`` at the prior variances in effect), ``log_q``,
      ``log_weight = log_p − log_q``; the ELBO trace ``neg_elbo_per_n`` [step] and
      ``eta_norm`` [step] (models that learn η).
    - ``constant_data``: ``x_t`` [pair, coord], ``pair_trajectory``/``pair_step`` [pair],
      ``dt``, ``num_data``, ``probe_points`` [probe, coord], ``prior_variance`` [layer], σ² when
      fixed, and for K > 0 ``generators`` [conserved, hom_row, hom_col], ``conserved_value``
      [probe, conserved] and η (``conserved_W`` [conserved, coord, coord_col],
      ``conserved_b`` [conserved, coord]) when learned.

    Parameters
    ----------
    result : a :class:`~noether_ppl.inference.FitResult`.
    data : :class:`~noether_ppl.Trajectories` whose pairs are scored (usually the training set).
    key : PRNG key (weight draws, symmetry times, predictive noise); the same key draws the
        same ``θ`` and symmetry times as :func:`vi_diagnostics`.
    num_samples : posterior draws.
    probe_points : ``(P, M)`` points for ``hamiltonian``/``conserved_rate``; default the
        initial states of the first 50 trajectories of ``data``.
    include_weights : also store every draw's raw weight matrices and symmetry times.
    num_chains : pseudo-chains the i.i.d. draws are split into (R̂ is defined for > 1).
    coord_names : names of the M phase-space coordinates (default ``q_i``, ``p_i``).
    chunk : probe points per vectorised chunk inside each draw (memory bound); the pairs go
        through the model in its own tiles (``ModelSpec.pair_tile``).
    """
    import arviz_base
    import xarray as xr

    _check_inputs(result, data, num_samples, num_chains)
    check_key(key)
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"Expected `chunk` to be a positive integer, got {chunk!r}.")
    model = result.model
    M = model.phase_dim
    names = _default_coord_names(M) if coord_names is None else [str(c) for c in coord_names]
    if len(names) != M:
        raise ValueError(f"Expected {M} `coord_names`, got {len(names)}.")
    if probe_points is None:
        probes = np.asarray(data.states[:50, 0], np.float64)
    else:
        probes = np.asarray(probe_points, np.float64)
        if probes.ndim != 2 or probes.shape[1] != M or probes.shape[0] < 1:
            raise ValueError(f"Expected `probe_points` of shape (P, {M}), got {probes.shape}.")
        if not np.all(np.isfinite(probes)):
            raise ValueError("Expected finite `probe_points`.")

    dtype = model.dtype
    x_t_np, x_next_np = data.pairs()
    N = x_t_np.shape[0]
    prior_var = [float(v) for v in result.prior_variances()]
    K = result.generators().shape[0]
    nv = result.spec.noise_variance
    empirical = nv == "empirical"
    theta, draws = _draws_kernel(
        model, result.guide, result.params, jnp.asarray(prior_var, dtype), key,
        jnp.asarray(x_t_np, dtype), jnp.asarray(x_next_np, dtype), jnp.asarray(probes, dtype),
        float(data.dt), num_samples, chunk)
    draws = {k: np.asarray(v, np.float64) for k, v in draws.items()}

    C = num_chains
    D = num_samples // C

    def cd(a):
        return a.reshape((C, D) + a.shape[1:])

    layers = list(model.site_names)
    posterior = {
        "x_pred": cd(draws["x_pred"]),
        "hamiltonian": cd(draws["hamiltonian"]),
        "weight_norm": cd(draws["weight_norm"]),
    }
    dims = {
        "x_pred": ["pair", "coord"],
        "hamiltonian": ["probe"],
        "weight_norm": ["layer"],
        "x_next": ["pair", "coord"],
        "x_t": ["pair", "coord"],
        "pair_trajectory": ["pair"],
        "pair_step": ["pair"],
        "probe_points": ["probe", "coord"],
        "prior_variance": ["layer"],
    }
    coords = {
        "pair": np.arange(N),
        "coord": names,
        "probe": np.arange(probes.shape[0]),
        "layer": layers,
    }
    if K:
        posterior["conserved_rate"] = cd(draws["conserved_rate"])
        dims["conserved_rate"] = ["probe", "conserved"]
        coords["conserved"] = [f"C_{k}" for k in range(K)]
    if empirical:
        posterior["noise_variance"] = cd(draws["sigma2"])
    if include_weights:
        if K:
            posterior["symmetry_times"] = cd(draws["symmetry_times"])
            dims["symmetry_times"] = ["sym_sample", "conserved"]
            coords["sym_sample"] = np.arange(draws["symmetry_times"].shape[1])
        for name in layers:
            w = np.asarray(theta[name], np.float64)
            posterior[name] = cd(w)
            dims[name] = [f"{name}_row", f"{name}_col"]
            coords[f"{name}_row"] = np.arange(w.shape[1])
            coords[f"{name}_col"] = np.arange(w.shape[2])

    traj, step = data.pair_index()
    constant = {
        "x_t": np.asarray(x_t_np, np.float64),
        "pair_trajectory": np.asarray(traj, np.int64),
        "pair_step": np.asarray(step, np.int64),
        "dt": np.float64(data.dt),
        "num_data": np.int64(N),
        "probe_points": probes,
        "prior_variance": np.asarray(prior_var, np.float64),
    }
    if not empirical:
        constant["noise_variance"] = np.float64(nv)
    if K:
        hom = names + ["1"]
        constant["generators"] = np.asarray(result.generators(), np.float64)
        dims["generators"] = ["conserved", "hom_row", "hom_col"]
        coords["hom_row"] = hom
        coords["hom_col"] = hom
        constant["conserved_value"] = _conserved_values(result.generators(), probes)
        dims["conserved_value"] = ["probe", "conserved"]
        eta = _eta(result.params)
        if eta:
            constant["conserved_W"] = np.asarray(eta["conserved_W"], np.float64)
            constant["conserved_b"] = np.asarray(eta["conserved_b"], np.float64)
            dims["conserved_W"] = ["conserved", "coord", "coord_col"]
            dims["conserved_b"] = ["conserved", "coord"]
            coords["coord_col"] = names

    groups = {
        "posterior": posterior,
        "posterior_predictive": {"x_next": cd(draws["x_rep"])},
        "observed_data": {"x_next": np.asarray(x_next_np, np.float64)},
        "log_likelihood": {"x_next": cd(draws["loglik"])},                # [pair, coord]
        "sample_stats": {
            "log_p": cd(draws["log_p"]),
            "log_q": cd(draws["log_q"]),
            "log_weight": cd(draws["log_p"] - draws["log_q"]),
        },
        "constant_data": constant,
    }
    attrs = {
        "/": {
            "package": "noether_ppl",
            "variant": result.variant,
            "model_spec": json.dumps(result.spec.to_dict()),
            "steps": int(result.steps),
            "num_data_fit": int(result.num_data),
        }
    }
    tree = arviz_base.from_dict(groups, dims=dims, coords=coords, attrs=attrs)
    losses = np.asarray(result.losses, np.float64)
    trace = {"neg_elbo_per_n": xr.DataArray(losses, dims=["step"],
                                            coords={"step": np.arange(1, losses.size + 1)})}
    if getattr(result, "eta_norms", None) is not None:
        norms = np.asarray(result.eta_norms, np.float64)
        trace["eta_norm"] = xr.DataArray(norms, dims=["step"],
                                         coords={"step": np.arange(1, norms.size + 1)})
    stats = tree["sample_stats"].to_dataset().assign(trace)
    tree["sample_stats"] = xr.DataTree(stats)
    return tree



def vi_diagnostics_from_tree(tree) -> VIDiagnostics:
    """:func:`vi_diagnostics` of the draws of a :func:`to_arviz` tree, without running the model
    again: with the same ``key`` and ``num_samples`` both draw the same ``θ_s`` and symmetry
    times and compute the same ``log p(X, θ_s)`` and ``log q(θ_s)``, which the tree keeps in
    ``sample_stats`` (``(chain, draw)``, taken in draw order as the ``(S,)`` ratios)."""
    if not hasattr(tree, "children") or "sample_stats" not in tree.children:
        raise ValueError("Expected `tree` to be a to_arviz DataTree with a 'sample_stats' group.")
    stats = tree["sample_stats"]
    log_p = np.asarray(stats["log_p"].values, np.float64).reshape(-1)
    log_q = np.asarray(stats["log_q"].values, np.float64).reshape(-1)
    S = log_p.size
    if S < MIN_PSIS_SAMPLES:
        raise ValueError(f"Expected a tree of >= {MIN_PSIS_SAMPLES} draws for a Pareto fit (its "
                         f"tail is the largest 20% of the ratios, at least 5), got {S}.")
    log_w = log_p - log_q
    n_bad = int(np.sum(~np.isfinite(log_w)))
    if n_bad:  # as vi_diagnostics: no usable tail estimate
        khat, lw, ess = math.inf, np.full_like(log_w, np.nan), 0.0
    else:
        khat, lw = psis_khat(log_w)
        ess = float(1.0 / np.sum(np.exp(2 * lw)))
    return VIDiagnostics(pareto_k=khat, good_k=float(min(1.0 - 1.0 / math.log10(S), 0.7)),
                         ess=ess, num_samples=int(S), log_p=log_p, log_q=log_q,
                         log_weights=lw, n_nonfinite=n_bad)


# ----------------------------------------------------------------------------- summary, I/O
def summary(tree, var_names=None, *, group: str = "posterior", ci_prob: float = 0.94,
            ci_kind: str = "hdi", **kwargs):
    """``arviz_stats.summary`` of ``tree`` (a :func:`to_arviz` DataTree). ``var_names``
    defaults to the compact posterior variables (``weight_norm``, ``noise_variance``,
    ``hamiltonian``, ``conserved_rate`` where present); other keywords go to
    ``arviz_stats.summary``."""
    import arviz_stats

    if not hasattr(tree, "children") or group not in tree.children:
        raise ValueError(f"Expected `tree` to be a to_arviz DataTree with a {group!r} group.")
    if var_names is None and group == "posterior":
        present = set(tree[group].data_vars)
        var_names = [v for v in ("weight_norm", "noise_variance", "hamiltonian",
                                 "conserved_rate") if v in present]
    return arviz_stats.summary(tree, var_names=var_names, group=group, ci_prob=ci_prob,
                               ci_kind=ci_kind, **kwargs)


# ----------------------------------------------------------------------------- I/O
def save_arviz(tree, path) -> str:
    """Write ``tree`` to the netCDF file ``path`` atomically: a temporary file in the same
    folder, then ``os.replace``, so ``path`` never holds a half-written file."""
    import xarray as xr

    if not isinstance(tree, xr.DataTree):
        raise ValueError(f"Expected `tree` to be an xarray.DataTree, got {type(tree).__name__}.")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".",
                               suffix=".tmp")
    os.close(fd)
    try:
        tree.to_netcdf(tmp, engine="h5netcdf")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return path


def load_arviz(path):
    """Read a DataTree written by :func:`save_arviz` (fully loaded into memory, file closed).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it
    is truncated or not a netCDF/HDF5 file.
    """
    import xarray as xr

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No ArviZ file at {path!r}.")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            return tree.load()
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(
            f"Could not read ArviZ data from {path!r} (truncated, corrupt or not a netCDF file "
            f"written by save_arviz): {err}"
        ) from err
