"""Time one jitted SVI step (loss and all gradients) of Noether's razor.

    python benchmarks/step_time.py             # every configuration -> records/step-time/
    python benchmarks/step_time.py --config sho-paper --json out.json
    python benchmarks/step_time.py --config sho-paper --set sym_samples=50 --set particles=4
    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python benchmarks/step_time.py --config sho-demo-learned --set devices=2

For each configuration (in a fresh process, so memory and compile caches are its own):
compile time (``lower().compile()``), median / min / max wall time of the following steps,
MLP evaluations per second (one evaluation = F_θ and ∇F_θ at one transformed point), the work
of the step in FLOP and the rate it achieves, and the process's peak resident memory (and the
device's peak memory on a GPU). Paper configurations use the paper's S, M (weight samples),
Euler sub-steps, width, depth and batch exactly (DESIGN.md table; App. C), so they can be
compared with other implementations at identical settings.

FLOP count (the same for any implementation of the step, so rates compare): per evaluation,
the matmuls of the forward pass (``2 Σ_l in_l out_l``) and of the input gradient ∇ₓF (the
same again), and reverse mode through both (each of those matmuls has two transposed
products: twice their ``4 Σ``): ``12 Σ_l in_l out_l`` per evaluation (:func:`flops_per_eval`;
``tests/test_step_time.py`` checks it against XLA's own count of the plain autodiff step).
Element-wise work and recomputation an implementation chooses to do (ours recomputes each
tile's forward pass in the backward pass) are not counted. Records made before 2026-12-03
counted ``6 Σ``, half of this: their GFLOP/s are half of what this count gives.

``--topic`` (the default, ``step-time``, with every configuration) writes the record
``benchmarks/records/<topic>/`` (table, metrics, command, commit, versions, wall time);
``--markdown PATH`` writes only the table, to PATH (``gpu_record.sh``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    # App. C.1 and the official implementation's measured configuration: K = 1, S = 200
    # uniform (scale π), M = 20, 20 Euler sub-steps, 2→200→200→1 ELU α = 2, 7 × 4 pairs.
    "sho-paper": dict(phase_dim=2, hidden=(200, 200), elu_alpha=2.0, n_conserved=1,
                      sym_samples=200, measure="uniform", particles=20, substeps=20,
                      trajectories=7, pairs=4, dt=0.2, repeats=3),
    "sho-paper-vanilla": dict(phase_dim=2, hidden=(200, 200), elu_alpha=2.0, n_conserved=0,
                              sym_samples=1, measure="uniform", particles=20, substeps=20,
                              trajectories=7, pairs=4, dt=0.2, repeats=5),
    # The official implementation's measured 3-oscillator configuration: K = 30, S = 100 in
    # the ball, M = 5, 20 Euler, 2 hidden layers of 200 ELU, 10 trajectories × 49 pairs.
    "oscillators3-official": dict(phase_dim=6, hidden=(200, 200), elu_alpha=1.0,
                                  n_conserved=30, sym_samples=100, measure="ball",
                                  particles=5, substeps=20, trajectories=10, pairs=49,
                                  dt=0.3, repeats=2),
    # DESIGN.md / App. C.2: 3 hidden × 200, S = 100 (ball), M = 2, batches of 20 × 49, K = 30.
    "oscillators3-paper": dict(phase_dim=6, hidden=(200, 200, 200), elu_alpha=1.0,
                               n_conserved=30, sym_samples=100, measure="ball", particles=2,
                               substeps=20, trajectories=20, pairs=49, dt=0.3, repeats=2),
    # DESIGN.md / App. C.3: 4 hidden × 250, S = 100 (ball), M = 2, 20 × 49, K = 10, 3 bodies
    # in 2-D (M = 12).
    "nbody2d3-paper": dict(phase_dim=12, hidden=(250, 250, 250, 250), elu_alpha=1.0,
                           n_conserved=10, sym_samples=100, measure="ball", particles=2,
                           substeps=20, trajectories=20, pairs=49, dt=0.3, repeats=2),
    # The demo's CPU configurations (noether_ppl/demo.py).
    "sho-demo-vanilla": dict(phase_dim=2, hidden=(64, 64), elu_alpha=2.0, n_conserved=0,
                             sym_samples=1, measure="uniform", particles=1, substeps=20,
                             trajectories=7, pairs=4, dt=0.2, repeats=20),
    "sho-demo-learned": dict(phase_dim=2, hidden=(64, 64), elu_alpha=2.0, n_conserved=1,
                             sym_samples=32, measure="uniform", particles=1, substeps=20,
                             trajectories=7, pairs=4, dt=0.2, repeats=20),
    # The coupled-oscillator model of benchmarks/time_to_quality.py with its fastest estimator
    # (RK2, one sub-step, lattice samples): small enough that the group elements' cost shows.
    "oscillators3-cpu-rk2": dict(phase_dim=6, hidden=(64, 64), elu_alpha=1.0, n_conserved=12,
                                 sym_samples=16, measure="ball", particles=1, substeps=1,
                                 integrator="rk2", sampling="lattice", trajectories=10,
                                 pairs=10, dt=0.3, repeats=200),
    # The same model with the paper's estimator (i.i.d. samples, 20 Euler sub-steps): the two
    # estimators of time_to_quality.py's "oscillators3" race, step for step.
    "oscillators3-cpu-plain": dict(phase_dim=6, hidden=(64, 64), elu_alpha=1.0,
                                   n_conserved=12, sym_samples=16, measure="ball", particles=1,
                                   substeps=20, trajectories=10, pairs=10, dt=0.3, repeats=40),
    # The demo's learned model with the recommended estimator: time_to_quality.py's
    # "oscillator" race against "sho-demo-learned" (its plain estimator).
    "sho-demo-learned-rk2": dict(phase_dim=2, hidden=(64, 64), elu_alpha=2.0, n_conserved=1,
                                 sym_samples=32, measure="uniform", particles=1, substeps=1,
                                 integrator="rk2", sampling="lattice", trajectories=7, pairs=4,
                                 dt=0.2, repeats=200),
}
ESTIMATOR_PAIRS = {"sho-demo-learned-rk2": "sho-demo-learned",
                   "oscillators3-cpu-rk2": "oscillators3-cpu-plain"}
"""Recommended estimator → the paper's, on the same model and batch (``time_to_quality.py``'s
two races). Their step-time ratio bounds the time-to-quality speed-up of a race in which the
recommended estimator needs at least as many steps as the paper's; the ratio of their MLP
evaluations is what the step-time ratio would be if nothing but the MLP cost time."""
DEFAULTS = dict(sampling="iid", integrator="euler", pair_tile="auto", devices=1,
                dtype="float32")
OFFICIAL = {"sho-paper": 41.3, "sho-paper-vanilla": 0.24, "oscillators3-official": 105.0}
"""Median step seconds of the official research implementation on this machine kind (issue
text; JAX + diffrax, float32), for the configurations measured there."""


def settings_for(name: str, overrides: list[str]) -> dict:
    cfg = {**DEFAULTS, **CONFIGS[name]}
    for item in overrides:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        if k not in cfg:
            raise SystemExit(f"--set: unknown setting {k!r}; known: {sorted(cfg)}")
        cfg[k] = _parse_value(v)
    return cfg


def _parse_value(text: str):
    if text in ("None", "none"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.startswith(("(", "[")):
        return tuple(int(v) for v in text.strip("()[]").split(",") if v.strip())
    return text


def flops_per_eval(sizes) -> int:
    """Matmul FLOP of one evaluation of the step for an MLP with layer sizes ``sizes`` (input,
    hidden..., 1): F and ∇ₓF (``4 Σ_l in_l out_l``) and reverse mode through both (``8 Σ``)."""
    return 12 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def step_flops(cfg: dict) -> float:
    """The step's work (see the module docstring): :func:`flops_per_eval` per evaluation."""
    return flops_per_eval([cfg["phase_dim"], *cfg["hidden"], 1]) * evaluations(cfg)


