"""Experiment files: the paper's experiments (and yours) as declarative, validated TOML.

An experiment file names a system and how to simulate its data, the model, the variants to fit,
the optimiser settings, the analysis and a seed::

    name = "sho"
    seed = 0
    variants = ["vanilla", "learned", "so2"]

    [system]                      # systems.SYSTEM_PARAMETERS: the paper's or the suite's
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

This module reads, overrides (``--set``) and validates a file into an :class:`Experiment`; the
types of the keys and the settings dataclasses are in :mod:`~noether_ppl.experiments.settings`,
the variants in :mod:`~noether_ppl.experiments.variants`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zlib
from importlib import resources
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..inference.complete import check_refit_rate
from ..inference.settings import FitSettings
from ..models.spec import ModelSpec
from ..systems.registry import build_system
from .settings import (
    ANALYSIS_KEYS,
    FIT_KEYS,
    INFERENCE_KEYS,
    MAX_INT,
    MODEL_KEYS,
    SEED,
    SPLIT_KEYS,
    SPLIT_REQUIRED,
    STR,
    STR_LIST,
    SYSTEMS,
    TOP_KEYS,
    AnalysisSettings,
    InferenceSettings,
    Spec,
    Split,
)
from .variants import Variant, resolve_variant

__all__ = [
    "Experiment",
    "load_experiment",
    "parse_experiment",
    "apply_overrides",
    "packaged_experiments",
    "source_text",
]


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
            return resolve_variant(name, self.system if system else None, has_reference)
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


def _check_table(ctx: _Ctx, table, path: str, schema: dict[str, Spec], required=()) -> dict:
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
    system = _parse_system(ctx, raw)
    data = _parse_data(ctx, raw)
    spec = _parse_model(ctx, raw)
    inference = _parse_inference(ctx, raw, data["train"])
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
            resolve_variant(v, system)
        except ValueError as err:
            raise ctx.error("variants", str(err)) from None
    return exp


def _parse_system(ctx: _Ctx, raw: dict) -> dict:
    """``[system]``: ``{"name": ..., **parameters}``."""
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
    try:  # values the types allow but the system refuses (e.g. masses of another length)
        build_system({"name": sys_name, **params})
    except (ValueError, TypeError) as err:
        raise ctx.error("system", str(err)) from None
    return {"name": sys_name, **params}


def _parse_data(ctx: _Ctx, raw: dict) -> dict:
    """``[data.*]``: ``{name: Split}``, with ``"train"``."""
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
                                           required=SPLIT_REQUIRED))
        points = data[split].n_trajectories * (data[split].n_steps + 1)
        if points > MAX_INT:
            raise ctx.error(f"data.{split}", f"{data[split].n_trajectories} trajectories x "
                            f"{data[split].n_steps + 1} points = {points} states, more than "
                            f"{MAX_INT}")
    if "train" not in data:
        raise ctx.error("data.train", "missing (required: the training set)")
    return data


def _parse_model(ctx: _Ctx, raw: dict) -> ModelSpec:
    """``[model]``: the :class:`~noether_ppl.models.ModelSpec` of the learned variant."""
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
        return ModelSpec(**model_kwargs)
    except ValueError as err:
        raise ValueError(f"{ctx.source}: [model]: {err}") from None


def _parse_inference(ctx: _Ctx, raw: dict, train: Split) -> InferenceSettings:
    """``[inference]``, checked against the training set."""
    inf = _check_table(ctx, raw.get("inference", {}), "inference", INFERENCE_KEYS)
    if ("num_steps" in inf) == ("epochs" in inf):
        raise ctx.error("inference", "give exactly one of num_steps and epochs")
    try:  # the checks of `fit` (the key types above are at least as strict)
        FitSettings(**{k: v for k, v in inf.items() if k in FIT_KEYS})
    except ValueError as err:
        raise ValueError(f"{ctx.source}: [inference]: {err}") from None
    inference = InferenceSettings(**inf)
    if inference.steps_for(train.n_trajectories) > MAX_INT:
        raise ctx.error("inference.epochs", f"{inference.epochs} epochs of "
                        f"{train.n_trajectories} trajectories are more than {MAX_INT} "
                        f"steps")
    if inference.batch_size is not None and inference.batch_size > train.n_trajectories:
        raise ctx.error("inference.batch_size",
                        f"{inference.batch_size} is more than data.train.n_trajectories = "
                        f"{train.n_trajectories}")
    try:  # the checks of `select_conserved` (the key's type above is at least as strict)
        check_refit_rate(inference.select_refit_lr_conserved, bool(inference.select_refit_learns))
    except ValueError:
        raise ctx.error("inference.select_refit_lr_conserved",
                        "η's rate in refits that learn it needs select_refit_learns = true"
                        ) from None
    return inference


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
