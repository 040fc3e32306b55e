"""The experiment folder as a store: what it holds (``experiment.json``: the resolved
experiment, the variants, the data and their SHA-256), whether a new run may be written into it
(:func:`what_occupies`), moving an old one aside, whether a resumed run is complete, its data
sets (simulated or the user's, read back and checked on resume) and operating-system errors
while a run is under way (:func:`run_io`). The layout is in :mod:`~noether_ppl.experiments.runner`.
"""

from __future__ import annotations

import contextlib
import os
import time

from .._io import RunIOError, check_folder_path, describe_os_error
from ..data import Trajectories
from ..runs.files import (
    METRICS_FILE,
    RUN_FILE,
    file_sha256,
    is_run_folder,
    jsonable,
    read_json,
    read_run_info,
)
from ..runs.lock import LOCK_FILE, folder_lock
from ..runs.schema import check_experiment_record
from .config import Experiment

__all__ = ["EXPERIMENT_FILE", "INIT_CONSERVED_FILE", "read_experiment_record",
           "first_difference", "what_occupies", "move_aside", "run_io", "is_complete",
           "prepare_data"]

EXPERIMENT_FILE = "experiment.json"
INIT_CONSERVED_FILE = "init_conserved.npz"
"""In ``DIR/data/``: the generators the learned variants started η at (``init_conserved``)."""


def first_difference(a, b, prefix=""):
    """First differing dotted key between two JSON-like dicts (None if equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = first_difference(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
            if d:
                return d
        return None
    return None if a == b else f"{prefix}: {a!r} vs {b!r}"


def read_experiment_record(path) -> dict:
    """The ``experiment.json`` of an experiment folder, checked against its schema
    (:func:`~noether_ppl.runs.schema.check_experiment_record`)."""
    return check_experiment_record(read_json(path, "experiment file"), path)


def prepare_data(experiment, out, *, data, tests, system, resume, stored, echo):
    """``(train, tests, data_record)``: read back from ``out/data`` on resume, else simulated
    or the user's, written to ``out/data``."""
    if stored is not None:
        record = stored["data"]
        sets = {}
        for name, entry in record["files"].items():
            if name == "reference":
                continue
            path = os.path.join(out, entry["path"])
            if not os.path.exists(path):
                raise FileNotFoundError(f"Data file {path!r} of the experiment is missing.")
            if file_sha256(path) != entry["sha256"]:
                raise ValueError(f"Data file {path!r} is corrupt or was changed since the run "
                                 f"started (SHA-256 mismatch).")
            sets[name] = Trajectories.load(path)
        train = sets.pop("train")
        if data is not None and data.states.shape != train.states.shape:
            raise ValueError(f"The data given do not match the data of the run in {out!r}.")
        return train, sets, record
    if data is not None:
        train, test_sets = data, dict(tests or {})
        source = "user"
    else:
        data_key, _, _ = experiment.keys()
        sets = {}
        for name, split in experiment.data.items():
            echo(f"Simulating {name}: {split.n_trajectories} trajectories x {split.n_steps} "
                 f"steps of {system.name} (dt = {split.dt}) ...")
            sets[name] = system.simulate(data_key(name), **split.simulate_kwargs())
        train = sets.pop("train")
        test_sets = sets
        source = "simulated"
    files = {}
    for name, t in {"train": train, **test_sets}.items():
        rel = f"data/{name}.npz"
        t.save(os.path.join(out, rel))
        files[name] = {"path": rel, "sha256": file_sha256(os.path.join(out, rel))}
    return train, test_sets, {"source": source, "files": files}


def what_occupies(out: str, experiment: Experiment, *, variants, user_data: bool) -> str | None:
    """What ``out`` already holds, when that stops a new run from being written into it (None:
    it does not exist or is empty). Refuses a path that is a file or lies under one."""
    check_folder_path(out, "output folder")
    if not os.path.lexists(out):
        return None
    entries = sorted(e for e in os.listdir(out) if e != LOCK_FILE)
    if not entries:
        return None
    exp_path = os.path.join(out, EXPERIMENT_FILE)
    if os.path.isfile(exp_path):
        try:
            stored = read_experiment_record(exp_path)
        except ValueError as err:
            return f"an experiment file that cannot be read: {err}"
        name = stored["experiment"].get("name")
        diff = first_difference(stored["experiment"], jsonable(experiment.to_dict()))
        if diff:
            return f"a run of experiment {name!r} with other settings: {diff}"
        if variants is not None and list(variants) != list(stored["variants"]):
            return (f"a run of this experiment with variants {stored['variants']}, not "
                    f"{list(variants)}")
        if (stored["data"]["source"] == "user") != user_data:
            return f"a run of this experiment on {stored['data']['source']} data"
        return (f"a run of this experiment with the same settings; continue it with "
                f"`noether-ppl fit --resume {out}` (resume=True)")
    if is_run_folder(out):
        try:
            info = read_run_info(out)
            what = (f"variant {info['variant']!r} of experiment "
                    f"{(info.get('meta') or {}).get('experiment')!r}")
        except ValueError:
            what = "a run"
        return f"the run folder of one model ({what}; {RUN_FILE}), not an experiment folder"
    shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
    return f"other files ({shown})"


def move_aside(out: str, echo) -> str:
    """Rename the folder ``out`` to ``out.replaced-<time>`` (under its lock, so no other
    process is writing it). Returns the new name."""
    stem = os.path.normpath(out) + ".replaced-" + time.strftime("%Y%m%d-%H%M%S")
    dest, i = stem, 1
    while os.path.lexists(dest):
        dest, i = f"{stem}-{i}", i + 1
    with folder_lock(out):
        os.rename(out, dest)
    with contextlib.suppress(OSError):
        os.remove(os.path.join(dest, LOCK_FILE))
    echo(f"Moved the earlier contents of {out} to {dest} (--overwrite; delete it when it is no "
         f"longer needed).")
    return dest


@contextlib.contextmanager
def run_io(out: str):
    """Turn an operating-system error while the run is under way into a
    :class:`~noether_ppl._io.RunIOError` that says how to continue."""
    try:
        yield
    except RunIOError:
        raise
    except OSError as err:
        if err.errno is None:  # our own FileNotFoundError & co.: a message about the input
            raise
        if os.path.exists(os.path.join(out, EXPERIMENT_FILE)):
            then = f"continue it with `noether-ppl fit --resume {out}` once this is fixed"
        else:  # it stopped while writing its data, before it was recorded
            then = "start it again with --overwrite once this is fixed"
        raise RunIOError(
            f"{describe_os_error(err)}. The run in {out} stopped; its files are whole (written "
            f"atomically): {then}.", errno=err.errno, path=err.filename) from err


def is_complete(out: str, slugs, *, analyze: bool) -> bool:
    """Whether every run of ``slugs`` in ``out`` is complete (and analysed, with the table)."""
    if analyze and not os.path.isfile(os.path.join(out, "table.txt")):
        return False
    for slug in slugs:
        folder = os.path.join(out, slug)
        if not is_run_folder(folder) or read_run_info(folder)["status"] != "complete":
            return False
        if analyze and not os.path.isfile(os.path.join(folder, METRICS_FILE)):
            return False
    return True
