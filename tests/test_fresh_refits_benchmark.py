"""``benchmarks/fresh_refits.py``: the extension's refits at D and D + 1 fitted from a fresh
start at the directions a discovery record read."""

import argparse
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import discovery  # noqa: E402
import fresh_refits  # noqa: E402

from noether_ppl import inference, models, systems  # noqa: E402
from noether_ppl.geometry import span_basis  # noqa: E402

SETTINGS = {"trajectories": 3, "points": 3, "dt": 0.2, "hidden": [8], "sym_samples": 4,
            "noise_variance": 1e-3, "integrator": "rk4", "substeps": 1,
            "mc_likelihood": "plug-in", "mc_groups": 2, "lr": 3e-3, "batch_size": 3,
            "steps": 3, "refit_steps": 2, "extend": True}


def sho_row(key: int = 0) -> dict:
    """A discovery row of the oscillator whose completion cut at 1 and refused a 2nd
    direction: its first three spectrum directions are unit quadratic generators
    ``[[J A, J b], [0, 0]]`` (Eq. 4) of random symmetric A and b."""
    rng = np.random.default_rng(key)
    J = np.array([[0.0, 1.0], [-1.0, 0.0]])
    directions = np.zeros((3, 3, 3))
    for G in directions:
        A = rng.normal(size=(2, 2))
        G[:2, :2], G[:2, 2] = J @ (A + A.T), J @ rng.normal(size=2)
    directions /= np.linalg.norm(directions.reshape(3, -1), axis=1)[:, None, None]
    step = {"reason": "spectrum", "spectrum_directions": directions.tolist(), "size": 0.8,
            "kept": "before", "neg_elbo_per_n_selected": -1.5,
            "extended": [{"spectrum_selected": 2, "selected": 2, "delta_vs_chosen": -40.0,
                          "se": 5.0, "neg_elbo_per_n": -1.2, "chosen": False}]}
    return {"system": "sho", "key": key, "selection": {"steps": [step]},
            "spectrum_true_shares": [0.99, 0.30, 0.10]}


def test_read_cut_is_the_records_cut_its_directions_and_its_continued_refits():
    got = fresh_refits.read_cut(sho_row())
    assert got["cut"] == 1 and got["directions"].shape == (3, 3, 3) and got["size"] == 0.8
    # the completion's refit at the cut is recorded whichever fit it kept
    assert got["at_cut"] == {"neg_elbo_per_n": -1.5}
    assert got["one_more"] == {"neg_elbo_per_n": -1.2, "delta": -40.0, "se": 5.0}
    plain = sho_row()
    del plain["selection"]["steps"][0]["extended"]
    with pytest.raises(ValueError, match="no extension"):
        fresh_refits.read_cut(plain)
    shifted = sho_row()
    shifted["selection"]["steps"][0]["extended"][0]["spectrum_selected"] = 3
    with pytest.raises(ValueError, match="not one past the cut 1"):
        fresh_refits.read_cut(shifted)


