"""Hénon–Heiles: which model does the evidence prefer, the plain HNN or the U(2)-symmetric one?

    python benchmarks/henon_heiles_evidence.py

The discovery benchmark's razor reads U(2)'s four directions on Hénon–Heiles, whose true
dimension is 0 (``records/discovery/``). This script asks whether that is the razor's
criterion speaking or an unconverged comparison. On the discovery benchmark's training data of
each key (``discovery.train_data``: 50 trajectories x 10 steps, data key ``1000 + key``) it fits
two models with the discovery benchmark's settings (MLP 64 x 64, S = 16, ball measure of scale
π, Adam 3e-3, mini-batches of 10 trajectories, fit key ``key``):

- the plain HNN (K = 0), and
- the model symmetrised over U(2), the isotropic oscillator's algebra, with its generators fixed
  (``systems.CoupledOscillators(n=2).generators()``, as an oracle would fix them),

for each number of steps and each likelihood variance σ² (the benchmark's 1e-3, and 1e-4), and
reports each fit's NLL/N, KL/N and −ELBO/N on the training pairs (``analysis.elbo_terms``, with
its standard error) and its one-step test MSE (``"test"`` split, data key ``2000 + key``),
evaluation key 7 as in ``discovery.py``. The ELBO bounds the evidence of each model, so the
model with the higher ELBO is the one the razor's criterion prefers; the test MSE only scores.

``--energy-fraction f`` starts the training and test trajectories on the energy shell
``H = f/6`` inside the bound well instead (``henon_heiles_energy.shell_states``, seeds
``1000 + key`` and ``2000 + key``; the suite's Δt and numbers of trajectories and steps), where
the cubic term breaks U(2) the most (``records/henon-heiles-energy/``).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np
from discovery import train_data
from henon_heiles_energy import SADDLE_ENERGY, shell_states
from record import publish

from noether_ppl import analysis, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.inference import fit

MODELS = ("hnn", "u2")
"""The plain HNN and the U(2)-symmetric model (module docstring)."""


def model(name: str, noise_variance: float) -> models.NoetherRazor:
    """The model ``name`` of :data:`MODELS` with the discovery benchmark's settings."""
    generators = None if name == "hnn" else systems.CoupledOscillators(n=2).generators()
    spec = models.ModelSpec(hidden=(64, 64), n_conserved=0 if generators is None else 4,
                            sym_samples=16, measure="ball",
                            measure_scale=float(np.pi), noise_variance=noise_variance)
    return models.NoetherRazor(spec, phase_dim=4, generators=generators)


def data(key: int, args):
    """``(train, test)`` trajectories of ``key``: the suite's splits as in ``discovery.py``, or
    on the energy shell of ``args.energy_fraction`` (module docstring)."""
    system = systems.SUITE["henon-heiles"]()
    if args.energy_fraction is None:
        return (train_data(system, key, trajectories=args.trajectories, points=args.points),
                system.simulate_split(jax.random.key(2000 + key), "test"))
    E = args.energy_fraction * SADDLE_ENERGY
    dt = system.split_settings("train")["dt"]
    test_split = system.split_settings("test")
    train = system.integrate(shell_states(np.random.default_rng(1000 + key), args.trajectories,
                                          E), args.points, dt)
    test = system.integrate(shell_states(np.random.default_rng(2000 + key),
                                         test_split["n_trajectories"], E),
                            test_split["n_steps"], test_split["dt"])
    return train, test


def run_one(key: int, noise_variance: float, steps: int, name: str, args) -> dict:
    train, test = data(key, args)
    t = time.perf_counter()
    result = fit(model(name, noise_variance), train, key=jax.random.key(key), num_steps=steps,
                 lr=args.lr, batch_size=args.batch_size, progress_bar=False)
    k_eval = jax.random.key(7)
    terms = analysis.elbo_terms(result, train, key=k_eval)
    return {"key": key, "noise_variance": noise_variance, "steps": steps, "model": name,
            "nll_per_n": terms["nll_per_n"], "kl_per_n": terms["kl_per_n"],
            "neg_elbo_per_n": terms["neg_elbo_per_n"],
            "neg_elbo_se_per_n": terms["neg_elbo_se_per_n"],
            "test_mse": analysis.one_step_mse(result, test, key=k_eval),
            "wall_s": time.perf_counter() - t}


