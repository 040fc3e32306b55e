"""Hostile input, table-driven: every bad argument, setting, data file, run-folder file and path
is refused with one line that names it (exit code 2, or the exception type from Python), never
a traceback, a silent acceptance or a changed folder; a failure of the machine during a run
(an injected full disk) exits 1 and leaves the run resumable. Plus: two writers of one folder,
``--overwrite``, ``--resume`` of a complete run, and the private compilation cache.

One tiny finished experiment is fitted once per test session; each case that needs a run folder
works on a copy of it. Everything runs in this process (``noether_ppl.cli.main``)."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from noether_ppl.cli import main

SETS = ["model.hidden=[4]", "model.sym_samples=1", "model.substeps=1", "inference.num_steps=2",
        "inference.refit=false", "data.train.n_trajectories=3", "data.train.n_steps=2",
        "data.test.n_trajectories=3", "data.test.n_steps=2", "analysis.arviz_samples=0",
        "analysis.num_samples=1", "analysis.num_repeats=1", "analysis.rollouts=false",
        "analysis.figures=false"]
FIT = ["sho-cpu", "--variant", "learned", *[x for s in SETS for x in ("--set", s)],
       "--no-progress"]


def _build_finished(out):
    assert main(["fit", *FIT, "--out", out]) == 0
    assert main(["discover", out, "--points", "6", "--no-figures"]) == 0


@pytest.fixture(scope="module")
def finished(built_once):
    """A finished experiment folder (one learned run, analysed, with a discovery.json), fitted
    once per session (``conftest.built_once``); every case that writes works on a copy."""
    return built_once("fuzz-finished", _build_finished)


# ----------------------------------------------------------------------------- helpers
def _snapshot(root) -> dict:
    """{relative path: SHA-256} of every file under ``root``."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _rehash(ctx, rel):
    """Record the new digest of ``learned/<file>`` in learned/run.json (a consistent edit)."""
    folder, name = rel.split("/", 1)
    info_path = os.path.join(ctx.exp, folder, "run.json")
    with open(info_path) as f:
        info = json.load(f)
    info["files"][name] = _sha(os.path.join(ctx.exp, rel))
    with open(info_path, "w") as f:
        json.dump(info, f)


def edit_json(rel, fn):
    """Edit a JSON file of the folder in place with ``fn(obj)`` (its return value unused)."""

    def prepare(ctx):
        path = os.path.join(ctx.exp, rel)
        with open(path) as f:
            obj = json.load(f)
        fn(obj)
        with open(path, "w") as f:
            json.dump(obj, f)

    return prepare


def write(where, data):
    """Write ``data`` at ``where`` (a path with placeholders)."""

    def prepare(ctx):
        path = fmt(where, ctx)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)

    return prepare


def truncate(rel, keep=0.5):
    def prepare(ctx):
        path = os.path.join(ctx.exp, rel)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: int(len(data) * keep)])

    return prepare


def edit_npz(rel, fn, rehash=True):
    """Rewrite an .npz of the folder with ``fn(arrays)`` applied (and, with ``rehash``, its
    digest recorded in run.json, so that only the content checks can refuse it)."""

    def prepare(ctx):
        path = os.path.join(ctx.exp, rel)
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        fn(arrays)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        if rehash:
            _rehash(ctx, rel)

    return prepare


def nan_params(a):
    a["params/conserved_W"] = np.full_like(a["params/conserved_W"], np.nan)


def running(ctx):
    """Mark the learned run as interrupted, so that --resume reads its checkpoint."""
    edit_json("learned/run.json", lambda i: i.update(status="running"))(ctx)


def checkpoint(fn):
    """Edit the learned run's checkpoint with ``fn(arrays)``, its digest recomputed."""
    from noether_ppl.runs.checkpoint import array_digest

    def prepare(ctx):
        running(ctx)
        path = os.path.join(ctx.exp, "learned", "checkpoint.npz")
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays.pop("digest")
        fn(arrays)
        arrays["digest"] = np.array(array_digest(arrays))
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    return prepare


def nan_leaf(a):
    name = next(k for k in sorted(a) if k.startswith("leaf_") and a[k].dtype.kind == "f"
                and a[k].size)
    a[name] = np.full_like(a[name], np.nan)


def deny_writes(err=errno.EACCES, under="{exp}"):
    """Simulate a folder this process cannot write (root ignores chmod): creating a file in it
    raises ``err``. Every write of the package goes through ``tempfile.mkstemp``."""

    def inject(monkeypatch, ctx):
        root = os.path.abspath(fmt(under, ctx))
        real = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and os.path.abspath(dir).startswith(root):
                raise OSError(err, os.strerror(err), dir)
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    return inject


def fmt(text, ctx):
    return text.format(exp=ctx.exp, run=os.path.join(ctx.exp, "learned"), tmp=ctx.tmp)


def save(name, array=None, **arrays):
    def prepare(ctx):
        path = os.path.join(ctx.tmp, name)
        if name.endswith(".npy"):
            np.save(path, array, allow_pickle=array.dtype == object)
        else:
            np.savez(path, **arrays)

    return prepare


