"""The notebooks in ``notebooks/`` are stored executed, and every one runs top to bottom.

They are stored with their outputs and figures so that they read without running: each is a
complete top-to-bottom run at its documented scale, made by ``python notebooks/make_notebooks.py
--execute`` and recorded by the provenance cell at its end. Notebooks read
``NOETHER_PPL_NOTEBOOK_SCALE`` in their first code cell: ``"tiny"`` (set by
``test_notebook_executes``) shrinks data, widths and steps so the whole notebook runs in well
under a minute; unset, they run at their documented CPU scale.
"""

import ast
import importlib.util
import pathlib

import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# The experiment notebooks each fit several models (a minute or more even at tiny scale): they
# run with ``-m slow``; the code they call runs in the default suite through the command-line
# tests of ``test_cli.py``, and ``test_generated_notebooks_are_current`` checks their source.
SLOW = {"01_harmonic_oscillator", "02_coupled_oscillators", "03_three_bodies"}
MAX_NOTEBOOK_BYTES = 2_000_000  # figures at the inline backend's dpi, no progress-bar logs
MAX_STREAM_CHARS = 20_000
PROVENANCE = "# Provenance"
EXECUTE = "python notebooks/make_notebooks.py --execute"


def _called(source: str) -> set[str]:
    """The names of the functions and methods a cell calls."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def _expects_output(source: str) -> bool:
    """A cell that prints, plots or ends in an expression must show something; the others
    (imports, settings, a fit that reports as it goes) may be silent."""
    body = ast.parse(source).body
    called = _called(source)
    return (bool(body) and isinstance(body[-1], ast.Expr)) or "print" in called or _plots(source)


def _plots(source: str) -> bool:
    return any(name == "show" or name.startswith("plot") for name in _called(source))


def _has_png(cell) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


def test_notebooks_exist():
    assert NOTEBOOKS, "expected notebooks in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_executed(path):
    """A complete top-to-bottom run without errors, with the figures of every plotting cell
    and the provenance of the run, of a reasonable size."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    redo = f"re-execute it: {EXECUTE} {path.stem[:2]}"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        f"{path.name} is not stored as one complete top-to-bottom run; {redo}")
    for i, cell in enumerate(code, start=1):
        where = f"{path.name}, code cell [{i}]"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{where} raised {errors[0].ename}: {errors[0].evalue}; {redo}"
        if _expects_output(cell.source):
            assert cell.outputs, f"{where} prints or plots but has no stored output; {redo}"
        if _plots(cell.source):
            assert _has_png(cell), f"{where} plots but stores no image/png; {redo}"
        for output in cell.outputs:
            if output.output_type == "stream":
                assert len(output.text) <= MAX_STREAM_CHARS, f"{where}: a huge stream output"
    assert any(_has_png(cell) for cell in code), f"{path.name} stores no figure"
    provenance = code[-1]
    assert provenance.source.startswith(PROVENANCE), (
        f"{path.name} must end with the provenance cell ({PROVENANCE} ...)")
    text = "".join(o.text for o in provenance.outputs if o.output_type == "stream")
    for field in ("noether-ppl ", "jax ", "numpyro ", "commit ", "scale ", "machine: "):
        assert field in text, f"{path.name}: the provenance output lacks {field.strip()!r}"
    assert "scale 'tiny'" not in text, f"{path.name} is stored from a tiny-scale smoke run"
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name} is over 2 MB"


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
            f"{name}.ipynb is out of date: run {EXECUTE} {name[:2]}")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                compile(cell.source, f"{name}.ipynb cell {i}", "exec")


def test_carry_outputs_keeps_only_current_outputs():
    """Rewriting the cells keeps the stored outputs up to the first changed code cell."""
    import nbformat

    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  NOTEBOOK_DIR / "make_notebooks.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    stored = make.sho()
    code = [c for c in stored.cells if c.cell_type == "code"]
    for i, cell in enumerate(code, start=1):
        cell.execution_count = i
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{i}\n")]
    built = make.sho()
    built.cells[0].source += " (edited markdown)"
    assert make.carry_outputs(built, stored) == len(code)
    built = make.sho()
    changed = [c for c in built.cells if c.cell_type == "code"]
    changed[2].source += "\n# changed"
    assert make.carry_outputs(built, stored) == 2
    assert [bool(c.outputs) for c in changed] == [True, True] + [False] * (len(code) - 2)


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in NOTEBOOKS
], ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    """Runs each notebook at tiny scale in memory; the stored file is never overwritten."""
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
