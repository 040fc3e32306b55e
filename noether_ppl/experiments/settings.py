"""The settings of an experiment file: the type of every key (:data:`SYSTEMS`,
:data:`SPLIT_KEYS`, :data:`MODEL_KEYS`, :data:`INFERENCE_KEYS`, :data:`ANALYSIS_KEYS`) and the
validated values of its tables (:class:`Split`, :class:`InferenceSettings`,
:class:`AnalysisSettings`). Reading and checking a file is :mod:`~noether_ppl.experiments.config`.
"""

from __future__ import annotations

import dataclasses
import math

from ..analysis.symmetry import DEFAULT_THRESHOLD
from ..inference.complete import REFIT_FROM, valid_sizes
from ..inference.select import STOPS
from ..inference.settings import SettingRule, setting_rules
from ..models.spec import MC_LIKELIHOODS
from ..systems.suite import CENTRAL_POTENTIALS

__all__ = [
    "Spec",
    "SYSTEMS",
    "SPLIT_KEYS",
    "SPLIT_REQUIRED",
    "MODEL_KEYS",
    "INFERENCE_KEYS",
    "FIT_KEYS",
    "EXPERIMENT_INFERENCE_KEYS",
    "ANALYSIS_KEYS",
    "TOP_KEYS",
    "MAX_INT",
    "MAX_SEED",
    "Split",
    "InferenceSettings",
    "AnalysisSettings",
]

# ----------------------------------------------------------------------------- type checks


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Spec:
    """A key's type: ``check(value) -> converted`` or raise ``TypeError(expected)``."""

    def __init__(self, expected: str, check):
        self.expected = expected
        self.check = check


def _typed(expected, pred, convert=lambda v: v):
    def check(v):
        if not pred(v):
            raise TypeError(expected)
        return convert(v)

    return Spec(expected, check)


MAX_INT = 2**31 - 1
"""The largest count a setting may hold: counts become int32 indices in JAX."""
MAX_SEED = 2**32 - 1
"""The largest seed: ``jax.random.key`` keeps 32 bits of it without x64 (and fails on more than
64), so a larger seed would give different keys with and without x64."""

INT = _typed("an integer", _is_int)
POS_INT = _typed(f"a positive integer <= {MAX_INT}", lambda v: _is_int(v) and 1 <= v <= MAX_INT)
NONNEG_INT = _typed(f"an integer >= 0 and <= {MAX_INT}",
                    lambda v: _is_int(v) and 0 <= v <= MAX_INT)
SEED = _typed(f"an integer in [0, {MAX_SEED}]", lambda v: _is_int(v) and 0 <= v <= MAX_SEED)
REAL = _typed("a finite number", lambda v: _is_real(v) and math.isfinite(v), float)
POS_REAL = _typed("a positive finite number",
                  lambda v: _is_real(v) and math.isfinite(v) and v > 0, float)
POS_REAL_OR_INF = _typed("a positive number (inf allowed)",
                         # "inf": how a run's experiment.json stores it (JSON has no inf)
                         lambda v: (_is_real(v) and v > 0) or v == "inf", float)
NONNEG_REAL = _typed("a finite number >= 0",
                     lambda v: _is_real(v) and math.isfinite(v) and v >= 0, float)
UNIT = _typed("a number in (0, 1)", lambda v: _is_real(v) and 0 < v < 1, float)
UNIT_CLOSED = _typed("a number in (0, 1]", lambda v: _is_real(v) and 0 < v <= 1, float)
STR = _typed("a string", lambda v: isinstance(v, str))
BOOL = _typed("true or false", lambda v: isinstance(v, bool))
STR_LIST = _typed("a non-empty array of strings",
                  lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
                  tuple)
POS_INT_LIST = _typed(f"a non-empty array of positive integers <= {MAX_INT}",
                      lambda v: isinstance(v, list) and v and all(_is_int(x) and 1 <= x <= MAX_INT
                                                                   for x in v), tuple)
POS_REAL_LIST = _typed(
    "a non-empty array of positive finite numbers",
    lambda v: isinstance(v, list) and v and all(_is_real(x) and 0 < x < math.inf for x in v),
    lambda v: tuple(float(x) for x in v),
)
DISTINCT_POS_REAL_LIST = _typed(
    "a non-empty array of distinct positive finite numbers",
    lambda v: isinstance(v, list) and valid_sizes(v),
    lambda v: tuple(float(x) for x in v),
)
NONZERO_REAL = _typed("a finite non-zero number",
                      lambda v: _is_real(v) and math.isfinite(v) and v != 0, float)
