"""ArviZ for Noether's razor: a fitted model as an ArviZ ``xarray.DataTree`` (the ArviZ 1.x data
model from ``arviz_base``), VI diagnostics and netCDF I/O.

``to_arviz`` draws ``θ_s ~ q(θ)`` (the matrix-normal posterior, App. D.1), each with its own S
symmetry samples (Eq. 14), and stores what users look at: predicted next states, ``Ĥ`` and the
rates ``dC_k/dt = {C_k, Ĥ}`` (Sec. 2.3) on probe points, per-layer weight norms, the posterior
predictive, the pointwise log-likelihood per pair (for ``arviz_stats.loo`` / ``compare``),
``log p(X, θ)`` and ``log q(θ)`` per draw (for ``loo_approximate_posterior``), the ELBO trace
and η. The i.i.d. draws are laid out as ArviZ's ``(chain, draw)`` sample dimensions, which
``arviz_stats.loo`` requires.

``vi_diagnostics``: Pareto k̂ of the importance ratios ``log w = log p(X, θ) − log q(θ)``
(PSIS; Yao et al., 2018): k̂ < 0.7 says the variational posterior is usable as an importance
proposal for the true posterior.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer.util import log_density

from ..data import Trajectories, _check_key
from ..geometry import quadratic_from_generator

__all__ = [
    "to_arviz",
    "VIDiagnostics",
    "vi_diagnostics",
    "psis_khat",
    "summary",
    "save_arviz",
    "load_arviz",
]


MIN_PSIS_SAMPLES = 25
"""Fewest importance ratios for a Pareto tail fit (PSIS fits the largest 20%, at least 5)."""


# ----------------------------------------------------------------------------- validation
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


def _default_coord_names(M: int) -> list[str]:
    d = M // 2
    return [f"q_{i}" for i in range(d)] + [f"p_{i}" for i in range(d)]


# ----------------------------------------------------------------------------- draws
def _keys(key):
    """``(weights, symmetry, predictive)`` keys; the same ``key`` gives the same weight draws in
    :func:`to_arviz` and :func:`vi_diagnostics`."""
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


@functools.partial(jax.jit, static_argnames=("model", "guide", "num_samples"))
def _log_weight_kernel(model, guide, params, prior_var, key, x_t, x_next, dt, num_samples):
    """``log p(X, θ_s | η, v)`` and ``log q(θ_s)`` for ``θ_s ~ q`` (:func:`_draw_theta`):
    ``log p`` by ``numpyro.infer.util.log_density`` of the model itself, at the prior variances
    ``v`` in effect (App. D.3), with S symmetry samples per draw."""
    k_w, k_sym, _ = _keys(key)
    theta, log_q = _draw_theta(model, guide, params, k_w, num_samples)
    eta = _eta(params)

    def one(args):
        th, k = args
        kwargs = {"dt": dt, "prior_variances": list(prior_var)}
        lp, _ = log_density(handlers.seed(model, k), (x_t, x_next), kwargs, {**th, **eta})
        return lp

    return jax.lax.map(one, (theta, jax.random.split(k_sym, num_samples))), log_q


@functools.partial(jax.jit, static_argnames=("model", "guide", "num_samples", "chunk"))
def _draws_kernel(model, guide, params, prior_var, key, x_t, x_next, probes, dt, num_samples,
                  chunk):
    """Per draw ``θ_s ~ q`` (own S symmetry samples): likelihood mean, pointwise
    log-likelihood (Sec. 4.1), a posterior-predictive draw, ``Ĥ`` and ``{C_k, Ĥ}`` on the
    probes, weight norms, ``log p(X, θ_s)`` and ``log q(θ_s)``."""
    from ..analysis.evaluate import _map_points

    k_w, k_sym, k_pp = _keys(key)
    theta, log_q = _draw_theta(model, guide, params, k_w, num_samples)
    dtype = model.dtype
    M = model.phase_dim
    generators = model.generators_from_params(params)
    nv = model.spec.noise_variance
    if generators is not None:
        A, b = quadratic_from_generator(generators)

    def one(args):
        th, k_s, k_e = args
        weights = [jnp.asarray(th[n], dtype) for n in model.site_names]
        Phis = model.group_elements(k_s, generators)
        pred = _map_points(lambda xb: model.predict(weights, Phis, xb, dt), x_t, chunk)
        sq = (x_next - pred) ** 2
        sigma2 = jnp.mean(sq) if nv == "empirical" else jnp.asarray(nv, dtype)
        loglik = -0.5 * M * jnp.log(2 * jnp.pi * sigma2) - 0.5 * jnp.sum(sq, -1) / sigma2
        log_prior = sum(
            jnp.sum(dist.Normal(0.0, jnp.sqrt(v.astype(dtype))).log_prob(w))
            for w, v in zip(weights, prior_var, strict=True)
        )
        out = {
            "x_pred": pred,
            "x_rep": pred + jnp.sqrt(sigma2) * jax.random.normal(k_e, pred.shape, dtype),
            "loglik": loglik,
            "sigma2": sigma2,
            "hamiltonian": model.hamiltonian(weights, Phis, probes),
            "weight_norm": jnp.stack([jnp.sqrt(jnp.sum(w**2)) for w in weights]),
            "log_p": jnp.sum(loglik) + log_prior,
        }
        if generators is not None:
            field = model.vector_field(weights, Phis)(probes)          # J∇Ĥ   (P, M)
            grad_c = jnp.einsum("kij,pj->pki", A, probes) + b[None]    # ∇C_k  (P, K, M)
            out["conserved_rate"] = jnp.einsum("pki,pi->pk", grad_c, field)
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
      (App. D.2); the raw ``theta_l`` [theta_l_row, theta_l_col] with ``include_weights``.
    - ``posterior_predictive``: ``x_next`` [pair, coord] ``~ N(x_pred, σ² I)``.
    - ``observed_data``: ``x_next`` [pair, coord].
    - ``log_likelihood``: ``x_next`` [pair] pointwise ``log N(x_next | x_pred, σ² I)``.
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
    key : PRNG key (weight draws, symmetry samples, predictive noise).
    num_samples : posterior draws.
    probe_points : ``(P, M)`` points for ``hamiltonian``/``conserved_rate``; default the
        initial states of the first 50 trajectories of ``data``.
    include_weights : also store every raw weight matrix per draw.
    num_chains : pseudo-chains the i.i.d. draws are split into (R̂ is defined for > 1).
    coord_names : names of the M phase-space coordinates (default ``q_i``, ``p_i``).
    chunk : pairs per vectorised chunk inside each draw (memory bound).
    """
    import arviz_base
    import xarray as xr

    _check_inputs(result, data, num_samples, num_chains)
    _check_key(key)
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
        from ..analysis.evaluate import model_conserved_quantities

        hom = names + ["1"]
        constant["generators"] = np.asarray(result.generators(), np.float64)
        dims["generators"] = ["conserved", "hom_row", "hom_col"]
        coords["hom_row"] = hom
        coords["hom_col"] = hom
        constant["conserved_value"] = model_conserved_quantities(result, probes)
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
        "log_likelihood": {"x_next": cd(draws["loglik"])},
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
    ``θ`` as :func:`to_arviz`.
    """
    _check_inputs(result, data, num_samples)
    _check_key(key)
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
