"""Build the example notebooks and store them executed, with their outputs and figures.

    python notebooks/make_notebooks.py               # write the cells of 01-03 from this file
    python notebooks/make_notebooks.py --execute     # ... then run all four notebooks and store
                                                     # them with their outputs (about 25 min on
                                                     # two CPU cores)
    python notebooks/make_notebooks.py --execute 02  # ... run only the notebooks named 02*

Notebooks 01-03 are built here with nbformat from the cell texts below; 04 is written by hand.
They are stored executed, so that they read without running (``tests/test_notebooks.py``
checks that every stored notebook is a complete top-to-bottom run without errors, with its
figures and the provenance cell at its end, and that 01-03 are what this file builds).

Writing the cells keeps the stored outputs of the code cells up to the first code cell whose
source changed and clears the outputs from there on (a changed cell makes what follows it
stale); markdown edits keep every output. After a code change, run with ``--execute``.

``--execute`` runs each notebook with nbclient in a fresh kernel, in a temporary working
directory (the run folders land there and are deleted), with matplotlib's inline backend so
that figures are stored as PNG, and writes it back in place only when no cell failed. Each
progress bar is stored in its final state only (one line per fit). The markdown of each
notebook describes what "the stored run" shows: after re-executing, read the new outputs and
update those sentences (for 01-03 here, then run this file again; markdown edits keep the
outputs).

Each notebook reads ``NOETHER_PPL_NOTEBOOK_SCALE`` in its first code cell. Unset, it runs at
its documented CPU scale (``"cpu"``: the packaged CPU-scale twin of the experiment); 01-03 also
accept ``"paper"`` (the paper-scale experiment, a GPU run); ``"tiny"`` shrinks everything so
that the notebook runs in well under a minute (``tests/test_notebooks.py``) and is refused by
``--execute``: a stored notebook is never a smoke test.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).parent
SCALE_VARIABLE = "NOETHER_PPL_NOTEBOOK_SCALE"

PARAMETERS = '''\
import os
import time

T0 = time.perf_counter()  # the provenance cell at the end reports the time from here
SCALE = os.environ.get("NOETHER_PPL_NOTEBOOK_SCALE", "cpu")  # "tiny", "cpu" or "paper"
if SCALE not in ("tiny", "cpu", "paper"):
    raise ValueError(f"NOETHER_PPL_NOTEBOOK_SCALE must be tiny, cpu or paper, got {SCALE!r}")'''

TINY_COMMON = '''\
# "tiny" shrinks data, network and steps and skips the slow analysis (a smoke test);
# "cpu" and "paper" run the packaged experiment files as they are.
TINY = [
    "model.hidden=[8]", "model.sym_samples=2", "model.substeps=1",
    "inference.num_steps=4", "inference.lr=1e-2",
    "data.train.n_trajectories=4", "data.train.n_steps=2",
    "analysis.arviz_samples=0", "analysis.rollouts=false", "analysis.figures=false",
    "analysis.num_samples=2", "analysis.num_repeats=1",
]'''


PROVENANCE_MD = """
## Provenance

The versions, commit, date and machine of the run whose outputs this notebook shows.
"""

PROVENANCE = '''\
# Provenance of the outputs above: the record of the run stored with the notebook
import datetime
import os
import pathlib
import platform
import subprocess
import time

import jax
import numpyro

import noether_ppl


def git(*args):
    root = pathlib.Path(noether_ppl.__file__).resolve().parent.parent
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


commit = git("rev-parse", "--short", "HEAD") or "unknown"
if git("status", "--porcelain", "--untracked-files=no"):
    commit += " plus uncommitted changes"
print(f"noether-ppl {noether_ppl.__version__}, jax {jax.__version__}, "
      f"numpyro {numpyro.__version__}, Python {platform.python_version()}")
print(f"commit {commit}")
print(f"scale {SCALE!r}, run on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
      f"{time.perf_counter() - T0:.0f} s from the first code cell to this one")
print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, jax devices {jax.devices()}")'''


def _nb(cells) -> nbformat.NotebookNode:
    nb = new_notebook()
    cells = [*cells, ("md", PROVENANCE_MD), ("code", PROVENANCE)]
    nb.cells = [new_markdown_cell(text.strip("\n")) if kind == "md" else
                new_code_cell(text.strip("\n")) for kind, text in cells]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding changes no id
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    return nb


def sho() -> nbformat.NotebookNode:
    return _nb([
        ("md", """
