"""``benchmarks/discovery.py``: its default run covers every registered system, and the systems
that need more steps get them (and a selection scaled alike)."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import discovery  # noqa: E402

from noether_ppl import systems  # noqa: E402


def test_the_default_run_covers_every_registered_system_once():
    assert sorted(discovery.ORDER) == sorted({**systems.PAPER, **systems.SUITE})
    assert set(discovery.SYSTEM_STEPS) <= set(discovery.ORDER)


def test_steps_of_a_system_is_the_larger_budget_with_the_selection_scaled_alike():
    args = argparse.Namespace(steps=2000, select_steps=500)
    assert discovery.steps_of("sho", args) == (2000, 500)
    assert discovery.steps_of("henon-heiles-escape", args) == (16000, 4000)
    more = argparse.Namespace(steps=32000, select_steps=1000)
    assert discovery.steps_of("henon-heiles-escape", more) == (32000, 1000)


def _row(kept, ok, ok_before=None, continued=0):
    row = {"system": "sho", "key": 0, "true_dim": 1, "razor_dim": 0 if kept == "hnn" else 1,
           "razor_kept": kept, "razor_gap": None, "razor_min_par": None, "razor_start": "random",
           "hnn_dim": 1, "hnn_identified": True, "hnn_min_par": 1.0,
           "razor_neg_elbo_per_n": 1.0, "razor_neg_elbo_se_per_n": 0.1,
           "hnn_neg_elbo_per_n": 2.0, "hnn_neg_elbo_se_per_n": 0.1, "razor_test_mse": 1e-3,
           "hnn_test_mse": 2e-3, "wall_s": 1.0, "razor_ok": ok, "hnn_ok": True}
    if ok_before is not None:
        row.update(razor_ok_unequal_budget=ok_before, hnn_continued_steps=continued)
    return row


def _select_kwargs(monkeypatch, argv) -> dict:
    """The ``select_kwargs`` that ``run_one`` passes to ``fit_auto`` for the benchmark's
    arguments ``argv`` (a stand-in ``fit_auto`` stops the run once it has them)."""
    from noether_ppl import analysis

    seen = {}

    class Stop(Exception):
        pass

    def fit_auto(*a, select_kwargs, **kw):
        seen.update(select_kwargs)
        raise Stop

    monkeypatch.setattr(analysis, "fit_auto", fit_auto)
    with pytest.raises(Stop):
        discovery.run_one("sho", 0, discovery.parser().parse_args(argv))
    return seen


def test_the_table_scores_step_four_both_ways_when_the_rows_record_both():
    args = argparse.Namespace(trajectories=50, points=10, hidden=[64, 64], sym_samples=16,
                              extra=1, steps=2000, select_steps=500, criterion="conserved",
                              built_in=False, refit_learns=False,
                              start_directions="most-conserved", par=0.95)
    now = discovery.table([_row("hnn", False, True, 1500), _row("selected", True, True, 500)],
                          args)
    assert "| 0 (HNN kept) |" in now and "(HNN + 1500 steps)" in now
    assert "(HNN + 500 steps)" not in now  # the selection kept: its own −ELBO/N
    assert now.rstrip().endswith("| sho | 1/2 | 2/2 | 2/2 | 2/2 |")
    assert "returned fit's −ELBO/N below the step-1 HNN's" in now
    # rows recorded before the equal budget: the earlier summary, no further column
    before = discovery.table([_row("hnn", False), _row("selected", True)], args)
    assert before.rstrip().endswith("| sho | 1/2 | 2/2 | 2/2 |")
    assert "razor −ELBO/N below HNN's" in before and "HNN +" not in before


def test_the_table_scores_step_four_with_more_symmetry_samples_per_key():
    args = argparse.Namespace(trajectories=50, points=10, hidden=[64, 64], sym_samples=16,
                              extra=1, steps=2000, select_steps=500, criterion="conserved",
                              built_in=False, refit_learns=False,
                              start_directions="most-conserved", par=0.95,
                              eval_sym_samples=[256])
    flipped = _row("hnn", False, True, 1500)
    flipped["step4_sym_samples"] = {"256": {"delta": 812.4, "se": 30.2, "kept": "selected",
                                            "ok": True}}
    held = _row("hnn", False, True, 1500)
    held["step4_sym_samples"] = {"256": {"delta": -90.0, "se": 10.0, "kept": "hnn",
                                         "ok": False}}
    text = discovery.table([flipped, held, _row("selected", True, True, 500)], args)
    # the third row recorded no comparison at 256: it counts as at S = 16 (right)
    assert text.rstrip().endswith("| sho | 256 | 2/3 | +812 ± 30, -90 ± 10, – |")
    # without the option the table has no such section
    del args.eval_sym_samples
    assert "| S |" not in discovery.table([flipped], args)
    # with the selection's comparisons at S' the caption says at which S the columns are
    assert "comparisons with" not in discovery.table([flipped], args)
    args.evidence_samples = 256
    assert ("the selection's and step 4's ELBO comparisons with 256 symmetry samples (the "
            "−ELBO/N columns at the models' S = 16)") in discovery.table([flipped], args)


def test_the_benchmark_runs_the_packages_rule_and_reads_older_records_as_theirs():
    """The benchmark's defaults are the package's (``select_conserved``'s ``stop``,
    ``fit_auto``'s ``symmetrised_hnn``); ``--stop conserved --no-symmetrised-hnn`` is the
    earlier rule, and a record written before the two settings existed counts as that rule on
    ``--resume`` and ``--rebuild`` (its table does not claim either)."""
    import inspect

    from noether_ppl import analysis
    from noether_ppl.inference import select_conserved

    p = discovery.parser()
    args = p.parse_args([])
    assert args.stop == inspect.signature(select_conserved).parameters["stop"].default
    assert args.symmetrised_hnn is \
        inspect.signature(analysis.fit_auto).parameters["symmetrised_hnn"].default
    earlier = p.parse_args(["--stop", "conserved", "--no-symmetrised-hnn"])
    assert (earlier.stop, earlier.symmetrised_hnn) == ("conserved", False)
    assert {k: discovery.LEGACY_SETTINGS[k] for k in ("stop", "symmetrised_hnn")} == \
        {"stop": "conserved", "symmetrised_hnn": False}
    old = argparse.Namespace(**{k: v for k, v in vars(args).items()
                                if k not in ("stop", "symmetrised_hnn")})
    assert "spectrum reads" not in discovery.table([_row("selected", True)], old)
    assert "selected symmetry fixed" not in discovery.table([_row("selected", True)], old)
    now = discovery.table([_row("selected", True)], args)
    assert "spectrum reads" in now and "selected symmetry fixed" in now


def test_the_symmetrised_hnn_is_counted_per_system_where_it_was_fitted():
    import discovery_compare

    def row(system, key, delta, kept):
        return {"system": system, "key": key, "razor_kept": kept,
                "symmetrised_vs_selected": None if delta is None else {"delta": delta, "se": 1.0}}

    rows = [row("osc", 0, 12.0, "hnn-symmetrised"), row("osc", 1, -3.0, "selected"),
            row("osc", 2, None, "hnn"), row("osc", 3, 5.0, "hnn"),
            row("plain", 0, None, "selected")]
    text = discovery_compare.symmetrised_counts(rows, "rec").strip().splitlines()
    assert text[0] == "Step 4's symmetrised HNN in rec:"
    assert text[-1] == "| osc | 4 | 3 | 2 | 1 |"  # a system where it never ran has no line
    stopped = [dict(row("osc", 0, None, "selected"), symmetrised_vs_selected={"stopped": {}})]
    assert discovery_compare.symmetrised_counts(stopped, "rec") == ""


PACKAGED_SUITE = sorted(set(systems.SUITE) - {"u2-noncanonical"})
"""Packaged experiments of suite systems, named as the suite names them: every suite system
but the one whose symplectic map an experiment file cannot name."""


def test_a_packaged_suite_experiment_holds_the_benchmarks_settings():
    """`noether-ppl fit NAME` runs what the benchmark measured for that system: its data, model,
    steps (``SYSTEM_STEPS``), the selection (``--auto``) and its learning rate."""
    import numpy as np

    from noether_ppl.experiments import load_experiment
    from noether_ppl.models import ModelSpec

    args = discovery.parser().parse_args([])
    for name in PACKAGED_SUITE:
        exp, system = load_experiment(name), systems.SUITE[name]()
        assert repr(exp.make_system()) == repr(system)
        train = {**system.split_settings("train"), "n_trajectories": args.trajectories,
                 "n_steps": args.points}
        assert exp.data["train"].simulate_kwargs() == train
        assert exp.data["test"].simulate_kwargs() == system.split_settings("test")
        L = system.generators().shape[0]
        K = discovery.n_conserved_of(args, L, system.phase_dim)
        assert exp.model == ModelSpec(hidden=tuple(args.hidden), n_conserved=K,
                                      sym_samples=args.sym_samples, measure="ball",
                                      measure_scale=float(np.pi))
        inf = exp.inference
        assert (inf.num_steps, inf.select_steps) == discovery.steps_of(name, args)
        assert (inf.lr, inf.lr_conserved, inf.batch_size) == (args.lr, args.lr_conserved,
                                                              args.batch_size)
        assert inf.select and inf.select_lr == args.lr / 3
        assert set(exp.variants) >= {"vanilla", "learned"}


def test_k_can_be_set_without_the_true_dimension():
    """``--n-conserved``: K = true + extra by default; ``phase`` (K = M, the phase-space
    dimension) or a number for every system, so that no setting knows a system's answer."""
    p = discovery.parser()
    default = p.parse_args(["--extra", "2"])
    assert default.n_conserved == "true"
    assert discovery.n_conserved_of(default, 7, 8) == 9
    assert discovery.k_text(default) == "K = true + 2"
    phase = p.parse_args(["--n-conserved", "phase"])
    assert discovery.n_conserved_of(phase, 7, 8) == 8
    assert discovery.n_conserved_of(phase, 1, 2) == 2
    assert discovery.n_conserved_of(phase, 6, 4) == 4  # below the truth: the spectrum reads on
    assert "phase-space dimension" in discovery.k_text(phase)
    fixed = p.parse_args(["--n-conserved", "3"])
    assert discovery.n_conserved_of(fixed, 9, 6) == 3 and "K = 3" in discovery.k_text(fixed)
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit):
            p.parse_args(["--n-conserved", bad])
    # a record written before the setting reads as K = true + 1 (resume and rebuild)
    assert discovery.LEGACY_SETTINGS["n_conserved"] == "true"