REAL_OR_LIST = _typed(
    "a finite number or an array of finite numbers",
    lambda v: (_is_real(v) and math.isfinite(v)) or (
        isinstance(v, list) and v and all(_is_real(x) and math.isfinite(x) for x in v)),
    lambda v: float(v) if _is_real(v) else tuple(float(x) for x in v),
)
POS_REAL_OR_LIST = _typed(
    "a positive number or an array of positive numbers",
    lambda v: (_is_real(v) and 0 < v < math.inf) or (
        isinstance(v, list) and v and all(_is_real(x) and 0 < x < math.inf for x in v)),
    lambda v: float(v) if _is_real(v) else tuple(float(x) for x in v),
)


def _one_of(*choices):
    return _typed(f"one of {list(choices)}", lambda v: isinstance(v, str) and v in choices)


def _real_or(word: str):
    return _typed(f"a positive number or {word!r}",
                  lambda v: v == word or (_is_real(v) and 0 < v < math.inf),
                  lambda v: v if isinstance(v, str) else float(v))


# ----------------------------------------------------------------------------- the schema

SYSTEMS: dict[str, dict[str, Spec]] = {
    "harmonic_oscillator": {"mass": POS_REAL, "stiffness": POS_REAL},
    "coupled_oscillators": {"n": POS_INT},
    "nbody": {"n_bodies": POS_INT, "dim": POS_INT, "masses": POS_REAL_OR_LIST,
              "gravity": NONNEG_REAL, "softening": POS_REAL},
    "anisotropic_oscillator": {"frequencies": POS_REAL_LIST},
    "magnetic_particle": {"field": NONZERO_REAL},
    "central_force": {"potential": _one_of(*CENTRAL_POTENTIALS), "softening": POS_REAL},
    "henon_heiles": {"energy_fraction": UNIT},
    "quartic_oscillator": {},
}
"""System names and their parameters (App. B and the suite's systems), with their types (the
same names as :data:`~noether_ppl.systems.SYSTEM_PARAMETERS`)."""

SPLIT_KEYS: dict[str, Spec] = {
    "n_trajectories": POS_INT,
    "n_steps": POS_INT,
    "dt": POS_REAL,
    "scale": POS_REAL,
    "position_scale": POS_REAL,
    "shift_scale": NONNEG_REAL,
    "position_shift": REAL_OR_LIST,
}
SPLIT_REQUIRED = ("n_trajectories", "n_steps", "dt")

MODEL_KEYS: dict[str, Spec] = {
    "hidden": POS_INT_LIST,
    "activation": STR,
    "elu_alpha": POS_REAL,
    "n_conserved": NONNEG_INT,
    "sym_samples": POS_INT,
    "measure": STR,
    "measure_scale": POS_REAL,
    "sampling": STR,
    "integrator": STR,
    "substeps": POS_INT,
    "noise_variance": _real_or("empirical"),
    "prior_variance": _real_or("optimal"),
    "conserved_init_scale": POS_REAL,
    "dtype": _one_of("float32", "float64"),
    "mc_likelihood": _one_of(*MC_LIKELIHOODS),
    "mc_groups": POS_INT,
}
"""Types of the ModelSpec fields; ModelSpec validates the values (and any field not listed)."""

def _fit_key(rule: SettingRule) -> Spec:
    """The type of the ``[inference]`` key of a :class:`~noether_ppl.inference.FitSettings`
    field (its annotation and range; see :func:`~noether_ppl.inference.settings.setting_rule`)."""
    if rule.base is str and rule.choices:
        return _one_of(*rule.choices)
    if rule.base is int and not (rule.zero_ok or rule.inf_ok):
        return POS_INT
    if rule.base is float:
        if rule.inf_ok and not rule.zero_ok:
            return POS_REAL_OR_INF
        if rule.zero_ok and not rule.inf_ok:
            return NONNEG_REAL  # 0: as `fit(..., lr_conserved=0)`
        if not (rule.zero_ok or rule.inf_ok):
            return POS_REAL
    raise TypeError(f"FitSettings.{rule.name}: no experiment-file type for {rule}; add one to "
                    f"experiments/settings._fit_key.")


