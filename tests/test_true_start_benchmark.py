"""``benchmarks/true_start.py``: the razor started at the true generators, its ELBO against
``fit_auto``'s step-1 HNN and what the selection keeps from it (a diagnostic)."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import discovery  # noqa: E402
import record  # noqa: E402
import true_start as ts  # noqa: E402

from noether_ppl import inference, models, systems  # noqa: E402


@pytest.mark.slow  # a fit_auto run and a razor fit (about a minute on 2 CPU cores)
def test_a_row_starts_at_the_truth_and_compares_with_fit_auto_s_own_hnn():
    """The row's HNN is ``fit_auto``'s step-1 HNN (same data, key, settings): the reported
    ELBO difference equals one computed from that HNN and the started fit refitted here; a
    short fit from the true SO(2) generator still holds it (cosine near 1)."""
    argv = ["--systems", "sho", "--keys", "0", "--steps", "30", "--select-steps", "5",
            "--eval-sym-samples", "32"]
    args = ts.parser().parse_args(argv)
    row = ts.run_one("sho", 0, args)
    system = systems.PAPER["sho"]()
    train = discovery.train_data(system, 0, trajectories=50, points=10)
    spec = models.ModelSpec(hidden=(64, 64), n_conserved=2, sym_samples=16, measure="ball",
                            measure_scale=float(np.pi))
    kw = {"num_steps": 30, "lr": 3e-3, "lr_conserved": 1e-2, "batch_size": 10,
          "progress_bar": False}
    k_hnn, _, _, k_fit, k_init, k_cmp, _ = jax.random.split(jax.random.key(0), 7)
    hnn = inference.fit(models.NoetherRazor(spec.replace(n_conserved=0), phase_dim=2), train,
                        key=k_hnn, **kw)
    razor = models.NoetherRazor(spec, phase_dim=2)
    init = models.conserved_params_from_generators(system.generators(), 2, key=k_init,
                                                   scale=spec.conserved_init_scale)
    started = inference.fit(razor, train, key=k_fit, init_params=init, **kw)
    d, se, _, _ = inference.elbo_difference(started, hnn, train, key=k_cmp)
    assert row["started_minus_hnn"]["16"]["delta"] == pytest.approx(d, rel=1e-5)
    assert row["started_minus_hnn"]["16"]["se"] == pytest.approx(se, rel=1e-4)
    assert set(row["started_minus_hnn"]) == {"16", "32"}
    assert row["held_min_cos"] > 0.99 and row["true_dim"] == 1 and row["K"] == 2
    assert row["held_cosines"] == [row["held_min_cos"]]
    text = ts.table([row], args)
    assert "| sho | 0 | 1 |" in text and "| 1/1 |" in text and "(S = 32)" in text
    assert "| sho | 1 |" in text
    older = {k: v for k, v in row.items() if k != "held_cosines"}
    assert f"| {row['held_min_cos']:.3f} | – |" in ts.table([older], args)


def test_bad_values_are_refused_and_a_system_without_quadratic_symmetry_named(capsys):
    for argv, word in ((["--systems", "nope"], "unknown systems"),
                       (["--steps", "0"], "--steps"), (["--dt", "-1"], "--dt"),
                       (["--eval-sym-samples", "0"], "--eval-sym-samples")):
        with pytest.raises(SystemExit):
            ts.main(argv)
        assert word in capsys.readouterr().err
    none = [n for n, s in {**systems.PAPER, **systems.SUITE}.items()
            if s().generators().shape[0] == 0]
    assert none  # Hénon–Heiles and the quartic oscillator conserve only H
    with pytest.raises(ValueError, match="nothing to start at"):
        ts.run_one(none[0], 0, ts.parser().parse_args(["--steps", "5"]))


def test_rebuild_writes_the_table_of_the_stored_rows_without_fitting(monkeypatch, capsys):
    row = {"system": "sho", "key": 3, "true_dim": 1, "K": 2, "steps": 10, "select_steps": 5,
           "held_min_cos": 0.5, "held_cosines": [0.5],
           "started_minus_hnn": {"16": {"delta": 12.0, "se": 3.0}},
           "started_neg_elbo_per_n": -1.0, "hnn_neg_elbo_per_n": 2.0,
           "started_test_mse": 1e-3, "hnn_test_mse": 2e-3, "selected_dim": 0,
           "selected_min_par": None, "selected_ok": False, "wall_s": {"total": 9.0}}
    settings = {**vars(ts.parser().parse_args([])), "steps": 10, "select_steps": 5}
    written = {}
    monkeypatch.setattr(record, "read_record",
                        lambda topic: ("", {"rows": [row], "settings": settings}, {}))
    monkeypatch.setattr(record, "rewrite_record",
                        lambda topic, text, how: written.update(topic=topic, how=how))
    monkeypatch.setattr(ts, "fit", lambda *a, **k: pytest.fail("must not fit"))
    assert ts.main(["--topic", "t", "--rebuild"]) == 0
    assert written == {"topic": "t", "how": "python true_start.py --topic t --rebuild"}
    out = capsys.readouterr().out
    assert "| sho | 3 | 1 | 0.500 | 0/1 | 12 ± 3 |" in out
    assert "| sho | 1 | 1/1 | 0/1 | 0/1 |" in out
    with pytest.raises(SystemExit):
        ts.main(["--rebuild"])
    assert "--rebuild needs --topic" in capsys.readouterr().err
