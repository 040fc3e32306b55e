import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

# Identities are checked in float64; training code casts to its own dtype explicitly.
jax.config.update("jax_enable_x64", True)
