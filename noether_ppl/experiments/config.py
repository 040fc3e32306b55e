"""Experiment files: the paper's experiments (and yours) as declarative, validated TOML.

An experiment file names a system and how to simulate its data, the model, the variants to fit,
the optimiser settings, the analysis and a seed::

    name = "sho"
    seed = 0
    variants = ["vanilla", "learned", "so2"]

    [system]                      # harmonic_oscillator | coupled_oscillators | nbody
    name = "harmonic_oscillator"

    [data.train]                  # one table per data set; every other name is a test set
    n_trajectories = 7
    n_steps = 3                   # Δt steps per trajectory (n_steps + 1 points)
    dt = 0.2

    [model]                       # fields of noether_ppl.models.ModelSpec
    hidden = [200, 200]
    n_conserved = 1               # K of the "learned" variant

    [inference]
    epochs = 2000                 # or num_steps; an epoch = ceil(N / batch_size) steps
    lr = 1e-3

    [analysis]
    threshold = 0.05

``[inference] refit = true`` adds, after each learned variant, a run with its posterior over θ
fitted again at the learned conserved quantities (``<variant>-refit``; see
:class:`InferenceSettings`).

Variants: ``"vanilla"`` (K = 0, the plain HNN), ``"learned"`` (K = ``model.n_conserved``
learned conserved quantities), ``"oracle"`` (the system's ground-truth generators, App. B) or
a fixed group by name: ``"so2"`` (harmonic oscillator), ``"u(n)"`` or e.g. ``"u(3)"`` (n
coupled oscillators) and ``"se2"`` (n bodies in 2-D: SE(2)'s three generators, translations
``T_x, T_y`` and the rotation ``R^ABS``, the oracle of the paper's Table 3; ``"oracle"`` fixes
all seven generators of App. B.3's algebra, which has the same orbits). Unknown keys, wrong
types and unknown variants are ``ValueError``s that name the key and the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import zlib
from importlib import resources
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..analysis.symmetry import DEFAULT_THRESHOLD
from ..models.spec import ModelSpec

__all__ = [
    "Experiment",
    "Split",
    "InferenceSettings",
    "AnalysisSettings",
    "Variant",
    "load_experiment",
    "parse_experiment",
    "apply_overrides",
    "packaged_experiments",
    "build_system",
    "SYSTEMS",
]

# ----------------------------------------------------------------------------- type checks


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Spec:
    """A key's type: ``check(value) -> converted`` or raise ``TypeError(expected)``."""

    def __init__(self, expected: str, check):
        self.expected = expected
        self.check = check


def _typed(expected, pred, convert=lambda v: v):
    def check(v):
        if not pred(v):
            raise TypeError(expected)
        return convert(v)

    return _Spec(expected, check)


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

SYSTEMS: dict[str, dict[str, _Spec]] = {
    "harmonic_oscillator": {"mass": POS_REAL, "stiffness": POS_REAL},
    "coupled_oscillators": {"n": POS_INT},
    "nbody": {"n_bodies": POS_INT, "dim": POS_INT, "masses": POS_REAL_OR_LIST,
              "gravity": NONNEG_REAL, "softening": POS_REAL},
}
"""System names and their parameters (App. B)."""

SPLIT_KEYS: dict[str, _Spec] = {
    "n_trajectories": POS_INT,
    "n_steps": POS_INT,
    "dt": POS_REAL,
    "scale": POS_REAL,
    "position_scale": POS_REAL,
    "shift_scale": NONNEG_REAL,
    "position_shift": REAL_OR_LIST,
}
_SPLIT_REQUIRED = ("n_trajectories", "n_steps", "dt")

MODEL_KEYS: dict[str, _Spec] = {
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
}
"""Types of the ModelSpec fields; ModelSpec validates the values (and any field not listed)."""

