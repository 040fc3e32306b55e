"""Numerical precision: a scoped switch to float64 (DESIGN "Conventions": float64 for
simulation, analysis and identity checks; float32 for training by default).

A leaf module: it imports only JAX, so every layer can use it.
"""

from __future__ import annotations

import jax

__all__ = ["float64"]


def float64():
    """Context manager under which JAX creates float64 arrays, whatever the global
    ``jax_enable_x64`` flag; the flag is restored on exit.

    Wraps ``jax.enable_x64(True)`` (``jax.experimental.enable_x64`` on older JAX)::

        with precision.float64():
            x = jnp.zeros(3)          # float64
    """
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older JAX
        from jax.experimental import enable_x64 as enable
    return enable(True)
