"""Are the razor's selections closed under the Lie bracket, and what would closing them add?

No fitting. For each row of discovery records (``records/<topic>/metrics.json`` of
``discovery.py``), the selection's generators (``selection.generators``, principal form) are
read again and completed under the bracket as ``select_conserved(close=True)`` completes them
(``inference.complete.lie_closure``: the brackets' parts outside the span above
``BUILT_IN_MIN_PART``), *without* its two checks, which need the fit: each added direction's
residual under the fitted Ĥ and the ELBO of the refit at the closed span. So a row says what
the closure's geometry does to a recorded selection, not what a run with ``close=True`` returns
(``discovery.py --close`` measures that).

Scoring only (ground truth never enters the closure): each added direction's share in the true
span, the smallest parallelness of the selection before and after, and whether the row is
right before and after (dimension equal to the true one, every direction at parallelness above
``--par``). A second table gives, per system, the dimension of the true algebra and the rank
of its Hamiltonian vector fields ``J∇C_k(x)`` at the record's training states: the dimension
of the orbits the symmetrisation averages over (Eq. 14), all the ELBO can see of a span; a
direction whose field lies in the others' at every state leaves an Ĥ invariant under the
others unchanged.

    python bracket_closure.py --sources discovery-two-body-evidence discovery \
        --detail two-body-2d nbody2d3 --topic bracket-closure
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from discovery import train_data
from record import add_topic_arguments, read_record, write_record

from noether_ppl import analysis, systems
from noether_ppl.geometry import span_basis
from noether_ppl.inference.complete import lie_closure
from noether_ppl.inference.conservation import BUILT_IN_MIN_PART, bracket_parts

RANK_RTOL = 1e-8
"""A singular value of the stacked vector fields below ``RANK_RTOL`` times the largest one at
that state counts as zero (the true generators are exact to round-off)."""


def orbit_ranks(truth: np.ndarray, states: np.ndarray) -> np.ndarray:
    """``(N,)`` the rank of the vector fields ``G_k (x, 1)`` (the first M entries: ``J∇C_k(x)``,
    Eq. 4) of ``truth (L, M+1, M+1)`` at each state ``states (N, M)``."""
    M = states.shape[1]
    xh = np.concatenate([states, np.ones((states.shape[0], 1))], axis=1)
    V = np.einsum("lab,nb->nal", truth, xh)[:, :M, :]  # (N, M, L)
    s = np.linalg.svd(V, compute_uv=False)
    return np.sum(s > RANK_RTOL * s[:, :1], axis=1)


def min_par(G: np.ndarray, truth: np.ndarray) -> float | None:
    if G.shape[0] == 0:
        return None
    return float(np.min(analysis.parallelness(G.reshape(G.shape[0], -1), truth)))


def score_row(row: dict, par: float) -> dict:
    system = {**systems.PAPER, **systems.SUITE}[row["system"]]()
    truth = system.generators()
    L, M = truth.shape[0], system.phase_dim
    G = np.asarray(row["selection"]["generators"], np.float64).reshape(-1, M + 1, M + 1)
    basis = span_basis(G) if G.shape[0] else np.zeros((0, (M + 1) ** 2))
    _, sig = bracket_parts(basis)
    closed, rounds = lie_closure(basis, lambda parts: np.zeros(len(parts)), np.inf)
    added = closed[basis.shape[0]:]
    shares = (analysis.parallelness(added, truth).tolist() if added.shape[0] and L
              else [0.0] * added.shape[0])
    before = min_par(G, truth) if L else (0.0 if G.shape[0] else None)
    after = min_par(closed, truth) if L else (0.0 if closed.shape[0] else None)

    # scoring only: the true direction the selection holds least (its part outside the span)
    least = None
    if L and basis.shape[0]:
        flat = truth.reshape(L, -1) / np.linalg.norm(truth.reshape(L, -1), axis=1)[:, None]
        outside = np.linalg.norm(flat - (flat @ basis.T) @ basis, axis=1)
        j = int(np.argmax(outside))
        least = {"name": system.generator_names()[j], "outside": float(outside[j])}

    def ok(D, p):
        return bool(D == L and (L == 0 or (p is not None and p > par)))

    return {"system": row["system"], "key": row["key"], "true_dim": L,
            "selected": int(G.shape[0]), "min_par": before,
            "bracket_singular_values": [float(v) for v in sig[:3]],
            "rounds": len(rounds), "added": int(added.shape[0]), "added_true_shares": shares,
            "closed": int(closed.shape[0]), "min_par_closed": after,
            "least_held": least,
            "ok": ok(G.shape[0], before), "ok_closed": ok(closed.shape[0], after)}


def ranks_of(topic: str, settings: dict, names) -> list[dict]:
    out = []
    for name in names:
        system = {**systems.PAPER, **systems.SUITE}[name]()
        truth = system.generators()
        if truth.shape[0] == 0:
            continue
        ranks = []
        for key in settings["keys"]:
            data = train_data(system, key, trajectories=settings["trajectories"],
                              points=settings["points"], dt=settings.get("dt"))
            x = np.asarray(data.states, np.float64).reshape(-1, system.phase_dim)
            ranks.append(orbit_ranks(truth, x))
        r = np.concatenate(ranks)
        out.append({"source": topic, "system": name, "algebra_dim": int(truth.shape[0]),
                    "phase_dim": int(system.phase_dim), "rank_median": float(np.median(r)),
                    "rank_min": int(r.min()), "rank_max": int(r.max()), "states": int(r.size)})
    return out


def _f(v, spec):
    return "–" if v is None else format(v, spec)


def table(scored: dict, ranks: list, par: float, detail=None) -> str:
    out = [f"The razor's recorded selections completed under the Lie bracket "
           f"(`lie_closure`: brackets' parts outside the span above {BUILT_IN_MIN_PART:g}), "
           "geometry only: neither the added directions' residuals under the fitted H nor the "
           "ELBO of a refit at the closed span is checked (`discovery.py --close` does both). "
           "Scoring only: the true direction with the largest part (of unit norm) outside the "
           "selected span, the added directions' shares in the true span; right = dimension "
           f"equal and every direction at parallelness > {par}.", ""]
    for topic, rows in scored.items():
        listed = [r for r in rows if detail is None or r["system"] in detail]
        out += [f"`{topic}`" + ("" if len(listed) == len(rows) else
                                " (rows of " + ", ".join(dict.fromkeys(
                                    r["system"] for r in listed)) + "; every system in the "
                                "summary below)") + ":", "",
                "| system | key | true | selected | min par | true direction held least: part "
                "outside | bracket parts (first 3) | added (share in the true span) | closed | "
                "min par | right: before → closed |",
                "|---|---:|---:|---:|---:|---|---|---|---:|---:|---|"]
        for r in listed:
            shares = r["added_true_shares"]
            added = (f"{r['added']} (" + ", ".join(f"{s:.2f}" for s in shares[:3])
                     + (", …" if len(shares) > 3 else "") + ")" if r["added"] else "0")
            out.append(f"| {r['system']} | {r['key']} | {r['true_dim']} | {r['selected']} | "
                       f"{_f(r['min_par'], '.3f')} | "
                       + (f"{r['least_held']['name']} {r['least_held']['outside']:.2f} | "
                          if r.get("least_held") else "– | ")
                       + (", ".join(f"{v:.2f}" for v in r["bracket_singular_values"]) or "–")
                       + f" | {added} | {r['closed']} | {_f(r['min_par_closed'], '.3f')} | "
                       f"{'✓' if r['ok'] else '✗'} → {'✓' if r['ok_closed'] else '✗'} |")
        out += ["", "| system | right before | right closed | rows the closure changes | "
                "largest bracket part |", "|---|---:|---:|---:|---:|"]
        for name in dict.fromkeys(r["system"] for r in rows):
            rs = [r for r in rows if r["system"] == name]
            largest = max((v for r in rs for v in r["bracket_singular_values"]), default=None)
            out.append(f"| {name} | {sum(r['ok'] for r in rs)}/{len(rs)} | "
                       f"{sum(r['ok_closed'] for r in rs)}/{len(rs)} | "
                       f"{sum(r['added'] > 0 for r in rs)} | "
                       f"{_f(largest, '.2f')} |")
        out.append("")
    out += ["The true algebra's dimension against the rank of its vector fields J∇C_k(x) at "
            "the training states of each source's keys (the dimension of the orbits the "
            f"symmetrisation averages over; rank at {RANK_RTOL:g} of the largest singular "
            "value):", "",
            "| source | system | M | algebra dim | orbit rank: median [min, max] | states |",
            "|---|---|---:|---:|---|---:|"]
    for r in ranks:
        out.append(f"| `{r['source']}` | {r['system']} | {r['phase_dim']} | {r['algebra_dim']} "
                   f"| {r['rank_median']:g} [{r['rank_min']}, {r['rank_max']}] | "
                   f"{r['states']} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", nargs="+", required=True,
                   help="topics of discovery.py records whose selections are read")
    p.add_argument("--par", type=float, default=0.95)
    p.add_argument("--detail", nargs="+", default=None,
                   help="list the rows of these systems only (the summary keeps every system)")
    add_topic_arguments(p)
    p.set_defaults(topic="bracket-closure")
    args = p.parse_args(argv)
    start = time.perf_counter()
    scored, ranks = {}, []
    for topic in args.sources:
        _, metrics, meta = read_record(topic)
        rows = [r for r in metrics["rows"] if "selection" in r]
        scored[topic] = [score_row(r, args.par) for r in rows]
        names = list(dict.fromkeys(r["system"] for r in rows))
        ranks += ranks_of(topic, metrics["settings"], names)
    text = table(scored, ranks, args.par, args.detail)
    write_record(args.topic, table=text,
                 metrics={"sources": args.sources, "par": args.par, "detail": args.detail,
                          "rows": scored, "ranks": ranks},
                 command=sys.argv, wall_s=time.perf_counter() - start)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