def test_the_likelihood_variance_is_the_packages_unless_set():
    """``--noise-variance``: σ² of every fit of the run (and ``--dt``, ``--integrator``,
    ``--substeps`` alike), the package's (the paper's) 1e-3 by
    default; the table names it only when it differs, so records without it read as theirs."""
    from noether_ppl import models

    p = discovery.parser()
    default = p.parse_args([])
    assert default.noise_variance == models.ModelSpec().noise_variance == 1e-3
    assert "σ²" not in discovery.table([_row("selected", True)], default)
    older = argparse.Namespace(**{k: v for k, v in vars(default).items()
                                  if k != "noise_variance"})
    assert discovery.table([_row("selected", True)], older) == \
        discovery.table([_row("selected", True)], default)
    wider = p.parse_args(["--noise-variance", "1e-2"])
    assert "σ² = 0.01," in discovery.table([_row("selected", True)], wider)
    # so are the data's Δt (the splits') and the likelihood mean (the package's)
    spec = models.ModelSpec()
    assert (default.dt, default.integrator, default.substeps) == \
        (None, spec.integrator, spec.substeps)
    finer = p.parse_args(["--dt", "0.05", "--integrator", "rk4", "--substeps", "2"])
    text = discovery.table([_row("selected", True)], finer)
    assert "Δt = 0.05, likelihood mean 2 x rk4," in text
    assert "Δt" not in discovery.table([_row("selected", True)], default)


