import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density

from noether_ppl.models import ModelSpec, NoetherRazor
from noether_ppl.pointwise import tiled_pointwise

UNBIASED = {"mc_likelihood": "unbiased", "sym_samples": 6, "mc_groups": 3}
"""The groups' means of ModelSpec.mc_likelihood="unbiased" (one traced mean per group)."""


def razor_value_and_grad(pair_tile, mesh=None, B=10, **spec_kwargs):
    spec = ModelSpec(**{"hidden": (8, 8), "n_conserved": 1, "sym_samples": 5, "substeps": 3,
                        "dtype": "float64", "pair_tile": pair_tile, **spec_kwargs})
    model = NoetherRazor(spec, phase_dim=2)
    rng = np.random.default_rng(0)
    params = {n: jnp.asarray(0.5 * rng.normal(size=s))
              for n, s in zip(model.site_names, model.shapes, strict=True)}
    params.update(conserved_W=jnp.asarray(rng.normal(size=(1, 2, 2))),
                  conserved_b=jnp.asarray(rng.normal(size=(1, 2))))
    x = jnp.asarray(rng.normal(size=(B, 2)))

    def f(p):
        return log_density(handlers.seed(model, 0), (x, x + 0.1), {"dt": 0.2, "mesh": mesh},
                           p)[0]

    return jax.value_and_grad(f)(params)


@pytest.mark.parametrize("spec_kwargs", [{}, UNBIASED], ids=["plug-in", "unbiased"])
def test_tiled_backward_equals_plain_reverse_mode(spec_kwargs):
    """Recomputing tiles of pairs in the backward pass (ragged last tile) changes nothing."""
    v0, g0 = razor_value_and_grad(None, **spec_kwargs)
    for tile in (3, 5):  # 10 pairs: a ragged last tile, and tiles that divide them
        v, g = razor_value_and_grad(tile, **spec_kwargs)
        np.testing.assert_allclose(v, v0, rtol=1e-13)
        for k in g0:
            np.testing.assert_allclose(g[k], g0[k], rtol=1e-11, atol=1e-13)


def test_tiled_pointwise_input_cotangent():
    fn = lambda w, x: jnp.tanh(x @ w) * x
    w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3)))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(7, 3)))
    loss = lambda w, x, tile: jnp.sum(jnp.sin(tiled_pointwise(fn, w, x, tile)))
    g_ref = jax.grad(loss, argnums=(0, 1))(w, x, None)
    g = jax.grad(loss, argnums=(0, 1))(w, x, 2)
    for a, b in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.slow