# 01 · The simple harmonic oscillator: Table 1 and Fig. 2

The harmonic oscillator $H(q, p) = \\tfrac12 (q^2 + p^2)$ has a rotational symmetry, SO(2),
generated by $H$ itself (App. B.1). From 7 short trajectories (App. C.1) we fit three Bayesian
Hamiltonian neural networks:

* **HNN** — the plain (vanilla) model, no symmetry;
* **HNN + learned symmetry** — Noether's razor with one learnable quadratic conserved quantity
  $C_\\eta$, chosen by maximising the ELBO;
* **HNN + fixed SO(2)** — the reference oracle with the true symmetry built in.

and compare their predictions (Table 1's layout) and learned Hamiltonians (Fig. 2's). The first
code cell picks the scale: `NOETHER_PPL_NOTEBOOK_SCALE=cpu` (default: the CPU-scale twin
`sho-cpu`, minutes on two CPU cores), `paper` (the paper's settings, for a GPU) or `tiny` (a
smoke test).

**The stored outputs** are one run at the `cpu` scale: the CPU-scale twin, not the paper's
scale, so its numbers are the twin's and not the paper's Table 1. The provenance cell at the
end records the versions, commit, date, machine and time of that run; re-run it with
`python notebooks/make_notebooks.py --execute 01`.
"""),
        ("code", PARAMETERS),
        ("code", f'''
import pathlib

import numpy as np

from noether_ppl.analysis import plots, symmetry_report
from noether_ppl.experiments import load_experiment, run_experiment

{TINY_COMMON}
TINY_DATA = ["data.test.n_trajectories=4", "data.test.n_steps=2"]

name = "sho" if SCALE == "paper" else "sho-cpu"
experiment = load_experiment(name, TINY + TINY_DATA if SCALE == "tiny" else [])
OUT = pathlib.Path("runs") / "notebooks" / f"01_sho-{{SCALE}}"
print(experiment.description or experiment.name)
'''),
        ("md", """
## The experiment file

Everything about the run is declared in a TOML file shipped with the package
(`noether_ppl/experiments/sho-cpu.toml`; `sho.toml` holds the paper's settings): the system,
the data sets, the model, the variants, the optimiser and the analysis. The resolved settings:
"""),
        ("code", '''
settings = experiment.to_dict()
for section in ("system", "data", "model", "inference"):
    print(f"[{section}]", settings[section])
print("variants:", settings["variants"])
'''),
        ("md", """
## Fit the three models

`run_experiment` simulates the data, fits each variant into its own run folder under `OUT`
(parameters, loss trace, checkpoints, metrics, the ArviZ file and figures) and prints the
table. The file sets `refit = true`, so after the learned model its posterior over θ is fitted
again with the learned conserved quantity held fixed (a fourth row, `learned-refit`); both fits
bound the same evidence, and the line under the table says which has the higher ELBO. Running
the cell again reuses the finished runs (and continues interrupted ones) — the same as
`noether-ppl fit sho-cpu --out DIR` and `noether-ppl fit --resume DIR`. The stored output
keeps each fit's progress bar in its final state: steps, time and last −ELBO/N of each fit.
"""),
        ("code", '''
result = run_experiment(experiment, OUT, resume=(OUT / "experiment.json").exists(),
                        progress_bar=SCALE != "tiny")
'''),
        ("md", """
## Table 1

Train MSE, NLL/N, KL/N and −ELBO/N on the training data and the one-step test MSE with the
posterior-mean weights, for this run. In the paper's Table 1 (quoted in `REPRODUCTION.md`) the
learned model's test MSE equals the oracle's and both are below the plain HNN's.

In the stored run of the twin (the table below), both symmetric models have a much lower
−ELBO/N and a lower test MSE than the plain HNN, and the learned model lies between the plain
HNN and the oracle on both: the refit brings its −ELBO/N close to the oracle's, but its test
MSE stays above the oracle's. At CPU scale one fit's outcome depends on its key
(`benchmarks/records/demo-sensitivity/`), so this is one draw of the gap, not an estimate of
it; at the tiny scale the numbers mean nothing.
"""),
        ("code", "print(result.table)"),
        ("md", """
## Fig. 2: learned Hamiltonians on phase space

The symmetrised Hamiltonians of the three models next to the true one (each shifted to its
minimum). The true H has circular contours, and so does any SO(2)-invariant Ĥ: how round the
learned model's contours are shows how much of SO(2) it has picked up. In the stored figure the
plain HNN's contours are irregular, the oracle's are circles, and the learned model's (joint
fit and refit) are slightly elongated, tilted ellipses: most of SO(2), not all of it.
"""),
        ("code", '''
import jax

system = experiment.make_system()
runs = result.runs
key = jax.random.key(0)
panels = {"true H": lambda x: np.asarray(system.hamiltonian(x))}
for run in runs.values():
    panels[run.label] = (lambda r: lambda x: np.asarray(r.hamiltonian(x, key=key)))(run.result)
fig = plots.plot_phase_space_hamiltonians(panels, data=runs["vanilla"].train)
'''),
        ("md", """
