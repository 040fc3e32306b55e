"""``benchmarks/symmetry_evidence.py`` (and ``henon_heiles_evidence.py``, its Hénon–Heiles
form): the U(2) model symmetrises over the four directions that Hénon–Heiles' quadratic part
conserves and its cubic part breaks, other systems' over their true generators, and the table
counts per key."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import symmetry_evidence as se  # noqa: E402

from noether_ppl import geometry, systems  # noqa: E402
from noether_ppl.precision import float64  # noqa: E402


def test_u2_model_symmetrises_over_what_the_quadratic_part_conserves_and_the_cubic_breaks():
    hnn, u2 = se.model("hnn", 1e-3), se.model("symmetric", 1e-3)
    assert hnn.n_conserved == 0 and hnn.fixed_generators is None
    G = np.asarray(u2.fixed_generators, np.float64)
    assert G.shape == (4, 5, 5) and u2.n_conserved == 4
    assert np.linalg.matrix_rank(G.reshape(4, -1), tol=1e-9) == 4
    hh = systems.SUITE["henon-heiles"]()
    x = np.random.default_rng(0).normal(size=(64, 4)) * 0.3
    with float64():
        A, b = geometry.quadratic_from_generator(jnp.asarray(G))
        quadratic_part = lambda y: 0.5 * jnp.dot(y, y)  # noqa: E731
        for k in range(4):
            C = lambda y, k=k: geometry.quadratic_observable(A[k], b[k], y)  # noqa: E731
            kept = jax.vmap(geometry.poisson_bracket(C, quadratic_part))(jnp.asarray(x))
            broken = jax.vmap(geometry.poisson_bracket(C, hh.hamiltonian))(jnp.asarray(x))
            assert float(jnp.max(jnp.abs(kept))) < 1e-12
            assert float(jnp.max(jnp.abs(broken))) > 1e-3


def test_table_counts_each_key_once_per_setting():
    class Args:
        keys, steps, noise_variances = [0, 1], [10], [1e-3]
        trajectories, points, lr, batch_size, measure_scale = 50, 10, 3e-3, 10, np.pi
        energy_fraction, system = None, "henon-heiles"
        sym_samples, eval_sym_samples, hidden, prior_variance = 16, [], [64, 64], "optimal"

    def row(key, name, elbo, mse):
        return {"key": key, "noise_variance": 1e-3, "steps": 10, "model": name,
                "neg_elbo_per_n": elbo, "neg_elbo_se_per_n": 0.1, "kl_per_n": 1.0,
                "nll_per_n": elbo - 1.0, "test_mse": mse}

    rows = [row(0, "hnn", 5.0, 1e-4), row(0, "symmetric", 4.0, 2e-4),
            row(1, "hnn", 3.0, 3e-4), row(1, "symmetric", 4.0, 2e-4)]
    text = se.table(rows, Args)
    summary = [line for line in text.splitlines() if line.startswith("| 0.001 | 10 | ")][0]
    cells = [c.strip() for c in summary.strip("|").split("|")]
    assert cells[4] == "1/2"  # U(2)'s −ELBO/N lower on key 0 only
    assert cells[11] == "1/2"  # the HNN's test MSE lower on key 0 only
    assert "| 0.001 | 10 | 1 | 3.00 ± 0.10; 3.00e-04 | 4.00 ± 0.10; 2.00e-04 |" in text


def test_the_fits_evaluated_with_more_samples_are_counted_against_the_hnn_per_s():
    class Args:
        keys, steps, noise_variances = [0, 1], [10], [1e-3]
        trajectories, points, lr, batch_size, measure_scale = 50, 10, 3e-3, 10, np.pi
        energy_fraction, system = None, "two-body-2d"
        sym_samples, eval_sym_samples, hidden, prior_variance = 16, [64], [64, 64], "optimal"

    def row(key, name, elbo, elbo_64=None):
        r = {"key": key, "noise_variance": 1e-3, "steps": 10, "model": name,
             "neg_elbo_per_n": elbo, "neg_elbo_se_per_n": 0.1, "kl_per_n": 1.0,
             "nll_per_n": elbo - 1.0, "test_mse": 1e-3}
        if elbo_64 is not None:
            r["eval_sym_samples"] = {"64": {"neg_elbo_per_n": elbo_64, "kl_per_n": 1.0,
                                            "nll_per_n": elbo_64 - 1.0}}
        return r

    # the symmetric fits lose at S = 16 on both keys, win at S = 64 on key 1 only
    rows = [row(0, "hnn", 5.0), row(0, "symmetric", 6.0, 5.5),
            row(1, "hnn", 3.0), row(1, "symmetric", 4.0, 2.0)]
    text = se.table(rows, Args)
    assert "S = 16, ball measure" in text
    line = [x for x in text.splitlines() if x.startswith("| 0.001 | 10 | 64 | ")][0]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[5] == "3.75 [2, 5.5]" and cells[6] == "4 [3, 5]" and cells[7] == "1/2"


@pytest.mark.slow  # a benchmark script's fit and two ELBO estimates: about 18 s
def test_a_fit_evaluated_with_other_samples_keeps_its_parameters_and_its_kl(tiny_sho):
    from noether_ppl import analysis
    from noether_ppl.inference import fit

    model = se.model("symmetric", 1e-3, "sho")
    result = fit(model, tiny_sho, key=jax.random.key(0), num_steps=2, progress_bar=False)
    more = result.with_sym_samples(64)
    assert more.model.spec.sym_samples == 64 and model.spec.sym_samples == 16
    assert more.model.spec.replace(sym_samples=16) == model.spec
    np.testing.assert_array_equal(np.asarray(more.model.fixed_generators),
                                  np.asarray(model.fixed_generators))
    assert more.params is result.params
    k = jax.random.key(7)
    t16 = analysis.elbo_terms(result, tiny_sho, key=k, num_repeats=2)
    t64 = analysis.elbo_terms(more, tiny_sho, key=k, num_repeats=2)
    # the KL is the posterior's, whatever S; the NLL is the Monte-Carlo Ĥ's
    assert t64["kl_per_n"] == pytest.approx(t16["kl_per_n"], rel=1e-12)
    assert t64["nll_per_n"] != t16["nll_per_n"]


def test_shell_data_lie_on_the_energy_shell_of_the_fraction():
    import henon_heiles_energy

    class Args:
        trajectories, points, energy_fraction, system = 3, 2, 0.5, "henon-heiles"

    train, test = se.data(0, Args)
    E = 0.5 * henon_heiles_energy.SADDLE_ENERGY
    for traj, n in ((train, 3), (test, 100)):
        x = np.asarray(traj.states, np.float64)
        assert x.shape[0] == n and x.shape[-1] == 4
        np.testing.assert_allclose(henon_heiles_energy._energy(x), E, rtol=0, atol=1e-9)
    assert np.asarray(train.states).shape[1] == 3  # points + 1 states per trajectory


def test_other_systems_fix_their_true_generators_and_need_some():
    m = se.model("symmetric", 1e-3, "two-body-2d")
    truth = systems.SUITE["two-body-2d"]().generators()
    np.testing.assert_array_equal(np.asarray(m.fixed_generators), truth)
    assert m.n_conserved == 7 and m.phase_dim == 8
    assert se.model("hnn", 1e-3, "two-body-2d").n_conserved == 0
    assert se.model("symmetric", 1e-3, "two-body-2d", 0.3).spec.measure_scale == 0.3
    assert se.symmetry("henon-heiles-escape")[0] == "U(2)"
    with pytest.raises(ValueError, match="no symmetry"):
        se.symmetry("quartic-1d")


@pytest.mark.parametrize("argv, match", [
    (["--system", "nowhere", "--topic", "x"], "unknown --system"),
    (["--system", "quartic-1d", "--topic", "x"], "no symmetry to fix"),
    (["--system", "two-body-2d", "--energy-fraction", "0.5", "--topic", "x"], "henon-heiles"),
    (["--system", "henon-heiles", "--energy-fraction", "1.5", "--topic", "x"], "(0, 1)"),
    (["--system", "sho", "--steps", "0", "--topic", "x"], "positive"),
    (["--system", "sho", "--measure-scale", "-1", "--topic", "x"], "positive"),
    (["--system", "sho", "--sym-samples", "0", "--topic", "x"], "positive"),
    (["--system", "sho", "--eval-sym-samples", "64", "0", "--topic", "x"], "positive"),
    (["--system", "sho", "--noise-variances", "1e-3", "0", "--topic", "x"], "positive"),
    (["--system", "sho", "--noise-variances", "mse", "--topic", "x"], "'empirical'"),
    (["--system", "sho", "--hidden", "64", "0", "--topic", "x"], "positive"),
    (["--system", "sho", "--prior-variance", "-1", "--topic", "x"], "'optimal'"),
])
def test_bad_arguments_are_refused_before_any_fit(argv, match, capsys):
    with pytest.raises(SystemExit):
        se.main(argv)
    assert match in capsys.readouterr().err


def test_the_empirical_variance_reaches_the_model_and_the_table():
    noise = se._positive_or("empirical")
    assert noise("empirical") == "empirical" and noise("2e-3") == 2e-3
    assert se.model("symmetric", "empirical", "sho").spec.noise_variance == "empirical"
    assert se.model("hnn", 1e-3, "sho", hidden=(128, 96)).spec.hidden == (128, 96)
    assert se.model("symmetric", 1e-3, "sho", prior_variance=0.5).spec.prior_variance == 0.5
    prior = se._positive_or("optimal")
    assert prior("optimal") == "optimal" and prior("0.5") == 0.5

    class Args:
        system, trajectories, points, sym_samples, measure_scale = "sho", 50, 10, 16, np.pi
        lr, batch_size, energy_fraction, eval_sym_samples = 3e-3, 10, None, []
        hidden, prior_variance = [128, 96], 0.5
        keys, steps, noise_variances = [0], [10], ["empirical", 1e-3]

    rows = [{"key": 0, "noise_variance": nv, "steps": 10, "model": name,
             "neg_elbo_per_n": e, "neg_elbo_se_per_n": 0.1, "nll_per_n": e, "kl_per_n": 1.0,
             "test_mse": 0.1}
            for nv, es in (("empirical", (1.0, 2.0)), (1e-3, (3.0, 4.0)))
            for name, e in zip(se.MODELS, es, strict=True)]
    lines = se.table(rows, Args).splitlines()
    assert "MLP 128 x 96, prior variance 0.5 for every weight, S = 16," in lines[0]
    assert any(line.startswith("| empirical | 10 | 1 [1, 1] | 2 [2, 2] | 0/1 |") for line in lines)
    assert any(line.startswith("| 0.001 | 10 | 3 [3, 3] | 4 [4, 4] | 0/1 |") for line in lines)


def test_no_motion_is_the_mean_squared_step_of_the_test_pairs():
    from noether_ppl.data import Trajectories

    states = np.arange(2 * 3 * 2, dtype=np.float64).reshape(2, 3, 2) ** 1.5
    test = Trajectories(states=states, dt=0.1)
    steps = np.diff(states, axis=1)
    assert se.no_motion_mse(test) == pytest.approx(np.mean(steps ** 2), rel=1e-12)


def test_rebuild_writes_the_table_of_the_stored_fits_without_fitting(monkeypatch, capsys):
    rows = [{"key": 0, "noise_variance": 1e-3, "steps": 10, "model": name,
             "neg_elbo_per_n": e, "neg_elbo_se_per_n": 0.1, "nll_per_n": e, "kl_per_n": 1.0,
             "test_mse": 0.1} for name, e in zip(se.MODELS, (1.0, 2.0), strict=True)]
    written = {}
    # the record's settings (here: its steps and keys) rule over the command line's
    settings = {"system": "sho", "keys": [0], "steps": [10], "noise_variances": [1e-3]}
    monkeypatch.setattr(se, "read_record",
                        lambda topic: ("", {"rows": rows, "settings": settings}, {}))
    monkeypatch.setattr(se, "rewrite_record",
                        lambda topic, text, how: written.update(topic=topic, how=how))
    monkeypatch.setattr(se, "fit", lambda *a, **k: pytest.fail("rebuild must not fit"))
    argv = ["--system", "sho", "--keys", "3", "--steps", "99", "--topic", "t", "--rebuild"]
    assert se.main(argv) == 0
    assert written["topic"] == "t" and written["how"].endswith("--topic t --rebuild")
    out = capsys.readouterr().out
    assert "| 0.001 | 10 | 1 [1, 1] | 2 [2, 2] | 0/1 |" in out
    assert "Predicting no motion" in out


def test_the_henon_heiles_form_fills_in_its_system_and_topic(monkeypatch):
    import henon_heiles_evidence

    seen = []
    monkeypatch.setattr(se, "main", lambda argv: seen.append(argv) or 0)
    henon_heiles_evidence.main(["--keys", "0"])
    henon_heiles_evidence.main(["--topic", "other"])
    assert seen == [["--system", "henon-heiles", "--topic", "henon-heiles-evidence", "--keys",
                     "0"], ["--system", "henon-heiles", "--topic", "other"]]


@pytest.mark.slow
def test_the_true_h_through_the_models_integrator_scores_against_the_likelihoods_floor():
    """``exact_h_nll``: where the integrator resolves the step (the oscillator's linear flow at
    a small Δt) the true H predicts the pairs to the likelihood's floor (M/2) log 2πσ²; on two
    bodies at the benchmark's Δt = 0.3 one step of the model's integrator misses them by far,
    and the miss shrinks with Δt (``--dt``) as a second-order method's does."""
    args = se.parser().parse_args(["--system", "two-body-2d", "--topic", "t",
                                   "--trajectories", "5", "--points", "3"])
    floor = 0.5 * 8 * np.log(2 * np.pi * 1e-3)
    coarse = se.exact_h_nll("two-body-2d", se.data(0, args)[0], 1e-3)
    fine_args = se.parser().parse_args(["--system", "two-body-2d", "--topic", "t",
                                        "--trajectories", "5", "--points", "3",
                                        "--dt", "0.03"])
    train, test = se.data(0, fine_args)
    assert train.dt == test.dt == 0.03
    # the same initial states, only sampled more often
    np.testing.assert_array_equal(np.asarray(train.states)[:, 0],
                                  np.asarray(se.data(0, args)[0].states)[:, 0])
    fine = se.exact_h_nll("two-body-2d", train, 1e-3)
    assert coarse > floor + 50 and floor < fine < floor + 0.1 * (coarse - floor)
    sho_args = se.parser().parse_args(["--system", "sho", "--topic", "t", "--dt", "0.01"])
    sho_floor = 0.5 * 2 * np.log(2 * np.pi * 1e-3)
    assert abs(se.exact_h_nll("sho", se.data(0, sho_args)[0], 1e-3) - sho_floor) < 1e-3


