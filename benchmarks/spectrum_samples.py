"""Can the selection's spectrum read a symmetry that the fit is symmetrised over?

``select_conserved`` reads the number of conserved quantities off the spectrum of the fitted
Ĥ over all quadratic quantities (:func:`~noether_ppl.inference.conservation_spectrum`, the
relative Poisson brackets ``{C, Ĥ}`` of Sec. 3.1 on the training states, cut at the largest
gap by :func:`~noether_ppl.inference.conservation.spectrum_cuts`). Ĥ there is the fit's
Monte-Carlo estimate of Eq. 14: one draw of S group elements from the measure μ, the
training's S. This script fits the model whose symmetry is held fixed at the system's true
generators (``symmetry_evidence.py``'s ``symmetric`` model, the discovery benchmark's data and
settings) and reads that spectrum from the same fit with several numbers of symmetry samples
S' (same parameters; ``FitResult.with_sym_samples``). For each S' it records the dimension the
rule reads and its gap ratio, the spectrum's values at the true dimension and one past it,
the largest residual of a true generator, and the smallest parallelness of the spectrum's
leading directions (as many as the true dimension) to the true span.

Ground truth fixes this fit: it is a diagnostic of the reading step, not the package's
method. If the rule reads fewer directions than the fit holds at the training's S and the true
number at a larger S', the reading, not the fit, loses them. (Over a non-compact direction the
ball measure symmetrises F only approximately, Eq. 14, so a true generator's residual is not
zero even at large S'.)

With ``--refit-read S'`` it also asks whether the evidence would choose the true dimension
where the gap does not: from the same fit it refits F for ``--refit-steps`` steps with the
symmetry held fixed at the spectrum's leading L−1 and leading L directions read with S'
samples (an orthonormal basis of each span, scaled to the median σ of the true generators, as
``select_conserved`` scales its refit), and continues the fit at the true generators for as
many steps; the paired ELBO differences (:func:`~noether_ppl.inference.elbo_difference`, nats
± standard error on the training pairs) set the L-direction refit and the true-generator
continuation against the L−1-direction refit. A positive difference beyond twice its standard
error is evidence for the L-th direction.

Usage::

    python spectrum_samples.py --system two-body-2d --dt 0.1 --integrator rk4 --substeps 4 \\
        --steps 16000 --spectrum-sym-samples 16 64 256 --topic two-body-spectrum-samples
    python spectrum_samples.py --system two-body-2d --dt 0.1 --integrator rk4 --substeps 4 \\
        --steps 16000 --spectrum-sym-samples 256 --refit-read 256 --refit-steps 4000 \\
        --topic two-body-spectrum-refits
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np
from discovery import INTEGRATOR, NOISE_VARIANCE, SUBSTEPS, _min_par
from record import add_topic_arguments, publish, rebuild
from symmetry_evidence import data, model, symmetry

from noether_ppl import analysis, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.geometry import span_basis
from noether_ppl.inference import DivergenceError, elbo_difference, fit
from noether_ppl.inference.conservation import (
    conservation_residuals,
    conservation_spectrum,
    principal_generators,
    spectrum_cuts,
)
from noether_ppl.inference.evidence import DEFAULT_REPEATS
from noether_ppl.inference.select import DEFAULT_MAX_RESIDUAL
from noether_ppl.integrators import INTEGRATORS
from noether_ppl.models import NoetherRazor


def read_spectrum(result, truth: np.ndarray, states: np.ndarray, sym_samples: int,
                  key: jax.Array, names: list[str] | None = None) -> dict:
    """What the selection's rule reads from ``result``'s Ĥ estimated with ``sym_samples``
    group elements (module docstring); ``truth`` ``(L, M+1, M+1)``, ``states`` ``(N, M)``;
    ``names``: the true generators' names, to record each one's residual."""
    fitted = result.with_sym_samples(sym_samples)
    spectrum, S = conservation_spectrum(fitted, states, key=key)
    (D, ratio), = spectrum_cuts(spectrum, DEFAULT_MAX_RESIDUAL)
    L = truth.shape[0]
    r_true = conservation_residuals(fitted, truth, states, key=key)
    return {"sym_samples": int(sym_samples), "read": int(D), "gap_ratio": float(ratio),
            "at_true": float(spectrum[L - 1]), "past_true": float(spectrum[L]),
            "true_max_residual": float(np.max(r_true)),
            **({"true_residuals": dict(zip(names, map(float, r_true), strict=True))}
               if names is not None else {}),
            "leading_min_par": _min_par(np.asarray(S[:L]), truth),
            "spectrum_head": spectrum[: L + 3].tolist()}


def refit_cuts(result, truth: np.ndarray, train, sym_samples: int, key: jax.Array,
               args) -> dict:
    """The ELBO of refits from ``result`` (the true generators ``truth`` ``(L, M+1, M+1)``
    held fixed) at the spectrum's leading L−1 and L directions read with ``sym_samples``, and
    of ``result`` continued as long, on the pairs of ``train`` (module docstring)."""
    states = np.asarray(train.states, np.float64).reshape(-1, train.phase_dim)
    spectrum, S = conservation_spectrum(result.with_sym_samples(sym_samples), states, key=key)
    L, M = truth.shape[0], train.phase_dim
    size = float(np.median(principal_generators(truth)[0]))
    k_fit, k_cmp = jax.random.split(jax.random.fold_in(key, 1))
    stopped = []

    def refit(G, name):
        model = NoetherRazor(result.model.spec.replace(n_conserved=G.shape[0]), phase_dim=M,
                             generators=G if G.shape[0] else None)  # none: the plain HNN
        try:
            return fit(model, train, key=k_fit, init_params=result.params,
                       num_steps=args.refit_steps, lr=args.lr, batch_size=args.batch_size,
                       progress_bar=False)
        except DivergenceError as err:  # its last good state, noted
            stopped.append({"refit": name, "step": int(err.step)})
            return err.result

    fits = {D: refit(size * span_basis(S[:D]).reshape(-1, M + 1, M + 1), f"leading {D}")
            for D in (L - 1, L)}
    fits["true"] = refit(truth, "true")
    out = {"sym_samples": int(sym_samples), "stopped": stopped,
           "leading_min_par": _min_par(np.asarray(S[:L]), truth)}
    for name, other in (("leading", fits[L]), ("true", fits["true"])):
        d, se, est, est_base = elbo_difference(other, fits[L - 1], train, key=k_cmp,
                                               num_repeats=args.num_repeats)
        out[name] = {"delta": d, "se": se, "neg_elbo_per_n": est.neg_elbo_per_n}
        out["without"] = {"neg_elbo_per_n": est_base.neg_elbo_per_n}
    return out


def run_one(key: int, args) -> dict:
    train, test = data(key, args)
    _, truth = symmetry(args.system)
    t = time.perf_counter()
    result = fit(model("symmetric", args.noise_variance, args.system,
                       sym_samples=args.sym_samples, hidden=tuple(args.hidden),
                       integrator=args.integrator, substeps=args.substeps), train,
                 key=jax.random.key(key), num_steps=args.steps, lr=args.lr,
                 batch_size=args.batch_size, progress_bar=False)
    fit_s = time.perf_counter() - t
    states = np.asarray(train.states, np.float64).reshape(-1, train.phase_dim)
    k_read = jax.random.key(11)  # the same group elements' key for every S'
    names = {**systems.PAPER, **systems.SUITE}[args.system]().generator_names()
    reads = [read_spectrum(result, np.asarray(truth), states, S, k_read, names)
             for S in args.spectrum_sym_samples]
    refits = (refit_cuts(result, np.asarray(truth), train, args.refit_read,
                         jax.random.key(13), args) if args.refit_read else None)
    return {"key": key, "fit_s": fit_s, "wall_s": time.perf_counter() - t,
            "test_mse": analysis.one_step_mse(result, test, key=jax.random.key(7)),
            "reads": reads, **({"refits": refits} if refits is not None else {})}


def _nth(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ..., ``11th``, ``21st``."""
    last = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{'th' if 10 <= n % 100 <= 20 else last}"