## Which symmetry was learned?

The learned generator's direction, compared with the ground truth (parallelness 1 means it
lies in the span of SO(2)'s generator), and the conserved quantity it stands for. In the stored
run the learned conserved quantity is mostly $H$ with a part outside SO(2)'s span: its
parallelness is below the 0.99 that the report's last line names and above 0.95, which that
line prints as "yes at 0.95" — consistent with the ellipses of Fig. 2.
"""),
        ("code", '''
report = symmetry_report(runs["learned"].result, reference=system)
print(report)
'''),
        ("md", """
## Model comparison with ArviZ

Each run folder holds an ArviZ `DataTree` (`posterior.nc`) with the pointwise log-likelihood,
so PSIS-LOO compares the models directly (skipped at the tiny scale, which writes no ArviZ
file). In the stored run it ranks the oracle first, then the learned model's refit, its joint
fit and the plain HNN last; but every row is flagged (`warning` True, and the warnings printed
under the table): some Pareto $\\hat k$ are above 0.5, so these leave-one-out estimates are
unreliable and the ranking is indicative only.
"""),
        ("code", '''
import arviz_stats

from noether_ppl.inference import load_arviz

trees = {run.label: load_arviz(pathlib.Path(run.folder) / "posterior.nc")
         for run in runs.values() if (pathlib.Path(run.folder) / "posterior.nc").exists()}
if len(trees) == len(runs):
    print(arviz_stats.compare(trees))
else:
    print("no ArviZ files at this scale")
'''),
        ("md", """
## The same table from the folders

`noether-ppl report OUT` (or `noether_ppl.runs.report`) rebuilds the table and the figures
from the saved runs, without refitting. It also prints each run's learned symmetry and its VI
diagnostics: the Pareto $\\hat k$ and effective sample size of the importance ratios
$p(X, \\theta)/q(\\theta)$. In the stored run every model's $\\hat k$ is far above the 0.5 limit
and the effective sample size is about one draw: the variational posteriors cover the true
posteriors poorly, for the plain HNN as for the symmetric models.
"""),
        ("code", '''
from noether_ppl.runs import report

_ = report(OUT, figures=False)
'''),
    ])


def oscillators() -> nbformat.NotebookNode:
    return _nb([
        ("md", """
# 02 · Coupled harmonic oscillators: Table 2 and Fig. 3