def test_the_comparison_keeps_the_systems_asked_for(monkeypatch, capsys):
    import discovery_compare

    def row(system, key):
        return {"system": system, "key": key, "true_dim": 1, "K": 2, "razor_ok": True,
                "selection": {"dimension": 1}, "hnn_continued_steps": 100,
                "selected_minus_hnn_elbo": 5.0, "wall_s": 1.0}

    rows = [row("a", 0), row("b", 0)]
    monkeypatch.setattr(discovery_compare, "read_record", lambda topic: ("", {"rows": rows}, {}))
    assert discovery_compare.main(["x", "y", "--systems", "b"]) == 0
    body = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in body[1:]] == ["| b"]
    with pytest.raises(SystemExit):
        discovery_compare.main(["x", "y", "--systems", "c"])
    assert "['c'] are in none of the records" in capsys.readouterr().err


def test_two_records_side_by_side_count_the_keys_both_hold():
    import discovery_compare

    def row(system, key, K, ok, read, cont, delta):
        return {"system": system, "key": key, "true_dim": 2, "K": K, "razor_ok": ok,
                "selection": {"dimension": 2 if read else 3}, "hnn_continued_steps": cont,
                "selected_minus_hnn_elbo": delta, "wall_s": 10.0 * (key + 1)}

    a = [row("osc", 0, 4, True, True, 3000, 400.0), row("osc", 1, 4, False, True, 3500, -90.0),
         row("osc", 2, 4, True, True, 3000, 10.0), row("other", 0, 4, True, True, 0, None)]
    b = [row("osc", 0, 3, True, True, 2000, 900.0), row("osc", 1, 3, True, False, 2000, 300.0)]
    text = discovery_compare.compare(a, b, names=("phase", "true"))
    lines = text.strip().splitlines()
    assert lines[0].startswith("| system | true | K, phase | K, true | keys |")
    # key 2 and the system only one record holds are left out; medians of two keys
    assert lines[2] == ("| osc | 2 | 4 | 3 | 2 | 1 | 2 | 2 / 1 | 3250 / 2000 | 155 / 600 "
                        "| 15 / 15 |")
    assert len(lines) == 3
    # three records: one line per system and record, over the keys all three hold
    for r, mse in zip(a + b, (1e-3, 3e-3, 5e-3, 1e-3, 2e-3, 4e-3), strict=True):
        r["razor_test_mse"] = mse
    c = [dict(r, K=2, razor_test_mse=1e-4) for r in b]
    many = discovery_compare.compare_many([a, b, c], names=("phase", "true", "two")).strip()
    lines = many.splitlines()
    assert lines[0].startswith("| system | true | record | K | keys | right |")
    assert lines[2:] == ["| osc | 2 | phase | 4 | 2 | 1 | 2 | 3250 | 155 | 2.000e-03 | 15 |",
                         "| osc | 2 | true | 3 | 2 | 2 | 1 | 2000 | 600 | 3.000e-03 | 15 |",
                         "| osc | 2 | two | 2 | 2 | 2 | 1 | 2000 | 600 | 1.000e-04 | 15 |"]


