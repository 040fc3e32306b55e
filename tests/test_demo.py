"""`noether-ppl demo` end to end at a tiny scale: the files and keys the README promises."""

import json
import os
import time

import pytest

from noether_ppl.demo import DemoSettings, run_demo
from noether_ppl.runs.timing import ANALYSIS_PHASES, split_line

TINY = DemoSettings(hidden=(8,), sym_samples=4, substeps=2, num_steps=20)


def test_demo_writes_its_table_metrics_and_figures(tmp_path, monkeypatch):
    import importlib

    import arviz_stats

    out = str(tmp_path / "demo")
    lines = []
    # PSIS-LOO as the figures call it and as arviz_stats.compare imported it
    compare_module = importlib.import_module("arviz_stats.loo.compare")
    loo_calls = []
    real_loo = arviz_stats.loo

    def counted(*args, **kwargs):
        loo_calls.append(kwargs)
        return real_loo(*args, **kwargs)

    monkeypatch.setattr(arviz_stats, "loo", counted)
    monkeypatch.setattr(compare_module, "loo", counted)
    start = time.perf_counter()
    metrics = run_demo(out, TINY, progress_bar=False, echo=lines.append)
    wall = time.perf_counter() - start
    # one pointwise PSIS-LOO per model: each khat.png computes it, loo_compare.png reuses it
    for name in ("vanilla", "learned", "oracle"):
        assert os.path.getsize(os.path.join(out, name, "figures", "khat.png")) > 0
    assert os.path.getsize(os.path.join(out, "loo_compare.png")) > 0
    assert loo_calls == [{"pointwise": True}] * 3
    with open(os.path.join(out, "metrics.json")) as f:
        written = json.load(f)
    keys = {"train_mse", "nll_per_n", "kl_per_n", "neg_elbo_per_n", "test_mse"}
    for name in ("vanilla", "learned", "oracle"):
        assert keys <= set(written[name])
        assert os.path.exists(os.path.join(out, name, "run.json"))
    assert {"singular_values", "parallelness"} <= set(written["learned"])
    for name in ("hamiltonians.png", "training_curves.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    text = "\n".join(lines)
    assert "HNN + learned symmetry" in text and "HNN + fixed SO(2)" in text
    # Only the learned model is refitted; the record says which fit was kept.
    assert "refit" not in written["vanilla"] and "refit" not in written["oracle"]
    record = written["learned"]["refit"]
    assert record["kept"] in ("refit", "fit") and record["steps"] == TINY.num_steps
    kept_refit = record["refit_neg_elbo_per_n"] < record["fit_neg_elbo_per_n"]
    assert (record["kept"] == "refit") == kept_refit
    # one refit per off-diagonal rate; the best of them is the one compared with the fit
    rates = [c["settings"]["lr_offdiag"] for c in record["candidates"]]
    assert rates == list(TINY.refit_lr_offdiag) == [3e-4, None]
    scores = [c["neg_elbo_per_n"] for c in record["candidates"] if not c["diverged"]]
    assert record["refit_neg_elbo_per_n"] == min(scores)
    assert "of the posterior refitted" in text and "the best of 2 refits" in text
    with open(os.path.join(out, "learned", "run.json")) as f:
        assert json.load(f)["fit"]["refit_lr_offdiag"] == list(TINY.refit_lr_offdiag)
    assert metrics["learned"]["neg_elbo_per_n"] == written["learned"]["neg_elbo_per_n"]
    # where the time went: metrics.json and every run.json, the split printed last
    timing = written["timing"]
    assert timing == metrics["timing"] and lines[-1] == split_line(timing)
    # the split is stored to the millisecond
    assert timing["wall_s"] == pytest.approx(metrics["wall_time_s"], abs=1e-3)
    assert timing["wall_s"] <= wall
    parts = [timing[k] for k in ("simulate_s", "fit_s", "analysis_s", "io_s")]
    assert min(parts) >= 0 and timing["fit_s"] > 0 and sum(parts) <= timing["wall_s"] + 1e-2
    assert set(timing["analysis"]) == set(ANALYSIS_PHASES)
    assert timing["analysis_s"] == pytest.approx(sum(timing["analysis"].values()), abs=1e-2)
    for name in ("vanilla", "learned", "oracle"):
        with open(os.path.join(out, name, "run.json")) as f:
            run_timing = json.load(f)["timing"]
        assert min(run_timing["fit_s"], run_timing["analysis_s"], run_timing["io_s"]) >= 0
        assert run_timing["fit_s"] + run_timing["analysis_s"] <= timing["wall_s"]