$n$ isotropic oscillators $H = \\tfrac12\\|p\\|^2 + \\tfrac12\\|q\\|^2$ are symmetric under the
unitary group U(n), of dimension $n^2$ (App. B.2): the conserved quantities are the energies
$H_i$, the angular momenta $R_{ij}$ and the $F_{ij}$. In the paper (Sec. 5.3), Noether's razor
with $K \\ge n^2$ learnable quadratic conserved quantities finds exactly $n^2$ of them:
$n^2$ clearly non-zero singular values of the stacked generators, each singular vector in the
span of U(n) (parallelness > 0.99). The cells below show what this run finds.

1. **Table 2**: vanilla HNN, learned symmetry and the fixed U(3) oracle on 3 oscillators.
2. **Fig. 3**: the learned symmetry for $n = 1, \\dots, 4$.

At the default `cpu` scale these are the CPU-scale twin `oscillators3-cpu` (six fits on two CPU
cores; the progress bars stored under the fitting cells show how long each took).

**The stored outputs** are one run at the `cpu` scale: the CPU-scale twin, not the paper's
scale, so its numbers are the twin's and not the paper's Table 2 or Fig. 3. The provenance cell
at the end records the versions, commit, date, machine and time of that run; re-run it with
`python notebooks/make_notebooks.py --execute 02`.
"""),
        ("code", PARAMETERS),
        ("code", f'''
import pathlib

from noether_ppl.analysis import plots, symmetry_report
from noether_ppl.experiments import load_experiment, run_experiment

{TINY_COMMON}
TINY_DATA = ["data.test.n_trajectories=4", "data.test.n_steps=2", "inference.batch_size=2",
             "model.n_conserved=2"]

name = "oscillators3" if SCALE == "paper" else "oscillators3-cpu"
changes = TINY + TINY_DATA if SCALE == "tiny" else []
experiment = load_experiment(name, changes)
NS = (1, 3) if SCALE == "tiny" else (1, 2, 3, 4)  # Fig. 3: the values of n
ROOT = pathlib.Path("runs") / "notebooks" / f"02_oscillators-{{SCALE}}"
print(experiment.description, "| K =", experiment.model.n_conserved)
'''),
        ("md", """
## Table 2: three oscillators

The experiment `oscillators3-cpu` (CPU scale; `oscillators3` holds the paper's settings):
vanilla, learned ($K$ conserved quantities) and the oracle with the fixed U(3) symmetry.
Re-running the cell reuses finished runs.

In the stored run (the table below) the learned model and the U(3) oracle both reach a lower
−ELBO/N and test MSE than the plain HNN, and the learned model is slightly ahead of the oracle
on both: one draw at CPU scale, not a measured gap.
"""),
        ("code", '''
def fit(experiment, out, variants=None):
    out = pathlib.Path(out)
    return run_experiment(experiment, out, variants=variants,
                          resume=(out / "experiment.json").exists(),
                          progress_bar=SCALE != "tiny")


table2 = fit(experiment, ROOT / "n3")
print(table2.table)
'''),
        ("md", """
## Fig. 3: U(n) for n = 1 … 4

For every $n$ we fit only the learned variant, with $K = \\max(K_{file}, n^2 + 3)$ so that
there is room for more conserved quantities than exist, and analyse the learned generators
(Sec. 5.1). $n = 3$ reuses the run of Table 2.

In the stored run the learned span has the dimension of U(n) for $n = 2$ and $n = 3$, every
active direction in the span of U(n) (the printed lines say "matches U(n): True"). It does
not for the other two: for $n = 1$ a second direction, outside U(1)'s span, lies just above the
threshold (one direction too many); for $n = 4$ the sixteenth singular value falls just
below the threshold although its direction lies in U(4)'s span (the faded bar at 16 in the
left panel), so the count is one short. The paper's Fig. 3 finds exactly $n^2$ for each $n$.
"""),
        ("code", '''
reports = {}
for n in NS:
    if n == 3:
        exp_n, run = experiment, table2.runs["learned"]
    else:
        K = experiment.model.n_conserved if SCALE == "tiny" else max(
            experiment.model.n_conserved, n * n + 3)
        exp_n = experiment.replace([f"system.n={n}", f"model.n_conserved={K}"])
        run = fit(exp_n, ROOT / f"n{n}", variants=["learned"]).runs["learned"]
    rep = symmetry_report(run.result, reference=exp_n.make_system(),
                          threshold=experiment.analysis.threshold)
    reports[f"n = {n}"] = rep
    print(f"n = {n}: dimension {rep.dimension} (U(n): {n * n}), matches U(n): "
          f"{rep.matches_reference(experiment.analysis.min_parallelness)}")
fig = plots.plot_singular_values(reports)
'''),
        ("md", """