@pytest.mark.slow
def test_a_row_is_two_fresh_fits_at_the_first_directions_and_their_paired_elbo_difference():
    """By hand: the same data, fit key and fixed generators give the same fits, so the row's
    differences are the paired ELBO differences of fits made here (with ``true``, also the
    fit at the oscillator's SO(2) at the same size; with ``reread``, the fit at the first two
    directions of the spectrum of the fit at D)."""
    row = sho_row()
    args = argparse.Namespace(steps=3, evidence_samples=8, num_repeats=2, true=True,
                              size_scale=2.0, fits=["one-more", "reread", "reread-learned"],
                              spectrum_samples=8, lr_conserved=1e-2)
    got = fresh_refits.run_one(row, SETTINGS, args)
    system = systems.PAPER["sho"]()
    train = discovery.train_data(system, 0, trajectories=3, points=3, dt=0.2)
    spec = models.ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, measure="ball",
                            measure_scale=float(np.pi), noise_variance=1e-3, integrator="rk4",
                            substeps=1)
    S = np.asarray(row["selection"]["steps"][0]["spectrum_directions"])
    k_fit = jax.random.fold_in(jax.random.key(0), fresh_refits.FIT_FOLD)
    fits = {}
    for d, directions in ((1, S[:1]), (2, S[:2]), ("true", system.generators())):
        G = 1.6 * span_basis(np.asarray(directions)).reshape(-1, 3, 3)  # 2 x size
        fits[d] = inference.fit(fresh_refits.fixed_model(spec, G, 2), train, key=k_fit,
                                num_steps=3, lr=3e-3, batch_size=3, progress_bar=False)
        np.testing.assert_allclose(fits[d].generators(), G, atol=1e-6)  # held fixed
    d, se, est_2, est_1 = inference.elbo_difference(fits[2], fits[1], train,
                                                    key=jax.random.key(9), num_repeats=2,
                                                    sym_samples=8)
    fresh = got["fresh"]
    assert fresh["one_more"]["delta"] == pytest.approx(d, rel=1e-5)
    assert fresh["one_more"]["se"] == pytest.approx(se, rel=1e-5)
    assert fresh["at_cut"]["neg_elbo_per_n"] == pytest.approx(est_1.neg_elbo_per_n, rel=1e-5)
    assert fresh["one_more"]["chosen"] == bool(d > 1.0 + 2.0 * se)
    d_t, se_t, est_t, _ = inference.elbo_difference(fits["true"], fits[1], train,
                                                    key=jax.random.key(9), num_repeats=2,
                                                    sym_samples=8)
    assert fresh["true"]["delta"] == pytest.approx(d_t, rel=1e-5)
    assert fresh["true"]["neg_elbo_per_n"] == pytest.approx(est_t.neg_elbo_per_n, rel=1e-5)
    x = np.asarray(train.states, np.float64).reshape(-1, 2)
    _, S2 = inference.conservation_spectrum(fits[1].with_sym_samples(8), x,
                                            key=jax.random.key(11))
    G2 = 1.6 * span_basis(np.asarray(S2[:2])).reshape(-1, 3, 3)
    again = inference.fit(fresh_refits.fixed_model(spec, G2, 2), train, key=k_fit,
                          num_steps=3, lr=3e-3, batch_size=3, progress_bar=False)
    d_r, _, _, _ = inference.elbo_difference(again, fits[1], train, key=jax.random.key(9),
                                             num_repeats=2, sym_samples=8)
    assert fresh["reread"]["delta"] == pytest.approx(d_r, rel=1e-5)
    assert 0.0 <= fresh["reread"]["share"] <= 1.0 + 1e-9
    # the same two directions as the start of a fit that learns them
    learner = models.NoetherRazor(spec.replace(n_conserved=2), phase_dim=2)
    init = models.conserved_init.conserved_params_from_generators(
        G2, 2, key=k_fit, scale=1.0, dtype=learner.dtype)
    learned = inference.fit(learner, train, key=k_fit, num_steps=3, lr=3e-3, batch_size=3,
                            progress_bar=False, init_params=init, lr_conserved=1e-2)
    assert not np.allclose(learned.generators(), G2, atol=1e-6)  # η moved
    d_l, _, _, _ = inference.elbo_difference(learned, fits[1], train, key=jax.random.key(9),
                                             num_repeats=2, sym_samples=8)
    assert fresh["reread_learned"]["delta"] == pytest.approx(d_l, rel=1e-5)
    np.testing.assert_allclose(
        fresh["reread_learned"]["sigma"],
        np.linalg.svd(learned.generators().reshape(2, -1), compute_uv=False), rtol=1e-5)
    assert got["record_first_par"] is None  # D + 1 = 2 is not the true dimension 1
    # --fits in order, then --true
    assert list(fresh) == ["at_cut", "one_more", "reread", "reread_learned", "true"]
    assert got["cut"] == 1 and got["share_one_more"] == 0.30 and got["true_dim"] == 1
    assert got["size"] == pytest.approx(1.6)
    assert got["continuation"]["one_more"]["delta"] == -40.0


