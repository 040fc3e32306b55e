"""Record an experiment folder of ``noether-ppl fit`` as a benchmark record, so that a table
quoted in ``REPRODUCTION.md`` has its numbers, command and commit committed.

    noether-ppl fit sho-cpu --out runs/sho-cpu
    python benchmarks/record_run.py runs/sho-cpu --topic sho-cpu \\
        --command "noether-ppl fit sho-cpu --out runs/sho-cpu"

Writes ``benchmarks/records/<topic>/``: ``table.md`` (``noether-ppl report DIR --markdown`` as
it prints, symmetry and selection lines included), ``metrics.json`` (each run's
``metrics.json`` and the run facts of its ``run.json``: status, steps, wall time, timing split;
``auto``: the ``selection.json`` of a ``--auto`` selection, its comparisons included;
curves over time, such as the rollouts' per-step errors, are left out: they stay in the run
folder; ``timing``: the whole command's fit / analysis / I/O split, from ``experiment.json`` or
the demo's ``metrics.json``) and ``record.json`` (the command given, the commit, versions,
machine). The wall
time is the sum of the runs' recorded wall times unless ``--wall-s`` gives the command's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from record import write_record

from noether_ppl.experiments.fitting import SELECTION_FILE
from noether_ppl.runs.files import read_metrics, read_run_info
from noether_ppl.runs.report import find_runs, report

_RUN_FACTS = ("variant", "label", "status", "steps", "wall_time_s", "timing", "selection")
_MAX_LIST = 16
"""Longer lists (curves over time) are left out of a record."""


def _without_curves(obj):
    """``obj`` with every list longer than :data:`_MAX_LIST` removed, recursively."""
    if isinstance(obj, dict):
        return {k: _without_curves(v) for k, v in obj.items()
                if not (isinstance(v, list) and len(v) > _MAX_LIST)}
    if isinstance(obj, list):
        return [_without_curves(v) for v in obj]
    return obj


def collect(folder: str) -> tuple[str, dict, float]:
    """``(table, metrics, summed wall seconds)`` of the complete runs under ``folder``."""
    lines: list[str] = []
    report(folder, figures=False, fmt="markdown", echo=lines.append)  # table, then notes
    metrics, wall = {}, 0.0
    for run_dir in find_runs(folder):
        info = read_run_info(run_dir)
        facts = {k: v for k, v in {**info, **info.get("info", {})}.items() if k in _RUN_FACTS}
        wall += float(info.get("info", {}).get("wall_time_s") or 0.0)
        selection = os.path.join(run_dir, SELECTION_FILE)  # `--auto`: the pipeline's record
        if os.path.isfile(selection):
            with open(selection) as f:
                facts["auto"] = _without_curves(json.load(f))
        metrics[os.path.relpath(run_dir, folder)] = {
            "run": facts, "metrics": _without_curves(read_metrics(run_dir))}
    # the whole command's split (fit / analysis / I/O seconds): experiment.json of
    # `noether-ppl fit`, metrics.json of `noether-ppl demo`
    for name in ("experiment.json", "metrics.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path) as f:
                timing = json.load(f).get("timing")
            if timing:
                metrics["timing"] = timing
                break
    return "\n".join(lines), metrics, wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="experiment folder written by `noether-ppl fit`")
    parser.add_argument("--topic", required=True, help="records/<topic>/ to write")
    parser.add_argument("--command", required=True,
                        help="the command line that made the folder, as run")
    parser.add_argument("--wall-s", type=float, default=None,
                        help="the command's wall time (default: the runs' summed wall time)")
    parser.add_argument("--notes", default=None, help="what a reader needs to know")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.folder):
        parser.error(f"--folder: no folder at {args.folder!r}")
    table, metrics, wall = collect(args.folder)
    path = write_record(args.topic, table=table, metrics=metrics, command=args.command,
                        wall_s=args.wall_s if args.wall_s is not None else wall,
                        notes=args.notes)
    print(table)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