def test_the_table_says_when_the_returned_fit_is_symmetrised_over_its_own_generators():
    """Where the selection's refit lost to the fit it read the quantities from, the row says
    over how many learned generators that returned fit is symmetrised, and how many of them
    lie outside the selected span (share below SELECTED_MIN_SHARE)."""
    args = argparse.Namespace(trajectories=50, points=10, hidden=[64, 64], sym_samples=16,
                              extra=1, steps=2000, select_steps=500, criterion="conserved",
                              built_in=False, refit_learns=False,
                              start_directions="most-conserved", par=0.95)
    before = _row("selected", False)
    before["selection"] = {"built_in": [{"sigma": 3.0, "share": 0.05, "residual": 0.04},
                                        {"sigma": 1.0, "share": 0.96, "residual": 0.02}]}
    refit = _row("selected", True)
    refit["selection"] = {"built_in": None}
    text = discovery.table([before, refit], args)
    lines = [line for line in text.splitlines() if line.startswith("| sho | 0 |")]
    assert "| 1 (fit over 2 learned, 1 outside) |" in lines[0]
    assert "fit over" not in lines[1]
    # a row whose step 4 kept the plain HNN returns no razor fit: nothing to say
    hnn = _row("hnn", False)
    hnn["selection"] = before["selection"]
    assert "fit over" not in discovery.table([hnn], args)