def table(rows: list[dict], args) -> str:
    L = systems.DIMENSIONS[args.system]
    out = [f"{args.system} (true dimension {L}): the model with the true generators held fixed, "
           f"the discovery benchmark's data and settings ({args.trajectories} trajectories x "
           f"{args.points} steps" + (f", Δt = {args.dt:g}" if args.dt is not None else "")
           + f", MLP {' x '.join(map(str, args.hidden))}, likelihood mean {args.substeps} x "
           f"{args.integrator}, S = {args.sym_samples}, {args.steps} steps, lr {args.lr}, "
           f"batch {args.batch_size}), its spectrum read with S' symmetry samples (the rule "
           f"of select_conserved: the largest gap below {DEFAULT_MAX_RESIDUAL:g}). \"at L\", "
           f"\"at L+1\": the spectrum's {_nth(L)} and {_nth(L + 1)} residuals; \"true max\": the "
           f"largest residual of a true generator, and the two least conserved ones where "
           f"recorded; \"par\": the smallest parallelness of the "
           f"spectrum's leading {L} directions to the true span. Ground truth fixes the fit: a "
           f"diagnostic of the reading.", "",
           "| key | S' | read | gap | at L | at L+1 | true max | least conserved true "
           "directions | par | test MSE | fit (s) |",
           "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        for g in r["reads"]:
            par = "–" if g["leading_min_par"] is None else f"{g['leading_min_par']:.3f}"
            named = sorted((g.get("true_residuals") or {}).items(), key=lambda kv: -kv[1])
            least = ", ".join(f"{n} {v:.4f}" for n, v in named[:2]) or "–"
            out.append(f"| {r['key']} | {g['sym_samples']} | {g['read']} | "
                       f"{g['gap_ratio']:.3g} | {g['at_true']:.4f} | {g['past_true']:.4f} | "
                       f"{g['true_max_residual']:.4f} | {least} | {par} | "
                       f"{r['test_mse']:.3e} | "
                       f"{r['fit_s']:.0f} |")
    out += ["", "| S' | keys reading the true dimension | read: median [min, max] |",
            "|---:|---:|---|"]
    for i, S in enumerate(args.spectrum_sym_samples):
        reads = [r["reads"][i]["read"] for r in rows]
        out.append(f"| {S} | {sum(d == L for d in reads)}/{len(reads)} | "
                   f"{int(np.median(reads))} [{min(reads)}, {max(reads)}] |")
    refits = [r for r in rows if "refits" in r]
    if refits:
        out += ["", f"Refits from each fit, {args.refit_steps} steps each, the symmetry held "
                f"fixed at the spectrum's leading {L - 1} or {L} directions read with "
                f"S' = {refits[0]['refits']['sym_samples']} (orthonormal, at the true "
                f"generators' median σ), or at the true generators (the fit continued); ELBO "
                f"differences against the {L - 1}-direction refit in nats ± standard error "
                f"({args.num_repeats} paired evaluations on the training pairs; positive: "
                f"evidence for the {_nth(L)} direction). \"par\": the smallest parallelness of "
                f"the leading {L} to the true span.", "",
                f"| key | par | −ELBO/N at {L - 1} | −ELBO/N at {L} | ELBO {L} − {L - 1} | "
                f"−ELBO/N true | ELBO true − {L - 1} | diverged |",
                "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in refits:
            f = r["refits"]
            par = "–" if f["leading_min_par"] is None else f"{f['leading_min_par']:.3f}"
            out.append(f"| {r['key']} | {par} | {f['without']['neg_elbo_per_n']:.4f} | "
                       f"{f['leading']['neg_elbo_per_n']:.4f} | "
                       f"{f['leading']['delta']:+.0f} ± {f['leading']['se']:.0f} | "
                       f"{f['true']['neg_elbo_per_n']:.4f} | "
                       f"{f['true']['delta']:+.0f} ± {f['true']['se']:.0f} | "
                       f"{', '.join(s['refit'] for s in f['stopped']) or '–'} |")
        won = [sum(r["refits"][n]["delta"] > 2 * r["refits"][n]["se"] for r in refits)
               for n in ("leading", "true")]
        out += ["", f"Evidence for the {_nth(L)} direction (difference above twice its standard "
                f"error): leading {L} on {won[0]}/{len(refits)} keys, true generators on "
                f"{won[1]}/{len(refits)}."]
    return "\n".join(out) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--system", default="two-body-2d")
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--trajectories", type=int, default=50)
    p.add_argument("--points", type=int, default=10, help="steps per trajectory")
    p.add_argument("--dt", type=float, default=None,
                   help="the data's time step (default: the system's split's)")
    p.add_argument("--integrator", default=INTEGRATOR, choices=sorted(INTEGRATORS))
    p.add_argument("--substeps", type=int, default=SUBSTEPS)
    p.add_argument("--hidden", nargs="+", type=int, default=[64, 64])
    p.add_argument("--noise-variance", type=float, default=NOISE_VARIANCE,
                   help="the likelihood's σ² (the package's by default)")
    p.add_argument("--sym-samples", type=int, default=16, help="S of the fit")
    p.add_argument("--spectrum-sym-samples", nargs="+", type=int, default=[16, 64, 256],
                   help="the numbers of symmetry samples S' the spectrum is read with")
    p.add_argument("--steps", type=int, default=16000)
    p.add_argument("--refit-read", type=int, default=None, metavar="S'",
                   help="also refit at the spectrum's leading L-1 and L directions read with "
                        "this many symmetry samples, and compare their ELBO")
    p.add_argument("--refit-steps", type=int, default=4000)
    p.add_argument("--num-repeats", type=int, default=DEFAULT_REPEATS,
                   help="paired Monte-Carlo evaluations of each ELBO difference")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--energy-fraction", type=float, default=None, help=argparse.SUPPRESS)
    add_topic_arguments(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rebuild:
        return rebuild(p, args, table, "spectrum_samples.py", argv)
    known = {**systems.PAPER, **systems.SUITE}
    if args.system not in known or systems.DIMENSIONS[args.system] == 0:
        p.error(f"--system: expected a system with a quadratic symmetry, got {args.system!r}")
    for name in ("spectrum_sym_samples", "hidden"):
        if any(v < 1 for v in getattr(args, name)):
            p.error(f"--{name.replace('_', '-')}: expected positive ints")
    if args.refit_read is not None and args.refit_read < 1:
        p.error(f"--refit-read: expected a positive int, got {args.refit_read}")
    if args.num_repeats < 2:
        p.error(f"--num-repeats: expected an int >= 2, got {args.num_repeats}")
    for name in ("sym_samples", "steps", "substeps", "batch_size", "trajectories", "points",
                 "refit_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive int")
    if args.dt is not None and not args.dt > 0:
        p.error(f"--dt: expected a positive number, got {args.dt}")
    enable_compilation_cache()
    start = time.perf_counter()
    rows = []
    for k in args.keys:
        rows.append(run_one(k, args))
        print(f"key {k}: " + ", ".join(f"S'={g['sym_samples']} reads {g['read']}"
                                       for g in rows[-1]["reads"]), flush=True)
    return publish(args, table(rows, args), rows, start)


if __name__ == "__main__":
    sys.exit(main())
