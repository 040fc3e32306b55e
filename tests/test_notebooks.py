"""Every notebook in ``notebooks/`` runs top to bottom at tiny scale.

Notebooks read ``NOETHER_PPL_NOTEBOOK_SCALE`` in their first (parameters) cell: ``"tiny"`` (set
here) shrinks data, widths and steps so the whole notebook runs in well under a minute; unset,
they run at their documented CPU scale.
"""

import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_stripped():
    import nbformat

    assert NOTEBOOKS, "expected notebooks in notebooks/"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: outputs must be stripped in git"
                assert cell.execution_count is None, f"{path.name}: execution counts in git"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
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
