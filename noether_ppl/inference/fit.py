"""``fit``: NumPyro SVI with optax for Noether's razor (Sec. 4.3–4.4, App. C).

A convenience on top of :class:`numpyro.infer.SVI`, not a replacement: the model, the guide
and the ELBO are ordinary NumPyro objects. What ``fit`` adds is what every run needs:
mini-batches of trajectories drawn inside the jitted step, separate learning rates for the
empirical-Bayes parameters η and the variational parameters, a cosine schedule (App. C),
``lax.scan`` chunks of steps between progress-bar updates, a stop at the first non-finite
loss that keeps the last finite state and names the step, and a stop when the loss runs away
(grows by orders of magnitude while still finite) that keeps the best state before it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.infer import SVI
from numpyro.infer.svi import SVIState

from ..data import Trajectories
from ..models.razor import CONSERVED_PARAMS, NoetherRazor
from ..pointwise import pairs_mesh
from .elbo import MatrixNormalELBO
from .guide import AutoMatrixNormal
from .optim import make_optimizer
from .result import FitResult
from .settings import DEFAULT_RUNAWAY_FACTOR, FitSettings

__all__ = ["fit", "make_optimizer", "DivergenceError", "RunawayError", "TrainingPlan",
           "Progress", "DEFAULT_RUNAWAY_FACTOR", "FitSettings", "GUARD_CHUNKS", "guard_chunk",
           "runaway_checked"]


class Progress(NamedTuple):
    """What ``fit`` hands its ``callback`` after each chunk of steps."""

    step: int
    state: SVIState
    params: dict
    losses: np.ndarray
    eta_norms: np.ndarray | None = None


class DivergenceError(FloatingPointError):
    """The loss or the parameters became non-finite at ``step``; ``result`` holds the last
    finite state (its ``steps`` counts the steps taken before the bad one)."""

    def __init__(self, step: int, result: FitResult):
        self.step = step
        self.result = result
        super().__init__(
            f"Training diverged: non-finite loss or parameters at step {step}. The last finite "
            f"state (after {step} steps) is kept in this error's `.result`. Try a smaller `lr` "
            f"or `lr_conserved`, or a larger `noise_variance`."
        )


class RunawayError(DivergenceError):
    """The loss ran away at ``step`` (the median −ELBO/N of a chunk of steps rose more than
    ``runaway_factor`` times the scale of the run's progress above the best chunk's median);
    ``result`` holds the state at the end of the best chunk, after ``result.steps`` steps."""

    def __init__(self, step: int, result: FitResult, *, median: float, best: float,
                 limit: float):
        self.step = step
        self.result = result
        self.median, self.best, self.limit = median, best, limit
        FloatingPointError.__init__(
            self,
            f"Training ran away: the median -ELBO/N of the chunk of steps ending at step "
            f"{step} was {median:.4g}, above the limit {limit:.4g} set by the best chunk "
            f"median {best:.4g} (after step {result.steps}; see `runaway_factor`). The state "
            f"after step {result.steps} is kept in this error's `.result`. Try a smaller `lr` "
            f"or `lr_conserved`."
        )


GUARD_CHUNKS = 10
"""About how many chunks a run without a progress bar is split into so that the runaway check
runs between them (:func:`guard_chunk`)."""


def runaway_checked(factor) -> bool:
    """Whether ``runaway_factor`` turns the runaway check on (not None, not ``inf``)."""
    return factor is not None and math.isfinite(float(factor))


def guard_chunk(remaining: int, chunks: int = GUARD_CHUNKS) -> int:
    """Steps per chunk for a run of ``remaining`` steps split into about ``chunks`` chunks: the
    largest divisor of ``remaining`` between ``remaining / (2 chunks)`` and ``remaining /
    chunks`` (rounded up), so that every chunk has one length and compiles once; where no such
    divisor exists, ``ceil(remaining / chunks)`` (the last chunk shorter: one more compile)."""
    remaining = max(int(remaining), 1)
    upper = -(-remaining // chunks)
    lower = max(1, remaining // (2 * chunks))
    for d in range(upper, lower - 1, -1):
        if remaining % d == 0:
            return d
    return upper


@dataclasses.dataclass
class _RunawayGuard:
    """Between chunks: the first chunk's median loss ``L0``, the best chunk median ``best``
    with its state. A chunk whose median exceeds ``best + factor · max(L0 − best, |best|)`` has
    run away (a rise ``factor`` times larger than everything the run has gained, or than the
    best loss's own size)."""

    factor: float
    first: float | None = None
    best: float | None = None
    best_step: int = 0
    best_state: object = None

    def limit(self) -> float:
        return self.best + self.factor * max(self.first - self.best, abs(self.best))

    def ran_away(self, step: int, median: float, state) -> bool:
        if self.first is None:
            self.first = median
        if self.best is None or median < self.best:
            self.best, self.best_step, self.best_state = median, step, state
            return False
        return median > self.limit() > self.best


def _is_key(key) -> bool:
    if not isinstance(key, jax.Array):
        return False
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.shape == ()
    return key.dtype == jnp.uint32 and key.shape == (2,)


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """How pairs are drawn: ``batch_size`` trajectories per step (all ``T`` pairs of each)."""

    n_trajectories: int
    n_pairs_per_trajectory: int
    batch_size: int

    @property
    def full_batch(self) -> bool:
        return self.batch_size == self.n_trajectories

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.n_trajectories // self.batch_size)

    @property
    def num_data(self) -> int:
        return self.n_trajectories * self.n_pairs_per_trajectory

    def batch(self, key, step, x_t, x_next):
        """The mini-batch of step ``step`` (traced): trajectories of a per-epoch permutation.

        When ``N`` is not a multiple of the batch size, the last batch of an epoch is filled
        with the first trajectories of that epoch's permutation, so every trajectory is seen at
        least once per epoch and every batch has the same size (and the same scaling).
        """
        M = x_t.shape[-1]
        if self.full_batch:
            return x_t.reshape(-1, M), x_next.reshape(-1, M)
        epoch, b = jnp.divmod(step, self.batches_per_epoch)
        perm = jax.random.permutation(jax.random.fold_in(key, epoch), self.n_trajectories)
        pad = self.batches_per_epoch * self.batch_size - self.n_trajectories
        perm = jnp.concatenate([perm, perm[:pad]])
        idx = jax.lax.dynamic_slice(perm, (b * self.batch_size,), (self.batch_size,))
        return x_t[idx].reshape(-1, M), x_next[idx].reshape(-1, M)


def _mesh_for(devices):
    """The mesh over which pairs are split, or None for one device."""
    local = jax.local_devices()
    if devices is None:
        chosen = local
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(local):
            raise ValueError(f"Expected 1 <= `devices` <= {len(local)} (local devices), got "
                             f"{devices}.")
        chosen = local[: int(devices)]
    else:
        chosen = list(devices)
        if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
            raise ValueError(f"Expected `devices` to be None, an int or a list of JAX devices, "
                             f"got {devices!r}.")
    return pairs_mesh(chosen) if len(chosen) > 1 else None


def _init_svi(svi: SVI, key, *args, init_params=None) -> SVIState:
    """``svi.init(key, *args, init_params=...)`` as one compiled program.

    Run eagerly, SVI.init traces the model op by op and every operation compiles a program of
    its own. The guide's prototype is set up
    first, outside the jit, with the key SVI.init gives the guide, so the state is the one
    ``svi.init`` returns.
    """
    guide = svi.guide
    if getattr(guide, "prototype_trace", True) is None:
        guide_seed = jax.random.split(key, 3)[2]  # SVI.init: rng_key, model_seed, guide_seed
        with handlers.block():
            handlers.seed(guide._setup_prototype, guide_seed)(*args, **svi.static_kwargs)
    # The matrix-normal guide's initial means (drawn when it was set up) and ``init_params``
    # are arguments, not constants: the program is the same for every fit of one model on data
    # of one shape, and the persistent compilation cache serves it to the next fit.
    locs = guide.initial_means if isinstance(guide, AutoMatrixNormal) else None

    def init_svi(k, locs, init_params, *a):
        with (contextlib.nullcontext() if locs is None else guide.initial_means_from(locs)):
            return svi.init(k, *a, init_params=init_params)

    return jax.jit(init_svi)(key, locs, init_params, *args)


def _tree_where(pred, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def fit(
    model: NoetherRazor,
    data: Trajectories,
    *,
    key: jax.Array,
    settings: FitSettings | None = None,
    guide: AutoMatrixNormal | None = None,
    elbo=None,
    init_params: dict | None = None,
    init_state: SVIState | Callable[[SVIState], SVIState] | None = None,
    start_step: int = 0,
    progress_bar: bool = True,
    callback: Callable[[Progress], None] | None = None,
    devices=None,
    **kwargs,
) -> FitResult:
    """Maximise the ELBO of ``model`` on the pairs of ``data`` by SVI (App. A.1, App. C).

    Parameters
    ----------
    model : a :class:`~noether_ppl.models.NoetherRazor`.
    data : training :class:`~noether_ppl.Trajectories` (its Δt is the model's Δt).
    key : PRNG key (initialisation, mini-batches, weight and symmetry samples).
    settings : a :class:`~noether_ppl.inference.FitSettings`, or its fields as keyword
        arguments (``num_steps=...``, ``lr=...``; not both): the settings below.
    guide : default ``AutoMatrixNormal(model)`` (App. D.1).
    init_scale : initial posterior standard deviation of every weight of the default guide
        (``AutoMatrixNormal(model, init_scale=...)``; None: the guide's default, 1e-3). What a
        wider start did against the paper's estimator: ``benchmarks/records/init-scale/``.
        Only with ``guide=None``.
    num_steps : optimisation steps (one mini-batch each). With ``batch_size=None`` (full
        batch) a step is an epoch, as in the paper.
    batch_size : trajectories per mini-batch (App. C: 20); the likelihood is scaled to the full
        data set.
    lr, lr_conserved : Adam learning rates of the variational parameters and of η
        (``lr_conserved=0``: η stays at its initial value, e.g. from ``init_params``).
    lr_offdiag : Adam learning rate of the off-diagonal entries of the guide's Cholesky factors
        (default: ``lr``); see :func:`make_optimizer`.
    lr_logdiag : Adam learning rate of the log-diagonals of the guide's Cholesky factors (the
        posterior scales; default: ``lr``); see :func:`make_optimizer`.
    schedule : ``"cosine"`` (to 0 over ``num_steps``, App. C) or ``"constant"``.
    num_particles : M, weight samples per step (reparameterised).
    elbo : default ``MatrixNormalELBO(num_particles)`` with the closed-form prior variance when
        ``spec.prior_variance == "optimal"`` (App. D.3), else the model's fixed prior.
    init_params : initial values of params by name (e.g. ``conserved_W``), passed to SVI.
    init_state, start_step : continue from a saved ``SVIState`` after ``start_step`` steps.
        ``init_state`` may also be a callable ``template -> SVIState``, called with the freshly
        initialised state (e.g. to restore a checkpoint into its structure).
    chunk_size : steps per ``lax.scan`` chunk (progress bar and callback between chunks).
    callback : ``callback(progress)`` after each chunk, with a :class:`Progress` (steps done,
        the ``SVIState``, the constrained params, the losses and ‖η‖ so far); e.g. for
        checkpoints. If it returns ``True`` training stops there (early stopping); the result
        then holds ``progress.step`` steps.
    runaway_factor : stop with :class:`RunawayError` when a chunk's median −ELBO/N rises more
        than this many times ``max(L0 − best, |best|)`` above the best chunk median ``best``
        (``L0``: the first chunk's), keeping the state at the end of the best chunk. Checked
        between chunks: without a progress bar or ``chunk_size`` the steps are split into
        about :data:`GUARD_CHUNKS` chunks (:func:`guard_chunk`) so that the check runs. None or
        ``inf`` turns it off (and a run without a progress bar is then one chunk).

    Returns a :class:`FitResult`; raises :class:`DivergenceError` (with ``.result``, the last
    finite state) when the loss turns non-finite, and :class:`RunawayError` (a
    ``DivergenceError``; ``.result``: the best state) when it runs away.
    """
    if not isinstance(model, NoetherRazor):
        raise ValueError(f"Expected `model` to be a NoetherRazor, got {type(model).__name__}.")
    if not isinstance(data, Trajectories):
        raise ValueError(f"Expected `data` to be a Trajectories, got {type(data).__name__}.")
    if data.phase_dim != model.phase_dim:
        raise ValueError(
            f"`data` has phase dimension {data.phase_dim} but the model has "
            f"phase_dim={model.phase_dim}."
        )
    if not _is_key(key):
        raise ValueError("Expected `key` to be a JAX PRNG key, e.g. jax.random.key(0).")
    settings = _settings_of(settings, kwargs)
    if settings.init_scale is not None and guide is not None:
        raise ValueError("`init_scale` sets up the default guide; got `guide` too (give the "
                         "guide its own init_scale instead).")
    mesh = _mesh_for(devices)
    N = data.n_trajectories
    if settings.batch_size is not None and settings.batch_size > N:
        raise ValueError(f"Expected `batch_size` <= n_trajectories={N}, got "
                         f"{settings.batch_size}.")
    num_steps = settings.num_steps
    if not (isinstance(start_step, (int, np.integer)) and 0 <= start_step <= num_steps):
        raise ValueError(f"Expected 0 <= `start_step` <= num_steps, got {start_step!r}.")

    plan = TrainingPlan(N, data.n_steps,
                        N if settings.batch_size is None else int(settings.batch_size))
    if guide is None:
        guide = (AutoMatrixNormal(model) if settings.init_scale is None
                 else AutoMatrixNormal(model, init_scale=float(settings.init_scale)))
    if elbo is None:
        elbo = MatrixNormalELBO(
            num_particles=settings.num_particles,
            optimal_prior_variance=model.spec.prior_variance == "optimal",
        )
    dt = float(data.dt)
    tx = make_optimizer(num_steps, settings.lr, settings.lr_conserved, settings.schedule,
                        lr_offdiag=settings.lr_offdiag, lr_logdiag=settings.lr_logdiag)
    svi = SVI(model, guide, tx, elbo, dt=dt, num_data=plan.num_data, mesh=mesh)

    states = jnp.asarray(data.states, model.dtype)
    x_t, x_next = states[:, :-1], states[:, 1:]
    init_key, batch_key, svi_key = jax.random.split(key, 3)
    # SVI.init also sets up the guide and SVI's parameter transforms, so it runs on resume too.
    xb, xnb = plan.batch(batch_key, 0, x_t, x_next)
    state = _init_svi(svi, init_key, xb, xnb, init_params=init_params)
    if init_params:
        # SVI.init silently ignores names that are no param site of the model or the guide.
        known = sorted(svi.get_params(state))
        unknown = sorted(set(init_params) - set(known))
        if unknown:
            raise ValueError(f"Unknown `init_params` name(s) {unknown}: not param sites of the "
                             f"model or the guide, which has {known}.")
    if init_state is None:
        state = state._replace(rng_key=svi_key)
    elif callable(init_state):
        state = init_state(state._replace(rng_key=svi_key))
    else:
        state = init_state

    def eta_norm(state):
        if not model.learns_conserved:
            return jnp.zeros(())
        params = svi.get_params(state)
        return jnp.sqrt(sum(jnp.sum(params[k] ** 2) for k in CONSERVED_PARAMS))

    # The data and the batch key are arguments, not constants of the compiled program: fits
    # that differ only in them (restarts, other keys, other data of the same shape) compile to
    # the same program, which the persistent compilation cache then reads instead of compiling.
    @jax.jit
    def run_chunk(state, steps, x_t, x_next, batch_key):
        def one_step(carry, step):
            state, bad = carry
            xb, xnb = plan.batch(batch_key, step, x_t, x_next)
            new_state, loss = svi.update(state, xb, xnb)
            ok = jnp.isfinite(loss) & _all_finite(new_state.optim_state)
            keep = ok & (bad < 0)
            state = _tree_where(keep, new_state, state)
            bad = jnp.where((bad < 0) & ~ok, step, bad)
            return (state, bad), (loss / plan.num_data, eta_norm(state))

        (state, bad), (losses, norms) = jax.lax.scan(one_step, (state, jnp.asarray(-1)), steps)
        return state, bad, losses, norms

    remaining = num_steps - start_step
    chunk_size = settings.chunk_size
    if chunk_size is None:
        if progress_bar:
            chunk_size = max(1, min(remaining, max(num_steps // 50, 1)))
        elif runaway_checked(settings.runaway_factor):
            chunk_size = guard_chunk(remaining)
        else:
            chunk_size = remaining
    chunk_size = max(1, min(chunk_size, max(remaining, 1)))
    losses: list[np.ndarray] = []
    norms: list[np.ndarray] = []
    bar = None
    if progress_bar and remaining > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_steps, initial=start_step, desc=f"fit {model.variant}",
                   unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    step = start_step
    runaway = settings.runaway_factor
    guard = None if runaway is None else _RunawayGuard(float(runaway))
    try:
        while step < num_steps:
            n = min(chunk_size, num_steps - step)
            steps = jnp.arange(step, step + n)
            state, bad, chunk_losses, chunk_norms = run_chunk(state, steps, x_t, x_next,
                                                              batch_key)
            bad = int(bad)
            chunk_losses, chunk_norms = np.asarray(chunk_losses), np.asarray(chunk_norms)
            if bad >= 0:
                losses.append(chunk_losses[: bad - step])
                norms.append(chunk_norms[: bad - step])
                result = FitResult.from_svi(
                    model, guide, elbo, svi, state, np.concatenate(losses),
                    data=data, plan=plan, key=key, wall_time=time.perf_counter() - t0,
                    steps=bad, eta_norms=_eta_trace(model, norms),
                )
                raise DivergenceError(bad, result)
            losses.append(chunk_losses)
            norms.append(chunk_norms)
            step += n
            median = float(np.median(chunk_losses))
            if guard is not None and guard.ran_away(step, median, state):
                kept = guard.best_step - start_step
                result = FitResult.from_svi(
                    model, guide, elbo, svi, guard.best_state, np.concatenate(losses)[:kept],
                    data=data, plan=plan, key=key, wall_time=time.perf_counter() - t0,
                    steps=guard.best_step,
                    eta_norms=None if not model.learns_conserved
                    else np.concatenate(norms)[:kept],
                )
                raise RunawayError(step, result, median=median, best=guard.best,
                                   limit=guard.limit())
            if bar is not None:
                bar.update(n)
                bar.set_postfix({"-ELBO/N": f"{chunk_losses[-1]:.4g}"})
            if callback is not None and callback(
                    Progress(step, state, svi.get_params(state), np.concatenate(losses),
                             _eta_trace(model, norms))) is True:
                break
    finally:
        if bar is not None:
            bar.close()
    return FitResult.from_svi(
        model, guide, elbo, svi, state,
        np.concatenate(losses) if losses else np.zeros(0),
        data=data, plan=plan, key=key, wall_time=time.perf_counter() - t0, steps=step,
        eta_norms=_eta_trace(model, norms),
    )


def _settings_of(settings, kwargs) -> FitSettings:
    """``fit``'s settings: ``settings`` or the keyword arguments (checked), not both."""
    if settings is not None:
        if kwargs:
            raise ValueError(f"Got `settings` and the setting(s) {sorted(kwargs)} as keyword "
                             f"arguments too; give one or the other.")
        if not isinstance(settings, FitSettings):
            raise ValueError(f"Expected `settings` to be a FitSettings, got "
                             f"{type(settings).__name__}.")
        return settings
    known = {f.name for f in dataclasses.fields(FitSettings)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r} (its "
                        f"settings are the fields of FitSettings: {sorted(known)}).")
    return FitSettings(**kwargs)


def _eta_trace(model, norms) -> np.ndarray | None:
    """Per-step ‖η‖ (Frobenius norm of all W_k, b_k) of a model that learns C_η, else None."""
    if not model.learns_conserved:
        return None
    return np.concatenate(norms) if norms else np.zeros(0)