def both(*prepares):
    def prepare(ctx):
        for p in prepares:
            p(ctx)

    return prepare


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: ``argv`` for the CLI (placeholders ``{exp}``: a copy of the finished
    experiment, ``{run}``: its learned run folder, ``{tmp}``: an empty folder), what the
    one-line message must contain, the exit code, and how to set the scene."""

    argv: tuple
    expect: tuple
    code: int = 2
    prepare: Callable | None = None
    inject: Callable | None = None
    copy: bool = False
    then: Callable | None = None  # checks after the call (injections undone)
    stream: str = "err"


def C(argv, *expect, **kw):
    return Case(tuple(argv.split()) if isinstance(argv, str) else tuple(argv), expect, **kw)


def R(argv, *expect, prepare=None, **kw):
    """A case on a copy of the finished experiment."""
    return C(argv, *expect, prepare=prepare, copy=True, **kw)


# ----------------------------------------------------------------------------- the table
ARGUMENTS = {
    "seed-huge": C("simulate oscillator --seed 99999999999999999999999", "--seed",
                   "[0, 4294967295]"),
    "seed-negative": C("discover {tmp} --seed -1", "--seed", "[0, 4294967295]"),
    "demo-seed-huge": C("demo --seed 4294967296", "--seed"),
    "trajectories-0": C("simulate oscillator --trajectories 0", "--trajectories"),
    "trajectories-huge": C("simulate oscillator --trajectories 2147483648", "--trajectories"),
    "states-huge": C("simulate oscillator --trajectories 2000000 --steps 2000",
                     "--trajectories 2000000", "more than 2147483647"),
    "steps-0": C("simulate nbody --steps 0", "--steps"),
    "n-0": C("simulate oscillators --n 0", "--n"),
    "dim-huge": C("simulate nbody --dim 99999999999", "--dim"),
    "dt-0": C("simulate oscillator --dt 0", "--dt", "positive finite"),
    "dt-negative": C("simulate oscillator --dt -0.1", "--dt"),
    "dt-nan": C("simulate oscillator --dt nan", "--dt", "'nan'"),
    "dt-inf": C("simulate oscillator --dt inf", "--dt", "'inf'"),
    "fit-dt-word": C("fit sho-cpu --out {tmp}/o --data x.npy --dt fast", "--dt"),
    "points-0": C("discover {tmp} --points 0", "--points"),
    "points-huge": C("discover {tmp} --points 2147483648", "--points"),
    "dimension-huge": C("discover {tmp} --dimension 99999999999", "--dimension"),
    "threshold-1": C("discover {tmp} --threshold 1", "--threshold", "(0, 1)"),
    "threshold-nan": C("discover {tmp} --threshold nan", "--threshold"),
    "demo-steps-0": C("demo --steps 0", "--steps"),
    "demo-restarts-huge": C("demo --restarts 2147483648", "--restarts"),
    "unknown-flag": C("report {tmp} --bogus", "unrecognized arguments: --bogus"),
}

# Every setting of the experiment schema, out of range (or of the wrong type), by --set; the
# message names the key. test_every_setting_has_a_bad_value keeps this complete.
BAD_SETTINGS = {
    "name": '"a b"', "description": "[1]", "seed": "99999999999999999999", "variants": "[]",
    "system.name": "pendulum", "system.mass": "0", "system.stiffness": "-1",
    "data.train.n_trajectories": "0", "data.train.n_steps": "2147483648",
    "data.train.dt": "nan", "data.train.scale": "-1", "data.train.position_scale": "inf",
    "data.train.shift_scale": "-1", "data.train.position_shift": "[nan]",
    "model.hidden": "[0]", "model.activation": "bogus", "model.elu_alpha": "0",
    "model.n_conserved": "-1", "model.sym_samples": "0", "model.measure": "bogus",
    "model.measure_scale": "inf", "model.sampling": "bogus", "model.integrator": "bogus",
    "model.substeps": "0", "model.noise_variance": "-1", "model.prior_variance": "nan",
    "model.conserved_init_scale": "0", "model.dtype": "float16", "model.mc_likelihood": "split",
    "model.mc_groups": "0",
    "inference.num_steps": "0", "inference.epochs": "3000000000", "inference.batch_size": "99",
    "inference.lr": "0", "inference.lr_conserved": "-1", "inference.schedule": "linear",
    "inference.num_particles": "0", "inference.init_scale": "nan", "inference.lr_offdiag": "0",
    "inference.lr_logdiag": "-3e-3", "inference.refit": "3", "inference.refit_lr_offdiag": "-1",
    "inference.runaway_factor": "-2", "inference.chunk_size": "0",
    "inference.checkpoint_every": "2147483648",
    "inference.select": "[1]", "inference.select_steps": "0",
    "inference.select_lr": "0", "inference.select_stop": '"bogus"',
    "inference.select_symmetrised_hnn": "3", "inference.select_refit_steps": "0",
    "inference.select_extend": '"yes"', "inference.select_spectrum_samples": "-4",
    "inference.select_evidence_samples": "1.5", "inference.select_refit_from": '"scratch"',
    "inference.select_refit_sizes": "[1, 1.0]",
    "inference.select_refit_learns": '"yes"', "inference.select_refit_lr_conserved": "0",
    "inference.select_close": "1",
    "analysis.threshold": "1", "analysis.min_parallelness": "0",
    "analysis.arviz_samples": "-1", "analysis.figures": '"yes"', "analysis.num_samples": "0",
    "analysis.num_repeats": "0", "analysis.rollouts": "1", "analysis.rollout_steps": "0",
    "analysis.rollout_trajectories": "0",
}
SETTINGS = {
    f"set-{key}": C(["fit", "sho-cpu", "--out", "{tmp}/o", "--set", f"{key}={value}"],
                    key.split(".")[-1] if key.startswith("model.") and key.split(".")[-1] in
                    ("activation", "measure", "sampling", "integrator") else key)
    for key, value in BAD_SETTINGS.items()
}

BAD_TOML = {
    "syntax": "name = \n",
    "binary": b"\xff\xfe\x00garbage",
    "empty": "",
    "no-system": 'name = "x"\nseed = 0\nvariants = ["vanilla"]\n',
    "data-number": 'name = "x"\nseed = 0\nvariants = ["vanilla"]\ndata = 3\n'
                   '[system]\nname = "harmonic_oscillator"\n',
    "no-train": 'name = "x"\nseed = 0\nvariants = ["vanilla"]\n[system]\n'
                'name = "harmonic_oscillator"\n[data.test]\nn_trajectories = 2\nn_steps = 2\n'
                'dt = 0.1\n[inference]\nnum_steps = 2\n',
    "steps-and-epochs": 'name = "x"\nseed = 0\nvariants = ["vanilla"]\n[system]\n'
                        'name = "harmonic_oscillator"\n[data.train]\nn_trajectories = 2\n'
                        'n_steps = 2\ndt = 0.1\n[inference]\nnum_steps = 2\nepochs = 2\n',
    "seed-float": 'name = "x"\nseed = 1.5\nvariants = ["vanilla"]\n',
}
EXPECT_TOML = {"syntax": "invalid TOML", "binary": "not a UTF-8", "empty": "name",
               "no-system": "system", "data-number": "data", "no-train": "data.train",
               "steps-and-epochs": "num_steps and epochs", "seed-float": "seed"}
TOML = {f"toml-{name}": C(["fit", "{tmp}/bad.toml", "--out", "{tmp}/o"], "bad.toml",
                          EXPECT_TOML[name], prepare=write("{tmp}/bad.toml", text))
        for name, text in BAD_TOML.items()}
TOML |= {
    "toml-missing": C("fit {tmp}/none.toml --out {tmp}/o", "No experiment file", "none.toml"),
    "toml-folder": C("fit {tmp}/ --out {tmp}/o", "No experiment file"),
}

DATA = {  # your own trajectories (--data): shapes, NaN/inf, dt
    "data-nan": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy", "non-finite",
                  prepare=save("x.npy", np.full((2, 3, 2), np.nan))),
    "data-inf": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy", "non-finite",
                  prepare=save("x.npy", np.full((2, 3, 2), np.inf))),
    "data-1d": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy", "shape",
                 prepare=save("x.npy", np.zeros(5))),
    "data-4d": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy", "shape",
                 prepare=save("x.npy", np.zeros((1, 2, 3, 2)))),
    "data-odd": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy", "even",
                  prepare=save("x.npy", np.zeros((2, 3, 3)))),
    "data-one-point": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy",
                        "time points", prepare=save("x.npy", np.zeros((2, 1, 2)))),
    "data-complex": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy",
                      "complex", prepare=save("x.npy", np.zeros((2, 3, 2), complex))),
    "data-empty": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy",
                    "at least one trajectory", prepare=save("x.npy", np.zeros((0, 3, 2)))),
    "data-pickle": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1", "x.npy",
                     "allow_pickle", prepare=save("x.npy", np.array([{}], dtype=object))),
    "data-npz-no-dt": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npz", "x.npz", "'dt'",
                        prepare=save("x.npz", states=np.zeros((2, 3, 2)))),
    "data-npz-dt-negative": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npz", "x.npz", "`dt`",
                              prepare=save("x.npz", states=np.zeros((2, 3, 2)), dt=-1.0)),
    "data-npz-dt-nan": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npz", "x.npz", "`dt`",
                         prepare=save("x.npz", states=np.zeros((2, 3, 2)), dt=np.nan)),
    "data-folder": C("fit sho-cpu --out {tmp}/o --data {tmp} --dt 0.1", "is a folder"),
    "data-batch": C("fit sho-cpu --out {tmp}/o --data {tmp}/x.npy --dt 0.1 --set "
                    "inference.batch_size=3", "batch_size",
                    prepare=save("x.npy", np.zeros((2, 3, 2)))),
}


def _files_list(i):
    i["files"] = list(i["files"])


RUN_FILES = {  # malformed, truncated or inconsistent files of a run folder
    "run.json-truncated": R("report {exp} --no-figures", "run.json", "truncated",
                            prepare=truncate("learned/run.json")),
    "run.json-list": R("report {exp} --no-figures", "run.json", "JSON object",
                       prepare=write("{exp}/learned/run.json", "[1, 2]")),
    "run.json-files-list": R("report {exp} --no-figures", "run.json", "files: expected an object",
                             prepare=edit_json("learned/run.json", _files_list)),
    "run.json-no-status": R("report {exp} --no-figures", "run.json", "status",
                            prepare=edit_json("learned/run.json", lambda i: i.pop("status"))),
    "run.json-bad-status": R("discover {exp}", "run.json", "status", "'running'",
                             prepare=edit_json("learned/run.json",
                                               lambda i: i.update(status="done"))),
    "run.json-odd-phase-dim": R("report {exp} --no-figures", "run.json", "phase_dim",
                                prepare=edit_json("learned/run.json",
                                                  lambda i: i.update(phase_dim=3))),
    "run.json-path-escape": R("report {exp} --no-figures", "run.json", "'../x.npz'",
                              prepare=edit_json("learned/run.json",
                                                lambda i: i["files"].update({"../x.npz": "0" * 64
                                                                             }))),
    "run.json-absolute-data": R("report {exp} --no-figures", "run.json", "data.train",
                                prepare=edit_json("learned/run.json", lambda i: i["data"].update(
                                    train="/etc/passwd"))),
    "run.json-kind": R("report {exp} --no-figures", "run.json", "kind",
                       prepare=edit_json("learned/run.json", lambda i: i.update(kind="x"))),
    "run.json-version": R("report {exp} --no-figures", "run.json", "format version 7",
                          prepare=edit_json("learned/run.json", lambda i: i.update(version=7))),
    "run.json-steps-string": R("report {exp} --no-figures", "run.json", "steps",
                               prepare=edit_json("learned/run.json",
                                                 lambda i: i.update(steps="2"))),
    "run.json-meta-list": R("report {exp} --no-figures", "run.json", "meta",
                            prepare=edit_json("learned/run.json", lambda i: i.update(meta=[]))),
    "run.json-threshold": R("report {exp} --no-figures", "run.json", "meta.analysis.threshold",
                            prepare=edit_json("learned/run.json",
                                              lambda i: i["meta"]["analysis"].update(
                                                  threshold=5))),
    "run.json-dt-zero": R("report {exp} --no-figures", "run.json", "dt",
                          prepare=edit_json("learned/run.json", lambda i: i.update(dt=0))),
    "run.json-spec-field": R("report {exp} --no-figures", "run.json", "rebuild the model",
                             prepare=edit_json("learned/run.json",
                                               lambda i: i["spec"].update(wings=2))),
    "run.json-digest-word": R("report {exp} --no-figures", "run.json", "files.params.npz",
                              prepare=edit_json("learned/run.json",
                                                lambda i: i["files"].update(
                                                    {"params.npz": "abc"}))),
    "run.json-folder": R("report {exp} --no-figures", "{exp}", "holds no run folder",
                         prepare=lambda ctx: (os.remove(os.path.join(ctx.exp, "learned",
                                                                     "run.json")),
                                              os.mkdir(os.path.join(ctx.exp, "learned",
                                                                    "run.json")))),
    "params-truncated": R("report {exp} --no-figures", "params.npz", "SHA-256",
                          prepare=truncate("learned/params.npz")),
    "params-not-zip": R("report {exp} --no-figures", "params.npz", "truncated or corrupt",
                        prepare=both(write("{exp}/learned/params.npz", b"PK\x03\x04 not a zip"),
                                     lambda ctx: _rehash(ctx, "learned/params.npz"))),
    "params-nan": R("report {exp} --no-figures", "params.npz", "params/conserved_W",
                    "finite", prepare=edit_npz("learned/params.npz", nan_params)),
    "params-nan-discover": R("discover {exp}", "params.npz", "finite",
                             prepare=edit_npz("learned/params.npz", nan_params)),
    "params-missing": R("report {exp} --no-figures", "params.npz", "does not match the model",
                        prepare=edit_npz("learned/params.npz",
                                         lambda a: a.pop("params/conserved_b"))),
    "params-shape": R("report {exp} --no-figures", "params.npz", "shape",
                      prepare=edit_npz("learned/params.npz", lambda a: a.update(
                          {k: np.zeros((7, 7), v.dtype) for k, v in a.items()
                           if k.endswith("_auto_loc")}))),
    "params-int": R("report {exp} --no-figures", "params.npz", "floating-point",
                    prepare=edit_npz("learned/params.npz", lambda a: a.update(
                        {"params/conserved_W": np.zeros((1, 3, 3), np.int64)}))),
    "params-extra": R("report {exp} --no-figures", "params.npz", "evil",
                      prepare=edit_npz("learned/params.npz", lambda a: a.update(
                          evil=np.zeros(2)))),
    "trace-truncated": R("report {exp} --no-figures", "trace.npz", "SHA-256",
                         prepare=truncate("learned/trace.npz")),
    "trace-no-losses": R("report {exp} --no-figures", "trace.npz", "losses",
                         prepare=edit_npz("learned/trace.npz", lambda a: a.pop("losses"))),
    "trace-2d": R("report {exp} --no-figures", "trace.npz", "losses", "1-D",
                  prepare=edit_npz("learned/trace.npz", lambda a: a.update(
                      losses=np.zeros((2, 2))))),
    "reference-nan": R("report {exp} --no-figures", "reference.npz", "generators", "finite",
                       prepare=edit_npz("learned/reference.npz", lambda a: a.update(
                           generators=np.full_like(a["generators"], np.nan)))),
    "reference-shape": R("report {exp} --no-figures", "reference.npz", "generators",
                         prepare=edit_npz("learned/reference.npz", lambda a: a.update(
                             generators=np.zeros((1, 5, 5))))),
    "reference-names": R("report {exp} --no-figures", "reference.npz", "names",
                         prepare=edit_npz("learned/reference.npz", lambda a: a.update(
                             names=np.array(["a", "b", "c", "d", "e"])))),
    "train-truncated": R("report {exp} --no-figures", "train.npz", "SHA-256",
                         prepare=truncate("learned/data/train.npz")),
    "train-nan": R("report {exp} --no-figures", "train.npz", "non-finite",
                   prepare=edit_npz("learned/data/train.npz", lambda a: a.update(
                       states=np.full_like(a["states"], np.nan)))),
    "train-missing": R("report {exp} --no-figures", "train.npz", "missing",
                       prepare=lambda ctx: os.remove(os.path.join(ctx.exp, "learned", "data",
                                                                  "train.npz"))),
    "metrics-list": R("report {exp} --no-figures", "metrics.json", "JSON object",
                      prepare=write("{exp}/learned/metrics.json", "[]")),
    "metrics-truncated": R("report {exp} --no-figures", "metrics.json", "truncated",
                           prepare=truncate("learned/metrics.json")),
    "metrics-vi-number": R("report {exp} --no-figures", "metrics.json", "vi: expected an object",
                           prepare=edit_json("learned/metrics.json", lambda m: m.update(vi=3))),
    "metrics-symmetry-word": R("report {exp} --no-figures", "metrics.json", "symmetry",
                               prepare=edit_json("learned/metrics.json",
                                                 lambda m: m.update(symmetry="x"))),
    "metrics-mse-word": R("report {exp} --no-figures", "metrics.json", "train_mse", "a number",
                          prepare=edit_json("learned/metrics.json",
                                            lambda m: m.update(train_mse="small"))),
    "metrics-test-mse": R("report {exp} --no-figures", "metrics.json", "test_mse.test",
                          prepare=edit_json("learned/metrics.json",
                                            lambda m: m.update(test_mse={"test": [1]}))),
    "metrics-vi-missing-key": R("report {exp} --no-figures", "metrics.json", "vi.pareto_k",
                                prepare=edit_json("learned/metrics.json",
                                                  lambda m: m.update(vi={"ess": 1}))),
    "discovery-empty": R("report {exp} --no-figures", "discovery.json",
                         "expected it to be present",
                         prepare=write("{exp}/learned/discovery.json", "{}")),
    "discovery-dimension-word": R("report {exp} --no-figures", "discovery.json", "dimension",
                                  prepare=edit_json("learned/discovery.json",
                                                    lambda d: d.update(dimension="2"))),
    "discovery-parallelness": R("report {exp} --no-figures", "discovery.json", "parallelness",
                                prepare=edit_json("learned/discovery.json",
                                                  lambda d: d.update(parallelness=[1] * 9))),
    "discovery-truncated": R("report {exp} --no-figures", "discovery.json", "truncated",
                             prepare=truncate("learned/discovery.json")),
    "init-conserved-ragged": R("fit sho-cpu --variant learned --out {tmp}/o --init-conserved "
                               "{run}/discovery.json", "discovery.json", "generators",
                               prepare=edit_json("learned/discovery.json", lambda d: d.update(
                                   generators=[[[1, 2], [3]]]))),
    "figures-is-a-file": R("report {exp}", "figures", "is a file",
                           prepare=write("{exp}/learned/figures", "not a folder")),
    "discover-figures-file": R("discover {exp}", "figures", "is a file",
                               prepare=write("{exp}/learned/figures", "not a folder")),
    # --resume reads experiment.json, the data and the checkpoint
    "experiment.json-truncated": R("fit --resume {exp}", "experiment.json", "truncated",
                                   prepare=truncate("experiment.json")),
    "experiment.json-files-list": R("fit --resume {exp}", "experiment.json", "data.files",
                                    prepare=edit_json("experiment.json", lambda e: e["data"].update(
                                        files=["data/train.npz"]))),
    "experiment.json-no-data": R("fit --resume {exp}", "experiment.json", "data",
                                 prepare=edit_json("experiment.json", lambda e: e.pop("data"))),
    "experiment.json-variants": R("fit --resume {exp}", "experiment.json", "variants",
                                  prepare=edit_json("experiment.json",
                                                    lambda e: e.update(variants="learned"))),
    "experiment.json-settings": R("fit --resume {exp}", "experiment.json", "inference.lr",
                                  prepare=edit_json("experiment.json", lambda e: e["experiment"][
                                      "inference"].update(lr=-1))),
    "experiment.json-kind": R("fit --resume {exp}", "experiment.json", "kind",
                              prepare=edit_json("experiment.json", lambda e: e.update(kind=1))),
    "experiment-data-changed": R("fit --resume {exp}", "train.npz", "SHA-256",
                                 prepare=edit_npz("data/train.npz", lambda a: a.update(
                                     states=a["states"] * 2), rehash=False)),
    "checkpoint-nan": R("fit --resume {exp}", "checkpoint.npz", "non-finite",
                        prepare=checkpoint(nan_leaf)),
    "checkpoint-truncated": R("fit --resume {exp}", "checkpoint.npz", "truncated",
                              prepare=both(running, truncate("learned/checkpoint.npz"))),
    "checkpoint-no-leaf-count": R("fit --resume {exp}", "checkpoint.npz", "n_leaves",
                                  prepare=checkpoint(lambda a: a.pop("n_leaves"))),
    "checkpoint-digest": R("fit --resume {exp}", "checkpoint.npz", "digest",
                           prepare=both(running, edit_npz(
                               "learned/checkpoint.npz",
                               lambda a: a.update(step=np.int64(1)), rehash=False))),
    "checkpoint-other-run": R("fit --resume {exp}", "checkpoint.npz", "different configuration",
                              prepare=checkpoint(lambda a: a.update(
                                  fingerprint=np.array("0" * 64)))),
}

PATHS = {  # paths that are files, under files, other runs, read-only, full
    "fit-out-file": C("fit sho-cpu --out {tmp}/f", "{tmp}/f", "is a file",
                      prepare=write("{tmp}/f", "x")),
    "fit-out-under-file": C("fit sho-cpu --out {tmp}/f/sub", "{tmp}/f", "is a file, not a folder",
                            prepare=write("{tmp}/f", "x")),
    "simulate-out-file": C("simulate oscillator --out {tmp}/f", "{tmp}/f", "is a file",
                           prepare=write("{tmp}/f", "x")),
    "simulate-out-under-file": C("simulate oscillator --out {tmp}/f/sub", "lies under",
                                 prepare=write("{tmp}/f", "x")),
    "report-out-file": R("report {exp} --out {tmp}/f", "{tmp}/f", "is a file",
                         prepare=write("{tmp}/f", "x")),
    "report-path-file": C("report {tmp}/f", "{tmp}/f", "is a file", prepare=write("{tmp}/f", "x")),
    "fit-out-run-folder": R(["fit", "oscillators3-cpu", "--out", "{run}"], "{run}",
                            "run folder of one model", "--overwrite"),
    "fit-out-other-settings": R(["fit", *FIT, "--set", "inference.lr=0.5", "--out", "{exp}"],
                                "{exp}", "other settings", "inference.lr: 0.003 vs 0.5"),
    "fit-out-other-experiment": R(["fit", "oscillators3-cpu", "--out", "{exp}"],
                                  "experiment 'sho-cpu'", "--overwrite"),
    "fit-out-same-run": R(["fit", *FIT, "--out", "{exp}"], "same settings", "--resume {exp}"),
    "fit-out-other-files": C("fit sho-cpu --out {tmp}", "other files (notes.txt)",
                             prepare=write("{tmp}/notes.txt", "mine")),
    "resume-run-folder": R("fit --resume {run}", "run folder of one model"),
    "resume-file": C("fit --resume {tmp}/f", "Nothing to resume", prepare=write("{tmp}/f", "x")),
    "resume-and-overwrite": R("fit --resume {exp} --overwrite", "--overwrite", "--resume"),
    "resume-other-settings": R("fit --resume {exp} --set inference.lr=0.5",
                               "different configuration", "inference.lr"),
    "read-only-report": R("report {exp}", "Cannot write", "Permission denied", "{run}",
                          inject=deny_writes()),
    "read-only-discover": R("discover {exp}", "Cannot write", "Permission denied",
                            inject=deny_writes()),
    "read-only-resume": R("fit --resume {exp}", "Cannot write", "{exp}", "Permission denied",
                          prepare=running, inject=deny_writes()),
    "read-only-fs-fit": C("fit sho-cpu --out {tmp}/o", "Cannot write", "Read-only file system",
                          inject=deny_writes(errno.EROFS, "{tmp}")),
    "read-only-simulate": C("simulate oscillator --out {tmp}/o", "Cannot write",
                            "Permission denied", inject=deny_writes(under="{tmp}")),
}


def _full_disk_on_second_checkpoint(monkeypatch, ctx):
    """The disk fills up between the first and the second checkpoint of a run (a checkpoint
    every step of the two)."""
    real = tempfile.mkstemp
    seen = []

    def mkstemp(*args, prefix=None, **kwargs):
        if prefix is not None and prefix.startswith("checkpoint.npz"):
            seen.append(prefix)
            if len(seen) >= 2:
                name = os.path.join(kwargs["dir"], prefix + "a1b2c3" + kwargs.get("suffix", ""))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _resumes_to_completion(ctx):
    out = os.path.join(ctx.tmp, "full")
    with open(os.path.join(out, "learned", "run.json")) as f:
        assert json.load(f)["status"] == "running"
    assert main(["fit", "--resume", out, "--no-progress", "--no-analysis"]) == 0
    with open(os.path.join(out, "learned", "run.json")) as f:
        info = json.load(f)
    assert info["status"] == "complete" and info["steps"] == 2
    assert info["info"]["resumed_from_step"] == 1
    with np.load(os.path.join(out, "learned", "params.npz")) as z:
        assert all(np.all(np.isfinite(z[k])) for k in z.files)


FAULTS = {  # the machine fails while a run is under way: exit 1, resumable
    "full-disk-during-fit": C(["fit", *FIT, "--set", "inference.checkpoint_every=1",
                               "--no-analysis", "--out", "{tmp}/full"],
                              "No space left on device", "checkpoint.npz",
                              "noether-ppl fit --resume {tmp}/full", code=1,
                              inject=_full_disk_on_second_checkpoint,
                              then=_resumes_to_completion),
    "metrics-of-other-params": R("report {exp} --no-figures", "warning:", "metrics.json",
                                 "does not match", code=0, stream="out",
                                 prepare=edit_npz("learned/params.npz", lambda a: a.update(
                                     {"params/conserved_W": a["params/conserved_W"] + 1}))),
}

CLI_CASES = ARGUMENTS | SETTINGS | TOML | DATA | RUN_FILES | PATHS | FAULTS


def _context(finished, tmp_path, copy):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    exp = str(tmp_path / "exp")
    if copy:
        shutil.copytree(finished, exp)
    return SimpleNamespace(exp=exp, tmp=str(tmp), root=str(tmp_path))


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_bad_input_on_the_command_line(name, finished, tmp_path, capsys, monkeypatch):
    case = CLI_CASES[name]
    ctx = _context(finished, tmp_path, case.copy)
    if case.prepare is not None:
        case.prepare(ctx)
    if case.inject is not None:
        case.inject(monkeypatch, ctx)
    capsys.readouterr()
    before = _snapshot(ctx.root)
    try:
        code = main([fmt(a, ctx) for a in case.argv])
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == case.code, f"exit {code}\nstdout: {out[-2000:]}\nstderr: {err}"
    text = err if case.stream == "err" else out
    if case.stream == "err":
        line = err.strip().splitlines()[-1]  # one line names what was wrong
        assert line.startswith("noether-ppl"), err
    else:
        line = text
    for expected in case.expect:
        assert fmt(expected, ctx) in line, f"{fmt(expected, ctx)!r} not in {line!r}"
    if code == 2:  # refused: nothing was written, moved or deleted
        assert _snapshot(ctx.root) == before
    monkeypatch.undo()
    if case.then is not None:
        case.then(ctx)


def test_every_setting_has_a_bad_value():
    from noether_ppl.experiments import settings

    keys = {"name", "description", "seed", "variants", "system.name"}
    keys |= {f"system.{k}" for k in settings.SYSTEMS["harmonic_oscillator"]}
    keys |= {f"data.train.{k}" for k in settings.SPLIT_KEYS}
    keys |= {f"model.{k}" for k in settings.MODEL_KEYS}
    keys |= {f"inference.{k}" for k in settings.INFERENCE_KEYS}
    keys |= {f"analysis.{k}" for k in settings.ANALYSIS_KEYS}
    assert keys == set(BAD_SETTINGS)


# ----------------------------------------------------------------------------- Python API
def _api_run(ctx, fn):
    return fn(os.path.join(ctx.exp, "learned"))


def _trajectories(states, dt=0.1):
    from noether_ppl import Trajectories

    return lambda ctx: Trajectories(np.asarray(states), dt)


def _open(prepare):
    from noether_ppl.runs import open_run

    def call(ctx):
        prepare(ctx)
        return open_run(os.path.join(ctx.exp, "learned"))

    return call


def _load_checkpoint_nan(ctx):
    from noether_ppl.runs import load_checkpoint

    checkpoint(nan_leaf)(ctx)
    return load_checkpoint(os.path.join(ctx.exp, "learned", "checkpoint.npz"))


def _save_nan_params(ctx):
    import jax.numpy as jnp

    from noether_ppl.runs import load_run, save_run

    folder = os.path.join(ctx.exp, "learned")
    result = load_run(folder)
    params = dict(result.params, conserved_W=jnp.full_like(result.params["conserved_W"],
                                                           jnp.nan))
    save_run(dataclasses.replace(result, params=params), os.path.join(ctx.tmp, "out"))


def _fit_in_folder(**kw):
    import jax

    from noether_ppl.models import ModelSpec, NoetherRazor
    from noether_ppl.runs import fit_in_folder

    def call(ctx):
        from noether_ppl import Trajectories

        model = NoetherRazor(ModelSpec(hidden=(4,), n_conserved=1, sym_samples=1), phase_dim=2)
        train = Trajectories(np.zeros((2, 3, 2)) + 0.1, 0.1)
        args = dict(key=jax.random.key(0), num_steps=2) | kw
        return fit_in_folder(model, train, os.path.join(ctx.tmp, "o"), **args)

    return call


def _experiment(ctx, **kw):
    from noether_ppl.experiments import load_experiment, run_experiment

    exp = load_experiment("sho-cpu", SETS)
    return run_experiment(exp, **kw)


def _cache_writable_by_others(ctx):
    from noether_ppl.compilation_cache import enable_compilation_cache

    folder = os.path.join(ctx.tmp, "cache")
    os.mkdir(folder)
    os.chmod(folder, 0o777)
    return enable_compilation_cache(folder)


def _locked(ctx):
    """The lock file held (flock) by someone else: PID 4242 by its content."""
    import fcntl

    from noether_ppl.runs.lock import LOCK_FILE, folder_lock

    fd = os.open(os.path.join(ctx.exp, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"4242\n")
        fcntl.flock(fd, fcntl.LOCK_EX)
        with folder_lock(ctx.exp):
            pass
    finally:
        os.close(fd)


def _probe_denied(ctx):
    from noether_ppl._io import check_writable_folder

    return check_writable_folder(ctx.exp, "run folder")


def _discover(**kw):
    from noether_ppl.runs import discover_run

    return lambda ctx: discover_run(os.path.join(ctx.exp, "learned"), **kw)


def _parse_file(path):
    from noether_ppl.experiments import load_experiment

    return load_experiment(path)


def _parse(overrides):
    from noether_ppl.experiments import load_experiment

    return lambda ctx: load_experiment("sho-cpu", overrides)


@dataclasses.dataclass(frozen=True)
class ApiCase:
    call: Callable
    raises: type
    expect: tuple
    copy: bool = False
    inject: Callable | None = None


def A(call, raises, *expect, copy=False, inject=None):
    return ApiCase(call, raises, expect, copy, inject)


API_CASES = {
    "trajectories-nan": A(_trajectories(np.full((1, 3, 2), np.nan)), ValueError, "non-finite"),
    "trajectories-2d": A(_trajectories(np.zeros((3, 2))), ValueError, "shape (N, T+1, M)"),
    "trajectories-odd": A(_trajectories(np.zeros((1, 3, 3))), ValueError, "even"),
    "trajectories-dt-0": A(_trajectories(np.zeros((1, 3, 2)), 0.0), ValueError, "`dt`"),
    "trajectories-dt-inf": A(_trajectories(np.zeros((1, 3, 2)), np.inf), ValueError, "`dt`"),
    "experiment-seed-huge": A(_parse(["seed=18446744073709551616"]), ValueError, "seed"),
    "experiment-missing": A(lambda ctx: _parse_file(os.path.join(ctx.tmp, "x.toml")),
                            FileNotFoundError, "x.toml"),
    "fit-in-folder-steps-huge": A(_fit_in_folder(num_steps=2**40), ValueError, "num_steps"),
    "fit-in-folder-nan-start": A(_fit_in_folder(init_params={
        "conserved_W": np.full((1, 3, 3), np.nan, np.float32)}), ValueError, "non-finite"),
    "open-run-files-list": A(_open(edit_json("learned/run.json", _files_list)), ValueError,
                             "files", copy=True),
    "open-run-metrics-number": A(_open(edit_json("learned/metrics.json",
                                                 lambda m: m.update(symmetry=3))),
                                 ValueError, "symmetry", copy=True),
    "load-checkpoint-nan": A(_load_checkpoint_nan, ValueError, "non-finite", copy=True),
    "save-run-nan": A(_save_nan_params, ValueError, "conserved_W", copy=True),
    "run-experiment-out-file": A(lambda ctx: _experiment(ctx, out=os.path.join(
        ctx.exp, "learned", "run.json")), ValueError, "is a file", copy=True),
    "run-experiment-resume-overwrite": A(lambda ctx: _experiment(ctx, out=ctx.exp, resume=True,
                                                                 overwrite=True),
                                         ValueError, "overwrite", copy=True),
    "cache-writable-by-others": A(_cache_writable_by_others, ValueError, "writable by others"),
    "folder-locked": A(_locked, ValueError, "PID 4242", "being written by another process",
                       copy=True),
    "probe-denied": A(_probe_denied, ValueError, "Permission denied", copy=True,
                      inject=deny_writes()),
    "discover-points-0": A(_discover(n_points=0), ValueError, "n_points", copy=True),
    "discover-unknown-data": A(_discover(data="nope"), ValueError, "`data`", copy=True),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_bad_input_from_python(name, finished, tmp_path, monkeypatch, capsys):
    case = API_CASES[name]
    ctx = _context(finished, tmp_path, case.copy)
    if case.inject is not None:
        case.inject(monkeypatch, ctx)
    before = _snapshot(ctx.tmp)
    with pytest.raises(case.raises) as info:
        case.call(ctx)
    for expected in case.expect:
        assert expected in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    assert _snapshot(ctx.tmp) == before  # nothing written


def test_the_table_holds_at_least_100_cases():
    assert len(CLI_CASES) + len(API_CASES) >= 100


# ----------------------------------------------------------------------------- more behaviour
def test_two_writers_second_is_refused_naming_the_holder(finished, tmp_path, capsys):
    """A second process writing the same run folder is refused (exit 2, the holder's PID); once
    the holder is gone the folder is free again (the lock dies with its process)."""
    from noether_ppl.runs.lock import LOCK_FILE

    exp = str(tmp_path / "exp")
    shutil.copytree(finished, exp)
    # another writer: it holds the experiment folder and its run folder (as `fit --resume`
    # does while it fits a variant)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         "for path in sys.argv[1:]:\n"
         "    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)\n"
         "    fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "    os.write(fd, str(os.getpid()).encode())\n"
         "print('locked', flush=True)\n"
         "time.sleep(120)\n", os.path.join(exp, LOCK_FILE),
         os.path.join(exp, "learned", LOCK_FILE)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _snapshot(exp)
        for argv in (["fit", "--resume", exp], ["discover", exp], ["report", exp],
                     ["fit", *FIT, "--out", exp, "--overwrite"]):
            capsys.readouterr()
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert f"PID {holder.pid}" in err and "another process" in err, err
        assert _snapshot(exp) == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    for path in (exp, os.path.join(exp, "learned")):  # what the holder left behind
        os.remove(os.path.join(path, LOCK_FILE))
    capsys.readouterr()
    assert main(["fit", "--resume", exp, "--no-progress"]) == 0  # free again
    assert "is complete" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(exp, LOCK_FILE))


def test_resume_of_a_complete_run_does_nothing(finished, tmp_path, capsys):
    exp = str(tmp_path / "exp")
    shutil.copytree(finished, exp)
    before = _snapshot(exp)
    capsys.readouterr()
    assert main(["fit", "--resume", exp, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{exp} is complete (learned: every run finished); nothing to do" in out
    assert "Fitting" not in out and "Wrote" not in out
    with open(os.path.join(exp, "table.txt")) as f:
        assert f.read().strip() in out
    assert _snapshot(exp) == before


def test_overwrite_moves_the_old_folder_aside(finished, tmp_path, capsys):
    exp = str(tmp_path / "exp")
    shutil.copytree(finished, exp)
    before = _snapshot(exp)
    capsys.readouterr()
    assert main(["fit", *FIT, "--no-analysis", "--overwrite", "--out", exp]) == 0
    out = capsys.readouterr().out
    moved = [d for d in os.listdir(tmp_path) if d.startswith("exp.replaced-")]
    assert len(moved) == 1 and f"Moved the earlier contents of {exp}" in out
    assert _snapshot(tmp_path / moved[0]) == before  # the old run, whole
    assert "learned/metrics.json" in before  # and a new one (without analysis) in its place
    assert sorted(os.listdir(os.path.join(exp, "learned"))) == [
        "checkpoint.npz", "data", "params.npz", "reference.npz", "run.json", "trace.npz"]


def test_lr_conserved_zero_is_a_valid_setting():
    from noether_ppl.experiments import load_experiment

    exp = load_experiment("sho-cpu", ["inference.lr_conserved=0"])
    assert exp.inference.lr_conserved == 0.0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_really_read_only_run_folder(finished, tmp_path, capsys):
    exp = str(tmp_path / "exp")
    shutil.copytree(finished, exp)
    os.chmod(os.path.join(exp, "learned"), 0o555)
    try:
        capsys.readouterr()
        assert main(["discover", exp]) == 2
        err = capsys.readouterr().err
        assert "Cannot write" in err and "learned" in err
    finally:
        os.chmod(os.path.join(exp, "learned"), 0o755)


def test_the_compilation_cache_folder_is_created_private(tmp_path):
    from noether_ppl.compilation_cache import check_private_folder, prepare_cache_folder

    folder = tmp_path / "a" / "xla"
    old = os.umask(0)  # created 0700 whatever the umask
    try:
        assert prepare_cache_folder(str(folder))
    finally:
        os.umask(old)
    assert (folder.stat().st_mode & 0o777) == 0o700
    check_private_folder(str(folder))
    folder.chmod(0o775)
    with pytest.raises(ValueError, match="writable by others \\(mode 0775\\)"):
        prepare_cache_folder(str(folder))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_private_folder(str(tmp_path / "file"))
