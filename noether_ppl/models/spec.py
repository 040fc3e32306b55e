"""``ModelSpec``: the declarative, validated description of a Noether's-razor model."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..integrators import INTEGRATORS
from ..nn import ACTIVATIONS
from ..symmetrize import MEASURES, SAMPLING_SCHEMES

__all__ = ["ModelSpec", "AUTO_TILE_BYTES", "AUTO_TILE_DEVICE_FRACTION", "auto_tile_bytes",
           "MC_LIKELIHOODS"]

MC_LIKELIHOODS = ("plug-in", "unbiased")
"""Estimators of the symmetrised model's Gaussian log-likelihood (``ModelSpec.mc_likelihood``)."""

AUTO_TILE_BYTES = 2 * 2**30
"""Memory budget of one weight sample's reverse-mode intermediates with ``pair_tile="auto"`` on
a CPU, whose memory other processes share and no allocator reserves (and on a device that
reports no memory limit)."""

AUTO_TILE_DEVICE_FRACTION = 0.6
"""On an accelerator, ``pair_tile="auto"`` budgets this fraction of the memory its allocator can
still give (``memory_stats()``: ``bytes_limit - bytes_in_use``). The estimate being about twice
the measured peak, a tile then takes at most about 30 % of that memory. On one H100 (a 59.4 GiB
pool) ``nbody2d3-paper``'s batch fits in one tile, which peaked at 14.0 GiB and ran the step
2.2 times faster than the 15 tiles of the CPU's 2 GiB budget
(``benchmarks/records/step-time-gpu-tiles/``)."""

_RESIDUALS_PER_UNIT = 4
"""Arrays of one hidden unit's size that reverse mode keeps per field evaluation, with headroom;
a memory estimate. Measured with the hand-derived MLP kernel: 1.6–1.8 (peak memory per pair,
``benchmarks/records/tile-size-cpu/``, Euler), so 4 leaves about twice that;
``tests/test_pointwise.py`` checks it against XLA's compiled temporary memory (RK2). It was 8
before that measurement, which made tiles about five times smaller than the budget allowed."""

