"""Where the time goes: ``run.json`` and ``experiment.json`` record the split (fit / analysis /
I/O seconds) of a tiny run; the seconds are non-negative and add up to at most the wall time.
No timed assertions beyond that. (The demo's ``metrics.json``: tests/test_demo.py; a tiny
``noether-ppl fit``'s folder: :func:`check_experiment_split`, called from tests/test_cli.py.)"""

import json
import os

import pytest

from noether_ppl.runs.schema import MalformedFileError, check_metrics, check_run_info
from noether_ppl.runs.timing import ANALYSIS_PHASES, PhaseTimer, split_line, summary

TINY = ["model.hidden=[8]", "model.sym_samples=2", "model.substeps=1",
        "inference.num_steps=4", "inference.checkpoint_every=2", "inference.lr=1e-2",
        "data.train.n_trajectories=4", "data.train.n_steps=2",
        "data.test.n_trajectories=4", "data.test.n_steps=2",
        "analysis.arviz_samples=30", "analysis.num_samples=2", "analysis.num_repeats=1",
        "analysis.rollout_steps=2", "analysis.rollout_trajectories=2"]


def _check_split(timing, wall):
    parts = timing["analysis"]
    assert set(parts) == set(ANALYSIS_PHASES)
    assert all(v >= 0 for v in parts.values())
    assert timing["analysis_s"] == pytest.approx(sum(parts.values()), abs=1e-2)
    top = [timing.get(k, 0.0) for k in ("simulate_s", "fit_s", "analysis_s", "io_s")]
    assert all(v >= 0 for v in top)
    assert sum(top) <= wall + 1e-2


def check_experiment_split(out, printed, wall):
    """The split of a finished experiment folder ``out`` (a ``pathlib.Path``), whose run
    printed the lines ``printed`` and took at most ``wall`` seconds: ``experiment.json``'s
    split, the one line printed for it, and every run's ``run.json`` (checked by its schema)
    and ``metrics.json``. Called on the tiny ``noether-ppl fit sho-cpu`` of
    ``tests/test_cli.py`` (one fit and every analysis phase), which runs it anyway."""
    timing = json.loads((out / "experiment.json").read_text())["timing"]
    _check_split(timing, wall)
    assert timing["wall_s"] <= wall
    assert timing["fit_s"] > 0 and timing["analysis_s"] > 0
    line = split_line(timing)
    assert line.startswith("Time ") and "outside the fits" in line and line in printed
    runs = [d for d in sorted(os.listdir(out)) if (out / d / "run.json").exists()]
    assert runs
    fit_total = analysis_total = 0.0
    for slug in runs:
        info = check_run_info(json.loads((out / slug / "run.json").read_text()), "run.json")
        run_timing = info["timing"]
        _check_split(run_timing, timing["wall_s"])
        assert run_timing["fit_s"] > 0 and run_timing["io_s"] >= 0
        fit_total += run_timing["fit_s"]
        analysis_total += run_timing["analysis_s"]
        stored = json.loads((out / slug / "metrics.json").read_text())["timing"]
        assert {k: stored[k] for k in ANALYSIS_PHASES} == run_timing["analysis"]
        assert stored["io_s"] >= 0
    # the runs' own fits are part of the experiment's fitting, their analyses of its analysis
    assert fit_total <= timing["fit_s"] + 1e-2
    assert timing["analysis_s"] >= analysis_total - 1e-2


def test_timer_and_schema():
    timer = PhaseTimer()
    with timer("fit_s"):
        pass
    timer.add("metrics_s", 1e-3)
    timer.add("io_s", -1.0)  # never negative
    s = summary(timer)
    assert s["io_s"] == 0 and s["analysis_s"] >= 1e-3 - 1e-9 and s["wall_s"] >= 0
    assert "fits" in split_line(s)
    # optional: metrics without a timing load, a negative or non-numeric one is refused
    assert check_metrics({"train_mse": 1.0}, "m.json")["train_mse"] == 1.0
    assert check_metrics({"timing": {"metrics_s": 1.5}}, "m.json")["timing"]["metrics_s"] == 1.5
    for bad in ({"metrics_s": -1.0}, {"metrics_s": "x"}, [1.0]):
        with pytest.raises(MalformedFileError, match="timing"):
            check_metrics({"timing": bad}, os.fspath("m.json"))
