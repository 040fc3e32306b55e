"""The plain HNN against a model with a fixed symmetry: which does the evidence prefer?

    python benchmarks/symmetry_evidence.py --system two-body-2d --topic two-body-evidence
    python benchmarks/henon_heiles_evidence.py     # = --system henon-heiles (U(2))

When the discovery benchmark's razor reads a wrong dimension (``records/discovery/``), is that
its criterion speaking, or a comparison of unconverged fits? On the discovery benchmark's
training data of each key (``discovery.train_data``: 50 trajectories x 10 steps, data key
``1000 + key``) this script fits two models with the discovery benchmark's settings (MLP
64 x 64 unless ``--hidden``, S = 16, ball measure of scale π, Adam 3e-3, mini-batches of 10
trajectories, fit key ``key``):

- the plain HNN (K = 0), and
- the model symmetrised over a fixed symmetry, as an oracle would fix it: for Hénon–Heiles
  (true dimension 0) U(2), the isotropic oscillator's algebra that its quadratic part conserves
  (``systems.CoupledOscillators(n=2).generators()``); for every other system its true
  generators (``system.generators()``),

for each number of steps and each likelihood variance σ² (a fixed value, or ``empirical``:
App. D.2, σ² the posterior-mean MSE on the training pairs), and reports each fit's NLL/N, KL/N
and −ELBO/N on the training pairs (``analysis.elbo_terms``, with its standard error) and its
one-step test MSE (``"test"`` split, data key ``2000 + key``), evaluation key 7 as in
``discovery.py``. The ELBO bounds the evidence of each model, so the model with the higher ELBO
is the one the razor's criterion prefers; the test MSE only scores.

``--sym-samples S`` trains the symmetric model with S Monte-Carlo symmetry samples (16, the
benchmark's, by default). ``--eval-sym-samples S1 S2 …`` also evaluates each symmetric fit's
NLL/N, KL/N and −ELBO/N with S1, S2, … samples (``FitResult.with_sym_samples``: the same parameters,
Ĥ of Eq. 14 estimated with more samples): how much of the symmetric model's NLL is the
variance of its Monte-Carlo Ĥ rather than the model (the estimate at S → ∞ is the ELBO of the
symmetrised model itself).

``--dt Δt`` draws the training and test pairs at that time step instead of the system's
splits' (0.3 for the bodies), from the same initial states: with Δt small enough, the model's
integrator with the true H reproduces the pairs (``exact_h_nll``), so that no H must absorb
the integrator's error.

``--energy-fraction f`` (Hénon–Heiles only) starts the training and test trajectories on the
energy shell ``H = f/6`` inside the bound well instead (``henon_heiles_energy.shell_states``,
seeds ``1000 + key`` and ``2000 + key``; the suite's Δt and numbers of trajectories and steps),
where the cubic term breaks U(2) the most (``records/henon-heiles-energy/``).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from discovery import (
    INTEGRATOR,
    SUBSTEPS,
    likelihood_words,
    test_data,
    train_data,
)
from henon_heiles_energy import SADDLE_ENERGY, shell_states
from record import add_rebuild_argument, publish, read_record, rewrite_record

from noether_ppl import analysis, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.inference import fit
from noether_ppl.integrators import INTEGRATORS, get_integrator

MODELS = ("hnn", "symmetric")
"""The plain HNN and the model with the fixed symmetry (module docstring)."""

HENON_HEILES = ("henon-heiles", "henon-heiles-escape")


def symmetry(system_name: str) -> tuple[str, np.ndarray]:
    """``(label, generators)`` of the fixed symmetry for ``system_name`` (module docstring)."""
    if system_name in HENON_HEILES:
        return "U(2)", systems.CoupledOscillators(n=2).generators()
    G = systems.SUITE.get(system_name, systems.PAPER.get(system_name))().generators()
    if G.shape[0] == 0:
        raise ValueError(f"{system_name!r} conserves no quadratic quantity: no symmetry to fix.")
    return "true symmetry", G


def model(name: str, noise_variance: float | str, system_name: str = "henon-heiles",
          measure_scale: float = float(np.pi), sym_samples: int = 16,
          hidden: tuple[int, ...] = (64, 64),
          prior_variance: float | str = "optimal", integrator: str = INTEGRATOR,
          substeps: int = SUBSTEPS, mc_likelihood: str = "plug-in",
          mc_groups: int = 2) -> models.NoetherRazor:
    """The model ``name`` of :data:`MODELS` with the discovery benchmark's settings (the
    symmetry times' ball of radius ``measure_scale``, π there; S = ``sym_samples``, 16
    there; the MLP's hidden widths ``hidden``, 64 x 64 there; the weights' prior variance
    ``prior_variance``, ``"optimal"`` there: App. D.3–D.4's closed form per layer; the
    likelihood mean's ``integrator`` and ``substeps``, the package's there; the likelihood's
    Monte-Carlo estimate ``mc_likelihood`` with ``mc_groups``, ``ModelSpec``'s, the plug-in
    there)."""
    _, G = symmetry(system_name)
    generators = None if name == "hnn" else G
    spec = models.ModelSpec(hidden=tuple(hidden),
                            n_conserved=0 if generators is None else G.shape[0],
                            sym_samples=sym_samples, measure="ball",
                            measure_scale=measure_scale, noise_variance=noise_variance,
                            prior_variance=prior_variance, integrator=integrator,
                            substeps=substeps, mc_likelihood=mc_likelihood,
                            mc_groups=mc_groups)
    return models.NoetherRazor(spec, phase_dim=G.shape[-1] - 1, generators=generators)


def data(key: int, args):
    """``(train, test)`` trajectories of ``key``: the suite's splits as in ``discovery.py``, or
    on the energy shell of ``args.energy_fraction`` (module docstring)."""
    system = {**systems.PAPER, **systems.SUITE}[args.system]()
    if args.energy_fraction is None:
        return (train_data(system, key, trajectories=args.trajectories, points=args.points,
                           dt=args.dt),
                test_data(system, key, dt=args.dt))
    E = args.energy_fraction * SADDLE_ENERGY
    dt = system.split_settings("train")["dt"]
    test_split = system.split_settings("test")
    train = system.integrate(shell_states(np.random.default_rng(1000 + key), args.trajectories,
                                          E), args.points, dt)
    test = system.integrate(shell_states(np.random.default_rng(2000 + key),
                                         test_split["n_trajectories"], E),
                            test_split["n_steps"], test_split["dt"])
    return train, test


def run_one(key: int, noise_variance: float | str, steps: int, name: str, args) -> dict:
    train, test = data(key, args)
    t = time.perf_counter()
    result = fit(model(name, noise_variance, args.system, args.measure_scale,
                       args.sym_samples, tuple(args.hidden), args.prior_variance,
                       args.integrator, args.substeps,
                       getattr(args, "mc_likelihood", "plug-in"),
                       getattr(args, "mc_groups", 2)), train,
                 key=jax.random.key(key),
                 num_steps=steps, lr=args.lr, batch_size=args.batch_size, progress_bar=False)
    k_eval = jax.random.key(7)
    terms = analysis.elbo_terms(result, train, key=k_eval)
    row = {"key": key, "noise_variance": noise_variance, "steps": steps, "model": name,
           "nll_per_n": terms["nll_per_n"], "kl_per_n": terms["kl_per_n"],
           "neg_elbo_per_n": terms["neg_elbo_per_n"],
           "neg_elbo_se_per_n": terms["neg_elbo_se_per_n"],
           "test_mse": analysis.one_step_mse(result, test, key=k_eval),
           "wall_s": time.perf_counter() - t}
    if name == "symmetric" and args.eval_sym_samples:
        row["eval_sym_samples"] = {
            str(S): analysis.elbo_terms(result.with_sym_samples(S), train, key=k_eval)
            for S in args.eval_sym_samples}
    return row


def no_motion_mse(test) -> float:
    """The one-step test MSE of predicting no motion, ``x_{t+Δt} = x_t`` (the zero vector
    field; what ``one_step_mse`` gives a fit whose Ĥ is flat): the scale against which a fit's
    test MSE shows whether it learned any dynamics."""
    x_t, x_next = test.pairs()
    return float(np.mean((np.asarray(x_next, np.float64) - np.asarray(x_t, np.float64)) ** 2))


def exact_h_nll(system_name: str, train, noise_variance: float, integrator: str = INTEGRATOR,
                substeps: int = SUBSTEPS) -> float:
    """NLL/N of the training pairs under the likelihood of Sec. 4.1 with the true H in place of
    Ĥ: ``x_{t+Δt} ~ N(step(x_t; J∇H), σ² I)``, ``step`` ``substeps`` steps of
    ``integrator`` (:func:`model`'s likelihood mean). No fitted Ĥ needs to do worse; the
    likelihood's own floor, an exact prediction, is ``(M/2) log 2πσ²``. Far above that floor
    the integrator's error over Δt, not the noise, dominates the pairs, and a fitted Ĥ that
    matches them is not H."""
    system = {**systems.PAPER, **systems.SUITE}[system_name]()
    x, y = train.pairs()
    pred = get_integrator(integrator)(system.vector_field, jnp.asarray(x), train.dt, substeps)
    return pairs_nll(y, pred, noise_variance)


def likelihood_floor(phase_dim: int, noise_variance: float) -> float:
    """NLL/N of an exact prediction under ``N(mean, σ² I)`` in ``phase_dim`` dimensions:
    ``(M/2) log 2πσ²``."""
    return 0.5 * phase_dim * float(np.log(2 * np.pi * noise_variance))


def pairs_nll(x_next, mean, noise_variance: float) -> float:
    """NLL/N of the pairs' ends ``x_next (N, M)`` under ``N(mean, σ² I)`` (Sec. 4.1's
    likelihood with a given mean), in float64."""
    x_next, mean = np.asarray(x_next, np.float64), np.asarray(mean, np.float64)
    sse = np.sum((x_next - mean) ** 2, axis=-1)
    return float(np.mean(0.5 * sse / noise_variance)
                 + likelihood_floor(x_next.shape[-1], noise_variance))


def _spread(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]"


def _positive_or(word: str):
    """An argparse type: a positive float, or the keyword ``word`` (``--noise-variances``:
    ``empirical``, App. D.2, σ² the posterior-mean MSE on the training pairs;
    ``--prior-variance``: ``optimal``, App. D.3–D.4's closed form per layer)."""
    def parse(text: str) -> float | str:
        if text == word:
            return text
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise argparse.ArgumentTypeError(
                f"expected a positive number or {word!r}, got {text!r}")
        return value

    return parse


def _nv(v: float | str) -> str:
    return v if isinstance(v, str) else f"{v:g}"


def _scale(v: float) -> str:
    return "π" if v == float(np.pi) else f"{v:g}"


def table(rows: list[dict], args, no_motion: dict[int, float] | None = None,
          exact: dict[float, list[float]] | None = None) -> str:
    """The record's table; ``no_motion``: :func:`no_motion_mse` per key, as a line under it;
    ``exact``: per fixed σ², :func:`exact_h_nll` over the keys, as a line after that."""
    where = ("the discovery benchmark's data" if args.energy_fraction is None else
             f"data on the energy shell H = {args.energy_fraction:g} x 1/6")
    if getattr(args, "dt", None) is not None:  # (settings recorded before --dt: the split's)
        where += f" at Δt = {args.dt:g}"
    S, G = symmetry(args.system)
    true_dim = systems.DIMENSIONS[args.system]
    prior = ("" if args.prior_variance == "optimal" else
             f"prior variance {args.prior_variance:g} for every weight, ")
    # (settings recorded before --integrator / --substeps: the package's)
    method = (getattr(args, "integrator", INTEGRATOR), getattr(args, "substeps", SUBSTEPS))
    if method != (INTEGRATOR, SUBSTEPS):
        prior += f"likelihood mean {method[1]} x {method[0]}, "
    if words := likelihood_words(vars(args)):
        prior += f"{words}, "
    out = [f"{args.system} (true dimension {true_dim}), {where} and the discovery benchmark's "
           f"settings ({args.trajectories} trajectories x {args.points} steps, MLP "
           f"{' x '.join(map(str, args.hidden))}, {prior}"
           f"S = {args.sym_samples}, ball measure of scale {_scale(args.measure_scale)}, lr "
           f"{args.lr}, batch "
           f"{args.batch_size}): the plain "
           f"HNN against the model symmetrised over the {S} ({G.shape[0]} generators, fixed), "
           f"keys {args.keys}. Cells: median [min, max] over the keys.", "",
           f"| σ² | steps | −ELBO/N HNN | −ELBO/N {S} | {S} ELBO higher | KL/N HNN | KL/N {S} | "
           f"NLL/N HNN | NLL/N {S} | test MSE HNN | test MSE {S} | HNN test MSE lower |",
           "|---:|---:|---|---|---:|---|---|---|---|---|---|---:|"]

    def get(nv, steps, name, field):
        return [r[field] for k in args.keys for r in rows
                if (r["key"], r["noise_variance"], r["steps"], r["model"]) == (k, nv, steps, name)]

    for nv in args.noise_variances:
        for steps in args.steps:
            e_h = get(nv, steps, "hnn", "neg_elbo_per_n")
            e_u = get(nv, steps, "symmetric", "neg_elbo_per_n")
            m_h, m_u = get(nv, steps, "hnn", "test_mse"), get(nv, steps, "symmetric", "test_mse")
            if not e_h or len(e_h) != len(e_u):
                continue
            n = len(e_h)
            out.append(
                f"| {_nv(nv)} | {steps} | {_spread(e_h)} | {_spread(e_u)} | "
                f"{sum(u < h for h, u in zip(e_h, e_u, strict=True))}/{n} | "
                f"{_spread(get(nv, steps, 'hnn', 'kl_per_n'))} | "
                f"{_spread(get(nv, steps, 'symmetric', 'kl_per_n'))} | "
                f"{_spread(get(nv, steps, 'hnn', 'nll_per_n'))} | "
                f"{_spread(get(nv, steps, 'symmetric', 'nll_per_n'))} | {_spread(m_h)} | "
                f"{_spread(m_u)} | {sum(h < u for h, u in zip(m_h, m_u, strict=True))}/{n} |")
    out += ["", "Per key (−ELBO/N ± its standard error; test MSE):", "",
            f"| σ² | steps | key | HNN | {S} |", "|---:|---:|---:|---|---|"]
    for nv in args.noise_variances:
        for steps in args.steps:
            for k in args.keys:
                cells = []
                for name in MODELS:
                    r = [r for r in rows if (r["key"], r["noise_variance"], r["steps"],
                                             r["model"]) == (k, nv, steps, name)]
                    cells.append("–" if not r else
                                 f"{r[0]['neg_elbo_per_n']:.2f} ± "
                                 f"{r[0]['neg_elbo_se_per_n']:.2f}; {r[0]['test_mse']:.2e}")
                out.append(f"| {_nv(nv)} | {steps} | {k} | {cells[0]} | {cells[1]} |")
    if no_motion:
        still = ", ".join(f"{no_motion[k]:.3g}" for k in args.keys)
        out += ["", f"Predicting no motion (x_{{t+Δt}} = x_t) gives test MSE {still} on keys "
                f"{args.keys}: a test MSE at that level means the fit learned no dynamics."]
    for nv, values in (exact or {}).items():
        out += ["", f"The true H in place of Ĥ, through the model's integrator ({method[0]}"
                f" x {method[1]}), gives NLL/N {_spread(values)} on the training pairs at "
                f"σ² = {_nv(nv)} (median [min, max] over the keys); an exact prediction gives "
                f"{likelihood_floor(G.shape[-1] - 1, nv):.3g}."]
    if args.eval_sym_samples:
        out += ["", f"The {S} fits (trained with S = {args.sym_samples}) evaluated with S "
                "Monte-Carlo symmetry samples, same parameters and evaluation key (median "
                "[min, max] over the keys; the HNN does not depend on S):", "",
                f"| σ² | steps | S | NLL/N {S} | KL/N {S} | −ELBO/N {S} | −ELBO/N HNN | "
                f"{S} ELBO higher |", "|---:|---:|---:|---|---|---|---|---:|"]
        for nv in args.noise_variances:
            for steps in args.steps:
                e_h = get(nv, steps, "hnn", "neg_elbo_per_n")
                evals = get(nv, steps, "symmetric", "eval_sym_samples")
                if not e_h or len(e_h) != len(evals):
                    continue
                for S_eval in args.eval_sym_samples:
                    t = [e[str(S_eval)] for e in evals]
                    e_u = [x["neg_elbo_per_n"] for x in t]
                    out.append(
                        f"| {_nv(nv)} | {steps} | {S_eval} | "
                        f"{_spread([x['nll_per_n'] for x in t])} | "
                        f"{_spread([x['kl_per_n'] for x in t])} | {_spread(e_u)} | "
                        f"{_spread(e_h)} | "
                        f"{sum(u < h for h, u in zip(e_h, e_u, strict=True))}/{len(e_h)} |")
    return "\n".join(out) + "\n"


def parser() -> argparse.ArgumentParser:
    """The command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", required=True,
                   help="a name of systems.PAPER or systems.SUITE with a symmetry to fix")
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", nargs="+", type=int, default=[2000, 16000])
    p.add_argument("--noise-variances", nargs="+", type=_positive_or("empirical"),
                   default=[1e-3, 1e-4],
                   help="σ² of the likelihood: positive numbers and/or 'empirical' (App. D.2)")
    p.add_argument("--trajectories", type=int, default=50)
    p.add_argument("--points", type=int, default=10, help="steps per trajectory")
    p.add_argument("--dt", type=float, default=None,
                   help="the time step of the training and test pairs (default: the system's "
                        "splits', 0.3 for the bodies)")
    p.add_argument("--measure-scale", type=float, default=float(np.pi),
                   help="radius of the ball of symmetry times (default π, the benchmark's)")
    p.add_argument("--hidden", nargs="+", type=int, default=[64, 64],
                   help="the MLP's hidden widths (default 64 64, the benchmark's)")
    p.add_argument("--prior-variance", type=_positive_or("optimal"), default="optimal",
                   help="the weights' prior variance: 'optimal' (App. D.3-D.4, the default) or "
                        "a positive number for every weight")
    p.add_argument("--integrator", default=INTEGRATOR, choices=sorted(INTEGRATORS),
                   help=f"the likelihood mean's integrator (default {INTEGRATOR!r}, the package's)")
    p.add_argument("--substeps", type=int, default=SUBSTEPS,
                   help=f"its steps per Δt (default {SUBSTEPS}, the package's)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--sym-samples", type=int, default=16,
                   help="S of the symmetric model's training (default 16, the benchmark's)")
    p.add_argument("--eval-sym-samples", nargs="+", type=int, default=[],
                   help="also evaluate each symmetric fit with these S (module docstring)")
    p.add_argument("--mc-likelihood", default="plug-in", choices=models.MC_LIKELIHOODS,
                   help="the likelihood's Monte-Carlo estimate of both models' fits and ELBOs "
                        "(ModelSpec.mc_likelihood; default the paper's plug-in)")
    p.add_argument("--mc-groups", type=int, default=2,
                   help="its independent groups of symmetry samples (ModelSpec.mc_groups)")
    p.add_argument("--energy-fraction", type=float, default=None,
                   help="Hénon–Heiles only: train and test on the shell H = f/6 (default: the "
                        "suite's data)")
    p.add_argument("--topic", required=True)
    add_rebuild_argument(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rebuild:  # the record's own settings; those it predates take their defaults
        _, stored, _ = read_record(args.topic)
        defaults = vars(p.parse_args(["--system", args.system, "--topic", args.topic]))
        args = argparse.Namespace(**{**defaults, **stored["settings"], "rebuild": True})
        rows = stored["rows"]
    if args.sym_samples < 1:
        p.error(f"--sym-samples must be positive, got {args.sym_samples}")
    if not args.measure_scale > 0:
        p.error(f"--measure-scale must be positive, got {args.measure_scale}")
    if args.substeps < 1:
        p.error(f"--substeps must be positive, got {args.substeps}")
    for name in ("steps", "eval_sym_samples", "hidden"):
        bad = [v for v in getattr(args, name) if not v > 0]
        if bad:
            p.error(f"--{name.replace('_', '-')} must be positive, got {bad}")
    known = {**systems.PAPER, **systems.SUITE}
    if args.system not in known:
        p.error(f"unknown --system {args.system!r}; known: {sorted(known)}")
    if args.system not in HENON_HEILES and systems.DIMENSIONS[args.system] == 0:
        p.error(f"--system {args.system!r} conserves no quadratic quantity: no symmetry to fix")
    if args.dt is not None and not args.dt > 0:
        p.error(f"--dt must be positive, got {args.dt}")
    if args.dt is not None and args.energy_fraction is not None:
        p.error("--dt is for the suite's data, not --energy-fraction's")
    if args.energy_fraction is not None and args.system != "henon-heiles":
        p.error("--energy-fraction is for --system henon-heiles")
    if args.energy_fraction is not None and not 0.0 < args.energy_fraction < 1.0:
        p.error(f"--energy-fraction must lie in (0, 1) (bound orbits), got "
                f"{args.energy_fraction}")
    splits = {k: data(k, args) for k in args.keys}
    no_motion = {k: no_motion_mse(splits[k][1]) for k in args.keys}
    exact = {nv: [exact_h_nll(args.system, splits[k][0], nv, args.integrator, args.substeps)
                  for k in args.keys]
             for nv in args.noise_variances if not isinstance(nv, str)}
    if args.rebuild:
        text = table(rows, args, no_motion, exact)
        rewrite_record(args.topic, text, how=f"python symmetry_evidence.py "
                       f"{' '.join(argv if argv is not None else sys.argv[1:])}")
        print(text)
        return 0
    enable_compilation_cache()
    start = time.perf_counter()
    rows = [run_one(k, nv, steps, name, args) for nv in args.noise_variances
            for steps in args.steps for k in args.keys for name in MODELS]
    return publish(args, table(rows, args, no_motion, exact), rows, start)


if __name__ == "__main__":
    sys.exit(main())
