"""Is the likelihood mean fine enough for the data's time step?

The likelihood of Sec. 4.1 predicts a pair's end by ``substeps`` steps of an integrator over Δt
applied to ``J∇Ĥ``: ``x_{t+Δt} ~ N(step(x_t; J∇Ĥ), σ² I)``. Where the integrator's error over
Δt is larger than the noise, no Ĥ that equals the system's H predicts the pairs: a fitted Ĥ
absorbs the integrator's error, pair by pair where it is unconstrained, and the ELBO then
weighs how well each model absorbs that error as much as which symmetry the data obey.

:func:`mean_error` measures that error for any Hamiltonian vector field on given states, with
no data: the model's mean against a reference integrator fine enough to stand for the exact
flow (RK4 with 16 steps per Δt by default; its own convergence is reported, against twice as
many steps). :func:`mean_resolution` does it for a fitted model on its training states, so a
user can check a fit without knowing H: a fitted Ĥ has the same error over Δt as the H it
stands for to within how far it is from it. The measurements on the discovery benchmark's
systems, true H and fitted plain HNN side by side, are in ``benchmarks/mean_resolution.py``
(REPRODUCTION.md, "Why the bodies fail: the likelihood mean").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Trajectories, check_key
from ..inference.result import FitResult
from ..integrators import INTEGRATORS, get_integrator
from .predictive import _check_count, _check_data, _check_result

__all__ = ["MeanResolution", "mean_error", "mean_resolution", "DEFAULT_REFERENCE",
           "DEFAULT_MAX_NOISE_RATIO"]

DEFAULT_REFERENCE = ("rk4", 16)
"""The integrator and steps per Δt that stand for the exact flow (:func:`mean_error`)."""

DEFAULT_MAX_NOISE_RATIO = 1.0
""":meth:`MeanResolution.resolved`'s bound on :attr:`MeanResolution.noise_ratio`: the mean's
squared error over Δt no larger than the noise's expected squared norm ``M σ²``."""


@dataclasses.dataclass(frozen=True)
class MeanResolution:
    """The likelihood mean's error over Δt against a reference integrator (module docstring).

    Attributes
    ----------
    integrator, substeps : the mean examined.
    reference : ``(integrator, substeps)`` of the reference.
    dt, noise_variance : Δt and σ² of the likelihood.
    n_points, phase_dim : states examined and M.
    nats : mean over the states of ``½‖m(x) − m_ref(x)‖²/σ²``: the NLL per pair that the
        integrator's error alone adds to an exact Ĥ's under Sec. 4.1's Gaussian.
    nats_median, nats_max : its median and maximum over the states.
    noise_ratio : ``mean ‖m(x) − m_ref(x)‖² / (M σ²)``, the mean's squared error over Δt
        against the noise's expected squared norm (``2 nats / M``).
    reference_ratio : the same for the reference against twice its steps: the reference
        stands for the exact flow where this is far below ``noise_ratio``.
    fraction_unresolved : the fraction of the states whose own ``‖m(x) − m_ref(x)‖² / (M σ²)``
        exceeds :data:`DEFAULT_MAX_NOISE_RATIO`: whether the error is everywhere or on a few
        pairs (e.g. close encounters of bodies).
    """

    integrator: str
    substeps: int
    reference: tuple[str, int]
    dt: float
    noise_variance: float
    n_points: int
    phase_dim: int
    nats: float
    nats_median: float
    nats_max: float
    noise_ratio: float
    reference_ratio: float
    fraction_unresolved: float

    def resolved(self, max_ratio: float = DEFAULT_MAX_NOISE_RATIO) -> bool:
        """Whether the mean's error over Δt is within ``max_ratio`` of the noise."""
        return bool(self.noise_ratio <= max_ratio)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "reference": list(self.reference),
                "resolved": self.resolved()}

    def __str__(self) -> str:
        ref = f"{self.reference[0]} x {self.reference[1]}"
        text = (f"Likelihood mean {self.integrator} x {self.substeps} over Δt = {self.dt:g}: "
                f"its error against {ref} is {self.noise_ratio:.3g} x the noise "
                f"(M σ²; {self.nats:.3g} nats per pair, median {self.nats_median:.3g}, "
                f"max {self.nats_max:.3g}; above the noise on {self.fraction_unresolved:.1%} "
                f"of the pairs; reference converged to {self.reference_ratio:.2g} x the noise)")
        if self.resolved():
            return text + "."
        return (text + ". The mean does not resolve the dynamics over Δt: a fitted Ĥ absorbs "
                "the integrator's error, and the ELBO then also weighs how well each model "
                "absorbs it; consider more `substeps`, a higher-order `integrator` or pairs "
                "closer in time.")


