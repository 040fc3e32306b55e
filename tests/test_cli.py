"""The command line: --help, one-line errors with exit code 2 for bad input, each CPU twin fits a
few steps from the CLI, fit -> report without refitting, resume, and a real kill and resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_timing import check_experiment_split

from noether_ppl.cli import main

# Tiny versions of the packaged CPU twins: every data set the same shape as the training set
# (one compiled simulator per system), a one-layer network, a few steps.
TINY = ["model.hidden=[8]", "model.sym_samples=2", "model.substeps=1",
        "inference.num_steps=4", "inference.checkpoint_every=2", "inference.lr=1e-2"]
TINY_ARGS = [x for item in TINY for x in ("--set", item)]


def tiny(name):
    sizes = {"data.train.n_trajectories": 4, "data.train.n_steps": 2}
    tests = {"sho-cpu": ["test"], "oscillators3-cpu": ["test"],
             "nbody2d3-cpu": ["test", "moved", "wider"]}[name]
    for split in tests:
        sizes[f"data.{split}.n_trajectories"] = 4
        sizes[f"data.{split}.n_steps"] = 2
    out = TINY + [f"{k}={v}" for k, v in sizes.items()]
    if name != "sho-cpu":
        out += ["inference.batch_size=2", "model.n_conserved=2"]
    return [x for item in out for x in ("--set", item)]


ANALYSIS = ["--set", "analysis.arviz_samples=6", "--set", "analysis.num_samples=2",
            "--set", "analysis.num_repeats=1", "--set", "analysis.rollout_steps=2",
            "--set", "analysis.rollout_trajectories=2"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["fit", "report", "discover", "simulate", "demo"])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: noether-ppl {command}")
    if command == "fit":
        for flag in ("--variant", "--set", "--out", "--resume", "--data", "--dt", "--reference"):
            assert flag in out


def _one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


BAD_FILE = """
name = "bad"
seed = 0
variants = ["vanilla"]
[system]
name = "harmonic_oscillator"
[data.train]
n_trajectories = 3
n_steps = 2
dt = 0.2
[inference]
num_steps = 2
"""


@pytest.mark.parametrize(
    "edit,expected",
    [
        (("[inference]", "[inference]\nlearning_rate = 1.0"), "inference.learning_rate: "
                                                              "unknown key"),
        (("num_steps = 2", 'num_steps = "2"'), "inference.num_steps: expected a positive "
                                               "integer"),
        (('variants = ["vanilla"]', 'variants = ["vanilla", "magic"]'), "unknown variant "
                                                                         "'magic'"),
        (('variants = ["vanilla"]', 'variants = ["se2"]'), "'se2' is the symmetry of the "
                                                           "nbody system"),
        (("n_steps = 2", "n_steps = [2]"), "data.train.n_steps"),
    ],
)
def test_bad_toml_gives_one_line_and_exit_code_2(tmp_path, capsys, edit, expected):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_FILE.replace(*edit, 1))
    code, out, err = run_cli(capsys, "fit", str(path), "--out", str(tmp_path / "o"))
    assert code == 2
    line = _one_line_error(err)
    assert line.startswith("noether-ppl fit: error: ") and str(path) in line and expected in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["fit", "sho-cpu", "--out", "{o}", "--set", "inference.num_step=5"],
         "inference.num_step (from --set): unknown key"),
        (["fit", "sho-cpu", "--out", "{o}", "--set", "model.hidden"], "expected key=value"),
        (["fit", "sho-cpu", "--out", "{o}", "--variant", "u(n)"], "'u(n)' is the symmetry "
                                                                 "of the coupled_oscillators"),
        (["fit", "no-such-experiment", "--out", "{o}"], "Unknown experiment"),
        (["fit", "sho-cpu"], "--out DIR"),
        (["fit", "--resume", "{o}"], "Nothing to resume"),
        (["fit", "sho-cpu", "--out", "{o}", "--dt", "0.1"], "--dt is the time step"),
        (["fit", "sho-cpu", "--out", "{o}", "--data", "{o}/missing.npy", "--dt", "0.1"],
         "No data file"),
        (["fit", "sho-cpu", "--out", "{o}", "--bogus"], "unrecognized arguments: --bogus"),
        (["report", "{o}"], "No folder"),
        (["discover", "{o}"], "No folder"),
        (["discover", "{o}", "--dimension", "2", "--threshold", "0.1"], "not allowed with"),
        (["discover", "{o}", "--dimension", "-1"], "expected an integer >= 0"),
        (["simulate", "pendulum"], "invalid choice"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, argv, expected):
    argv = [a.replace("{o}", str(tmp_path / "o")) for a in argv]
    try:
        code, out, err = run_cli(capsys, *argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
        err = capsys.readouterr().err
    assert code == 2
    assert expected in _one_line_error(err)


def test_user_data_file_errors(tmp_path, capsys):
    bad = tmp_path / "odd.npy"
    np.save(bad, np.zeros((3, 4, 3)))  # odd phase dimension
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--out", str(tmp_path / "o"), "--data",
                           str(bad), "--dt", "0.1")
    assert code == 2 and "odd.npy" in _one_line_error(err) and "even" in err
    npz = tmp_path / "t.npz"
    np.savez(npz, states=np.zeros((2, 3, 2)), dt=0.1)
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--out", str(tmp_path / "o"), "--data",
                           str(npz), "--dt", "0.1")
    assert code == 2 and "stores its own dt" in _one_line_error(err)
    ref = tmp_path / "ref.npy"
    np.save(ref, np.zeros((1, 5, 5)))  # generators for M = 4, the data have M = 2
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--out", str(tmp_path / "o"), "--data",
                           str(npz), "--reference", str(ref))
    assert code == 2 and "reference generators are 5x5" in _one_line_error(err)
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--out", str(tmp_path / "o"),
                           "--reference", str(ref))
    assert code == 2 and "reference file is for your own data" in _one_line_error(err)
    assert not (tmp_path / "o").exists()  # bad input leaves nothing behind


def _files(folder):
    return {os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder)
            for f in fs}


def test_sho_twin_fits_from_the_cli_and_report_rebuilds_the_table(tmp_path, capsys):
    out = str(tmp_path / "sho")
    # (runaway_factor = inf: JSON has no inf, so the resume below checks its round trip)
    start = time.perf_counter()
    code, stdout, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned",
                                *tiny("sho-cpu"), *ANALYSIS, "--set",
                                "inference.runaway_factor=inf", "--no-progress", "--out", out)
    wall = time.perf_counter() - start
    assert code == 0, err
    # where the time went: experiment.json, the line printed, every run.json and metrics.json
    check_experiment_split(tmp_path / "sho", stdout.splitlines(), wall)
    assert "(paper Table 1 layout)" in stdout and "HNN + learned symmetry" in stdout
    files = _files(out)
    for rel in ("experiment.json", "experiment.toml", "data/train.npz", "data/test.npz",
                "table.txt", "learned/run.json", "learned/params.npz", "learned/trace.npz",
                "learned/checkpoint.npz", "learned/metrics.json", "learned/posterior.nc",
                "learned/reference.npz", "learned/data/train.npz", "learned/data/test.npz",
                "learned/figures/training_curves.png", "learned/figures/hamiltonian.png",
                "figures/training_curves.png"):
        assert rel in files, rel
    assert not [f for f in files if f.endswith(".tmp")]
    with open(os.path.join(out, "learned", "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["steps"] == 4 and metrics["symmetry"]["reference_dimension"] == 1
    # the likelihood mean against the data's Δt, on this fit (a near-flat Ĥ after 4 steps)
    assert metrics["resolution"]["reference"] == ["rk4", 16] and metrics["resolution"]["resolved"]
    assert "does not resolve" not in stdout
    with open(os.path.join(out, "learned", "run.json")) as f:
        assert json.load(f)["fit"]["runaway_factor"] == "inf"
    with open(os.path.join(out, "table.txt")) as f:
        table = f.read().strip()

    # report: the same table from the folders, no refitting (no fit progress line printed).
    code, stdout, err = run_cli(capsys, "report", out, "--no-figures")
    assert code == 0, err
    assert table in stdout and "test MSE" in stdout and "fit " not in err
    assert "Learned symmetry: dimension" in stdout

    # discover: the Lie-derivative nullspace of the saved fit's Hamiltonian, as computed here
    code, stdout, err = run_cli(capsys, "discover", out, "--points", "10", "--seed", "3")
    assert code == 0, err
    assert "Discovered" in stdout and "largest gaps" in stdout
    with open(os.path.join(out, "learned", "discovery.json")) as f:
        found = json.load(f)
    assert found["n_points"] == 10 and found["data"] == "train"
    assert found["reference_dimension"] == 1 and len(found["singular_values"]) == 5
    K = found["dimension"]
    assert np.shape(found["generators"]) == (K, 3, 3) and np.shape(found["coefficients"]) == (K, 5)
    assert "learned/figures/discovery.png" in _files(out)
    _check_discovery_against_a_direct_computation(os.path.join(out, "learned"), found, seed=3,
                                                  n_points=10)
    code, stdout, err = run_cli(capsys, "report", out, "--no-figures")
    assert code == 0 and "HNN + learned symmetry: its H conserves" in stdout

    code, _, err = run_cli(capsys, "discover", out, "--data", "nope")
    assert code == 2 and "`data`" in _one_line_error(err) and "test, train" in err
    # a run that did not finish (here: marked diverged) is left out, as by report
    stopped = str(tmp_path / "stopped")
    shutil.copytree(os.path.join(out, "learned"), stopped)
    with open(os.path.join(stopped, "run.json")) as f:
        info = json.load(f)
    with open(os.path.join(stopped, "run.json"), "w") as f:
        json.dump(info | {"status": "diverged"}, f)
    code, _, err = run_cli(capsys, "discover", stopped)
    assert code == 2 and "is not complete (status 'diverged'" in err
    assert "No complete run" in err.strip().splitlines()[-1]

    # resume of a complete experiment: nothing is refitted, the table is the same
    code, stdout, err = run_cli(capsys, "fit", "--resume", out, "--no-progress")
    assert code == 0, err
    assert table in stdout
    # a changed setting is refused, the folder is left as it was
    code, _, err = run_cli(capsys, "fit", "--resume", out, "--set", "inference.lr=0.5")
    assert code == 2 and "different configuration" in _one_line_error(err)
    # an existing run is never overwritten
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--out", out)
    assert code == 2 and "already holds" in _one_line_error(err)


@pytest.mark.slow  # a second fit (its own compiled program): the end-to-end test stays short
def test_init_conserved_starts_the_learned_fit_at_the_given_quantities(tmp_path, capsys):
    out = str(tmp_path / "sho")
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned", *tiny("sho-cpu"),
                           "--no-progress", "--no-analysis", "--out", out)
    assert code == 0, err
    disc = os.path.join(out, "learned", "discovery.json")
    code, _, err = run_cli(capsys, "discover", out, "--points", "10", "--no-figures")
    assert code == 0, err
    # fit --init-conserved: the learned model starts η at the discovered quantities (and stays
    # there at lr_conserved = 1e-9: Adam moves it by about that a step), kept for resuming
    warm = str(tmp_path / "warm")
    with open(disc) as f:
        found = json.load(f)
    two = np.stack([np.asarray(found["generators"][0])] * 2)
    np.save(tmp_path / "two.npy", two)
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned",
                           "--init-conserved", str(tmp_path / "two.npy"), "--out",
                           str(tmp_path / "k"))
    assert code == 2 and ("2 initial conserved quantities, but the variant 'learned' learns "
                          "K = 1") in _one_line_error(err)
    assert not (tmp_path / "k").exists()
    code, _, err = run_cli(capsys, "discover", out, "--points", "10", "--dimension", "1",
                           "--no-figures")  # sho-cpu learns K = 1
    assert code == 0, err
    with open(disc) as f:
        found = json.load(f)
    K = found["dimension"]
    warm_args = ["sho-cpu", "--variant", "learned", *tiny("sho-cpu"), "--set",
                 "inference.lr_conserved=1e-9", "--set", "inference.refit=false", "--no-progress",
                 "--no-analysis"]
    code, _, err = run_cli(capsys, "fit", *warm_args, "--init-conserved", disc, "--out", warm)
    assert code == 0, err
    from noether_ppl.runs import load_run

    fitted = load_run(os.path.join(warm, "learned"))
    G = np.asarray(fitted.model.generators_from_params(fitted.params))
    np.testing.assert_allclose(G[:K], found["generators"], rtol=0, atol=1e-6)
    assert os.path.exists(os.path.join(warm, "data", "init_conserved.npz"))
    with open(os.path.join(warm, "learned", "run.json")) as f:
        assert json.load(f)["meta"]["label"] == "HNN + learned symmetry (η started at 1 given)"
    code, _, err = run_cli(capsys, "fit", "--resume", warm, "--no-progress", "--no-analysis")
    assert code == 0, err
    np.save(tmp_path / "other.npy", 2 * np.asarray(found["generators"]))
    code, _, err = run_cli(capsys, "fit", "--resume", warm, "--init-conserved",
                           str(tmp_path / "other.npy"))
    assert code == 2 and "other initial conserved quantities" in _one_line_error(err)
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "vanilla", "--init-conserved",
                           disc, "--out", str(tmp_path / "v"))
    assert code == 2 and "are for the learned variants" in _one_line_error(err)


def _check_discovery_against_a_direct_computation(folder, found, *, seed, n_points):
    """``analysis.discover`` on the loaded fit's posterior-mean H at the same states."""
    import jax

    from noether_ppl import analysis, systems
    from noether_ppl.runs import open_run

    run = open_run(folder)
    states = np.asarray(run.train.states, np.float64).reshape(-1, 2)
    idx = np.sort(np.random.default_rng(seed).choice(len(states), n_points, replace=False))
    key = jax.random.key(seed)
    direct = analysis.discover(lambda x: run.result.hamiltonian(x, key=key), states[idx],
                               dimension="gap", reference=systems.HarmonicOscillator())
    np.testing.assert_allclose(found["singular_values"], direct.singular_values, rtol=1e-5)
    assert found["dimension"] == direct.dimension
    np.testing.assert_allclose(found["parallelness"], direct.parallelness, rtol=1e-5)


