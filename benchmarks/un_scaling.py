"""Fig. 3 at CPU scale: the learned symmetry of n coupled oscillators, U(n) for n = 1 … 4,
over several data-and-fit keys.

    python benchmarks/un_scaling.py                 # n = 1..4, seeds 0..4 -> records/un-scaling/

For each n and seed, the learned variant of the packaged ``oscillators3-cpu`` with
``system.n = n``, ``K = max(K of the file, n² + 3)`` (room for more conserved quantities than
U(n)'s n², as notebook 02) and ``seed`` (the experiment's data and fit keys) is fitted; no other
setting changes (the analysis of the run folder is skipped: only the fit is used). The fitted
generators are read as in Sec. 5.1 (:func:`~noether_ppl.analysis.symmetry_report` against
U(n), the file's threshold): the number of singular values above ``threshold · σ_1`` (U(n) has
n²), the smallest parallelness of the active directions with U(n)'s span, and whether the run
matches U(n) (dimension equal and every active direction above the file's
``min_parallelness``). Writes ``records/<topic>/`` (table, metrics with every run's singular
values and parallelness, the command) and ``fig3.png``: the singular values and parallelness
of every n for the first seed (:func:`~noether_ppl.analysis.plots.plot_singular_values`, the
paper's Fig. 3 layout).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from record import RECORDS, write_record  # noqa: E402

from noether_ppl.analysis import plots, symmetry_report  # noqa: E402
from noether_ppl.experiments import load_experiment, run_experiment  # noqa: E402

EXPERIMENT = "oscillators3-cpu"


def run_one(n: int, seed: int, root: Path) -> tuple[dict, object]:
    base = load_experiment(EXPERIMENT)
    K = max(base.model.n_conserved, n * n + 3)
    exp = base.replace([f"system.n={n}", f"model.n_conserved={K}", f"seed={seed}"])
    t = time.perf_counter()
    out = run_experiment(exp, root / f"n{n}-seed{seed}", variants=["learned"],
                         progress_bar=False, analyze=False, echo=lambda *_: None)
    wall = time.perf_counter() - t
    rep = symmetry_report(out.runs["learned"].result, reference=exp.make_system(),
                          threshold=base.analysis.threshold)
    row = {"n": n, "seed": seed, "K": K, "u_n": n * n, "dimension": int(rep.dimension),
           "min_parallelness": (float(rep.parallelness.min()) if rep.dimension else None),
           "matches": bool(rep.matches_reference(base.analysis.min_parallelness)),
           "singular_values": [float(v) for v in rep.normalized_singular_values],
           "parallelness": [float(v) for v in rep.all_parallelness], "wall_s": wall}
    return row, rep


def table(rows: list[dict], threshold: float, min_par: float) -> str:
    out = [f"The learned variant of `{EXPERIMENT}` per n (K = max(12, n² + 3)) and seed; "
           f"dimension = singular values above {threshold} σ_1; matches = dimension n² and "
           f"every active direction at parallelness > {min_par} with U(n).", "",
           "| n | seed | K | U(n): n² | dimension | min parallelness (active) | matches | "
           "wall (s) |", "|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        par = "–" if r["min_parallelness"] is None else f"{r['min_parallelness']:.4f}"
        out.append(f"| {r['n']} | {r['seed']} | {r['K']} | {r['u_n']} | {r['dimension']} | "
                   f"{par} | {'yes' if r['matches'] else 'no'} | {r['wall_s']:.0f} |")
    out += ["", "| n | U(n): n² | dimension over the seeds | matches |", "|---:|---:|---|---:|"]
    for n in dict.fromkeys(r["n"] for r in rows):
        rs = [r for r in rows if r["n"] == n]
        out.append(f"| {n} | {n * n} | {', '.join(str(r['dimension']) for r in rs)} | "
                   f"{sum(r['matches'] for r in rs)}/{len(rs)} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ns", nargs="+", type=int, default=[1, 2, 3, 4])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--topic", default="un-scaling")
    args = p.parse_args(argv)
    if any(n < 1 for n in args.ns):
        p.error(f"--ns expects positive integers, got {args.ns}")
    base = load_experiment(EXPERIMENT)
    start = time.perf_counter()
    rows, first = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for n in args.ns:
                row, rep = run_one(n, seed, Path(tmp))
                rows.append(row)
                if seed == args.seeds[0]:
                    first[f"n = {n}"] = rep
                print(f"n = {n}, seed {seed}: dimension {row['dimension']} (U(n): {n * n}), "
                      f"matches {row['matches']}, {row['wall_s']:.0f} s", flush=True)
    rows.sort(key=lambda r: (r["n"], r["seed"]))
    text = table(rows, base.analysis.threshold, base.analysis.min_parallelness)
    folder = write_record(args.topic, table=text, metrics={
        "experiment": EXPERIMENT, "ns": args.ns, "seeds": args.seeds, "rows": rows},
        command=sys.argv, wall_s=time.perf_counter() - start)
    plots.plot_singular_values(first, path=RECORDS / args.topic / "fig3.png")
    print(text)
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