def _check_field_inputs(x, dt, integrator, substeps, noise_variance, reference):
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2 or x.shape[1] % 2:
        raise ValueError(f"Expected `x` of shape (B, M) with B >= 1 and an even M >= 2, got "
                         f"{tuple(x.shape)}.")
    for name, value in (("dt", dt), ("noise_variance", noise_variance)):
        v = np.asarray(value)
        if isinstance(value, bool) or v.shape != () or v.dtype.kind not in "iuf" \
                or not np.isfinite(v) or not v > 0:
            raise ValueError(f"Expected `{name}` to be a finite number > 0, got {value!r}.")
    ref_name, ref_steps = reference if isinstance(reference, (tuple, list)) and \
        len(reference) == 2 else (None, None)
    for name, (integ, steps) in (("integrator/substeps", (integrator, substeps)),
                                 ("reference", (ref_name, ref_steps))):
        if integ not in INTEGRATORS or isinstance(steps, bool) \
                or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"Expected `{name}` to be an integrator of {sorted(INTEGRATORS)} "
                             f"and a number of steps >= 1, got {(integ, steps)!r}.")
    return x, (str(ref_name), int(ref_steps))


def mean_error(field: Callable[[jax.Array], jax.Array], x, dt: float, *, integrator: str,
               substeps: int, noise_variance: float,
               reference: tuple[str, int] = DEFAULT_REFERENCE) -> MeanResolution:
    """The error over ``dt`` of ``substeps`` steps of ``integrator`` on ``field`` from the
    states ``x (B, M)``, against ``reference`` steps of the reference integrator, in units of
    the likelihood's noise σ² (:class:`MeanResolution`). ``field``: ``x (B, M) ↦ J∇H(x)``
    (a system's :meth:`~noether_ppl.systems.HamiltonianSystem.vector_field`, or a model's).
    Computed in the dtype of ``x``."""
    x, (ref_name, ref_steps) = _check_field_inputs(x, dt, integrator, substeps,
                                                   noise_variance, reference)
    step, ref = get_integrator(integrator), get_integrator(ref_name)

    @jax.jit
    def errors(x):  # one program: the three integrations and both squared differences
        m = step(field, x, dt, int(substeps))
        m_ref = ref(field, x, dt, ref_steps)
        m_fine = ref(field, x, dt, 2 * ref_steps)
        return jnp.sum((m - m_ref) ** 2, axis=-1), jnp.sum((m_ref - m_fine) ** 2, axis=-1)

    sq, sq_ref = (np.asarray(a, np.float64) for a in errors(x))
    if not (np.all(np.isfinite(sq)) and np.all(np.isfinite(sq_ref))):
        raise ValueError("The field's integration over `dt` is not finite at some states.")
    M, s2 = x.shape[1], float(noise_variance)
    nats = 0.5 * sq / s2
    return MeanResolution(
        integrator=str(integrator), substeps=int(substeps), reference=(ref_name, ref_steps),
        dt=float(dt), noise_variance=s2, n_points=int(x.shape[0]), phase_dim=int(M),
        nats=float(nats.mean()), nats_median=float(np.median(nats)),
        nats_max=float(nats.max()), noise_ratio=float(sq.mean() / (M * s2)),
        reference_ratio=float(sq_ref.mean() / (M * s2)),
        fraction_unresolved=float(np.mean(sq / (M * s2) > DEFAULT_MAX_NOISE_RATIO)))


def mean_resolution(result: FitResult, data: Trajectories, *, key: jax.Array,
                    reference: tuple[str, int] = DEFAULT_REFERENCE,
                    max_points: int = 1000) -> MeanResolution:
    """:func:`mean_error` of a fitted model's likelihood mean (its integrator and substeps,
    posterior-mean Ĥ, one draw of its S group elements) at the starts of ``data``'s pairs (at
    most ``max_points``, drawn from ``key``), over ``data.dt``, against the model's σ²
    (``"empirical"``: the posterior-mean MSE on those pairs, App. D.2). Needs no ground
    truth."""
    _check_result(result)
    _check_data(data, result, "data")
    max_points = _check_count("max_points", max_points)
    check_key(key)
    k_pts, k_sym, k_nv = jax.random.split(key, 3)
    x_t, x_next = (np.asarray(a) for a in data.pairs())
    if x_t.shape[0] > max_points:
        idx = np.sort(np.asarray(jax.random.choice(k_pts, x_t.shape[0], (max_points,),
                                                   replace=False)))
        x_t, x_next = x_t[idx], x_next[idx]
    model = result.model
    field = model.vector_field(result.weights_mean(), result.group_elements(k_sym))
    s2 = result.noise_variance(x_t, x_next, key=k_nv)
    return mean_error(field, jnp.asarray(x_t, model.dtype), float(data.dt),
                      integrator=model.spec.integrator, substeps=model.spec.substeps,
                      noise_variance=s2, reference=reference)
