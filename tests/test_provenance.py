"""noether_ppl.provenance: the commit and versions a record or notebook states are the real ones."""

import shutil
import subprocess

import jax
import numpyro
import pytest

from noether_ppl import provenance


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_commit_is_the_checkouts_head():
    root = provenance.__file__.rsplit("/noether_ppl/", 1)[0]
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout")
    found = provenance.commit()
    assert found.removesuffix("+uncommitted") == head


def test_environment_names_the_installed_versions():
    env = provenance.environment()
    assert env["packages"]["jax"] == jax.__version__
    assert env["packages"]["numpyro"] == numpyro.__version__
    assert env["backend"] == jax.default_backend()
    assert set(provenance.PACKAGES) == set(env["packages"])
    assert set(env["cpu"]) == {"model", "vector"}
    assert set(env["cpu"]["vector"]) <= set(provenance.VECTOR_EXTENSIONS)


def test_cpuinfo_gives_the_model_and_the_vector_extensions_the_record_names():
    x86 = ("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx avx2 fma "
           "avx512f avx512bw\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    assert provenance._parse_cpuinfo(x86) == {"model": "AMD EPYC 9R14",
                                              "vector": ["avx512f", "avx2", "fma", "avx"]}
    arm = "processor\t: 0\nFeatures\t: fp asimd sve crc32\n"
    assert provenance._parse_cpuinfo(arm) == {"model": None, "vector": ["asimd", "sve"]}
    assert provenance._parse_cpuinfo("") == {"model": None, "vector": []}


def test_summary_has_the_fields_the_notebooks_show():
    lines = provenance.summary().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("noether-ppl ") and f"jax {jax.__version__}" in lines[0]
    assert lines[1].startswith("commit ")
    assert lines[2].startswith("machine: ")


def test_outputs_do_not_count_as_code_changes():
    """A notebook being stored, a document or a record differs from HEAD: the code does not."""
    paths = ["notebooks/01_harmonic_oscillator.ipynb", "README.md", "benchmarks/results.md",
             "benchmarks/records/step-time/table.md", "noether_ppl/nn.py",
             "notebooks/01_harmonic_oscillator.py", "benchmarks/step_time.py",
             "noether_ppl/experiments/sho-cpu.toml"]
    assert provenance.code_changes(paths) == paths[4:]
    assert provenance.code_changes([]) == []