def test_table_counts_kept_directions_inside_and_outside_the_true_span():
    args = argparse.Namespace(source="discovery-x", source_settings={**SETTINGS, "steps": 16},
                              steps=16, num_repeats=32, evidence_samples=256, par=0.95)

    def row(key, share, delta, se):
        return {"key": key, "cut": 6, "share_one_more": share, "stopped": [],
                "fit_s_6": 10.0, "fit_s_7": 12.0, "test_mse_6": 1e-2, "test_mse_7": 2e-2,
                "fresh": {"at_cut": {"neg_elbo_per_n": -2.0},
                          "one_more": {"neg_elbo_per_n": -2.5, "delta": delta, "se": se,
                                       "chosen": delta > 1.0 + 2.0 * se}},
                "continuation": {"at_cut": {"neg_elbo_per_n": -1.0},
                                 "one_more": {"neg_elbo_per_n": -0.5, "delta": -379.0,
                                              "se": 36.0}}}

    rows = [row(1, 0.99, 120.0, 20.0), row(2, 0.99, 10.0, 20.0), row(4, 0.25, -50.0, 10.0)]
    text = fresh_refits.table(rows, args)
    assert ("| 1 | 6 | 0.99 | -2.00 / -1.00 | -2.50 / -0.50 | +120 ± 20 ✓ | -379 ± 36 | "
            "1.000e-02 / 2.000e-02 | 22 | – |") in text
    assert "+10 ± 20 ✗" in text
    assert "or that these fits read (at its refits' size, orthonormal)" in text
    args.size_scale = 3.0
    assert "(at 3 times its refits' size, orthonormal)" in fresh_refits.table(rows, args)
    assert ("kept on 1/2 keys where it lies in the true span (share > 0.95) and on 0/1 "
            "where it does not.") in text
    assert "true span" not in text.split("does not.")[1]  # no diagnostic without --true
    rows[0]["true_dim"], rows[0]["test_mse_true"] = 7, 3e-2
    rows[0]["fresh"]["true"] = {"neg_elbo_per_n": -2.3, "delta": 135.0, "se": 30.0,
                                "chosen": True}
    text = fresh_refits.table(rows, args)
    assert "| 1 | 7 | -2.30 | +135 ± 30 ✓ | 3.000e-02 |" in text
    assert text.count("| 7 | -2.") == 1  # only the row with the diagnostic
    # read again from the fit at D: its own table, the first one only for rows that have it
    args.spectrum_samples = 256
    rows[2]["fresh"] = {"at_cut": {"neg_elbo_per_n": -2.0},
                        "reread": {"neg_elbo_per_n": -2.6, "delta": 60.0, "se": 10.0,
                                   "chosen": True, "cut": 7, "gap_ratio": 3.5,
                                   "share": 0.991, "first_par": 0.993}}
    rows[2]["test_mse_reread"], rows[2]["record_first_par"] = 1.5e-2, 0.965
    text = fresh_refits.table(rows, args)
    assert ("| 4 | 6 | 7 (3.5) | 0.991 | 0.993 (0.965) | -2.00 / -2.60 | +60 ± 10 ✓ | "
            "1.000e-02 / 1.500e-02 | 22 |") in text
    assert "| 4 | 6 | 0.25 |" not in text and "on 0/0 where it does not" in text


@pytest.mark.slow  # the command line end to end, twice (four tiny fits and their compilations)
def test_main_reads_the_source_record_and_writes_its_own_after_each_key(tmp_path,
                                                                         monkeypatch, capsys):
    """The command line end to end on a source record of tiny settings: ``--fits reread``
    alone (no fit at D + 1), the progress line per key, the record, and ``--resume``."""
    import json

    import record

    monkeypatch.setattr(record, "RECORDS", tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "metrics.json").write_text(
        json.dumps({"settings": {**SETTINGS, "spectrum_samples": 8, "evidence_samples": 8},
                    "rows": [sho_row(0)]}))
    (tmp_path / "src" / "table.md").write_text("")
    (tmp_path / "src" / "record.json").write_text(json.dumps({"command": "x", "wall_s": 1}))
    argv = ["--source", "src", "--fits", "reread", "--num-repeats", "2", "--topic", "out"]
    assert fresh_refits.main(argv) == 0
    assert "key 0: reread − D " in capsys.readouterr().out
    rows = json.loads((tmp_path / "out" / "metrics.json").read_text())["rows"]
    assert [r["key"] for r in rows] == [0] and set(rows[0]["fresh"]) == {"at_cut", "reread"}
    assert "Read again" in (tmp_path / "out" / "table.md").read_text()
    before = (tmp_path / "out" / "record.json").read_text()
    assert fresh_refits.main([*argv, "--resume"]) == 0  # nothing left to fit: no rewrite
    assert (tmp_path / "out" / "record.json").read_text() == before
    with pytest.raises(SystemExit):  # another setting than the record's
        fresh_refits.main([*argv, "--resume", "--steps", "5"])
    with pytest.raises(SystemExit):
        fresh_refits.main(["--source", "missing", "--topic", "out"])