def test_two_devices_give_the_same_loss_and_gradients():
    """The pairs split across two (host) devices: the same log joint and gradients as one
    device, to 1e-5 relative (the issue's bound; float64 here gives far less)."""
    script = textwrap.dedent("""
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        assert len(jax.devices()) == 2
        import test_pointwise as t
        from noether_ppl.pointwise import pairs_mesh
        for kw in ({}, t.UNBIASED):
            v1, g1 = t.razor_value_and_grad(None, B=11, **kw)
            v2, g2 = t.razor_value_and_grad(2, mesh=pairs_mesh(), B=11, **kw)  # shards of tiles
            np.testing.assert_allclose(v2, v1, rtol=1e-5)
            for k in g1:
                np.testing.assert_allclose(g2[k], g1[k], rtol=1e-5, atol=1e-9)
        print("ok")
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": os.path.dirname(__file__)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_auto_tiles_follow_the_memory_budget():
    from noether_ppl.models.spec import AUTO_TILE_BYTES

    small = ModelSpec(hidden=(64, 64), sym_samples=32)
    assert small.tile_for(28) is None  # the demo: everything fits, nothing recomputed
    paper = ModelSpec(hidden=(250,) * 4, n_conserved=10, sym_samples=100, integrator="euler",
                      substeps=20)  # nbody2d3-paper: App. C.3's model and estimator
    per_pair = paper.residual_bytes_per_pair()
    for budget in (None, AUTO_TILE_BYTES, 10**9, 3 * 10**9, 30 * 10**9, 3 * per_pair):
        limit = AUTO_TILE_BYTES if budget is None else budget  # the CPU's budget by default
        tile = paper.tile_for(980, budget)  # App. C.3 batches: 20 trajectories x 49 pairs
        assert tile is not None and 1 <= tile < 980
        n_tiles = -(-980 // tile)
        assert tile * per_pair <= limit  # each tile fits
        assert n_tiles == -(-980 // (limit // per_pair))  # the fewest tiles that fit
        assert n_tiles * tile - 980 < n_tiles  # balanced: the padding is under a row per tile
    assert paper.tile_for(980, 980 * per_pair) is None  # the whole batch fits: no tiling
    assert paper.tile_for(980, per_pair // 2) == 1  # not even one pair fits: one at a time
    assert paper.replace(pair_tile=None).tile_for(980, 1) is None
    assert paper.replace(pair_tile=7).tile_for(980, 10**12) == 7


def test_the_auto_budget_is_a_fraction_of_an_accelerators_free_memory():
    """``auto_tile_bytes``: the fixed budget on a CPU and where a device reports no limit,
    ``AUTO_TILE_DEVICE_FRACTION`` of ``bytes_limit - bytes_in_use`` on an accelerator."""
    from noether_ppl.models.spec import AUTO_TILE_BYTES, AUTO_TILE_DEVICE_FRACTION, auto_tile_bytes

    class Device:
        def __init__(self, platform, stats):
            self.platform, self._stats = platform, stats

        def memory_stats(self):
            return self._stats

    gib = 2**30
    assert auto_tile_bytes() == AUTO_TILE_BYTES  # this suite runs on the CPU backend
    assert auto_tile_bytes(Device("cpu", {"bytes_limit": 100 * gib})) == AUTO_TILE_BYTES
    assert auto_tile_bytes(Device("gpu", None)) == AUTO_TILE_BYTES
    assert auto_tile_bytes(Device("gpu", {"bytes_in_use": gib})) == AUTO_TILE_BYTES
    h100 = Device("gpu", {"bytes_limit": 60 * gib, "bytes_in_use": 2 * gib})
    assert auto_tile_bytes(h100) == int(AUTO_TILE_DEVICE_FRACTION * 58 * gib)
    assert auto_tile_bytes(Device("gpu", {"bytes_limit": 60 * gib})) == int(
        AUTO_TILE_DEVICE_FRACTION * 60 * gib)
    # nbody2d3-paper's batch in one tile on such a device, in 15 under the CPU's budget
    paper = ModelSpec(hidden=(250,) * 4, n_conserved=10, sym_samples=100, integrator="euler",
                      substeps=20)
    assert paper.tile_for(980, auto_tile_bytes(h100)) is None
    assert -(-980 // paper.tile_for(980, AUTO_TILE_BYTES)) == 15


def _step_temp_bytes(spec: ModelSpec, n_pairs: int) -> int:
    """XLA's temporary memory of one compiled SVI step (the loss and every gradient) of the
    razor ``spec`` on ``n_pairs`` pairs (``memory_analysis`` of the compiled program)."""
    from numpyro.infer import SVI

    from noether_ppl.inference import AutoMatrixNormal, MatrixNormalELBO, make_optimizer

    model = NoetherRazor(spec, phase_dim=2)
    svi = SVI(model, AutoMatrixNormal(model), make_optimizer(10, 1e-3), MatrixNormalELBO(),
              dt=0.2, num_data=n_pairs)
    x = jax.random.normal(jax.random.key(0), (n_pairs, 2), jnp.float32)
    state = svi.init(jax.random.key(1), x, x + 0.01)
    compiled = jax.jit(svi.update).lower(state, x, x + 0.01).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.slow  # compiles a paper-width step twice (~40 s on 2 CPU cores)
def test_the_tile_memory_estimate_bounds_the_compiled_step():
    """``residual_bytes_per_pair`` (what ``pair_tile="auto"`` budgets with) bounds the memory
    one more pair costs the compiled step in plain reverse mode, and is not more than four
    times it, with the default integrator (RK2)."""
    spec = ModelSpec(hidden=(32, 32), n_conserved=1, sym_samples=20, integrator="rk2",
                     substeps=5, pair_tile=None, dtype="float32")
    per_pair = (_step_temp_bytes(spec, 80) - _step_temp_bytes(spec, 40)) / 40
    estimate = spec.residual_bytes_per_pair()
    assert estimate / 4 < per_pair <= estimate, (per_pair, estimate)


def test_pair_tile_none_from_toml_and_set():
    """TOML has no null: ``"none"`` is ``pair_tile=None`` (plain reverse mode), from a spec, an
    experiment's ``--set`` and its TOML alike; other strings are refused naming the field."""
    from noether_ppl.experiments import config

    assert ModelSpec(pair_tile="none").pair_tile is None
    assert ModelSpec(pair_tile="none").tile_for(10**6) is None
    exp = config.load_experiment("sho-cpu", ["model.pair_tile=none"])
    assert exp.model.pair_tile is None
    assert config.load_experiment("sho-cpu", ["model.pair_tile=7"]).model.pair_tile == 7
    for bad in ("None", "off", 0, -3, 2.5):
        with pytest.raises(ValueError, match="pair_tile"):
            ModelSpec(pair_tile=bad)
    with pytest.raises(ValueError, match=r"\[model\].*pair_tile"):
        config.load_experiment("sho-cpu", ["model.pair_tile=None"])