def test_dt_must_be_positive_and_belongs_to_the_suites_data(capsys):
    for argv in (["--dt", "0"], ["--dt", "-0.1"],
                 ["--dt", "0.1", "--energy-fraction", "0.9"]):
        with pytest.raises(SystemExit):
            se.main(["--system", "henon-heiles", "--topic", "t", *argv])
        assert "--dt" in capsys.readouterr().err


def test_the_likelihood_mean_is_the_packages_unless_set_and_reaches_both_models():
    defaults = se.parser().parse_args(["--system", "two-body-2d", "--topic", "t"])
    spec = se.models.ModelSpec()
    assert (defaults.integrator, defaults.substeps) == (spec.integrator, spec.substeps)
    for name in se.MODELS:
        m = se.model(name, 1e-3, "two-body-2d", integrator="rk4", substeps=2)
        assert (m.spec.integrator, m.spec.substeps) == ("rk4", 2)
    with pytest.raises(SystemExit):
        se.main(["--system", "two-body-2d", "--topic", "t", "--substeps", "0"])


def test_the_pairs_nll_is_the_gaussian_likelihood_of_sec_4_1():
    """``pairs_nll`` against NumPyro's Normal log-density (a reference computation), and its
    floor at an exact prediction."""
    import numpyro.distributions as dist

    rng = np.random.default_rng(3)
    y, mean = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    with float64():
        ref = -float(jnp.mean(jnp.sum(dist.Normal(jnp.asarray(mean), jnp.sqrt(2e-3))
                                      .log_prob(jnp.asarray(y)), axis=-1)))
    assert se.pairs_nll(y, mean, 2e-3) == pytest.approx(ref, rel=1e-10)
    assert se.pairs_nll(y, y, 2e-3) == pytest.approx(se.likelihood_floor(4, 2e-3), rel=1e-12)
