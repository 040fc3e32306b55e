"""The notebooks in ``notebooks/`` are stored executed, and every one runs top to bottom.

They are stored with their outputs and figures so that they read without running: each is a
complete top-to-bottom run at its documented scale, made by ``python notebooks/make_notebooks.py
--execute`` and recorded by the provenance cell at its end. Notebooks read
``NOETHER_PPL_NOTEBOOK_SCALE`` in their first code cell: ``"tiny"`` (set by
``test_notebook_executes``) shrinks data, widths and steps so the whole notebook runs in well
under a minute; unset, they run at their documented CPU scale.

Each notebook's editable source is the jupytext percent script next to it (``NN_name.py``,
paired by ``notebooks/jupytext.toml``); ``python notebooks/make_notebooks.py --sync`` copies its
cells into the notebook, keeping the stored outputs of the unchanged code cells.
"""

import ast
import contextlib
import importlib.util
import io
import pathlib

import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# The experiment notebooks each fit several models (a minute or more even at tiny scale): they
# run with ``-m slow``; the code they call runs in the default suite through the command-line
# tests of ``test_cli.py``; ``test_notebook_matches_its_script`` and
# ``test_settings_are_the_packaged_twin`` check their source and settings. The toolkit notebook
# (half a minute) too, to keep the default suite under ten minutes: ``test_lie.py`` checks
# what it calls.
EXPERIMENTS = {"01_harmonic_oscillator", "02_coupled_oscillators", "03_three_bodies"}
SLOW = EXPERIMENTS | {"04_lie_derivative_toolkit"}
MAX_NOTEBOOK_BYTES = 2_000_000  # figures at the inline backend's dpi, no progress-bar logs
MAX_STREAM_CHARS = 20_000
PROVENANCE = "# Provenance"
EXECUTE = "python notebooks/make_notebooks.py --execute"
SYNC = "python notebooks/make_notebooks.py --sync"


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_its_script(path):
    """Each notebook's cells are exactly those of its paired percent script (its editable
    source, read through jupytext), and every code cell is valid Python."""
    import jupytext
    import nbformat

    script = path.with_suffix(".py")
    assert script.exists(), f"{path.name} has no paired script {script.name}"
    stored = nbformat.read(path, as_version=4)
    source = jupytext.read(script, fmt="py:percent")
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in source.cells], (
        f"{path.name} is out of step with {script.name}: run {SYNC} (or {EXECUTE} "
        f"{path.stem[:2]} after a code change)")
    for i, cell in enumerate(source.cells):
        if cell.cell_type == "code":
            compile(cell.source, f"{script.name} cell {i}", "exec")


def test_every_script_has_its_notebook():
    scripts = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
    assert [s.stem for s in scripts] == [p.stem for p in NOTEBOOKS]


def test_sync_keeps_only_current_outputs(tmp_path):
    """``--sync`` writes the script's cells into the notebook and keeps the stored outputs,
    execution counts and ids of the unchanged cells; an edited code cell loses its outputs
    (jupytext alone would hand it the old ones)."""
    import nbformat

    make = _make_notebooks()
    name = "01_harmonic_oscillator"
    script, path = tmp_path / f"{name}.py", tmp_path / f"{name}.ipynb"
    script.write_text((NOTEBOOK_DIR / f"{name}.py").read_text())
    path.write_bytes((NOTEBOOK_DIR / f"{name}.ipynb").read_bytes())
    stored = nbformat.read(path, as_version=4)
    n_code = sum(c.cell_type == "code" for c in stored.cells)
    assert make.sync(script) == (n_code, n_code)
    assert path.read_bytes() == (NOTEBOOK_DIR / f"{name}.ipynb").read_bytes()

    text = script.read_text()
    edits = [("# # 01 · The simple", "# # 01 · The very simple"),
             ("print(result.table)", "print(result.table)  # edited"),
             ("# %% [markdown]\n# ## Fig. 2", "# %%\nx = 1\n\n# %% [markdown]\n# ## Fig. 2")]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    script.write_text(text)
    assert make.sync(script) == (n_code - 1, n_code + 1)
    synced = nbformat.read(path, as_version=4)
    kept = {c.id: c for c in stored.cells}
    for cell in synced.cells:
        if cell.source == "x = 1" or cell.source.endswith("# edited"):
            assert cell.outputs == [] and cell.execution_count is None, cell.source
            assert cell.source == "x = 1" or cell.id in kept, "the edited cell keeps its id"
        else:
            old = kept[cell.id]
            assert cell.cell_type == "markdown" or (
                cell.outputs == old.outputs and cell.execution_count == old.execution_count)
    assert synced.cells[0].source.startswith("# 01 · The very simple")
    assert synced.metadata == stored.metadata


# Each experiment notebook runs, at its default scale, the CPU-scale twin of a packaged experiment
TWINS = {"01_harmonic_oscillator": "sho-cpu", "02_coupled_oscillators": "oscillators3-cpu",
         "03_three_bodies": "nbody2d3-cpu"}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_settings_are_the_packaged_twin(name, monkeypatch):
    """At the default scale the settings cell of notebooks 01-03 loads its packaged CPU-scale
    twin with no changes, and the stored outputs of the cells before the first fit are what
    the current code prints (the experiment's description and, in 01, its resolved settings):
    a change to the packaged file or the notebook shows here before anything is refitted."""
    import nbformat

    from noether_ppl.experiments import load_experiment, packaged_experiments

    assert set(TWINS) == EXPERIMENTS and TWINS[name] in packaged_experiments()
    monkeypatch.delenv("NOETHER_PPL_NOTEBOOK_SCALE", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    namespace = {}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        if "run_experiment" in _called(cell.source):
            break
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(cell.source, f"{name}.ipynb", "exec"), namespace)
        stored = "".join(o.text for o in cell.outputs if o.output_type == "stream")
        assert printed.getvalue() == stored, (
            f"{name}.ipynb, code cell [{cell.execution_count}]: the stored output is not what "
            f"the current code prints; re-execute it: {EXECUTE} {name[:2]}")
    assert namespace["SCALE"] == "cpu"
    experiment, twin = namespace["experiment"], load_experiment(TWINS[name])
    assert namespace["name"] == experiment.name == TWINS[name]
    assert experiment.to_dict() == twin.to_dict(), (
        f"{name}.ipynb changes the sizes of {TWINS[name]}")


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  NOTEBOOK_DIR / "make_notebooks.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return make


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