@pytest.mark.slow  # keeps the default run short: the sho-cpu twin runs in the default suite
@pytest.mark.parametrize("name", ["oscillators3-cpu", "nbody2d3-cpu"])
def test_cpu_twins_fit_a_few_steps_from_the_cli(tmp_path, capsys, name):
    """The sho-cpu twin runs in the end-to-end test above; ``test_experiments.py`` reads every
    packaged file, these two included."""
    out = str(tmp_path / name)
    code, stdout, err = run_cli(capsys, "fit", name, "--variant", "learned", *tiny(name),
                                "--no-progress", "--no-analysis", "--out", out)
    assert code == 0, err
    with open(os.path.join(out, "learned", "run.json")) as f:
        info = json.load(f)
    assert info["status"] == "complete" and info["steps"] == 4 and info["n_conserved"] == 2
    with open(os.path.join(out, "experiment.json")) as f:
        exp = json.load(f)
    assert exp["experiment"]["name"] == name and exp["variants"] == ["learned"]


def test_fit_on_user_data_without_a_system(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(4) * 0.1
    x0 = rng.normal(size=(4, 2))
    q = x0[:, :1] * np.cos(t) + x0[:, 1:] * np.sin(t)
    p = -x0[:, :1] * np.sin(t) + x0[:, 1:] * np.cos(t)
    path = tmp_path / "mine.npy"
    np.save(path, np.stack([q, p], -1))
    out = str(tmp_path / "mine")
    # asked for explicitly, a group of the (unused) system is an error ...
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "so2", "--data", str(path),
                           "--dt", "0.1", "--out", out)
    assert code == 2 and "with your own data use a reference file" in _one_line_error(err)
    assert not os.path.exists(out)
    # ... and from the file's list it is left out with a note, not silently
    code, stdout, err = run_cli(capsys, "fit", "sho-cpu", *TINY_ARGS, "--set",
                                'variants=["learned", "so2"]', "--data", str(path), "--dt",
                                "0.1", "--no-progress", "--no-analysis", "--out", out)
    assert code == 0, err
    assert "variant 'so2'" in stdout and "not fitted on your data" in stdout
    # sho-cpu refits the learned model (inference.refit = true)
    assert sorted(os.listdir(out)) == ["data", "experiment.json", "experiment.toml", "learned",
                                       "learned-refit"]
    with open(os.path.join(out, "experiment.json")) as f:
        exp = json.load(f)
    assert exp["data"]["source"] == "user" and exp["variants"] == ["learned"]
    assert exp["data"]["user_file"] == str(path)
    with open(os.path.join(out, "learned", "run.json")) as f:
        assert json.load(f)["meta"]["system"] is None


