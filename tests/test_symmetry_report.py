"""symmetry_report (Sec. 5.1) on hand-made generator stacks with a known answer."""

import json
import re

import numpy as np
import pytest

from noether_ppl import systems
from noether_ppl.analysis.symmetry import (
    DEFAULT_THRESHOLD,
    coordinate_names,
    describe_quadratic,
    parallelness,
    subspace_cosines,
    symmetry_report,
)
from noether_ppl.geometry import span_basis

SYSTEMS = {
    "oscillator": systems.HarmonicOscillator(),
    "3 oscillators": systems.CoupledOscillators(3),
    "3 bodies in 2-D": systems.NBody(n_bodies=3, dim=2),
}


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def _complement_directions(reference, n, rng):
    """``n`` random unit generators orthogonal to the span of ``reference``."""
    basis = span_basis(reference)
    D = basis.shape[1]
    v = rng.normal(size=(n, D))
    v -= (v @ basis.T) @ basis
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    M1 = reference.shape[1]
    return v.reshape(n, M1, M1)


def _hand_made_stack(system, rng, *, n_inactive=3, noise=1e-4, inactive_scale=1e-3):
    """A learned stack whose active part spans the ground truth (well-conditioned mixing of
    the normalised generators, scales 1..2), plus inactive generators of norm
    ``inactive_scale`` outside the ground-truth span, plus isotropic noise."""
    G = system.generators()
    L, M1 = G.shape[0], G.shape[1]
    Gn = G / np.linalg.norm(G.reshape(L, -1), axis=1)[:, None, None]
    mix = _orthogonal(rng, L) * np.linspace(1.0, 2.0, L)[:, None]
    active = np.einsum("kl,lij->kij", mix, Gn)
    inactive = inactive_scale * _complement_directions(G, n_inactive, rng)
    stack = np.concatenate([active, inactive])
    return stack + noise * rng.normal(size=stack.shape) / M1


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_known_span_plus_noise_gives_dimension_and_parallelness(name):
    system = SYSTEMS[name]
    rng = np.random.default_rng(0)
    stack = _hand_made_stack(system, rng)
    L = system.generators().shape[0]
    report = symmetry_report(stack, reference=system)
    assert report.reference_dimension == L
    assert report.dimension == L
    assert report.parallelness.shape == (L,)
    assert np.all(report.parallelness > 0.999)
    assert np.all(report.subspace_cosines > 0.999)
    # Inactive generators: small singular values, directions outside the reference span.
    assert np.all(report.normalized_singular_values[L:] < 0.01)
    assert np.all(report.all_parallelness[L:] < 0.05)
    assert report.matches_reference(0.99)
    # Every active direction is named in the system's generator names.
    names = set(system.generator_names())
    for desc in report.descriptions:
        assert desc.startswith("≈ ") and "outside" not in desc
        used = re.findall(r"\d\.\d\d ([^\s]+)", desc)
        assert used and set(used) <= names
    assert len(report.quadratic_forms) == L
    text = str(report)
    assert f"dimension {L} of {L + 3}" in text and "(inactive)" in text
    assert f"sigma_i > {DEFAULT_THRESHOLD:g} x sigma_1" in text
    json.dumps(report.to_dict())


def test_too_much_noise_is_not_counted_as_a_match():
    """Noise comparable to the signal puts extra directions above the threshold and tilts the
    active ones out of the ground-truth span."""
    system = SYSTEMS["3 oscillators"]
    rng = np.random.default_rng(1)
    stack = _hand_made_stack(system, rng, noise=0.0, inactive_scale=0.5)
    report = symmetry_report(stack, reference=system)
    assert report.dimension == 12 and report.reference_dimension == 9
    assert not report.matches_reference(0.99)
    assert np.sum(report.all_parallelness > 0.99) == 9


@pytest.mark.parametrize(
    "system,weights,expected",
    [
        (SYSTEMS["oscillator"], {"H": 1.0}, {"H": 1.0}),
        (SYSTEMS["3 oscillators"], {"R_01": 0.8, "H_0": 0.6}, {"R_01": 0.8, "H_0": 0.6}),
        (SYSTEMS["3 bodies in 2-D"], {"R^ABS_xy": 1.0}, {"R^ABS_xy": 1.0}),
        (SYSTEMS["3 bodies in 2-D"], {"T_x": 0.6, "P_y": -0.8}, {"P_y": 0.8, "T_x": -0.6}),
    ],
)
def test_directions_are_named_in_the_systems_generators(system, weights, expected):
    """A single learned generator that is a known combination of (normalised) ground-truth
    generators is described with those names and coefficients (overall sign fixed so that the
    largest coefficient is positive)."""
    G = system.generators()
    names = system.generator_names()
    Gn = G / np.linalg.norm(G.reshape(len(G), -1), axis=1)[:, None, None]
    g = sum(w * Gn[names.index(n)] for n, w in weights.items())
    report = symmetry_report(g[None], reference=system)
    assert report.dimension == 1 and report.parallelness[0] > 1 - 1e-12
    terms = dict((n, float(c)) for c, n in
                 re.findall(r"(-?\d\.\d\d) ([^\s]+)", report.descriptions[0].replace("- ", "-")))
    norm = np.linalg.norm(g)
    assert set(terms) == set(expected)
    for n, c in expected.items():
        assert terms[n] == pytest.approx(c / norm, abs=0.006)