def evaluations(cfg: dict) -> int:
    from noether_ppl.models.spec import FIELD_EVALUATIONS

    sym = cfg["sym_samples"] if cfg["n_conserved"] > 0 else 1
    per_pair = cfg["substeps"] * FIELD_EVALUATIONS[cfg["integrator"]]
    return sym * per_pair * cfg["trajectories"] * cfg["pairs"] * cfg["particles"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def compiled_step(cfg: dict):
    """The configuration's jitted SVI step, compiled: ``(step, state, x_t, x_next, compile_s)``
    with ``step(state, x_t, x_next) -> (state, loss)`` (the state is donated)."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer import SVI

    from noether_ppl.inference import AutoMatrixNormal, MatrixNormalELBO, make_optimizer
    from noether_ppl.models import ModelSpec, NoetherRazor
    from noether_ppl.pointwise import pairs_mesh

    if cfg["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    spec = ModelSpec(hidden=tuple(cfg["hidden"]), elu_alpha=cfg["elu_alpha"],
                     n_conserved=cfg["n_conserved"], sym_samples=cfg["sym_samples"],
                     measure=cfg["measure"], measure_scale=math.pi, sampling=cfg["sampling"],
                     integrator=cfg["integrator"], substeps=cfg["substeps"],
                     pair_tile=cfg["pair_tile"], dtype=cfg["dtype"])
    model = NoetherRazor(spec, phase_dim=cfg["phase_dim"])
    guide = AutoMatrixNormal(model)
    mesh = pairs_mesh(jax.local_devices()[: cfg["devices"]]) if cfg["devices"] > 1 else None
    n_pairs = cfg["trajectories"] * cfg["pairs"]
    svi = SVI(model, guide, make_optimizer(1000, 1e-3),
              MatrixNormalELBO(num_particles=cfg["particles"]), dt=cfg["dt"],
              num_data=n_pairs, mesh=mesh)
    key = jax.random.key(0)
    x_t = jax.random.normal(key, (n_pairs, cfg["phase_dim"]), jnp.dtype(cfg["dtype"]))
    x_next = x_t + 0.01
    state = svi.init(key, x_t, x_next)
    t0 = time.perf_counter()
    update = jax.jit(svi.update, donate_argnums=0).lower(state, x_t, x_next).compile()
    return update, state, x_t, x_next, time.perf_counter() - t0


def run(name: str, cfg: dict) -> dict:
    import jax
    import jax.numpy as jnp

    update, state, x_t, x_next, compile_s = compiled_step(cfg)
    state, loss = update(state, x_t, x_next)  # first call: allocation, caches
    jax.block_until_ready(loss)
    times = []
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        state, loss = update(state, x_t, x_next)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    result = {
        "config": name,
        "settings": cfg,
        "median_step_s": median,
        "min_step_s": min(times),
        "max_step_s": max(times),
        "compile_s": compile_s,
        "mlp_evals_per_step": evaluations(cfg),
        "mlp_evals_per_s": evaluations(cfg) / median,
        "step_gflop": step_flops(cfg) / 1e9,
        "gflop_per_s": step_flops(cfg) / 1e9 / median,
        "peak_rss_mib": peak_rss_mib(),
        "loss_finite": bool(jnp.isfinite(loss)),
        "device": str(jax.devices()[0]),
    }
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        result["device_peak_mib"] = stats["peak_bytes_in_use"] / 2**20
    if name in OFFICIAL:
        result["official_step_s"] = OFFICIAL[name]
        result["speedup_vs_official"] = OFFICIAL[name] / median
    return result


def matmul_throughput() -> dict:
    """float32 matmul GFLOP/s of this machine: NumPy's BLAS on 2048² and 4096² products, and
    XLA on a batched product of the step's shape (20 × (5600 × 200) @ (200 × 200)), on random
    operands, repeated for at least a second (at least 5 times)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    out = {}
    for n in (2048, 4096):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        a @ a
        t0 = time.perf_counter()
        reps = 3
        for _ in range(reps):
            a @ a
        out[f"numpy_{n}"] = 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9
    # random operands (constant ones can run faster than real data on a GPU), and repeats
    # until a second has passed, so that a fast device's launch latency does not dominate
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (20, 5600, 200), jnp.float32)
    w = jax.random.normal(kw, (20, 200, 200), jnp.float32)
    f = jax.jit(lambda x, w: x @ w)
    f(x, w).block_until_ready()
    reps, t0 = 0, time.perf_counter()
    while reps < 5 or time.perf_counter() - t0 < 1.0:
        f(x, w).block_until_ready()
        reps += 1
    out["xla_batched"] = 2 * 20 * 5600 * 200 * 200 * reps / (time.perf_counter() - t0) / 1e9
    return out


