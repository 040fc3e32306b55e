"""``benchmarks/henon_heiles_energy.py``'s initial states: on the energy shell, in the bound
well (the segment from the origin stays below the shell), and only below the saddle energy."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import henon_heiles_energy as hh  # noqa: E402


def test_shell_states_lie_on_the_shell_inside_the_bound_well():
    E = 0.9 * hh.SADDLE_ENERGY
    x = hh.shell_states(np.random.default_rng(0), 40, E)
    assert x.shape == (40, 4)
    np.testing.assert_allclose(hh._energy(x), E, rtol=0, atol=1e-12)
    # every point of the segment from the origin has H below E: the bound component
    s = np.linspace(0.0, 1.0, 201)[:-1]
    assert np.all(hh._energy(s[None, :, None] * x[:, None, :]) < E)
    # the triangle of saddles lies at distance 1 from the origin
    assert np.all(np.linalg.norm(x[:, :2], axis=1) < 1.0)


def test_energy_formula_is_the_systems():
    from noether_ppl import systems
    from noether_ppl.precision import float64

    x = np.random.default_rng(1).normal(size=(5, 4)) * 0.3
    H = systems.SUITE["henon-heiles"]()
    with float64():
        expected = np.array([float(H.hamiltonian(xi)) for xi in x])
    np.testing.assert_allclose(hh._energy(x), expected, rtol=1e-12)


@pytest.mark.parametrize("energy", [0.0, 1.0 / 6.0, 0.2, -0.1])
def test_unbound_or_empty_shells_are_refused(energy):
    with pytest.raises(ValueError, match="energy"):
        hh.shell_states(np.random.default_rng(0), 1, energy)