def test_quadratic_form_names_the_conserved_quantity_in_coordinates():
    """H = (q² + p²)/2 of the oscillator reads "∝ q_0² + p_0²"; a translation T_x of the 3-body
    system reads as the total x-momentum."""
    G = SYSTEMS["oscillator"].generators()[0]
    form = describe_quadratic(G)
    assert form.startswith("∝ ") and set(form[2:].split(" + ")) == {"q_0²", "p_0²"}
    nb = SYSTEMS["3 bodies in 2-D"]
    T_x = nb.generators()[nb.generator_names().index("T_x")]
    form = describe_quadratic(T_x, coordinate_names(nb))
    assert set(form[2:].split(" + ")) == {"p_0x", "p_1x", "p_2x"}
    assert coordinate_names(nb)[:3] == ["q_0x", "q_0y", "q_1x"]
    assert coordinate_names(4) == ["q_0", "q_1", "p_0", "p_1"]


def test_parallelness_is_invariant_to_a_change_of_basis_of_the_learned_span():
    system = SYSTEMS["3 oscillators"]
    G = system.generators()
    names = system.generator_names()
    rng = np.random.default_rng(2)
    out = _complement_directions(G, 1, rng)[0]
    g1 = G[names.index("H_0")]
    g2 = G[names.index("R_12")] + 0.7 * np.linalg.norm(G[names.index("R_12")]) * out
    g3 = G[names.index("F_02")] - 0.3 * G[names.index("H_1")]
    stack = np.stack([g1, g2, g3])                        # span: 2 directions in, 1 tilted out
    T = _orthogonal(rng, 3) @ np.diag([1.0, 1.5, 0.8]) @ _orthogonal(rng, 3)
    other = np.einsum("ij,jkl->ikl", T, stack)           # same span, another basis
    a = symmetry_report(stack, reference=system)
    b = symmetry_report(other, reference=system)
    assert a.dimension == b.dimension == 3
    np.testing.assert_allclose(a.subspace_cosines, b.subspace_cosines, atol=1e-12)
    np.testing.assert_allclose(np.sum(a.parallelness**2), np.sum(b.parallelness**2), atol=1e-12)
    assert a.subspace_cosines[1] > 1 - 1e-12 and a.subspace_cosines[2] < 0.99
    # A span inside the reference: every direction has parallelness 1 in any basis.
    inside = np.stack([g1, g3])
    for basis in (inside, np.einsum("ij,jkl->ikl", T[:2, :2], inside)):
        rep = symmetry_report(basis, reference=system)
        np.testing.assert_allclose(rep.parallelness, 1.0, atol=1e-12)
    # ... and a change of basis of the reference span changes nothing either.
    mixed_ref = np.einsum("ij,jkl->ikl", _orthogonal(rng, len(G)) * 3.0, G)
    np.testing.assert_allclose(parallelness(a.directions, G),
                               parallelness(a.directions, mixed_ref), atol=1e-12)
    np.testing.assert_allclose(subspace_cosines(a.active_directions, mixed_ref),
                               a.subspace_cosines, atol=1e-12)


def test_threshold_and_dimension_override():
    system = SYSTEMS["oscillator"]
    stack = _hand_made_stack(system, np.random.default_rng(3), inactive_scale=0.07)
    assert symmetry_report(stack, reference=system).dimension == 4       # 0.07·c > 0.05
    assert symmetry_report(stack, reference=system, threshold=0.2).dimension == 1
    assert symmetry_report(stack, reference=system, dimension=1).matches_reference()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"generators": np.zeros((0, 3, 3))}, "empty"),
        ({"generators": np.zeros((2, 4, 4))}, "M even"),
        ({"generators": np.full((1, 3, 3), np.nan)}, "finite"),
        ({"threshold": 1.5}, "threshold"),
        ({"dimension": 5}, "dimension"),
        ({"reference": np.zeros((1, 5, 5))}, "reference"),
        ({"names": ["a", "b"]}, "names"),
    ],
)
def test_bad_input_is_rejected(kwargs, match):
    args = {"generators": SYSTEMS["oscillator"].generators(),
            "reference": SYSTEMS["oscillator"].generators(), **kwargs}
    with pytest.raises(ValueError, match=match):
        symmetry_report(**args)
