"""Where an experiment folder's figures spend their time: each run's figures and the
comparison figures drawn again from the saved runs, timed, with the number of PSIS-LOO
computations (``arviz_stats.loo``) and their seconds.

    python benchmarks/figure_time.py /tmp/nbrun/nb-auto --experiment nbody2d3-cpu \\
        --topic figure-time-nbody

The figures go to a scratch copy's folders (``--out``, default a temporary folder): the
experiment folder itself is read only. Run it with ``PYTHONPATH`` at two code trees to
compare them on one machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import jax
from record import write_record

from noether_ppl.experiments import load_experiment
from noether_ppl.runs import comparison_figures, open_run, run_figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="an experiment folder (one run folder per variant)")
    parser.add_argument("--experiment", help="the packaged experiment (its system)")
    parser.add_argument("--topic", required=True, help="write records/TOPIC/")
    parser.add_argument("--label", default="", help="a name for the code tree measured")
    args = parser.parse_args(argv)
    import importlib

    import arviz_stats

    # `loo` as the package exports it (the figures' and pointwise_loo's) and as `compare`
    # imported it
    compare_module = importlib.import_module("arviz_stats.loo.compare")
    real = arviz_stats.loo
    loo_s: list[float] = []

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            loo_s.append(time.perf_counter() - t)

    arviz_stats.loo = compare_module.loo = timed
    system = load_experiment(args.experiment).make_system() if args.experiment else None
    start = time.perf_counter()
    scratch = tempfile.mkdtemp(prefix="figure-time-")
    rows = []
    try:
        runs = []
        for name in sorted(os.listdir(args.folder)):
            src = os.path.join(args.folder, name)
            if not os.path.exists(os.path.join(src, "run.json")):
                continue
            dst = os.path.join(scratch, name)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("figures"))
            runs.append(open_run(dst))
        for run in runs:
            n0, t = len(loo_s), time.perf_counter()
            run_figures(run, system=system, key=jax.random.key(0))
            rows.append({"figures": os.path.basename(run.folder), "wall_s":
                         time.perf_counter() - t, "loo": len(loo_s) - n0,
                         "loo_s": sum(loo_s[n0:])})
        n0, t = len(loo_s), time.perf_counter()
        comparison_figures(runs, os.path.join(scratch, "figures"), system=system)
        rows.append({"figures": "comparison", "wall_s": time.perf_counter() - t,
                     "loo": len(loo_s) - n0, "loo_s": sum(loo_s[n0:])})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        arviz_stats.loo = compare_module.loo = real
    total = {"figures": "all", "wall_s": sum(r["wall_s"] for r in rows),
             "loo": sum(r["loo"] for r in rows), "loo_s": sum(r["loo_s"] for r in rows)}
    lines = [f"Figures of {args.folder} drawn again{f' ({args.label})' if args.label else ''}: "
             "seconds per run folder and for the comparison figures, and the PSIS-LOO "
             "computations among them.", "",
             "| figures | wall (s) | PSIS-LOO computations | their seconds |",
             "|---|---:|---:|---:|"]
    lines += [f"| {r['figures']} | {r['wall_s']:.1f} | {r['loo']} | {r['loo_s']:.1f} |"
              for r in [*rows, total]]
    text = "\n".join(lines)
    print(text)
    command = ["benchmarks/figure_time.py", *(argv if argv is not None else sys.argv[1:])]
    write_record(args.topic, table=text, metrics={"rows": rows, "total": total,
                                                  "label": args.label},
                 command=command, wall_s=time.perf_counter() - start,
                 notes=f"the folder {args.folder} (not committed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
