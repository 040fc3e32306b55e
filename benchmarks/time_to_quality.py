"""Wall time for Noether's razor to reach a fixed quality: the paper's plain estimator against
cheaper ones.

    python benchmarks/time_to_quality.py          # both data sets -> records/time-to-quality/
    python benchmarks/time_to_quality.py --dataset oscillator --candidate rk4-1
    python benchmarks/time_to_quality.py --seeds 0,1,2 --candidate rk2-1-lattice   # medians
    python benchmarks/time_to_quality.py --compilation-cache /tmp/xla   # compiling left out
    python benchmarks/time_to_quality.py --seeds 0,1,2 --fit-keys 0,1,2   # 9 runs per estimator
    python benchmarks/time_to_quality.py ARGS --from-record time-to-quality  # table, no fitting
    python benchmarks/time_to_quality.py ARGS --topic T   # also the record records/T/

The plain estimator is the paper's (App. C): i.i.d. symmetry samples and 20 explicit Euler
sub-steps. It trains for ``budget`` steps; its final test MSE (one Δt step, posterior-mean
weights, as in Table 1) and −ELBO/N (on all training pairs) times ``(1 + slack)`` are the
targets. Every candidate (other integrators, sub-steps, symmetry sampling, S) then trains on the
same data from the same seed, with the same learning-rate schedule (cosine over ``budget``
steps; the ``-short`` candidates over their own fraction of it, with the guide's initial
posterior standard deviation ``init_scale`` raised from 1e-3; the ``-budget`` candidates over
their own fraction, nothing else changed), until it reaches both targets;
the table gives the training wall time to get there (evaluation between chunks is not counted)
and the speed-up over plain. (Candidates once had twice the budget, their cosine stretched over
it: on seeds 1 and 2 of the oscillator every candidate's loss then ran away in the longer
high-learning-rate phase, to −ELBO/N of 250–530, and none reached the targets.)
One seed's race is noisy: the step at which a fit first meets a target moves by hundreds of
steps with the last bits of its arithmetic, so ``--seeds`` repeats the race on other data.
The final quality of one fit is noisy too: on the same data, plain's final test MSE moves by
a factor of several between fit keys (``benchmarks/records/time-to-quality/``), so a target
set by one plain fit is one draw of that spread. ``--fit-keys`` runs every estimator from
several fit keys on each seed's data; the targets are then the median over those keys of
plain's final values (times ``1 + slack``), a run that never meets them counts as slower than
every run that does, and the table gives medians over all runs. The last column pairs the runs
(same seed, same fit key) in which plain and the candidate both met the targets: the median and
range of plain's time over the candidate's, and how many such pairs there were.
``--from-record TOPIC`` (with the arguments of the command that made ``records/TOPIC/``)
rebuilds the table from the runs stored in its ``metrics.json`` instead of running them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import numpy as np

from noether_ppl import systems
from noether_ppl._io import atomic_write_text
from noether_ppl.analysis.evaluate import elbo_terms, one_step_mse
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.inference import AutoMatrixNormal, FitResult, MatrixNormalELBO, fit
from noether_ppl.models import ModelSpec, NoetherRazor

DATASETS = {
    # The demo's data and model (App. C.1 data; CPU-scale network).
    "oscillator": dict(system="oscillator", train=(7, 4, 0.2), test=(100, 20, 0.2),
                       spec=dict(hidden=(64, 64), elu_alpha=2.0, n_conserved=1, sym_samples=32,
                                 measure="uniform"),
                       fit=dict(lr=3e-3, lr_conserved=1e-2, num_particles=1), budget=2000,
                       chunk=50, batch_size=None),
    # Three coupled oscillators (App. C.2 data at CPU scale: 40 trajectories × 10 pairs).
    "oscillators3": dict(system="oscillators3", train=(40, 10, 0.3), test=(50, 10, 0.3),
                         spec=dict(hidden=(64, 64), elu_alpha=1.0, n_conserved=12,
                                   sym_samples=16, measure="ball"),
                         fit=dict(lr=3e-3, lr_conserved=1e-2, num_particles=1), budget=1500,
                         chunk=50, batch_size=10),
}
PLAIN = dict(sampling="iid", integrator="euler", substeps=20)
CANDIDATES = {
    "plain": {},
    "euler-5": dict(substeps=5),
    "rk4-1": dict(integrator="rk4", substeps=1),
    "rk4-2": dict(integrator="rk4", substeps=2),
    "rk4-1-antithetic": dict(integrator="rk4", substeps=1, sampling="antithetic"),
    "rk4-1-lattice": dict(integrator="rk4", substeps=1, sampling="lattice"),
    "rk4-1-half-S": dict(integrator="rk4", substeps=1, sym_samples="half"),
    "rk4-1-lattice-half-S": dict(integrator="rk4", substeps=1, sampling="lattice",
                                 sym_samples="half"),
    "rk2-1": dict(integrator="rk2", substeps=1),
    "rk2-1-lattice": dict(integrator="rk2", substeps=1, sampling="lattice"),
    # Fewer symmetry samples on the lattice: a shifted lattice's error in the symmetrising
    # integral (Eq. 14) falls faster with S than i.i.d. samples' 1/√S, and the step's cost
    # grows with S.
    "rk2-1-lattice-half-S": dict(integrator="rk2", substeps=1, sampling="lattice",
                                 sym_samples="half"),
    "rk2-1-lattice-quarter-S": dict(integrator="rk2", substeps=1, sampling="lattice",
                                    sym_samples="quarter"),
    "rk3-1-lattice": dict(integrator="rk3", substeps=1, sampling="lattice"),
    # The guide's initial posterior std (fit's init_scale; default 1e-3) and the candidate's own
    # cosine schedule, a fraction of plain's budget: the posterior starts nearer the prior's
    # scale, so the KL needs fewer steps to fall.
    "plain-init0.03-short": dict(init_scale=0.03, budget_fraction=0.3),
    "rk4-1-lattice-init0.03-short": dict(integrator="rk4", substeps=1, sampling="lattice",
                                         init_scale=0.03, budget_fraction=0.3),
    "rk2-1-lattice-init0.03-short": dict(integrator="rk2", substeps=1, sampling="lattice",
                                         init_scale=0.03, budget_fraction=0.3),
    # The candidate's own cosine schedule over a fraction of plain's budget, nothing else
    # changed: does the recommended estimator need plain's number of steps?
    "rk2-1-lattice-half-budget": dict(integrator="rk2", substeps=1, sampling="lattice",
                                      budget_fraction=0.5),
    # The guide's log-diagonals (the posterior scales) at three times the learning rate (fit's
    # lr_logdiag; both data sets have lr = 3e-3), on plain's schedule and on half of it.
    "rk2-1-lattice-logdiag3": dict(integrator="rk2", substeps=1, sampling="lattice",
                                   lr_logdiag=9e-3),
    "rk2-1-lattice-logdiag3-half-budget": dict(integrator="rk2", substeps=1, sampling="lattice",
                                               lr_logdiag=9e-3, budget_fraction=0.5),
    # The guide's Cholesky off-diagonals at a tenth of the learning rate (fit's lr_offdiag):
    # the rate of the demo's refit (records/demo-sensitivity/).
    "plain-offdiag": dict(lr_offdiag=3e-4),
    "rk4-1-lattice-offdiag": dict(integrator="rk4", substeps=1, sampling="lattice",
                                  lr_offdiag=3e-4),
    "rk2-1-lattice-offdiag": dict(integrator="rk2", substeps=1, sampling="lattice",
                                  lr_offdiag=3e-4),
}
SYM_FRACTIONS = {"half": 2, "quarter": 4}
"""A candidate's ``sym_samples`` given as a fraction of the data set's S: the divisor."""
FIT_OVERRIDES = ("init_scale", "budget_fraction", "lr_offdiag", "lr_logdiag")
"""Candidate settings that go to the fit, not to the ModelSpec."""


def make_data(ds: dict, seed: int):
    system = (systems.HarmonicOscillator() if ds["system"] == "oscillator"
              else systems.CoupledOscillators(3))
    k_train, k_test = jax.random.split(jax.random.key(seed))
    n, t, dt = ds["train"]
    train = system.simulate(k_train, n_trajectories=n, n_steps=t, dt=dt)
    n, t, dt = ds["test"]
    test = system.simulate(k_test, n_trajectories=n, n_steps=t, dt=dt)
    return system, train, test


def run_candidate(ds: dict, name: str, train, test, *, seed: int, targets=None,
                  budget=None) -> dict:
    """Train, evaluating after every chunk (not timed); stop at the targets or the budget."""
    overrides = {**PLAIN, **CANDIDATES[name]}
    fit_overrides = {k: overrides.pop(k) for k in FIT_OVERRIDES if k in overrides}
    budget = budget or ds["budget"]
    if "budget_fraction" in fit_overrides:
        budget = max(1, round(budget * fit_overrides["budget_fraction"]))
    if overrides.get("sym_samples") in SYM_FRACTIONS:
        overrides["sym_samples"] = ds["spec"]["sym_samples"] // SYM_FRACTIONS[
            overrides["sym_samples"]]
    spec = ModelSpec(**{**ds["spec"], **overrides})
    model = NoetherRazor(spec, phase_dim=train.phase_dim)
    guide = AutoMatrixNormal(model, **{k: v for k, v in fit_overrides.items()
                                       if k == "init_scale"})
    elbo = MatrixNormalELBO(num_particles=ds["fit"]["num_particles"])
    eval_key = jax.random.key(seed + 1000)
    trace, clock = [], {"eval_s": 0.0, "start": time.perf_counter()}

    def evaluate(progress):
        t0 = time.perf_counter()
        train_s = t0 - clock["start"] - clock["eval_s"]  # everything but earlier evaluations
        result = FitResult(model, guide, elbo, progress.params, progress.losses, train.dt,
                           train.n_pairs, progress.step)
        point = {"step": progress.step, "train_s": train_s,
                 "test_mse": one_step_mse(result, test, key=eval_key),
                 "neg_elbo_per_n": elbo_terms(result, train, key=eval_key,
                                              num_repeats=4)["neg_elbo_per_n"]}
        trace.append(point)
        clock["eval_s"] += time.perf_counter() - t0
        return bool(targets) and evaluate_hit(point, targets)

    settings = dict(key=jax.random.key(seed), guide=guide, elbo=elbo, num_steps=budget,
                    batch_size=ds["batch_size"], lr=ds["fit"]["lr"],
                    lr_conserved=ds["fit"]["lr_conserved"],
                    lr_offdiag=fit_overrides.get("lr_offdiag"),
                    lr_logdiag=fit_overrides.get("lr_logdiag"), progress_bar=False,
                    chunk_size=ds["chunk"])
    if WARM["on"]:  # compile into the persistent cache, untimed: one chunk, then stop
        fit(model, train, **settings, callback=lambda progress: True)
        clock["start"] = time.perf_counter()
    fit(model, train, **settings, callback=evaluate)
    reached = trace[-1] if targets and evaluate_hit(trace[-1], targets) else None
    return {"candidate": name, "spec": spec.to_dict(),
            "fit": {"num_steps": budget, **fit_overrides}, "trace": trace, "reached": reached}


WARM = {"on": False}  # --compilation-cache: every timed fit loads its programs from the cache


def evaluate_hit(point: dict, targets: dict) -> bool:
    return (point["test_mse"] <= targets["test_mse"]
            and point["neg_elbo_per_n"] <= targets["neg_elbo_per_n"])


def race(ds: dict, candidates: list[str], seed: int, slack: float,
         fit_keys: list[int]) -> tuple[dict, dict]:
    """Plain, from every fit key, sets the targets on ``seed``'s data (the median of its final
    values, plus ``slack``); every candidate then races to them from the same fit keys.
    Returns the targets and, per estimator, the list of runs (one per fit key)."""
    _, train, test = make_data(ds, seed)
    plains = [run_candidate(ds, "plain", train, test, seed=k) for k in fit_keys]
    finals = {m: float(np.median([p["trace"][-1][m] for p in plains]))
              for m in ("test_mse", "neg_elbo_per_n")}
    targets = {"test_mse": finals["test_mse"] * (1.0 + slack),
               "neg_elbo_per_n": finals["neg_elbo_per_n"] + slack * abs(finals["neg_elbo_per_n"])}
    for p in plains:
        p["reached"] = next((t for t in p["trace"] if evaluate_hit(t, targets)), None)
    runs = {"plain": plains}
    for c in candidates:
        runs[c] = [run_candidate(ds, c, train, test, seed=k, targets=targets) for k in fit_keys]
        print(f"seed {seed}", c, [r["reached"] for r in runs[c]], flush=True)
    return targets, runs


def paired_speedups(plain: list[dict], candidate: list[dict]) -> list[float]:
    """Plain's training time to the targets over the candidate's, for each pair of runs at the
    same position (the same seed and fit key) in which both met them."""
    if len(plain) != len(candidate):
        raise ValueError(f"Expected as many candidate runs as plain runs, got {len(candidate)} "
                         f"and {len(plain)}.")
    return [p["reached"]["train_s"] / c["reached"]["train_s"]
            for p, c in zip(plain, candidate, strict=True) if p["reached"] and c["reached"]]


def dataset_lines(name: str, per_seed: dict, seeds: list[int], candidates: list[str], *,
                  over: str, slack: float) -> list[str]:
    """The section of one data set: each seed's targets, then one row per estimator."""
    ds = DATASETS[name]
    lines = [f"## {name}", ""]
    for seed, (targets, runs) in per_seed.items():
        hits = [p["reached"] for p in runs["plain"]]
        done = [h for h in hits if h]
        where = "; ".join("miss" if h is None else f"step {h['step']}, {h['train_s']:.1f} s"
                          for h in hits)
        lines.append(f"Seed {seed}: targets test MSE ≤ {targets['test_mse']:.3e}, −ELBO/N ≤ "
                     f"{targets['neg_elbo_per_n']:.2f} ({over} after {ds['budget']} steps, "
                     f"+{slack:.0%}); plain reaches them in {len(done)}/{len(hits)} "
                     f"runs ({where}).")
    lines += ["", "| estimator | reached | steps (median) | train time (s, median) | "
              "speed-up (median) | speed-up per seed | speed-up per paired run, both reached: "
              "median (range), pairs |", "|---|---:|---:|---:|---:|---|---|"]
    plain_per_seed = {k: median_time(per_seed[k][1]["plain"]) for k in seeds}
    runs_of = {c: [r for k in seeds for r in per_seed[k][1][c]] for c in ["plain", *candidates]}
    plain_runs = runs_of["plain"]
    plain_all = median_time(plain_runs)
    for c in ["plain", *candidates]:
        runs = runs_of[c]
        done = [r for r in runs if r["reached"]]
        ups = [plain_per_seed[k] / median_time(per_seed[k][1][c]) for k in seeds]
        each = ", ".join(f"{u:.1f}×" if np.isfinite(u) and u > 0 else
                         "plain missed" if u == np.inf else "–" for u in ups)
        pairs = paired_speedups(plain_runs, runs)
        paired = "–" if c == "plain" else ("none" if not pairs else
                                           f"{np.median(pairs):.1f}× ({min(pairs):.1f}–"
                                           f"{max(pairs):.1f}×), {len(pairs)}/{len(runs)}")
        label = "plain (iid, Euler × 20)" if c == "plain" else c
        secs = median_time(runs)
        if not np.isfinite(secs):  # the median is a miss
            lines.append(f"| {label} | {len(done)}/{len(runs)} | – | – | – | {each} | "
                         f"{paired} |")
            continue
        steps = float(np.median([r["reached"]["step"] if r["reached"] else np.inf
                                 for r in runs]))
        lines.append(f"| {label} | {len(done)}/{len(runs)} | {steps:.0f} | {secs:.1f} | "
                     f"{plain_all / secs:.1f}× | {each} | {paired} |")
    lines += ["", "Each run's training time per step (its last evaluation's time over its steps; "
              "evaluations not counted) and what a run that missed missed at its end:", "",
              "| estimator | ms per step: median [min, max] | step-time ratio, plain / estimator "
              "| missed: test MSE only / −ELBO/N only / both |", "|---|---|---:|---|"]
    plain_step = float(np.median(step_times(plain_runs)))
    for c in ["plain", *candidates]:
        per_step = step_times(runs_of[c])
        missed = miss_counts([(per_seed[k][0], r) for k in seeds for r in per_seed[k][1][c]])
        label = "plain (iid, Euler × 20)" if c == "plain" else c
        lines.append(f"| {label} | {np.median(per_step):.2f} [{min(per_step):.2f}, "
                     f"{max(per_step):.2f}] | {plain_step / np.median(per_step):.1f}× | "
                     f"{missed['test_mse']} / {missed['neg_elbo_per_n']} / {missed['both']} |")
    lines.append("")
    return lines


