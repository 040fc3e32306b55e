"""The ``noether-ppl`` command line: ``fit``, ``report``, ``discover``, ``simulate``, ``demo``.

Exit codes: 0 success, 1 a run failed (training diverged; an operating-system error while a
run was under way, e.g. a full disk: the run stays resumable), 2 bad input (a bad argument,
setting, file or path; a folder that holds another run or is being written by another process),
130 interrupted (resume with ``fit --resume``). Every error is one line on stderr naming what
was wrong; ``--debug`` shows the traceback.
Compiled programs are kept in JAX's persistent compilation cache
(:mod:`noether_ppl.compilation_cache`; ``NOETHER_PPL_CACHE_DIR=off`` turns it off).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time

from ._io import (
    RUN_FAILURE_ERRNOS,
    RunIOError,
    check_folder_path,
    check_writable_folder,
    describe_os_error,
)
from .compilation_cache import enable_compilation_cache

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``noether-ppl fit: error: ... (see --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


MAX_INT = 2**31 - 1  # counts become int32 indices in JAX
MAX_SEED = 2**32 - 1  # what jax.random.key keeps of a seed without x64


def _int_in(minimum: int, maximum: int, expected: str):
    """An argparse ``type``: an integer in [``minimum``, ``maximum``], else
    ``expected ..., got ...`` (checked before the value reaches NumPy or JAX)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _int_in(1, MAX_INT, f"a positive integer <= {MAX_INT}")
_nonnegative_int = _int_in(0, MAX_INT, f"an integer >= 0 and <= {MAX_INT}")
_seed = _int_in(0, MAX_SEED, f"a seed in [0, {MAX_SEED}]")


