"""What the files of run and experiment folders must hold: one check per file kind.

Every reader of a folder (``report``, ``discover``, ``fit --resume``, :func:`open_run`) goes
through these checks, so a malformed file — valid JSON or ``.npz`` with the wrong content,
whether damaged, hand-edited or written by something else — is refused with one
:class:`MalformedFileError` (a ``ValueError``) that names the file, the key and what was
expected, instead of failing later with a ``KeyError`` or ``TypeError`` deep in the analysis.

- :func:`check_run_info`: ``run.json``;
- :func:`check_experiment_record`: an experiment folder's ``experiment.json``;
- :func:`check_metrics`: ``metrics.json`` (non-finite numbers, stored as ``"nan"``/``"inf"``,
  come back as floats);
- :func:`check_discovery`: ``discovery.json``;
- :func:`check_params`, :func:`check_trace`, :func:`check_reference`: the arrays of
  ``params.npz`` (finite, floating), ``trace.npz`` and ``reference.npz``.

Paths inside a folder's records must be relative and stay inside the folder.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "MalformedFileError",
    "check_run_info",
    "check_experiment_record",
    "check_metrics",
    "check_discovery",
    "check_params",
    "check_trace",
    "check_reference",
    "RUN_KIND",
    "RUN_VERSION",
    "EXPERIMENT_KIND",
    "EXPERIMENT_VERSION",
    "RUN_STATUSES",
]

RUN_KIND = "noether-ppl run"
RUN_VERSION = 1
EXPERIMENT_KIND = "noether-ppl experiment"
EXPERIMENT_VERSION = 1
RUN_STATUSES = ("running", "complete", "diverged")


class MalformedFileError(ValueError):
    """A file of a run or experiment folder does not hold what it should: ``path`` (the file),
    ``key`` (dotted, where in it) and ``expected`` (what belongs there)."""

    def __init__(self, what: str, path: str, key: str, expected: str, got: str | None = None):
        self.path, self.key, self.expected = path, key, expected
        text = f"The {what} {path!r} is malformed: {key}: expected {expected}"
        super().__init__(text + (f", got {got}." if got is not None else "."))


class _Bad(Exception):
    def __init__(self, key: str, expected: str, value: Any = None, missing: bool = False):
        self.key, self.expected, self.value, self.missing = key, expected, value, missing


def _show(value) -> str:
    if isinstance(value, dict):
        return f"an object with keys {sorted(map(str, value))[:6]}" if value else "{}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


Check = Callable[[Any, str], Any]


def _join(key: str, sub) -> str:
    return f"{key}.{sub}" if key else str(sub)


def _is(expected: str, pred, convert=lambda v: v) -> Check:
    def check(v, key):
        if not pred(v):
            raise _Bad(key, expected, v)
        return convert(v)

    return check


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "Infinity": math.inf,
              "-Infinity": -math.inf, "NaN": math.nan}

STR = _is("a string", lambda v: isinstance(v, str))
BOOL = _is("true or false", lambda v: isinstance(v, bool))
INT = _is("an integer", _int)
NONNEG_INT = _is("an integer >= 0", lambda v: _int(v) and v >= 0)
POS_INT = _is("a positive integer", lambda v: _int(v) and v >= 1)
POS_EVEN_INT = _is("a positive even integer", lambda v: _int(v) and v >= 2 and v % 2 == 0)
POS_FINITE = _is("a positive finite number", lambda v: _real(v) and 0 < v < math.inf, float)
UNIT = _is("a number in (0, 1)", lambda v: _real(v) and 0 < v < 1, float)
NUMBER = _is('a number (or "nan", "inf", "-inf")',
             lambda v: _real(v) or (isinstance(v, str) and v in _NONFINITE),
             lambda v: _NONFINITE[v] if isinstance(v, str) else v)
OBJECT = _is("an object", lambda v: isinstance(v, dict))
SHA256 = _is("a SHA-256 digest (64 hex digits)",
             lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None)


def _safe_relpath(v) -> bool:
    if not isinstance(v, str) or not v or "\\" in v or "\x00" in v:
        return False
    if os.path.isabs(v) or v.startswith("/"):
        return False
    parts = v.split("/")
    return all(p not in ("", ".", "..") for p in parts)


SECONDS = _is("a finite number of seconds >= 0", lambda v: _real(v) and 0 <= v < math.inf,
              float)
RELPATH = _is("a relative path inside the folder (no '..')", _safe_relpath)


def optional(check: Check) -> Check:
    def opt(v, key):
        return None if v is None else check(v, key)

    return opt


def one_of(*choices) -> Check:
    return _is(f"one of {list(choices)}", lambda v: isinstance(v, str) and v in choices)


def list_of(item: Check, expected: str, min_len: int = 0) -> Check:
    def check(v, key):
        if not isinstance(v, list) or len(v) < min_len:
            raise _Bad(key, expected, v)
        return [item(x, _join(key, i)) for i, x in enumerate(v)]

    return check


def dict_of(name: Check, value: Check, expected: str, min_len: int = 0) -> Check:
    def check(v, key):
        if not isinstance(v, dict) or len(v) < min_len:
            raise _Bad(key, expected, v)
        out = {}
        for k, x in v.items():
            name(k, _join(key, k))
            out[k] = value(x, _join(key, k))
        return out

    return check


def obj(fields: dict[str, tuple[Check, bool]], expected: str = "an object") -> Check:
    """An object with these ``{key: (check, required)}``; other keys are kept unchecked."""

    def check(v, key):
        if not isinstance(v, dict):
            raise _Bad(key, expected, v)
        out = dict(v)
        for k, (c, required) in fields.items():
            if k in v:
                out[k] = c(v[k], _join(key, k))
            elif required:
                raise _Bad(_join(key, k), "it to be present", missing=True)
        return out

    return check


def _run(check: Check, value, what: str, path) -> Any:
    path = os.fspath(path)
    try:
        return check(value, "")
    except _Bad as bad:
        key = bad.key or "(the whole file)"
        if bad.missing:
            raise MalformedFileError(what, path, key, "it to be present", "nothing") from None
        raise MalformedFileError(what, path, key, bad.expected, _show(bad.value)) from None


def _header(obj_: dict, what: str, path, kind: str, version: int) -> None:
    path = os.fspath(path)
    if obj_.get("kind") != kind:
        raise MalformedFileError(what, path, "kind", repr(kind) + " (a file of noether-ppl)",
                                 _show(obj_.get("kind")))
    if obj_.get("version") != version:
        raise ValueError(f"{path!r} has format version {obj_.get('version')!r}; this version of "
                         f"noether-ppl reads version {version}.")


# ----------------------------------------------------------------------------- JSON files
_SPLIT = dict_of(STR, SECONDS, "an object {phase: seconds}")
TIMING = obj({
    "simulate_s": (SECONDS, False),
    "fit_s": (SECONDS, False),
    "analysis_s": (SECONDS, False),
    "io_s": (SECONDS, False),
    "wall_s": (SECONDS, False),
    "analysis": (_SPLIT, False),
})
"""Where the time went (:mod:`noether_ppl.runs.timing`): optional in ``run.json``,
``experiment.json`` and ``metrics.json``, so folders written before it still load."""

_META = obj({
    "label": (STR, False),
    "order": (INT, False),
    "experiment": (optional(STR), False),
    "variant": (STR, False),
    "system": (optional(OBJECT), False),
    "analysis": (obj({"threshold": (UNIT, False)}), False),
    "refit_of": (STR, False),
})

RUN_INFO = obj({
    "variant": (STR, True),
    "label": (STR, False),
    "spec": (OBJECT, True),
    "phase_dim": (POS_EVEN_INT, True),
    "n_conserved": (NONNEG_INT, False),
    "fixed_generators": (BOOL, True),
    "fit": (obj({"num_particles": (POS_INT, False), "num_steps": (POS_INT, False),
                 "checkpoint_every": (POS_INT, False)}), False),
    "fingerprint": (optional(SHA256), False),
    "meta": (_META, False),
    "status": (one_of(*RUN_STATUSES), True),
    "steps": (NONNEG_INT, True),
    "dt": (POS_FINITE, True),
    "num_data": (POS_INT, True),
    "info": (OBJECT, False),
    "data": (dict_of(STR, RELPATH, "an object {data-set name: relative path}"), False),
    "files": (dict_of(RELPATH, SHA256, "an object {relative path: SHA-256 digest}"), True),
    "timing": (optional(TIMING), False),
})


def check_run_info(info, path) -> dict:
    """The ``run.json`` object ``info`` read from ``path``, checked (kind, version, every key
    the readers use, paths inside the folder); raises :class:`MalformedFileError`."""
    if not isinstance(info, dict):
        raise MalformedFileError("run file", os.fspath(path), "(the whole file)", "an object",
                                 _show(info))
    _header(info, "run file", path, RUN_KIND, RUN_VERSION)
    info = _run(RUN_INFO, info, "run file", path)
    for name, rel in (info.get("data") or {}).items():
        if rel not in info["files"]:
            raise MalformedFileError("run file", os.fspath(path), f"data.{name}",
                                     "a path listed in 'files'", _show(rel))
    return info


_FILE_ENTRY = obj({"path": (RELPATH, True), "sha256": (SHA256, True)},
                  "an object {path, sha256}")

EXPERIMENT_RECORD = obj({
    "experiment": (OBJECT, True),
    "source": (STR, False),
    "overrides": (list_of(STR, "a list of key=value strings"), False),
    "variants": (list_of(STR, "a non-empty list of variant names", min_len=1), True),
    "data": (obj({
        "source": (one_of("simulated", "user"), True),
        "files": (dict_of(STR, _FILE_ENTRY, "an object {data-set name: {path, sha256}}"), True),
        "user_file": (STR, False),
        "init_conserved": (_FILE_ENTRY, False),
    }), True),
    "timing": (optional(TIMING), False),
})


def check_experiment_record(record, path) -> dict:
    """An experiment folder's ``experiment.json`` object, checked; the data files must include
    ``train``. Raises :class:`MalformedFileError`."""
    if not isinstance(record, dict):
        raise MalformedFileError("experiment file", os.fspath(path), "(the whole file)",
                                 "an object", _show(record))
    _header(record, "experiment file", path, EXPERIMENT_KIND, EXPERIMENT_VERSION)
    record = _run(EXPERIMENT_RECORD, record, "experiment file", path)
    if "train" not in record["data"]["files"]:
        raise MalformedFileError("experiment file", os.fspath(path), "data.files.train",
                                 "it to be present", "nothing")
    return record


_NUMBERS = list_of(NUMBER, "a list of numbers")

METRICS = obj({
    "train_mse": (optional(NUMBER), False),
    "nll_per_n": (optional(NUMBER), False),
    "kl_per_n": (optional(NUMBER), False),
    "neg_elbo_per_n": (optional(NUMBER), False),
    "test_mse": (optional(lambda v, key: NUMBER(v, key) if not isinstance(v, dict) else
                          dict_of(STR, optional(NUMBER), "an object {test set: number}")(v, key)),
                 False),
    "evaluation": (optional(OBJECT), False),
    "symmetry": (optional(obj({
        "dimension": (NONNEG_INT, True),
        "singular_values": (_NUMBERS, True),
        "parallelness": (optional(_NUMBERS), False),
        "reference_dimension": (optional(NONNEG_INT), False),
    })), False),
    "vi": (optional(obj({
        "pareto_k": (NUMBER, True),
        "good_k": (NUMBER, True),
        "ess": (NUMBER, True),
        "num_samples": (POS_INT, True),
    })), False),
    "label": (STR, False),
    "status": (one_of(*RUN_STATUSES), False),
    "steps": (NONNEG_INT, False),
    "wall_time_s": (optional(NUMBER), False),
    "params_sha256": (optional(SHA256), False),
    "figure_notes": (list_of(STR, "a list of strings"), False),
    "timing": (optional(_SPLIT), False),
})


def check_metrics(metrics, path) -> dict:
    """A run's ``metrics.json`` object, checked; numbers stored as ``"nan"``/``"inf"`` come
    back as floats. Raises :class:`MalformedFileError`."""
    return _run(METRICS, metrics, "metrics file", path)


DISCOVERY = obj({
    "data": (STR, True),
    "n_points": (POS_INT, True),
    "dimension": (NONNEG_INT, True),
    "rule": (STR, True),
    "singular_values": (_NUMBERS, True),
    "parallelness": (optional(_NUMBERS), False),
    "reference_dimension": (optional(NONNEG_INT), False),
    "generators": (list_of(_is("a square matrix (a list of lists of numbers)",
                               lambda v: isinstance(v, list)), "a list of generators"), False),
})


def check_discovery(found, path) -> dict:
    """A ``discovery.json`` object (of ``noether-ppl discover``), checked: the dimension
    matches the lists of parallelness and generators. Raises :class:`MalformedFileError`."""
    found = _run(DISCOVERY, found, "discovery file", path)
    k = found["dimension"]
    for key in ("parallelness", "generators"):
        value = found.get(key)
        if value is not None and len(value) != k:
            raise MalformedFileError("discovery file", os.fspath(path), key,
                                     f"{k} entries (the dimension)", _show(value))
    return found


# ----------------------------------------------------------------------------- arrays
def _array_error(what: str, path, name: str, expected: str, a) -> MalformedFileError:
    got = f"dtype {a.dtype}, shape {a.shape}" if isinstance(a, np.ndarray) else _show(a)
    return MalformedFileError(what, os.fspath(path), name, expected, got)


def _finite_float(what, path, name, a, ndim=None) -> None:
    if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating) \
            or (ndim is not None and a.ndim != ndim):
        shape = "" if ndim is None else f" of rank {ndim}"
        raise _array_error(what, path, name, f"a floating-point array{shape}", a)
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise MalformedFileError(what, os.fspath(path), name, "finite values",
                                 f"{bad} non-finite of {a.size}")


def check_params(arrays: dict, path) -> None:
    """The arrays of ``params.npz``: ``params/<name>`` (finite floating-point) and optionally
    ``model/fixed_generators`` (finite, ``(L, M+1, M+1)``). Raises
    :class:`MalformedFileError` (a parameter file never holds a non-finite value)."""
    names = [n for n in arrays if n.startswith("params/")]
    if not names:
        raise MalformedFileError("parameter file", os.fspath(path), "params/*",
                                 "parameter arrays", f"{sorted(arrays)}")
    for name in sorted(arrays):
        if name.startswith("params/"):
            _finite_float("parameter file", path, name, arrays[name])
        elif name == "model/fixed_generators":
            _finite_float("parameter file", path, name, arrays[name], ndim=3)
        else:
            raise MalformedFileError("parameter file", os.fspath(path), name,
                                     "only params/<name> and model/fixed_generators", "it")


def check_trace(arrays: dict, path) -> None:
    """The arrays of ``trace.npz``: ``losses`` (and optionally ``eta_norms``), 1-D floating
    point of equal length."""
    if "losses" not in arrays:
        raise MalformedFileError("trace file", os.fspath(path), "losses", "it to be present",
                                 "nothing")
    for name in ("losses", "eta_norms"):
        a = arrays.get(name)
        if a is None:
            continue
        if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating) \
                or a.ndim != 1:
            raise _array_error("trace file", path, name, "a 1-D floating-point array", a)
    eta = arrays.get("eta_norms")
    if eta is not None and eta.shape != arrays["losses"].shape:
        raise _array_error("trace file", path, "eta_norms",
                           f"one value per step ({arrays['losses'].shape[0]})", eta)


def check_reference(arrays: dict, path) -> None:
    """The arrays of ``reference.npz``: ``generators`` (finite, ``(L, M+1, M+1)``) and
    optionally ``names`` (one string per generator)."""
    if "generators" not in arrays:
        raise MalformedFileError("reference file", os.fspath(path), "generators",
                                 "it to be present", "nothing")
    G = arrays["generators"]
    _finite_float("reference file", path, "generators", G, ndim=3)
    if G.shape[1] != G.shape[2]:
        raise _array_error("reference file", path, "generators", "square generators", G)
    names = arrays.get("names")
    if names is not None and (names.ndim != 1 or names.shape[0] != G.shape[0]
                              or names.dtype.kind not in "US"):
        raise _array_error("reference file", path, "names",
                           f"{G.shape[0]} strings (one per generator)", names)
