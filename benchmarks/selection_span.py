"""Score the selection of a recorded ``noether-ppl fit --auto`` run against the system's known
symmetry: no fitting, only the record's numbers.

    python benchmarks/selection_span.py nbody2d3-cpu-auto --experiment nbody2d3-cpu \\
        --topic nbody2d3-cpu-auto-span

For each ``*-selected`` run in ``records/<record>/metrics.json``: the parallelness of every
selected direction with the reference span (Sec. 5.1: the norm of its projection onto the
span), and, for each reference generator, how much of it the selected span holds (the norm of
its projection onto the selected span, 1 when it lies in it). The second table says which
true direction a selection missed. Writes the record ``records/<topic>/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from record import RECORDS, write_record

from noether_ppl.analysis.symmetry import parallelness
from noether_ppl.experiments import load_experiment
from noether_ppl.geometry import span_basis


def coverage(selected: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(L_ref,)``: for each reference generator (normalised), the norm of its projection
    onto the span of ``selected (L, M+1, M+1)``."""
    basis = span_basis(selected).reshape(-1, selected[0].size)  # orthonormal rows
    R = reference.reshape(len(reference), -1)
    R = R / np.linalg.norm(R, axis=1, keepdims=True)
    return np.linalg.norm(R @ basis.T, axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", help="a record folder name under benchmarks/records/")
    parser.add_argument("--experiment", required=True,
                        help="the packaged experiment whose system is the reference")
    parser.add_argument("--topic", required=True, help="write records/TOPIC/")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    metrics = json.loads((RECORDS / args.record / "metrics.json").read_text())
    system = load_experiment(args.experiment).make_system()
    reference = np.asarray(system.generators())
    names = list(system.generator_names())
    lines, rows = [], {}
    for slug, run in metrics.items():
        selection = run.get("run", {}).get("selection")
        if not selection:
            continue
        G = np.asarray(selection["generators"])
        par = parallelness(G, reference) if len(G) else np.zeros(0)
        cov = coverage(G, reference) if len(G) else np.zeros(len(reference))
        rows[slug] = {"dimension": selection["dimension"],
                      "reference_dimension": len(reference),
                      "parallelness": par.tolist(), "residuals": selection["residuals"],
                      "coverage": dict(zip(names, cov.tolist(), strict=True))}
        lines += [f"{slug}: {selection['dimension']} selected directions against the "
                  f"{len(reference)}-dim reference span of {args.experiment}", "",
                  "| direction | parallelness | residual under Ĥ |", "|---:|---:|---:|"]
        lines += [f"| {i} | {p:.4f} | {r:.3g} |"
                  for i, (p, r) in enumerate(zip(par, selection["residuals"], strict=True))]
        lines += ["", "| reference generator | share in the selected span |", "|---|---:|"]
        lines += [f"| {n} | {c:.3f} |" for n, c in zip(names, cov, strict=True)]
        lines.append("")
    if not rows:
        raise SystemExit(f"{args.record}: no run with a selection in its metrics.json")
    text = "\n".join(lines)
    print(text)
    command = ["benchmarks/selection_span.py", *(argv if argv is not None else sys.argv[1:])]
    folder = write_record(args.topic, table=text, metrics=rows, command=command,
                          wall_s=time.perf_counter() - start,
                          notes=f"computed from records/{args.record}/metrics.json "
                                f"(no fitting)")
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