def _float_where(ok, expected: str):
    """An argparse ``type``: a float with ``ok(value)``, else ``expected ..., got ...``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_float = _float_where(lambda v: v > 0, "a positive finite number")
_unit_float = _float_where(lambda v: 0 < v < 1, "a number in (0, 1)")


# ----------------------------------------------------------------------------- demo
def _cmd_demo(args) -> int:
    from .demo import DemoSettings, run_demo

    settings = DemoSettings(seed=args.seed)
    if args.steps is not None:
        settings = dataclasses.replace(settings, num_steps=args.steps)
    if args.restarts is not None:
        settings = dataclasses.replace(settings, restarts=args.restarts)
    if args.no_refit:
        settings = dataclasses.replace(settings, refit=False)
    run_demo(args.out, settings, progress_bar=not args.no_progress)
    return 0


# ----------------------------------------------------------------------------- simulate
SYSTEM_NAMES = ("oscillator", "oscillators", "nbody")


def _make_system(name: str, n: int, dim: int):
    from . import systems

    if name == "oscillator":
        return systems.HarmonicOscillator()
    if name == "oscillators":
        return systems.CoupledOscillators(n)
    return systems.NBody(n_bodies=n, dim=dim)


def _cmd_simulate(args) -> int:
    import jax
    import numpy as np

    from .analysis.plots import plot_phase_space_hamiltonians

    if args.trajectories * (args.steps + 1) > MAX_INT:
        raise ValueError(f"--trajectories {args.trajectories} x (--steps {args.steps} + 1) = "
                         f"{args.trajectories * (args.steps + 1)} states, more than {MAX_INT}.")
    check_writable_folder(args.out, "output folder (--out)")
    system = _make_system(args.system, args.n, args.dim)
    data = system.simulate(jax.random.key(args.seed), n_trajectories=args.trajectories,
                           n_steps=args.steps, dt=args.dt)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "trajectories.npz")
    data.save(path)
    print(f"Simulated {data.n_trajectories} trajectories x {data.n_steps} steps of "
          f"{system.name} (phase_dim={system.phase_dim}, dt={data.dt}) -> {path}")
    if system.phase_dim == 2:
        fig = plot_phase_space_hamiltonians(
            {f"H of {system.name}": lambda x: np.asarray(system.hamiltonian(x))}, data=data,
            path=os.path.join(args.out, "trajectories.png"))
        print(f"Figure -> {os.path.join(args.out, 'trajectories.png')}")
        import matplotlib.pyplot as plt

        plt.close(fig)
    return 0


# ----------------------------------------------------------------------------- fit
def _variants(values):
    if not values:
        return None
    out = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _named_files(values, dt):
    from .experiments.inputs import load_user_data

    tests = {}
    for item in values or []:
        if "=" not in item:
            raise ValueError(f"--test {item!r}: expected NAME=FILE (e.g. held_out=held.npz).")
        name, path = item.split("=", 1)
        if not name or name == "train" or name in tests:
            raise ValueError(f"--test {item!r}: expected a new name other than 'train'.")
        tests[name] = load_user_data(path, dt)
    return tests


def _cmd_fit(args) -> int:
    from .experiments import load_experiment, run_experiment
    from .experiments.config import Experiment
    from .experiments.inputs import load_init_conserved, load_reference, load_user_data
    from .experiments.store import EXPERIMENT_FILE, read_experiment_record
    from .runs.files import is_run_folder

    if args.auto:  # one setting, as --set writes it: stored with the run and used on resume
        args.set = [*(args.set or []), "inference.select=true"]
    if args.resume is not None:
        out = args.resume
        if args.out is not None and os.path.abspath(args.out) != os.path.abspath(out):
            raise ValueError("--resume continues a run in its own folder; drop --out or give "
                             "the same folder.")
        if args.overwrite:
            raise ValueError("--overwrite starts a run afresh and --resume continues one; give "
                             "one of them.")
        stored_path = os.path.join(out, EXPERIMENT_FILE)
        if not os.path.exists(stored_path):
            hint = (" (it is the run folder of one model: resume the experiment folder above "
                    "it)" if is_run_folder(out) else "")
            raise FileNotFoundError(f"Nothing to resume in {out!r}: no {EXPERIMENT_FILE}{hint}.")
        if args.experiment is not None:
            experiment = load_experiment(args.experiment, args.set)
        else:
            stored = read_experiment_record(stored_path)
            experiment = Experiment.from_dict(stored["experiment"], source=stored_path,
                                              overrides=stored.get("overrides", ()))
            if args.set:
                experiment = experiment.replace(args.set)
    else:
        if args.experiment is None:
            raise ValueError("give an EXPERIMENT (a packaged name such as sho-cpu, or a TOML "
                             "file), or --resume DIR.")
        if args.out is None:
            raise ValueError("give the output folder with --out DIR.")
        out = args.out
        experiment = load_experiment(args.experiment, args.set)
    if args.dt is not None and args.data is None:
        raise ValueError("--dt is the time step of a --data .npy file; give --data too.")
    if args.test and args.data is None:
        raise ValueError("--test is for your own data; give --data too.")
    data = None if args.data is None else load_user_data(args.data, args.dt)
    tests = _named_files(args.test, args.dt)
    reference = names = None
    if args.reference is not None:
        reference, names = load_reference(args.reference)
    init = None if args.init_conserved is None else load_init_conserved(args.init_conserved)
    print(f"Experiment {experiment.name} ({experiment.source}"
          + (f"; --set {' '.join(experiment.overrides)}" if experiment.overrides else "")
          + f") -> {out}", flush=True)
    t0 = time.perf_counter()
    res = run_experiment(experiment, out, variants=_variants(args.variant), data=data,
                         tests=tests, reference=reference, reference_names=names,
                         data_source=None if args.data is None else os.path.abspath(args.data),
                         resume=args.resume is not None, overwrite=args.overwrite,
                         init_conserved=init, progress_bar=not args.no_progress,
                         analyze=not args.no_analysis)
    if res.table:
        print("")
        print(res.table)
    for run in res.runs.values():
        sym = (run.metrics or {}).get("symmetry")
        if sym:
            par = sym.get("parallelness")
            text = (f"{run.label}: learned symmetry of dimension {sym['dimension']} "
                    f"(of K = {len(sym['singular_values'])})")
            if par is not None:
                text += (f", reference dimension {sym['reference_dimension']}, parallelness "
                         f"{', '.join(f'{p:.3f}' for p in par)}")
            print(text)
    if not res.already_complete:
        print(f"\nWrote {out} ({time.perf_counter() - t0:.0f} s). Rebuild the table and figures "
              f"with: noether-ppl report {out}")
    return 0


# ----------------------------------------------------------------------------- report
def _cmd_report(args) -> int:
    from .runs.report import report

    if args.out is not None:
        check_folder_path(args.out, "figures folder (--out)")
    report(args.runs, figures=not args.no_figures, out=args.out,
           fmt="markdown" if args.markdown else "text")
    return 0


# ----------------------------------------------------------------------------- discover
def _cmd_discover(args) -> int:
    from .runs.discovery import DISCOVERY_FILE, discover_run
    from .runs.files import read_run_info
    from .runs.folder import open_run
    from .runs.report import find_runs, system_for

    folders = [f for path in args.runs for f in find_runs(path)]
    complete = []
    for folder in folders:
        info = read_run_info(folder)
        if info["status"] == "complete":
            complete.append(folder)
        else:
            print(f"note: {folder} is not complete (status {info['status']!r}, step "
                  f"{info.get('steps', 0)}); left out.", file=sys.stderr)
    if not complete:
        raise ValueError("No complete run to read the Hamiltonian of.")
    for folder in complete:  # every folder writable before anything is computed
        check_writable_folder(folder, "run folder")
        if not args.no_figures:
            check_folder_path(os.path.join(folder, "figures"), "figures folder")
    for i, folder in enumerate(complete):
        run = open_run(folder)
        found = discover_run(run, data=args.data, n_points=args.points,
                             dimension="gap" if args.dimension is None else args.dimension,
                             threshold=args.threshold, seed=args.seed, system=system_for(run),
                             figures=not args.no_figures)
        print(("\n" if i else "") + f"{folder} ({run.label}), {args.data} data:")
        print(found)
        print(f"Wrote {os.path.join(folder, DISCOVERY_FILE)}")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="noether-ppl",
        description="Learn Hamiltonian dynamics and the symmetries the data obeys "
        "(Noether's razor, in NumPyro).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, **kwargs):
        p = sub.add_parser(name, **kwargs)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
        return p

    p = add("fit", help="fit the variants of an experiment into a run folder",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            description="Fit the variants of an experiment into OUT/<variant>/ run folders "
            "with periodic\ncheckpoints, evaluate them and print the paper-layout table. "
            "EXPERIMENT is a packaged\nname (sho, oscillators3, nbody2d3 at paper scale; "
            "sho-cpu, oscillators3-cpu,\nnbody2d3-cpu at CPU scale; the suite's systems by "
            "their systems.SUITE names,\ne.g. central-quartic, at the discovery benchmark's "
            "settings) or the path of a TOML\nfile.",
            epilog="examples:\n"
            "  noether-ppl fit nbody2d3-cpu --out runs/nb\n"
            "  noether-ppl fit sho-cpu --variant learned --set inference.num_steps=500 "
            "--out runs/sho\n"
            "  noether-ppl fit --resume runs/nb            # continue an interrupted run\n"
            "  noether-ppl fit sho-cpu --data mine.npy --dt 0.1 --out runs/mine\n"
            "  noether-ppl fit nbody2d3-cpu --variant learned --out runs/nb-warm \\\n"
            "      --init-conserved runs/nb/vanilla/discovery.json   # after discover\n"
            "  noether-ppl fit oscillators3-cpu --variant learned --auto --out runs/osc\n"
            "\n--set takes dotted keys of the experiment file; values are TOML (8, 1e-3,\n"
            "[64, 64], true, \"ball\"; bare words are strings). Setting inference.num_steps\n"
            "replaces inference.epochs and vice versa.")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT",
                   help="packaged experiment name or TOML file (optional with --resume)")
    p.add_argument("--variant", action="append", metavar="NAME",
                   help="variant(s) to fit: vanilla, learned, oracle, so2, u(n), se2 "
                   "(repeat or comma-separate; default: the experiment's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. inference.num_steps=500 or model.hidden=[32]")
    p.add_argument("--out", metavar="DIR",
                   help="output folder: new or empty (a folder holding another run is refused)")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the run in DIR from its last checkpoints")
    p.add_argument("--data", metavar="FILE",
                   help="your own training trajectories (.npz with states and dt, or .npy "
                   "(N, T+1, M) with --dt) in place of the simulated system")
    p.add_argument("--dt", type=_positive_float, help="time step of a --data/--test .npy file")
    p.add_argument("--test", action="append", metavar="NAME=FILE",
                   help="a held-out test set of your own (with --data)")
    p.add_argument("--reference", metavar="FILE",
                   help="reference generators (L, M+1, M+1) (.npy, or .npz with 'generators' "
                   "and 'names') for your data: parallelness and the 'oracle' variant")
    p.add_argument("--init-conserved", metavar="FILE",
                   help="start the learned variants' conserved quantities at these generators: "
                   "a discovery.json of `noether-ppl discover` (e.g. of a plain HNN's run), "
                   "or (L, M+1, M+1) in .npy/.npz; the other K - L start at random")
    p.add_argument("--auto", action="store_true",
                   help="the recommended pipeline for the learned variants (= --set "
                   "inference.select=true): the plain HNN's discovery as a second start, the "
                   "start with the higher ELBO kept, then only the quantities the fitted H "
                   "conserves, into <variant>-selected (fits 'vanilla' too)")
    p.add_argument("--overwrite", action="store_true",
                   help="when --out already holds a run (or other files), move it aside to "
                   "DIR.replaced-<time> and start afresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-analysis", action="store_true",
                   help="fit only: no metrics, ArviZ file, figures or table")
    p.set_defaults(func=_cmd_fit)

    p = add("report", help="tables and figures of saved runs, without refitting",
            description="Print the paper-layout table (one row per run) of run folders, "
            "experiment folders or folders of runs, the learned symmetries and VI "
            "diagnostics, and redraw the figures, without refitting.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run or experiment folder(s)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for the comparison figures (default: the experiment folder's "
                   "figures/ when one experiment folder is given)")
    p.add_argument("--no-figures", action="store_true", help="print the table only")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.set_defaults(func=_cmd_report)

    p = add("discover", help="the conserved quadratic quantities of saved fits (Lie derivatives)",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            description="For each run folder, the quadratic observables C that the fitted "
            "Hamiltonian conserves\n({H, C} = 0 at states of its data: the nullspace of the "
            "Lie-derivative matrix),\nwith their parallelness to the reference generators. "
            "Works for every variant,\nthe plain HNN included. Writes RUN/discovery.json and "
            "RUN/figures/discovery.png.",
            epilog="examples:\n"
            "  noether-ppl discover runs/nb                  # every run of an experiment\n"
            "  noether-ppl discover runs/nb/vanilla --data test --dimension 7")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run or experiment folder(s)")
    p.add_argument("--data", default="train", metavar="NAME",
                   help="data set whose states are the sample points (default: train)")
    p.add_argument("--points", type=_positive_int, default=2000,
                   help="at most this many states, drawn without replacement (default 2000)")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--dimension", type=_nonnegative_int, metavar="K",
                      help="take the K most conserved directions (default: as many as lie "
                      "below the spectrum's largest gap)")
    rule.add_argument("--threshold", type=_unit_float, metavar="T",
                      help="conserved when sigma <= T x sigma_max, 0 < T < 1")
    p.add_argument("--seed", type=_seed, default=0,
                   help="draws the points and the symmetrisation samples (default 0)")
    p.add_argument("--no-figures", action="store_true", help="no figure")
    p.set_defaults(func=_cmd_discover)

    p = add("demo", help="harmonic oscillator: vanilla vs learned vs SO(2) (Table 1)",
            description="Fit the plain HNN, Noether's razor (K = 1) and the fixed SO(2) model "
            "on the paper's oscillator data; print a Table-1 layout and write metrics.json, "
            "one run folder per model (with its ArviZ file) and figures.")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="optimisation steps per model (default: the demo's setting)")
    p.add_argument("--restarts", type=_positive_int, default=None,
                   help="fit every model this many times from independent keys and keep the "
                        "fit with the highest ELBO (default 1; each restart costs a full fit)")
    p.add_argument("--no-refit", action="store_true",
                   help="keep the learned model's joint fit (by default its posterior is "
                        "also fitted again at the learned conserved quantity and the fit with "
                        "the higher ELBO is kept; one more fit)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    p = add("simulate", help="simulate trajectories of a known system",
            description="Simulate trajectories in float64 and save them as .npz.")
    p.add_argument("system", choices=SYSTEM_NAMES)
    p.add_argument("--n", type=_positive_int, default=3,
                   help="oscillators: number of oscillators; nbody: number of bodies")
    p.add_argument("--dim", type=_positive_int, default=2, help="nbody: spatial dimension")
    p.add_argument("--trajectories", type=_positive_int, default=100)
    p.add_argument("--steps", type=_positive_int, default=20, help="Δt steps per trajectory")
    p.add_argument("--dt", type=_positive_float, default=0.2)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default="runs/simulate")
    p.set_defaults(func=_cmd_simulate)
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    prog = f"noether-ppl {args.command}"
    try:
        # compiled programs on disk, before anything compiles ($NOETHER_PPL_CACHE_DIR=off: none)
        enable_compilation_cache()
        return args.func(args)
    except RunIOError as err:  # the OS failed a run under way (e.g. a full disk): resumable
        if debug:
            raise
        print(f"{prog}: {_one_line(err)}", file=sys.stderr)
        return 1
    except (FloatingPointError, RuntimeError) as err:  # diverged training, failed simulation
        if debug:
            raise
        print(f"{prog}: {_one_line(err)}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # bad input: arguments, settings, files, paths
        if debug:
            raise
        code = 2
        if isinstance(err, OSError):
            message = describe_os_error(err)
            if err.errno in RUN_FAILURE_ERRNOS:  # the machine, not the path given
                code = 1
        else:
            message = _one_line(err)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code
    except MemoryError:
        if debug:
            raise
        print(f"{prog}: out of memory; try smaller settings (data sizes, widths, samples).",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = ""
        if args.command == "fit":
            folder = args.resume or args.out
            hint = f"; continue with: noether-ppl fit --resume {folder}"
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one line (the traceback with --debug)
        if debug:
            raise
        print(f"{prog}: internal error: {type(err).__name__}: {_one_line(err)} (this is a bug "
              f"in noether-ppl; run with --debug for the traceback and report it)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