## The learned conserved quantities of n = 3

Each active singular direction written in the ground-truth basis ($H_i$, $R_{ij}$,
$F_{ij}$): a mixture of them is as conserved as each one. In the stored run all nine active
directions have parallelness above 0.99, and the inactive ones lie well below the
threshold.
"""),
        ("code", "print(reports['n = 3'])"),
        ("md", """
## From the folders, without refitting

`noether-ppl report` rebuilds the table of any run folders, e.g. all the learned runs at once,
with each run's learned symmetry and VI diagnostics. In the stored run every model's Pareto
$\\hat k$ is far above the 0.5 limit and the effective sample size is about one draw: as in
notebook 01, the variational posteriors cover the true posteriors poorly.
"""),
        ("code", '''
from noether_ppl.runs import report

_ = report([ROOT / f"n{n}" for n in NS], figures=False)
'''),
    ])


def nbody() -> nbformat.NotebookNode:
    return _nb([
        ("md", """
# 03 · Three bodies in two dimensions: Table 3 and Figs. 4–5

Three bodies with softened gravity in the plane. The Hamiltonian depends on momenta through
their norms and on positions through distances, so it is invariant under rototranslations
SE(2). Its quadratic conserved quantities generate a 7-dimensional group with the same orbits
as SE(2): translations $T_x, T_y$, the rotations $R^{ABS}$ and $R^{COM}$ and the
momentum-dependent translations $P_x, P_y, Q_{xy}$ (App. B.3). In the paper (Sec. 5.4,
Table 3), Noether's razor with $K = 10$ finds all seven (7 singular values above 0.05,
parallelness > 0.95) and predicts as well as the model with SE(2) built in — on the training
distribution and on test sets moved away from it or spread wider. The cells below show what
this run finds; at the default `cpu` scale it is the CPU-scale twin `nbody2d3-cpu`.

**The stored outputs** are one run at the `cpu` scale: the CPU-scale twin, not the paper's
scale, so its numbers are the twin's and not the paper's Table 3 or Figs. 4–5. The provenance
cell at the end records the versions, commit, date, machine and time of that run; re-run it
with `python notebooks/make_notebooks.py --execute 03`.
"""),
        ("code", PARAMETERS),
        ("code", f'''
import pathlib

from noether_ppl.analysis import plots, symmetry_report
from noether_ppl.experiments import load_experiment, run_experiment

{TINY_COMMON}
TINY_DATA = [f"data.{{s}}.{{k}}={{v}}" for s in ("moved", "wider")
             for k, v in (("n_trajectories", 4), ("n_steps", 2))]
# the test set keeps 100 states: the Lie-derivative nullspace below needs >= 90 points
TINY_DATA += ["data.test.n_trajectories=10", "data.test.n_steps=9",
              "inference.batch_size=2", "model.n_conserved=2"]

name = "nbody2d3" if SCALE == "paper" else "nbody2d3-cpu"
experiment = load_experiment(name, TINY + TINY_DATA if SCALE == "tiny" else [])
OUT = pathlib.Path("runs") / "notebooks" / f"03_nbody-{{SCALE}}"
system = experiment.make_system()
print(experiment.description, "| ground-truth generators:", system.generator_names())
'''),
        ("md", """
## Fit vanilla, learned and fixed-SE(2) models

Same as `noether-ppl fit nbody2d3-cpu --out DIR`. Re-running the cell reuses finished runs.
The stored output keeps each fit's progress bar in its final state.
"""),
        ("code", '''
result = run_experiment(experiment, OUT, resume=(OUT / "experiment.json").exists(),
                        progress_bar=SCALE != "tiny")
'''),
        ("md", """