def step_times(runs: list[dict]) -> list[float]:
    """Milliseconds of training per step of each run, at its last evaluation."""
    return [1e3 * r["trace"][-1]["train_s"] / r["trace"][-1]["step"] for r in runs]


def miss_counts(runs: list[tuple[dict, dict]]) -> dict:
    """Of the ``(targets, run)`` pairs whose run missed the targets, how many ended above the
    test-MSE target only, the −ELBO/N target only, or both (a non-finite value counts as
    above its target)."""
    counts = {"test_mse": 0, "neg_elbo_per_n": 0, "both": 0}
    for targets, run in runs:
        if run["reached"]:
            continue
        last = run["trace"][-1]
        over = [m for m in ("test_mse", "neg_elbo_per_n") if not last[m] <= targets[m]]
        counts["both" if len(over) == 2 else over[0]] += 1
    return counts


def _from_record(topic: str, args, datasets, candidates, seeds, argv) -> int:
    """Rebuild ``records/<topic>/``'s table from its stored runs (no fitting)."""
    from record import read_record, rewrite_record  # benchmarks/record.py, beside this script

    _, metrics, meta = read_record(topic)
    over = ("plain's final values" if args.fit_keys is None else
            f"the median of plain's final values over fit keys {args.fit_keys}")
    lines = ["# Time to quality", "", f"Command: `{meta['command']}`", ""]
    for name in datasets:
        per_seed = {k: (metrics[name][str(k)]["targets"], metrics[name][str(k)]["runs"])
                    for k in seeds}
        lines += dataset_lines(name, per_seed, seeds, candidates, over=over, slack=args.slack)
    rebuilt = " ".join(["python", "benchmarks/time_to_quality.py",
                        *(sys.argv[1:] if argv is None else argv)])
    rewrite_record(topic, "\n".join(lines) + "\n", how=rebuilt)
    print("\n".join(lines))
    return 0