def machine() -> str:
    import jax

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, jax {jax.__version__}, backend "
            f"{jax.default_backend()} ({jax.devices()[0].device_kind})")


def table(results: list[dict], mm: dict, command: str) -> str:
    """The record's table, as markdown."""
    # a GPU reports its allocator's peak (``memory_stats``); the CPU backend reports none
    on_device = all("device_peak_mib" in r for r in results)
    lines = [
        "# Step-time benchmarks",
        "",
        f"Machine: {machine()}",
        "",
        f"Command: `{command}`",
        "",
        "float32 matmul throughput of this machine: NumPy "
        + ", ".join(f"{k.split('_')[1]}²: {v:.0f} GFLOP/s" for k, v in mm.items()
                    if k.startswith("numpy"))
        + f"; XLA batched 20×(5600×200)@(200×200): {mm['xla_batched']:.0f} GFLOP/s.",
        "",
        "| config | median step (s) | min–max (s) | compile (s) | GFLOP/step | GFLOP/s | "
        "of XLA matmul | MLP evals/s | peak RSS (MiB) |"
        + (" device peak (MiB) |" if on_device else "") + " official (s) | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if on_device else "")
        + "---:|---:|",
    ]
    for r in results:
        official = r.get("official_step_s")
        lines.append(
            f"| {r['config']} | {r['median_step_s']:.3f} | {r['min_step_s']:.3f}–"
            f"{r['max_step_s']:.3f} | {r['compile_s']:.1f} | {r['step_gflop']:.1f} | "
            f"{r['gflop_per_s']:.1f} | {r['gflop_per_s'] / mm['xla_batched']:.0%} | "
            f"{r['mlp_evals_per_s']:.3g} | {r['peak_rss_mib']:.0f} | "
            + (f"{r['device_peak_mib']:.0f} | " if on_device else "")
            + (f"{official:g} | {r['speedup_vs_official']:.2f}× |" if official else "– | – |"))
    lines += estimator_pairs(results)
    lines += ["", "Settings of each configuration: `CONFIGS` in `benchmarks/step_time.py`; "
              "FLOP count (12 Σ in·out per evaluation): its docstring. \"of XLA matmul\": "
              "GFLOP/s over the XLA batched matmul's, measured in the same run. \"official\": "
              "the official implementation's step on a 2-core machine of this kind (issue "
              "text, `OFFICIAL`), not measured in this run."]
    return "\n".join(lines) + "\n"