## Table 3

One-step MSE on the training data and on three test sets: the training distribution
("test"), positions moved far away ("moved") and positions spread three times wider
("wider"). A model with the right symmetry should generalise to the moved set, since
translations are part of it.

In the stored run (the table below) the fixed-SE(2) model has the lowest MSE on all three test
sets, and the learned model lies between it and the plain HNN on each. On the training data,
though, the learned model is the worst fit (highest train MSE and −ELBO/N), and the plain HNN
has the lowest −ELBO/N of the three: in this run the ELBO does not favour the symmetric
models. Every model's MSE on the moved set is above its MSE on the test set: none has become
invariant to the shift.
"""),
        ("code", "print(result.table)"),
        ("md", """
## Fig. 4: singular values and parallelness

In the paper, seven clearly non-zero singular values, and each of the top seven singular
vectors lies in the span of the ground-truth generators (parallelness > 0.95). Below: this
run's singular values and parallelness. In the stored run all ten learned generators are
active (no singular value falls below the threshold) and every singular vector lies mostly
outside the span of the ground-truth generators: the learned span is not SE(2)'s
7-dimensional algebra.
"""),
        ("code", '''
learned = result.runs["learned"].result
report = symmetry_report(learned, reference=system, threshold=experiment.analysis.threshold)
print(report)
fig = plots.plot_singular_values({"3 bodies, 2-D": report})
'''),
        ("md", """
## Fig. 5: the learned generators and their SVD

Top: the $K$ learned generators on homogeneous coordinates $(q, p, 1)$. Bottom: the right
singular vectors of their stack. In the paper the active ones are combinations of rotations,
translations and momentum-dependent translations; in the stored run each has most of its
weight outside that span (the $\\|Pv\\|$ in each title), as the report above says.
"""),
        ("code", "fig = plots.plot_generators(learned, reference=system)"),
        ("md", """
## What does each fitted Hamiltonian conserve?

The learned generators are one reading of the symmetry; the fitted $\\hat H$ itself is
another. For every model, the quadratic observables $C$ with $\\{\\hat H, C\\} \\approx 0$ at
the test states are the nullspace of a matrix of Lie derivatives (Otto et al., 2023; the
same as `noether-ppl discover DIR`). Below: the seven most conserved directions of each
model (the number is forced to 7 here) and their parallelness to the 7-dimensional
ground-truth algebra; the spectrum and its largest gaps show whether seven directions stand
apart from the rest or the cut falls elsewhere.

In the stored run no model has seven directions standing apart. The fixed-SE(2) model's
largest gap falls after five directions, and six of its seven lie close to the ground-truth
span (parallelness above 0.95); the plain HNN's first five lie close to the span, but its
spectrum rises without a clear gap; the learned model's first three lie close to the span.
"""),
        ("code", '''
from noether_ppl.runs import discover_run

found = {run.label: discover_run(run.folder, data="test", dimension=7, system=system)
         for run in result.runs.values()}
for label, d in found.items():
    print(label, "- parallelness", d.parallelness.round(3), "- largest gaps", d.gaps(2))
fig = plots.plot_discovery(found)
'''),
        ("md", """
## Did the variational inference work?

