"""``FitSettings``: every setting of a fit, one field each (the one place a setting is defined).

:func:`~noether_ppl.inference.fit` takes them (as a ``FitSettings`` or as keyword arguments),
:func:`~noether_ppl.runs.fit_in_folder` takes and records them, and an experiment file's
``[inference]`` table (so ``--set inference.<name>=...``) has one key per field, its type read
from the field's annotation and :func:`setting_rule`. A new setting is one field here (with a
default that changes nothing); what uses it reads it from the ``FitSettings`` of ``fit``.

A field's metadata says what values it takes beyond its type (numbers are positive; ``zero_ok``,
``inf_ok``; ``choices`` for strings) and how a run folder records it (``recorded``):
``"always"`` (part of every run's configuration), ``"when_set"`` (only when given, so that runs
from before the setting existed keep their fingerprint) or ``"never"`` (it does not change
what a fit computes).
"""

import dataclasses
import math
import types
import typing

import numpy as np

__all__ = ["FitSettings", "SettingRule", "setting_rule", "setting_rules", "fit_setting_names",
           "SCHEDULES", "DEFAULT_RUNAWAY_FACTOR"]

SCHEDULES = ("cosine", "constant")
"""The learning-rate schedules of :func:`~noether_ppl.inference.make_optimizer`."""

DEFAULT_RUNAWAY_FACTOR = 100.0
"""``fit``'s default ``runaway_factor``: a run stops only when a chunk's median −ELBO/N exceeds
``best + runaway_factor · max(L0 − best, |best|)``, a rise by orders of magnitude over the
run's own progress; a loss that spikes and recovers can trip a tight limit, so the default is
loose."""

RECORDED = ("always", "when_set", "never")


def _setting(default, doc: str, *, zero_ok=False, inf_ok=False, choices=(),
             recorded="always"):
    assert recorded in RECORDED
    return dataclasses.field(default=default, metadata={
        "doc": doc, "zero_ok": zero_ok, "inf_ok": inf_ok, "choices": tuple(choices),
        "recorded": recorded})


@dataclasses.dataclass(frozen=True)
class SettingRule:
    """The values of one setting: ``base`` (``int``, ``float`` or ``str``), whether None is
    allowed (``optional``), and for numbers, which are positive, whether 0 (``zero_ok``) or inf
    (``inf_ok``) are too; for strings, the ``choices``. ``recorded``: see the module."""

    name: str
    base: type
    optional: bool
    zero_ok: bool
    inf_ok: bool
    choices: tuple
    recorded: str
    default: object
    doc: str

    def expected(self) -> str:
        """What ``fit`` says it expected."""
        if self.base is str:
            return f"one of {self.choices}"
        if self.inf_ok:
            return "a positive number (inf or None: off)" if self.optional else \
                "a positive number (inf allowed)"
        kind = "a positive int" if self.base is int else "a positive finite number"
        return kind + (" or 0" if self.zero_ok else "")

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if self.base is str:
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool):
            return False
        ints = (int, np.integer)
        if not isinstance(value, ints if self.base is int else ints + (float, np.floating)):
            return False
        if self.zero_ok and value == 0:
            return True
        return value > 0 and (self.inf_ok or value < math.inf)

    def check(self, value) -> None:
        """Raise the ``ValueError`` ``fit`` gives for a bad ``value``."""
        if self.accepts(value):
            return
        if self.base is str:
            raise ValueError(f"Unknown `{self.name}` {value!r}; expected one of "
                             f"{self.choices}.")
        raise ValueError(f"Expected `{self.name}` to be {self.expected()}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """The settings of :func:`~noether_ppl.inference.fit` (App. C); validated on creation
    (``ValueError`` naming the setting and what was expected). The fields, in the order runs
    record them (see the module for ``recorded``):"""

    num_steps: int = _setting(
        1000, "optimisation steps (one mini-batch each); full batch: a step is an epoch")
    batch_size: int | None = _setting(
        None, "trajectories per mini-batch (App. C: 20; None: full batch); the likelihood is "
              "scaled to the full data set")
    lr: float = _setting(1e-3, "Adam learning rate of the variational parameters")
    lr_conserved: float | None = _setting(
        None, "Adam learning rate of η (None: lr; 0: η stays at its initial value)",
        zero_ok=True)
    schedule: str = _setting(
        "cosine", "'cosine' (to 0 over num_steps, App. C) or 'constant'", choices=SCHEDULES)
    num_particles: int = _setting(1, "M, weight samples per step (reparameterised)")
    init_scale: float | None = _setting(
        None, "initial posterior standard deviation of every weight of the default guide "
              "(None: the guide's default, 1e-3); only with guide=None", recorded="when_set")
    lr_offdiag: float | None = _setting(
        None, "Adam learning rate of the off-diagonals of the guide's Cholesky factors "
              "(None: lr)", recorded="when_set")
    lr_logdiag: float | None = _setting(
        None, "Adam learning rate of the log-diagonals of the guide's Cholesky factors, the "
              "posterior scales (None: lr)", recorded="when_set")
    runaway_factor: float | None = _setting(
        DEFAULT_RUNAWAY_FACTOR, "stop with RunawayError when a chunk's median -ELBO/N rises "
        "this many times max(L0 - best, |best|) above the best one (None or inf: off)",
        inf_ok=True, recorded="when_set")
    chunk_size: int | None = _setting(
        None, "steps per lax.scan chunk (progress bar, callback and runaway check between "
              "chunks; None: from the progress bar)", recorded="never")

    def __post_init__(self):
        for rule in setting_rules():
            rule.check(getattr(self, rule.name))

    def to_kwargs(self) -> dict:
        """``{name: value}`` of every field (the keyword arguments of ``fit``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def setting_rule(field: dataclasses.Field) -> SettingRule:
    """The :class:`SettingRule` of a field of :class:`FitSettings`, its type from the
    annotation (``int``, ``float``, ``str``, or one of them ``| None``)."""
    hint = typing.get_type_hints(FitSettings)[field.name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or \
        typing.get_origin(hint) is typing.Union else (hint,)
    bases = [a for a in args if a is not type(None)]
    if len(bases) != 1 or bases[0] not in (int, float, str):
        raise TypeError(f"FitSettings.{field.name}: expected an int, float or str annotation "
                        f"(optionally | None), got {hint!r}.")
    meta = field.metadata
    return SettingRule(name=field.name, base=bases[0], optional=len(args) > 1,
                       zero_ok=meta["zero_ok"], inf_ok=meta["inf_ok"],
                       choices=meta["choices"], recorded=meta["recorded"],
                       default=field.default, doc=meta["doc"])


_RULES: list = []


def setting_rules() -> list[SettingRule]:
    """The rules of every field of :class:`FitSettings`, in field order."""
    if not _RULES:
        _RULES.extend(setting_rule(f) for f in dataclasses.fields(FitSettings))
    return list(_RULES)


def fit_setting_names() -> tuple[str, ...]:
    """The names of the fields of :class:`FitSettings`, in order."""
    return tuple(f.name for f in dataclasses.fields(FitSettings))