FIELD_EVALUATIONS = {"euler": 1, "rk2": 2, "rk3": 3, "rk4": 4, "midpoint": 11}
"""Vector-field evaluations per sub-step (midpoint: predictor + 10 fixed-point sweeps)."""


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Settings of the observable, the symmetrisation, the likelihood and the prior.

    Attributes
    ----------
    hidden : widths of the hidden layers of F_θ (App. C: (200, 200) for the oscillator).
    activation : a smooth activation (``"elu"`` as in the paper, ``"tanh"``, ...).
    elu_alpha : ELU's α (App. C.1 uses 2 for the oscillator, 1 elsewhere).
    n_conserved : K, the number of learnable quadratic conserved quantities; 0 = plain HNN.
    sym_samples : S, Monte-Carlo samples of the symmetrisation (Eq. 14).
    measure, measure_scale : μ over symmetry times (Sec. 3.2): ``"normal"``, ``"uniform"`` on
        [-1, 1]^K or ``"ball"``, multiplied by ``measure_scale`` (π in the reference scripts).
    sampling : ``"iid"`` (paper), ``"antithetic"``, ``"lattice"`` (default) or ``"grid"``
        (see :mod:`noether_ppl.symmetrize`).
    integrator, substeps : the likelihood mean: ``substeps`` steps of ``"euler"`` (paper, 20),
        ``"rk2"`` (explicit midpoint; default, one step), ``"rk3"``, ``"rk4"`` or
        ``"midpoint"`` (implicit) over Δt. The defaults (lattice samples, one RK2 step: two
        field evaluations per pair and symmetry sample) are a cheaper estimator than the
        paper's; how often and how fast it reaches the paper's estimator's test MSE and
        −ELBO/N is recorded in ``benchmarks/records/time-to-quality/``. For the paper's
        estimator pass ``sampling="iid", integrator="euler", substeps=20`` (the packaged
        paper-scale experiment files do).
    noise_variance : σ² of the Gaussian likelihood (paper: 1e-3), or ``"empirical"`` for the
        closed-form optimum, the mean squared residual of the batch (App. D.2).
    prior_variance : ``"optimal"`` (closed form, App. D.3–D.4) or a fixed float v for every
        layer's N(0, v I) prior.
    conserved_init_scale : standard deviation of the small random initial W_k, b_k of C_η.
    dtype : ``"float32"`` (default for training) or ``"float64"``.
    pair_tile : pairs per tile of the likelihood mean's memory-light backward pass
        (:func:`noether_ppl.pointwise.tiled_pointwise`, which recomputes each tile's forward
        pass); ``None`` (spelt ``"none"`` in TOML and ``--set``, where there is no null) uses
        plain reverse mode (every sub-step's activations for every pair in memory); ``"auto"``
        (default) uses plain reverse mode while one weight sample's
        intermediates fit in the memory budget (:func:`auto_tile_bytes`: ``AUTO_TILE_BYTES``
        on a CPU, ``AUTO_TILE_DEVICE_FRACTION`` of the allocator's free memory on an
        accelerator), and otherwise the fewest tiles that fit, of equal size.
        Changes speed and memory, not results.
    mc_likelihood : the estimate of ``log N(x_{t+Δt}; Φ(x_t; J∇Ĥ), σ² I)`` from the S symmetry
        samples (Eq. 13–14). ``"plug-in"`` (the paper's): the Gaussian at the mean ``f̂_S``
        computed from the Monte-Carlo Ĥ. Its expectation over the samples is below the
        log-likelihood of the exactly symmetrised model (Eq. 5) by ``tr Cov(f̂_S) / (2σ²)``,
        which with σ² = 1e-3 and a non-compact group can be many nats per pair and penalises
        large symmetry groups. ``"unbiased"``: the samples are drawn as ``mc_groups``
        independent groups ``a`` of ``S/G`` each and the estimate is the pairwise form
        ``−(1/(G(G−1))) Σ_{a≠b} (x − f̂_a)·(x − f̂_b) / (2σ²) − (M/2) log 2πσ²``, whose
        expectation is the exact-Ĥ log-likelihood when the mean is linear in Ĥ (Euler
        sub-steps: exactly for one, to O(Δt²) for more; other integrators to second order in
        the sampling error). The model states it as the Gaussian at the groups' mean ``f̄``
        plus the site ``symmetry_mc_correction``, ``Σ_a ‖f̂_a − f̄‖² / (2σ² G(G−1))`` per pair
        (for G = 2: ``‖f̂_A − f̂_B‖² / (8σ²)``). More groups: fewer samples in each (a mean
        further from linear in them) and, for a mean linear in Ĥ, less variance (on two
        bodies with one RK2 step, 8 groups did not lower it: REPRODUCTION.md). Needs S
        divisible by G, random samples (not ``"grid"``) and a fixed σ²; changes nothing for
        K = 0.
    mc_groups : G, the independent groups of ``"unbiased"`` (2 ≤ G ≤ S); only with it.
    """

    hidden: tuple[int, ...] = (200, 200)
    activation: str = "elu"
    elu_alpha: float = 1.0
    n_conserved: int = 1
    sym_samples: int = 100
    measure: str = "uniform"
    measure_scale: float = math.pi
    sampling: str = "lattice"
    integrator: str = "rk2"
    substeps: int = 1
    noise_variance: Any = 1e-3
    prior_variance: Any = "optimal"
    conserved_init_scale: float = 0.1
    dtype: str = "float32"
    pair_tile: Any = "auto"
    mc_likelihood: str = "plug-in"
    mc_groups: int = 2

    def __post_init__(self):
        hidden = self.hidden
        if _is_int(hidden):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise ValueError(
                f"Expected `hidden` to be a sequence of ints, got {self.hidden!r}.") from None
        if not hidden or not all(_is_int(h) and h >= 1 for h in hidden):
            raise ValueError(
                f"Expected `hidden` to be a non-empty sequence of positive ints, got "
                f"{self.hidden!r}.")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown `activation` {self.activation!r}; expected one of {sorted(ACTIVATIONS)}."
            )
        if not _is_real(self.elu_alpha) or not self.elu_alpha > 0:
            raise ValueError(f"Expected `elu_alpha` > 0, got {self.elu_alpha!r}.")
        if not _is_int(self.n_conserved) or self.n_conserved < 0:
            raise ValueError(f"Expected `n_conserved` (K) >= 0, got {self.n_conserved!r}.")
        if not _is_int(self.sym_samples) or self.sym_samples < 1:
            raise ValueError(f"Expected `sym_samples` (S) >= 1, got {self.sym_samples!r}.")
        if self.measure not in MEASURES:
            raise ValueError(f"Unknown `measure` {self.measure!r}; expected one of {MEASURES}.")
        if not _is_real(self.measure_scale) or not (0 < self.measure_scale < math.inf):
            raise ValueError(
                f"Expected `measure_scale` > 0 and finite, got {self.measure_scale!r}."
            )
        if self.sampling not in SAMPLING_SCHEMES:
            raise ValueError(
                f"Unknown `sampling` {self.sampling!r}; expected one of {SAMPLING_SCHEMES}."
            )
        if self.integrator not in INTEGRATORS:
            raise ValueError(
                f"Unknown `integrator` {self.integrator!r}; expected one of {sorted(INTEGRATORS)}."
            )
        if not _is_int(self.substeps) or self.substeps < 1:
            raise ValueError(f"Expected `substeps` >= 1, got {self.substeps!r}.")
        nv = self.noise_variance
        if not (nv == "empirical" or (_is_real(nv) and 0 < nv < math.inf)):
            raise ValueError(
                f"Expected `noise_variance` to be a positive float or 'empirical', got {nv!r}."
            )
        pv = self.prior_variance
        if not (pv == "optimal" or (_is_real(pv) and 0 < pv < math.inf)):
            raise ValueError(
                f"Expected `prior_variance` to be a positive float or 'optimal', got {pv!r}."
            )
        if not _is_real(self.conserved_init_scale) or not self.conserved_init_scale > 0:
            raise ValueError(
                f"Expected `conserved_init_scale` > 0, got {self.conserved_init_scale!r}."
            )
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"Expected `dtype` 'float32' or 'float64', got {self.dtype!r}.")
        pt = self.pair_tile
        if pt == "none":  # TOML and --set have no null
            object.__setattr__(self, "pair_tile", None)
            pt = None
        if not (pt is None or pt == "auto" or (_is_int(pt) and pt >= 1)):
            raise ValueError(
                f"Expected `pair_tile` to be a positive int, 'auto' or None ('none' in TOML and "
                f"--set), got {pt!r}."
            )

        if self.mc_likelihood not in MC_LIKELIHOODS:
            raise ValueError(f"Unknown `mc_likelihood` {self.mc_likelihood!r}; expected one of "
                             f"{MC_LIKELIHOODS}.")
        G = self.mc_groups
        if not _is_int(G) or G < 2:
            raise ValueError(f"Expected `mc_groups` (G) to be an int >= 2, got {G!r}.")
        if G != 2 and self.mc_likelihood != "unbiased":
            raise ValueError(f"`mc_groups` = {G} is for mc_likelihood='unbiased'; got "
                             f"mc_likelihood={self.mc_likelihood!r}.")
        if self.mc_likelihood == "unbiased":
            if self.sym_samples % G:
                raise ValueError(
                    f"mc_likelihood='unbiased' draws the symmetry samples in `mc_groups` = {G} "
                    f"groups of equal size: expected `sym_samples` (S) divisible by {G}, got "
                    f"{self.sym_samples}.")
            if self.sampling == "grid":
                raise ValueError(
                    "mc_likelihood='unbiased' needs independent random groups of samples: "
                    "`sampling` 'grid' has no randomness; use 'lattice', 'antithetic' or 'iid'.")
            if self.noise_variance == "empirical":
                raise ValueError(
                    "mc_likelihood='unbiased' needs a fixed `noise_variance`, got 'empirical'.")

    def residual_bytes_per_pair(self) -> int:
        """Estimated bytes reverse mode keeps per pair and weight sample: S transformed points
        × (Σ hidden widths) × arrays per unit × field evaluations over Δt × item size."""
        rows = self.sym_samples if self.n_conserved > 0 else 1
        evals = self.substeps * FIELD_EVALUATIONS[self.integrator]
        itemsize = 4 if self.dtype == "float32" else 8
        return rows * sum(self.hidden) * _RESIDUALS_PER_UNIT * evals * itemsize

    def tile_for(self, n_pairs: int, budget: int | None = None) -> int | None:
        """Pairs per tile for a batch of ``n_pairs`` (None: no tiling). With ``"auto"``, within
        ``budget`` bytes per weight sample (default :func:`auto_tile_bytes`): one tile where
        the batch fits, else the fewest tiles that fit, balanced so that the last one pads
        fewer than one row per tile."""
        if self.pair_tile is None:
            return None
        if self.pair_tile == "auto":
            budget = auto_tile_bytes() if budget is None else int(budget)
            per_pair = self.residual_bytes_per_pair()
            if n_pairs * per_pair <= budget:
                return None
            largest = max(1, budget // per_pair)
            n_tiles = -(-n_pairs // largest)
            return -(-n_pairs // n_tiles)
        return int(self.pair_tile)

    def replace(self, **changes) -> ModelSpec:
        """A copy with ``changes`` applied (and validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"Unknown ModelSpec field(s): {sorted(unknown)}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown ModelSpec field(s): {sorted(unknown)}.")
        return cls(**d)


def auto_tile_bytes(device=None) -> int:
    """The memory budget of ``pair_tile="auto"`` on ``device`` (default: JAX's first device), in
    bytes per weight sample: ``AUTO_TILE_DEVICE_FRACTION`` of what an accelerator's allocator
    can still give, ``AUTO_TILE_BYTES`` on a CPU or where the device reports no limit."""
    if device is None:
        import jax

        device = jax.devices()[0]
    if device.platform == "cpu":
        return AUTO_TILE_BYTES
    stats = device.memory_stats() or {}
    if "bytes_limit" not in stats:
        return AUTO_TILE_BYTES
    free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return max(1, int(AUTO_TILE_DEVICE_FRACTION * free))