INFERENCE_KEYS: dict[str, _Spec] = {
    "num_steps": POS_INT,
    "epochs": POS_INT,
    "batch_size": POS_INT,
    "lr": POS_REAL,
    "lr_conserved": NONNEG_REAL,  # 0: η held at its start (as `fit(..., lr_conserved=0)`)
    "schedule": _one_of("cosine", "constant"),
    "num_particles": POS_INT,
    "init_scale": POS_REAL,
    "lr_offdiag": POS_REAL,
    "refit": BOOL,
    "refit_lr_offdiag": POS_REAL,
    "select": BOOL,
    "select_steps": POS_INT,
    "runaway_factor": POS_REAL_OR_INF,
    "chunk_size": POS_INT,
    "checkpoint_every": POS_INT,
}

ANALYSIS_KEYS: dict[str, _Spec] = {
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



def build_system(system: dict):
    """A system from ``{"name": ..., **parameters}`` (the ``[system]`` table; see
    :data:`SYSTEMS`)."""
    from .. import systems

    if not isinstance(system, dict) or system.get("name") not in SYSTEMS:
        raise ValueError(f"Expected a system table with name in {list(SYSTEMS)}, got {system!r}.")
    params = {k: v for k, v in system.items() if k != "name"}
    unknown = set(params) - set(SYSTEMS[system["name"]])
    if unknown:
        raise ValueError(f"Unknown parameter(s) {sorted(unknown)} of system {system['name']!r}.")
    cls = {"harmonic_oscillator": systems.HarmonicOscillator,
           "coupled_oscillators": systems.CoupledOscillators,
           "nbody": systems.NBody}[system["name"]]
    if isinstance(params.get("masses"), (tuple, list)):
        params["masses"] = list(params["masses"])
    return cls(**params)


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


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """Arguments of :func:`~noether_ppl.inference.fit` (App. C), plus checkpointing.

    Exactly one of ``num_steps`` and ``epochs`` is set; ``batch_size=None`` is full batch (a
    step is then an epoch, as in App. C.1). ``checkpoint_every``: steps between checkpoints
    (default: a tenth of the run). ``init_scale``: the guide's initial posterior standard
    deviation (None: :class:`~noether_ppl.inference.AutoMatrixNormal`'s default).
    ``lr_offdiag``: learning rate of the guide's Cholesky off-diagonals (None: ``lr``;
    :func:`~noether_ppl.inference.make_optimizer`). ``refit``: after each learned variant, fit
    its posterior over θ again with η held at the learned η̂ (a run folder of its own,
    ``<variant>-refit``; :func:`~noether_ppl.inference.refit_posterior`), at the rate
    ``refit_lr_offdiag`` for the Cholesky off-diagonals (None: ``lr_offdiag``; used only with
    ``refit``, so ``--set inference.refit=false`` turns a file's refit off); None is off.
    ``runaway_factor``: when a run whose loss grows by orders of magnitude is stopped
    (:func:`~noether_ppl.inference.fit`; None: its default, ``inf``: never).
    ``lr_conserved``: the learning rate of η (None: ``lr``; 0: η stays at its
    initial value, as ``fit(..., lr_conserved=0)``). ``select`` (``noether-ppl fit --auto``):
    after each learned variant, the recommended pipeline of
    :func:`~noether_ppl.analysis.select_from_fits` on it and the plain HNN (the discovered
    start, then :func:`~noether_ppl.inference.select_conserved`) into a run folder
    ``<variant>-selected``; ``select_steps``: steps of each of its continuation fits (None: a
    quarter of the run's steps).
    """

    num_steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float = 1e-3
    lr_conserved: float | None = None
    schedule: str = "cosine"
    num_particles: int = 1
    init_scale: float | None = None
    lr_offdiag: float | None = None
    refit: bool | None = None
    refit_lr_offdiag: float | None = None
    select: bool | None = None
    select_steps: int | None = None
    runaway_factor: float | None = None
    chunk_size: int | None = None
    checkpoint_every: int | None = None

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


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model of an experiment: ``kind`` is ``"vanilla"``, ``"learned"`` or ``"fixed"``."""

    name: str
    kind: str
    label: str
    slug: str
    generators: tuple[str, ...] | None = None
    """For a fixed group: the names of the system's generators it fixes (None: all of them)."""


_GROUP_LABELS = {"so2": "SO(2)", "se2": "SE(2)"}
_GROUP_GENERATORS = {"se2": ("T_x", "T_y", "R^ABS_xy")}
"""Groups that fix some of their system's generators, by name (the others fix all of them).
SE(2), the paper's fixed-symmetry oracle of Table 3: translations and the rotation about the
origin, three of the seven generators of the algebra G with the same orbits (App. B.3)."""


def _variant(name: str, system: dict | None, has_reference: bool = False) -> Variant:
    """Resolve a variant name against the system (None: user data without a system)."""
    if name == "vanilla":
        return Variant(name, "vanilla", "HNN", "vanilla")
    if name == "learned":
        return Variant(name, "learned", "HNN + learned symmetry", "learned")
    if name == "oracle":
        if system is None and not has_reference:
            raise ValueError("variant 'oracle' needs ground-truth generators: a simulated "
                             "system or a reference file")
        what = "ground truth" if system is not None else "reference"
        return Variant(name, "fixed", f"HNN + fixed {what}", "oracle")
    sys_name = None if system is None else system["name"]
    m = re.fullmatch(r"u\((n|\d+)\)", name)
    if name in _GROUP_LABELS or m:
        if system is None:
            raise ValueError(f"variant {name!r} uses the ground truth of a simulated system; "
                             f"with your own data use a reference file and variant 'oracle'")
        if name == "so2" and sys_name != "harmonic_oscillator":
            raise ValueError(f"variant 'so2' is the symmetry of the harmonic_oscillator system, "
                             f"not of {sys_name!r}")
        if name == "se2" and not (sys_name == "nbody" and system.get("dim", 2) == 2):
            raise ValueError("variant 'se2' is the symmetry of the nbody system in dim = 2")
        if m:
            if sys_name != "coupled_oscillators":
                raise ValueError(f"variant {name!r} is the symmetry of the coupled_oscillators "
                                 f"system, not of {sys_name!r}")
            n = system.get("n", 3)
            if m.group(1) != "n" and int(m.group(1)) != n:
                raise ValueError(f"variant {name!r} does not match system.n = {n}")
            return Variant(name, "fixed", f"HNN + fixed U({n})", f"u{n}")
        return Variant(name, "fixed", f"HNN + fixed {_GROUP_LABELS[name]}", name,
                       _GROUP_GENERATORS.get(name))
    raise ValueError(
        f"unknown variant {name!r}; expected 'vanilla', 'learned', 'oracle' or a group "
        f"name ('so2', 'u(n)', 'se2')"
    )


# ----------------------------------------------------------------------------- the experiment


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A validated experiment (see the module docstring for the file format).

    ``system`` is ``{"name": ..., **parameters}``; ``data`` maps data-set names to
    :class:`Split` (``"train"`` is the training set, every other name a test set);
    ``model`` is the :class:`~noether_ppl.models.ModelSpec` of the learned variant (the
    vanilla and fixed-group variants use it with their own K); ``source`` is the file (or
    ``"<dict>"``) and ``overrides`` the ``key=value`` changes applied to it.
    """

    name: str
    seed: int
    variants: tuple[str, ...]
    system: dict
    data: dict
    model: ModelSpec
    inference: InferenceSettings
    analysis: AnalysisSettings
    description: str = ""
    source: str = "<dict>"
    overrides: tuple[str, ...] = ()

    # -- variants and models -----------------------------------------------------------
    def variant(self, name: str, *, system: bool = True, has_reference: bool = False) -> Variant:
        """Resolve a variant name (``system=False``: the data are the user's, no system)."""
        try:
            return _variant(name, self.system if system else None, has_reference)
        except ValueError as err:
            raise ValueError(f"{self.source}: {err}.") from None

    def make_system(self):
        """The :mod:`~noether_ppl.systems` object of ``[system]``."""
        try:
            return build_system(self.system)
        except ValueError as err:
            raise ValueError(f"{self.source}: [system]: {err}") from None

    def spec_for(self, variant: Variant) -> ModelSpec:
        """The ModelSpec of ``variant``: K = 0 for vanilla, ``model.n_conserved`` otherwise
        (a fixed group replaces K by its number of generators)."""
        if variant.kind == "vanilla":
            return self.model.replace(n_conserved=0)
        if self.model.n_conserved == 0:
            raise ValueError(f"{self.source}: variant {variant.name!r} needs model.n_conserved "
                             f">= 1 (it is 0).")
        return self.model

    # -- keys ---------------------------------------------------------------------------
    def keys(self):
        """``(data_key(split), fit_key, eval_key)``: every PRNG key of the experiment derives
        from ``seed``; data sets by name, the same fit and evaluation keys for every variant."""
        import jax

        root = jax.random.key(self.seed)
        k_data, k_fit, k_eval = (jax.random.fold_in(root, i) for i in range(3))

        def data_key(split: str):
            return jax.random.fold_in(k_data, zlib.crc32(split.encode()) & 0x7FFFFFFF)

        return data_key, k_fit, k_eval

    # -- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        """The resolved experiment as plain data (JSON-able; reloads with :meth:`from_dict`)."""

        def clean(d):
            return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
                    if v is not None}

        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "variants": list(self.variants),
            "system": clean(self.system),
            "data": {k: clean(dataclasses.asdict(s)) for k, s in self.data.items()},
            "model": {k: v for k, v in self.model.to_dict().items() if v is not None},
            "inference": clean(dataclasses.asdict(self.inference)),
            "analysis": clean(dataclasses.asdict(self.analysis)),
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>", overrides=()) -> Experiment:
        return parse_experiment(d, source=source, overrides=overrides)

    def replace(self, overrides) -> Experiment:
        """A copy with ``key=value`` overrides applied (and everything validated again)."""
        overrides = list(overrides)
        raw, _ = apply_overrides(self.to_dict(), overrides, source=self.source)
        return parse_experiment(raw, source=self.source,
                                overrides=tuple(self.overrides) + tuple(overrides))


# ----------------------------------------------------------------------------- parsing


class _Ctx:
    def __init__(self, source: str, set_keys: set):
        self.source = source
        self.set_keys = set_keys

    def error(self, key: str, problem: str) -> ValueError:
        via = " (from --set)" if key in self.set_keys else ""
        return ValueError(f"{self.source}: {key}{via}: {problem}")


def _check_table(ctx: _Ctx, table, path: str, schema: dict[str, _Spec], required=()) -> dict:
    if not isinstance(table, dict):
        raise ctx.error(path, f"expected a table, got {type(table).__name__}")
    out = {}
    for key, value in table.items():
        full = f"{path}.{key}" if path else key
        if key not in schema:
            raise ctx.error(full, f"unknown key (expected one of: {', '.join(schema)})")
        try:
            out[key] = schema[key].check(value)
        except TypeError as err:
            raise ctx.error(full, f"expected {err}, got {value!r}") from None
    for key in required:
        if key not in out:
            raise ctx.error(f"{path}.{key}" if path else key, "missing (required)")
    return out


def parse_experiment(raw: dict, *, source: str = "<dict>", overrides=(),
                     set_keys: set | None = None) -> Experiment:
    """Validate a parsed experiment (a dict as read from TOML) into an :class:`Experiment`."""
    ctx = _Ctx(source, set_keys or set())
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a TOML document (a table), got "
                         f"{type(raw).__name__}.")
    for key in raw:
        if key not in TOP_KEYS:
            raise ctx.error(key, f"unknown key (expected one of: {', '.join(TOP_KEYS)})")
    top = _check_table(ctx, {k: raw[k] for k in ("name", "description", "seed", "variants")
                             if k in raw},
                       "", {"name": STR, "description": STR, "seed": SEED,
                            "variants": STR_LIST},
                       required=("name", "seed", "variants"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", top["name"]):
        raise ctx.error("name", f"expected letters, digits, '_', '-' or '.', got "
                        f"{top['name']!r}")

    # [system]
    if "system" not in raw:
        raise ctx.error("system", "missing (required)")
    system = raw["system"]
    if not isinstance(system, dict):
        raise ctx.error("system", f"expected a table, got {type(system).__name__}")
    sys_name = system.get("name")
    if sys_name not in SYSTEMS:
        raise ctx.error("system.name", f"expected one of {list(SYSTEMS)}, got {sys_name!r}")
    params = _check_table(ctx, {k: v for k, v in system.items() if k != "name"}, "system",
                          SYSTEMS[sys_name])
    system = {"name": sys_name, **params}

    # [data.*]
    if "data" not in raw:
        raise ctx.error("data", "missing (required)")
    if not isinstance(raw["data"], dict):
        raise ctx.error("data", f"expected a table of data sets, got "
                        f"{type(raw['data']).__name__}")
    data = {}
    for split, table in raw["data"].items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", split):
            raise ctx.error(f"data.{split}", "data-set names are letters, digits, '_', '-'")
        data[split] = Split(**_check_table(ctx, table, f"data.{split}", SPLIT_KEYS,
                                           required=_SPLIT_REQUIRED))
        points = data[split].n_trajectories * (data[split].n_steps + 1)
        if points > MAX_INT:
            raise ctx.error(f"data.{split}", f"{data[split].n_trajectories} trajectories x "
                            f"{data[split].n_steps + 1} points = {points} states, more than "
                            f"{MAX_INT}")
    if "train" not in data:
        raise ctx.error("data.train", "missing (required: the training set)")

    # [model]
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        raise ctx.error("model", f"expected a table, got {type(model_raw).__name__}")
    spec_fields = {f.name for f in dataclasses.fields(ModelSpec)}
    for key in model_raw:
        if key not in spec_fields:
            raise ctx.error(f"model.{key}", f"unknown key (expected fields of ModelSpec: "
                            f"{', '.join(sorted(spec_fields))})")
    known = {k: v for k, v in model_raw.items() if k in MODEL_KEYS}
    model_kwargs = _check_table(ctx, known, "model", MODEL_KEYS)
    model_kwargs.update({k: v for k, v in model_raw.items() if k not in MODEL_KEYS})
    try:
        spec = ModelSpec(**model_kwargs)
    except ValueError as err:
        raise ValueError(f"{source}: [model]: {err}") from None

    # [inference]
    inf = _check_table(ctx, raw.get("inference", {}), "inference", INFERENCE_KEYS)
    if ("num_steps" in inf) == ("epochs" in inf):
        raise ctx.error("inference", "give exactly one of num_steps and epochs")
    inference = InferenceSettings(**inf)
    if inference.steps_for(data["train"].n_trajectories) > MAX_INT:
        raise ctx.error("inference.epochs", f"{inference.epochs} epochs of "
                        f"{data['train'].n_trajectories} trajectories are more than {MAX_INT} "
                        f"steps")
    if inference.batch_size is not None and inference.batch_size > data["train"].n_trajectories:
        raise ctx.error("inference.batch_size",
                        f"{inference.batch_size} is more than data.train.n_trajectories = "
                        f"{data['train'].n_trajectories}")

    # [analysis]
    analysis = AnalysisSettings(**_check_table(ctx, raw.get("analysis", {}), "analysis",
                                               ANALYSIS_KEYS))

    variants = top["variants"]
    if len(set(variants)) != len(variants):
        raise ctx.error("variants", f"repeated names in {list(variants)}")
    exp = Experiment(name=top["name"], seed=top["seed"], variants=variants, system=system,
                     data=data, model=spec, inference=inference, analysis=analysis,
                     description=top.get("description", ""), source=source,
                     overrides=tuple(overrides))
    for v in variants:
        try:
            _variant(v, system)
        except ValueError as err:
            raise ctx.error("variants", str(err)) from None
    return exp


# ----------------------------------------------------------------------------- overrides


def _parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (``8``, ``1e-3``, ``[8, 8]``, ``true``, ``"x"``); anything
    that is not a TOML value is taken as a string (``tanh``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides, *, source: str = "<dict>") -> tuple[dict, set]:
    """Apply ``key=value`` strings (dotted keys, e.g. ``inference.num_steps=5``) to a copy of
    ``raw``. Returns ``(new_raw, set_keys)``. Setting ``inference.num_steps`` removes
    ``inference.epochs`` and vice versa (they are alternatives)."""
    import copy

    raw = copy.deepcopy(raw)
    set_keys = set()
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value (e.g. inference.num_steps=5).")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not key or not all(parts):
            raise ValueError(f"--set {item!r}: expected a dotted key such as "
                             f"inference.num_steps.")
        node = raw
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{source}: --set {key}: {'.'.join(parts[:i + 1])} is not a "
                                 f"table.")
        node[parts[-1]] = _parse_value(text.strip())
        if parts[:-1] == ["inference"] and parts[-1] in ("num_steps", "epochs"):
            other = "epochs" if parts[-1] == "num_steps" else "num_steps"
            node.pop(other, None)
        set_keys.add(key)
    return raw, set_keys


# ----------------------------------------------------------------------------- loading


def packaged_experiments() -> list[str]:
    """Names of the experiment files shipped with the package."""
    files = resources.files(__package__)
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _read(name_or_path) -> tuple[str, str]:
    """``(text, source)`` of a packaged name or a path."""
    text_path = os.fspath(name_or_path)
    if os.path.isfile(text_path):
        with open(text_path, "rb") as f:
            data = f.read()
        source = text_path
    elif text_path.endswith(".toml") or os.sep in text_path:
        raise FileNotFoundError(f"No experiment file at {text_path!r}.")
    else:
        res = resources.files(__package__) / f"{text_path}.toml"
        if not res.is_file():
            raise ValueError(f"Unknown experiment {text_path!r}: not a file, and not one of the "
                             f"packaged experiments {packaged_experiments()}.")
        data = res.read_bytes()
        source = f"{text_path}.toml (packaged)"
    try:
        return data.decode("utf-8"), source
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not a UTF-8 text file.") from None


def source_text(experiment: Experiment) -> str | None:
    """The text of the file an experiment was read from (packaged or a path), or None."""
    src = experiment.source
    if src.endswith(" (packaged)"):
        res = resources.files(__package__) / src[: -len(" (packaged)")]
        return res.read_text(encoding="utf-8") if res.is_file() else None
    if os.path.isfile(src):
        with open(src, encoding="utf-8") as f:
            return f.read()
    return None


def load_experiment(name_or_path, overrides=()) -> Experiment:
    """Read, override and validate an experiment: a packaged name (``"sho"``,
    ``"nbody2d3-cpu"``, see :func:`packaged_experiments`) or the path of any TOML file.

    ``overrides``: ``key=value`` strings applied before validation (``--set`` on the command
    line). Raises ``ValueError`` naming the file and the key for invalid TOML, unknown keys,
    wrong types or values, and unknown variants.
    """
    text, source = _read(name_or_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source}: invalid TOML: {err}") from None
    overrides = tuple(overrides)
    raw, set_keys = apply_overrides(raw, overrides, source=source)
    return parse_experiment(raw, source=source, overrides=overrides, set_keys=set_keys)
