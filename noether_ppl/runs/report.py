"""``noether-ppl report``: the paper-layout table and the figures of saved runs, without refitting.

Each path is a run folder (``run.json``), an experiment folder (``experiment.json`` and one run
folder per variant) or a folder of run folders. One table row per run; the layout follows the
system (Table 1 / 2: the test set; Table 3: test, moved and wider sets).

Every file is checked before it is used (:mod:`noether_ppl.runs.schema`); a run whose
``metrics.json`` does not belong to its ``params.npz`` (other parameters, another step) is
reported with a warning and its row evaluated from the parameters. Figures are drawn only into
folders that can be written, holding each run folder's lock.
"""

from __future__ import annotations

import contextlib
import os

from .._io import check_folder_path, check_writable_folder
from ..analysis.symmetry import DEFAULT_THRESHOLD
from ..analysis.tables import format_table, table_layout, table_title
from ..systems.registry import build_system
from .files import FIGURES_DIR, PARAMS_FILE, is_run_folder, read_json, read_run_info
from .folder import Run, open_run
from .lock import folder_lock
from .schema import check_discovery

__all__ = ["find_runs", "report", "stale_metrics", "system_for"]


def find_runs(path) -> list[str]:
    """The run folders under ``path``: the folder itself, or its run sub-folders (the variants
    of an experiment folder) in the order they were fitted."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise ValueError(f"{path!r} is a file; expected a run or experiment folder.")
        raise FileNotFoundError(f"No folder at {path!r}.")
    if is_run_folder(path):
        return [path]
    subs = [d for d in os.listdir(path) if is_run_folder(os.path.join(path, d))]
    if not subs:
        raise ValueError(f"{path!r} holds no run folder (no {os.path.join(path, 'run.json')!r} "
                         f"and no sub-folder with one).")

    def order(d):
        meta = read_run_info(os.path.join(path, d)).get("meta") or {}
        o = meta.get("order")
        return (o if isinstance(o, int) else 10**6, d)

    return [os.path.join(path, d) for d in sorted(subs, key=order)]


def system_for(run: Run):
    """The system of a run (its ``meta["system"]``), or None when it has none or an unknown
    one."""
    system = run.meta.get("system")
    if not system:
        return None
    try:
        return build_system(system)
    except (ValueError, TypeError):
        return None


def stale_metrics(run: Run) -> str | None:
    """Why the run's ``metrics.json`` does not describe its ``params.npz`` (None when it does,
    or when there are no metrics): computed from other parameters (their SHA-256, recorded
    since this check exists) or at another step."""
    m = run.metrics
    if m is None:
        return None
    digest = m.get("params_sha256")
    if digest is not None and digest != run.info["files"].get(PARAMS_FILE):
        return f"it was computed from other parameters than those in {PARAMS_FILE}"
    if m.get("steps") is not None and m["steps"] != run.info["steps"]:
        return (f"it is of step {m['steps']}, the parameters in {PARAMS_FILE} of step "
                f"{run.info['steps']}")
    return None


def _row(run: Run, echo) -> dict:
    from .analysis import table_row

    stale = stale_metrics(run)
    if run.metrics is not None and stale is None:
        return table_row(run.metrics)
    import jax

    from ..analysis.evaluate import evaluate

    if stale is not None:
        echo(f"warning: {os.path.join(run.folder, 'metrics.json')} does not match the saved fit "
             f"({stale}); evaluating the saved fit now (one-step metrics only, no rollouts).")
    else:
        echo(f"note: {run.folder} has no metrics.json; evaluating the saved fit now (one-step "
             f"metrics only, no rollouts).")
    ev = evaluate(run.result, run.train, run.tests, key=jax.random.key(0), rollouts=False)
    return table_row(ev.to_dict())


def _symmetry_line(run: Run) -> str | None:
    """The learned symmetry, rebuilt from the saved generators (Sec. 5.1)."""
    from ..analysis.symmetry import symmetry_report

    if not run.result.model.learns_conserved:
        return None
    an = run.meta.get("analysis", {})
    report = symmetry_report(run.result, reference=run.reference, names=run.reference_names,
                             threshold=an.get("threshold", DEFAULT_THRESHOLD))
    return f"{run.label} [{os.path.basename(os.path.normpath(run.folder))}]\n{report}"


def _discovery_line(run: Run) -> str | None:
    """What ``noether-ppl discover`` found for this run, when it has been run on it."""
    from .discovery import DISCOVERY_FILE

    path = os.path.join(run.folder, DISCOVERY_FILE)
    if not os.path.exists(path):
        return None
    d = check_discovery(read_json(path, "discovery file"), path)
    par = d.get("parallelness")
    par = "" if not par else ", parallelness " + ", ".join(f"{p:.4f}" for p in par)
    return (f"{run.label}: its H conserves {d['dimension']} quadratic quantities ({d['rule']}; "
            f"{d['n_points']} {d['data']} states{par}; from {DISCOVERY_FILE})")


def _refit_line(run: Run, runs) -> str | None:
    """For a refit run (``meta["refit_of"]``, written by an experiment with ``[inference]
    refit = true``): both fits' final −ELBO/N, when the joint fit is among ``runs``."""
    from ..inference.restarts import refit_record, refit_summary

    of = run.meta.get("refit_of")
    parent = os.path.dirname(os.path.normpath(run.folder))
    joint = [r for r in runs if of and os.path.normpath(r.folder) == os.path.join(parent, of)]
    if not joint:
        return None
    return refit_summary(joint[0].label, refit_record(joint[0].result, run.result),
                         n_conserved=run.result.model.n_conserved, kept=False)


