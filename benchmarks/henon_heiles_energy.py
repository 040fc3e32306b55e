"""Hénon–Heiles: is its broken symmetry visible to the selection's rule at any bound energy?

    python benchmarks/henon_heiles_energy.py

The Hénon–Heiles Hamiltonian ``H = ½|p|² + ½|q|² + q_x² q_y − q_y³/3`` conserves no quadratic
quantity (``systems.HenonHeiles``, dimension 0), but near the origin it is the isotropic
oscillator, whose four ``u(2)`` directions the cubic term breaks only by a fraction that grows
with the energy. Orbits are bound only below the saddle energy ``E = 1/6``. For each energy
``E`` (a fraction of 1/6) and each key, this script starts trajectories on the energy shell
``H = E`` inside the bound well, integrates them like the discovery benchmark's training data
(``--trajectories`` x ``--points`` steps of Δt = 0.3), and reads the exact ``H``'s residual
spectrum over all quadratic ``C`` on those states (``inference.conservation_spectrum``): the
smallest residual (the best-conserved broken direction, discovery.py's "margin") and the
dimension the selection's rule (``inference.spectrum_dimension`` at ``max_residual``) reads.
Where the margin stays below ``max_residual`` at every bound energy, no Hénon–Heiles data of
bound orbits can show that rule (applied even to the exact ``H``) the true dimension 0.

Initial states: ``x = s u`` with ``u`` uniform on the unit sphere of ``R⁴`` and ``s`` the
smallest root of ``H(s u) = E`` (bisection; every point of the segment from the origin to ``x``
has ``H < E``, so ``x`` lies in the bound component of ``H < E`` and its orbit stays there). No
fitting; float64.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np
from record import publish

from noether_ppl import inference, systems
from noether_ppl.inference.select import DEFAULT_MAX_RESIDUAL

SADDLE_ENERGY = systems.HenonHeiles.SADDLE_ENERGY
"""The energy of Hénon–Heiles' three saddles: orbits below it are bound."""

_energy = systems.HenonHeiles.energy_np
"""``H`` of ``x (..., 4)`` in NumPy (the formula of ``systems.HenonHeiles``)."""


def shell_states(rng: np.random.Generator, n: int, energy: float) -> np.ndarray:
    """``(n, 4)`` states with ``H = energy`` in the bound well: ``n`` standard-normal directions
    from ``rng``, each moved along its ray to the shell (``HenonHeiles.on_energy_shell``)."""
    if not 0.0 < energy < SADDLE_ENERGY:
        raise ValueError(f"Expected 0 < `energy` < 1/6 (bound orbits), got {energy!r}.")
    return systems.HenonHeiles.on_energy_shell(rng.standard_normal((n, 4)), energy)


def row(fraction: float, key: int, *, trajectories: int, points: int, dt: float,
        max_residual: float) -> dict:
    system = systems.SUITE["henon-heiles"]()
    E = fraction * SADDLE_ENERGY
    x0 = shell_states(np.random.default_rng(1000 + key), trajectories, E)
    traj = system.integrate(x0, points, dt)
    x = np.asarray(traj.states, np.float64).reshape(-1, 4)
    drift = float(np.max(np.abs(_energy(x) - E)))
    r, _ = inference.conservation_spectrum(system.hamiltonian, x)
    D, gap = inference.spectrum_dimension(r, max_residual)
    return {"fraction": fraction, "energy": E, "key": key, "margin": float(r[0]),
            "rule_dim": D, "rule_gap": gap, "energy_drift": drift,
            "spectrum_head": [float(v) for v in r[:6]]}


def table(rows: list[dict], args) -> str:
    out = [f"Hénon–Heiles on energy shells E (fraction of the saddle energy 1/6): the exact H's "
           f"residual spectrum at {args.trajectories} trajectories x {args.points} steps "
           f"(Δt = {args.dt}) per key, keys {args.keys}; rule = `spectrum_dimension` at "
           f"max_residual = {args.max_residual}; true dimension 0.", "",
           "| E / (1/6) | E | margin: median | min–max | rule on exact H (per key) | "
           "largest energy drift |", "|---:|---:|---:|---:|---|---:|"]
    for f in args.fractions:
        rs = [r for r in rows if r["fraction"] == f]
        m = np.array([r["margin"] for r in rs])
        out.append(f"| {f:.2f} | {f * SADDLE_ENERGY:.4f} | {np.median(m):.3f} | "
                   f"{m.min():.3f}–{m.max():.3f} | "
                   f"{', '.join(str(r['rule_dim']) for r in rs)} | "
                   f"{max(r['energy_drift'] for r in rs):.1e} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fractions", nargs="+", type=float,
                   default=[0.25, 0.5, 0.75, 0.9, 0.99])
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--trajectories", type=int, default=50)
    p.add_argument("--points", type=int, default=10, help="steps per trajectory")
    p.add_argument("--dt", type=float, default=0.3)
    p.add_argument("--max-residual", type=float, default=DEFAULT_MAX_RESIDUAL)
    p.add_argument("--topic", default="henon-heiles-energy")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # the spectrum in float64 (not at import)
    bad = [f for f in args.fractions if not 0.0 < f < 1.0]
    if bad:
        p.error(f"--fractions must lie in (0, 1) (bound orbits), got {bad}")
    start = time.perf_counter()
    rows = [row(f, k, trajectories=args.trajectories, points=args.points, dt=args.dt,
                max_residual=args.max_residual) for f in args.fractions for k in args.keys]
    text = table(rows, args)
    return publish(args, text, rows, start)


if __name__ == "__main__":
    sys.exit(main())
