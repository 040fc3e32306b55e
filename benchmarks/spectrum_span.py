"""Which quadratic quantities a saved fit's Ĥ conserves best, scored against the system's
known symmetry: no fitting.

    python benchmarks/spectrum_span.py RUN_FOLDER --experiment nbody2d3-cpu \\
        --topic nbody2d3-cpu-auto-spectrum --head 10

For the run folder of a learned fit (e.g. the ``learned-selected`` folder of a ``noether-ppl
fit --auto`` run): the conservation spectrum of its Ĥ on its training states
(:func:`~noether_ppl.inference.conservation.conservation_spectrum`, the spectrum
``select_conserved`` reads the dimension from), and for each of its first ``--head``
directions the residual, the parallelness with the reference span (Sec. 5.1) and which
reference generator it is mostly made of; and, for each cut ``j``, how much of every reference
generator the first ``j`` directions hold. It says where a selection's cut fell relative to the
true directions: which of them Ĥ conserves less well than the others. For a fit that learns its
generators it also lists each learned principal generator (σ_k v_k, Sec. 5.1): its σ, its
parallelness with the reference span and its share in the span of the spectrum's first j
directions, i.e. whether the directions Ĥ conserves best are the ones it is symmetrised over.
The reference only scores; nothing here feeds back into a fit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np
from record import write_record
from selection_span import coverage

from noether_ppl.analysis.symmetry import parallelness
from noether_ppl.data import Trajectories
from noether_ppl.experiments import load_experiment
from noether_ppl.geometry import span_basis
from noether_ppl.inference.conservation import (
    conservation_spectrum,
    principal_generators,
    spectrum_dimension,
)
from noether_ppl.inference.select import DEFAULT_MAX_RESIDUAL
from noether_ppl.runs import load_run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder of a learned fit (with data/train.npz)")
    parser.add_argument("--experiment", required=True,
                        help="the packaged experiment whose system is the reference")
    parser.add_argument("--topic", required=True, help="write records/TOPIC/")
    parser.add_argument("--head", type=int, default=10, help="directions to list")
    parser.add_argument("--seed", type=int, default=0, help="key of the spectrum's estimate")
    args = parser.parse_args(argv)
    if args.head < 1:
        parser.error(f"--head: expected a positive int, got {args.head}")
    start = time.perf_counter()
    result = load_run(args.run)
    data = Trajectories.load(os.path.join(args.run, "data", "train.npz"))
    x = np.asarray(data.states, np.float64).reshape(-1, data.phase_dim)
    system = load_experiment(args.experiment).make_system()
    reference = np.asarray(system.generators())
    names = list(system.generator_names())
    r, G = conservation_spectrum(result, x, key=jax.random.key(args.seed))
    D, ratio = spectrum_dimension(r, DEFAULT_MAX_RESIDUAL)
    head = min(args.head, len(r))
    par = parallelness(G[:head], reference)
    R = reference.reshape(len(reference), -1)
    R = R / np.linalg.norm(R, axis=1, keepdims=True)
    weights = G[:head].reshape(head, -1) @ R.T  # components on the (normalised) reference
    lines = [f"{args.run}: the conservation spectrum of the fit's Ĥ on its {len(x)} training "
             f"states; {len(r)} quadratic directions, {len(reference)}-dim reference span of "
             f"{args.experiment}. The largest-gap rule (max residual {DEFAULT_MAX_RESIDUAL}) "
             f"reads D = {D}" + (f" (gap x{ratio:.2f})." if ratio else "."), "",
             "| j | residual | ratio to the one before | parallelness | largest reference "
             "component |", "|---:|---:|---:|---:|---|"]
    for j in range(head):
        k = int(np.argmax(np.abs(weights[j])))
        step = f"{r[j] / r[j - 1]:.2f}" if j else "–"
        lines.append(f"| {j + 1} | {r[j]:.4g} | {step} | {par[j]:.4f} | "
                     f"{names[k]} ({weights[j, k]:+.2f}) |")
    cuts = list(range(max(1, len(reference) - 2), min(head, len(reference) + 2) + 1))
    lines += ["", "Share of each reference generator in the span of the first j directions:",
              "", "| reference generator | " + " | ".join(f"j = {j}" for j in cuts) + " |",
              "|---|" + "---:|" * len(cuts)]
    shares = {j: coverage(G[:j], reference) for j in cuts}
    for i, n in enumerate(names):
        lines.append(f"| {n} | " + " | ".join(f"{shares[j][i]:.3f}" for j in cuts) + " |")
    learned = None
    if result.model.learns_conserved:
        sig, P = principal_generators(result.generators())
        unit = P.reshape(len(P), -1) / np.linalg.norm(P.reshape(len(P), -1), axis=1,
                                                      keepdims=True)
        par_learned = parallelness(P, reference)
        inside = {j: np.linalg.norm(unit @ span_basis(G[:j]).T, axis=1) for j in cuts}
        learned = {"sigma": sig.tolist(), "parallelness": par_learned.tolist(),
                   "shares": {str(j): v.tolist() for j, v in inside.items()}}
        lines += ["", f"The fit's {len(P)} learned generators (principal form, Sec. 5.1): σ, "
                  "parallelness with the reference span, and share of each in the span of the "
                  "spectrum's first j directions:", "",
                  "| k | σ | parallelness | " + " | ".join(f"j = {j}" for j in cuts) + " |",
                  "|---:|---:|---:|" + "---:|" * len(cuts)]
        for k in range(len(P)):
            lines.append(f"| {k + 1} | {sig[k]:.4g} | {par_learned[k]:.4f} | "
                         + " | ".join(f"{inside[j][k]:.3f}" for j in cuts) + " |")
    text = "\n".join(lines)
    print(text)
    command = ["benchmarks/spectrum_span.py", *(argv if argv is not None else sys.argv[1:])]
    metrics = {"residuals": r.tolist(), "dimension": D, "gap_ratio": ratio,
               "parallelness": par.tolist(), "reference_names": names,
               "components": weights.tolist(),
               "shares": {str(j): s.tolist() for j, s in shares.items()},
               "learned_generators": learned}
    folder = write_record(args.topic, table=text, metrics=metrics, command=command,
                          wall_s=time.perf_counter() - start,
                          notes=f"the run folder {args.run} (not committed); no fitting")
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
