"""``benchmarks/spectrum_span.py`` (its table of learned generators) and ``refit_size.py
--prune`` on a saved learned fit: what they report agrees with a direct computation. Slow: a
fit into a run folder, then continuation fits."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import refit_size  # noqa: E402
import spectrum_span  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def learned_folder(tmp_path_factory):
    """A learned razor (K = 2) on the 1-D oscillator, fitted for 30 steps into a run folder."""
    from noether_ppl import systems
    from noether_ppl.models import ModelSpec, NoetherRazor
    from noether_ppl.runs import fit_in_folder

    data = systems.HarmonicOscillator().simulate(jax.random.key(0), n_trajectories=4,
                                                 n_steps=3, dt=0.2)
    model = NoetherRazor(ModelSpec(hidden=(8,), n_conserved=2, sym_samples=4, substeps=2),
                         phase_dim=2)
    folder = str(tmp_path_factory.mktemp("spectrum") / "learned")
    fit_in_folder(model, data, folder, key=jax.random.key(1), num_steps=30, lr=1e-2,
                  progress_bar=False)
    return folder


def _capture(monkeypatch, module) -> dict:
    """Replace ``module.write_record``: keep what it would have written."""
    written = {}

    def write(topic, **kwargs):
        written.update(topic=topic, **kwargs)
        return Path("nowhere")

    monkeypatch.setattr(module, "write_record", write)
    return written


def _states(folder):
    from noether_ppl.data import Trajectories

    data = Trajectories.load(str(Path(folder) / "data" / "train.npz"))
    return data, np.asarray(data.states, np.float64).reshape(-1, data.phase_dim)


def _shares(P, G):
    """Norm of each unit-normalised ``P[k]``'s projection on the span of ``G`` (least
    squares, independent of ``geometry.span_basis``)."""
    U = P.reshape(len(P), -1)
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    B = G.reshape(len(G), -1).T
    coef = np.linalg.lstsq(B, U.T, rcond=None)[0]
    return np.linalg.norm(B @ coef, axis=0)


def test_spectrum_span_lists_each_learned_generator_with_its_share(learned_folder,
                                                                   monkeypatch):
    from noether_ppl.analysis.symmetry import parallelness
    from noether_ppl.inference.conservation import conservation_spectrum, principal_generators
    from noether_ppl.runs import load_run
    from noether_ppl.systems import HarmonicOscillator

    written = _capture(monkeypatch, spectrum_span)
    assert spectrum_span.main([learned_folder, "--experiment", "sho-cpu", "--topic", "t",
                               "--head", "5"]) == 0
    learned = written["metrics"]["learned_generators"]
    result = load_run(learned_folder)
    sig, P = principal_generators(result.generators())
    np.testing.assert_allclose(learned["sigma"], sig, rtol=1e-12)
    reference = HarmonicOscillator().generators()
    np.testing.assert_allclose(learned["parallelness"], parallelness(P, reference), rtol=1e-12)
    _, x = _states(learned_folder)
    r, G = conservation_spectrum(result, x, key=jax.random.key(0))  # the script's --seed 0
    assert set(learned["shares"]) == {"1", "2", "3"}  # cuts around the reference's size 1
    for j, share in learned["shares"].items():
        np.testing.assert_allclose(share, _shares(P, G[: int(j)]), atol=1e-9)
    # more directions hold more of each generator
    assert np.all(np.diff([learned["shares"][j] for j in ("1", "2", "3")], axis=0) >= -1e-9)
    table = written["table"]
    assert "The fit's 2 learned generators" in table and f"| 1 | {sig[0]:.4g} |" in table


def test_prune_keeps_the_learned_generators_inside_the_spectrums_first_d(learned_folder,
                                                                        monkeypatch):
    from noether_ppl.inference.conservation import conservation_spectrum, principal_generators
    from noether_ppl.inference.select import SELECTED_MIN_SHARE
    from noether_ppl.runs import load_run

    written = _capture(monkeypatch, refit_size)
    assert refit_size.main([learned_folder, "--prune", "--dimensions", "1", "5", "--steps",
                            "2", "--experiment", "sho-cpu", "--topic", "t"]) == 0
    rows = written["metrics"]["rows"]
    assert [row.get("prune_at") for row in rows] == [None, 1, 5]
    assert rows[0]["dimension"] == 2 and "continued" in rows[0]["name"]
    result = load_run(learned_folder)
    _, P = principal_generators(result.generators())
    _, x = _states(learned_folder)
    _, G = conservation_spectrum(result, x, key=jax.random.split(jax.random.key(0), 3)[0])
    for row in rows[1:]:
        share = _shares(P, G[: row["prune_at"]])
        np.testing.assert_allclose(row["shares"], share, atol=1e-9)
        assert row["dimension"] == int(np.sum(share >= SELECTED_MIN_SHARE))
        assert "minus_continued" in row and np.isfinite(row["neg_elbo_per_n"])
    # the first five directions span every quadratic quantity on R²: nothing is pruned
    assert rows[2]["dimension"] == 2 and np.allclose(rows[2]["shares"], 1.0)