@pytest.mark.slow
def test_a_killed_fit_process_resumes_to_the_uninterrupted_result(tmp_path):
    """Kill a real `noether-ppl fit` mid-run (SIGKILL after a checkpoint), resume it, and
    compare with an uninterrupted run: the same parameters to 1e-6."""
    steps = "inference.num_steps=3000"
    args = ["sho-cpu", "--variant", "learned", *tiny("sho-cpu"), "--set", steps,
            "--set", "inference.checkpoint_every=100", "--set", "inference.init_scale=0.02",
            "--set", "inference.lr_offdiag=1e-3", "--set", "inference.refit=false",
            "--no-progress", "--no-analysis"]
    killed = str(tmp_path / "killed")
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "noether_ppl.cli", "fit", *args, "--out",
                             killed], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = os.path.join(killed, "learned", "checkpoint.npz")
    try:
        deadline = time.time() + 300
        while not os.path.exists(ckpt) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    from noether_ppl.runs import load_checkpoint

    step = load_checkpoint(ckpt).step
    assert 0 < step < 3000, "the run ended before it could be killed"
    with open(os.path.join(killed, "learned", "run.json")) as f:
        assert json.load(f)["status"] == "running"
    full = str(tmp_path / "full")
    assert subprocess.run([sys.executable, "-m", "noether_ppl.cli", "fit", *args, "--out",
                           full], env=env, capture_output=True).returncode == 0
    resumed = subprocess.run([sys.executable, "-m", "noether_ppl.cli", "fit", "--resume", killed,
                              "--no-progress", "--no-analysis"], env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()
    for folder in (killed, full):  # the setting is recorded with the run (and fingerprinted)
        with open(os.path.join(folder, "learned", "run.json")) as f:
            fit_settings = json.load(f)["fit"]
            assert fit_settings["init_scale"] == 0.02 and fit_settings["lr_offdiag"] == 1e-3
    a = np.load(os.path.join(killed, "learned", "params.npz"))
    b = np.load(os.path.join(full, "learned", "params.npz"))
    assert set(a.files) == set(b.files)
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)


