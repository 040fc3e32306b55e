"""Compile once, fit many: what several fits of one model cost in a fresh process.

    python benchmarks/compile_reuse.py       # the installed package -> records/compile-reuse/
    python benchmarks/compile_reuse.py --code /tmp/before --code .   # two trees, alternating

Each round runs, in a fresh process with an empty persistent compilation cache (the one the
``noether-ppl`` command turns on, :mod:`noether_ppl.compilation_cache`), ``--fits`` fits of
the same model (the learned model of ``sho-cpu``: MLP 64×64, S = 64, 20 Euler sub-steps, K = 1)
one after the other, fit ``i`` from fit key ``i`` on its own data (7 oscillator trajectories of
4 pairs simulated from data key ``100 + i``): what restarts, several keys or a benchmark over
keys do. Per fit: wall seconds, XLA's backend compile seconds, the compile seconds the
persistent cache saved (JAX's ``/jax/compilation_cache/compile_time_saved_sec``), and the
steady-state seconds per step (median over the chunks after the first of ``--chunk`` steps;
the first chunk holds the compile). ``--code DIR`` (repeatable) runs the rounds with that code
tree first on ``PYTHONPATH``, alternating between the trees, so a before/after comparison is
made on one machine in one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import record

CHILD_FLAG = "--child"


def _child(fits: int, steps: int, chunk: int) -> dict:
    """One round in this process: ``fits`` fits; returns the per-fit measurements."""
    import collections

    import jax

    from noether_ppl.compilation_cache import enable_compilation_cache

    enable_compilation_cache(tempfile.mkdtemp(prefix="compile-reuse-"))
    from noether_ppl.experiments import load_experiment
    from noether_ppl.inference import fit
    from noether_ppl.models import NoetherRazor

    events = collections.Counter()
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **_: events.__setitem__(name.rsplit("/", 1)[-1],
                                                   events[name.rsplit("/", 1)[-1]] + secs))
    exp = load_experiment("sho-cpu")
    system = exp.make_system()
    train = exp.data["train"]
    model = NoetherRazor(exp.model, phase_dim=system.phase_dim)
    rows = []
    for i in range(fits):
        data = system.simulate(jax.random.key(100 + i), **train.simulate_kwargs())
        events.clear()
        marks = []
        start = time.perf_counter()
        fit(model, data, key=jax.random.key(i), num_steps=steps, chunk_size=chunk,
            lr=exp.inference.lr, lr_conserved=exp.inference.lr_conserved,
            runaway_factor=None, progress_bar=False,
            callback=lambda p, marks=marks: marks.append(time.perf_counter()))
        wall = time.perf_counter() - start
        per_step = [(b - a) / chunk for a, b in zip(marks[:-1], marks[1:], strict=True)]
        rows.append({"fit": i, "wall_s": wall,
                     "compile_s": events["backend_compile_duration"],
                     "cache_saved_s": events["compile_time_saved_sec"],
                     "step_s": statistics.median(per_step) if per_step else None})
    return {"rows": rows, "jax": jax.__version__}


def _round(code: str | None, args) -> dict:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(code), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, CHILD_FLAG, str(args.fits), str(args.steps), str(args.chunk)],
        env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", action="append", help="a code tree to put first on "
                        "PYTHONPATH (repeatable; default: the installed package)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--topic", default="compile-reuse")
    parser.add_argument("--notes", default=None)
    args = parser.parse_args(argv)
    if args.steps % args.chunk or args.steps < 2 * args.chunk:
        parser.error("--steps must be a multiple of --chunk, at least two chunks")
    codes = args.code or [None]
    started = time.perf_counter()
    results = []
    for r in range(args.rounds):
        order = codes if r % 2 == 0 else codes[::-1]
        for code in order:
            out = _round(code, args)
            for row in out["rows"]:
                results.append({"code": code or "installed", "round": r, **row})
            print(f"round {r} {code or 'installed'}: "
                  + ", ".join(f"fit {x['fit']} {x['wall_s']:.1f} s" for x in out["rows"]),
                  flush=True)
    lines = [f"{args.fits} fits of `sho-cpu`'s learned model in one fresh process each round "
             f"({args.steps} steps in chunks of {args.chunk}; fit i: fit key i, data key "
             f"100 + i), empty persistent compilation cache at the start of each round; "
             f"{args.rounds} rounds, code trees alternating.", "",
             "| code | fit | wall (s), per round | XLA compile (s), per round | saved by the "
             "cache (s), per round | step (ms): median of the rounds |",
             "|---|---:|---|---|---|---:|"]
    for code in codes:
        name = code or "installed"
        for i in range(args.fits):
            rs = [x for x in results if x["code"] == name and x["fit"] == i]
            steps = [x["step_s"] for x in rs if x["step_s"] is not None]
            lines.append(
                f"| `{name}` | {i} | " + ", ".join(f"{x['wall_s']:.1f}" for x in rs) + " | "
                + ", ".join(f"{x['compile_s']:.1f}" for x in rs) + " | "
                + ", ".join(f"{x['cache_saved_s']:.1f}" for x in rs) + " | "
                + (f"{1e3 * statistics.median(steps):.2f}" if steps else "–") + " |")
    table = "\n".join(lines)
    print(table)
    record.write_record(args.topic, table=table, metrics={"rows": results, "args": vars(args)},
                        command=[os.path.relpath(__file__), *(argv or sys.argv[1:])],
                        wall_s=time.perf_counter() - started, notes=args.notes)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        print(json.dumps(_child(*map(int, sys.argv[2:5]))))
        sys.exit(0)
    sys.exit(main())
