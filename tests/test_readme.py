"""The README's Python examples run as written, in order, in one namespace.

Only the sizes that cost time are shrunk (training steps and ArviZ samples); every name, call
and argument is the README's own, so a renamed function or a changed signature fails here.
"""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).parent.parent / "README.md"
# (README text, what the test runs instead): sizes only.
SHRINK = [("num_steps=2000", "num_steps=20"), ("num_samples=200", "num_samples=40")]


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    blocks = readme_python_blocks()
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        compile(block, f"README.md python block {i}", "exec")


@pytest.mark.slow
# Twenty training steps leave the posteriors far from the data, and ArviZ warns that the PSIS
# weights of such a fit overflow and their Pareto k̂ is high; the examples' calls are what this
# test checks.
@pytest.mark.filterwarnings("ignore::RuntimeWarning:arviz_stats")
@pytest.mark.filterwarnings("ignore::UserWarning:arviz_stats")
# arviz_stats.compare calls DataFrame.sort_values(inplace=True), which pandas deprecates.
@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = readme_python_blocks()
    for text, _ in SHRINK:  # a size the README no longer has would run at full scale
        assert any(text in block for block in blocks), f"README has no {text!r} to shrink"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        for text, small in SHRINK:
            block = block.replace(text, small)
        exec(compile(block, f"README.md python block {i}", "exec"), namespace)
    assert (tmp_path / "learned.nc").is_file()
