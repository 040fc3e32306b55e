"""``benchmarks/bracket_closure.py``: the orbit rank of a true algebra and what the closure
under the bracket does to a recorded selection (geometry only)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bracket_closure  # noqa: E402

from noether_ppl import systems  # noqa: E402


@pytest.mark.parametrize("name, rank", [("sho", 1), ("two-body-2d", 4), ("nbody2d3", 4),
                                        ("oscillators3", 5), ("magnetic", 3)])
def test_orbit_rank_is_the_rank_of_the_vector_fields_at_a_generic_state(name, rank):
    """By hand: SO(2) moves a point of the plane along a circle (1); two bodies' seven
    quantities move the centre of mass by the two momenta's translations (T_x, T_y, and the
    quadratics of the total momentum P_x, P_y, Q_xy along the same two), and rotate the whole and
    the centre-of-mass motion (R^ABS, R^COM): 4, for three bodies too; U(3) on C³ moves a point
    over its 5-sphere (5); the magnetic field's six over the 3 directions tangent to the level
    set of H in R⁴. The fields are ``G (x, 1)``, checked against ``J∇C`` by autodiff."""
    import jax

    from noether_ppl.geometry import quadratic_from_generator, symplectic_form
    from noether_ppl.precision import float64

    system = {**systems.PAPER, **systems.SUITE}[name]()
    truth, M = system.generators(), system.phase_dim
    x = np.random.default_rng(0).normal(size=(20, M))
    assert np.all(bracket_closure.orbit_ranks(truth, x) == rank)
    A, b = (np.asarray(v) for v in quadratic_from_generator(truth))
    J = np.asarray(symplectic_form(M))
    with float64():
        grad = np.stack([jax.vmap(jax.grad(lambda y, A=a, v=c: 0.5 * y @ A @ y + v @ y))(x)
                         for a, c in zip(A, b, strict=True)], -1)  # (N, M, L)
    fields = np.einsum("lab,nb->nal", truth,
                       np.concatenate([x, np.ones((20, 1))], 1))[:, :M]
    np.testing.assert_allclose(fields, np.einsum("ij,njl->nil", J, grad), atol=1e-10)


def test_score_row_closes_a_selection_missing_a_bracket_and_scores_it():
    """Two bodies' seven less ``T_y`` (``{R^ABS, T_x} ∝ T_y``): one direction added, the
    true span's, and the row turns right; the seven themselves: nothing added."""
    system = systems.SUITE["two-body-2d"]()
    names = system.generator_names()
    six = system.generators([n for n in names if n != "T_y"])
    row = {"system": "two-body-2d", "key": 0, "selection": {"generators": six.tolist()}}
    got = bracket_closure.score_row(row, 0.95)
    assert (got["selected"], got["added"], got["closed"]) == (6, 1, 7)
    assert got["added_true_shares"] == pytest.approx([1.0])
    assert got["ok"] is False and got["ok_closed"] is True
    assert got["bracket_singular_values"][0] > 0.3 > got["bracket_singular_values"][1]
    assert got["least_held"]["name"] == "T_y" and got["least_held"]["outside"] == pytest.approx(1)
    full = {**row, "selection": {"generators": system.generators().tolist()}}
    done = bracket_closure.score_row(full, 0.95)
    assert done["added"] == 0 and done["ok"] and done["ok_closed"]
    text = bracket_closure.table({"t": [got, done]}, [], 0.95, detail=["two-body-2d"])
    assert "| two-body-2d | 0 | 7 | 6 | 1.000 | T_y 1.00 |" in text
    assert "| 1 (1.00) | 7 | 1.000 | ✗ → ✓ |" in text
    assert "| two-body-2d | 1/2 | 2/2 | 1 |" in text