@pytest.mark.slow  # two fits and a refit in memory; the demo's test runs the refits by default
def test_refit_runs_after_the_learned_variant_and_resumes(tmp_path, capsys):
    """`[inference] refit = true`: a run folder `learned-refit` holding the posterior refitted
    at the learned η (η bit for bit the learned run's), equal to `refit_posterior` on the same
    data and key; the printed comparison is the final −ELBO/N of both traces; a removed refit
    is redone identically on resume."""
    import shutil

    from noether_ppl.experiments import load_experiment
    from noether_ppl.inference import refit_posterior
    from noether_ppl.models.razor import CONSERVED_PARAMS
    from noether_ppl.runs.folder import open_run

    sets = ["--set", "inference.refit=true", "--set", "inference.refit_lr_offdiag=3e-4"]
    out = str(tmp_path / "refit")
    code, stdout, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned",
                                *tiny("sho-cpu"), *sets, "--no-progress", "--no-analysis",
                                "--out", out)
    assert code == 0, err
    joint, second = open_run(os.path.join(out, "learned")), open_run(os.path.join(out,
                                                                                 "learned-refit"))
    assert second.meta["refit_of"] == "learned" and second.info["status"] == "complete"
    assert second.info["fit"]["lr_conserved"] == 0.0 and second.info["fit"]["lr_offdiag"] == 3e-4
    assert second.info["fit"]["init_params"] == sorted(CONSERVED_PARAMS)
    for name in CONSERVED_PARAMS:
        np.testing.assert_array_equal(second.result.params[name], joint.result.params[name])

    # the same refit in memory
    exp = load_experiment("sho-cpu").replace(
        [s for s in tiny("sho-cpu") if s != "--set"] + ["inference.refit=true",
                                                         "inference.refit_lr_offdiag=3e-4"])
    _, k_fit, _ = exp.keys()
    inf = exp.inference
    ref = refit_posterior(joint.result, joint.train, key=k_fit, num_steps=inf.num_steps,
                          lr=inf.lr, lr_offdiag=3e-4, schedule=inf.schedule,
                          num_particles=inf.num_particles, progress_bar=False)
    for name, value in ref.params.items():
        np.testing.assert_allclose(second.result.params[name], value, rtol=1e-6, atol=1e-7)

    # the printed line: the mean loss over the last 5 % (here: the last step) of each trace
    line = [s for s in stdout.splitlines() if "of the posterior refitted" in s]
    assert len(line) == 1
    assert (f"final -ELBO/N {joint.result.losses[-1]:.2f} of the joint fit, "
            f"{second.result.losses[-1]:.2f} of the posterior refitted") in line[0]
    which = "refit" if second.result.losses[-1] < joint.result.losses[-1] else "joint fit"
    assert line[0].endswith(f"the {which} has the higher ELBO.")

    # resume: the complete learned run is kept, a missing refit is fitted again, identically
    before = {k: np.asarray(v) for k, v in second.result.params.items()}
    shutil.rmtree(os.path.join(out, "learned-refit"))
    code, stdout, err = run_cli(capsys, "fit", "--resume", out, "--no-progress",
                                "--no-analysis")
    assert code == 0, err
    assert "Refitting the posterior" in stdout
    again = open_run(os.path.join(out, "learned-refit"))
    for name, value in before.items():
        np.testing.assert_array_equal(again.result.params[name], value)
    # report prints both runs' rows and the same comparison
    code, stdout, err = run_cli(capsys, "report", out, "--no-figures")
    assert code == 0, err
    assert "HNN + learned symmetry (refit)" in stdout and line[0] in stdout