FIT_KEYS: dict[str, Spec] = {rule.name: _fit_key(rule) for rule in setting_rules()}
"""The ``[inference]`` keys of the fields of :class:`~noether_ppl.inference.FitSettings`."""

SELECT_FILE_OPTIONS = ("refit_steps", "extend", "spectrum_samples", "evidence_samples",
                       "refit_from", "refit_sizes", "refit_learns", "refit_lr_conserved",
                       "close")
"""The options of :func:`~noether_ppl.inference.select_conserved` that an experiment file sets
as ``[inference] select_<option>`` (each one of its ``SELECTION_OPTIONS``)."""

_EXPERIMENT_ONLY: dict[str, tuple[Spec, type]] = {
    "epochs": (POS_INT, int),
    "refit": (BOOL, bool),
    "refit_lr_offdiag": (POS_REAL, float),
    "select": (BOOL, bool),
    "select_steps": (POS_INT, int),
    "select_lr": (POS_REAL, float),
    "select_stop": (_one_of(*STOPS), str),
    "select_symmetrised_hnn": (BOOL, bool),
    "select_refit_steps": (POS_INT, int),
    "select_extend": (BOOL, bool),
    "select_spectrum_samples": (POS_INT, int),
    "select_evidence_samples": (POS_INT, int),
    "select_refit_from": (_one_of(*REFIT_FROM), str),
    "select_refit_sizes": (DISTINCT_POS_REAL_LIST, tuple),
    "select_refit_learns": (BOOL, bool),
    "select_refit_lr_conserved": (POS_REAL, float),
    "select_close": (BOOL, bool),
    "checkpoint_every": (POS_INT, int),
}
"""The ``[inference]`` keys of experiments only (not settings of ``fit``): their key type and
the type of their :class:`InferenceSettings` field (default None)."""

EXPERIMENT_INFERENCE_KEYS: dict[str, Spec] = {k: spec for k, (spec, _) in
                                              _EXPERIMENT_ONLY.items()}

INFERENCE_KEYS: dict[str, Spec] = {**FIT_KEYS, **EXPERIMENT_INFERENCE_KEYS}

ANALYSIS_KEYS: dict[str, Spec] = {
    "threshold": UNIT,
    "min_parallelness": UNIT_CLOSED,
    "arviz_samples": NONNEG_INT,
    "figures": BOOL,
    "num_samples": POS_INT,
    "num_repeats": POS_INT,
    "rollouts": BOOL,
    "rollout_steps": POS_INT,
    "rollout_trajectories": POS_INT,
}

TOP_KEYS = ("name", "description", "seed", "variants", "system", "data", "model", "inference",
            "analysis")