def report(paths, *, figures: bool = True, out=None, fmt: str = "text", echo=print) -> str:
    """Print (via ``echo``) and return the table of the runs under ``paths``; with ``figures``
    redraw each run's figures and, for one experiment folder (or with ``out``), the comparison
    figures. Runs that are not complete are listed and left out of the table."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("Expected at least one run folder.")
    folders = []
    for p in paths:
        folders.extend(find_runs(p))
    runs = []
    for folder in folders:
        info = read_run_info(folder)
        if info["status"] != "complete":
            echo(f"note: {folder} is not complete (status {info['status']!r}, step "
                 f"{info.get('steps', 0)}); resume it with `noether-ppl fit --resume`. Left "
                 f"out of the table.")
            continue
        runs.append(open_run(folder))
    if not runs:
        raise ValueError("No complete run to report.")
    target = None
    if figures:  # every folder a figure goes to, checked before anything is drawn
        target = out
        if target is None and len(paths) == 1 and not is_run_folder(paths[0]):
            target = os.path.join(os.fspath(paths[0]), "figures")
        for r in runs:
            check_writable_folder(r.folder, "run folder")
            check_folder_path(os.path.join(r.folder, FIGURES_DIR), "figures folder")
        if target is not None and len(runs) > 1:
            check_writable_folder(target, "figures folder")
    labels = []
    for r in runs:
        lab = r.label
        if sum(x.label == lab for x in runs) > 1:  # the same model in several folders
            lab = f"{lab} [{os.path.relpath(r.folder)}]"
        labels.append(lab)
    rows = {lab: _row(r, echo) for lab, r in zip(labels, runs, strict=True)}
    test_names = []
    for r in runs:
        for name in r.tests:
            if name not in test_names:
                test_names.append(name)
    systems = {(r.meta.get("system") or {}).get("name") for r in runs}
    experiments = {r.meta.get("experiment") for r in runs}
    system_name = systems.pop() if len(systems) == 1 else None
    title = table_title(experiments.pop() if len(experiments) == 1 and None not in experiments
                        else "runs", system_name)
    table = format_table(rows, title, layout=table_layout(test_names), fmt=fmt)
    found = {r.folder: _discovery_line(r) for r in runs}  # read (and checked) before printing
    echo(table)
    for r in runs:
        line = _symmetry_line(r)
        if line:
            echo("")
            echo(line)
        for line in (_refit_line(r, runs), found[r.folder]):
            if line:
                echo(line)
        vi = (r.metrics or {}).get("vi")
        if vi:  # non-finite values are stored as strings ("inf", "nan") in JSON
            echo(f"{r.label}: VI diagnostics: Pareto k-hat {float(vi['pareto_k']):.3f} "
                 f"(good < {float(vi['good_k']):.2f}), ESS {float(vi['ess']):.1f} of "
                 f"{vi['num_samples']} draws")
    if figures:
        _draw_figures(runs, target, echo)
    return table


def _draw_figures(runs, target, echo) -> None:
    """Each run's figures (holding every run folder's lock) and, into ``target``, the
    comparison figures of several runs."""
    from .analysis import comparison_figures, run_figures

    written, notes = [], []
    with contextlib.ExitStack() as locks:
        for r in runs:
            locks.enter_context(folder_lock(r.folder))
        for r in runs:
            written += run_figures(r, system=system_for(r), notes=notes)
    if target is not None and len(runs) > 1:
        written += comparison_figures(runs, target, system=system_for(runs[0]), notes=notes)
    echo(f"\nFigures: {len(written)} written ({_common_dirs(written)}).")
    for note in notes:
        echo(f"  warning while drawing {note}")


def _common_dirs(paths) -> str:
    dirs = []
    for p in paths:
        d = os.path.dirname(p)
        if d not in dirs:
            dirs.append(d)
    return ", ".join(dirs[:4]) + (", ..." if len(dirs) > 4 else "")