@pytest.mark.slow
def test_auto_selects_into_a_run_folder_and_resume_keeps_it(tmp_path, capsys):
    """`fit --auto` (= `--set inference.select=true`): the plain HNN is fitted too, the
    selection lands in `learned-selected` with `selection.json`, and is equal to
    `select_from_fits` on the stored fits; a resume of the finished run does nothing."""
    from noether_ppl.analysis import select_from_fits
    from noether_ppl.experiments import load_experiment
    from noether_ppl.runs.folder import open_run

    out = str(tmp_path / "auto")
    code, stdout, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned", "--auto",
                                *tiny("sho-cpu"), "--set", "inference.select_lr=1e-3",
                                "--no-progress", "--no-analysis", "--out", out)
    assert code == 0, err
    assert "fitting variant 'vanilla' too" in stdout
    with open(os.path.join(out, "learned-selected", "selection.json")) as f:
        stored = json.load(f)
    sel = open_run(os.path.join(out, "learned-selected"))
    assert sel.meta["selected_from"] == "learned"
    assert sel.result.model.n_conserved == stored["dimension"]
    exp = load_experiment("sho-cpu").replace(
        [s for s in tiny("sho-cpu") if s != "--set"] + ["inference.select=true"])
    _, k_fit, _ = exp.keys()
    hnn, learned = (open_run(os.path.join(out, v)).result for v in ("vanilla", "learned"))
    settings = dict(sel.info["fit"])
    steps = settings.pop("select_steps")
    # the continuation fits at select_lr, the razor's fit from the discovered start at lr
    assert settings.pop("select_lr") == 1e-3 and settings["lr"] == exp.inference.lr != 1e-3
    # the package's rule, recorded with the run
    assert (settings.pop("select_stop"), settings.pop("select_symmetrised_hnn")) == \
        ("spectrum", True)
    again = select_from_fits(hnn, learned, learned_train(out), key=jax_fold(k_fit, 2),
                             num_steps=exp.inference.steps_for(4), select_steps=steps,
                             select_kwargs={**settings, "lr": 1e-3}, **settings)
    assert again.dimension == stored["dimension"]
    # whether the likelihood mean resolves Δt, on the plain HNN's fit: stored and printed
    assert stored["resolution"] == again.resolution.to_dict()
    assert "On the plain HNN's fit: Likelihood mean" in stdout
    for name, value in sel.result.params.items():
        np.testing.assert_array_equal(np.asarray(again.result.params[name]), value)
    code, stdout, err = run_cli(capsys, "fit", "--resume", out, "--no-progress",
                                "--no-analysis")
    assert code == 0, err
    assert "nothing to do" in stdout


