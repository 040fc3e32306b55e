"""Keep the example notebooks in step with their sources and store them executed.

    python notebooks/make_notebooks.py --sync        # copy each NN_*.py's cells into NN_*.ipynb
    python notebooks/make_notebooks.py --execute     # ... then run all four notebooks and store
                                                     # them with their outputs (about 25 min on
                                                     # two CPU cores)
    python notebooks/make_notebooks.py --execute 02  # ... run only the notebooks named 02*

Each notebook ``NN_name.ipynb`` has its editable source next to it, ``NN_name.py``: a jupytext
percent-format script (``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose
lines are commented out), paired with the notebook by ``jupytext.toml`` in this folder. Edit the
``.py`` (any editor; or open either file in Jupyter with jupytext installed, which saves both),
then run ``--sync``, or ``--execute`` after a code change. ``pip install jupytext`` (the
``dev`` extra) for both commands. ``tests/test_notebooks.py`` checks that every ``.ipynb`` has
exactly its ``.py``'s cells and is a complete top-to-bottom run without errors, with its
figures and the provenance cell at its end.

``--sync`` writes each ``.ipynb``'s cells from its ``.py`` with jupytext (the ``.py`` is always
the source; ``jupytext --update --to ipynb``, but see below), keeping the stored outputs,
execution counts and cell ids of every code cell whose source did not change, and every
markdown cell's id. Jupytext on its own also hands the old outputs to an edited cell (matched
by position, or up to reformatting); those would be outputs of code that is no longer there,
so ``--sync`` clears them. Markdown edits keep every output; after a code change, the
notebook is no longer one complete run (the test says so): run with ``--execute``.

``--execute`` syncs, then runs each notebook with nbclient in a fresh kernel, in a temporary
working directory (the run folders land there and are deleted), with matplotlib's inline
backend so that figures are stored as PNG, and writes it back in place only when no cell
failed. Each progress bar is stored in its final state only (one line per fit). The markdown of
each notebook describes what "the stored run" shows: after re-executing, read the new outputs
and update those sentences in the ``.py``, then ``--sync`` (markdown edits keep the outputs).

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

HERE = pathlib.Path(__file__).parent
SCALE_VARIABLE = "NOETHER_PPL_NOTEBOOK_SCALE"
FORMAT = "py:percent"  # as in jupytext.toml


def sources() -> list[pathlib.Path]:
    """The notebooks' percent scripts, ``NN_name.py`` (not this file)."""
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def sync(script: pathlib.Path) -> tuple[int, int]:
    """Write the cells of ``script`` (a percent script) into its paired ``.ipynb``, keeping the
    stored outputs of the code cells whose source is unchanged; returns (code cells that keep
    an executed output, code cells)."""
    import jupytext
    from jupytext.combine import combine_inputs_with_outputs

    path = script.with_suffix(".ipynb")
    nb = jupytext.read(script, fmt=FORMAT)
    if path.exists():
        stored = nbformat.read(path, as_version=4)
        nb = combine_inputs_with_outputs(nb, stored, fmt=FORMAT)
        # a carried cell keeps the stored cell's id: clear what jupytext carried to edited cells
        old = {cell.get("id"): cell.source for cell in stored.cells}
        for cell in nb.cells:
            if cell.cell_type == "code" and old.get(cell.get("id")) != cell.source:
                cell.outputs, cell.execution_count = [], None
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    nbformat.validate(nb)
    jupytext.write(nb, path, fmt="ipynb")
    return sum(cell.execution_count is not None for cell in code), len(code)


def sync_all() -> None:
    for script in sources():
        kept, n_code = sync(script)
        note = "" if kept == n_code else "; run with --execute to store the others"
        print(f"synced {script.with_suffix('.ipynb')} from {script.name} ({kept} of {n_code} "
              f"code cells keep their stored outputs{note})")


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
        description="Sync the notebooks' cells from their percent scripts (NN_*.py); with "
                    "--execute, also run the notebooks and store them with their outputs.")
    command = parser.add_mutually_exclusive_group(required=True)
    command.add_argument("--sync", action="store_true",
                         help="write each .ipynb's cells from its .py, keeping the outputs of "
                              "unchanged code cells")
    command.add_argument("--execute", action="store_true",
                         help="sync, then run the notebooks (all four, or those named) at their "
                              "documented scale and store their outputs")
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
    paths = [script.with_suffix(".ipynb") for script in sources()
             if not args.names or any(script.name.startswith(n) for n in args.names)]
    if args.execute and not paths:
        parser.error(f"no notebook in {HERE} starts with {args.names}")
    sync_all()
    if not args.execute:
        return
    for path in paths:
        print(f"executing {path.name} ...", flush=True)
        wall = execute(path, timeout=args.timeout)
        print(f"stored {path} ({wall / 60:.1f} min, {path.stat().st_size / 1024:.0f} KiB)",
              flush=True)


if __name__ == "__main__":
    main()
