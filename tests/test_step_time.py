"""``benchmarks/step_time.py``'s FLOP count against XLA's own count of the work.

The benchmark's rates (GFLOP/s, the share of the machine's matmul throughput) rest on
``flops_per_eval``: per evaluation of the step, F and ∇ₓF (``4 Σ in·out``) and reverse mode
through both (``8 Σ``). XLA's cost analysis of the plain autodiff computation of the same
quantities (no loops, so nothing is counted once for many trips) must agree up to the
element-wise work, which the count leaves out.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import step_time  # noqa: E402


def _mlp(params, x):
    a = x
    for i, (W, b) in enumerate(params):
        a = a @ W + b
        if i < len(params) - 1:
            a = jax.nn.elu(a)
    return a[..., 0]


def _xla_flops(fun, *args) -> float:
    cost = jax.jit(fun).lower(*args).compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["flops"]


@pytest.mark.parametrize("sizes", [(2, 64, 64, 1), (6, 96, 80, 64, 1)])
def test_flops_per_eval_matches_xla_count_of_the_autodiff_step(sizes):
    key = jax.random.key(0)
    params = [(jax.random.normal(k, (a, b)) / a**0.5, jnp.zeros(b))
              for k, a, b in zip(jax.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:],
                                 strict=True)]
    n = 512
    x = jax.random.normal(key, (n, sizes[0]))
    field = jax.vmap(jax.grad(_mlp, argnums=1), (None, 0))  # ∇ₓF at each point

    def loss(params, x):
        return jnp.sum(field(params, x) ** 2)

    matmuls = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    # F and ∇ₓF alone: 4 Σ (a third of the step's count)
    forward = _xla_flops(field, params, x) / n
    assert 4 * matmuls <= forward <= 1.15 * 4 * matmuls
    # the step: the gradient of a loss of ∇ₓF with respect to the parameters and the input
    step = _xla_flops(jax.grad(loss, argnums=(0, 1)), params, x) / n
    count = step_time.flops_per_eval(sizes)
    assert count == 12 * matmuls
    assert count <= step <= 1.15 * count, (step, count)


def test_the_estimator_pairs_report_both_steps_and_their_ratios():
    def result(name, step):
        return {"config": name, "median_step_s": step, "min_step_s": step,
                "max_step_s": step, "compile_s": 1.0, "step_gflop": 1.0, "gflop_per_s": 1.0,
                "mlp_evals_per_s": 1.0, "peak_rss_mib": 1.0,
                "mlp_evals_per_step": step_time.evaluations(step_time.settings_for(name, []))}

    results = [result("oscillators3-cpu-rk2", 0.005), result("oscillators3-cpu-plain", 0.04),
               result("sho-demo-learned", 0.03)]
    text = step_time.table(results, {"numpy_2048": 1.0, "xla_batched": 1.0}, "cmd")
    assert ("| oscillators3-cpu-rk2 | oscillators3-cpu-plain | 0.0050 | 0.0400 | 8.00× | 10× |"
            in text)
    # a pair whose other half did not run is left out
    assert "| sho-demo-learned-rk2 |" not in text
    assert step_time.estimator_pairs(results[2:]) == []
