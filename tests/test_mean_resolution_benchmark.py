"""``benchmarks/mean_resolution.py``: the likelihood mean's error over Δt with the true H and
with the plain HNN fitted as ``fit_auto``'s step 1, on the discovery benchmark's data."""

import argparse
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import discovery  # noqa: E402
import mean_resolution as mr  # noqa: E402
import record  # noqa: E402

from noether_ppl import analysis, inference, models, systems  # noqa: E402


@pytest.mark.slow
def test_a_row_measures_the_true_h_and_fit_auto_s_own_hnn():
    """The row's HNN is the one ``fit_auto`` fits in step 1 (same data, key, settings): its
    measured error equals ``mean_resolution`` of that fit; the true H's equals ``mean_error``
    on the system's field."""
    args = mr.parser().parse_args(["--systems", "sho", "--keys", "0", "--steps", "20"])
    row = mr.row_of("sho", 0, args)
    system = systems.PAPER["sho"]()
    train = discovery.train_data(system, 0, trajectories=50, points=10)
    spec = models.ModelSpec(hidden=(64, 64), n_conserved=0)
    hnn = inference.fit(models.NoetherRazor(spec, phase_dim=2), train,
                        key=jax.random.split(jax.random.key(0), 7)[0], num_steps=20, lr=3e-3,
                        lr_conserved=1e-2, batch_size=10, progress_bar=False)
    again = analysis.mean_resolution(hnn, train, key=jax.random.key(11),
                                     max_points=train.n_pairs)
    assert row["hnn"]["noise_ratio"] == pytest.approx(again.noise_ratio, rel=1e-6)
    true = analysis.mean_error(system.vector_field, np.asarray(train.pairs()[0]), train.dt,
                               integrator="rk2", substeps=1, noise_variance=1e-3)
    assert row["true"]["noise_ratio"] == pytest.approx(true.noise_ratio, rel=1e-12)
    assert row["true"]["resolved"] and row["steps"] == 20 and row["dt"] == train.dt
    text = mr.table([row], args)
    assert "| sho | 0.2 | 20 |" in text and "| 1/1 |" in text


def test_the_defaults_are_the_discovery_benchmark_s_and_bad_values_are_refused(capsys):
    args, d = mr.parser().parse_args([]), discovery.parser().parse_args([])
    for name in ("systems", "keys", "trajectories", "points", "hidden", "noise_variance", "dt",
                 "integrator", "substeps", "steps", "lr", "lr_conserved", "batch_size"):
        assert getattr(args, name) == getattr(d, name), name
    for argv, word in ((["--systems", "nope"], "unknown systems"),
                       (["--substeps", "0"], "--substeps"), (["--dt", "0"], "--dt"),
                       (["--noise-variance", "-1"], "--noise-variance")):
        with pytest.raises(SystemExit):
            mr.main(argv)
        assert word in capsys.readouterr().err
    assert isinstance(mr.parser(), argparse.ArgumentParser)


def test_rebuild_writes_the_table_of_the_stored_rows_without_fitting(monkeypatch, capsys):
    res = {"noise_ratio": 2.0, "resolved": False, "fraction_unresolved": 0.25}
    rows = [{"system": "sho", "key": 0, "dt": 0.2, "steps": 10, "true": res,
             "hnn": {**res, "noise_ratio": 0.5, "resolved": True, "fraction_unresolved": 0.0},
             "hnn_fit_s": 3.0}]
    settings = {"integrator": "rk2", "substeps": 1, "trajectories": 50, "points": 10,
                "noise_variance": 1e-3}
    written = {}
    monkeypatch.setattr(record, "read_record",
                        lambda topic: ("", {"rows": rows, "settings": settings}, {}))
    monkeypatch.setattr(record, "rewrite_record",
                        lambda topic, text, how: written.update(topic=topic, how=how))
    monkeypatch.setattr(mr.inference, "fit", lambda *a, **k: pytest.fail("must not fit"))
    assert mr.main(["--topic", "t", "--rebuild"]) == 0
    assert written == {"topic": "t", "how": "python mean_resolution.py --topic t --rebuild"}
    out = capsys.readouterr().out
    assert "| sho | 0.2 | 10 | 2 [2, 2] | 0/1 | 0.5 [0.5, 0.5] | 1/1 | 0/1 | 25% / 0% | 3 |" in out
    with pytest.raises(SystemExit):
        mr.main(["--rebuild"])
    assert "--rebuild needs --topic" in capsys.readouterr().err