def test_the_spectrum_directions_are_scored_against_the_true_span():
    """``spectrum_scores``: a recorded spectrum whose first L directions span the true span
    (mixed within it) scores parallelness 1 and shares 1, a direction orthogonal to the true
    span shares 0; one true direction swapped for that one scores parallelness 0. The
    extension's section prints each candidate's share and that parallelness."""
    import numpy as np

    truth = systems.SUITE["anisotropic-1-2"]().generators()  # L = 2, M = 4
    T = truth.reshape(2, -1) / np.linalg.norm(truth.reshape(2, -1), axis=1, keepdims=True)
    mixed = np.array([[1.0, 1.0], [1.0, -0.5]]) @ T
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    outside = np.random.default_rng(0).normal(size=T.shape[1])
    outside -= T.T @ np.linalg.lstsq(T.T, outside, rcond=None)[0]  # orthogonal to the truth
    outside /= np.linalg.norm(outside)
    S = np.concatenate([mixed, outside[None]]).reshape(3, 5, 5)
    steps = [{"reason": "spectrum", "spectrum_directions": S.tolist()}]
    got = discovery.spectrum_scores(steps, truth)
    np.testing.assert_allclose(got["spectrum_true_shares"], [1.0, 1.0, 0.0], atol=1e-12)
    assert got["spectrum_first_true_par"] == pytest.approx(1.0, abs=1e-12)
    swapped = discovery.spectrum_scores(
        [{"spectrum_directions": S[[0, 2, 1]].tolist()}], truth)
    assert swapped["spectrum_first_true_par"] == pytest.approx(0.0, abs=1e-12)
    assert discovery.spectrum_scores([{"reason": "spectrum"}], truth) == {}
    assert discovery.spectrum_scores(steps, truth[:0]) == {}
    args = argparse.Namespace(trajectories=50, points=10, hidden=[64, 64], sym_samples=16,
                              extra=1, steps=2000, select_steps=500, criterion="conserved",
                              built_in=False, refit_learns=False,
                              start_directions="most-conserved", par=0.95, extend=True)
    row = {**_row("selected", True), "true_dim": 2, **swapped,
           "selection": {"steps": [{"selected": 1, "extended": [
               {"spectrum_selected": 2, "delta_vs_chosen": -50.0, "se": 5.0,
                "chosen": False}]}]}}
    line = discovery.table([row], args).rstrip().splitlines()[-1]
    assert line == "| sho | 0 | 2 | 1 | 2: -50 ± 5 ✗ (0.00) | 1 | 0.000 |"


