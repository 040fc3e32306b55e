"""Maps that act on each data point independently: tiles in memory, shards across devices.

The likelihood mean of Sec. 4.1 pushes every pair ``x_t`` through ``n`` integrator sub-steps of
``J∇Ĥ`` (the paper's: Euler), each made of MLP evaluations (and their input gradients) at ``S``
transformed points. Plain reverse mode stores every sub-step's activations for all ``S × B``
points: gigabytes at the paper's settings (App. C). But pair ``i``'s prediction depends only on
``x_t[i]`` and the shared parameters, so :func:`tiled_pointwise` runs the map over tiles of
points and, in the backward pass, recomputes one tile at a time and pulls its cotangent back at
once: the residuals of one tile stay cache-sized and the parameter cotangents are summed over
tiles. The price is one extra forward pass. :func:`sharded_pointwise` splits the points of such
a map across the devices of a mesh axis (``jax.shard_map``; parameters replicated, their
cotangents summed across devices by ``shard_map``'s transpose). :func:`map_points` runs such a
map in chunks inside a traced program when only its values are needed (e.g. on probe points).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

__all__ = ["tiled_pointwise", "sharded_pointwise", "map_points", "PAIRS_AXIS", "pairs_mesh"]

PAIRS_AXIS = "pairs"
"""Name of the mesh axis over which :func:`sharded_pointwise` splits the points."""


def _tiles(x: jax.Array, tile: int) -> tuple[jax.Array, int]:
    """``x (n, ...)`` padded (by repeating its last row) to ``(n_tiles, tile, ...)``."""
    n = x.shape[0]
    n_tiles = -(-n // tile)
    pad = n_tiles * tile - n
    if pad:
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)], axis=0)
    return x.reshape((n_tiles, tile) + x.shape[1:]), n


def tiled_pointwise(fn: Callable, params, x: jax.Array, tile: int | None) -> jax.Array:
    """``fn(params, x)`` for ``x (n, ...)`` whose row ``i`` of the output depends on ``x[i]`` only.

    With ``tile=None`` (or ``tile >= n``) this is ``fn(params, x)``, differentiated by plain
    reverse mode. Otherwise the rows run in tiles of ``tile`` under a custom VJP that recomputes
    each tile in the backward pass (cotangents for ``params`` and ``x``; equal to plain reverse
    mode up to round-off, tested).
    """
    n = x.shape[0]
    if tile is None or tile >= n:
        return fn(params, x)

    def forward(params, x):
        xt, _ = _tiles(x, tile)
        y = jax.lax.map(lambda xi: fn(params, xi), xt)
        return y.reshape((-1,) + y.shape[2:])[:n]

    @jax.custom_vjp
    def apply(params, x):
        return forward(params, x)

    def apply_fwd(params, x):
        return forward(params, x), (params, x)

    def apply_bwd(residuals, y_bar):
        params, x = residuals
        xt, _ = _tiles(x, tile)
        # Padded rows get a zero cotangent, so they add nothing to the parameter cotangent.
        pad = xt.shape[0] * tile - n
        y_bar = jnp.concatenate([y_bar, jnp.zeros((pad,) + y_bar.shape[1:], y_bar.dtype)])
        yt_bar = y_bar.reshape((xt.shape[0], tile) + y_bar.shape[1:])

        def body(acc, tile_in):
            xi, yi_bar = tile_in
            _, pullback = jax.vjp(fn, params, xi)
            p_bar, x_bar = pullback(yi_bar)
            return jax.tree_util.tree_map(jnp.add, acc, p_bar), x_bar

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        p_bar, x_bar = jax.lax.scan(body, zeros, (xt, yt_bar))
        return p_bar, x_bar.reshape((-1,) + x_bar.shape[2:])[:n]

    apply.defvjp(apply_fwd, apply_bwd)
    return apply(params, x)


def map_points(fn: Callable, x: jax.Array, chunk: int) -> jax.Array:
    """``fn(x)`` for ``x (n, ...)`` whose row ``i`` of the output depends on ``x[i]`` only, in
    chunks of ``chunk`` rows under ``lax.map`` (inside a traced program: memory of one chunk).

    The last chunk is padded with copies of the first row; the padded rows are dropped.
    """
    n = x.shape[0]
    if n <= chunk:
        return fn(x)
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    xp = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])], axis=0)
    out = jax.lax.map(fn, xp.reshape((n_chunks, chunk) + x.shape[1:]))
    return out.reshape((n_chunks * chunk,) + out.shape[2:])[:n]


def pairs_mesh(devices=None) -> jax.sharding.Mesh:
    """A one-axis mesh named :data:`PAIRS_AXIS` over ``devices`` (default: all local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("Expected at least one device for the mesh.")
    return jax.make_mesh((len(devices),), (PAIRS_AXIS,), axis_types=(AxisType.Auto,),
                         devices=devices)


def sharded_pointwise(fn: Callable, params, x: jax.Array, mesh: jax.sharding.Mesh) -> jax.Array:
    """``fn(params, x)`` with the rows of ``x (n, ...)`` split across the mesh axis
    :data:`PAIRS_AXIS` (padded by repeating the last row to a multiple of its size).

    Row ``i`` of the output must depend on ``x[i]`` only (as for :func:`tiled_pointwise`, which
    ``fn`` may use on each device's share). Equal to ``fn(params, x)`` up to round-off, values
    and gradients (tested on two CPU devices).
    """
    n_dev = mesh.shape[PAIRS_AXIS]
    if n_dev == 1:
        return fn(params, x)
    xt, n = _tiles(x, -(-x.shape[0] // n_dev))
    spec = P(PAIRS_AXIS)
    y = jax.shard_map(lambda p, xi: fn(p, xi[0])[None], mesh=mesh,
                      in_specs=(P(), spec), out_specs=spec)(params, xt)
    return y.reshape((-1,) + y.shape[2:])[:n]