def test_sizes_fit_each_at_each_multiple_and_keep_the_elbos_choice(monkeypatch):
    """``--sizes 1 2``: each fresh fit (at D, at D + 1) is made at both multiples of the size
    from the same fit key, and the one kept is the package's rule's choice
    (``choose_size``: the second where its difference against the first is above 1 plus
    twice its standard error, set here by hand); the comparison at D + 1 is between the fits
    chosen, and the table names each choice."""
    from types import SimpleNamespace

    made = []  # (K, generator norm / size, key) of each fit

    def stand_in_fit(model, train, *, key, **kwargs):
        G = np.asarray(model.fixed_generators)
        made.append((G.shape[0], float(np.linalg.norm(G[0])) / 0.8, key))
        return SimpleNamespace(K=G.shape[0], factor=made[-1][1])

    # the difference a − b: +10 ± 1 for x2 over x1 at D; +1 ± 1 at D + 1 (x1 kept); then the
    # comparison of D + 1 (x1) with D (x2)
    def stand_in_difference(a, b, data, *, key, num_repeats, sym_samples):
        d = {(1, 2.0, 1, 1.0): 10.0, (2, 2.0, 2, 1.0): 1.0}.get(
            (a.K, round(a.factor, 9), b.K, round(b.factor, 9)), -7.0)
        est = SimpleNamespace(neg_elbo_per_n=-a.factor)
        return d, 1.0, est, SimpleNamespace(neg_elbo_per_n=-b.factor)

    monkeypatch.setattr(fresh_refits, "fit", stand_in_fit)
    monkeypatch.setattr(fresh_refits, "elbo_difference", stand_in_difference)
    monkeypatch.setattr(fresh_refits.analysis, "one_step_mse", lambda *a, **k: 1e-3)
    args = argparse.Namespace(steps=3, evidence_samples=8, num_repeats=2, true=False,
                              size_scale=1.0, sizes=[1.0, 2.0], fits=["one-more"],
                              spectrum_samples=8, par=0.95)
    got = fresh_refits.run_one(sho_row(), SETTINGS, args)
    assert [(K, round(f, 9)) for K, f, _ in made] == [(1, 1.0), (1, 2.0), (2, 1.0), (2, 2.0)]
    assert len({str(jax.random.key_data(k)) for _, _, k in made}) == 1  # one fresh start
    assert got["sizes_1"]["size_factor"] == 2.0 and got["sizes_2"]["size_factor"] == 1.0
    assert [t.get("chosen") for t in got["sizes_2"]["size_trials"]] == [None, False]
    assert got["fresh"]["one_more"]["delta"] == -7.0  # D + 1 at x1 against D at x2
    assert got["fresh"]["at_cut"]["neg_elbo_per_n"] == pytest.approx(-2.0)
    text = fresh_refits.table([got], argparse.Namespace(
        **vars(args), source="discovery-x", source_settings=SETTINGS))
    assert "1, 2 times its refits' size, the ELBO choosing" in text
    assert "| 0 | 1 | ×2 | ×1: -1.00, ×2: -2.00 (+10 ± 1 ✓) |" in text
    assert "| 0 | 2 | ×1 | ×1: -1.00, ×2: -2.00 (+1 ± 1 ✗) |" in text