def _spread(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]"


def table(rows: list[dict], args) -> str:
    where = ("the discovery benchmark's data" if args.energy_fraction is None else
             f"data on the energy shell H = {args.energy_fraction:g} x 1/6")
    out = [f"Hénon–Heiles (true dimension 0), {where} and the discovery benchmark's settings "
           f"({args.trajectories} trajectories x {args.points} steps, MLP 64 x 64, S = 16, "
           f"ball measure of scale π, lr {args.lr}, batch {args.batch_size}): the plain HNN "
           f"against the model symmetrised over U(2) (generators fixed), keys {args.keys}. "
           f"Cells: median [min, max] over the keys.", "",
           "| σ² | steps | −ELBO/N HNN | −ELBO/N U(2) | U(2) ELBO higher | KL/N HNN | KL/N U(2) | "
           "NLL/N HNN | NLL/N U(2) | test MSE HNN | test MSE U(2) | HNN test MSE lower |",
           "|---:|---:|---|---|---:|---|---|---|---|---|---|---:|"]

    def get(nv, steps, name, field):
        return [r[field] for k in args.keys for r in rows
                if (r["key"], r["noise_variance"], r["steps"], r["model"]) == (k, nv, steps, name)]

    for nv in args.noise_variances:
        for steps in args.steps:
            e_h, e_u = get(nv, steps, "hnn", "neg_elbo_per_n"), get(nv, steps, "u2",
                                                                      "neg_elbo_per_n")
            m_h, m_u = get(nv, steps, "hnn", "test_mse"), get(nv, steps, "u2", "test_mse")
            if not e_h or len(e_h) != len(e_u):
                continue
            n = len(e_h)
            out.append(
                f"| {nv:g} | {steps} | {_spread(e_h)} | {_spread(e_u)} | "
                f"{sum(u < h for h, u in zip(e_h, e_u, strict=True))}/{n} | "
                f"{_spread(get(nv, steps, 'hnn', 'kl_per_n'))} | "
                f"{_spread(get(nv, steps, 'u2', 'kl_per_n'))} | "
                f"{_spread(get(nv, steps, 'hnn', 'nll_per_n'))} | "
                f"{_spread(get(nv, steps, 'u2', 'nll_per_n'))} | {_spread(m_h)} | "
                f"{_spread(m_u)} | {sum(h < u for h, u in zip(m_h, m_u, strict=True))}/{n} |")
    out += ["", "Per key (−ELBO/N ± its standard error; test MSE):", "",
            "| σ² | steps | key | HNN | U(2) |", "|---:|---:|---:|---|---|"]
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
                out.append(f"| {nv:g} | {steps} | {k} | {cells[0]} | {cells[1]} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", nargs="+", type=int, default=[2000, 16000])
    p.add_argument("--noise-variances", nargs="+", type=float, default=[1e-3, 1e-4])
    p.add_argument("--trajectories", type=int, default=50)
    p.add_argument("--points", type=int, default=10, help="steps per trajectory")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--energy-fraction", type=float, default=None,
                   help="train and test on the shell H = f/6 (default: the suite's data)")
    p.add_argument("--topic", default="henon-heiles-evidence")
    args = p.parse_args(argv)
    for name in ("steps", "noise_variances"):
        bad = [v for v in getattr(args, name) if not v > 0]
        if bad:
            p.error(f"--{name.replace('_', '-')} must be positive, got {bad}")
    if args.energy_fraction is not None and not 0.0 < args.energy_fraction < 1.0:
        p.error(f"--energy-fraction must lie in (0, 1) (bound orbits), got "
                f"{args.energy_fraction}")
    enable_compilation_cache()
    start = time.perf_counter()
    rows = [run_one(k, nv, steps, name, args) for nv in args.noise_variances
            for steps in args.steps for k in args.keys for name in MODELS]
    return publish(args, table(rows, args), rows, start)


if __name__ == "__main__":
    sys.exit(main())
