"""Every notebook in ``notebooks/`` runs top to bottom at tiny scale.

Notebooks read ``NOETHER_PPL_NOTEBOOK_SCALE`` in their first (parameters) cell: ``"tiny"`` (set
here) shrinks data, widths and steps so the whole notebook runs in well under a minute; unset,
they run at their documented CPU scale.
"""

import importlib.util
import pathlib

import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# The experiment notebooks each fit several models (a minute or more even at tiny scale): they
# run with ``-m slow``; the code they call runs in the default suite through the command-line
# tests of ``test_cli.py``, and ``test_generated_notebooks_are_current`` checks their source.
SLOW = {"01_harmonic_oscillator", "02_coupled_oscillators", "03_three_bodies"}


def test_notebooks_exist_and_are_stripped():
    import nbformat

    assert NOTEBOOKS, "expected notebooks in notebooks/"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: outputs must be stripped in git"
                assert cell.execution_count is None, f"{path.name}: execution counts in git"


def test_generated_notebooks_are_current():
    """The committed experiment notebooks are exactly what ``make_notebooks.py`` builds, and
    every code cell is valid Python."""
    import nbformat

    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  NOTEBOOK_DIR / "make_notebooks.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    built = {name.removesuffix(".ipynb"): build() for name, build in make.NOTEBOOKS.items()}
    assert set(built) == SLOW
    for name, nb in built.items():
        committed = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in nb.cells], (
            f"{name}.ipynb is out of date: run python notebooks/make_notebooks.py")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                compile(cell.source, f"{name}.ipynb cell {i}", "exec")


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in NOTEBOOKS
], ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("NOETHER_PPL_NOTEBOOK_SCALE", "tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors, f"{path.name} raised: {errors[0]['ename']}: {errors[0]['evalue']}"