def test_reread_learned_starts_eta_at_the_directions_read_again_and_learns_them(monkeypatch):
    """``--fits reread reread-learned``: the spectrum of the fit at D is read once; the
    learned fit is the razor with K = D + 1 *learned* generators, η initialised (Eq. 4
    inverted) at the size times an orthonormal basis of the first D + 1 directions read, at
    ``--lr-conserved``, from the same fit key; the row scores the learned span (its
    parallelness to the true span, each direction's, and its cosine to the span read) and the
    table prints it."""
    from types import SimpleNamespace

    from noether_ppl.inference.conservation import principal_generators

    made, read = [], []
    S2 = np.asarray(sho_row(3)["selection"]["steps"][0]["spectrum_directions"])
    moved = np.stack([S2[0], S2[1] + 0.3 * S2[2]])  # what "learning" gives: tilted to the third

    def stand_in_fit(model, train, *, key, **kwargs):
        learned = model.fixed_generators is None
        init = kwargs.get("init_params")
        made.append({"K": model.n_conserved, "learned": learned, "key": key,
                     "lr_conserved": kwargs.get("lr_conserved"), "init": init})
        G = 0.8 * span_basis(moved).reshape(-1, 3, 3) if learned else model.fixed_generators
        fitted = SimpleNamespace(K=model.n_conserved, learned=learned,
                                 generators=lambda: np.asarray(G))
        fitted.with_sym_samples = lambda S: read.append(S) or fitted
        return fitted

    def stand_in_difference(a, b, data, *, key, num_repeats, sym_samples):
        d = 30.0 if a.learned else -5.0
        return (d, 10.0, SimpleNamespace(neg_elbo_per_n=-a.K - a.learned),
                SimpleNamespace(neg_elbo_per_n=-b.K))

    monkeypatch.setattr(fresh_refits, "fit", stand_in_fit)
    monkeypatch.setattr(fresh_refits, "elbo_difference", stand_in_difference)
    monkeypatch.setattr(fresh_refits, "conservation_spectrum",
                        lambda fitted, x, *, key: (np.array([1e-4, 2e-4, 0.5]), S2))
    monkeypatch.setattr(fresh_refits.analysis, "one_step_mse", lambda *a, **k: 1e-3)
    args = argparse.Namespace(steps=3, evidence_samples=8, num_repeats=2, true=False,
                              size_scale=1.0, fits=["reread", "reread-learned"],
                              spectrum_samples=8, par=0.95, lr_conserved=2e-3)
    got = fresh_refits.run_one(sho_row(), SETTINGS, args)
    assert read == [8]  # the spectrum read once, for both
    assert [(m["K"], m["learned"]) for m in made] == [(1, False), (2, False), (2, True)]
    assert len({str(jax.random.key_data(m["key"])) for m in made}) == 1  # one fresh start
    last = made[-1]
    assert last["lr_conserved"] == 2e-3 and made[1]["lr_conserved"] is None
    want = models.conserved_init.conserved_params_from_generators(
        0.8 * span_basis(S2[:2]).reshape(-1, 3, 3), 2, key=last["key"], scale=1.0,
        dtype=np.float32)
    for name, value in want.items():
        np.testing.assert_allclose(last["init"][name], value, atol=1e-6)
    g = got["fresh"]["reread_learned"]
    _, G = principal_generators(0.8 * span_basis(moved).reshape(-1, 3, 3))
    truth = systems.PAPER["sho"]().generators()
    assert g["pars"] == pytest.approx(
        fresh_refits.analysis.parallelness(G, truth).tolist())
    assert g["first_par"] is None and g["read_first_par"] is None  # true dimension 1, not 2
    # the span learned against the one read: the smaller cosine of their principal angles
    # (orthonormal bases by QR, the singular values of Q_aᵀ Q_b)
    q_read, q_moved = (np.linalg.qr(v.reshape(2, -1).T)[0] for v in (S2[:2], moved))
    assert g["moved"] == pytest.approx(
        np.linalg.svd(q_read.T @ q_moved, compute_uv=False).min(), rel=1e-6)
    assert g["moved"] < 0.99  # the tilt moved it
    assert g["delta"] == 30.0 and g["chosen"] and not got["fresh"]["reread"]["chosen"]
    assert g["sigma"] == pytest.approx([0.8, 0.8], rel=1e-6)
    text = fresh_refits.table([got], argparse.Namespace(
        **vars(args), source="discovery-x", source_settings=SETTINGS))
    assert "lr_conserved 0.002" in text
    assert (f"| 0 | 1 | – (–) | {min(g['pars']):.3f} | {g['moved']:.3f} | 0.8–0.8 | "
            "-1.00 / -3.00 | +30 ± 10 ✓ | 1.000e-03 / 1.000e-03 |") in text


def test_reread_learned_needs_a_positive_lr_conserved(tmp_path, monkeypatch, capsys):
    """``--fits reread-learned`` takes the source's ``lr_conserved`` unless given; none in the
    source and none given, or a rate that is not positive, is refused before any fit."""
    import json

    import record

    monkeypatch.setattr(record, "RECORDS", tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "metrics.json").write_text(
        json.dumps({"settings": SETTINGS, "rows": [sho_row(0)]}))
    (tmp_path / "src" / "table.md").write_text("")
    (tmp_path / "src" / "record.json").write_text(json.dumps({"command": "x", "wall_s": 1}))
    monkeypatch.setattr(fresh_refits, "run_one", lambda *a: pytest.fail("fitted"))
    argv = ["--source", "src", "--fits", "reread-learned"]
    for extra, words in (([], "the source records no lr_conserved"),
                         (["--lr-conserved", "0"], "expected a positive number, got 0.0"),
                         (["--lr-conserved", "nan"], "expected a positive number, got nan")):
        with pytest.raises(SystemExit):
            fresh_refits.main([*argv, *extra])
        assert words in capsys.readouterr().err