def median_time(runs: list[dict]) -> float:
    """Median training time to the targets over ``runs``; a miss counts as infinitely slow."""
    return float(np.median([r["reached"]["train_s"] if r["reached"] else np.inf
                            for r in runs]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), action="append")
    parser.add_argument("--candidate", choices=sorted(CANDIDATES), action="append")
    parser.add_argument("--slack", type=float, default=0.1,
                        help="targets are plain's final values times (1 + slack)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds (data and fit key); with several, the "
                        "table gives the median over seeds and every seed's speed-up")
    parser.add_argument("--fit-keys", default=None,
                        help="comma-separated fit keys run on every seed's data (default: "
                        "the seed itself); the targets are plain's median over them")
    parser.add_argument("--markdown", default=None,
                        help="write the table to this path and each data set's runs beside it "
                        "(default without --topic: records/time-to-quality/table.md)")
    parser.add_argument("--topic", default=None,
                        help="also write the record benchmarks/records/TOPIC/ (table, runs, "
                        "command, commit, versions, wall time)")
    parser.add_argument("--compilation-cache", metavar="DIR",
                        help="keep compiled programs in this persistent cache and compile "
                        "every fit once, untimed, before its timed run: the times then leave "
                        "out compiling (as in a second run of the same settings)")
    parser.add_argument("--from-record", metavar="TOPIC", default=None,
                        help="rebuild records/TOPIC/'s table from its stored runs (give the "
                        "arguments of the command that made it); no fitting")
    args = parser.parse_args(argv)
    if args.compilation_cache:
        if enable_compilation_cache(args.compilation_cache) is None:
            parser.error(f"cannot use {args.compilation_cache!r} as the compilation cache")
        WARM["on"] = True
    datasets = args.dataset or list(DATASETS)
    candidates = [c for c in (args.candidate or list(CANDIDATES)) if c != "plain"]
    seeds = [int(k) for k in args.seeds.split(",")]
    fit_keys = None if args.fit_keys is None else [int(k) for k in args.fit_keys.split(",")]
    if args.from_record:
        return _from_record(args.from_record, args, datasets, candidates, seeds, argv)
    lines = ["# Time to quality", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}"
             f", backend {jax.default_backend()}", "",
             f"Command: `python benchmarks/time_to_quality.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`", ""]
    started, metrics = time.perf_counter(), {}
    markdown = args.markdown or (None if args.topic else os.path.join(
        os.path.dirname(__file__), "records", "time-to-quality", "table.md"))
    for name in datasets:
        ds = DATASETS[name]
        per_seed = {seed: race(ds, candidates, seed, args.slack,
                               [seed] if fit_keys is None else fit_keys) for seed in seeds}
        over = ("plain's final values" if fit_keys is None else
                f"the median of plain's final values over fit keys {args.fit_keys}")
        lines += dataset_lines(name, per_seed, seeds, candidates, over=over, slack=args.slack)
        metrics[name] = {str(k): {"targets": t, "runs": r} for k, (t, r) in per_seed.items()}
        if markdown:
            atomic_write_text(markdown + f".{name}.json",
                              json.dumps(metrics[name], indent=1, default=float))
    if markdown:
        atomic_write_text(markdown, "\n".join(lines) + "\n")
        print(f"wrote {markdown}")
    if args.topic:
        from record import write_record  # benchmarks/record.py, beside this script

        print("wrote", write_record(args.topic, table="\n".join(lines),
                                    metrics=json.loads(json.dumps(metrics, default=float)),
                                    command=sys.argv if argv is None else
                                    ["benchmarks/time_to_quality.py", *argv],
                                    wall_s=time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