def estimator_pairs(results: list[dict]) -> list[str]:
    """Lines under the table for each pair of :data:`ESTIMATOR_PAIRS` that ran: both medians,
    their ratio and the ratio of MLP evaluations per step."""
    by_name = {r["config"]: r for r in results}
    pairs = [(by_name[c], by_name[p]) for c, p in ESTIMATOR_PAIRS.items()
             if c in by_name and p in by_name]
    if not pairs:
        return []
    lines = ["", "The recommended estimator (RK2, one step, lattice samples) against the "
             "paper's (Euler × 20, i.i.d.) on the same model and batch:", "",
             "| recommended | paper's | step (s) | paper's step (s) | step ratio | "
             "MLP evaluations ratio |", "|---|---|---:|---:|---:|---:|"]
    for c, p in pairs:
        lines.append(f"| {c['config']} | {p['config']} | {c['median_step_s']:.4f} | "
                     f"{p['median_step_s']:.4f} | "
                     f"{p['median_step_s'] / c['median_step_s']:.2f}× | "
                     f"{p['mlp_evals_per_step'] / c['mlp_evals_per_step']:.0f}× |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append",
                        help="configuration(s) to run in this process (default: all, each in a "
                        "fresh process, the results written as the record --topic)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the results to this JSON file (a list when "
                        "several configurations ran)")
    parser.add_argument("--only", action="append", choices=sorted(CONFIGS),
                        help="without --config: run just these configurations, each in a fresh "
                        "process (default: all)")
    parser.add_argument("--topic", default="step-time",
                        help="write the record benchmarks/records/TOPIC/ (default: step-time)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write only the table, to PATH, instead of a record")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    if args.config:
        results = [run(name, settings_for(name, args.set)) for name in args.config]
        for r in results:
            print(json.dumps({k: v for k, v in r.items() if k != "settings"}), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results[0] if len(results) == 1 else results, f, indent=2)
        return 0
    results, failed = [], []
    for name in args.only or CONFIGS:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            out = tmp.name
        cmd = [sys.executable, __file__, "--config", name, "--json", out,
               *sum((["--set", s] for s in args.set), [])]
        print("running", name, flush=True)
        if subprocess.run(cmd).returncode != 0:
            print(f"{name} failed; left out of the table", flush=True)
            failed.append(name)
            continue
        with open(out) as f:
            results.append(json.load(f))
        os.remove(out)
    mm = matmul_throughput()
    command = " ".join(["python benchmarks/step_time.py", *(argv if argv is not None
                                                            else sys.argv[1:])])
    text = table(results, mm, command)
    print(text)
    if args.markdown:
        with open(args.markdown + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.markdown + ".tmp", args.markdown)
        written = args.markdown
    else:
        from record import write_record

        written = write_record(args.topic, table=text,
                               metrics={"matmul_gflop_per_s": mm, "configs": results},
                               command=command, wall_s=time.perf_counter() - t_start)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"wrote {written}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