def test_auto_passes_the_selection_rule_of_the_experiment(tmp_path, capsys, monkeypatch):
    """``inference.select_stop`` and ``inference.select_symmetrised_hnn`` reach
    ``select_from_fits`` as ``stop`` and ``symmetrised_hnn``, ``inference.select_<option>`` of
    ``SELECT_FILE_OPTIONS`` as ``select_conserved``'s ``<option>`` (unset: the package's defaults,
    recorded with the run folder: ``test_auto_selects_into_a_run_folder_and_resume_keeps_it``)."""
    from noether_ppl.analysis import auto as auto_module
    from noether_ppl.experiments.settings import EXPERIMENT_INFERENCE_KEYS, SELECT_FILE_OPTIONS
    from noether_ppl.inference.select import SELECTION_OPTIONS

    assert all(o in SELECTION_OPTIONS and f"select_{o}" in EXPERIMENT_INFERENCE_KEYS
               for o in SELECT_FILE_OPTIONS)
    seen = {}

    class Stop(Exception):
        pass

    def select_from_fits(hnn, razor, data, *, select_kwargs, symmetrised_hnn, **kwargs):
        seen.update(select={k: select_kwargs[k] for k in ("lr", "stop", "refit_steps",
                                                          "extend", "spectrum_samples",
                                                          "refit_from", "refit_sizes",
                                                          "refit_learns",
                                                          "refit_lr_conserved", "close")
                            if k in select_kwargs},
                    symmetrised=symmetrised_hnn)
        raise Stop

    monkeypatch.setattr(auto_module, "select_from_fits", select_from_fits)
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned", "--auto",
                           *tiny("sho-cpu"), "--set", "inference.select_lr=1e-3",
                           "--set", "inference.select_stop=conserved",
                           "--set", "inference.select_symmetrised_hnn=false",
                           "--no-progress", "--no-analysis", "--out", str(tmp_path / "auto"))
    assert code != 0 and "Stop" in err  # the stand-in ended the run once it had its arguments
    assert seen == {"select": {"lr": 1e-3, "stop": "conserved"}, "symmetrised": False}
    # select_conserved's options under measurement: unset, not passed (its defaults); set,
    # passed by their own names
    code, _, err = run_cli(capsys, "fit", "sho-cpu", "--variant", "learned", "--auto",
                           *tiny("sho-cpu"), "--set", "inference.select_refit_steps=7",
                           "--set", "inference.select_extend=true",
                           "--set", "inference.select_spectrum_samples=64",
                           "--set", 'inference.select_refit_from="fresh"',
                           "--set", "inference.select_refit_sizes=[1, 2.5]",
                           "--set", "inference.select_refit_learns=true",
                           "--set", "inference.select_refit_lr_conserved=1e-4",
                           "--set", "inference.select_close=true",
                           "--no-progress", "--no-analysis", "--out", str(tmp_path / "opts"))
    assert code != 0 and "Stop" in err
    assert {k: v for k, v in seen["select"].items() if k != "lr"} == {
        "stop": "spectrum", "refit_steps": 7, "extend": True, "spectrum_samples": 64,
        "refit_from": "fresh", "refit_sizes": (1.0, 2.5), "refit_learns": True,
        "refit_lr_conserved": 1e-4, "close": True}


def learned_train(out):
    from noether_ppl.runs.folder import open_run

    return open_run(os.path.join(out, "learned")).train


def jax_fold(key, n):
    import jax

    return jax.random.fold_in(key, n)
