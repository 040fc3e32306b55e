"""Wall time for Noether's razor to reach a fixed quality: the paper's plain estimator against
cheaper ones.

    python benchmarks/time_to_quality.py                      # both data sets -> time_to_quality.md
    python benchmarks/time_to_quality.py --dataset oscillator --candidate rk4-1

The plain estimator is the paper's (App. C): i.i.d. symmetry samples and 20 explicit Euler
sub-steps. It trains for ``budget`` steps; its final test MSE (one Δt step, posterior-mean
weights, as in Table 1) and −ELBO/N (on all training pairs) times ``(1 + slack)`` are the
targets. Every candidate (other integrators, sub-steps, symmetry sampling, S) then trains on the
same data from the same seed until it reaches both targets; the table gives the training wall
time to get there (evaluation between chunks is not counted) and the speed-up over plain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax

from noether_ppl import systems
from noether_ppl.analysis.evaluate import elbo_terms, one_step_mse
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
}


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
    if overrides.get("sym_samples") == "half":
        overrides["sym_samples"] = ds["spec"]["sym_samples"] // 2
    spec = ModelSpec(**{**ds["spec"], **overrides})
    model = NoetherRazor(spec, phase_dim=train.phase_dim)
    guide = AutoMatrixNormal(model)
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

    fit(model, train, key=jax.random.key(seed), guide=guide, elbo=elbo,
        num_steps=budget or ds["budget"], batch_size=ds["batch_size"], lr=ds["fit"]["lr"],
        lr_conserved=ds["fit"]["lr_conserved"], progress_bar=False, chunk_size=ds["chunk"],
        callback=evaluate)
    reached = trace[-1] if targets and evaluate_hit(trace[-1], targets) else None
    return {"candidate": name, "spec": spec.to_dict(), "trace": trace, "reached": reached}


def evaluate_hit(point: dict, targets: dict) -> bool:
    return (point["test_mse"] <= targets["test_mse"]
            and point["neg_elbo_per_n"] <= targets["neg_elbo_per_n"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), action="append")
    parser.add_argument("--candidate", choices=sorted(CANDIDATES), action="append")
    parser.add_argument("--slack", type=float, default=0.1,
                        help="targets are plain's final values times (1 + slack)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", default=os.path.join(os.path.dirname(__file__),
                                                           "time_to_quality.md"))
    args = parser.parse_args(argv)
    datasets = args.dataset or list(DATASETS)
    candidates = [c for c in (args.candidate or list(CANDIDATES)) if c != "plain"]
    lines = ["# Time to quality", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}"
             f", backend {jax.default_backend()}", "",
             f"Command: `python benchmarks/time_to_quality.py {' '.join(sys.argv[1:])}`", ""]
    for name in datasets:
        ds = DATASETS[name]
        _, train, test = make_data(ds, args.seed)
        plain = run_candidate(ds, "plain", train, test, seed=args.seed)
        final = plain["trace"][-1]
        slack = 1.0 + args.slack
        targets = {"test_mse": final["test_mse"] * slack,
                   "neg_elbo_per_n": final["neg_elbo_per_n"]
                   + args.slack * abs(final["neg_elbo_per_n"])}
        plain_hit = next(t for t in plain["trace"] if evaluate_hit(t, targets))
        rows = [("plain (iid, Euler × 20)", plain_hit, plain_hit["train_s"])]
        results = {"plain": plain}
        for c in candidates:
            r = run_candidate(ds, c, train, test, seed=args.seed, targets=targets,
                              budget=2 * ds["budget"])
            results[c] = r
            rows.append((c, r["reached"], r["reached"]["train_s"] if r["reached"] else None))
            print(name, c, r["reached"], flush=True)
        lines += [f"## {name}", "",
                  f"Targets: test MSE ≤ {targets['test_mse']:.3e}, −ELBO/N ≤ "
                  f"{targets['neg_elbo_per_n']:.2f} (plain's values after {ds['budget']} steps, "
                  f"+{args.slack:.0%}).", "",
                  "| estimator | steps | train time (s) | test MSE | −ELBO/N | speed-up |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, hit, secs in rows:
            if hit is None:
                lines.append(f"| {label} | not reached in {2 * ds['budget']} | – | – | – | – |")
            else:
                lines.append(f"| {label} | {hit['step']} | {secs:.1f} | {hit['test_mse']:.3e} | "
                             f"{hit['neg_elbo_per_n']:.2f} | {plain_hit['train_s'] / secs:.1f}× |")
        lines.append("")
        with open(args.markdown + f".{name}.json", "w") as f:
            json.dump(results, f, indent=1, default=float)
    tmp = args.markdown + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, args.markdown)
    print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