At CPU scale each run folder holds an ArviZ file; the Pareto $\\hat k$ of the importance
ratios $p(X, \\theta)/q(\\theta)$ says how well $q$ covers the posterior (`metrics.json`,
key `vi`). In the stored run $\\hat k$ is far above the 0.5 limit for every model (infinite
for the two symmetric ones): $q$ covers none of the posteriors well.
"""),
        ("code", '''
for run in result.runs.values():
    vi = (run.metrics or {}).get("vi")
    print(run.label, "-", "no ArviZ file at this scale" if not vi else
          f"Pareto k-hat {vi['pareto_k']:.2f} (good below {vi['good_k']:.2f})")
'''),
    ])


NOTEBOOKS = {
    "01_harmonic_oscillator.ipynb": sho,
    "02_coupled_oscillators.ipynb": oscillators,
    "03_three_bodies.ipynb": nbody,
}


def carry_outputs(built: nbformat.NotebookNode, stored: nbformat.NotebookNode) -> int:
    """Give ``built`` the outputs of ``stored``'s code cells up to the first code cell whose
    source differs (and ``stored``'s notebook metadata); returns how many executed code cells
    were kept."""
    kept = 0
    new_code = [c for c in built.cells if c.cell_type == "code"]
    old_code = [c for c in stored.cells if c.cell_type == "code"]
    for new, old in zip(new_code, old_code, strict=False):
        if new.source != old.source:
            break
        new.outputs, new.execution_count = old.outputs, old.execution_count
        kept += old.execution_count is not None
    if kept:
        built.metadata = nbformat.from_dict({**built.metadata, **stored.metadata})
    return kept


def write_sources() -> None:
    """Write notebooks 01-03 from the cell texts above, keeping the stored outputs that are
    still current (:func:`carry_outputs`)."""
    for name, build in NOTEBOOKS.items():
        path = HERE / name
        nb = build()
        n_code = sum(c.cell_type == "code" for c in nb.cells)
        kept = carry_outputs(nb, nbformat.read(path, as_version=4)) if path.exists() else 0
        nbformat.validate(nb)
        nbformat.write(nb, str(path))
        note = "" if kept == n_code else "; run with --execute to store the others"
        print(f"wrote {path} ({kept} of {n_code} code cells keep their stored outputs{note})")


def execute(path: pathlib.Path, *, timeout: int) -> float:
    """Run the notebook at ``path`` top to bottom in a fresh kernel and write it back with its
    outputs; returns the wall time in seconds. On a failing cell nothing is written."""
    from nbclient import NotebookClient

    if os.environ.get(SCALE_VARIABLE) == "tiny":
        raise SystemExit(f"{SCALE_VARIABLE}=tiny is a smoke test; stored notebooks are not")
    nb = nbformat.read(path, as_version=4)
    mpl_backend = os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend embeds PNGs
    warnings = os.environ.get("PYTHONWARNINGS")
    # tqdm.auto's notice that ipywidgets is missing says nothing about the notebook
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [warnings, "ignore:IProgress not found"]))
    try:
        with tempfile.TemporaryDirectory(prefix=f"notebook-{path.stem}-") as work:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": work}},
                                    coalesce_streams=True, record_timing=False)
            start = time.perf_counter()
            client.execute()
            wall = time.perf_counter() - start
    finally:
        for name, value in (("MPLBACKEND", mpl_backend), ("PYTHONWARNINGS", warnings)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Write notebooks 01-03 from make_notebooks.py; with --execute, also run "
                    "the notebooks and store them with their outputs.")
    parser.add_argument("--execute", action="store_true",
                        help="run the notebooks (all four, or those named) at their documented "
                             "scale and store their outputs")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="with --execute: run only the notebooks whose file name starts "
                             "with NAME (e.g. 02)")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="seconds one cell may run (default 3600)")
    args = parser.parse_args(argv)
    if args.names and not args.execute:
        parser.error("notebook names select what --execute runs")
    if args.execute and os.environ.get(SCALE_VARIABLE) == "tiny":
        parser.error(f"{SCALE_VARIABLE}=tiny is a smoke test; stored notebooks are not")
    write_sources()
    if not args.execute:
        return
    paths = [p for p in sorted(HERE.glob("*.ipynb"))
             if not args.names or any(p.name.startswith(n) for n in args.names)]
    if not paths:
        parser.error(f"no notebook in {HERE} starts with {args.names}")
    for path in paths:
        print(f"executing {path.name} ...", flush=True)
        wall = execute(path, timeout=args.timeout)
        print(f"stored {path} ({wall / 60:.1f} min, {path.stat().st_size / 1024:.0f} KiB)",
              flush=True)


if __name__ == "__main__":
    main()