# ----------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Split:
    """How to simulate one data set (``HamiltonianSystem.simulate`` arguments, App. C)."""

    n_trajectories: int
    n_steps: int
    dt: float
    scale: float | None = None
    position_scale: float | None = None
    shift_scale: float | None = None
    position_shift: float | tuple | None = None

    def simulate_kwargs(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


class _InferenceMethods:
    """The methods of :class:`InferenceSettings`."""

    def steps_for(self, n_trajectories: int) -> int:
        """Optimisation steps for a training set of ``n_trajectories``."""
        if self.num_steps is not None:
            return self.num_steps
        batch = n_trajectories if self.batch_size is None else self.batch_size
        return self.epochs * -(-n_trajectories // batch)

    def checkpoint_interval(self, num_steps: int) -> int:
        if self.checkpoint_every is not None:
            return self.checkpoint_every
        return max(1, num_steps // 10)

    def fit_kwargs(self, n_trajectories: int) -> dict:
        """The settings of :func:`~noether_ppl.inference.fit` a run records (``num_steps``
        for a training set of ``n_trajectories``, then those recorded ``"always"``, and those
        recorded ``"when_set"`` when set), as :func:`~noether_ppl.runs.fit_in_folder` takes
        them. ``chunk_size`` (not recorded) is not among them."""
        out = {}
        for rule in setting_rules():
            value = getattr(self, rule.name)
            if rule.name == "num_steps":
                out[rule.name] = self.steps_for(n_trajectories)
            elif rule.recorded == "always" or (rule.recorded == "when_set"
                                               and value is not None):
                out[rule.name] = value
        return out


def _inference_default(rule: SettingRule):
    """Unset in an experiment file: a setting recorded "always" has ``fit``'s default (it is in
    every run's ``run.json``); the others None (``fit``'s default, not recorded);
    ``num_steps`` None (``epochs`` is its alternative)."""
    if rule.recorded == "always" and rule.name != "num_steps":
        return rule.default
    return None


_INFERENCE_DOC = """Arguments of :func:`~noether_ppl.inference.fit` (App. C), plus checkpointing.

    One field per field of :class:`~noether_ppl.inference.FitSettings` (its documentation says
    what each does; None: ``fit``'s default), then the experiments' own:
    exactly one of ``num_steps`` and ``epochs`` is set; ``batch_size=None`` is full batch (a
    step is then an epoch, as in App. C.1). ``checkpoint_every``: steps between checkpoints
    (default: a tenth of the run). ``refit``: after each learned variant, fit
    its posterior over θ again with η held at the learned η̂ (a run folder of its own,
    ``<variant>-refit``; :func:`~noether_ppl.inference.refit_posterior`), at the rate
    ``refit_lr_offdiag`` for the Cholesky off-diagonals (None: ``lr_offdiag``; used only with
    ``refit``, so ``--set inference.refit=false`` turns a file's refit off); None is off.
    ``runaway_factor`` None: ``fit``'s default; ``inf``: never.
    ``select`` (``noether-ppl fit --auto``):
    after each learned variant, the recommended pipeline of
    :func:`~noether_ppl.analysis.select_from_fits` on it and the plain HNN (the discovered
    start, then :func:`~noether_ppl.inference.select_conserved`) into a run folder
    ``<variant>-selected``; ``select_steps``: steps of each of its continuation fits (None: a
    quarter of the run's steps); ``select_lr``: their learning rate (None: ``lr``);
    ``select_stop``: when the removals stop (``select_conserved``'s ``stop``, None: its
    default ``"spectrum"``); ``select_symmetrised_hnn``: whether the last comparison also
    continues the plain HNN with the selected symmetry fixed (``select_from_fits``'
    ``symmetrised_hnn``, None: its default, true). ``select_stop = "conserved"`` with
    ``select_symmetrised_hnn = false`` is the earlier rule. ``select_refit_steps``,
    ``select_extend``, ``select_spectrum_samples``, ``select_evidence_samples``,
    ``select_refit_from``, ``select_refit_sizes``, ``select_refit_learns``,
    ``select_refit_lr_conserved``, ``select_close``: ``select_conserved``'s ``refit_steps``,
    ``extend``, ``spectrum_samples``, ``evidence_samples``, ``refit_from``, ``refit_sizes``,
    ``refit_learns``, ``refit_lr_conserved`` and ``close`` (alternatives under measurement;
    None: its defaults, off, ``"continue"``, the median σ alone, off, the fit's
    ``lr_conserved``, off).
    """

InferenceSettings = dataclasses.make_dataclass(
    "InferenceSettings",
    [(rule.name, rule.base | None, dataclasses.field(default=_inference_default(rule)))
     for rule in setting_rules()]
    + [(name, base | None, dataclasses.field(default=None))
       for name, (_, base) in _EXPERIMENT_ONLY.items()],
    bases=(_InferenceMethods,), frozen=True,
    namespace={"__doc__": _INFERENCE_DOC, "__module__": __name__})


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """What is computed and written after fitting.

    ``threshold``: relative singular-value threshold of the learned symmetry's dimension
    (Sec. 5.1); ``min_parallelness``: what counts as correct discovery (0.99 oscillators, 0.95
    n-body); ``arviz_samples``: posterior draws in the ArviZ file (0: no file); ``figures``;
    ``num_samples``, ``num_repeats``, ``rollouts``, ``rollout_steps``,
    ``rollout_trajectories``: arguments of :func:`~noether_ppl.analysis.evaluate.evaluate`.
    """

    threshold: float = DEFAULT_THRESHOLD
    min_parallelness: float = 0.99
    arviz_samples: int = 100
    figures: bool = True
    num_samples: int = 32
    num_repeats: int = 4
    rollouts: bool = True
    rollout_steps: int | None = None
    rollout_trajectories: int | None = None