def test_a_direction_the_extension_read_off_its_refit_is_scored_from_that_spectrum():
    """``refit_from="fresh"``: each ``extended`` entry records the spectrum it read; the
    candidate (its ``spectrum_selected``-th direction) is scored from that spectrum, not from
    the first one, and the extension's section prints that share."""
    import numpy as np

    truth = systems.SUITE["anisotropic-1-2"]().generators()  # L = 2, M = 4
    T = truth.reshape(2, -1) / np.linalg.norm(truth.reshape(2, -1), axis=1, keepdims=True)
    outside = np.random.default_rng(1).normal(size=T.shape[1])
    outside -= T.T @ np.linalg.lstsq(T.T, outside, rcond=None)[0]
    outside /= np.linalg.norm(outside)
    first = np.stack([T[0], outside, T[1]]).reshape(3, 5, 5)  # its 2nd is not in the span
    again = np.stack([T[0], T[1], outside]).reshape(3, 5, 5)  # its 2nd is
    steps = [{"selected": 2, "spectrum_directions": first.tolist(), "extended": [
        {"spectrum_selected": 2, "selected": 2, "delta_vs_chosen": 40.0, "se": 5.0,
         "chosen": True, "spectrum_directions": again.tolist()},
        {"spectrum_selected": 3, "selected": 3, "delta_vs_chosen": -9.0, "se": 5.0,
         "chosen": False, "spectrum_directions": again.tolist()}]}]
    got = discovery.spectrum_scores(steps, truth)
    np.testing.assert_allclose(got["spectrum_true_shares"], [1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(got["extended_true_shares"], [1.0, 0.0], atol=1e-12)
    args = argparse.Namespace(trajectories=50, points=10, hidden=[64, 64], sym_samples=16,
                              extra=1, steps=2000, select_steps=500, criterion="conserved",
                              built_in=False, refit_learns=False,
                              start_directions="most-conserved", par=0.95, extend=True,
                              refit_from="fresh")
    row = {**_row("selected", True), "true_dim": 2, **got, "selection": {"steps": steps}}
    text = discovery.table([row], args)
    assert "refit_from fresh" in text
    assert text.rstrip().splitlines()[-1] == (
        "| sho | 0 | 2 | 1 | 2: +40 ± 5 ✓ (1.00), 3: -9 ± 5 ✗ (0.00) | 2 | 0.000 |")
    # without directions of their own, the shares are the first spectrum's, as before
    plain = discovery.spectrum_scores([{**steps[0], "extended": [
        {k: v for k, v in e.items() if k != "spectrum_directions"}
        for e in steps[0]["extended"]]}], truth)
    assert "extended_true_shares" not in plain


def test_refit_sizes_reach_the_selection_and_the_table_names_each_refits_size(monkeypatch):
    """``--refit-sizes 1 2``: ``select_conserved`` gets ``refit_sizes=(1.0, 2.0)``; the
    extension's section prints the multiple the ELBO chose for the refit at the cut and for
    each refit at one direction more; repeated or non-positive multiples are refused."""
    argv = ["--systems", "sho", "--keys", "0", "--steps", "1", "--extend", "--refit-sizes",
            "1", "2"]
    seen = _select_kwargs(monkeypatch, argv)
    args = discovery.parser().parse_args(argv)
    assert seen["refit_sizes"] == (1.0, 2.0) and seen["extend"] is True
    steps = [{"selected": 1, "size_factor": 2.0, "extended": [
        {"spectrum_selected": 2, "delta_vs_chosen": -50.0, "se": 5.0, "chosen": False,
         "size_factor": 1.0}]}]
    row = {**_row("selected", True), "selection": {"steps": steps}}
    text = discovery.table([row], args)
    assert "(refit_sizes)" in text
    assert text.rstrip().splitlines()[-1] == "| sho | 0 | 1 | 1 ×2 | 2: -50 ± 5 ✗ ×1 | 1 | – |"
    for bad in (["1", "1"], ["1", "0"]):
        with pytest.raises(SystemExit):
            discovery.main(["--systems", "sho", "--refit-sizes", *bad, "--topic", "x"])


def test_refit_lr_conserved_reaches_the_selection_and_needs_refit_learns(monkeypatch):
    """``--refit-learns --refit-lr-conserved 1e-4``: ``select_conserved`` gets
    ``refit_lr_conserved=1e-4`` beside the fit's own ``lr_conserved``, and the caption says the
    rate; without ``--refit-learns``, or not positive, it is refused before any fit."""
    plain = ["--systems", "sho", "--keys", "0", "--steps", "1"]
    argv = [*plain, "--refit-learns", "--lr-conserved", "1e-3", "--refit-lr-conserved", "1e-4"]
    seen = _select_kwargs(monkeypatch, argv)
    assert seen["refit_learns"] is True and seen["refit_lr_conserved"] == 1e-4
    assert "the refit goes on learning the selected quantities at lr_conserved 0.0001" in (
        discovery.table([_row("selected", True)], discovery.parser().parse_args(argv)))
    assert "refit_lr_conserved" not in _select_kwargs(monkeypatch, plain)
    for bad in (["--refit-lr-conserved", "1e-4"],
                ["--refit-learns", "--refit-lr-conserved", "0"],
                ["--refit-learns", "--refit-lr-conserved", "nan"]):
        with pytest.raises(SystemExit):
            discovery.main(["--systems", "sho", *bad, "--topic", "x"])


def test_one_refit_size_is_named_as_a_fixed_multiple_not_a_choice():
    """``--refit-sizes 2``: every refit at twice the median σ; the caption says so and claims
    no choice by the ELBO (there is none to make with one multiple)."""
    args = discovery.parser().parse_args(["--systems", "sho", "--keys", "0", "--extend",
                                          "--refit-sizes", "2"])
    steps = [{"selected": 1, "extended": [
        {"spectrum_selected": 2, "delta_vs_chosen": -50.0, "se": 5.0, "chosen": False}]}]
    text = discovery.table([{**_row("selected", True), "selection": {"steps": steps}}], args)
    assert "each refit at 2 times the learned generators' median σ (refit_sizes)" in text
    assert "chosen by the ELBO" not in text and "×f:" not in text
    assert text.rstrip().splitlines()[-1] == "| sho | 0 | 1 | 1 | 2: -50 ± 5 ✗ | 1 | – |"


def test_close_reaches_the_selection_and_the_table_scores_what_it_added(monkeypatch):
    """``--close``: ``select_conserved`` gets ``close=True``; the caption says so; the
    closure's section prints the span before it, the brackets' parts, the residuals of the
    candidates, the closed refit against the chosen one and the dimension selected; the added
    directions are scored against the true span (``closed_true_shares``, scoring only)."""
    import numpy as np

    from noether_ppl import systems

    argv = ["--systems", "sho", "--keys", "0", "--steps", "1"]
    assert _select_kwargs(monkeypatch, [*argv, "--close"])["close"] is True
    assert "close" not in _select_kwargs(monkeypatch, argv)
    p = discovery.parser()
    args = p.parse_args([*argv, "--close"])
    truth = systems.SUITE["two-body-2d"]().generators()
    inside = truth[1] / np.linalg.norm(truth[1])
    steps = [{"selected": 2, "spectrum_directions": truth[:3].tolist(), "closed": {
        "from": 1, "rounds": [{"singular_values": [0.57, 0.1], "residuals": [0.01],
                               "added": 1}, {"singular_values": [0.0]}],
        "directions": [inside.tolist()], "selected": 2, "delta": -3.0, "se": 27.0,
        "kept": True}}]
    scores = discovery.spectrum_scores(steps, truth)
    assert scores["closed_true_shares"] == pytest.approx([1.0])
    row = {**_row("selected", True), **scores, "selection": {"steps": steps}}
    text = discovery.table([row], args)
    assert "the selected span closed under the Lie bracket" in text
    assert text.rstrip().splitlines()[-1] == (
        "| sho | 0 | 1 | 1 | 0.57, 0.10 | 0.010 | 2: -3 ± 27 ✓ (1.00) | 2 |")
    assert "closed under the Lie bracket" not in discovery.table(
        [_row("selected", True)], p.parse_args(["--systems", "sho"]))
